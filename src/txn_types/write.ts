/**
 * Commit and rollback records: the values of the `write` column family (TiKV
 * `txn_types::Write`), keyed by `encodedKey ++ desc(commitTs)` (a rollback is keyed by its own
 * start ts).
 *
 * Format (byte-compatible with TiKV):
 *
 *     type byte ('P' Put, 'D' Delete, 'L' Lock, 'R' Rollback)
 *     start_ts         varint u64
 *     then optional fields, written in this order when set:
 *     'v' len:u8 bytes     short value (a protected rollback carries the one byte "p")
 *     'R'                  has_overlapped_rollback
 *     'F' u64              gc_fence
 *     'l' u64 varint       last change (ts, estimated versions)
 *     'S' varint           txn source
 *
 * As for locks, an unknown prefix or a truncation is a {@linkcode RecordFormatError} here,
 * where TiKV stops parsing or panics.
 *
 * @module
 */

import { LAST_CHANGE_UNKNOWN, type LastChange } from "./last_change.ts";
import type { LockType } from "./lock.ts";
import { SHORT_VALUE_MAX_LEN, SHORT_VALUE_PREFIX } from "./lock.ts";
import { readTaggedFields, RecordReader, RecordWriter } from "./record_codec.ts";
import { assertTs, type TimeStamp } from "./timestamp.ts";
import { assert } from "../util/assert.ts";

/** The kind of a write record. */
export type WriteType = "Put" | "Delete" | "Lock" | "Rollback";

const WRITE_TYPE_BYTE: Record<WriteType, number> = {
  Put: 0x50, // 'P'
  Delete: 0x44, // 'D'
  Lock: 0x4c, // 'L'
  Rollback: 0x52, // 'R'
};

const OVERLAPPED_ROLLBACK_FLAG = 0x52; // 'R'
const GC_FENCE_PREFIX = 0x46; // 'F'
const LAST_CHANGE_PREFIX = 0x6c; // 'l'
const TXN_SOURCE_PREFIX = 0x53; // 'S'

/** The short value that marks a rollback record as protected from collapsing. */
export const PROTECTED_ROLLBACK_SHORT_VALUE: Uint8Array = Uint8Array.of(0x70); // "p"

/** A write record. */
export interface Write {
  writeType: WriteType;
  startTs: TimeStamp;
  /** The value when inline; `null` for a Put means the value is in the default CF. */
  shortValue: Uint8Array | null;
  /**
   * A commit record that also stands for a rollback of another transaction with the same
   * start ts as this commit ts (the two records would share one key).
   */
  hasOverlappedRollback: boolean;
  /**
   * Set when a commit record was rewritten to mark an overlapped rollback: `0n` when there was
   * no newer version, else the commit ts of the next Put/Delete version. `null` when never
   * rewritten. A reader that finds the record as the latest version at `readTs` with
   * `0 < gcFence <= readTs` knows the fence version was GC-ed and treats this one as gone.
   */
  gcFence: TimeStamp | null;
  lastChange: LastChange;
  txnSource: bigint;
}

/** What {@linkcode newWrite} needs; the rest takes zero values. */
export type WriteInit =
  & Pick<Write, "writeType" | "startTs">
  & Partial<Omit<Write, "writeType" | "startTs">>;

/** A write record with defaults for the optional fields. */
export function newWrite(init: WriteInit): Write {
  const write: Write = {
    shortValue: null,
    hasOverlappedRollback: false,
    gcFence: null,
    lastChange: LAST_CHANGE_UNKNOWN,
    txnSource: 0n,
    ...init,
  };
  assertWrite(write);
  return write;
}

/**
 * A rollback record for the transaction at `startTs`. A protected rollback must never be
 * collapsed (removed by a later rollback or GC), because a late prewrite of the same
 * transaction must still find it; TiKV protects the primary key's rollback.
 */
export function newRollback(startTs: TimeStamp, isProtected: boolean): Write {
  return newWrite({
    writeType: "Rollback",
    startTs,
    shortValue: isProtected ? PROTECTED_ROLLBACK_SHORT_VALUE.slice() : null,
  });
}

/**
 * Asserts the invariants of a write record (`AssertionError`): a failure is a bug in the code
 * that built it. Every record passes here when it is made (`newWrite`) and when it is encoded.
 */
export function assertWrite(write: Write): void {
  assertTs(write.startTs, "write startTs");
  if (write.gcFence !== null) assertTs(write.gcFence, "write gcFence");
  const problem = writeProblem(write);
  if (problem !== null) {
    assert(false, problem, { startTs: write.startTs, writeType: write.writeType });
  }
}

/**
 * The first invariant `write` breaks that a record read from disk could also break, or null.
 * `decodeWrite` checks a decoded record against the same rules, where a break is corruption (a
 * `RecordFormatError`). TiKV asserts the GC-fence rule in `WriteRef::set_overlapped_rollback`:
 * a fence is only ever set together with the overlapped-rollback flag, and the flag marks
 * another transaction's commit record, never a rollback record.
 */
function writeProblem(write: Write): string | null {
  if (!(write.writeType in WRITE_TYPE_BYTE)) {
    return `a write's type is one of TiKV's: ${write.writeType}`;
  }
  if (write.shortValue !== null && write.shortValue.length > SHORT_VALUE_MAX_LEN) {
    return `a short value fits ${SHORT_VALUE_MAX_LEN} bytes: ${write.shortValue.length}`;
  }
  if (write.gcFence !== null && !write.hasOverlappedRollback) {
    return "a GC fence comes only with an overlapped rollback";
  }
  if (write.hasOverlappedRollback && write.writeType === "Rollback") {
    return "a rollback record never carries the overlapped-rollback flag";
  }
  if (write.lastChange.kind === "Exist" && write.lastChange.lastChangeTs === 0n) {
    return "a last change that exists has a commit ts";
  }
  return null;
}

/** The write type a lock becomes when committed; `null` for a pessimistic lock. */
export function writeTypeFromLockType(lockType: LockType): WriteType | null {
  return lockType === "Pessimistic" ? null : lockType;
}

/** Whether `write` is a rollback record protected from collapsing. */
export function isProtectedRollback(write: Write): boolean {
  return write.writeType === "Rollback" && write.shortValue !== null &&
    write.shortValue.length === 1 && write.shortValue[0] === PROTECTED_ROLLBACK_SHORT_VALUE[0];
}

/**
 * Whether `write`, found as the latest version at `readTs`, is valid: false when its GC fence
 * points at a version at or below `readTs` that must therefore have been GC-ed (TiKV
 * `check_gc_fence_as_latest_version`).
 */
export function checkGcFenceAsLatestVersion(write: Write, readTs: TimeStamp): boolean {
  return !(write.gcFence !== null && write.gcFence !== 0n && write.gcFence <= readTs);
}

/** Encodes a write record in TiKV's format (see the module header). */
export function encodeWrite(write: Write): Uint8Array {
  assertWrite(write);
  const out = new RecordWriter(16 + (write.shortValue?.length ?? 0));
  out.byte(WRITE_TYPE_BYTE[write.writeType]);
  out.varU64(write.startTs);
  if (write.shortValue !== null) (out.byte(SHORT_VALUE_PREFIX), out.shortBytes(write.shortValue));
  if (write.hasOverlappedRollback) out.byte(OVERLAPPED_ROLLBACK_FLAG);
  if (write.gcFence !== null) (out.byte(GC_FENCE_PREFIX), out.u64(write.gcFence));
  if (write.lastChange.kind !== "Unknown") {
    out.byte(LAST_CHANGE_PREFIX);
    out.lastChange(write.lastChange);
  }
  if (write.txnSource !== 0n) (out.byte(TXN_SOURCE_PREFIX), out.varU64(write.txnSource));
  return out.finish();
}

/**
 * Decodes a write record.
 * @throws {RecordFormatError} `bad_format_write` on an empty, truncated or unknown record.
 */
export function decodeWrite(bytes: Uint8Array): Write {
  const input: RecordReader = new RecordReader(bytes, "write");
  const typeByte = input.byte("write type");
  const writeType = (Object.keys(WRITE_TYPE_BYTE) as WriteType[]).find((type) =>
    WRITE_TYPE_BYTE[type] === typeByte
  );
  if (writeType === undefined) input.fail(`unknown write type byte 0x${typeByte.toString(16)}`, 0);
  const write = newWrite({ writeType, startTs: input.varU64("start ts") });
  readTaggedFields(input, {
    [SHORT_VALUE_PREFIX]: () => (write.shortValue = input.shortBytes("short value")),
    [OVERLAPPED_ROLLBACK_FLAG]: () => (write.hasOverlappedRollback = true),
    [GC_FENCE_PREFIX]: () => (write.gcFence = input.u64("gc fence")),
    [LAST_CHANGE_PREFIX]: () => (write.lastChange = input.lastChange()),
    [TXN_SOURCE_PREFIX]: () => (write.txnSource = input.varU64("txn source")),
  });
  const problem = writeProblem(write);
  if (problem !== null) input.fail(`decoded write breaks an invariant: ${problem}`);
  return write;
}

/** A one-line description of a write record for messages and logs. */
export function describeWrite(write: Write): string {
  const parts = [`${write.writeType} start_ts=${write.startTs}`];
  if (write.shortValue !== null) parts.push(`short_value=${write.shortValue.length}B`);
  if (write.hasOverlappedRollback) parts.push("overlapped_rollback");
  if (write.gcFence !== null) parts.push(`gc_fence=${write.gcFence}`);
  return parts.join(" ");
}
