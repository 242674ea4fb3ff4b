/**
 * The lock manager: where pessimistic lock requests wait for other transactions' locks
 * (`LockWaitQueue`), and the wait-for graph that refuses waits that would deadlock
 * (`DeadlockDetector`). Pure: time comes from a `LockWaitTimer`.
 *
 * @module
 */

export * from "./constants.ts";
export {
  DeadlockDetector,
  type DeadlockInfo,
  type DetectRequest,
  type WaitForEntry,
} from "./deadlock.ts";
export { keyHash } from "./key_hash.ts";
export {
  type LockWaiter,
  type LockWaitOutcome,
  LockWaitQueue,
  type LockWaitQueueOptions,
  type LockWaitRequest,
  normalizeWaitTimeoutMs,
} from "./lock_wait_queue.ts";
export { type LockWaitTimer, ManualTimer } from "./timer.ts";
export { type DeadlockError, deadlockError } from "./deadlock_error.ts";
