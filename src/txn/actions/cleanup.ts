/**
 * Cleanup of one key (TiKV `actions/cleanup.rs`): roll this transaction back on `key` if its
 * lock has expired, so a blocked reader or writer can go on.
 *
 * - This transaction's lock, TTL expired against `currentTs` (or `currentTs` is 0: no TTL
 *   check): rolled back (rollback.ts has the details). Not expired: KeyIsLocked.
 * - No lock of this transaction: the write CF decides. Committed: the `Committed` error,
 *   which carries the commit ts (KvCleanup answers it as `commit_version`). Rolled back
 *   already: nothing to do. Nothing at all: a rollback record is written now, so a prewrite
 *   arriving late fails; with `protectRollback` it is protected.
 *
 * The TTL counts from the physical part of the start ts: the lock expires when
 * `physical(startTs) + ttlMs < physical(currentTs)`.
 *
 * @module
 */

import { err, type MvccResult, ok } from "../../mvcc/errors.ts";
import type { MvccReader } from "../../mvcc/reader.ts";
import type { MvccTxn, ReleasedLock } from "../../mvcc/txn.ts";
import type { Key } from "../../txn_types/key.ts";
import { lockToLockInfo } from "../../txn_types/lock.ts";
import { physicalMs, type TimeStamp } from "../../txn_types/timestamp.ts";
import {
  checkTxnStatusMissingLock,
  loadLockSeeingPending,
  rollbackAction,
  rollbackLock,
} from "./common.ts";

/** The arguments of a cleanup. */
export interface CleanupArgs {
  key: Key;
  /** The caller's current ts; 0 rolls back without looking at the TTL. */
  currentTs: TimeStamp;
  /** Protect the rollback record from collapsing (the key is, or may be, a primary). */
  protectRollback: boolean;
}

/**
 * Rolls this transaction back on `key` if its lock expired. Returns the released lock, or
 * null when no lock of this transaction was there.
 */
export function cleanup(
  txn: MvccTxn,
  reader: MvccReader,
  args: CleanupArgs,
): MvccResult<ReleasedLock | null> {
  const { key, currentTs } = args;
  const lock = loadLockSeeingPending(txn, reader, key);
  if (lock !== null && lock.startTs === txn.startTs) {
    if (currentTs !== 0n) {
      const expiresAtMs = physicalMs(lock.startTs) + lock.ttlMs;
      if (expiresAtMs >= physicalMs(currentTs)) {
        return err({ kind: "KeyIsLocked", lockInfo: lockToLockInfo(lock, key.toRaw()) });
      }
    }
    return ok(rollbackLock(txn, reader, { key, lock, collapseRollback: !args.protectRollback }));
  }
  const status = checkTxnStatusMissingLock(txn, reader, {
    primaryKey: key,
    mismatchLock: lock,
    action: rollbackAction(args.protectRollback),
    resolvingPessimisticLock: false,
  });
  if (!status.ok) return status;
  switch (status.value.kind) {
    case "Committed":
      return err({
        kind: "Committed",
        startTs: txn.startTs,
        commitTs: status.value.commitTs,
        key: key.toRaw(),
      });
    case "RolledBack":
    case "LockNotExist":
      return ok(null);
    default:
      throw new Error(`cleanup: unexpected status ${status.value.kind} on ${key}`);
  }
}
