/**
 * Just enough of the protobuf wire format for the main thread to route requests without
 * decoding them: the region id in a request's `Context`, the sub-requests and ids of a
 * `BatchCommandsRequest`, and the framing of a `BatchCommandsResponse` around sub-responses
 * that the workers encoded. Full decoding (and the INVALID_ARGUMENT for a malformed command)
 * happens in the worker that runs the command.
 *
 * Facts used (protobuf encoding): a tag is the varint `field << 3 | wire type`; wire types are
 * 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32 (3 and 4, groups, are not used by
 * kvproto). Every kvproto request has `Context context = 1`, and `Context` has
 * `uint64 region_id = 1`. `BatchCommandsRequest` is `repeated Request requests = 1;
 * repeated uint64 request_ids = 2;`, each `Request` a oneof of one length-delimited command.
 * A field number is 1..2^29-1 (`PROTOBUF_MAX_FIELD_NUMBER`), so a tag is below 2^32.
 *
 * Invariant: no function here throws anything but `WireError` on any input bytes (a
 * `RangeError` from an index would be a bug), and every number handed out (a region id, a
 * field number, an offset) is a safe integer, so callers can index tables with it. The framing
 * is stricter than protobufjs (which takes field number 0 and reads only the low 32 bits of a
 * longer tag): whatever these functions frame, the generated decoders read the same way.
 */
import { tikvpb } from "../../proto/mod.ts";

/** A protobuf message that cannot be framed. */
export class WireError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WireError";
  }
}

/** The largest field number protobuf allows (2^29 - 1). */
export const PROTOBUF_MAX_FIELD_NUMBER = 0x1fff_ffff;

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

/** A cursor over one message. */
class Reader {
  pos: number;
  constructor(readonly bytes: Uint8Array, start = 0, readonly end = bytes.length) {
    this.pos = start;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  /** A varint as a number; exact below 2^53, which every length and id here is. */
  varint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new WireError(`truncated varint at byte ${this.pos}`);
      const byte = this.bytes[this.pos++]!;
      result += (byte & 0x7f) * scale;
      if (byte < 0x80) return result;
      scale *= 128;
    }
    throw new WireError(`varint longer than 10 bytes at byte ${this.pos}`);
  }

  /**
   * A tag: its field number (1..2^29-1) and wire type (0, 1, 2 or 5; kvproto has no groups).
   * Throws `WireError` for field number 0, a longer tag, or another wire type.
   */
  tag(): { field: number; wireType: number } {
    const at = this.pos;
    const tag = this.varint();
    const field = Math.floor(tag / 8);
    const wireType = tag % 8;
    if (field < 1 || field > PROTOBUF_MAX_FIELD_NUMBER) {
      throw new WireError(`field number ${field} out of range 1..2^29-1 at byte ${at}`);
    }
    if (
      wireType !== WIRE_VARINT && wireType !== WIRE_FIXED64 && wireType !== WIRE_LEN &&
      wireType !== WIRE_FIXED32
    ) {
      throw new WireError(`unsupported wire type ${wireType} at byte ${at}`);
    }
    return { field, wireType };
  }

  /** A varint as a bigint (request ids are arbitrary u64). */
  bigVarint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new WireError(`truncated varint at byte ${this.pos}`);
      const byte = this.bytes[this.pos++]!;
      result |= BigInt(byte & 0x7f) << shift;
      if (byte < 0x80) return BigInt.asUintN(64, result);
      shift += 7n;
    }
    throw new WireError(`varint longer than 10 bytes at byte ${this.pos}`);
  }

  /** The bounds of a length-delimited field's body; advances past it. */
  lengthDelimited(): [number, number] {
    const length = this.varint();
    const start = this.pos;
    if (length > this.end - start) {
      throw new WireError(`field of ${length} bytes overruns the message at byte ${start}`);
    }
    this.pos = start + length;
    return [start, this.pos];
  }

  skip(wireType: number): void {
    switch (wireType) {
      case WIRE_VARINT:
        this.varint();
        return;
      case WIRE_FIXED64:
        this.advance(8);
        return;
      case WIRE_LEN:
        this.lengthDelimited();
        return;
      case WIRE_FIXED32:
        this.advance(4);
        return;
      default:
        throw new WireError(`unsupported wire type ${wireType} at byte ${this.pos}`);
    }
  }

  private advance(count: number): void {
    if (this.end - this.pos < count) throw new WireError(`truncated field at byte ${this.pos}`);
    this.pos += count;
  }
}

/**
 * The `context.region_id` of a kvproto request, or 0 when it has none. Never throws: a
 * malformed request is routed anywhere and refused there, by the full decoder. The id is a
 * safe integer (an id of 2^53 or more, which no region has, reads as 0).
 */
export function contextRegionId(request: Uint8Array, start = 0, end = request.length): number {
  try {
    const outer = new Reader(request, start, end);
    let contextBounds: [number, number] | null = null;
    while (!outer.done) {
      const { field, wireType } = outer.tag();
      if (field === 1 && wireType === WIRE_LEN) contextBounds = outer.lengthDelimited();
      else outer.skip(wireType);
    }
    if (contextBounds === null) return 0;
    const inner = new Reader(request, contextBounds[0], contextBounds[1]);
    let regionId = 0;
    while (!inner.done) {
      const { field, wireType } = inner.tag();
      if (field === 1 && wireType === WIRE_VARINT) regionId = inner.varint();
      else inner.skip(wireType);
    }
    return Number.isSafeInteger(regionId) ? regionId : 0;
  } catch (error) {
    if (error instanceof WireError) return 0;
    throw error;
  }
}

/**
 * A `BatchCommandsRequest`, framed: sub-request `i` is command field `fields[i]` (its oneof
 * member; 0 when the `Request` holds none) with body `bytes[bodyStarts[i], bodyEnds[i])`, and
 * request id varint `bytes[idStarts[i], idEnds[i])`. Parallel number arrays, not objects per
 * sub-request: the main thread frames every message it routes.
 */
export interface BatchFrame {
  bytes: Uint8Array;
  fields: number[];
  bodyStarts: number[];
  bodyEnds: number[];
  idStarts: number[];
  idEnds: number[];
}

/**
 * Frames a `BatchCommandsRequest`; throws `WireError` on a malformed message (at any level:
 * the message, a `Request`, an id) or on more than `maxRequests` sub-requests (checked as they
 * are framed, so a huge message of tiny sub-requests costs no more than `maxRequests` of them).
 */
export function parseBatchRequest(bytes: Uint8Array, maxRequests = Infinity): BatchFrame {
  const reader = new Reader(bytes);
  const frame: BatchFrame = {
    bytes,
    fields: [],
    bodyStarts: [],
    bodyEnds: [],
    idStarts: [],
    idEnds: [],
  };
  while (!reader.done) {
    const { field, wireType } = reader.tag();
    if (field === 1 && wireType === WIRE_LEN) {
      if (frame.fields.length >= maxRequests) {
        throw new WireError(`more than ${maxRequests} requests in one message`);
      }
      parseSubRequest(frame, reader.lengthDelimited());
    } else if (field === 2 && wireType === WIRE_LEN) {
      const [start, end] = reader.lengthDelimited();
      const packed = new Reader(bytes, start, end);
      while (!packed.done) pushId(frame, packed, maxRequests);
    } else if (field === 2 && wireType === WIRE_VARINT) {
      pushId(frame, reader, maxRequests);
    } else {
      reader.skip(wireType);
    }
  }
  return frame;
}

function pushId(frame: BatchFrame, reader: Reader, maxRequests: number): void {
  if (frame.idStarts.length >= maxRequests) {
    throw new WireError(`more than ${maxRequests} request ids in one message`);
  }
  frame.idStarts.push(reader.pos);
  reader.skip(WIRE_VARINT);
  frame.idEnds.push(reader.pos);
}

function parseSubRequest(frame: BatchFrame, [start, end]: [number, number]): void {
  const reader = new Reader(frame.bytes, start, end);
  // A oneof keeps its last member on the wire. Other fields (unknown to this build) are
  // skipped, as protobuf's decoders skip them.
  let member = 0;
  let bodyStart = 0;
  let bodyEnd = 0;
  while (!reader.done) {
    const { field, wireType } = reader.tag();
    if (wireType === WIRE_LEN) {
      [bodyStart, bodyEnd] = reader.lengthDelimited();
      member = field;
    } else {
      reader.skip(wireType);
    }
  }
  frame.fields.push(member);
  frame.bodyStarts.push(bodyStart);
  frame.bodyEnds.push(bodyEnd);
}

/** Number of sub-requests framed (ids are counted apart: a valid message has as many). */
export function subRequestCount(frame: BatchFrame): number {
  return frame.fields.length;
}

/** The body of sub-request `index`, as a view. */
export function subRequestBody(frame: BatchFrame, index: number): Uint8Array {
  return frame.bytes.subarray(frame.bodyStarts[index]!, frame.bodyEnds[index]!);
}

/** The request id of sub-request `index`. */
export function requestId(frame: BatchFrame, index: number): bigint {
  return new Reader(frame.bytes, frame.idStarts[index]!, frame.idEnds[index]!).bigVarint();
}

function varintLength(value: number): number {
  let length = 1;
  while (value >= 128) {
    value = Math.floor(value / 128);
    length++;
  }
  return length;
}

function writeVarint(out: Uint8Array, pos: number, value: number): number {
  while (value >= 128) {
    out[pos++] = (value % 128) | 0x80;
    value = Math.floor(value / 128);
  }
  out[pos++] = value;
  return pos;
}

function bigVarintBytes(value: bigint): number[] {
  const out: number[] = [];
  let rest = BigInt.asUintN(64, value);
  while (rest >= 128n) {
    out.push(Number(rest & 0x7fn) | 0x80);
    rest >>= 7n;
  }
  out.push(Number(rest));
  return out;
}

/**
 * A `BatchCommandsResponse` holding `responses` (each an encoded
 * `BatchCommandsResponse.Response`) answering `ids`, in the same order.
 */
export function encodeBatchResponse(
  responses: readonly Uint8Array[],
  ids: readonly bigint[],
): Uint8Array {
  const idBytes = ids.flatMap(bigVarintBytes);
  let size = 0;
  for (const response of responses) size += 1 + varintLength(response.length) + response.length;
  if (idBytes.length > 0) size += 1 + varintLength(idBytes.length) + idBytes.length;
  const out = new Uint8Array(size);
  let pos = 0;
  for (const response of responses) {
    out[pos++] = 1 << 3 | WIRE_LEN;
    pos = writeVarint(out, pos, response.length);
    out.set(response, pos);
    pos += response.length;
  }
  if (idBytes.length > 0) {
    out[pos++] = 2 << 3 | WIRE_LEN;
    pos = writeVarint(out, pos, idBytes.length);
    out.set(idBytes, pos);
  }
  return out;
}

/**
 * The oneof field number of each BatchCommands member, learned from the codec itself (encode an
 * empty member, read the tag) so that no number is written down twice.
 */
export function batchFieldOf(batchName: string): number {
  const bytes = tikvpb.BatchCommandsRequest.Request.encode(
    { [batchName]: {} } as tikvpb.BatchCommandsRequest.Request.$Properties,
  ).finish();
  const reader = new Reader(bytes);
  if (reader.done) throw new Error(`${batchName} is not a BatchCommands member`);
  return reader.tag().field;
}
