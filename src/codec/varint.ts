/**
 * Variable-length integers as TiKV's `NumberCodec::encode_var_u64` / `encode_var_i64` write
 * them: unsigned LEB128 (7 bits per byte, low groups first, high bit set on every byte but the
 * last; byte-identical to protobuf's uint64), and for signed values the zigzag mapping
 * `(v << 1) ^ (v >> 63)`. Varints are compact, not order-preserving.
 *
 * Two paths:
 * - `bigint` for the full u64/i64 range (timestamps in lock and write records exceed 2^53). The
 *   value is split into two 32-bit halves through a scratch `DataView`, so an encode does no
 *   bigint arithmetic and a decode allocates a single bigint.
 * - `number` for lengths and counts up to `Number.MAX_SAFE_INTEGER`: no bigint at all.
 *
 * Decoders are strict where TiKV is lenient: a varint longer than 10 bytes, or whose 10th byte
 * carries bits beyond 64, is a `varint_overflow` CodecError rather than silently truncated.
 *
 * @module
 */

import { CodecError } from "./codec_error.ts";
import { I64_MAX, I64_MIN, U64_MAX } from "./number.ts";

/** Longest varint of a 64-bit value. */
export const MAX_VARINT64_LENGTH = 10;

const SCRATCH_VIEW = new DataView(new ArrayBuffer(8));
const TWO_POW_32 = 0x1_0000_0000;

/** A decoded value and where the input continues after it. */
export interface DecodedVarint<T> {
  /** The decoded value. */
  value: T;
  /** Offset just past the varint's last byte. */
  nextOffset: number;
}

/** Bytes needed for the varint of the u64 given as 32-bit halves. */
function lengthOfHalves(high: number, low: number): number {
  if (high === 0) {
    if (low < 0x80) return 1;
    if (low < 0x4000) return 2;
    if (low < 0x20_0000) return 3;
    if (low < 0x1000_0000) return 4;
    return 5;
  }
  // Seven significant bits per byte.
  return Math.ceil((64 - Math.clz32(high)) / 7);
}

/** Writes the varint of the u64 given as 32-bit halves; returns the offset after it. */
function writeHalves(dest: Uint8Array, offset: number, high: number, low: number): number {
  const end = offset + lengthOfHalves(high, low);
  if (offset < 0 || end > dest.length) {
    throw new RangeError(
      `no room for a ${end - offset}-byte varint at ${offset} in ${dest.length}`,
    );
  }
  let at = offset;
  while (high !== 0) {
    dest[at++] = (low & 0x7f) | 0x80;
    low = ((low >>> 7) | (high << 25)) >>> 0;
    high >>>= 7;
  }
  while (low > 0x7f) {
    dest[at++] = (low & 0x7f) | 0x80;
    low >>>= 7;
  }
  dest[at++] = low;
  return at;
}

/** Length in bytes of the varint of u64 `value`. */
export function varU64Length(value: bigint): number {
  if (value < 0n || value > U64_MAX) throw new RangeError(`not a u64: ${value}`);
  SCRATCH_VIEW.setBigUint64(0, value);
  return lengthOfHalves(SCRATCH_VIEW.getUint32(0), SCRATCH_VIEW.getUint32(4));
}

/** Writes u64 `value` as a varint at `offset`; returns the offset after it. */
export function writeVarU64(dest: Uint8Array, offset: number, value: bigint): number {
  if (value < 0n || value > U64_MAX) throw new RangeError(`not a u64: ${value}`);
  SCRATCH_VIEW.setBigUint64(0, value);
  return writeHalves(dest, offset, SCRATCH_VIEW.getUint32(0), SCRATCH_VIEW.getUint32(4));
}

/**
 * Encodes u64 `value` as a varint (TiKV `encode_var_u64`, protobuf `uint64`).
 *
 * @example
 * ```ts
 * import { encodeVarU64 } from "./varint.ts";
 * encodeVarU64(300n); // [0xAC, 0x02]
 * ```
 */
export function encodeVarU64(value: bigint): Uint8Array {
  const out = new Uint8Array(varU64Length(value));
  writeVarU64(out, 0, value);
  return out;
}

/**
 * Decodes a u64 varint at `offset` into 32-bit halves left in SCRATCH_VIEW; returns the offset
 * after it. Shared by the bigint and number decoders.
 */
function readHalves(encoded: Uint8Array, offset: number): number {
  let low = 0;
  let high = 0;
  let at = offset;
  for (let shift = 0; shift < 70; shift += 7) {
    if (at >= encoded.length) {
      throw new CodecError("truncated", offset, `varint ends after ${at - offset} bytes`);
    }
    const byte = encoded[at++]!;
    const bits = byte & 0x7f;
    if (shift < 28) {
      low |= bits << shift;
    } else if (shift === 28) {
      low |= (bits & 0x0f) << 28;
      high |= bits >>> 4;
    } else if (shift < 63) {
      high |= bits << (shift - 32);
    } else if (bits > 1) {
      throw new CodecError(
        "varint_overflow",
        at - 1,
        `10th varint byte 0x${byte.toString(16)} exceeds 64 bits`,
      );
    } else {
      high |= bits << 31;
    }
    if (byte < 0x80) {
      SCRATCH_VIEW.setUint32(0, high >>> 0);
      SCRATCH_VIEW.setUint32(4, low >>> 0);
      return at;
    }
  }
  throw new CodecError(
    "varint_overflow",
    offset,
    `varint longer than ${MAX_VARINT64_LENGTH} bytes`,
  );
}

/**
 * Decodes a u64 varint at `offset` (TiKV `try_decode_var_u64`).
 * @throws {CodecError} `truncated` or `varint_overflow`.
 */
export function decodeVarU64(encoded: Uint8Array, offset = 0): DecodedVarint<bigint> {
  const nextOffset = readHalves(encoded, offset);
  return { value: SCRATCH_VIEW.getBigUint64(0), nextOffset };
}

/** Zigzag maps i64 to u64 so small magnitudes stay short: 0→0, -1→1, 1→2, -2→3. */
function zigzag(value: bigint): bigint {
  return value < 0n ? ((-value) << 1n) - 1n : value << 1n;
}

/** Length in bytes of the zigzag varint of i64 `value`. */
export function varI64Length(value: bigint): number {
  if (value < I64_MIN || value > I64_MAX) throw new RangeError(`not an i64: ${value}`);
  return varU64Length(zigzag(value));
}

/** Writes i64 `value` as a zigzag varint at `offset`; returns the offset after it. */
export function writeVarI64(dest: Uint8Array, offset: number, value: bigint): number {
  if (value < I64_MIN || value > I64_MAX) throw new RangeError(`not an i64: ${value}`);
  return writeVarU64(dest, offset, zigzag(value));
}

/**
 * Encodes i64 `value` as a zigzag varint (TiKV `encode_var_i64`).
 *
 * @example
 * ```ts
 * import { encodeVarI64 } from "./varint.ts";
 * encodeVarI64(-1n); // [0x01]
 * ```
 */
export function encodeVarI64(value: bigint): Uint8Array {
  const out = new Uint8Array(varI64Length(value));
  writeVarI64(out, 0, value);
  return out;
}

/** Decodes a zigzag i64 varint at `offset` (TiKV `try_decode_var_i64`). */
export function decodeVarI64(encoded: Uint8Array, offset = 0): DecodedVarint<bigint> {
  const { value, nextOffset } = decodeVarU64(encoded, offset);
  const magnitude = value >> 1n;
  return { value: (value & 1n) === 0n ? magnitude : -magnitude - 1n, nextOffset };
}

function checkSafeUint(value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`not a safe non-negative integer: ${value}`);
  }
}

/** Length in bytes of the varint of `value`, a safe non-negative integer. */
export function varUintLength(value: number): number {
  checkSafeUint(value);
  return lengthOfHalves(Math.floor(value / TWO_POW_32), value >>> 0);
}

/**
 * Writes `value` (a safe non-negative integer) as a varint at `offset`; returns the offset after
 * it. Same bytes as {@linkcode writeVarU64} without touching bigint.
 */
export function writeVarUint(dest: Uint8Array, offset: number, value: number): number {
  checkSafeUint(value);
  return writeHalves(dest, offset, Math.floor(value / TWO_POW_32), value >>> 0);
}

/** Encodes a safe non-negative integer as a varint. */
export function encodeVarUint(value: number): Uint8Array {
  const out = new Uint8Array(varUintLength(value));
  writeVarUint(out, 0, value);
  return out;
}

/**
 * Decodes a varint at `offset` as a number.
 * @throws {CodecError} `varint_overflow` when the value exceeds `Number.MAX_SAFE_INTEGER` (use
 *   {@linkcode decodeVarU64}), `truncated` when the input ends inside it.
 */
export function decodeVarUint(encoded: Uint8Array, offset = 0): DecodedVarint<number> {
  const nextOffset = readHalves(encoded, offset);
  const high = SCRATCH_VIEW.getUint32(0);
  if (high > 0x1f_ffff) {
    throw new CodecError("varint_overflow", offset, "varint exceeds Number.MAX_SAFE_INTEGER");
  }
  return { value: high * TWO_POW_32 + SCRATCH_VIEW.getUint32(4), nextOffset };
}
