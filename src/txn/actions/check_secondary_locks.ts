/**
 * CheckSecondaryLocks (TiKV `commands/check_secondary_locks.rs`): recovery of an async-commit
 * transaction. An async-commit transaction is committed once every key is prewritten, so a
 * client that finds its primary lock expired asks each secondary key (the primary lists
 * them): is the prewrite lock still there?
 *
 * Per key, in order:
 * - This transaction's prewrite lock: reported (the key is "Locked").
 * - This transaction's pessimistic lock: the key was never prewritten, so the transaction can
 *   no longer commit. The lock is removed and a protected rollback written: RolledBack.
 *   (A pessimistic lock taken with a conflict is first checked against the write CF: if that
 *   decides the transaction, the lock is just stale and removed.)
 * - No lock of this transaction: the write CF decides. Committed: the commit ts, and the
 *   answer is Committed. A rollback record: RolledBack. Nothing at all: the prewrite never
 *   arrived; a *protected* rollback is written now so that it never can (and, when another
 *   async-commit transaction's lock sits on the key, remembered on that lock), RolledBack.
 *
 * The first key that is not Locked decides the whole answer and ends the scan; if every key
 * is Locked the client may commit the transaction at the largest min_commit_ts among all
 * locks (or roll it back, if it prefers) with ResolveLock.
 *
 * The command counts as a read at the start ts: the caller raises max_ts to it, so that a
 * commit of the transaction (at min_commit_ts > max_ts) cannot land on a rollback written
 * here.
 *
 * @module
 */

import type { kvrpcpb } from "../../../proto/mod.ts";
import { type MvccResult, ok } from "../../mvcc/errors.ts";
import type { MvccReader, TxnCommitRecord } from "../../mvcc/reader.ts";
import type { MvccTxn, ReleasedLock } from "../../mvcc/txn.ts";
import type { Key } from "../../txn_types/key.ts";
import { isPessimisticLock, type Lock, lockToLockInfo } from "../../txn_types/lock.ts";
import type { TimeStamp } from "../../txn_types/timestamp.ts";
import type { Write } from "../../txn_types/write.ts";
import { collapsePrevRollback, loadLockSeeingPending, makeRollback } from "./common.ts";
import { type KeySteps, runSteps } from "./steps.ts";

/** The answer of CheckSecondaryLocks (TiKV `SecondaryLocksStatus`). */
export type SecondaryLocksStatus =
  /** Every key is still locked by the transaction's prewrite; its locks, in key order given. */
  | { kind: "Locked"; locks: kvrpcpb.ILockInfo[] }
  | { kind: "Committed"; commitTs: TimeStamp }
  | { kind: "RolledBack" };

/** The status and the locks this command removed. */
export interface CheckSecondaryLocksResult {
  status: SecondaryLocksStatus;
  released: ReleasedLock[];
}

type KeyStatus =
  | { kind: "Locked"; lock: Lock }
  | { kind: "Committed"; commitTs: TimeStamp }
  | { kind: "RolledBack" };

/** Another transaction's commit record at this start ts (see `TxnCommitRecord`). */
type OverlappedWrite = { write: Write; gcFence: TimeStamp };

/** What one key says, and whether (and over what) a rollback record must be written. */
interface KeyCheck {
  status: KeyStatus;
  /** Non-null when a protected rollback must be written; what the write CF has at start ts. */
  rollbackOver: { overlappedWrite: OverlappedWrite | null } | null;
  released: ReleasedLock | null;
  mismatchLock: Lock | null;
}

/**
 * Checks the secondary `keys` of async-commit transaction `txn.startTs` (see the module
 * header). A protected rollback is written on the first key found unlocked and undecided.
 *
 * @example
 * ```ts ignore
 * const result = checkSecondaryLocks(new MvccTxn(startTs), reader, { keys: secondaries });
 * if (result.ok && result.value.status.kind === "Locked") // commit at max min_commit_ts
 * ```
 */
export function checkSecondaryLocks(
  txn: MvccTxn,
  reader: MvccReader,
  args: { keys: readonly Key[] },
): MvccResult<CheckSecondaryLocksResult> {
  return runSteps(checkSecondaryLocksSteps(txn, reader, args));
}

/** {@linkcode checkSecondaryLocks}, one step per key (see steps.ts). */
export function* checkSecondaryLocksSteps(
  txn: MvccTxn,
  reader: MvccReader,
  args: { keys: readonly Key[] },
): KeySteps<CheckSecondaryLocksResult> {
  txn.observeReadTs(txn.startTs);
  const locks: kvrpcpb.ILockInfo[] = [];
  const released: ReleasedLock[] = [];
  for (const key of args.keys) {
    const check = checkKey(txn, reader, key);
    if (check.released !== null) released.push(check.released);
    if (check.rollbackOver !== null) {
      writeProtectedRollback(txn, reader, key, {
        overlappedWrite: check.rollbackOver.overlappedWrite,
        mismatchLock: check.mismatchLock,
      });
    }
    switch (check.status.kind) {
      case "Locked":
        locks.push(lockToLockInfo(check.status.lock, key.toRaw()));
        yield;
        continue;
      case "Committed":
        return ok({ status: { kind: "Committed", commitTs: check.status.commitTs }, released });
      case "RolledBack":
        return ok({ status: { kind: "RolledBack" }, released });
    }
  }
  return ok({ status: { kind: "Locked", locks }, released });
}

function checkKey(txn: MvccTxn, reader: MvccReader, key: Key): KeyCheck {
  const lock = loadLockSeeingPending(txn, reader, key);
  if (lock === null || lock.startTs !== txn.startTs) {
    return { ...fromCommitRecord(reader.getTxnCommitRecord(key, txn.startTs)), mismatchLock: lock };
  }
  if (!isPessimisticLock(lock)) {
    return {
      status: { kind: "Locked", lock },
      rollbackOver: null,
      released: null,
      mismatchLock: null,
    };
  }
  const record = reader.getTxnCommitRecord(key, txn.startTs);
  const released = txn.unlockKey(key, true, 0n);
  if (lock.isLockedWithConflict) {
    const decided = fromCommitRecord(record);
    if (decided.rollbackOver === null) return { ...decided, released, mismatchLock: null };
  }
  if (record.kind !== "None") {
    // A commit or rollback record of ours beside our own pessimistic lock: impossible unless
    // the lock was taken with a conflict, handled above.
    throw new Error(`txn ${txn.startTs} on ${key}: pessimistic lock beside its own ${record.kind}`);
  }
  return {
    status: { kind: "RolledBack" },
    rollbackOver: { overlappedWrite: record.overlappedWrite },
    released,
    mismatchLock: null,
  };
}

/** The key's status from the write CF; a rollback is due only when nothing is recorded. */
function fromCommitRecord(record: TxnCommitRecord): Omit<KeyCheck, "mismatchLock"> {
  switch (record.kind) {
    case "SingleRecord":
      // A rollback found here is either protected already (another check) or the client's
      // own decision; it need not be written again.
      return {
        status: record.write.writeType === "Rollback"
          ? { kind: "RolledBack" }
          : { kind: "Committed", commitTs: record.commitTs },
        rollbackOver: null,
        released: null,
      };
    case "OverlappedRollback":
      return { status: { kind: "RolledBack" }, rollbackOver: null, released: null };
    case "None":
      return {
        status: { kind: "RolledBack" },
        rollbackOver: { overlappedWrite: record.overlappedWrite },
        released: null,
      };
  }
}

/**
 * The rollback must be protected: were it collapsed, a stale pessimistic lock request and
 * prewrite of this transaction could succeed on the key after all.
 */
function writeProtectedRollback(
  txn: MvccTxn,
  reader: MvccReader,
  key: Key,
  options: { overlappedWrite: OverlappedWrite | null; mismatchLock: Lock | null },
): void {
  if (options.mismatchLock !== null) {
    txn.markRollbackOnMismatchingLock(key, options.mismatchLock, true);
  }
  const write = makeRollback(txn.startTs, true, options.overlappedWrite);
  if (write === null) return;
  txn.putWrite(key, txn.startTs, write);
  collapsePrevRollback(txn, reader, key);
}

/** The fields of kvproto `CheckSecondaryLocksResponse` for `status`. */
export function secondaryLocksStatusToResponse(
  status: SecondaryLocksStatus,
): { locks: kvrpcpb.ILockInfo[]; commitTs: TimeStamp } {
  switch (status.kind) {
    case "Locked":
      return { locks: status.locks, commitTs: 0n };
    case "Committed":
      return { locks: [], commitTs: status.commitTs };
    case "RolledBack":
      return { locks: [], commitTs: 0n };
  }
}
