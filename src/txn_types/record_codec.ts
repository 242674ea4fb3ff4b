/**
 * The byte-level pieces shared by the lock and write record formats: a growable writer and a
 * bounds-checked reader of single bytes, varints, big-endian u64s, TiKV "compact bytes" (a
 * zigzag varint length followed by the bytes, `encode_compact_bytes`), the two compound fields
 * both records carry (a short value, a last change), and the loop over the tagged fields that
 * follow a record's fixed head.
 *
 * The reader turns every truncation or overflow into a {@linkcode RecordFormatError}, so a
 * corrupt record never surfaces as a bare codec error from the middle of a parse.
 *
 * @module
 */

import { CodecError } from "../codec/codec_error.ts";
import { decodeU64, U64_SIZE, writeU64 } from "../codec/number.ts";
import {
  decodeVarI64,
  decodeVarU64,
  MAX_VARINT64_LENGTH,
  writeVarI64,
  writeVarU64,
} from "../codec/varint.ts";
import { type LastChange, lastChangeFromParts, lastChangeToParts } from "./last_change.ts";
import { assert } from "../util/assert.ts";

/** Which record failed to decode. */
export type RecordKind = "lock" | "write";

/**
 * A lock or write record that cannot be decoded (TiKV `BadFormatLock` / `BadFormatWrite`).
 * Records come from disk or from a peer, so this is an expected failure with a stable `code`.
 */
export class RecordFormatError extends Error {
  /** `bad_format_lock` or `bad_format_write`. */
  readonly code: "bad_format_lock" | "bad_format_write";
  /** Byte offset in the record where the problem was found. */
  readonly offset: number;

  constructor(kind: RecordKind, offset: number, detail: string) {
    super(`bad ${kind} record at offset ${offset}: ${detail}`);
    this.name = "RecordFormatError";
    this.code = kind === "lock" ? "bad_format_lock" : "bad_format_write";
    this.offset = offset;
  }
}

/** Appends record fields to a growing buffer. */
export class RecordWriter {
  #buffer: Uint8Array;
  #length = 0;

  constructor(capacity: number) {
    this.#buffer = new Uint8Array(Math.max(16, capacity));
  }

  #reserve(extra: number): void {
    const needed = this.#length + extra;
    if (needed <= this.#buffer.length) return;
    const grown = new Uint8Array(Math.max(needed, this.#buffer.length * 2));
    grown.set(this.#buffer.subarray(0, this.#length));
    this.#buffer = grown;
  }

  byte(value: number): void {
    if (!Number.isInteger(value) || value < 0 || value > 0xff) {
      assert(false, "a record field byte is in [0, 255]", { value });
    }
    this.#reserve(1);
    this.#buffer[this.#length++] = value;
  }

  varU64(value: bigint): void {
    this.#reserve(MAX_VARINT64_LENGTH);
    this.#length = writeVarU64(this.#buffer, this.#length, value);
  }

  u64(value: bigint): void {
    this.#reserve(U64_SIZE);
    this.#length = writeU64(this.#buffer, this.#length, value);
  }

  raw(bytes: Uint8Array): void {
    this.#reserve(bytes.length);
    this.#buffer.set(bytes, this.#length);
    this.#length += bytes.length;
  }

  /** TiKV `encode_compact_bytes`: zigzag varint length, then the bytes. */
  compactBytes(bytes: Uint8Array): void {
    this.#reserve(MAX_VARINT64_LENGTH);
    this.#length = writeVarI64(this.#buffer, this.#length, BigInt(bytes.length));
    this.raw(bytes);
  }

  /** A short value: its length in one byte, then the bytes. */
  shortBytes(bytes: Uint8Array): void {
    this.byte(bytes.length);
    this.raw(bytes);
  }

  /** A last change as its on-disk pair: the ts as u64, the versions as varint. */
  lastChange(change: LastChange): void {
    const [ts, versions] = lastChangeToParts(change);
    this.u64(ts);
    this.varU64(versions);
  }

  /** The bytes written, as a fresh array of exact length. */
  finish(): Uint8Array {
    return this.#buffer.slice(0, this.#length);
  }
}

/** Reads record fields, turning truncation into {@linkcode RecordFormatError}. */
export class RecordReader {
  readonly #bytes: Uint8Array;
  readonly #kind: RecordKind;
  #offset = 0;

  constructor(bytes: Uint8Array, kind: RecordKind) {
    this.#bytes = bytes;
    this.#kind = kind;
  }

  get offset(): number {
    return this.#offset;
  }

  atEnd(): boolean {
    return this.#offset >= this.#bytes.length;
  }

  fail(detail: string, offset = this.#offset): never {
    throw new RecordFormatError(this.#kind, offset, detail);
  }

  #wrap<T>(what: string, body: () => T): T {
    try {
      return body();
    } catch (error) {
      if (error instanceof CodecError) this.fail(`${what}: ${error.message}`);
      throw error;
    }
  }

  byte(what: string): number {
    if (this.#offset >= this.#bytes.length) this.fail(`truncated before ${what}`);
    return this.#bytes[this.#offset++]!;
  }

  varU64(what: string): bigint {
    return this.#wrap(what, () => {
      const { value, nextOffset } = decodeVarU64(this.#bytes, this.#offset);
      this.#offset = nextOffset;
      return value;
    });
  }

  u64(what: string): bigint {
    if (this.#offset + U64_SIZE > this.#bytes.length) this.fail(`truncated inside ${what}`);
    const value = decodeU64(this.#bytes, this.#offset);
    this.#offset += U64_SIZE;
    return value;
  }

  /** `length` bytes, copied. */
  raw(length: number, what: string): Uint8Array {
    if (this.#offset + length > this.#bytes.length) {
      this.fail(
        `${what} needs ${length} bytes, ${this.#bytes.length - this.#offset} are left`,
      );
    }
    const out = this.#bytes.slice(this.#offset, this.#offset + length);
    this.#offset += length;
    return out;
  }

  /** TiKV `decode_compact_bytes`. */
  compactBytes(what: string): Uint8Array {
    const start = this.#offset;
    const length = this.#wrap(what, () => {
      const { value, nextOffset } = decodeVarI64(this.#bytes, this.#offset);
      this.#offset = nextOffset;
      return value;
    });
    if (length < 0n || length > BigInt(this.#bytes.length)) {
      this.fail(`${what} has impossible length ${length}`, start);
    }
    return this.raw(Number(length), what);
  }

  /** A short value written by `RecordWriter.shortBytes`. */
  shortBytes(what: string): Uint8Array {
    return this.raw(this.byte(`${what} length`), what);
  }

  /** A last change written by `RecordWriter.lastChange`. */
  lastChange(): LastChange {
    const ts = this.u64("last change ts");
    const versions = this.varU64("versions to last change");
    return lastChangeFromParts(ts, versions);
  }
}

/**
 * Reads the tagged fields after a record's fixed head, up to its end: each is a prefix byte,
 * then what `fields[prefix]` reads. An unknown prefix is a {@linkcode RecordFormatError} (TiKV
 * stops parsing or panics there).
 */
export function readTaggedFields(
  input: RecordReader,
  fields: Readonly<Record<number, () => void>>,
): void {
  while (!input.atEnd()) {
    const prefixAt = input.offset;
    const prefix = input.byte("field prefix");
    const read = fields[prefix];
    if (read === undefined) input.fail(`unknown field prefix 0x${prefix.toString(16)}`, prefixAt);
    read();
  }
}
