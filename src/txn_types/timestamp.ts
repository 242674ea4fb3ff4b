/**
 * Timestamps of the timestamp oracle (TSO), as TiKV's `txn_types::TimeStamp` defines them: a
 * u64 `physical_ms << 18 | logical`. Basalt carries them as plain `bigint` (STYLE.md: every u64
 * of the protocol is a bigint); this module holds the helpers and the range assertions.
 *
 * Invariant: a timestamp is always in [0, 2^64 - 1]. `TS_ZERO` means "unset" in every record
 * (a lock's `forUpdateTs`, `minCommitTs`), and `TS_MAX` means "the latest" for a read.
 *
 * @module
 */
import { assert } from "../util/assert.ts";

/** A TSO timestamp: a u64 as `physicalMs << 18 | logical`. */
export type TimeStamp = bigint;

/** Bits of the logical part of a timestamp. */
export const TS_PHYSICAL_SHIFT_BITS = 18n;
/** The logical part occupies the low 18 bits. */
export const TS_LOGICAL_MASK = (1n << TS_PHYSICAL_SHIFT_BITS) - 1n;
/** The zero timestamp: "unset". */
export const TS_ZERO: TimeStamp = 0n;
/** The largest timestamp: a read at `TS_MAX` sees the latest committed version. */
export const TS_MAX: TimeStamp = 0xffff_ffff_ffff_ffffn;

/** Asserts that `ts` is a u64 (`AssertionError` otherwise): a failure is a bug in the caller. */
export function assertTs(ts: TimeStamp, what = "timestamp"): void {
  // On every record and key that passes: the message and fields are built only on failure.
  if (typeof ts !== "bigint" || ts < 0n || ts > TS_MAX) {
    assert(false, `${what} is a u64 timestamp`, { ts: String(ts) });
  }
}

/**
 * Builds a timestamp from its physical (milliseconds) and logical parts.
 *
 * @example
 * ```ts
 * import { composeTs, physicalMs, logicalOf } from "./timestamp.ts";
 * const ts = composeTs(1000n, 5n); // 262144005n
 * physicalMs(ts); // 1000n
 * logicalOf(ts); // 5n
 * ```
 */
export function composeTs(physical: bigint, logical: bigint): TimeStamp {
  if (logical < 0n || logical > TS_LOGICAL_MASK) {
    assert(false, "the logical part fits 18 bits", { physical, logical });
  }
  const ts = (physical << TS_PHYSICAL_SHIFT_BITS) | logical;
  assertTs(ts);
  return ts;
}

/** The physical part of `ts`, in milliseconds since the Unix epoch. */
export function physicalMs(ts: TimeStamp): bigint {
  assertTs(ts);
  return ts >> TS_PHYSICAL_SHIFT_BITS;
}

/** The logical part of `ts`. */
export function logicalOf(ts: TimeStamp): bigint {
  assertTs(ts);
  return ts & TS_LOGICAL_MASK;
}

/** `ts + 1`; asserts it does not overflow. */
export function nextTs(ts: TimeStamp): TimeStamp {
  assertTs(ts);
  assert(ts !== TS_MAX, "nextTs(TS_MAX) overflows");
  return ts + 1n;
}

/** `ts - 1`; asserts `ts > 0`. */
export function prevTs(ts: TimeStamp): TimeStamp {
  assertTs(ts);
  assert(ts !== 0n, "prevTs(0) underflows");
  return ts - 1n;
}

/** The larger of the timestamps given. */
export function maxTs(first: TimeStamp, ...rest: TimeStamp[]): TimeStamp {
  let out = first;
  for (const ts of rest) if (ts > out) out = ts;
  return out;
}
