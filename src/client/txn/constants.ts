/**
 * Every bound of the transactional client in one place (the transport's and the request
 * loop's are in `../constants.ts`). Values follow TiKV's client-go where it has one; relations
 * between them are asserted when this module loads.
 */

/** Lock TTL of a small transaction (client-go `defaultLockTTL`). */
export const DEFAULT_LOCK_TTL_MS = 3_000;
/** TTL added per square root of the transaction's MiB (client-go `ttlFactor`). */
export const LOCK_TTL_FACTOR_MS = 6_000;
/** Largest lock TTL asked (client-go `maxLockTTL`). */
export const MAX_LOCK_TTL_MS = 120_000;
/** TTL of locks kept alive by heartbeats: pessimistic locks, long commits (client-go `ManagedLockTTL`). */
export const MANAGED_LOCK_TTL_MS = 20_000;
/** Heartbeats stop after a transaction has run this long (client-go `MaxTxnTimeUse`). */
export const MAX_TXN_LIFETIME_MS = 10 * 60_000;
/** Smallest TTL accepted as an option (tests use small ones to see locks expire). */
export const MIN_LOCK_TTL_MS = 50;

/** Key + value bytes of one prewrite/commit batch to one region (client-go `txnCommitBatchSize`). */
export const TXN_BATCH_MAX_BYTES = 16 * 1024;
/** Keys of one batch, whatever their size. */
export const TXN_BATCH_MAX_KEYS = 2_048;
/** Batches of one phase sent at once. */
export const TXN_MAX_CONCURRENT_BATCHES = 16;

/** Async commit: most keys of a transaction (client-go `async-commit.keys-limit`). */
export const ASYNC_COMMIT_MAX_KEYS = 256;
/** Async commit: most bytes of all keys (client-go `async-commit.total-key-size-limit`). */
export const ASYNC_COMMIT_MAX_KEY_BYTES = 4_096;
/** Async commit and 1PC: max_commit_ts is this far past now (client-go `safe-window`). */
export const ASYNC_COMMIT_SAFE_WINDOW_MS = 2_000;
/** 1PC: most key + value bytes (one request). */
export const ONE_PC_MAX_BYTES = TXN_BATCH_MAX_BYTES;

/** Keys asked per KvScan request (client-go `scanBatchSize`). */
export const SCAN_BATCH_SIZE = 256;
/** Keys of one KvBatchGet request. */
export const BATCH_GET_MAX_KEYS = 2_048;

/** Back-off while a lock blocks a read or a prewrite: first sleep and cap (client-go `txnLock`). */
export const LOCK_BACKOFF_BASE_MS = 10;
export const LOCK_BACKOFF_CAP_MS = 1_000;
/** Back-off when a lock's primary was not found yet (client-go `txnNotFound`). */
export const TXN_NOT_FOUND_BACKOFF_BASE_MS = 2;
export const TXN_NOT_FOUND_BACKOFF_CAP_MS = 500;
/** Transaction statuses (committed / rolled back) remembered by a lock resolver. */
export const RESOLVED_CACHE_MAX_ENTRIES = 2_048;
/** Most lock-resolution rounds of one request before its deadline decides. */
export const MAX_LOCK_ROUNDS_PER_REQUEST = 10_000;

/** Server-side wait of one PessimisticLock request for a conflicting lock. */
export const PESSIMISTIC_LOCK_WAIT_SLICE_MS = 1_000;
/** Default total wait for a pessimistic lock (TiKV's `wait-for-lock-timeout` is 1 s per wait). */
export const DEFAULT_LOCK_WAIT_TIMEOUT_MS = 3_000;
/** Most PessimisticLock retries after a WriteConflict(PessimisticRetry). */
export const MAX_PESSIMISTIC_RETRIES = 64;

/** `withRetry`: default attempts and back-off between them. */
export const DEFAULT_RETRY_ATTEMPTS = 10;
export const RETRY_BACKOFF_BASE_MS = 5;
export const RETRY_BACKOFF_CAP_MS = 500;

/** Commit ts pushed (CommitTsExpired): most retries with a fresh commit ts. */
export const MAX_COMMIT_TS_RETRIES = 16;

function assertConstant(condition: boolean, what: string): void {
  if (!condition) throw new Error(`client/txn/constants.ts: ${what}`);
}

assertConstant(
  MIN_LOCK_TTL_MS <= DEFAULT_LOCK_TTL_MS && DEFAULT_LOCK_TTL_MS <= MAX_LOCK_TTL_MS,
  "default TTL within bounds",
);
assertConstant(MANAGED_LOCK_TTL_MS <= MAX_LOCK_TTL_MS, "managed TTL within bounds");
assertConstant(ONE_PC_MAX_BYTES <= TXN_BATCH_MAX_BYTES, "a 1PC request is one batch");
assertConstant(LOCK_BACKOFF_BASE_MS <= LOCK_BACKOFF_CAP_MS, "lock back-off starts below its cap");
assertConstant(RETRY_BACKOFF_BASE_MS <= RETRY_BACKOFF_CAP_MS, "retry back-off below its cap");
assertConstant(
  TXN_NOT_FOUND_BACKOFF_BASE_MS <= TXN_NOT_FOUND_BACKOFF_CAP_MS,
  "txn-not-found back-off below its cap",
);
assertConstant(ASYNC_COMMIT_MAX_KEYS <= TXN_BATCH_MAX_KEYS, "async-commit secondaries fit a batch");
