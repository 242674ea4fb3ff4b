/**
 * The transactional client: `TxnKV` and its `Transaction`s (Percolator over kvproto, as TiKV's
 * clients run it), with typed errors. See `txn_kv.ts` for the overview.
 *
 * @module
 */
export type { CommitHooks, CommitMode, CommitResult } from "./committer.ts";
export {
  AssertionFailedError,
  CommitUndeterminedError,
  DeadlockError,
  KeyAlreadyExistsError,
  KeyErrorUnknown,
  LockWaitTimeoutError,
  TxnAbortedError,
  TxnError,
  type TxnErrorCode,
  TxnStateError,
  WriteConflictError,
} from "./errors.ts";
export type { LockInfo } from "./key_errors.ts";
export { LockResolver, type ResolveResult, type TxnStatus } from "./lock_resolver.ts";
export { DEFAULT_TXN_SCAN_LIMIT, Snapshot, type TxnScanOptions } from "./snapshot.ts";
export { type CommitOptions, Transaction, type TransactionOptions } from "./transaction.ts";
export { type RetryOptions, type TxnConnectOptions, TxnKV, type TxnKVOptions } from "./txn_kv.ts";
export { type TimestampOracle, TsoClient } from "../tso.ts";
