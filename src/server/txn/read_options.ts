/**
 * The read parameters a transactional request's `Context` carries, and the check of the
 * in-memory locks of async-commit and 1PC prewrites that a read must respect.
 */
import type { kvrpcpb } from "../../../proto/mod.ts";
import {
  checkLockConflict,
  type IsolationLevel,
  isolationLevelFromProto,
  type MvccError,
} from "../../mvcc/mod.ts";
import { Key, type TimeStamp } from "../../txn_types/mod.ts";
import type { TxnStore } from "./store.ts";

/** How a request reads. */
export interface ReadOptions {
  readTs: TimeStamp;
  isolationLevel: IsolationLevel;
  /** Locks of transactions known to be rolled back or committed above the read ts. */
  bypassLocks: ReadonlySet<TimeStamp>;
  /** Locks of transactions known to be committed at or below it: read through them. */
  accessLocks: ReadonlySet<TimeStamp>;
}

/** The read options of `context` at `readTs`. */
export function readOptionsOf(
  context: kvrpcpb.IContext | null | undefined,
  readTs: TimeStamp,
): ReadOptions {
  return {
    readTs,
    isolationLevel: isolationLevelFromProto(context?.isolationLevel),
    bypassLocks: new Set(context?.resolvedLocks ?? []),
    accessLocks: new Set(context?.committedLocks ?? []),
  };
}

/**
 * Announces the read to the concurrency manager (pushing max_ts, so an async-commit prewrite
 * that has not yet taken its keys commits above this read), then checks the memory locks of
 * the prewrites that already have: the first one in the way is returned.
 */
export function checkMemoryLocks(
  store: TxnStore,
  options: ReadOptions,
  range: { key: Key } | { startKey?: Uint8Array; endKey?: Uint8Array },
): MvccError | undefined {
  store.concurrency.updateMaxTs(options.readTs);
  if (options.isolationLevel === "RC") return undefined;
  if ("key" in range) {
    const key = range.key;
    return store.concurrency.readKeyCheck(
      key.encoded,
      (lock) => checkLockConflict(lock, key, options) ?? undefined,
    );
  }
  return store.concurrency.readRangeCheck(
    range,
    (encoded, lock) => checkLockConflict(lock, Key.fromEncoded(encoded), options) ?? undefined,
  );
}
