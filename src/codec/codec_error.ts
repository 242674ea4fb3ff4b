/**
 * The one error class of the key codec.
 *
 * Decoding reads bytes that came from disk or from the network, so truncated or corrupt input is
 * an expected failure, not a bug: it is thrown as a `CodecError` with a stable `code`, the byte
 * `offset` where the problem was found, and a message naming both. Misuse by the caller (a u64
 * out of range, a negative length) is a bug and throws `RangeError` instead.
 *
 * @module
 */

/** Stable codes of {@linkcode CodecError}, in the spirit of TiKV's `codec::Error` variants. */
export type CodecErrorCode =
  /** The input ended before the value did (TiKV: `Io(UnexpectedEof)`). */
  | "truncated"
  /** A memcomparable group has a bad marker or non-padding bytes in its padding (TiKV: `KeyPadding`). */
  | "bad_padding"
  /** A key is too short to hold a timestamp (TiKV: `KeyLength`). */
  | "bad_key_length"
  /** A varint runs longer than 10 bytes or exceeds the target range. */
  | "varint_overflow"
  /** Bytes are left over after a value that must fill its input. */
  | "trailing_bytes";

/**
 * Thrown when encoded input is truncated or corrupt.
 *
 * @example
 * ```ts
 * import { CodecError, decodeBytes } from "./mod.ts";
 * try {
 *   decodeBytes(new Uint8Array([1, 2, 3]));
 * } catch (e) {
 *   if (e instanceof CodecError) console.log(e.code, e.offset); // "truncated" 0
 * }
 * ```
 */
export class CodecError extends Error {
  /** What was wrong, as a stable code. */
  readonly code: CodecErrorCode;
  /** Byte offset in the input where the problem was found. */
  readonly offset: number;

  /** Creates an error; the message is prefixed with the code and offset. */
  constructor(code: CodecErrorCode, offset: number, detail: string) {
    super(`codec: ${code} at offset ${offset}: ${detail}`);
    this.name = "CodecError";
    this.code = code;
    this.offset = offset;
  }
}
