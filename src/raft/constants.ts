/**
 * Limits of the Raft core: every queue and batch it keeps has its maximum here.
 *
 * Relations between them are asserted when the module loads.
 *
 * @module
 */

/** Most ReadIndex requests a leader keeps waiting for a heartbeat quorum. */
export const MAX_PENDING_READ_INDEX = 4096;
/** Most ReadIndex requests a new leader queues until it commits an entry of its term. */
export const MAX_QUEUED_READ_INDEX_BEFORE_COMMIT = 4096;
/** Default bytes of entries in one MsgAppend. */
export const DEFAULT_MAX_SIZE_PER_MSG_BYTES = 1024 * 1024;
/** Default unacknowledged MsgAppend per follower in Replicate state. */
export const DEFAULT_MAX_INFLIGHT_MSGS = 256;
/** Default bytes of committed entries in one Ready. */
export const DEFAULT_MAX_COMMITTED_SIZE_PER_READY_BYTES = 16 * 1024 * 1024;
/** Default bytes of not-yet-committed entries a leader accepts before dropping proposals. */
export const DEFAULT_MAX_UNCOMMITTED_SIZE_BYTES = 64 * 1024 * 1024;
/** Ticks by which a leader's lease ends before a follower could vote elsewhere (clock skew). */
export const DEFAULT_LEASE_MARGIN_TICKS = 2;

function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`raft constants: ${what}`);
}

check(MAX_PENDING_READ_INDEX > 0, "MAX_PENDING_READ_INDEX must be positive");
check(DEFAULT_MAX_INFLIGHT_MSGS > 0, "DEFAULT_MAX_INFLIGHT_MSGS must be positive");
check(
  DEFAULT_MAX_COMMITTED_SIZE_PER_READY_BYTES >= DEFAULT_MAX_SIZE_PER_MSG_BYTES,
  "a Ready must be able to carry at least one message worth of committed entries",
);
check(
  DEFAULT_MAX_UNCOMMITTED_SIZE_BYTES >= DEFAULT_MAX_SIZE_PER_MSG_BYTES,
  "the uncommitted budget must hold at least one full message",
);
