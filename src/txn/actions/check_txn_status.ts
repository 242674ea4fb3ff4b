/**
 * CheckTxnStatus (TiKV `actions/check_txn_status.rs` and `commands/check_txn_status.rs`): a
 * client that met a lock asks the transaction's primary key what became of the transaction,
 * and may decide it: roll it back when its lock expired, or push its `min_commit_ts` so the
 * caller's read need not wait.
 *
 * The command runs with `txn.startTs` = the lock's start ts (`lock_ts`). On the primary key:
 *
 * - No lock of this transaction (none, or another transaction's): the write CF decides
 *   (Committed / RolledBack). With nothing there either: TxnNotFound, unless
 *   `rollbackIfNotExist`, which writes a protected rollback now (`LockNotExist`) so that a
 *   prewrite arriving late fails; when resolving a pessimistic lock nothing is written
 *   (`LockNotExistDoNothing`), the transaction may still be running.
 * - `verifyIsPrimary` and the lock names another primary: PrimaryMismatch, except a stale
 *   pessimistic lock met while resolving a prewrite lock, which is removed and the missing
 *   lock path above decides.
 * - An async-commit lock (unless `forceSyncCommit`): reported as is. Its fate is decided by
 *   CheckSecondaryLocks and ResolveLock, never by TTL here.
 * - A pessimistic lock: when it was taken with a conflict and the write CF already decides
 *   the transaction, it is stale and removed. When expired: removed (`PessimisticRollBack`)
 *   if resolving a pessimistic lock (the transaction may still pick another primary), else
 *   rolled back with a record (`TtlExpire`).
 * - A prewrite lock whose TTL expired: rolled back (`TtlExpire`).
 * - Otherwise the transaction is running. If the lock has a `min_commit_ts` (non-zero) and
 *   the caller reads at or above it, it is pushed to `max(callerStartTs + 1, currentTs)`; the
 *   result says `minCommitTsPushed` when the caller can now ignore this transaction's locks.
 *
 * TTL counts from the physical part of the start ts: expired when
 * `physical(lockTs) + ttlMs < physical(currentTs)`.
 *
 * @module
 */

import { kvrpcpb } from "../../../proto/mod.ts";
import { err, type MvccResult, ok } from "../../mvcc/errors.ts";
import type { MvccReader } from "../../mvcc/reader.ts";
import type { MvccTxn, ReleasedLock } from "../../mvcc/txn.ts";
import { bytesEqual } from "../../util/bytes.ts";
import type { Key } from "../../txn_types/key.ts";
import { isPessimisticLock, type Lock, lockToLockInfo } from "../../txn_types/lock.ts";
import { physicalMs, type TimeStamp, TS_MAX } from "../../txn_types/timestamp.ts";
import {
  checkTxnStatusMissingLock,
  loadLockSeeingPending,
  type MissingLockAction,
  rollbackLock,
  statusOfCommitRecord,
  type TxnStatus,
} from "./common.ts";

/** The arguments of CheckTxnStatus (kvproto `CheckTxnStatusRequest`, minus the lock ts). */
export interface CheckTxnStatusArgs {
  primaryKey: Key;
  /** Start ts of the reader that met the lock; `TS_MAX` for an autocommit point get, 0 for a writer. */
  callerStartTs: TimeStamp;
  /** The caller's current ts, against which the TTL is checked. */
  currentTs: TimeStamp;
  rollbackIfNotExist: boolean;
  /** Treat an async-commit lock as a 2PC one (the client gave up on async commit). */
  forceSyncCommit: boolean;
  /** The caller met a pessimistic lock (not a prewrite lock) of this transaction. */
  resolvingPessimisticLock: boolean;
  verifyIsPrimary: boolean;
}

/** The decided or observed status, and the lock this command removed, if any. */
export interface CheckTxnStatusResult {
  status: TxnStatus;
  released: ReleasedLock | null;
}

/**
 * Checks, and where the rules above say so decides, the status of transaction `txn.startTs`
 * on its primary key.
 *
 * @example
 * ```ts ignore
 * const txn = new MvccTxn(lockTs);
 * const result = checkTxnStatus(txn, reader, { primaryKey, callerStartTs, currentTs, ... });
 * // result.value.status.kind === "TtlExpire": the lock was rolled back; write txn.
 * ```
 */
export function checkTxnStatus(
  txn: MvccTxn,
  reader: MvccReader,
  args: CheckTxnStatusArgs,
): MvccResult<CheckTxnStatusResult> {
  // The command reads at these timestamps; max_ts must cover them so that an async-commit
  // prewrite racing with it picks a larger commit ts.
  for (const ts of [txn.startTs, args.currentTs, args.callerStartTs]) {
    if (ts !== TS_MAX) txn.observeReadTs(ts);
  }
  const lock = loadLockSeeingPending(txn, reader, args.primaryKey);
  if (lock === null || lock.startTs !== txn.startTs) {
    const status = checkTxnStatusMissingLock(txn, reader, {
      primaryKey: args.primaryKey,
      mismatchLock: lock,
      action: missingLockAction(args.rollbackIfNotExist),
      resolvingPessimisticLock: args.resolvingPessimisticLock,
    });
    return status.ok ? ok({ status: status.value, released: null }) : status;
  }
  return checkTxnStatusLockExists(txn, reader, { ...args, lock });
}

/** TiKV `MissingLockAction::rollback(rollback_if_not_exist)`. */
function missingLockAction(rollbackIfNotExist: boolean): MissingLockAction {
  return rollbackIfNotExist ? "ProtectedRollback" : "ReturnError";
}

/** Whether `lock` outlived its TTL at `currentTs`. */
export function isLockExpired(lock: Lock, currentTs: TimeStamp): boolean {
  return physicalMs(lock.startTs) + lock.ttlMs < physicalMs(currentTs);
}

function checkTxnStatusLockExists(
  txn: MvccTxn,
  reader: MvccReader,
  args: CheckTxnStatusArgs & { lock: Lock },
): MvccResult<CheckTxnStatusResult> {
  const { primaryKey, lock } = args;
  if (args.verifyIsPrimary && !bytesEqual(primaryKey.toRaw(), lock.primary)) {
    return primaryMismatch(txn, reader, args);
  }
  if (lock.useAsyncCommit && !args.forceSyncCommit) {
    return ok({ status: { kind: "Uncommitted", lock, minCommitTsPushed: false }, released: null });
  }
  if (isPessimisticLock(lock)) {
    const decided = checkPessimisticPrimaryLock(txn, reader, args);
    if (decided !== null) return ok(decided);
  } else if (isLockExpired(lock, args.currentTs)) {
    const released = rollbackLock(txn, reader, { key: primaryKey, lock, collapseRollback: true });
    return ok({ status: { kind: "TtlExpire" }, released });
  }
  return ok({ status: pushMinCommitTs(txn, args), released: null });
}

/**
 * The lock on the key is this transaction's but names another primary. A pessimistic lock met
 * while resolving a prewrite lock is stale (the prewrite's primary is authoritative): remove
 * it and decide as if it were missing. Anything else: tell the client the real primary.
 */
function primaryMismatch(
  txn: MvccTxn,
  reader: MvccReader,
  args: CheckTxnStatusArgs & { lock: Lock },
): MvccResult<CheckTxnStatusResult> {
  const { primaryKey, lock } = args;
  if (args.resolvingPessimisticLock || !isPessimisticLock(lock)) {
    return err({ kind: "PrimaryMismatch", lockInfo: lockToLockInfo(lock, primaryKey.toRaw()) });
  }
  const status = checkTxnStatusMissingLock(txn, reader, {
    primaryKey,
    mismatchLock: null,
    action: missingLockAction(args.rollbackIfNotExist),
    resolvingPessimisticLock: false,
  });
  if (!status.ok) return status;
  const released = txn.unlockKey(primaryKey, true, 0n);
  return ok({ status: status.value, released });
}

/** The decision on a pessimistic primary lock, or null when the transaction is still alive. */
function checkPessimisticPrimaryLock(
  txn: MvccTxn,
  reader: MvccReader,
  args: CheckTxnStatusArgs & { lock: Lock },
): CheckTxnStatusResult | null {
  const { primaryKey, lock } = args;
  if (lock.isLockedWithConflict) {
    // A lock taken despite a newer version may be a leftover of a transaction that has since
    // committed or rolled back elsewhere: the write CF is checked first (tidb#43540).
    const decided = statusOfCommitRecord(reader.getTxnCommitRecord(primaryKey, txn.startTs));
    if (decided !== null) {
      return { status: decided, released: txn.unlockKey(primaryKey, true, 0n) };
    }
  }
  if (!isLockExpired(lock, args.currentTs)) return null;
  if (args.resolvingPessimisticLock) {
    return {
      status: { kind: "PessimisticRollBack" },
      released: txn.unlockKey(primaryKey, true, 0n),
    };
  }
  const released = rollbackLock(txn, reader, { key: primaryKey, lock, collapseRollback: true });
  return { status: { kind: "TtlExpire" }, released };
}

/** Pushes the lock's min_commit_ts past the caller's read when allowed (see module header). */
function pushMinCommitTs(txn: MvccTxn, args: CheckTxnStatusArgs & { lock: Lock }): TxnStatus {
  let lock = args.lock;
  const { callerStartTs, currentTs } = args;
  // A zero min_commit_ts marks a lock of a client that does not expect it to move.
  if (lock.minCommitTs !== 0n && callerStartTs !== TS_MAX && callerStartTs >= lock.minCommitTs) {
    const pushed = callerStartTs + 1n < currentTs ? currentTs : callerStartTs + 1n;
    lock = { ...lock, minCommitTs: pushed };
    txn.putLock(args.primaryKey, lock, false);
  }
  // An autocommit point get (TS_MAX) may ignore the lock: the transaction is not committed.
  const minCommitTsPushed = (callerStartTs !== 0n && lock.minCommitTs > callerStartTs) ||
    callerStartTs === TS_MAX;
  return { kind: "Uncommitted", lock, minCommitTsPushed };
}

/** The fields of kvproto `CheckTxnStatusResponse` that carry `status`. */
export interface CheckTxnStatusResponseFields {
  lockTtl: bigint;
  commitVersion: TimeStamp;
  action: kvrpcpb.Action;
  lockInfo: kvrpcpb.ILockInfo | null;
}

/**
 * `status` as kvproto's response carries it (TiKV `server/service/kv.rs`): locked when
 * `lockTtl > 0`, committed when `commitVersion > 0`, rolled back when both are 0; `action`
 * says what this request did.
 */
export function txnStatusToResponse(
  status: TxnStatus,
  primaryKey: Key,
): CheckTxnStatusResponseFields {
  const none = { lockTtl: 0n, commitVersion: 0n, lockInfo: null };
  switch (status.kind) {
    case "Uncommitted":
      return {
        lockTtl: status.lock.ttlMs,
        commitVersion: 0n,
        lockInfo: lockToLockInfo(status.lock, primaryKey.toRaw()),
        action: status.minCommitTsPushed
          ? kvrpcpb.Action.MinCommitTSPushed
          : kvrpcpb.Action.NoAction,
      };
    case "Committed":
      return { ...none, commitVersion: status.commitTs, action: kvrpcpb.Action.NoAction };
    case "RolledBack":
      return { ...none, action: kvrpcpb.Action.NoAction };
    case "TtlExpire":
      return { ...none, action: kvrpcpb.Action.TTLExpireRollback };
    case "LockNotExist":
      return { ...none, action: kvrpcpb.Action.LockNotExistRollback };
    case "PessimisticRollBack":
      return { ...none, action: kvrpcpb.Action.TTLExpirePessimisticRollback };
    case "LockNotExistDoNothing":
      return { ...none, action: kvrpcpb.Action.LockNotExistDoNothing };
  }
}
