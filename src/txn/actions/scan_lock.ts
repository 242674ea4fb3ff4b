/**
 * ScanLock (TiKV `Storage::scan_lock`): the locks in a key range whose start ts is at most
 * `maxVersion`, in key order, at most `limit` of them. Clients use it to find and resolve the
 * locks a GC round must not leave behind, and tools to inspect a region.
 *
 * It is a read: it writes nothing. The caller (1) raises max_ts to `maxVersion`, like any read
 * at that ts, and (2) collects the in-memory locks of async-commit / 1PC prewrites in the
 * range from the concurrency manager (`readRangeCheck`) and passes them as `memoryLocks`: such
 * a lock may not be in the snapshot yet, but it will be by the time the client resolves it.
 * Locks found in both places are reported once.
 *
 * @module
 */

import type { kvrpcpb } from "../../../proto/mod.ts";
import type { MvccReader } from "../../mvcc/reader.ts";
import { MVCC_SCAN_LOCKS_MAX_LIMIT } from "../../mvcc/limits.ts";
import type { Key } from "../../txn_types/key.ts";
import { type Lock, lockToLockInfo } from "../../txn_types/lock.ts";
import type { TimeStamp } from "../../txn_types/timestamp.ts";

/** The arguments of ScanLock (kvproto `ScanLockRequest`). */
export interface ScanLockArgs {
  /** Inclusive; null for the start of the region's range. */
  startKey: Key | null;
  /** Exclusive; null for the end. */
  endKey: Key | null;
  maxVersion: TimeStamp;
  /** Most locks to return; 0 means `MVCC_SCAN_LOCKS_MAX_LIMIT`. */
  limit: number;
  /** In-memory locks of the range from the concurrency manager (see the module header). */
  memoryLocks?: readonly { key: Key; lock: Lock }[];
}

/** The locks found, as kvproto `LockInfo`s, and whether the limit cut the scan short. */
export interface ScanLockResult {
  locks: kvrpcpb.ILockInfo[];
  hasRemain: boolean;
}

/**
 * Scans the `lock` CF of `reader`'s snapshot (see the module header).
 *
 * @example
 * ```ts ignore
 * const { locks } = scanLock(reader, { startKey: null, endKey: null, maxVersion: safePoint, limit: 1024 });
 * ```
 */
export function scanLock(reader: MvccReader, args: ScanLockArgs): ScanLockResult {
  const limit = args.limit === 0 ? MVCC_SCAN_LOCKS_MAX_LIMIT : args.limit;
  if (!Number.isInteger(limit) || limit < 0 || limit > MVCC_SCAN_LOCKS_MAX_LIMIT) {
    throw new RangeError(`scanLock limit ${args.limit} out of range`);
  }
  const visible = (_key: Key, lock: Lock) => lock.startTs <= args.maxVersion;
  const scanned = reader.scanLocks({
    start: args.startKey,
    end: args.endKey,
    filter: visible,
    limit,
  });
  const found = new Map<string, { key: Key; lock: Lock }>();
  for (const entry of scanned.locks) found.set(entry.key.mapKey(), entry);
  for (const entry of args.memoryLocks ?? []) {
    if (!inRange(entry.key, args) || !visible(entry.key, entry.lock)) continue;
    // The snapshot's copy wins: it is what the client will find when it resolves.
    if (!found.has(entry.key.mapKey())) found.set(entry.key.mapKey(), entry);
  }
  const merged = [...found.values()].sort((a, b) => a.key.compare(b.key));
  // With memory locks merged in, the limit may cut the list again; anything cut means more.
  const hasRemain = scanned.hasRemain || merged.length > limit;
  const kept = merged.slice(0, limit);
  if (scanned.hasRemain && kept.length > 0) {
    // Keys past the last scanned lock were not scanned: memory locks beyond it must wait
    // for the next page, or the page would skip snapshot locks between them.
    const lastScanned = scanned.locks[scanned.locks.length - 1]!.key;
    const cut = kept.findIndex((entry) => entry.key.compare(lastScanned) > 0);
    if (cut >= 0) kept.length = cut;
  }
  return {
    locks: kept.map(({ key, lock }) => lockToLockInfo(lock, key.toRaw())),
    hasRemain,
  };
}

function inRange(key: Key, args: ScanLockArgs): boolean {
  if (args.startKey !== null && key.compare(args.startKey) < 0) return false;
  if (args.endKey !== null && key.compare(args.endKey) >= 0) return false;
  return true;
}
