/**
 * The deadlock detector: a wait-for graph between transactions (by start ts), checked for a
 * cycle each time an edge is added (TiKV `server/lock_manager/deadlock.rs`, `DetectTable`).
 *
 * An edge `waiter → holder` means "transaction `waiter` waits for a lock of transaction
 * `holder`". It remembers the keys (hash and bytes) it is about, for diagnostics, and the time
 * it was last detected; it expires `edgeTtlMs` after that, so an edge whose clean-up was lost
 * cannot cause false deadlocks forever.
 *
 * Invariants:
 * - `detect` adds `waiter → holder` only if no path `holder ⇝ waiter` exists (counting only
 *   live edges); otherwise it adds nothing and reports the cycle. Hence the live graph stays
 *   acyclic.
 * - An edge with no keys left is removed; a transaction with no outgoing edges has no entry.
 * - The edge count never exceeds `DEADLOCK_MAX_EDGES`.
 *
 * @module
 */

import {
  DEADLOCK_MAX_EDGES,
  DEADLOCK_MAX_KEYS_PER_EDGE,
  DEFAULT_DEADLOCK_EDGE_TTL_MS,
} from "./constants.ts";
import { assert } from "../../util/assert.ts";

/**
 * One edge of a wait chain, shaped as kvproto's `deadlock.WaitForEntry`: transaction `txn`
 * waits for transaction `waitForTxn` on `key` (hash `keyHash`).
 */
export interface WaitForEntry {
  readonly txn: bigint;
  readonly waitForTxn: bigint;
  readonly keyHash: bigint;
  readonly key: Uint8Array;
  readonly resourceGroupTag: Uint8Array;
}

/** A detected deadlock, with what kvproto's `Deadlock` error carries. */
export interface DeadlockInfo {
  /** The holder the new waiter wanted to wait for (`Deadlock.lock_ts`). */
  readonly lockTs: bigint;
  /** The key the new waiter wanted (`Deadlock.lock_key`). */
  readonly lockKey: Uint8Array;
  /** Hash of the key of the edge that closes the cycle (`Deadlock.deadlock_key_hash`). */
  readonly deadlockKeyHash: bigint;
  /**
   * The cycle as edges, starting at the holder `lockTs` and ending with the new edge
   * (`waiter → lockTs`): each entry's `waitForTxn` is the next entry's `txn`.
   */
  readonly waitChain: readonly WaitForEntry[];
}

/** Arguments of `DeadlockDetector.detect`. */
export interface DetectRequest {
  /** Start ts of the waiting transaction. */
  readonly txnTs: bigint;
  /** Start ts of the transaction holding the lock. */
  readonly lockTs: bigint;
  readonly keyHash: bigint;
  readonly key: Uint8Array;
  readonly resourceGroupTag?: Uint8Array;
  /** The current time, from the caller's clock. */
  readonly nowMs: number;
}

interface Edge {
  readonly holderTs: bigint;
  /** `(hash, key)` pairs, first detected first; the first one names the edge in chains. */
  readonly keys: Array<{ readonly hash: bigint; readonly key: Uint8Array }>;
  resourceGroupTag: Uint8Array;
  lastDetectMs: number;
}

const EMPTY = new Uint8Array();

/**
 * The wait-for graph of one store.
 *
 * @example
 * ```ts
 * import { DeadlockDetector } from "./deadlock.ts";
 * const detector = new DeadlockDetector();
 * const k = new Uint8Array([1]);
 * detector.detect({ txnTs: 1n, lockTs: 2n, keyHash: 11n, key: k, nowMs: 0 }); // undefined
 * detector.detect({ txnTs: 2n, lockTs: 1n, keyHash: 12n, key: k, nowMs: 0 })?.deadlockKeyHash;
 * // 11n: the edge 1 → 2 closes the cycle
 * ```
 */
export class DeadlockDetector {
  readonly #edgeTtlMs: number;
  /** waiter ts → (holder ts → edge). */
  readonly #waitFor = new Map<bigint, Map<bigint, Edge>>();
  #edgeCount = 0;

  constructor(options: { readonly edgeTtlMs?: number } = {}) {
    this.#edgeTtlMs = options.edgeTtlMs ?? DEFAULT_DEADLOCK_EDGE_TTL_MS;
    assert(this.#edgeTtlMs > 0, "a wait-for edge lives a positive time", {
      edgeTtlMs: this.#edgeTtlMs,
    });
  }

  /**
   * Records that `txnTs` waits for `lockTs`, unless that closes a cycle: then records nothing
   * and returns the deadlock. Refreshes the edge's time when it already exists.
   */
  detect(request: DetectRequest): DeadlockInfo | undefined {
    if (request.txnTs === request.lockTs) {
      assert(false, "a txn never waits for its own lock", { txnTs: request.txnTs });
    }
    const tag = request.resourceGroupTag ?? EMPTY;
    const existing = this.#waitFor.get(request.txnTs)?.get(request.lockTs);
    if (existing !== undefined && !this.#expired(existing, request.nowMs)) {
      // An existing live edge means the graph already holds this dependency without a cycle.
      pushKey(existing, request.keyHash, request.key);
      existing.resourceGroupTag = tag;
      existing.lastDetectMs = request.nowMs;
      return undefined;
    }
    const cycle = this.#findPath(request.lockTs, request.txnTs, request.nowMs);
    if (cycle !== undefined) {
      const closing = cycle[cycle.length - 1]!;
      return {
        lockTs: request.lockTs,
        lockKey: request.key,
        deadlockKeyHash: closing.keyHash,
        waitChain: [...cycle, {
          txn: request.txnTs,
          waitForTxn: request.lockTs,
          keyHash: request.keyHash,
          key: request.key,
          resourceGroupTag: tag,
        }],
      };
    }
    this.#register(request, tag);
    return undefined;
  }

  /** Removes `keyHash` from the edge `txnTs → lockTs`, and the edge once it has no keys. */
  cleanUpWaitFor(edge: { txnTs: bigint; lockTs: bigint; keyHash: bigint }): void {
    const edges = this.#waitFor.get(edge.txnTs);
    const found = edges?.get(edge.lockTs);
    if (edges === undefined || found === undefined) return;
    const index = found.keys.findIndex((entry) => entry.hash === edge.keyHash);
    if (index >= 0) found.keys.splice(index, 1);
    if (found.keys.length === 0) this.#removeEdge(edge.txnTs, edges, edge.lockTs);
  }

  /** Removes every edge out of `txnTs` (the transaction finished or gave up waiting). */
  cleanUp(txnTs: bigint): void {
    const edges = this.#waitFor.get(txnTs);
    if (edges === undefined) return;
    this.#edgeCount -= edges.size;
    this.#waitFor.delete(txnTs);
  }

  /** Drops every edge older than the TTL. `detect` also drops the ones it walks over. */
  expire(nowMs: number): void {
    for (const [txnTs, edges] of this.#waitFor) {
      for (const [holderTs, edge] of edges) {
        if (this.#expired(edge, nowMs)) this.#removeEdge(txnTs, edges, holderTs);
      }
    }
  }

  /** Removes everything (e.g. the store lost the role that runs detection). */
  clear(): void {
    this.#waitFor.clear();
    this.#edgeCount = 0;
  }

  /** Every edge, as wait-for entries (for `GetWaitForEntries`-style diagnostics). */
  entries(): WaitForEntry[] {
    const out: WaitForEntry[] = [];
    for (const [txnTs, edges] of this.#waitFor) {
      for (const edge of edges.values()) out.push(toEntry(txnTs, edge));
    }
    return out;
  }

  /** Number of edges, live or not yet expired. */
  edgeCount(): number {
    return this.#edgeCount;
  }

  /**
   * Depth-first search for a path `from ⇝ to` over live edges, dropping expired edges on the
   * way. Returns the path as entries (first entry's `txn` is `from`), or undefined.
   */
  #findPath(from: bigint, to: bigint, nowMs: number): WaitForEntry[] | undefined {
    // predecessor[v] = the vertex whose edge reached v first; `from` has none.
    const predecessor = new Map<bigint, bigint | undefined>([[from, undefined]]);
    const stack = [from];
    while (stack.length > 0) {
      const current = stack.pop()!;
      const edges = this.#waitFor.get(current);
      if (edges === undefined) continue;
      for (const [holderTs, edge] of edges) {
        if (this.#expired(edge, nowMs)) {
          this.#removeEdge(current, edges, holderTs);
          continue;
        }
        if (holderTs === to) {
          return [...this.#chainTo(current, predecessor), toEntry(current, edge)];
        }
        if (!predecessor.has(holderTs)) {
          predecessor.set(holderTs, current);
          stack.push(holderTs);
        }
      }
    }
    return undefined;
  }

  /** The edges from the search root to `vertex`, following `predecessor` back. */
  #chainTo(vertex: bigint, predecessor: Map<bigint, bigint | undefined>): WaitForEntry[] {
    const chain: WaitForEntry[] = [];
    let current = vertex;
    let previous = predecessor.get(current);
    while (previous !== undefined) {
      const edge = this.#waitFor.get(previous)?.get(current);
      assert(edge !== undefined, "the deadlock search walks only edges it holds", {
        from: previous,
        to: current,
      });
      chain.push(toEntry(previous, edge));
      current = previous;
      previous = predecessor.get(current);
    }
    return chain.reverse();
  }

  #register(request: DetectRequest, tag: Uint8Array): void {
    let edges = this.#waitFor.get(request.txnTs);
    const stale = edges?.get(request.lockTs);
    if (edges !== undefined && stale !== undefined) {
      this.#removeEdge(request.txnTs, edges, request.lockTs);
    }
    if (this.#edgeCount >= DEADLOCK_MAX_EDGES) this.expire(request.nowMs);
    // Past the bound an edge goes unrecorded: detection may then miss a cycle, and the waits
    // involved end by their timeouts instead. Memory stays bounded either way.
    if (this.#edgeCount >= DEADLOCK_MAX_EDGES) return;
    edges = this.#waitFor.get(request.txnTs);
    if (edges === undefined) {
      edges = new Map();
      this.#waitFor.set(request.txnTs, edges);
    }
    edges.set(request.lockTs, {
      holderTs: request.lockTs,
      keys: [{ hash: request.keyHash, key: request.key }],
      resourceGroupTag: tag,
      lastDetectMs: request.nowMs,
    });
    this.#edgeCount++;
  }

  #removeEdge(txnTs: bigint, edges: Map<bigint, Edge>, holderTs: bigint): void {
    if (edges.delete(holderTs)) this.#edgeCount--;
    if (edges.size === 0) this.#waitFor.delete(txnTs);
  }

  #expired(edge: Edge, nowMs: number): boolean {
    return nowMs - edge.lastDetectMs >= this.#edgeTtlMs;
  }
}

function pushKey(edge: Edge, hash: bigint, key: Uint8Array): void {
  if (edge.keys.some((entry) => entry.hash === hash)) return;
  if (edge.keys.length >= DEADLOCK_MAX_KEYS_PER_EDGE) return;
  edge.keys.push({ hash, key });
}

function toEntry(txnTs: bigint, edge: Edge): WaitForEntry {
  const first = edge.keys[0];
  assert(first !== undefined, "a wait-for edge names a key", { txnTs, holderTs: edge.holderTs });
  return {
    txn: txnTs,
    waitForTxn: edge.holderTs,
    keyHash: first.hash,
    key: first.key,
    resourceGroupTag: edge.resourceGroupTag,
  };
}
