/**
 * PessimisticRollback (TiKV `commands/pessimistic_rollback.rs` and its read phase): a
 * pessimistic transaction gives up the pessimistic locks of a statement it is retrying or
 * abandoning, so that transactions waiting for them can go on.
 *
 * Only pessimistic locks of this transaction with `lock.forUpdateTs <= forUpdateTs` are
 * removed: a lock taken later (by a newer statement, with a larger for_update_ts) is kept, and
 * prewrite locks are never touched. No rollback record is written — the transaction itself
 * goes on, and may lock the key again. Keys without such a lock are skipped, so the command is
 * idempotent.
 *
 * With no keys given, the client asks for every such lock of the transaction in the region:
 * `pessimisticLocksToRollBack` finds them, a batch at a time.
 *
 * @module
 */

import { type MvccResult, ok } from "../../mvcc/errors.ts";
import type { MvccReader } from "../../mvcc/reader.ts";
import type { MvccTxn, ReleasedLock } from "../../mvcc/txn.ts";
import type { Key } from "../../txn_types/key.ts";
import { isPessimisticLock, type Lock } from "../../txn_types/lock.ts";
import type { TimeStamp } from "../../txn_types/timestamp.ts";
import { loadLockSeeingPending } from "./common.ts";
import { RESOLVE_LOCK_BATCH_SIZE } from "./resolve_lock.ts";
import { type KeySteps, runSteps } from "./steps.ts";

/** The arguments of PessimisticRollback (kvproto `PessimisticRollbackRequest`). */
export interface PessimisticRollbackArgs {
  keys: readonly Key[];
  forUpdateTs: TimeStamp;
}

/** Whether `lock` is a pessimistic lock of `startTs` taken at or before `forUpdateTs`. */
function isRollbackable(lock: Lock, startTs: TimeStamp, forUpdateTs: TimeStamp): boolean {
  return isPessimisticLock(lock) && lock.startTs === startTs && lock.forUpdateTs <= forUpdateTs;
}

/**
 * Removes this transaction's pessimistic locks on `keys` taken at or before `forUpdateTs`.
 * Returns the released locks (for waking waiters).
 *
 * @example
 * ```ts ignore
 * pessimisticRollback(new MvccTxn(startTs), reader, { keys, forUpdateTs });
 * ```
 */
export function pessimisticRollback(
  txn: MvccTxn,
  reader: MvccReader,
  args: PessimisticRollbackArgs,
): MvccResult<ReleasedLock[]> {
  return runSteps(pessimisticRollbackSteps(txn, reader, args));
}

/** {@linkcode pessimisticRollback}, one step per key (see steps.ts). */
export function* pessimisticRollbackSteps(
  txn: MvccTxn,
  reader: MvccReader,
  args: PessimisticRollbackArgs,
): KeySteps<ReleasedLock[]> {
  const released: ReleasedLock[] = [];
  for (const key of args.keys) {
    const lock = loadLockSeeingPending(txn, reader, key);
    if (lock !== null && isRollbackable(lock, txn.startTs, args.forUpdateTs)) {
      released.push(txn.unlockKey(key, true, 0n));
    }
    yield;
  }
  return ok(released);
}

/**
 * The read phase when the request names no keys: the next pessimistic locks of `startTs`
 * with `forUpdateTs` at most the given one, from `startKey` on, and whether more may follow
 * (then scan again from the last key returned).
 */
export function pessimisticLocksToRollBack(
  reader: MvccReader,
  args: { startTs: TimeStamp; forUpdateTs: TimeStamp; startKey: Key | null; limit?: number },
): { keys: Key[]; hasRemain: boolean } {
  const { locks, hasRemain } = reader.scanLocks({
    start: args.startKey,
    end: null,
    filter: (_key, lock) => isRollbackable(lock, args.startTs, args.forUpdateTs),
    limit: args.limit ?? RESOLVE_LOCK_BATCH_SIZE,
  });
  return { keys: locks.map((entry) => entry.key), hasRemain };
}
