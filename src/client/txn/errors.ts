/**
 * Errors of the transactional client. Each is a `TxnError` with a stable `code` and the
 * structured fields of the kvproto `KeyError` it came from; `retriable` says whether running
 * the whole transaction again (new start ts) may succeed, which `TxnKV.withRetry` uses.
 *
 * | error                      | when                                                          | retriable |
 * | -------------------------- | ------------------------------------------------------------- | --------- |
 * | `WriteConflictError`       | another transaction committed a key after our start ts        | yes       |
 * | `DeadlockError`            | a pessimistic lock wait would close a cycle                    | yes       |
 * | `TxnAbortedError`          | the transaction was rolled back (by a lock resolver, TTL)     | yes       |
 * | `LockWaitTimeoutError`     | a pessimistic lock was not granted within the wait timeout    | yes       |
 * | `KeyAlreadyExistsError`    | `insert` of a key that has a value                            | no        |
 * | `AssertionFailedError`     | a mutation's existence assertion did not hold                 | no        |
 * | `CommitUndeterminedError`  | a request that may have committed it got no answer (below)    | no        |
 * | `TxnStateError`            | the transaction was used after commit or rollback             | no        |
 * | `KeyErrorUnknown`          | any other per-key error (`abort`, `retryable` strings, …)     | as stated |
 *
 * Region and transport failures stay `ClientError`s (`../errors.ts`).
 */
import { toHex } from "../../util/bytes.ts";

/** Stable codes of transactional errors. */
export type TxnErrorCode =
  | "WriteConflict"
  | "Deadlock"
  | "TxnAborted"
  | "LockWaitTimeout"
  | "KeyAlreadyExists"
  | "AssertionFailed"
  | "CommitUndetermined"
  | "TxnState"
  | "KeyError";

/** Any transactional failure. */
export class TxnError extends Error {
  constructor(
    readonly code: TxnErrorCode,
    message: string,
    readonly retriable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A key as text for messages: UTF-8 when printable, else hex. */
export function describeKey(key: Uint8Array): string {
  const printable = key.every((byte) => byte >= 0x20 && byte < 0x7f);
  return printable ? JSON.stringify(new TextDecoder().decode(key)) : `0x${toHex(key)}`;
}

/** Another transaction wrote `key` after this one's start ts (Percolator's write-write check). */
export class WriteConflictError extends TxnError {
  constructor(
    readonly details: {
      startTs: bigint;
      conflictStartTs: bigint;
      conflictCommitTs: bigint;
      key: Uint8Array;
      primary: Uint8Array;
      reason: string;
    },
  ) {
    super(
      "WriteConflict",
      `write conflict on key ${describeKey(details.key)}: txn ${details.startTs} met txn ` +
        `${details.conflictStartTs} committed at ${details.conflictCommitTs} (${details.reason})`,
      true,
    );
  }
}

/** Waiting for a pessimistic lock would deadlock; this transaction was chosen to give up. */
export class DeadlockError extends TxnError {
  constructor(
    readonly details: { lockTs: bigint; lockKey: Uint8Array; deadlockKeyHash: bigint },
  ) {
    super(
      "Deadlock",
      `deadlock: waiting for key ${describeKey(details.lockKey)} locked by txn ` +
        `${details.lockTs} would close a cycle`,
      true,
    );
  }
}

/** The transaction was rolled back (its primary lock is gone), so it cannot commit. */
export class TxnAbortedError extends TxnError {
  constructor(readonly startTs: bigint, reason: string, options?: { cause?: unknown }) {
    super("TxnAborted", `transaction ${startTs} was rolled back: ${reason}`, true, options);
  }
}

/** A pessimistic lock was not granted within the wait timeout. */
export class LockWaitTimeoutError extends TxnError {
  constructor(readonly key: Uint8Array, readonly lockTs: bigint, waitedMs: number) {
    super(
      "LockWaitTimeout",
      `lock wait timeout on key ${describeKey(key)} (held by txn ${lockTs}) after ${waitedMs} ms`,
      true,
    );
  }
}

/** `insert` (or a not-exist check) met a key that has a value. */
export class KeyAlreadyExistsError extends TxnError {
  constructor(readonly key: Uint8Array) {
    super("KeyAlreadyExists", `key ${describeKey(key)} already exists`, false);
  }
}

/** A mutation's assertion (Exist / NotExist) did not hold on the store. */
export class AssertionFailedError extends TxnError {
  constructor(readonly key: Uint8Array, readonly assertion: string) {
    super("AssertionFailed", `assertion ${assertion} failed on key ${describeKey(key)}`, false);
  }
}

/**
 * A request that decides the transaction may have been applied, but its answer never came
 * (client-go's `ErrResultUndetermined`): the transaction may or may not have committed, and
 * no rollback was sent for it. `phase` says which request:
 *
 * - `"primaryCommit"` — 2PC: the KvCommit of the primary key.
 * - `"prewrite"` — async commit or 1PC: a prewrite (with async commit, every prewrite
 *   succeeding commits the transaction; with 1PC, the prewrite commits it).
 *
 * Its locks are resolved by readers as any others (an async-commit transaction's through
 * CheckSecondaryLocks); reading one of its keys later tells how it ended. Running it again
 * could write twice, so this error is not retriable.
 */
export class CommitUndeterminedError extends TxnError {
  constructor(
    readonly startTs: bigint,
    readonly phase: "prewrite" | "primaryCommit",
    options: { reason: string; cause?: unknown },
  ) {
    super(
      "CommitUndetermined",
      `transaction ${startTs} may or may not have committed: ${options.reason}`,
      false,
      { cause: options.cause },
    );
  }
}

/** The transaction is no longer usable (committed, rolled back, or committing). */
export class TxnStateError extends TxnError {
  constructor(message: string) {
    super("TxnState", message, false);
  }
}

/** A per-key error with no typed class above; `retriable` follows kvproto's field. */
export class KeyErrorUnknown extends TxnError {
  constructor(message: string, retriable: boolean) {
    super("KeyError", message, retriable);
  }
}
