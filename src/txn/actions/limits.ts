/**
 * Bounds of the transaction actions. (Beside the actions because src/constants.ts belongs to
 * another owner; fold it in there when convenient.)
 *
 * @module
 */

/** Most keys of one BatchRollback (TiKV bounds it by the raft entry size). */
export const ROLLBACK_MAX_KEYS = 256 * 1024;
