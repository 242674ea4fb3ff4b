/**
 * Percolator transaction actions, one file each (TiKV `storage/txn/actions`). Each is a pure
 * function `(txn: MvccTxn, reader: MvccReader, args)` that reads one snapshot through the
 * reader, appends its modifications to `txn`, and returns a result or an `MvccError` value.
 * The scheduler then writes `txn` as one atomic WriteBatch.
 *
 * @example
 * ```ts ignore
 * using reader = new MvccReader(snapshot);
 * const txn = new MvccTxn(startTs);
 * const result = commit(txn, reader, { key, commitTs });
 * if (result.ok) txn.applyTo(batch);
 * ```
 *
 * @module
 */

export { checkDataConstraint } from "./check_data_constraint.ts";
export { cleanup, type CleanupArgs } from "./cleanup.ts";
export { commit, type CommitArgs } from "./commit.ts";
export {
  checkTxnStatusMissingLock,
  collapsePrevRollback,
  loadLockSeeingPending,
  makeRollback,
  type MissingLockAction,
  nextLastChangeInfo,
  rollbackAction,
  rollbackLock,
  statusOfCommitRecord,
  type TxnStatus,
} from "./common.ts";
export { ROLLBACK_MAX_KEYS } from "./limits.ts";
export {
  type CommitKind,
  commitOnePcLocks,
  type PessimisticAction,
  pessimisticActionFromProto,
  prewrite,
  type PrewriteArgs,
  type PrewriteMutationArgs,
  prewriteMutations,
  type PrewriteRequestArgs,
  type PrewriteResult,
  type TransactionKind,
  type TransactionProperties,
} from "./prewrite.ts";
export { batchRollback, rollback } from "./rollback.ts";
