/**
 * The expected failures of MVCC reads and transaction actions (TiKV `mvcc::ErrorInner`), as
 * plain values with a stable `kind` and structured fields, and their conversion to kvproto's
 * `KeyError` in the shapes TiKV's `extract_key_error` produces. Keys in errors are raw user
 * keys, as the client sent them.
 *
 * Corrupt data (a record that does not decode, a missing default-CF value) is not here: it is
 * a bug or a broken disk, and throws.
 *
 * @module
 */

import { kvrpcpb } from "../../proto/mod.ts";
import { displayRawKey } from "../txn_types/key.ts";
import type { Assertion } from "../txn_types/mutation.ts";
import type { TimeStamp } from "../txn_types/timestamp.ts";

/** Why a write conflicted (kvproto `WriteConflict.Reason`). */
export type WriteConflictReason =
  | "Unknown"
  | "Optimistic"
  | "PessimisticRetry"
  | "SelfRolledBack"
  | "RcCheckTs"
  | "LazyUniquenessCheck"
  | "NotLockedKeyConflict";

/** Why a pessimistic lock was not where a prewrite or commit expected it. */
export type PessimisticLockNotFoundReason =
  | "LockTsMismatch"
  | "LockMissingAmendFail"
  | "LockForUpdateTsMismatch"
  | "NonLockKeyConflict";

/** Every expected failure of the MVCC layer and the transaction actions. */
export type MvccError =
  /** A lock of another transaction is in the way: back off, resolve it, retry. */
  | { kind: "KeyIsLocked"; lockInfo: kvrpcpb.ILockInfo }
  | {
    kind: "WriteConflict";
    startTs: TimeStamp;
    conflictStartTs: TimeStamp;
    conflictCommitTs: TimeStamp;
    key: Uint8Array;
    primary: Uint8Array;
    reason: WriteConflictReason;
  }
  | { kind: "AlreadyExist"; key: Uint8Array; existingStartTs: TimeStamp }
  | {
    kind: "Deadlock";
    startTs: TimeStamp;
    lockTs: TimeStamp;
    lockKey: Uint8Array;
    deadlockKeyHash: bigint;
    deadlockKey: Uint8Array;
    /** The cycle of waits, in kvproto's `deadlock.WaitForEntry` shape (may be empty). */
    waitChain?: readonly {
      txn: bigint;
      waitForTxn: bigint;
      keyHash: bigint;
      key: Uint8Array;
      resourceGroupTag: Uint8Array;
    }[];
  }
  /** check_txn_status found neither lock nor commit nor rollback of the primary. */
  | { kind: "TxnNotFound"; startTs: TimeStamp; key: Uint8Array }
  /** Commit found no lock of the transaction (rolled back, or never prewritten). */
  | { kind: "TxnLockNotFound"; startTs: TimeStamp; commitTs: TimeStamp; key: Uint8Array }
  | {
    kind: "CommitTsExpired";
    startTs: TimeStamp;
    attemptedCommitTs: TimeStamp;
    key: Uint8Array;
    minCommitTs: TimeStamp;
  }
  | {
    kind: "CommitTsTooLarge";
    startTs: TimeStamp;
    minCommitTs: TimeStamp;
    maxCommitTs: TimeStamp;
  }
  | {
    kind: "AssertionFailed";
    startTs: TimeStamp;
    key: Uint8Array;
    assertion: Assertion;
    existingStartTs: TimeStamp;
    existingCommitTs: TimeStamp;
  }
  | {
    kind: "PessimisticLockNotFound";
    startTs: TimeStamp;
    key: Uint8Array;
    reason: PessimisticLockNotFoundReason;
  }
  | { kind: "PessimisticLockRolledBack"; startTs: TimeStamp; key: Uint8Array }
  /** Rollback or a pessimistic action found the transaction already committed. */
  | { kind: "Committed"; startTs: TimeStamp; commitTs: TimeStamp; key: Uint8Array }
  /** A lock of the right transaction but the wrong kind (pessimistic vs prewritten). */
  | { kind: "LockTypeNotMatch"; startTs: TimeStamp; key: Uint8Array; pessimistic: boolean }
  /** check_txn_status was sent to a key whose lock is not the primary's. */
  | { kind: "PrimaryMismatch"; lockInfo: kvrpcpb.ILockInfo }
  /** A request no correct client sends (TiKV `Other`), e.g. CheckNotExists in a pessimistic prewrite. */
  | { kind: "InvalidRequest"; message: string };

/** The `kind`s of {@linkcode MvccError}. */
export type MvccErrorKind = MvccError["kind"];

/** A result of a read or an action: a value, or an expected failure. */
export type MvccResult<T> = { ok: true; value: T } | { ok: false; error: MvccError };

/** A successful result. */
export function ok<T>(value: T): { ok: true; value: T } {
  return { ok: true, value };
}

/** A failed result. */
export function err(error: MvccError): { ok: false; error: MvccError } {
  return { ok: false, error };
}

const key = (raw: Uint8Array | null | undefined) => displayRawKey(raw ?? new Uint8Array());

/**
 * A message naming the thing that failed, e.g.
 * `Cannot commit key "k1" of txn 10 at 20: lock not found`.
 */
export function describeMvccError(error: MvccError): string {
  switch (error.kind) {
    case "KeyIsLocked": {
      const info = error.lockInfo;
      return `Key ${key(info.key)} is locked by txn ${info.lockVersion ?? 0n} ` +
        `(primary ${key(info.primaryLock)}, ttl ${info.lockTtl ?? 0n}ms)`;
    }
    case "WriteConflict":
      if (error.reason === "SelfRolledBack") {
        return `Write conflict on key ${key(error.key)}: txn ${error.startTs} was rolled back ` +
          `(primary ${key(error.primary)}, reason SelfRolledBack)`;
      }
      return `Write conflict on key ${key(error.key)}: txn ${error.startTs} conflicts with txn ` +
        `${error.conflictStartTs} committed at ${error.conflictCommitTs} ` +
        `(primary ${key(error.primary)}, reason ${error.reason})`;
    case "AlreadyExist":
      return `Key ${key(error.key)} already exists (written by txn ${error.existingStartTs})`;
    case "Deadlock":
      return `Deadlock: txn ${error.startTs} waits for txn ${error.lockTs} on key ` +
        `${key(error.lockKey)} (deadlock key hash ${error.deadlockKeyHash})`;
    case "TxnNotFound":
      return `Txn ${error.startTs} not found on primary key ${key(error.key)}`;
    case "TxnLockNotFound":
      return `Cannot commit key ${key(error.key)} of txn ${error.startTs} at ${error.commitTs}: ` +
        `lock not found`;
    case "CommitTsExpired":
      return `Cannot commit key ${key(error.key)} of txn ${error.startTs} at ` +
        `${error.attemptedCommitTs}: min_commit_ts is ${error.minCommitTs}`;
    case "CommitTsTooLarge":
      return `Txn ${error.startTs}: min_commit_ts ${error.minCommitTs} exceeds max_commit_ts ` +
        `${error.maxCommitTs}`;
    case "AssertionFailed":
      return `Assertion ${error.assertion} failed on key ${key(error.key)} for txn ` +
        `${error.startTs} (existing start_ts ${error.existingStartTs}, commit_ts ` +
        `${error.existingCommitTs})`;
    case "PessimisticLockNotFound":
      return `Pessimistic lock of txn ${error.startTs} not found on key ${key(error.key)} ` +
        `(${error.reason})`;
    case "PessimisticLockRolledBack":
      return `Pessimistic lock of txn ${error.startTs} on key ${key(error.key)} was rolled back`;
    case "Committed":
      return `Txn ${error.startTs} is already committed at ${error.commitTs} (key ` +
        `${key(error.key)})`;
    case "LockTypeNotMatch":
      return `Lock of txn ${error.startTs} on key ${key(error.key)} is ` +
        `${error.pessimistic ? "" : "not "}pessimistic, which this request did not expect`;
    case "PrimaryMismatch":
      return `Key ${key(error.lockInfo.key)} is not the primary of txn ` +
        `${error.lockInfo.lockVersion ?? 0n} (primary is ${key(error.lockInfo.primaryLock)})`;
    case "InvalidRequest":
      return `Invalid request: ${error.message}`;
  }
}

/**
 * The kvproto `KeyError` for `error`, as TiKV's `extract_key_error` builds it: the typed field
 * where kvproto has one (with `retryable` also set for write conflicts and missing locks, for
 * older clients), `abort` with the message otherwise.
 */
export function mvccErrorToKeyError(error: MvccError): kvrpcpb.IKeyError {
  switch (error.kind) {
    case "KeyIsLocked":
      return { locked: error.lockInfo };
    case "WriteConflict":
      return {
        conflict: {
          startTs: error.startTs,
          conflictTs: error.conflictStartTs,
          conflictCommitTs: error.conflictCommitTs,
          key: error.key,
          primary: error.primary,
          reason: kvrpcpb.WriteConflict.Reason[error.reason],
        },
        retryable: describeMvccError(error),
      };
    case "AlreadyExist":
      return { alreadyExist: { key: error.key } };
    case "TxnLockNotFound":
      return { retryable: describeMvccError(error), txnLockNotFound: { key: error.key } };
    case "TxnNotFound":
      return { txnNotFound: { startTs: error.startTs, primaryKey: error.key } };
    case "Deadlock":
      return {
        deadlock: {
          lockTs: error.lockTs,
          lockKey: error.lockKey,
          deadlockKeyHash: error.deadlockKeyHash,
          deadlockKey: error.deadlockKey,
          waitChain: (error.waitChain ?? []).map((entry) => ({ ...entry })),
        },
      };
    case "CommitTsExpired":
      return {
        commitTsExpired: {
          startTs: error.startTs,
          attemptedCommitTs: error.attemptedCommitTs,
          key: error.key,
          minCommitTs: error.minCommitTs,
        },
      };
    case "CommitTsTooLarge":
      return { commitTsTooLarge: { commitTs: error.minCommitTs } };
    case "AssertionFailed":
      return {
        assertionFailed: {
          startTs: error.startTs,
          key: error.key,
          assertion: kvrpcpb.Assertion[error.assertion],
          existingStartTs: error.existingStartTs,
          existingCommitTs: error.existingCommitTs,
        },
      };
    case "PrimaryMismatch":
      return { primaryMismatch: { lockInfo: error.lockInfo } };
    case "PessimisticLockNotFound":
    case "PessimisticLockRolledBack":
    case "Committed":
    case "LockTypeNotMatch":
    case "InvalidRequest":
      return { abort: describeMvccError(error) };
  }
}
