/**
 * The value types of Percolator transactions as TiKV's `txn_types` crate has them: timestamps,
 * transactional keys, lock and write records with their byte formats, and mutations.
 *
 * @example
 * ```ts
 * import { decodeLock, encodeLock, Key, newLock } from "./mod.ts";
 * const key = Key.fromRaw(new TextEncoder().encode("k"));
 * const lock = newLock({ lockType: "Put", primary: key.toRaw(), startTs: 5n, ttlMs: 3000n });
 * decodeLock(encodeLock(lock)).startTs; // 5n
 * ```
 *
 * @module
 */

export {
  assertTs,
  composeTs,
  logicalOf,
  maxTs,
  nextTs,
  physicalMs,
  prevTs,
  type TimeStamp,
  TS_LOGICAL_MASK,
  TS_MAX,
  TS_PHYSICAL_SHIFT_BITS,
  TS_ZERO,
} from "./timestamp.ts";
export { displayRawKey, Key } from "./key.ts";
export {
  LAST_CHANGE_UNKNOWN,
  type LastChange,
  lastChangeFromParts,
  lastChangeToParts,
} from "./last_change.ts";
export { RecordFormatError } from "./record_codec.ts";
export {
  assertLock,
  decodeLock,
  describeLock,
  encodeLock,
  isPessimisticLock,
  isPessimisticTxn,
  type Lock,
  type LockInit,
  lockToLockInfo,
  type LockType,
  newLock,
  SHORT_VALUE_MAX_LEN,
  SHORT_VALUE_PREFIX,
} from "./lock.ts";
export {
  assertWrite,
  checkGcFenceAsLatestVersion,
  decodeWrite,
  describeWrite,
  encodeWrite,
  isProtectedRollback,
  newRollback,
  newWrite,
  PROTECTED_ROLLBACK_SHORT_VALUE,
  type Write,
  type WriteInit,
  type WriteType,
  writeTypeFromLockType,
} from "./write.ts";
export {
  type Assertion,
  type AssertionLevel,
  assertionLevelFromProto,
  assertionToProto,
  isWritingMutation,
  lockTypeOfMutation,
  type Mutation,
  mutationFromProto,
  type MutationType,
  newMutation,
  shouldNotExist,
} from "./mutation.ts";
