/**
 * Snapshot reads at one timestamp (client-go's `KVSnapshot`): KvGet, KvBatchGet and KvScan at
 * `readTs`, resolving the locks they meet.
 *
 * A lock in the way is handed to the lock resolver. When the resolver decided the lock's
 * transaction, or pushed it above `readTs`, the read is sent again at once, naming those
 * transactions in `Context.resolved_locks` so the store reads past their remaining locks.
 * When the lock's transaction is alive, the read backs off (never beyond the lock's expiry)
 * and tries again, until its deadline.
 *
 * Reads never see a value committed after `readTs`, and never a value of an uncommitted
 * transaction (Percolator's snapshot isolation: a lock at or below `readTs` blocks the read
 * until its transaction is decided).
 */
import type { Backoffer } from "../backoff.ts";
import type { RegionInfo } from "../region.ts";
import type { KvPair } from "../raw.ts";
import {
  BATCH_GET_MAX_KEYS,
  LOCK_BACKOFF_BASE_MS,
  LOCK_BACKOFF_CAP_MS,
  MAX_LOCK_ROUNDS_PER_REQUEST,
  SCAN_BATCH_SIZE,
} from "./constants.ts";
import { DeadlineExceededError } from "../errors.ts";
import { describeKey } from "./errors.ts";
import { type LockInfo, lockOfKeyError, txnErrorOf } from "./key_errors.ts";
import { LockBackoff } from "./lock_backoff.ts";
import type { LockResolver } from "./lock_resolver.ts";
import { keyId, uniqueKeys } from "../keys.ts";
import { chunkByCount, RETRY, type TxnRpc, withContextExtras } from "./rpc.ts";

const EMPTY = new Uint8Array(0);

/** What a snapshot needs of its client. */
export interface SnapshotContext {
  rpc: TxnRpc;
  resolver: LockResolver;
  timeoutMs: number;
}

/** Options of a scan. */
export interface TxnScanOptions {
  /** Most pairs returned (default 10 240). */
  limit?: number;
  /** Leave values empty. */
  keyOnly?: boolean;
}

/** TiKV's default scan limit, as RawKV's. */
export const DEFAULT_TXN_SCAN_LIMIT = 10_240;

/** Reads at one timestamp. */
export class Snapshot {
  /** Transactions whose locks this snapshot's reads may ignore (decided or pushed above it). */
  readonly #bypass = new Set<bigint>();
  /** Transactions committed at or below the snapshot: reads take their locked values. */
  readonly #readThrough = new Set<bigint>();

  constructor(readonly context: SnapshotContext, readonly readTs: bigint) {}

  /** The value of `key` at the snapshot, or null. */
  async get(key: Uint8Array): Promise<Uint8Array | null> {
    const backoffer = this.context.rpc.backoffer(this.context.timeoutMs);
    const lockBackoff = this.#lockBackoff(backoffer);
    for (let round = 0;; round++) {
      const response = await this.context.rpc.sendToKey(
        "Get",
        key,
        () => this.#withBypass({ key, version: this.readTs }),
        { backoffer, idempotent: true },
      );
      if (response.error == null) return response.notFound ? null : response.value;
      const lock = lockOfKeyError(response.error);
      if (lock === null) throw txnErrorOf(response.error, this.readTs);
      await this.#resolve([lock], { backoffer, lockBackoff, round });
    }
  }

  /** The values of `keys` that exist at the snapshot, by `keyId`. */
  async batchGet(keys: readonly Uint8Array[]): Promise<Map<string, Uint8Array>> {
    const found = new Map<string, Uint8Array>();
    const backoffer = this.context.rpc.backoffer(this.context.timeoutMs);
    const lockBackoff = this.#lockBackoff(backoffer);
    let pending = uniqueKeys(keys);
    for (let round = 0; pending.length > 0; round++) {
      const locks: LockInfo[] = [];
      const again: Uint8Array[] = [];
      await this.context.rpc.forEachRegionBatch(pending, {
        keyOf: (key) => key,
        chunk: (part) => chunkByCount(part, BATCH_GET_MAX_KEYS),
        backoffer,
        concurrency: 16,
        send: async (region, part, requestBackoffer) => {
          const response = await this.context.rpc.sendToRegion(
            "BatchGet",
            region,
            this.#withBypass({ keys: part, version: this.readTs }),
            { backoffer: requestBackoffer, idempotent: true },
          );
          if (response === RETRY) return RETRY;
          if (response.error != null) {
            const lock = lockOfKeyError(response.error);
            if (lock === null) throw txnErrorOf(response.error, this.readTs);
            locks.push(lock);
            again.push(...part);
            return;
          }
          for (const pair of response.pairs) {
            const key = pair.key ?? EMPTY;
            if (pair.error == null) {
              found.set(keyId(key), pair.value ?? EMPTY);
              continue;
            }
            const lock = lockOfKeyError(pair.error);
            if (lock === null) throw txnErrorOf(pair.error, this.readTs);
            locks.push(lock);
            again.push(key);
          }
        },
      });
      if (locks.length === 0) break;
      await this.#resolve(locks, { backoffer, lockBackoff, round });
      pending = again;
    }
    return found;
  }

  /** Pairs with keys in [start, end) at the snapshot, smallest first (empty end: unbounded). */
  async scan(start: Uint8Array, end: Uint8Array, options: TxnScanOptions = {}): Promise<KvPair[]> {
    const limit = options.limit ?? DEFAULT_TXN_SCAN_LIMIT;
    const backoffer = this.context.rpc.backoffer(this.context.timeoutMs);
    const lockBackoff = this.#lockBackoff(backoffer);
    let round = 0;
    return await this.context.rpc.scanForward(
      { start, end, limit, pageSize: SCAN_BATCH_SIZE, backoffer },
      async (region, { cursor, ask, end: pageEnd, backoffer: pageBackoffer }) => {
        const page = await this.#scanPage(region, {
          cursor,
          end: pageEnd,
          ask,
          options,
          backoffer: pageBackoffer,
        });
        if (page === RETRY || !("lock" in page)) return page;
        await this.#resolve([page.lock], { backoffer, lockBackoff, round: round++ });
        return RETRY;
      },
    );
  }

  /** One KvScan request; locked pairs are resolved and read again one by one. */
  async #scanPage(
    region: RegionInfo,
    how: {
      cursor: Uint8Array;
      end: Uint8Array;
      ask: number;
      options: TxnScanOptions;
      backoffer: Backoffer;
    },
  ): Promise<
    typeof RETRY | { lock: LockInfo } | { pairs: KvPair[]; count: number; lastKey: Uint8Array }
  > {
    const response = await this.context.rpc.sendToRegion(
      "Scan",
      region,
      this.#withBypass({
        startKey: how.cursor,
        endKey: how.end, // already within the region (see `scanForward`)
        limit: how.ask,
        version: this.readTs,
        keyOnly: how.options.keyOnly ?? false,
      }),
      { backoffer: how.backoffer, idempotent: true },
    );
    if (response === RETRY) return RETRY;
    if (response.error != null) {
      const lock = lockOfKeyError(response.error);
      if (lock === null) throw txnErrorOf(response.error, this.readTs);
      return { lock };
    }
    const pairs: KvPair[] = [];
    for (const pair of response.pairs) {
      const key = pair.key ?? EMPTY;
      if (pair.error == null) {
        pairs.push({ key, value: pair.value ?? EMPTY });
        continue;
      }
      if (lockOfKeyError(pair.error) === null) throw txnErrorOf(pair.error, this.readTs);
      // client-go's scanner does the same: the locked key is read on its own (which resolves).
      const value = await this.get(key);
      if (value !== null) pairs.push({ key, value: how.options.keyOnly ? EMPTY : value });
    }
    const lastKey = response.pairs[response.pairs.length - 1]?.key ?? how.cursor;
    return { pairs, count: response.pairs.length, lastKey };
  }

  #withBypass<T extends object>(body: T): T {
    if (this.#bypass.size === 0 && this.#readThrough.size === 0) return body;
    return withContextExtras(body, {
      resolvedLocks: [...this.#bypass],
      committedLocks: [...this.#readThrough],
    });
  }

  #lockBackoff(backoffer: Backoffer): LockBackoff {
    return new LockBackoff(backoffer, { baseMs: LOCK_BACKOFF_BASE_MS, capMs: LOCK_BACKOFF_CAP_MS });
  }

  async #resolve(
    locks: LockInfo[],
    how: { backoffer: Backoffer; lockBackoff: LockBackoff; round: number },
  ): Promise<void> {
    if (how.round >= MAX_LOCK_ROUNDS_PER_REQUEST) {
      throw new DeadlineExceededError(
        `gave up after ${how.round} rounds of lock resolution at key ${describeKey(locks[0]!.key)}`,
      );
    }
    const result = await this.context.resolver.resolveLocks(locks, {
      callerStartTs: this.readTs,
      backoffer: how.backoffer,
    });
    for (const ts of result.bypass) this.#bypass.add(ts);
    for (const ts of result.readThrough) this.#readThrough.add(ts);
    // Waiting is needed while a live transaction holds the lock; after a resolution the read
    // goes again at once, but a lock met round after round still backs off (no hot loop).
    if (result.msBeforeExpired > 0 || how.round >= 2) {
      await how.lockBackoff.wait(
        result.msBeforeExpired > 0 ? result.msBeforeExpired : LOCK_BACKOFF_BASE_MS,
        `the lock of txn ${locks[0]!.lockTs} on key ${describeKey(locks[0]!.key)}`,
      );
    }
  }
}
