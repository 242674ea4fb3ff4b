/**
 * Bounds of the MVCC layer. (Kept beside the layer because src/constants.ts belongs to another
 * owner; fold it in there when convenient.)
 *
 * @module
 */

/** Most locks one `scanLocks` returns; a limit of 0 means this. */
export const MVCC_SCAN_LOCKS_MAX_LIMIT = 256 * 1024;

/** Most pairs one MVCC scan returns; a larger limit is a caller bug. */
export const MVCC_SCAN_MAX_LIMIT = 1024 * 1024;

/** Most secondaries an async-commit primary lock may list (TiKV bounds them via raft entry size). */
export const ASYNC_COMMIT_MAX_SECONDARIES = 256 * 1024;

if (MVCC_SCAN_LOCKS_MAX_LIMIT > MVCC_SCAN_MAX_LIMIT) {
  throw new Error("mvcc/limits.ts: a lock scan must not exceed a value scan");
}
