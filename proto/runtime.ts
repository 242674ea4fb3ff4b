/**
 * The protobuf runtime the generated code in `gen/` runs on: protobufjs's minimal build, plus
 * 64-bit readers and writers that speak `bigint`.
 *
 * Why: STYLE.md wants every u64 of the protocol (timestamps, ids, indexes) as a `bigint`, while
 * protobufjs hands out `Long` objects (or lossy numbers). `scripts/gen_proto.ts` rewrites the
 * generated code to call `bigU64`/`bigI64`/`bigU64s` instead of `uint64`/`int64`/`uint64s`, and
 * this module installs those methods on `Reader.prototype` and `Writer.prototype`. They are new
 * names, so nothing in protobufjs (e.g. `protobuf.configure()`, which re-installs its own
 * `uint64`) can undo them, and generated code cannot run without this module: it is the
 * generated module's only import.
 *
 * Decoding returns a `bigint` for every 64-bit field (`0n` when absent). Encoding accepts a
 * `bigint` (as typed), and at run time also a safe integer `number`, a decimal string or a
 * `Long`, for callers migrating from other protobuf code. A u64 outside [0, 2^64) or an i64
 * outside [-2^63, 2^63) is refused with `RangeError` rather than wrapped.
 *
 * @module
 */

import $protobuf from "protobufjs/minimal.js";

/** The parts of protobufjs's Reader these methods use (declared public in its typings). */
interface ReaderState {
  buf: Uint8Array;
  pos: number;
  len: number;
  bigU64(): bigint;
  uint32(): number;
}

/** The parts of protobufjs 8's Writer these methods use; `_reserve` grows `buf`. */
interface WriterState {
  buf: Uint8Array;
  pos: number;
  _reserve(bytes: number): void;
  fork(): WriterState;
  ldelim(): WriterState;
  bigU64(value: unknown): WriterState;
}

const TWO_POW_32 = 0x1_0000_0000;
const U64_MAX = 0xffff_ffff_ffff_ffffn;
const I64_MIN = -0x8000_0000_0000_0000n;
const I64_MAX = 0x7fff_ffff_ffff_ffffn;
const SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER);
const VIEW = new DataView(new ArrayBuffer(8));

/**
 * Reads a varint into VIEW as two big-endian 32-bit halves; returns the high half so callers
 * can take the common small-value path without touching VIEW again.
 */
function readVarintHalves(reader: ReaderState): number {
  const buf = reader.buf;
  const len = reader.len;
  let pos = reader.pos;
  let low = 0;
  let high = 0;
  let byte = 0;
  for (let shift = 0; shift < 28; shift += 7) {
    if (pos >= len) throw new RangeError(`varint: index out of range: ${pos} + 1 > ${len}`);
    byte = buf[pos++]!;
    low |= (byte & 0x7f) << shift;
    if (byte < 0x80) return finish(reader, pos, 0, low);
  }
  if (pos >= len) throw new RangeError(`varint: index out of range: ${pos} + 1 > ${len}`);
  byte = buf[pos++]!;
  low |= (byte & 0x7f) << 28;
  high = (byte & 0x7f) >>> 4;
  if (byte < 0x80) return finish(reader, pos, high, low);
  for (let shift = 3; shift < 38; shift += 7) {
    if (pos >= len) throw new RangeError(`varint: index out of range: ${pos} + 1 > ${len}`);
    byte = buf[pos++]!;
    high |= (byte & 0x7f) << shift;
    if (byte < 0x80) return finish(reader, pos, high, low);
  }
  throw new Error("invalid varint encoding: longer than 10 bytes");
}

function finish(reader: ReaderState, pos: number, high: number, low: number): number {
  reader.pos = pos;
  VIEW.setUint32(0, high >>> 0);
  VIEW.setUint32(4, low >>> 0);
  return high >>> 0;
}

/** Reads a uint64 varint as a bigint. */
function readBigU64(this: ReaderState): bigint {
  const high = readVarintHalves(this);
  // Below 2^53 one BigInt(number) is cheaper than reading 64 bits back out of the view.
  if (high < 0x20_0000) return BigInt(high * TWO_POW_32 + VIEW.getUint32(4));
  return VIEW.getBigUint64(0);
}

/** Reads an int64 varint (two's complement, 10 bytes when negative) as a bigint. */
function readBigI64(this: ReaderState): bigint {
  const high = readVarintHalves(this);
  if (high < 0x20_0000) return BigInt(high * TWO_POW_32 + VIEW.getUint32(4));
  return VIEW.getBigInt64(0);
}

/** Reads a packed repeated uint64 field into `array`. */
function readBigU64s(this: ReaderState, array: bigint[] = []): bigint[] {
  const end = this.uint32() + this.pos;
  const len = this.len;
  if (end > len) throw new RangeError(`index out of range: ${end} > ${len}`);
  this.len = end;
  while (this.pos < end) array.push(this.bigU64());
  if (this.pos !== end) throw new RangeError("index out of range");
  this.len = len;
  return array;
}

/**
 * Puts `value` into VIEW as 64 bits (two's complement) after checking its range; returns the
 * high half. `signed` selects the i64 range instead of the u64 range.
 */
function toHalves(value: unknown, signed: boolean): number {
  let big: bigint;
  if (typeof value === "bigint") {
    if (value >= 0n && value <= SAFE_MAX) return numberHalves(Number(value));
    big = value;
  } else if (typeof value === "number") {
    if (Number.isSafeInteger(value) && value >= 0) return numberHalves(value);
    if (!Number.isSafeInteger(value)) throw new RangeError(`not a safe integer: ${value}`);
    big = BigInt(value);
  } else if (typeof value === "string") {
    big = BigInt(value);
  } else if (value !== null && typeof value === "object" && "low" in value && "high" in value) {
    const long = value as { low: number; high: number };
    VIEW.setUint32(0, long.high >>> 0);
    VIEW.setUint32(4, long.low >>> 0);
    return long.high >>> 0;
  } else {
    throw new TypeError(`not a 64-bit integer: ${String(value)}`);
  }
  if (signed ? big < I64_MIN || big > I64_MAX : big < 0n || big > U64_MAX) {
    throw new RangeError(`not ${signed ? "an i64" : "a u64"}: ${big}`);
  }
  VIEW.setBigUint64(0, BigInt.asUintN(64, big));
  return VIEW.getUint32(0);
}

function numberHalves(value: number): number {
  const low = value >>> 0;
  const high = (value - low) / TWO_POW_32;
  VIEW.setUint32(0, high);
  VIEW.setUint32(4, low);
  return high;
}

/** Writes the varint held in VIEW (high half given); same loop as protobufjs's writeVarint64. */
function writeHalves(writer: WriterState, high: number): WriterState {
  let low = VIEW.getUint32(4);
  writer._reserve(10);
  const buf = writer.buf;
  let pos = writer.pos;
  while (high !== 0) {
    buf[pos++] = (low & 0x7f) | 0x80;
    low = ((low >>> 7) | (high << 25)) >>> 0;
    high >>>= 7;
  }
  while (low > 0x7f) {
    buf[pos++] = (low & 0x7f) | 0x80;
    low >>>= 7;
  }
  buf[pos++] = low;
  writer.pos = pos;
  return writer;
}

function writeBigU64(this: WriterState, value: unknown): WriterState {
  return writeHalves(this, toHalves(value, false));
}

function writeBigI64(this: WriterState, value: unknown): WriterState {
  return writeHalves(this, toHalves(value, true));
}

/** Writes a packed repeated uint64 field (the tag is already written). */
function writeBigU64s(this: WriterState, values: readonly unknown[]): WriterState {
  this.fork();
  for (const value of values) this.bigU64(value);
  return this.ldelim();
}

Object.assign($protobuf.Reader.prototype, {
  bigU64: readBigU64,
  bigI64: readBigI64,
  bigU64s: readBigU64s,
});
Object.assign($protobuf.Writer.prototype, {
  bigU64: writeBigU64,
  bigI64: writeBigI64,
  bigU64s: writeBigU64s,
});

export default $protobuf;
