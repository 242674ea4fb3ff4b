/**
 * Commit of one key (Percolator's second phase; TiKV `actions/commit.rs`): the transaction's
 * lock on the key becomes a write record at `commitTs`, and the lock goes.
 *
 * - No lock of this transaction: if the write CF shows it committed, the request is a retry
 *   and succeeds with nothing to do; if it shows a rollback, or nothing (a rollback may have
 *   been collapsed), TxnLockNotFound — the transaction cannot commit.
 * - `commitTs < lock.minCommitTs`: CommitTsExpired. A reader pushed the lock's min_commit_ts
 *   (or async commit fixed it), and committing below it could change what that reader saw.
 * - A pessimistic lock (never prewritten): a leftover of a lost pessimistic rollback or a
 *   stale lock request. Current TiKV removes it instead of committing, and so does Basalt:
 *   the key is not part of the transaction's writes.
 * - A rollback of another transaction recorded on the lock (`rollbackTs`) at exactly
 *   `commitTs` is kept by marking the commit record `hasOverlappedRollback`.
 *
 * @module
 */

import { err, type MvccResult, ok } from "../../mvcc/errors.ts";
import type { MvccReader } from "../../mvcc/reader.ts";
import type { MvccTxn, ReleasedLock } from "../../mvcc/txn.ts";
import type { Key } from "../../txn_types/key.ts";
import { isPessimisticTxn } from "../../txn_types/lock.ts";
import { assertTs, type TimeStamp } from "../../txn_types/timestamp.ts";
import { newWrite, writeTypeFromLockType } from "../../txn_types/write.ts";
import { loadLockSeeingPending } from "./common.ts";
import type { KeySteps } from "./steps.ts";

/** The key and ts of a commit. */
export interface CommitArgs {
  key: Key;
  commitTs: TimeStamp;
}

/**
 * Commits this transaction's lock on `key` at `commitTs`. Returns the released lock, or null
 * when there was nothing to do (already committed).
 *
 * @example
 * ```ts ignore
 * const txn = new MvccTxn(10n);
 * const result = commit(txn, reader, { key: Key.fromRaw(k), commitTs: 20n });
 * if (result.ok) scheduler.write(txn); // one WriteBatch
 * ```
 */
export function commit(
  txn: MvccTxn,
  reader: MvccReader,
  args: CommitArgs,
): MvccResult<ReleasedLock | null> {
  const { key, commitTs } = args;
  assertTs(commitTs, "commitTs");
  if (commitTs <= txn.startTs) {
    // TiKV's InvalidTxnTso: a client bug, answered rather than crashed on.
    return err({
      kind: "InvalidRequest",
      message: `commit ts ${commitTs} is not above start ts ${txn.startTs} (key ${key})`,
    });
  }
  const lock = loadLockSeeingPending(txn, reader, key);
  if (lock === null || lock.startTs !== txn.startTs) return lockNotFound(txn, reader, args);
  if (commitTs < lock.minCommitTs) {
    return err({
      kind: "CommitTsExpired",
      startTs: txn.startTs,
      attemptedCommitTs: commitTs,
      key: key.toRaw(),
      minCommitTs: lock.minCommitTs,
    });
  }
  const writeType = writeTypeFromLockType(lock.lockType);
  if (writeType === null) {
    // A stale pessimistic lock: remove it, as a pessimistic rollback would.
    return ok(txn.unlockKey(key, isPessimisticTxn(lock), 0n));
  }
  const write = newWrite({
    writeType,
    startTs: txn.startTs,
    shortValue: lock.shortValue,
    lastChange: lock.lastChange,
    txnSource: lock.txnSource,
    hasOverlappedRollback: lock.rollbackTs.includes(commitTs),
  });
  txn.putWrite(key, commitTs, write);
  return ok(txn.unlockKey(key, isPessimisticTxn(lock), commitTs));
}

/** No lock of ours: a retry of a finished commit, or a transaction that cannot commit. */
function lockNotFound(txn: MvccTxn, reader: MvccReader, args: CommitArgs): MvccResult<null> {
  const record = reader.getTxnCommitRecord(args.key, txn.startTs);
  if (record.kind === "SingleRecord" && record.write.writeType !== "Rollback") return ok(null);
  return err({
    kind: "TxnLockNotFound",
    startTs: txn.startTs,
    commitTs: args.commitTs,
    key: args.key.toRaw(),
  });
}

/**
 * Commits this transaction's locks on every key of `keys` at `commitTs` (kvproto `Commit`),
 * one step per key (see steps.ts). The first error ends it; the caller then writes nothing.
 */
export function* commitKeys(
  txn: MvccTxn,
  reader: MvccReader,
  args: { keys: readonly Key[]; commitTs: TimeStamp },
): KeySteps<null> {
  for (const key of args.keys) {
    const committed = commit(txn, reader, { key, commitTs: args.commitTs });
    if (!committed.ok) return committed;
    yield;
  }
  return ok(null);
}
