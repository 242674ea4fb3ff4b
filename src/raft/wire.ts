/**
 * The protobuf wire format, for the one eraftpb message the Raft core itself puts into a log
 * entry: `ConfChange` (in the `data` of an EntryConfChange entry).
 *
 * Why hand-written: src/raft is pure and self-contained (README.md); it imports nothing outside
 * its folder, in particular not protobufjs's generated code in `proto/gen/`. Everything else
 * eraftpb (Message, Entry, HardState) crosses the wire at the raftstore edge, where the
 * generated code converts it; only ConfChange is encoded inside the core, because
 * `RawNode.proposeConfChange` builds the entry. `wire_test.ts` checks these bytes against
 * protobufjs's encoding of `eraftpb.ConfChange`.
 *
 * What is supported: varint fields (uint64 as bigint, enums), length-delimited fields (bytes),
 * and skipping every wire type a newer peer might add (varint, 64-bit, length-delimited,
 * 32-bit). Groups (wire types 3 and 4, deprecated since proto2) are refused.
 *
 * Invariants: a writer emits fields in the order asked (callers ask in field-number order, as
 * protobufjs does, so bytes compare equal); a reader never reads past its input and fails with
 * `WireFormatError` naming the offset on truncated or malformed input.
 *
 * @module
 */

/** A malformed protobuf encoding. */
export class WireFormatError extends Error {
  override name = "WireFormatError";
}

/** Protobuf wire types. */
export enum WireType {
  Varint = 0,
  Fixed64 = 1,
  LengthDelimited = 2,
  Fixed32 = 5,
}

const U64_MAX = 0xffff_ffff_ffff_ffffn;
/** A varint holds at most 64 bits: ten groups of seven. */
const MAX_VARINT_BYTES = 10;

/** Appends protobuf fields to a growing buffer. */
export class ProtoWriter {
  private readonly out: number[] = [];

  /** Writes a uint64 field; proto3 omits the default (zero). */
  uint64(field: number, value: bigint): this {
    if (value < 0n || value > U64_MAX) throw new RangeError(`uint64 field ${field}: ${value}`);
    if (value === 0n) return this;
    this.tag(field, WireType.Varint);
    this.varint(value);
    return this;
  }

  /** Writes an enum field (non-negative values only); proto3 omits the default (zero). */
  enumValue(field: number, value: number): this {
    if (!Number.isInteger(value) || value < 0) {
      throw new RangeError(`enum field ${field}: ${value}`);
    }
    if (value === 0) return this;
    this.tag(field, WireType.Varint);
    this.varint(BigInt(value));
    return this;
  }

  /** Writes a bytes field; proto3 omits the default (empty). */
  bytes(field: number, value: Uint8Array): this {
    if (value.length === 0) return this;
    this.tag(field, WireType.LengthDelimited);
    this.varint(BigInt(value.length));
    for (const b of value) this.out.push(b);
    return this;
  }

  /** The bytes written so far. */
  finish(): Uint8Array {
    return Uint8Array.from(this.out);
  }

  private tag(field: number, wireType: WireType): void {
    this.varint(BigInt((field << 3) | wireType));
  }

  private varint(value: bigint): void {
    let v = value;
    while (v >= 0x80n) {
      this.out.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.out.push(Number(v));
  }
}

/** Reads the fields of one protobuf message, in the order they are encoded. */
export class ProtoReader {
  private offset = 0;

  /** A reader over `data` (not copied; `bytes()` returns copies). */
  constructor(private readonly data: Uint8Array) {}

  /** True when every byte has been read. */
  done(): boolean {
    return this.offset >= this.data.length;
  }

  /** The next field's number and wire type. */
  tag(): { field: number; wireType: number } {
    const at = this.offset;
    const key = this.varint();
    const field = Number(key >> 3n);
    const wireType = Number(key & 7n);
    if (field === 0 || key > 0xffff_ffffn) throw new WireFormatError(`bad field tag at ${at}`);
    return { field, wireType };
  }

  /** A varint, as an unsigned 64-bit bigint. */
  varint(): bigint {
    const start = this.offset;
    let value = 0n;
    for (let i = 0; i < MAX_VARINT_BYTES; i++) {
      const b = this.data[this.offset];
      if (b === undefined) throw new WireFormatError(`truncated varint at ${start}`);
      this.offset++;
      value |= BigInt(b & 0x7f) << BigInt(7 * i);
      if ((b & 0x80) === 0) {
        if (value > U64_MAX) throw new WireFormatError(`varint above 64 bits at ${start}`);
        return value;
      }
    }
    throw new WireFormatError(`varint longer than ${MAX_VARINT_BYTES} bytes at ${start}`);
  }

  /** A length-delimited value, copied out of the input. */
  bytes(): Uint8Array {
    const at = this.offset;
    const length = this.varint();
    if (length > BigInt(this.data.length - this.offset)) {
      throw new WireFormatError(`length ${length} at ${at} runs past the end`);
    }
    const out = this.data.slice(this.offset, this.offset + Number(length));
    this.offset += Number(length);
    return out;
  }

  /** Skips a field of `wireType` (one this reader's caller does not know). */
  skip(wireType: number): void {
    const at = this.offset;
    let width = 0;
    if (wireType === WireType.Varint) return void this.varint();
    if (wireType === WireType.LengthDelimited) return void this.bytes();
    if (wireType === WireType.Fixed64) width = 8;
    else if (wireType === WireType.Fixed32) width = 4;
    else throw new WireFormatError(`unsupported wire type ${wireType} at ${at}`);
    if (this.offset + width > this.data.length) {
      throw new WireFormatError(`truncated fixed${width * 8} at ${at}`);
    }
    this.offset += width;
  }
}
