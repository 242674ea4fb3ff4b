/**
 * The MVCC layer of Percolator transactions: reads of one snapshot (`MvccReader`,
 * `PointGetter`, `Scanner`), the lock rules of reads, the buffered modifications of one
 * command (`MvccTxn`), and the expected failures (`MvccError`).
 *
 * Pure: nothing here performs I/O beyond the snapshot it is given, or reads a clock.
 *
 * @example
 * ```ts ignore
 * using getter = new PointGetter(snapshot, { readTs: 100n });
 * const result = getter.get(Key.fromRaw(new TextEncoder().encode("k")));
 * if (!result.ok) console.log(describeMvccError(result.error));
 * ```
 *
 * @module
 */

export {
  describeMvccError,
  err,
  type MvccError,
  type MvccErrorKind,
  mvccErrorToKeyError,
  type MvccResult,
  ok,
  type PessimisticLockNotFoundReason,
  type WriteConflictReason,
} from "./errors.ts";
export {
  ASYNC_COMMIT_MAX_SECONDARIES,
  MVCC_SCAN_LOCKS_MAX_LIMIT,
  MVCC_SCAN_MAX_LIMIT,
} from "./limits.ts";
export {
  checkLockConflict,
  type IsolationLevel,
  isolationLevelFromProto,
  needCheckLocks,
  type ReadLockCheck,
} from "./lock_conflict.ts";
export { PointGetter, type PointGetterOptions, type ValueEntry } from "./point_getter.ts";
export {
  type CommittedWrite,
  DefaultNotFoundError,
  MvccReader,
  SEEK_BOUND,
  type TxnCommitRecord,
} from "./reader.ts";
export { scan, type ScanEntry, Scanner, type ScannerOptions } from "./scanner.ts";
export { type Modification, MvccTxn, type OnePcLock, type ReleasedLock } from "./txn.ts";
