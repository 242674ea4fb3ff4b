/**
 * kvproto's per-key errors (`kvrpcpb.KeyError`) as the client's values: a lock to resolve
 * (`locked`), or a `TxnError` to surface. Conversion happens here only, at the protocol edge
 * of the client.
 */
import { kvrpcpb } from "../../../proto/mod.ts";
import {
  AssertionFailedError,
  DeadlockError,
  describeKey,
  KeyAlreadyExistsError,
  KeyErrorUnknown,
  TxnAbortedError,
  type TxnError,
  WriteConflictError,
} from "./errors.ts";

const EMPTY = new Uint8Array(0);

/** A lock met by a request (kvproto `LockInfo`), as the lock resolver needs it. */
export interface LockInfo {
  key: Uint8Array;
  primary: Uint8Array;
  /** Start ts of the transaction holding the lock. */
  lockTs: bigint;
  ttlMs: number;
  txnSize: number;
  /** kvproto `Op` of the lock: Put, Del, Lock, PessimisticLock. */
  lockType: kvrpcpb.Op;
  lockForUpdateTs: bigint;
  useAsyncCommit: boolean;
  minCommitTs: bigint;
  secondaries: Uint8Array[];
}

/** The client's view of a kvproto `LockInfo`. */
export function lockOf(info: kvrpcpb.LockInfo.$Properties): LockInfo {
  return {
    key: info.key ?? EMPTY,
    primary: info.primaryLock ?? EMPTY,
    lockTs: info.lockVersion ?? 0n,
    ttlMs: Number(info.lockTtl ?? 0n),
    txnSize: Number(info.txnSize ?? 0n),
    lockType: info.lockType ?? kvrpcpb.Op.Put,
    lockForUpdateTs: info.lockForUpdateTs ?? 0n,
    useAsyncCommit: info.useAsyncCommit ?? false,
    minCommitTs: info.minCommitTs ?? 0n,
    secondaries: info.secondaries ?? [],
  };
}

/** The lock a key error reports, or null when it is another error. */
export function lockOfKeyError(error: kvrpcpb.KeyError.$Properties): LockInfo | null {
  return error.locked != null ? lockOf(error.locked) : null;
}

const WRITE_CONFLICT_REASONS = kvrpcpb.WriteConflict.Reason;

/**
 * The `TxnError` of a key error other than `locked` (which the caller resolves). `startTs` is
 * the caller's transaction, for errors that do not carry it.
 */
export function txnErrorOf(error: kvrpcpb.KeyError.$Properties, startTs: bigint): TxnError {
  if (error.conflict != null) {
    const conflict = error.conflict;
    if (conflict.reason === WRITE_CONFLICT_REASONS.SelfRolledBack) {
      return new TxnAbortedError(startTs, "rolled back by a lock resolver (SelfRolledBack)");
    }
    return new WriteConflictError({
      startTs: conflict.startTs ?? startTs,
      conflictStartTs: conflict.conflictTs ?? 0n,
      conflictCommitTs: conflict.conflictCommitTs ?? 0n,
      key: conflict.key ?? EMPTY,
      primary: conflict.primary ?? EMPTY,
      reason: WRITE_CONFLICT_REASONS[conflict.reason ?? 0] ?? "Unknown",
    });
  }
  if (error.alreadyExist != null) return new KeyAlreadyExistsError(error.alreadyExist.key ?? EMPTY);
  if (error.deadlock != null) {
    return new DeadlockError({
      lockTs: error.deadlock.lockTs ?? 0n,
      lockKey: error.deadlock.lockKey ?? EMPTY,
      deadlockKeyHash: error.deadlock.deadlockKeyHash ?? 0n,
    });
  }
  if (error.txnLockNotFound != null) {
    return new TxnAbortedError(
      startTs,
      `lock not found on key ${describeKey(error.txnLockNotFound.key ?? EMPTY)}`,
    );
  }
  if (error.txnNotFound != null) {
    return new TxnAbortedError(error.txnNotFound.startTs ?? startTs, "transaction not found");
  }
  if (error.assertionFailed != null) {
    const assertion = kvrpcpb.Assertion[error.assertionFailed.assertion ?? 0] ?? "Unknown";
    return new AssertionFailedError(error.assertionFailed.key ?? EMPTY, assertion);
  }
  if (error.commitTsExpired != null) {
    const expired = error.commitTsExpired;
    return new KeyErrorUnknown(
      `commit ts ${expired.attemptedCommitTs} of key ${describeKey(expired.key ?? EMPTY)} ` +
        `is below its min_commit_ts ${expired.minCommitTs}`,
      true,
    );
  }
  if (error.commitTsTooLarge != null) {
    return new KeyErrorUnknown(`commit ts too large: ${error.commitTsTooLarge.commitTs}`, true);
  }
  if (error.primaryMismatch != null) {
    return new KeyErrorUnknown("primary mismatch", false);
  }
  if (error.retryable) return new KeyErrorUnknown(`retryable: ${error.retryable}`, true);
  if (error.abort) return abortError(error.abort, startTs);
  return new KeyErrorUnknown("unknown key error", false);
}

/**
 * An `abort` string. TiKV reports "the transaction was rolled back" cases (PessimisticLock
 * RolledBack, lock of a rolled-back transaction) only as text; those become `TxnAbortedError`.
 */
function abortError(message: string, startTs: bigint): TxnError {
  if (/rolled ?back|LockNotFound|lock of txn \d+ not found/i.test(message)) {
    return new TxnAbortedError(startTs, message);
  }
  return new KeyErrorUnknown(`abort: ${message}`, false);
}
