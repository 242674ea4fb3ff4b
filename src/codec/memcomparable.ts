/**
 * Memcomparable bytes encoding, as TiKV's `tikv_util::codec::bytes::encode_bytes` and
 * `codec::byte::MemComparableByteCodec` define it (from MyRocks' record format).
 *
 * The raw bytes are cut into groups of 8. Every group is written in full (the last one padded
 * with 0x00) and followed by a marker byte `0xFF - padding`, where `padding` is the number of pad
 * bytes in that group: 0 for every full group except the last, and 1..8 for the last group, which
 * always exists (so the empty input encodes to 8 zero bytes and 0xF7). The descending variant is
 * the bitwise NOT of every byte of the ascending encoding.
 *
 * Invariants this module keeps:
 * - `compareBytes(a, b) === compareBytes(encodeBytes(a), encodeBytes(b))` for all inputs, and the
 *   descending encoding reverses that order.
 * - An encoding is self-delimiting: a decoder finds its end without a length prefix, so encoded
 *   fields can be concatenated (e.g. key ++ timestamp) and still compare correctly.
 * - The encoded length is `(floor(n / 8) + 1) * 9`, computed before any byte is written, so each
 *   encode allocates exactly once.
 *
 * @module
 */

import { CodecError } from "./codec_error.ts";

/** Bytes of payload per group. */
export const MEMCOMPARABLE_GROUP_SIZE = 8;
/** Marker of a group with no padding (ascending). */
const MARKER = 0xff;
/** Bytes per encoded group: payload plus marker. */
const ENCODED_GROUP_SIZE = MEMCOMPARABLE_GROUP_SIZE + 1;

/**
 * Length of the memcomparable encoding of `rawLength` bytes (TiKV `max_encoded_bytes_size`).
 *
 * @example
 * ```ts
 * import { encodedBytesLength } from "./memcomparable.ts";
 * encodedBytesLength(0); // 9
 * encodedBytesLength(8); // 18
 * ```
 */
export function encodedBytesLength(rawLength: number): number {
  if (!Number.isInteger(rawLength) || rawLength < 0) {
    throw new RangeError(`encodedBytesLength: bad raw length ${rawLength}`);
  }
  return (Math.floor(rawLength / MEMCOMPARABLE_GROUP_SIZE) + 1) * ENCODED_GROUP_SIZE;
}

/**
 * Writes the memcomparable encoding of `raw` into `dest` at `offset` and returns the offset just
 * past it. `dest` must have `encodedBytesLength(raw.length)` bytes free at `offset`; the caller
 * sizes it, which lets a key and its suffix share one allocation.
 *
 * @param options.descending write the descending variant (every byte inverted).
 */
export function writeBytes(
  dest: Uint8Array,
  offset: number,
  raw: Uint8Array,
  options?: { descending?: boolean },
): number {
  const rawLength = raw.length;
  const end = offset + encodedBytesLength(rawLength);
  if (end > dest.length) {
    throw new RangeError(
      `writeBytes: needs ${end - offset} bytes at offset ${offset}, buffer has ${dest.length}`,
    );
  }
  const flip = options?.descending === true ? 0xff : 0x00;
  const fullGroups = Math.floor(rawLength / MEMCOMPARABLE_GROUP_SIZE);
  let source = 0;
  let target = offset;
  // Byte loops beat subarray()+set() here: keys are short and a subarray view is an allocation.
  for (let group = 0; group < fullGroups; group++) {
    for (let i = 0; i < MEMCOMPARABLE_GROUP_SIZE; i++) {
      dest[target++] = raw[source++]! ^ flip;
    }
    dest[target++] = MARKER ^ flip;
  }
  const remaining = rawLength - source;
  const padding = MEMCOMPARABLE_GROUP_SIZE - remaining;
  for (let i = 0; i < remaining; i++) dest[target++] = raw[source++]! ^ flip;
  for (let i = 0; i < padding; i++) dest[target++] = flip;
  dest[target++] = (MARKER - padding) ^ flip;
  return target;
}

/**
 * Encodes `raw` in ascending memcomparable order (TiKV `encode_bytes(bs)`).
 *
 * @example
 * ```ts
 * import { encodeBytes } from "./memcomparable.ts";
 * encodeBytes(new Uint8Array()); // [0, 0, 0, 0, 0, 0, 0, 0, 0xF7]
 * ```
 */
export function encodeBytes(raw: Uint8Array): Uint8Array {
  const out = new Uint8Array(encodedBytesLength(raw.length));
  writeBytes(out, 0, raw);
  return out;
}

/** Encodes `raw` in descending memcomparable order (TiKV `encode_bytes_desc(bs)`). */
export function encodeBytesDesc(raw: Uint8Array): Uint8Array {
  const out = new Uint8Array(encodedBytesLength(raw.length));
  writeBytes(out, 0, raw, { descending: true });
  return out;
}

/**
 * Length of the first memcomparable field that starts at `offset` in `encoded`, marker
 * included, after checking every marker and the padding of the last group.
 *
 * @throws {CodecError} `truncated` when the input ends inside a group or before the last group,
 *   `bad_padding` when a marker or the padding is invalid.
 */
export function encodedBytesSpan(
  encoded: Uint8Array,
  offset = 0,
  options?: { descending?: boolean },
): number {
  const flip = options?.descending === true ? 0xff : 0x00;
  let groupStart = offset;
  for (;;) {
    const markerAt = groupStart + MEMCOMPARABLE_GROUP_SIZE;
    if (markerAt >= encoded.length) {
      throw new CodecError(
        "truncated",
        groupStart,
        `memcomparable group needs ${ENCODED_GROUP_SIZE} bytes, ${
          encoded.length - groupStart
        } left`,
      );
    }
    const padding = MARKER - (encoded[markerAt]! ^ flip);
    if (padding === 0) {
      groupStart += ENCODED_GROUP_SIZE;
      continue;
    }
    if (padding > MEMCOMPARABLE_GROUP_SIZE) {
      throw new CodecError(
        "bad_padding",
        markerAt,
        `marker 0x${encoded[markerAt]!.toString(16)} means padding ${padding} > 8`,
      );
    }
    for (let at = markerAt - padding; at < markerAt; at++) {
      if (encoded[at] !== flip) {
        throw new CodecError(
          "bad_padding",
          at,
          `pad byte is 0x${encoded[at]!.toString(16)}, expected 0x${flip.toString(16)}`,
        );
      }
    }
    return markerAt + 1 - offset;
  }
}

/** A decoded memcomparable field and where the input continues after it. */
export interface DecodedBytes {
  /** The raw bytes (a fresh array, never a view of the input). */
  value: Uint8Array;
  /** Offset in the input just past the field's last marker. */
  nextOffset: number;
}

/**
 * Decodes the first ascending memcomparable field at `offset` (TiKV `decode_bytes(data, false)`).
 * Bytes after the field (e.g. a timestamp) are left for the caller, at `nextOffset`.
 *
 * @throws {CodecError} `truncated` or `bad_padding` on corrupt input.
 * @example
 * ```ts
 * import { decodeBytes, encodeBytes } from "./memcomparable.ts";
 * const { value } = decodeBytes(encodeBytes(new TextEncoder().encode("k")));
 * ```
 */
export function decodeBytes(encoded: Uint8Array, offset = 0): DecodedBytes {
  return decodeOrdered(encoded, offset, 0x00);
}

/** Decodes the first descending memcomparable field at `offset` (TiKV `decode_bytes(data, true)`). */
export function decodeBytesDesc(encoded: Uint8Array, offset = 0): DecodedBytes {
  return decodeOrdered(encoded, offset, 0xff);
}

function decodeOrdered(encoded: Uint8Array, offset: number, flip: number): DecodedBytes {
  const span = encodedBytesSpan(encoded, offset, { descending: flip !== 0 });
  const markerAt = offset + span - 1;
  const padding = MARKER - (encoded[markerAt]! ^ flip);
  const groups = span / ENCODED_GROUP_SIZE;
  const value = new Uint8Array(groups * MEMCOMPARABLE_GROUP_SIZE - padding);
  let target = 0;
  let source = offset;
  for (let group = 0; group < groups; group++) {
    const take = group === groups - 1
      ? MEMCOMPARABLE_GROUP_SIZE - padding
      : MEMCOMPARABLE_GROUP_SIZE;
    for (let i = 0; i < take; i++) value[target++] = encoded[source + i]! ^ flip;
    source += ENCODED_GROUP_SIZE;
  }
  return { value, nextOffset: offset + span };
}
