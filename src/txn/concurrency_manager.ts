/**
 * The concurrency manager of one store (TiKV `components/concurrency_manager`): the `max_ts`
 * every read pushes, and an in-memory lock table for async-commit and 1PC prewrites.
 *
 * Why it exists. An async-commit transaction's commit ts is decided by the prewrite itself
 * (`min_commit_ts = max(max_ts + 1, …)`), so a reader at ts `t` must either push `max_ts` past
 * `t` before the prewrite computes `min_commit_ts`, or see the prewrite's lock. The scheduler
 * therefore (1) takes `lockKey(key)`, (2) reads `maxTs()` and computes `min_commit_ts`,
 * (3) stores the lock in the guard with `setLock`, (4) writes the lock through Raft, and
 * (5) releases the guard. A reader (1) calls `updateMaxTs(readTs)` and then (2) calls
 * `readKeyCheck` / `readRangeCheck`: either it pushed `max_ts` first, or the lock is visible.
 *
 * Invariants kept here:
 * - `maxTs()` never decreases; `U64_MAX` (a "read the latest" ts) never moves it.
 * - At most one guard holds a key at a time; waiters get the key in arrival (FIFO) order.
 * - A memory lock is visible only while the guard that set it is held; `release()` clears it.
 * - A key's handle leaves the table when its last holder releases and nobody waits for it.
 *
 * Keys are encoded transactional keys (`encodeKey`), compared bytewise. Locks are opaque to
 * this module except for their start ts, which the constructor's `lockStartTs` reads.
 *
 * @module
 */

import { compareBytes } from "../codec/compare.ts";
import { U64_MAX } from "../codec/number.ts";
import { assertTs } from "../txn_types/timestamp.ts";
import { assert } from "../util/assert.ts";

/** Most keys the memory lock table holds at once (in-flight async-commit keys, plus waiters). */
export const MEMORY_LOCK_TABLE_MAX_KEYS = 1 << 20;

/**
 * The memory lock table holds MEMORY_LOCK_TABLE_MAX_KEYS keys: an expected refusal under load
 * (the command fails and the client retries), not a bug.
 */
export class MemoryLockTableFullError extends Error {
  constructor(readonly maxKeys: number) {
    super(`memory lock table is full (${maxKeys} keys); retry later`);
    this.name = "MemoryLockTableFullError";
  }
}

/** A key's slot in the lock table: who holds it, who waits, and the memory lock if any. */
interface KeyHandle<L> {
  readonly key: Uint8Array;
  /** Whether a guard currently holds the key. */
  held: boolean;
  /** Resolvers of `lockKey` callers waiting for the key, oldest first. */
  readonly waiters: Array<() => void>;
  lock: L | undefined;
}

/** Exclusive access to one key of the memory lock table, returned by `lockKey`. */
export interface KeyHandleGuard<L> {
  /** The encoded key this guard holds. */
  readonly key: Uint8Array;
  /** Publishes `lock` to readers until `release()` (or replaces the published lock). */
  setLock(lock: L): void;
  /** The lock this guard published, if any. */
  lock(): L | undefined;
  /**
   * Clears the published lock and hands the key to the next waiter. Call it after the lock
   * has been written to the engine; calling it twice is a bug and throws.
   */
  release(): void;
}

/** The smallest start ts among memory locks, and one key that carries it. */
export interface MinLock {
  readonly ts: bigint;
  readonly key: Uint8Array;
}

/** Options of `new ConcurrencyManager`. */
export interface ConcurrencyManagerOptions<L> {
  /** Initial `max_ts`, usually a fresh ts from the TSO when the store starts serving. */
  readonly latestTs: bigint;
  /** Reads a lock's start ts (for `globalMinLock`). */
  readonly lockStartTs: (lock: L) => bigint;
  /** Most keys in the table; default (and at most) MEMORY_LOCK_TABLE_MAX_KEYS. */
  readonly maxKeys?: number;
}

/**
 * `max_ts` plus the memory lock table. One per store worker; all callers run on one thread.
 *
 * @example
 * ```ts
 * import { ConcurrencyManager } from "./concurrency_manager.ts";
 * const cm = new ConcurrencyManager<{ ts: bigint }>({ latestTs: 10n, lockStartTs: (l) => l.ts });
 * const guard = await cm.lockKey(new Uint8Array([1]));
 * guard.setLock({ ts: 5n });
 * cm.readKeyCheck(new Uint8Array([1]), (lock) => lock.ts < 20n ? "blocked" : undefined);
 * // "blocked"
 * guard.release();
 * ```
 */
export class ConcurrencyManager<L> {
  #maxTs: bigint;
  readonly #lockStartTs: (lock: L) => bigint;
  /** Handles sorted by key, for point lookups (binary search) and range checks. */
  readonly #handles: KeyHandle<L>[] = [];
  readonly #maxKeys: number;

  constructor(options: ConcurrencyManagerOptions<L>) {
    assertTs(options.latestTs, "latestTs");
    this.#maxTs = options.latestTs;
    this.#lockStartTs = options.lockStartTs;
    this.#maxKeys = options.maxKeys ?? MEMORY_LOCK_TABLE_MAX_KEYS;
    assert(
      Number.isSafeInteger(this.#maxKeys) && this.#maxKeys >= 1 &&
        this.#maxKeys <= MEMORY_LOCK_TABLE_MAX_KEYS,
      "the memory lock table holds 1..MEMORY_LOCK_TABLE_MAX_KEYS keys",
      { maxKeys: this.#maxKeys },
    );
  }

  /** The largest ts any reader has announced (never decreases). */
  maxTs(): bigint {
    return this.#maxTs;
  }

  /**
   * Raises `max_ts` to `ts` when larger. `U64_MAX` is ignored: a read at the maximal ts means
   * "the latest committed data", which no async-commit transaction can be ordered after.
   */
  updateMaxTs(ts: bigint): void {
    assertTs(ts, "updateMaxTs");
    if (ts === U64_MAX) return;
    if (ts > this.#maxTs) this.#maxTs = ts;
  }

  /**
   * Waits until no other guard holds `key`, then returns a guard for it. Waiters are served in
   * arrival order.
   */
  lockKey(key: Uint8Array): Promise<KeyHandleGuard<L>> {
    const handle = this.#handleFor(key);
    if (!handle.held) {
      handle.held = true;
      return Promise.resolve(this.#guard(handle));
    }
    return new Promise((resolve) => {
      handle.waiters.push(() => resolve(this.#guard(handle)));
    });
  }

  /**
   * Locks every key and returns the guards in the order of `keys`. Keys are taken in sorted
   * order so that two callers with overlapping key sets cannot deadlock each other.
   */
  async lockKeys(keys: readonly Uint8Array[]): Promise<KeyHandleGuard<L>[]> {
    const order = keys.map((_, index) => index);
    order.sort((a, b) => compareBytes(keys[a]!, keys[b]!));
    const guards = new Array<KeyHandleGuard<L>>(keys.length);
    for (const index of order) guards[index] = await this.lockKey(keys[index]!);
    return guards;
  }

  /**
   * Runs `check` on the memory lock of `key`, if there is one, and returns what it returns
   * (by convention `undefined` when the lock does not block the reader, an error otherwise).
   */
  readKeyCheck<E>(key: Uint8Array, check: (lock: L) => E | undefined): E | undefined {
    const found = this.#search(key);
    if (!found.exact) return undefined;
    const lock = this.#handles[found.index]!.lock;
    return lock === undefined ? undefined : check(lock);
  }

  /**
   * Runs `check` on each memory lock with key in `[startKey, endKey)` in key order and returns
   * the first value other than `undefined`. An `undefined` bound is unbounded.
   */
  readRangeCheck<E>(
    range: { readonly startKey?: Uint8Array; readonly endKey?: Uint8Array },
    check: (key: Uint8Array, lock: L) => E | undefined,
  ): E | undefined {
    let index = range.startKey === undefined ? 0 : this.#search(range.startKey).index;
    for (; index < this.#handles.length; index++) {
      const handle = this.#handles[index]!;
      if (range.endKey !== undefined && compareBytes(handle.key, range.endKey) >= 0) break;
      if (handle.lock === undefined) continue;
      const result = check(handle.key, handle.lock);
      if (result !== undefined) return result;
    }
    return undefined;
  }

  /**
   * The memory lock with the smallest start ts, or `undefined` when there is none. The
   * resolved-ts component must not advance past it: that transaction may still commit at a
   * ts just above `max_ts`.
   */
  globalMinLock(): MinLock | undefined {
    let min: MinLock | undefined;
    for (const handle of this.#handles) {
      if (handle.lock === undefined) continue;
      const ts = this.#lockStartTs(handle.lock);
      if (min === undefined || ts < min.ts) min = { ts, key: handle.key };
    }
    return min;
  }

  /** Number of keys in the table (held or waited for); for tests and metrics. */
  size(): number {
    return this.#handles.length;
  }

  #guard(handle: KeyHandle<L>): KeyHandleGuard<L> {
    let released = false;
    return {
      key: handle.key,
      setLock: (lock: L) => {
        assert(!released, "a guard publishes a lock only while held");
        handle.lock = lock;
      },
      lock: () => (released ? undefined : handle.lock),
      release: () => {
        assert(!released, "a guard is released once");
        released = true;
        this.#release(handle);
      },
    };
  }

  #release(handle: KeyHandle<L>): void {
    assert(handle.held, "a released key handle is held");
    handle.lock = undefined;
    const next = handle.waiters.shift();
    if (next !== undefined) {
      // The key passes directly to the next waiter: `held` stays true in between.
      next();
      return;
    }
    handle.held = false;
    const found = this.#search(handle.key);
    assert(
      found.exact && this.#handles[found.index] === handle,
      "the memory lock table keeps every held key handle",
      { key: handle.key, index: found.index, size: this.#handles.length },
    );
    this.#handles.splice(found.index, 1);
  }

  #handleFor(key: Uint8Array): KeyHandle<L> {
    const found = this.#search(key);
    if (found.exact) return this.#handles[found.index]!;
    if (this.#handles.length >= this.#maxKeys) {
      throw new MemoryLockTableFullError(this.#maxKeys);
    }
    const handle: KeyHandle<L> = { key: key.slice(), held: false, waiters: [], lock: undefined };
    this.#handles.splice(found.index, 0, handle);
    return handle;
  }

  /** Index of the first handle with key >= `key`, and whether it equals `key`. */
  #search(key: Uint8Array): { index: number; exact: boolean } {
    let low = 0;
    let high = this.#handles.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (compareBytes(this.#handles[middle]!.key, key) < 0) low = middle + 1;
      else high = middle;
    }
    const exact = low < this.#handles.length &&
      compareBytes(this.#handles[low]!.key, key) === 0;
    return { index: low, exact };
  }
}
