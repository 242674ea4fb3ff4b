/**
 * Bounds and defaults of the lock manager (lock-wait queue and deadlock detector). They belong
 * with the other bounds in `src/constants.ts`; they live here until that module takes them.
 * Relations between them are asserted when this module loads.
 *
 * @module
 */
import { assert } from "../../util/assert.ts";

/** Longest a pessimistic lock request waits for a lock (TiKV `wait-for-lock-timeout`). */
export const DEFAULT_WAIT_FOR_LOCK_TIMEOUT_MS = 1000;
/**
 * After one waiter of a key is woken, how long the others wait before they are all woken to
 * retry (TiKV `wake-up-delay-duration`).
 */
export const DEFAULT_WAKE_UP_DELAY_MS = 20;
/** How long a wait-for edge lives in the deadlock detector without being refreshed. */
export const DEFAULT_DEADLOCK_EDGE_TTL_MS = DEFAULT_WAIT_FOR_LOCK_TIMEOUT_MS;
/** Most requests waiting for locks at once in one lock manager; more are refused at once. */
export const LOCK_WAIT_MAX_WAITERS = 64 * 1024;
/** Most wait-for edges the deadlock detector keeps; a new edge beyond it is not recorded. */
export const DEADLOCK_MAX_EDGES = 256 * 1024;
/** Most distinct key hashes one wait-for edge remembers (one is enough for diagnostics). */
export const DEADLOCK_MAX_KEYS_PER_EDGE = 16;

assert(
  DEFAULT_WAKE_UP_DELAY_MS < DEFAULT_WAIT_FOR_LOCK_TIMEOUT_MS,
  "wake-up delay < timeout",
);
assert(
  DEFAULT_DEADLOCK_EDGE_TTL_MS >= DEFAULT_WAIT_FOR_LOCK_TIMEOUT_MS,
  "an edge outlives the wait that created it",
);
assert(LOCK_WAIT_MAX_WAITERS <= DEADLOCK_MAX_EDGES, "every waiter can have an edge");
