/**
 * Fixed-width 64-bit integers in memcomparable form, as TiKV's `codec::number` writes them:
 * big-endian, so byte order is numeric order. u64 descending is the bitwise NOT (`!v`); i64
 * flips the sign bit first (`v ^ 1 << 63`) so negatives sort before positives; i64 descending
 * is the NOT of that.
 *
 * Values are `bigint` (STYLE.md: every u64 of the protocol is a bigint). Conversion goes through
 * one module-level scratch `DataView` rather than bigint shifts, which allocate: an encode or
 * decode costs one `getBig*`/`setBig*` call and eight byte copies, and `encode*` allocates only
 * the 8-byte result. Out-of-range values are a caller bug and throw `RangeError`.
 *
 * @module
 */

import { CodecError } from "./codec_error.ts";

/** Bytes in an encoded u64 or i64 (TiKV `number::U64_SIZE`). */
export const U64_SIZE = 8;
/** Largest u64. */
export const U64_MAX = 0xffff_ffff_ffff_ffffn;
/** Smallest and largest i64. */
export const I64_MIN = -0x8000_0000_0000_0000n;
/** Largest i64. */
export const I64_MAX = 0x7fff_ffff_ffff_ffffn;

const SCRATCH = new Uint8Array(U64_SIZE);
const SCRATCH_VIEW = new DataView(SCRATCH.buffer);

function checkU64(value: bigint): void {
  if (value < 0n || value > U64_MAX) throw new RangeError(`not a u64: ${value}`);
}

function checkI64(value: bigint): void {
  if (value < I64_MIN || value > I64_MAX) throw new RangeError(`not an i64: ${value}`);
}

function checkRoom(buffer: Uint8Array, offset: number, what: string): void {
  if (offset < 0 || offset + U64_SIZE > buffer.length) {
    throw new CodecError(
      "truncated",
      offset,
      `${what} needs ${U64_SIZE} bytes, ${Math.max(0, buffer.length - offset)} left`,
    );
  }
}

/** Copies SCRATCH into `dest` at `offset`, XOR-ing byte 0 with `firstFlip` and all with `flip`. */
function emit(dest: Uint8Array, offset: number, flip: number, firstFlip: number): number {
  if (offset < 0 || offset + U64_SIZE > dest.length) {
    throw new RangeError(`no room for 8 bytes at offset ${offset} in ${dest.length}`);
  }
  dest[offset] = SCRATCH[0]! ^ firstFlip ^ flip;
  for (let i = 1; i < U64_SIZE; i++) dest[offset + i] = SCRATCH[i]! ^ flip;
  return offset + U64_SIZE;
}

/** Copies 8 bytes at `offset` into SCRATCH, undoing the same flips as {@linkcode emit}. */
function absorb(source: Uint8Array, offset: number, flip: number, firstFlip: number): void {
  SCRATCH[0] = source[offset]! ^ firstFlip ^ flip;
  for (let i = 1; i < U64_SIZE; i++) SCRATCH[i] = source[offset + i]! ^ flip;
}

/** Writes `value` big-endian ascending at `offset`; returns the offset after it. */
export function writeU64(dest: Uint8Array, offset: number, value: bigint): number {
  checkU64(value);
  SCRATCH_VIEW.setBigUint64(0, value);
  return emit(dest, offset, 0x00, 0x00);
}

/** Writes `value` in descending order (`!value` big-endian) at `offset` (TiKV `encode_u64_desc`). */
export function writeU64Desc(dest: Uint8Array, offset: number, value: bigint): number {
  checkU64(value);
  SCRATCH_VIEW.setBigUint64(0, value);
  return emit(dest, offset, 0xff, 0x00);
}

/** Writes `value` ascending with the sign bit flipped at `offset` (TiKV `encode_i64`). */
export function writeI64(dest: Uint8Array, offset: number, value: bigint): number {
  checkI64(value);
  SCRATCH_VIEW.setBigInt64(0, value);
  return emit(dest, offset, 0x00, 0x80);
}

/** Writes `value` descending at `offset` (TiKV `encode_i64_desc`). */
export function writeI64Desc(dest: Uint8Array, offset: number, value: bigint): number {
  checkI64(value);
  SCRATCH_VIEW.setBigInt64(0, value);
  return emit(dest, offset, 0xff, 0x80);
}

/**
 * Encodes a u64 as 8 big-endian bytes, ascending.
 *
 * @example
 * ```ts
 * import { encodeU64 } from "./number.ts";
 * encodeU64(1n); // [0, 0, 0, 0, 0, 0, 0, 1]
 * ```
 */
export function encodeU64(value: bigint): Uint8Array {
  const out = new Uint8Array(U64_SIZE);
  writeU64(out, 0, value);
  return out;
}

/** Encodes a u64 in descending order. */
export function encodeU64Desc(value: bigint): Uint8Array {
  const out = new Uint8Array(U64_SIZE);
  writeU64Desc(out, 0, value);
  return out;
}

/** Encodes an i64 in ascending order (sign bit flipped). */
export function encodeI64(value: bigint): Uint8Array {
  const out = new Uint8Array(U64_SIZE);
  writeI64(out, 0, value);
  return out;
}

/** Encodes an i64 in descending order. */
export function encodeI64Desc(value: bigint): Uint8Array {
  const out = new Uint8Array(U64_SIZE);
  writeI64Desc(out, 0, value);
  return out;
}

/**
 * Decodes an ascending u64 from the 8 bytes at `offset`.
 * @throws {CodecError} `truncated` when fewer than 8 bytes remain.
 */
export function decodeU64(encoded: Uint8Array, offset = 0): bigint {
  checkRoom(encoded, offset, "u64");
  absorb(encoded, offset, 0x00, 0x00);
  return SCRATCH_VIEW.getBigUint64(0);
}

/** Decodes a descending u64 from the 8 bytes at `offset`. */
export function decodeU64Desc(encoded: Uint8Array, offset = 0): bigint {
  checkRoom(encoded, offset, "u64");
  absorb(encoded, offset, 0xff, 0x00);
  return SCRATCH_VIEW.getBigUint64(0);
}

/** Decodes an ascending i64 from the 8 bytes at `offset`. */
export function decodeI64(encoded: Uint8Array, offset = 0): bigint {
  checkRoom(encoded, offset, "i64");
  absorb(encoded, offset, 0x00, 0x80);
  return SCRATCH_VIEW.getBigInt64(0);
}

/** Decodes a descending i64 from the 8 bytes at `offset`. */
export function decodeI64Desc(encoded: Uint8Array, offset = 0): bigint {
  checkRoom(encoded, offset, "i64");
  absorb(encoded, offset, 0xff, 0x80);
  return SCRATCH_VIEW.getBigInt64(0);
}
