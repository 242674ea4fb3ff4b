/**
 * Percolator locks: the records of the `lock` column family (TiKV `txn_types::Lock`), their
 * binary format, and the conversion to kvproto's `LockInfo`.
 *
 * Format (byte-compatible with TiKV for the fields Basalt writes):
 *
 *     type byte ('P' Put, 'D' Delete, 'L' Lock, 'S' Pessimistic)
 *     primary          compact bytes (zigzag varint length + bytes)
 *     start_ts         varint u64
 *     ttl              varint u64
 *     then optional fields, each a one-byte prefix, written in this order when set:
 *     'v' len:u8 bytes             short value (at most SHORT_VALUE_MAX_LEN bytes)
 *     'f' u64                      for_update_ts (pessimistic transactions)
 *     't' u64                      txn_size
 *     'c' u64                      min_commit_ts
 *     'a' varint n, n × compact    async commit, with the primary's secondaries
 *     'r' varint n, n × u64        rollback timestamps collapsed into this lock
 *     'l' u64 varint               last change (ts, estimated versions)
 *     's' varint                   txn source
 *     'F'                          pessimistic lock acquired with conflict
 *     'g' u64                      generation (pipelined DML)
 *
 * `u64` is 8 bytes big-endian. Decoding differs from TiKV in one deliberate way: TiKV stops at
 * an unknown prefix byte (forward compatibility with newer writers); Basalt writes all its own
 * records, so an unknown prefix means corruption and is a {@linkcode RecordFormatError}, as is
 * every truncation (TiKV panics on a truncated short value).
 *
 * @module
 */

import { kvrpcpb } from "../../proto/mod.ts";
import { displayRawKey } from "./key.ts";
import { LAST_CHANGE_UNKNOWN, type LastChange } from "./last_change.ts";
import { readTaggedFields, RecordReader, RecordWriter } from "./record_codec.ts";
import { assertTs, type TimeStamp } from "./timestamp.ts";
import { assert } from "../util/assert.ts";

/** Values up to this length are stored inline in lock and write records (TiKV's 255). */
export const SHORT_VALUE_MAX_LEN = 255;
/** Prefix byte of an inline short value, in both lock and write records. */
export const SHORT_VALUE_PREFIX = 0x76; // 'v'

/** What a lock will become when committed; `Pessimistic` locks are never committed as such. */
export type LockType = "Put" | "Delete" | "Lock" | "Pessimistic";

const LOCK_TYPE_BYTE: Record<LockType, number> = {
  Put: 0x50, // 'P'
  Delete: 0x44, // 'D'
  Lock: 0x4c, // 'L'
  Pessimistic: 0x53, // 'S'
};
const SHARED_LOCK_BYTE = 0x48; // 'H': TiKV's shared locks, not supported by Basalt.

const FOR_UPDATE_TS_PREFIX = 0x66; // 'f'
const TXN_SIZE_PREFIX = 0x74; // 't'
const MIN_COMMIT_TS_PREFIX = 0x63; // 'c'
const ASYNC_COMMIT_PREFIX = 0x61; // 'a'
const ROLLBACK_TS_PREFIX = 0x72; // 'r'
const LAST_CHANGE_PREFIX = 0x6c; // 'l'
const TXN_SOURCE_PREFIX = 0x73; // 's'
const LOCKED_WITH_CONFLICT_PREFIX = 0x46; // 'F'
const GENERATION_PREFIX = 0x67; // 'g'

/** A lock record. Every u64 is a bigint; `null` short value means "value in default CF". */
export interface Lock {
  lockType: LockType;
  /** The raw primary key of the transaction. */
  primary: Uint8Array;
  /** The transaction's start ts (TiKV `ts`). */
  startTs: TimeStamp;
  /** Time to live, from the physical part of `startTs`, in milliseconds. */
  ttlMs: bigint;
  /** The value when short enough to be inline; else it is in the default CF at `startTs`. */
  shortValue: Uint8Array | null;
  /** Non-zero for a lock of a pessimistic transaction. */
  forUpdateTs: TimeStamp;
  /** Number of keys the transaction writes in this region (a hint for lock resolution). */
  txnSize: bigint;
  /** Lower bound of the commit ts (async commit; also pushed by readers). */
  minCommitTs: TimeStamp;
  useAsyncCommit: boolean;
  /** With async commit, on the primary only: every secondary raw key. */
  secondaries: Uint8Array[];
  /** Rollbacks of other transactions at this key, kept on the lock (protected rollbacks). */
  rollbackTs: TimeStamp[];
  lastChange: LastChange;
  txnSource: bigint;
  isLockedWithConflict: boolean;
  generation: bigint;
  /** In memory only (never encoded): the lock is being committed in one phase. */
  useOnePc: boolean;
}

/** What {@linkcode newLock} needs; everything else takes its zero value. */
export type LockInit =
  & Pick<Lock, "lockType" | "primary" | "startTs">
  & Partial<Omit<Lock, "lockType" | "primary" | "startTs">>;

/**
 * A lock with defaults for every optional field.
 *
 * @example
 * ```ts
 * import { newLock } from "./lock.ts";
 * const lock = newLock({ lockType: "Put", primary: new Uint8Array([1]), startTs: 10n, ttlMs: 3000n });
 * ```
 */
export function newLock(init: LockInit): Lock {
  const lock: Lock = {
    ttlMs: 0n,
    shortValue: null,
    forUpdateTs: 0n,
    txnSize: 0n,
    minCommitTs: 0n,
    useAsyncCommit: false,
    secondaries: [],
    rollbackTs: [],
    lastChange: LAST_CHANGE_UNKNOWN,
    txnSource: 0n,
    isLockedWithConflict: false,
    generation: 0n,
    useOnePc: false,
    ...init,
  };
  assertLock(lock);
  return lock;
}

/**
 * Asserts the invariants of a lock (`AssertionError`): a failure is a bug in the code that
 * built it. Every lock passes here twice, when it is made (`newLock`) and when it is encoded.
 */
export function assertLock(lock: Lock): void {
  assertTs(lock.startTs, "lock startTs");
  assertTs(lock.forUpdateTs, "lock forUpdateTs");
  assertTs(lock.minCommitTs, "lock minCommitTs");
  const problem = lockProblem(lock);
  if (problem !== null) assert(false, problem, { startTs: lock.startTs, lockType: lock.lockType });
}

/**
 * The first invariant `lock` breaks that a record read from disk could also break, or null. A
 * decoded lock is checked against the same rules as an encoded one (`decodeLock`), where a
 * break is corruption of the stored bytes (a `RecordFormatError`), not a bug of this process.
 */
function lockProblem(lock: Lock): string | null {
  if (!(lock.lockType in LOCK_TYPE_BYTE)) return `a lock's type is one of TiKV's: ${lock.lockType}`;
  if (lock.shortValue !== null && lock.shortValue.length > SHORT_VALUE_MAX_LEN) {
    return `a short value fits ${SHORT_VALUE_MAX_LEN} bytes: ${lock.shortValue.length}`;
  }
  if (!lock.useAsyncCommit && lock.secondaries.length > 0) {
    return "only an async-commit lock names secondaries";
  }
  if (lock.lastChange.kind === "Exist" && lock.lastChange.lastChangeTs === 0n) {
    return "a last change that exists has a commit ts";
  }
  return null;
}

/** Whether the lock is a pessimistic lock (not yet prewritten). */
export function isPessimisticLock(lock: Lock): boolean {
  return lock.lockType === "Pessimistic";
}

/** Whether the lock belongs to a pessimistic transaction. */
export function isPessimisticTxn(lock: Lock): boolean {
  return lock.forUpdateTs !== 0n;
}

/** Encodes a lock in TiKV's format (see the module header). */
export function encodeLock(lock: Lock): Uint8Array {
  assertLock(lock);
  const out = new RecordWriter(32 + lock.primary.length + (lock.shortValue?.length ?? 0));
  out.byte(LOCK_TYPE_BYTE[lock.lockType]);
  out.compactBytes(lock.primary);
  out.varU64(lock.startTs);
  out.varU64(lock.ttlMs);
  if (lock.shortValue !== null) (out.byte(SHORT_VALUE_PREFIX), out.shortBytes(lock.shortValue));
  if (lock.forUpdateTs !== 0n) (out.byte(FOR_UPDATE_TS_PREFIX), out.u64(lock.forUpdateTs));
  if (lock.txnSize > 0n) (out.byte(TXN_SIZE_PREFIX), out.u64(lock.txnSize));
  if (lock.minCommitTs !== 0n) (out.byte(MIN_COMMIT_TS_PREFIX), out.u64(lock.minCommitTs));
  if (lock.useAsyncCommit) {
    out.byte(ASYNC_COMMIT_PREFIX);
    out.varU64(BigInt(lock.secondaries.length));
    for (const key of lock.secondaries) out.compactBytes(key);
  }
  if (lock.rollbackTs.length > 0) {
    out.byte(ROLLBACK_TS_PREFIX);
    out.varU64(BigInt(lock.rollbackTs.length));
    for (const ts of lock.rollbackTs) out.u64(ts);
  }
  if (lock.lastChange.kind !== "Unknown") {
    out.byte(LAST_CHANGE_PREFIX);
    out.lastChange(lock.lastChange);
  }
  if (lock.txnSource !== 0n) (out.byte(TXN_SOURCE_PREFIX), out.varU64(lock.txnSource));
  if (lock.isLockedWithConflict) out.byte(LOCKED_WITH_CONFLICT_PREFIX);
  if (lock.generation > 0n) (out.byte(GENERATION_PREFIX), out.u64(lock.generation));
  return out.finish();
}

function decodeLockType(input: RecordReader): LockType {
  const byte = input.byte("lock type");
  for (const [type, code] of Object.entries(LOCK_TYPE_BYTE)) {
    if (code === byte) return type as LockType;
  }
  if (byte === SHARED_LOCK_BYTE) input.fail("shared locks are not supported", 0);
  return input.fail(`unknown lock type byte 0x${byte.toString(16)}`, 0);
}

/**
 * Decodes a lock record.
 * @throws {RecordFormatError} `bad_format_lock` on an empty, truncated or unknown record.
 */
export function decodeLock(bytes: Uint8Array): Lock {
  const input: RecordReader = new RecordReader(bytes, "lock");
  const lockType = decodeLockType(input);
  const primary = input.compactBytes("primary");
  const startTs = input.varU64("start ts");
  const ttlMs = input.atEnd() ? 0n : input.varU64("ttl");
  const lock = newLock({ lockType, primary, startTs, ttlMs });
  readTaggedFields(input, {
    [SHORT_VALUE_PREFIX]: () => (lock.shortValue = input.shortBytes("short value")),
    [FOR_UPDATE_TS_PREFIX]: () => (lock.forUpdateTs = input.u64("for_update_ts")),
    [TXN_SIZE_PREFIX]: () => (lock.txnSize = input.u64("txn_size")),
    [MIN_COMMIT_TS_PREFIX]: () => (lock.minCommitTs = input.u64("min_commit_ts")),
    [ASYNC_COMMIT_PREFIX]: () => {
      lock.useAsyncCommit = true;
      const count = input.varU64("secondaries count");
      if (count > BigInt(bytes.length)) input.fail(`impossible secondaries count ${count}`);
      for (let i = 0n; i < count; i++) lock.secondaries.push(input.compactBytes("secondary"));
    },
    [ROLLBACK_TS_PREFIX]: () => {
      const count = input.varU64("rollback ts count");
      if (count > BigInt(bytes.length)) input.fail(`impossible rollback ts count ${count}`);
      for (let i = 0n; i < count; i++) lock.rollbackTs.push(input.u64("rollback ts"));
    },
    [LAST_CHANGE_PREFIX]: () => (lock.lastChange = input.lastChange()),
    [TXN_SOURCE_PREFIX]: () => (lock.txnSource = input.varU64("txn source")),
    [LOCKED_WITH_CONFLICT_PREFIX]: () => (lock.isLockedWithConflict = true),
    [GENERATION_PREFIX]: () => (lock.generation = input.u64("generation")),
  });
  const problem = lockProblem(lock);
  if (problem !== null) input.fail(`decoded lock breaks an invariant: ${problem}`);
  return lock;
}

const LOCK_TYPE_OP: Record<LockType, kvrpcpb.Op> = {
  Put: kvrpcpb.Op.Put,
  Delete: kvrpcpb.Op.Del,
  Lock: kvrpcpb.Op.Lock,
  Pessimistic: kvrpcpb.Op.PessimisticLock,
};

/** The kvproto `LockInfo` a client receives for `lock` on `rawKey` (TiKV `into_lock_info`). */
export function lockToLockInfo(lock: Lock, rawKey: Uint8Array): kvrpcpb.ILockInfo {
  return {
    primaryLock: lock.primary,
    lockVersion: lock.startTs,
    key: rawKey,
    lockTtl: lock.ttlMs,
    txnSize: lock.txnSize,
    lockType: LOCK_TYPE_OP[lock.lockType],
    lockForUpdateTs: lock.forUpdateTs,
    useAsyncCommit: lock.useAsyncCommit,
    minCommitTs: lock.minCommitTs,
    secondaries: lock.secondaries,
  };
}

/** A one-line description of a lock for messages and logs. */
export function describeLock(lock: Lock): string {
  const parts = [
    `${lock.lockType} lock`,
    `primary=${displayRawKey(lock.primary)}`,
    `start_ts=${lock.startTs}`,
    `ttl=${lock.ttlMs}ms`,
  ];
  if (lock.forUpdateTs !== 0n) parts.push(`for_update_ts=${lock.forUpdateTs}`);
  if (lock.minCommitTs !== 0n) parts.push(`min_commit_ts=${lock.minCommitTs}`);
  if (lock.useAsyncCommit) parts.push(`async_commit(${lock.secondaries.length} secondaries)`);
  return parts.join(" ");
}
