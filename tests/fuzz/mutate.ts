/**
 * Byte mutations of encoded protobuf messages, aimed at the places decoders break: bit flips and
 * truncation, inserted tags with field numbers 0 and past 2^29-1, wire types 3, 4, 6 and 7,
 * varints of 10 and 11 bytes, length prefixes past the end or near 2^32 and 2^64, fields
 * duplicated, dropped or retagged, and all of it again inside a nested message (a BatchCommands
 * sub-request, a request's `Context`) with the outer lengths kept right so the damage reaches the
 * inner decoder.
 *
 * Written independently of the store's `wire.ts`: the fuzzer must not share the code it tests.
 * A mutation is a pure function of the random source.
 */
import type { SeededRandom } from "../../src/util/random.ts";

/** Deepest nested message a mutation descends into. */
const MAX_NESTING = 3;
/** Field numbers around protobuf's limits (1..2^29-1) and the store's tables. */
const FIELD_NUMBERS = [0, 1, 2, 3, 5, 13, 34, 41, 255, 256, 2 ** 29 - 1, 2 ** 29, 2 ** 32, 2 ** 35];
/** Length prefixes that lie: past any buffer, around 2^31, 2^32 and 2^64. */
const HUGE_LENGTHS = [2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32 + 7, 2 ** 53 - 1];

/** One field of a message as framed on the wire (offsets into the message). */
interface Span {
  start: number;
  /** Where the tag ends (and a length prefix starts). */
  tagEnd: number;
  /** Where the body starts (after the tag and, for wire type 2, the length). */
  bodyStart: number;
  end: number;
  field: number;
  wireType: number;
}

/** A protobuf varint of any value below 2^53 (no bitwise operators: they stop at 2^32). */
export function varint(value: number): number[] {
  const out: number[] = [];
  while (value >= 128) {
    out.push((value % 128) | 0x80);
    value = Math.floor(value / 128);
  }
  out.push(value);
  return out;
}

/** The tag of `field` with `wireType`, for any field number below 2^50. */
export function tag(field: number, wireType: number): number[] {
  return varint(field * 8 + wireType);
}

/** A length-delimited field. */
export function lengthDelimited(field: number, body: Uint8Array | number[]): number[] {
  return [...tag(field, 2), ...varint(body.length), ...body];
}

function readVarint(bytes: Uint8Array, pos: number): [number, number] | null {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10 && pos < bytes.length; i++) {
    const byte = bytes[pos++]!;
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) return [value, pos];
    scale *= 128;
  }
  return null;
}

/** The top-level fields of `bytes`, as far as they frame (a broken tail is left out). */
function spans(bytes: Uint8Array): Span[] {
  const out: Span[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    const tagged = readVarint(bytes, pos);
    if (tagged === null) break;
    const [tagValue, afterTag] = tagged;
    const wireType = tagValue % 8;
    const field = Math.floor(tagValue / 8);
    let bodyStart = afterTag;
    let end: number;
    if (wireType === 0) {
      const value = readVarint(bytes, afterTag);
      if (value === null) break;
      end = value[1];
    } else if (wireType === 1) end = afterTag + 8;
    else if (wireType === 5) end = afterTag + 4;
    else if (wireType === 2) {
      const length = readVarint(bytes, afterTag);
      if (length === null) break;
      bodyStart = length[1];
      end = bodyStart + length[0];
    } else break;
    if (end > bytes.length) break;
    out.push({ start: pos, tagEnd: afterTag, bodyStart, end, field, wireType });
    pos = end;
  }
  return out;
}

function concat(...parts: (Uint8Array | number[])[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((size, part) => size + part.length, 0));
  let pos = 0;
  for (const part of parts) {
    out.set(part, pos);
    pos += part.length;
  }
  return out;
}

/** A random field with a tag chosen to hurt: any field number, any of the 8 wire types. */
function randomField(rng: SeededRandom): number[] {
  const field = rng.chance(0.6) ? rng.pick(FIELD_NUMBERS) : rng.int(2 ** 20);
  const wireType = rng.int(8);
  const head = tag(field, wireType);
  switch (wireType) {
    case 0:
      // Ten bytes is the longest valid varint; eleven is one too many.
      return rng.chance(0.3)
        ? [...head, ...Array(rng.chance(0.5) ? 9 : 10).fill(0xff), 0x01]
        : [...head, ...varint(rng.int(2 ** 31))];
    case 1:
      return [...head, ...rng.bytes(8)];
    case 2: {
      const body = [...rng.bytes(rng.int(12))];
      const length = rng.chance(0.3) ? rng.pick(HUGE_LENGTHS) : body.length + rng.int(3);
      return [...head, ...varint(length), ...body];
    }
    case 5:
      return [...head, ...rng.bytes(4)];
    default:
      // Groups (3, 4) and the undefined wire types 6 and 7 carry no body of their own.
      return head;
  }
}

/** One mutation of `bytes` (which may be any message, or not a message at all). */
function mutateOnce(rng: SeededRandom, bytes: Uint8Array, nesting: number): Uint8Array {
  const fields = spans(bytes);
  const at = rng.int(bytes.length + 1);
  const lengthFields = fields.filter((span) => span.wireType === 2);
  const choice = rng.int(11);
  if (choice === 0 && lengthFields.length > 0 && nesting < MAX_NESTING) {
    // Damage a nested message, keeping the outer framing right.
    const span = rng.pick(lengthFields);
    const body = mutate(rng, bytes.subarray(span.bodyStart, span.end), nesting + 1);
    return concat(
      bytes.subarray(0, span.start),
      tag(span.field, 2),
      varint(body.length),
      body,
      bytes.subarray(span.end),
    );
  }
  if (choice <= 1 && fields.length > 0) {
    // Another field number (0, past 2^29-1) or another wire type for an existing field.
    const span = rng.pick(fields);
    const field = rng.chance(0.5) ? rng.pick(FIELD_NUMBERS) : span.field;
    const wireType = field === span.field ? rng.int(8) : span.wireType;
    return concat(bytes.subarray(0, span.start), tag(field, wireType), bytes.subarray(span.tagEnd));
  }
  if (choice === 2 && lengthFields.length > 0) {
    // A length prefix past the end, or huge.
    const span = rng.pick(lengthFields);
    const lengthStart = span.tagEnd;
    const length = rng.chance(0.5)
      ? bytes.length - span.bodyStart + 1 + rng.int(4)
      : rng.pick(HUGE_LENGTHS);
    return concat(bytes.subarray(0, lengthStart), varint(length), bytes.subarray(span.bodyStart));
  }
  if (choice === 3 && fields.length > 0) {
    // A duplicated field (a repeated message twice, a scalar or oneof member set twice).
    const span = rng.pick(fields);
    const copy = bytes.subarray(span.start, span.end);
    const where = rng.pick(fields).end;
    return concat(bytes.subarray(0, where), copy, bytes.subarray(where));
  }
  if (choice === 4 && fields.length > 0) {
    const span = rng.pick(fields);
    return concat(bytes.subarray(0, span.start), bytes.subarray(span.end));
  }
  switch (choice) {
    case 5:
      return concat(bytes.subarray(0, at), randomField(rng), bytes.subarray(at));
    case 6:
      return bytes.subarray(0, at);
    case 7:
      return concat(bytes.subarray(0, at), rng.bytes(1 + rng.int(8)), bytes.subarray(at));
    case 8: {
      const out = new Uint8Array(bytes);
      if (out.length > 0) out[rng.int(out.length)]! ^= 1 << rng.int(8);
      return out;
    }
    case 9: {
      const out = new Uint8Array(bytes);
      if (out.length > 0) out[rng.int(out.length)] = rng.pick([0x00, 0x7f, 0x80, 0xff]);
      return out;
    }
    default:
      // A field appended after the message's end.
      return concat(bytes, randomField(rng));
  }
}

/**
 * `bytes` with one to three mutations. Returns a new array (the input is never written).
 *
 * @example
 * ```ts
 * const broken = mutate(new SeededRandom(7), kvrpcpb.RawGetRequest.encode(request).finish());
 * ```
 */
export function mutate(rng: SeededRandom, bytes: Uint8Array, nesting = 0): Uint8Array {
  let out = bytes;
  const count = 1 + rng.int(3);
  for (let i = 0; i < count; i++) out = mutateOnce(rng, out, nesting);
  return out === bytes ? new Uint8Array(bytes) : out;
}
