/**
 * `MvccTxn`: the modifications one transactional command makes, buffered (TiKV
 * `mvcc::MvccTxn`). Actions only append to it; the scheduler hands the whole list, as the
 * store's shared `Modification` type, to the write path as ONE atomic write (src/storage: the
 * group commit today, a Raft proposal when clustered), so a command's effect is all or nothing.
 *
 * Besides the modifications it records what the command's caller must act on afterwards:
 * - `newLocks`: locks this command created (kvproto `LockInfo`), for lock-wait bookkeeping;
 * - `releasedLocks`: locks it removed (commit, rollback), to wake waiters;
 * - `guardedLocks`: async-commit / 1PC locks the caller must publish in the concurrency
 *   manager's in-memory lock table, so readers that raise max_ts after this command read it
 *   still see the lock until the batch is applied (TiKV keeps these as `KeyHandleGuard`s).
 *   The caller's duty, in order: read max_ts, run the action with it, publish `guardedLocks`,
 *   all synchronously (no await in between); release them after the batch is applied.
 * - `observedReadTs`: the caller must raise max_ts to it (uniqueness checks are reads);
 * - `locksForOnePc`: prewritten locks of a one-phase commit, turned into write records by
 *   `commitOnePcLocks` in src/txn/actions/prewrite.ts before the batch is written.
 *
 * Cost: every method is O(1) in the number of modifications buffered (amortized; keys are
 * hashed, never compared against the whole buffer), so a command over N keys is O(N). The
 * pending lock of a key is found through an index from the key to its latest lock-CF
 * modification, kept as modifications are pushed.
 *
 * @module
 */

import type { WriteBatch } from "../engine/types.ts";
import type { DeleteModification, Modification, PutModification } from "../storage/modification.ts";
import type { Key } from "../txn_types/key.ts";
import { bytesEqual } from "../util/bytes.ts";
import { encodeLock, type Lock, lockToLockInfo } from "../txn_types/lock.ts";
import { assertTs, type TimeStamp } from "../txn_types/timestamp.ts";
import { encodeWrite, type Write } from "../txn_types/write.ts";
import type { kvrpcpb } from "../../proto/mod.ts";

/**
 * One buffered engine operation of a transaction command (the shared `Modification`, of which
 * a command only puts and deletes keys); `key` is the full engine key of its column family.
 */
export type TxnModification = PutModification | DeleteModification;
export type { Modification };

/** A lock the command removed. */
export interface ReleasedLock {
  key: Key;
  startTs: TimeStamp;
  /** 0 for a rollback. */
  commitTs: TimeStamp;
  pessimistic: boolean;
}

/** A lock of a one-phase commit, awaiting its commit ts. */
export interface OnePcLock {
  key: Key;
  lock: Lock;
  /** A pessimistic lock sits on the key in the engine and must be deleted. */
  removePessimisticLock: boolean;
}

/** The modifications of one command, for one transaction (`startTs`). */
export class MvccTxn {
  readonly startTs: TimeStamp;
  readonly modifications: TxnModification[] = [];
  readonly newLocks: kvrpcpb.ILockInfo[] = [];
  readonly releasedLocks: ReleasedLock[] = [];
  readonly guardedLocks: { key: Key; lock: Lock }[] = [];
  readonly locksForOnePc: OnePcLock[] = [];
  /** The latest lock-CF modification of each key, by `lockKeyHash` of the encoded key. */
  readonly #pendingLocks = new Map<number, TxnModification[]>();
  #writeSizeBytes = 0;
  #observedReadTs: TimeStamp = 0n;

  constructor(startTs: TimeStamp) {
    assertTs(startTs, "txn startTs");
    this.startTs = startTs;
  }

  /** Bytes of keys and values buffered (TiKV `write_size`), for batching decisions. */
  get writeSizeBytes(): number {
    return this.#writeSizeBytes;
  }

  /**
   * The largest ts at which this command read on behalf of the transaction (an Insert or
   * CheckNotExists reads at start ts). The caller must raise the concurrency manager's max_ts
   * to at least this, as for any read; 0 when the command made no such read.
   */
  get observedReadTs(): TimeStamp {
    return this.#observedReadTs;
  }

  /** Records a read at `ts` (see {@linkcode observedReadTs}). */
  observeReadTs(ts: TimeStamp): void {
    assertTs(ts);
    if (ts > this.#observedReadTs) this.#observedReadTs = ts;
  }

  /**
   * Drops everything buffered (TiKV `clear`): used when a retried prewrite finds the
   * transaction already committed, so the command must change nothing.
   */
  clear(): void {
    this.modifications.length = 0;
    this.newLocks.length = 0;
    this.releasedLocks.length = 0;
    this.guardedLocks.length = 0;
    this.locksForOnePc.length = 0;
    this.#pendingLocks.clear();
    this.#writeSizeBytes = 0;
  }

  /** Whether the command changes nothing. */
  isEmpty(): boolean {
    return this.modifications.length === 0 && this.locksForOnePc.length === 0;
  }

  #push(modification: TxnModification): void {
    this.#writeSizeBytes += modification.key.length +
      (modification.type === "put" ? modification.value.length : 0);
    this.modifications.push(modification);
    if (modification.cf === "lock") this.#indexPendingLock(modification);
  }

  /** Makes `modification` the pending lock write of its key (replacing an earlier one). */
  #indexPendingLock(modification: TxnModification): void {
    const hash = lockKeyHash(modification.key);
    const bucket = this.#pendingLocks.get(hash);
    if (bucket === undefined) {
      this.#pendingLocks.set(hash, [modification]);
      return;
    }
    const index = bucket.findIndex((entry) => bytesEqual(entry.key, modification.key));
    if (index < 0) bucket.push(modification);
    else bucket[index] = modification;
  }

  /** Writes `lock` on `key`; `isNew` when no lock of this transaction was there before. */
  putLock(key: Key, lock: Lock, isNew: boolean): void {
    if (isNew) this.newLocks.push(lockToLockInfo(lock, key.toRaw()));
    this.#push({ type: "put", cf: "lock", key: key.encoded, value: encodeLock(lock) });
  }

  /** Keeps a 1PC lock aside; it becomes a write record at the commit ts. */
  putLockForOnePc(key: Key, lock: Lock, removePessimisticLock: boolean): void {
    this.locksForOnePc.push({ key, lock, removePessimisticLock });
  }

  /** Asks the caller to hold `lock` in the in-memory lock table (see the module header). */
  guardLock(key: Key, lock: Lock): void {
    this.guardedLocks.push({ key, lock });
  }

  /** Deletes the lock on `key` and records it as released. */
  unlockKey(key: Key, pessimistic: boolean, commitTs: TimeStamp): ReleasedLock {
    const released = { key, startTs: this.startTs, commitTs, pessimistic };
    this.releasedLocks.push(released);
    this.#push({ type: "delete", cf: "lock", key: key.encoded });
    return released;
  }

  /** Puts a long value in the default CF at `startTs`. */
  putValue(key: Key, startTs: TimeStamp, value: Uint8Array): void {
    this.#push({ type: "put", cf: "default", key: key.appendTs(startTs), value });
  }

  /** Deletes the default-CF value at `startTs`. */
  deleteValue(key: Key, startTs: TimeStamp): void {
    this.#push({ type: "delete", cf: "default", key: key.appendTs(startTs) });
  }

  /** Puts a write record at `commitTs` (a rollback: at its start ts). */
  putWrite(key: Key, commitTs: TimeStamp, write: Write): void {
    this.#push({
      type: "put",
      cf: "write",
      key: key.appendTs(commitTs),
      value: encodeWrite(write),
    });
  }

  /** Deletes the write record at `commitTs`. */
  deleteWrite(key: Key, commitTs: TimeStamp): void {
    this.#push({ type: "delete", cf: "write", key: key.appendTs(commitTs) });
  }

  /**
   * Rolling back this transaction on a key locked by another one: when the rollback must be
   * protected and the other lock is an async-commit lock that could still commit at or below
   * this start ts, remember the rollback on that lock (its `rollbackTs`), so its commit cannot
   * overwrite the rollback record (TiKV `mark_rollback_on_mismatching_lock`).
   */
  markRollbackOnMismatchingLock(key: Key, lock: Lock, isProtected: boolean): void {
    if (lock.startTs === this.startTs) {
      throw new Error(`markRollbackOnMismatchingLock on this txn's own lock at ${key}`);
    }
    if (!isProtected || this.startTs < lock.minCommitTs || !lock.useAsyncCommit) return;
    this.putLock(key, { ...lock, rollbackTs: [...lock.rollbackTs, this.startTs] }, false);
  }

  /** The pending lock write of `key` in this buffer: bytes, "deleted", or null if untouched. */
  pendingLock(key: Key): Uint8Array | "deleted" | null {
    const bucket = this.#pendingLocks.get(lockKeyHash(key.encoded));
    if (bucket === undefined) return null;
    // A bucket holds the keys of one 32-bit hash: almost always one.
    for (const modification of bucket) {
      if (!bytesEqual(modification.key, key.encoded)) continue;
      return modification.type === "put" ? modification.value : "deleted";
    }
    return null;
  }

  /**
   * What the command writes, in order: the list the scheduler hands to the write path as it
   * is (no copy, no conversion). The 1PC locks must have been committed (turned into write
   * records by `commitOnePcLocks`) first.
   */
  modificationsToWrite(): readonly TxnModification[] {
    if (this.locksForOnePc.length > 0) {
      throw new Error(`${this.locksForOnePc.length} 1PC locks not yet committed`);
    }
    return this.modifications;
  }

  /** Adds every modification to `batch`, in order (tests and tools; see `modificationsToWrite`). */
  applyTo(batch: WriteBatch): void {
    for (const modification of this.modificationsToWrite()) {
      if (modification.type === "put") {
        batch.put(modification.cf, modification.key, modification.value);
      } else {
        batch.delete(modification.cf, modification.key);
      }
    }
  }
}

/**
 * FNV-1a of an encoded key: the pending-lock index's bucket (keys in one bucket are compared).
 * Exported for the test that makes two keys collide.
 */
export function lockKeyHash(encoded: Uint8Array): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < encoded.length; i++) hash = Math.imul(hash ^ encoded[i]!, 0x01000193);
  return hash >>> 0;
}
