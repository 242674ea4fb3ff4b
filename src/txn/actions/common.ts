/**
 * Pieces shared by several transaction actions (TiKV keeps them in `actions/common.rs` and
 * `actions/check_txn_status.rs`): the status of a transaction, rolling back a lock, writing
 * the rollback record of a key whose lock is missing, and the last-change pointer of Lock
 * records.
 *
 * Rollback records and protection (Percolator, as TiKV refines it): a rollback of transaction
 * T on key k is a write record `k@T.startTs` of type Rollback. It stops a late prewrite of T
 * on k. A *protected* rollback (short value "p") is never collapsed; the primary key's rollback
 * is always protected, because that record is what decides the transaction. An unprotected
 * rollback may be deleted ("collapsed") by the next rollback of the same key, to keep runs of
 * rollbacks short. When another transaction already committed on k with commit ts == T.startTs
 * the two records would share one key: the commit record is kept and marked
 * `hasOverlappedRollback` instead (only when protection is needed).
 *
 * @module
 */

import type { MvccTxn, ReleasedLock } from "../../mvcc/txn.ts";
import { err, type MvccResult, ok } from "../../mvcc/errors.ts";
import type { MvccReader, TxnCommitRecord } from "../../mvcc/reader.ts";
import { bytesEqual } from "../../util/bytes.ts";
import type { Key } from "../../txn_types/key.ts";
import { decodeLock, isPessimisticTxn, type Lock } from "../../txn_types/lock.ts";
import type { LastChange } from "../../txn_types/last_change.ts";
import { prevTs, type TimeStamp } from "../../txn_types/timestamp.ts";
import { isProtectedRollback, newRollback, type Write } from "../../txn_types/write.ts";

/** The state of a transaction as lock resolution sees it (TiKV `TxnStatus`). */
export type TxnStatus =
  /** It was rolled back before. */
  | { kind: "RolledBack" }
  /** It is rolled back now because its lock's TTL expired. */
  | { kind: "TtlExpire" }
  /** It is rolled back now because its lock was missing. */
  | { kind: "LockNotExist" }
  /** It is still running; its lock, and whether min_commit_ts was pushed now. */
  | { kind: "Uncommitted"; lock: Lock; minCommitTsPushed: boolean }
  | { kind: "Committed"; commitTs: TimeStamp }
  /** Its primary's pessimistic lock is rolled back now. */
  | { kind: "PessimisticRollBack" }
  /** The lock is missing and nothing was done (resolving a pessimistic lock). */
  | { kind: "LockNotExistDoNothing" };

/** What to do when the lock of the transaction is missing (TiKV `MissingLockAction`). */
export type MissingLockAction = "Rollback" | "ProtectedRollback" | "ReturnError";

/** `ProtectedRollback` when the rollback must be protected, else `Rollback`. */
export function rollbackAction(protect: boolean): MissingLockAction {
  return protect ? "ProtectedRollback" : "Rollback";
}

/**
 * The lock on `key` as this command sees it: a lock written or deleted earlier in the same
 * command wins over the snapshot (resolve_lock may touch one key several times).
 */
export function loadLockSeeingPending(txn: MvccTxn, reader: MvccReader, key: Key): Lock | null {
  const pending = txn.pendingLock(key);
  if (pending === "deleted") return null;
  if (pending !== null) return decodeLock(pending);
  return reader.loadLock(key);
}

/** The status a commit record gives, or null when there is none. */
export function statusOfCommitRecord(record: TxnCommitRecord): TxnStatus | null {
  switch (record.kind) {
    case "SingleRecord":
      return record.write.writeType === "Rollback"
        ? { kind: "RolledBack" }
        : { kind: "Committed", commitTs: record.commitTs };
    case "OverlappedRollback":
      return { kind: "RolledBack" };
    case "None":
      return null;
  }
}

/**
 * The write record that rolls back transaction `startTs` on a key (TiKV `make_rollback`): a
 * Rollback record, or, when another transaction's commit record sits at this very ts, that
 * record marked as also standing for the rollback (only if protected; else nothing is needed,
 * returned as null).
 */
export function makeRollback(
  startTs: TimeStamp,
  isProtected: boolean,
  overlappedWrite: { write: Write; gcFence: TimeStamp } | null,
): Write | null {
  if (overlappedWrite === null) return newRollback(startTs, isProtected);
  if (overlappedWrite.write.startTs >= startTs) {
    throw new Error(
      `overlapped write of txn ${overlappedWrite.write.startTs} not older than ${startTs}`,
    );
  }
  if (!isProtected) return null;
  return {
    ...overlappedWrite.write,
    hasOverlappedRollback: true,
    gcFence: overlappedWrite.gcFence,
  };
}

/**
 * Deletes the newest rollback record at or below this transaction's start ts when it is not
 * protected (TiKV `collapse_prev_rollback`).
 */
export function collapsePrevRollback(txn: MvccTxn, reader: MvccReader, key: Key): void {
  const found = reader.seekWrite(key, txn.startTs);
  if (found !== null && found.write.writeType === "Rollback" && !isProtectedRollback(found.write)) {
    txn.deleteWrite(key, found.commitTs);
  }
}

/**
 * Rolls back this transaction's `lock` on `key` (TiKV `rollback_lock`): deletes its
 * default-CF value, writes the rollback record (protected on the primary), optionally
 * collapses an older unprotected rollback, and removes the lock. When the write CF already
 * holds this transaction's rollback, only the lock is removed. Finding its commit record
 * instead is impossible while its lock is there, and throws.
 */
export function rollbackLock(
  txn: MvccTxn,
  reader: MvccReader,
  options: { key: Key; lock: Lock; collapseRollback: boolean },
): ReleasedLock {
  const { key, lock } = options;
  if (lock.startTs !== txn.startTs) throw new Error(`rollbackLock of another txn's lock on ${key}`);
  const record = reader.getTxnCommitRecord(key, txn.startTs);
  const pessimistic = isPessimisticTxn(lock);
  if (record.kind === "SingleRecord" && record.write.writeType !== "Rollback") {
    throw new Error(
      `txn ${txn.startTs} has both a lock and a commit record at ${record.commitTs} on ${key}`,
    );
  }
  if (record.kind !== "None") return txn.unlockKey(key, pessimistic, 0n);
  if (lock.shortValue === null && lock.lockType === "Put") txn.deleteValue(key, lock.startTs);
  const isProtected = bytesEqual(key.toRaw(), lock.primary) || lock.generation > 0n;
  const write = makeRollback(txn.startTs, isProtected, record.overlappedWrite);
  if (write !== null) txn.putWrite(key, txn.startTs, write);
  if (options.collapseRollback) collapsePrevRollback(txn, reader, key);
  return txn.unlockKey(key, pessimistic, 0n);
}

/**
 * The status of this transaction on `primaryKey` when its lock is not there (TiKV
 * `check_txn_status_missing_lock`): committed or rolled back per the write CF; otherwise,
 * per `action`, TxnNotFound, or a rollback record is written now (`LockNotExist`), so that a
 * prewrite arriving late cannot succeed. `mismatchLock` is another transaction's lock found
 * on the key, on which a protected rollback is remembered (MvccTxn.markRollbackOnMismatchingLock).
 */
export function checkTxnStatusMissingLock(
  txn: MvccTxn,
  reader: MvccReader,
  options: {
    primaryKey: Key;
    mismatchLock: Lock | null;
    action: MissingLockAction;
    resolvingPessimisticLock: boolean;
  },
): MvccResult<TxnStatus> {
  const { primaryKey, action } = options;
  const record = reader.getTxnCommitRecord(primaryKey, txn.startTs);
  const decided = statusOfCommitRecord(record);
  if (decided !== null) return ok(decided);
  if (record.kind !== "None") throw new Error("unreachable: undecided commit record");
  if (action === "ReturnError") {
    return err({ kind: "TxnNotFound", startTs: txn.startTs, key: primaryKey.toRaw() });
  }
  if (options.resolvingPessimisticLock) return ok({ kind: "LockNotExistDoNothing" });
  const isProtected = action === "ProtectedRollback";
  if (!isProtected) collapsePrevRollback(txn, reader, primaryKey);
  if (options.mismatchLock !== null && record.overlappedWrite === null) {
    txn.markRollbackOnMismatchingLock(primaryKey, options.mismatchLock, isProtected);
  }
  const write = makeRollback(txn.startTs, isProtected, record.overlappedWrite);
  if (write !== null) txn.putWrite(primaryKey, txn.startTs, write);
  return ok({ kind: "LockNotExist" });
}

/**
 * The last change a new record on `key` should carry, given the newest existing record
 * `write` at `commitTs` (TiKV `next_last_change_info`). Put/Delete: that record itself.
 * Lock/Rollback: one further than that record's pointer; when it has none (Unknown), the
 * versions are walked to find it.
 */
export function nextLastChangeInfo(
  reader: MvccReader,
  options: { key: Key; write: Write; commitTs: TimeStamp },
): LastChange {
  const { key, write, commitTs } = options;
  if (write.writeType === "Put" || write.writeType === "Delete") {
    return { kind: "Exist", lastChangeTs: commitTs, estimatedVersionsToLastChange: 1n };
  }
  const last = write.lastChange;
  if (last.kind === "Exist") {
    return { ...last, estimatedVersionsToLastChange: last.estimatedVersionsToLastChange + 1n };
  }
  if (last.kind === "NotExist") return last;
  let versions = 1n;
  let found = commitTs === 0n ? null : reader.seekWrite(key, prevTs(commitTs));
  while (found !== null) {
    versions++;
    const type = found.write.writeType;
    if (type === "Put") {
      return {
        kind: "Exist",
        lastChangeTs: found.commitTs,
        estimatedVersionsToLastChange: versions,
      };
    }
    if (type === "Delete") return { kind: "NotExist" };
    if (found.commitTs === 0n) break;
    found = reader.seekWrite(key, prevTs(found.commitTs));
  }
  return { kind: "NotExist" };
}
