/**
 * Whether a reader at some ts must stop at a lock (TiKV `txn_types::check_ts_conflict`).
 *
 * Snapshot isolation: a read at `readTs` must not read through a lock that may commit at or
 * below `readTs`, because the value it would commit is invisible now but might be visible to a
 * later read at the same ts. A lock does not block the read when
 * - it was taken after the read (`lock.startTs > readTs`): it commits above `readTs`;
 * - it is a `Lock` or `Pessimistic` lock: neither changes the value;
 * - its `minCommitTs > readTs` (async commit, or pushed by an earlier reader);
 * - the client says it is resolved (`bypassLocks`, kvproto `Context.resolved_locks`);
 * - the read is at TS_MAX ("latest") on the primary key of a non-async, non-1PC transaction:
 *   the primary's commit decides the transaction, so reading the last committed value there
 *   is linearizable.
 *
 * Read committed never checks locks. RCCheckTS returns a WriteConflict for any blocking lock,
 * so the client retries the statement with a fresh ts.
 *
 * @module
 */

import { bytesEqual } from "../util/bytes.ts";
import type { Key } from "../txn_types/key.ts";
import { type Lock, lockToLockInfo } from "../txn_types/lock.ts";
import { type TimeStamp, TS_MAX } from "../txn_types/timestamp.ts";
import type { MvccError } from "./errors.ts";
import { kvrpcpb } from "../../proto/mod.ts";

/** Isolation levels of reads (kvproto `IsolationLevel`). */
export type IsolationLevel = "SI" | "RC" | "RCCheckTS";

/** The isolation level of a kvproto `Context.isolation_level` (unknown values read as SI). */
export function isolationLevelFromProto(
  level: kvrpcpb.IsolationLevel | null | undefined,
): IsolationLevel {
  if (level === kvrpcpb.IsolationLevel.RC) return "RC";
  if (level === kvrpcpb.IsolationLevel.RCCheckTS) return "RCCheckTS";
  return "SI";
}

/** Whether reads at `level` look at locks at all. */
export function needCheckLocks(level: IsolationLevel): boolean {
  return level !== "RC";
}

/** The parameters of one read. */
export interface ReadLockCheck {
  readTs: TimeStamp;
  isolationLevel: IsolationLevel;
  /** Start ts of transactions the client knows are resolved: their locks are ignored. */
  bypassLocks: ReadonlySet<TimeStamp>;
}

/** The error a read meets at `lock` on `key`, or null when the read may go through it. */
export function checkLockConflict(lock: Lock, key: Key, check: ReadLockCheck): MvccError | null {
  if (check.isolationLevel === "RC") return null;
  if (lock.lockType === "Lock" || lock.lockType === "Pessimistic") return null;
  if (check.bypassLocks.has(lock.startTs)) return null;
  if (check.isolationLevel === "RCCheckTS") {
    return {
      kind: "WriteConflict",
      startTs: check.readTs,
      conflictStartTs: lock.startTs,
      conflictCommitTs: 0n,
      key: key.toRaw(),
      primary: lock.primary,
      reason: "RcCheckTs",
    };
  }
  if (lock.startTs > check.readTs) return null;
  if (lock.minCommitTs > check.readTs) return null;
  const rawKey = key.toRaw();
  if (
    check.readTs === TS_MAX && bytesEqual(rawKey, lock.primary) && !lock.useAsyncCommit &&
    !lock.useOnePc
  ) {
    return null;
  }
  return { kind: "KeyIsLocked", lockInfo: lockToLockInfo(lock, rawKey) };
}
