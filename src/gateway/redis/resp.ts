/**
 * RESP, the Redis protocol: a parser of client commands (multibulk `*N $len …` and inline
 * lines, as Redis 7's `processMultibulkBuffer` and `processInlineBuffer` read them) and an
 * encoder of replies in RESP2 or RESP3 (chosen per connection by HELLO).
 *
 * The parser keeps one growable input buffer per connection and hands out each argument as a
 * copy (`slice`), so the buffer can be reused at once. Every length it reads is bounded
 * (`REDIS_MULTIBULK_MAX_ARGS`, `REDIS_PROTO_MAX_BULK_BYTES`, `REDIS_INLINE_MAX_BYTES`); a
 * violation is a `ProtocolError` carrying Redis's own error text, after which the connection
 * answers it and closes, as Redis does.
 *
 * The encoder appends to one growable output buffer, written to the socket once per read.
 */
import {
  REDIS_INLINE_MAX_BYTES,
  REDIS_MULTIBULK_MAX_ARGS,
  REDIS_PROTO_MAX_BULK_BYTES,
} from "../../constants.ts";
import { assert } from "../../util/assert.ts";

const CR = 13;
const LF = 10;

/** A client broke the protocol; `message` is Redis's text after `ERR `. */
export class ProtocolError extends Error {
  constructor(detail: string) {
    super(`Protocol error: ${detail}`);
    this.name = "ProtocolError";
  }
}

/** Parses commands out of the bytes a connection received. */
export class RespParser {
  #buffer: Uint8Array;
  #start = 0;
  #end = 0;

  constructor(initialBytes = 16 * 1024) {
    this.#buffer = new Uint8Array(initialBytes);
  }

  /** Bytes received and not yet parsed. */
  get pendingBytes(): number {
    return this.#end - this.#start;
  }

  /**
   * A region of at least `minBytes` free bytes at the end of the buffer to read into; the
   * caller then reports how many it filled with `filled`.
   */
  space(minBytes: number): Uint8Array {
    if (this.#start === this.#end) this.#start = this.#end = 0;
    if (this.#buffer.length - this.#end < minBytes) {
      const pending = this.#end - this.#start;
      if (pending + minBytes <= this.#buffer.length && this.#start > 0) {
        this.#buffer.copyWithin(0, this.#start, this.#end);
      } else {
        let size = this.#buffer.length * 2;
        while (size < pending + minBytes) size *= 2;
        const grown = new Uint8Array(size);
        grown.set(this.#buffer.subarray(this.#start, this.#end));
        this.#buffer = grown;
      }
      this.#start = 0;
      this.#end = pending;
    }
    return this.#buffer.subarray(this.#end);
  }

  /** Records that `count` bytes were read into the region `space` returned. */
  filled(count: number): void {
    assert(count >= 0 && this.#end + count <= this.#buffer.length, "filled past the buffer", {
      count,
      end: this.#end,
      size: this.#buffer.length,
    });
    this.#end += count;
  }

  /** Appends `bytes` (tests, and callers that do not read into `space`). */
  feed(bytes: Uint8Array): void {
    this.space(bytes.length).set(bytes);
    this.filled(bytes.length);
  }

  /**
   * The next complete command, or null when more bytes are needed. Empty commands (`*0`, a
   * blank inline line) are skipped. Throws `ProtocolError`.
   */
  next(): Uint8Array[] | null {
    for (;;) {
      if (this.#start >= this.#end) return null;
      const command = this.#buffer[this.#start] === 0x2a /* * */
        ? this.#multibulk()
        : this.#inline();
      if (command === null) return null;
      if (command.length > 0) return command;
    }
  }

  /** The index of the LF ending the line at `from`, or -1 (line-length limits checked). */
  #lineEnd(from: number, tooLong: string): number {
    const limit = Math.min(this.#end, from + REDIS_INLINE_MAX_BYTES);
    const at = this.#buffer.subarray(from, limit).indexOf(LF);
    if (at >= 0) return from + at;
    if (this.#end - from >= REDIS_INLINE_MAX_BYTES) throw new ProtocolError(tooLong);
    return -1;
  }

  /** A decimal header number between `from` and the CR at `crAt`, or null if malformed. */
  #number(from: number, crAt: number): number | null {
    if (crAt <= from || crAt - from > 19) return null;
    let value = 0;
    let at = from;
    const negative = this.#buffer[at] === 0x2d;
    if (negative) at++;
    if (at === crAt) return null;
    for (; at < crAt; at++) {
      const digit = this.#buffer[at]! - 0x30;
      if (digit < 0 || digit > 9) return null;
      value = value * 10 + digit;
    }
    return negative ? -value : value;
  }

  #multibulk(): Uint8Array[] | null {
    const buffer = this.#buffer;
    let at = this.#start;
    const headerEnd = this.#lineEnd(at, "too big mbulk count string");
    if (headerEnd < 0) return null;
    if (buffer[headerEnd - 1] !== CR) throw new ProtocolError("invalid multibulk length");
    const count = this.#number(at + 1, headerEnd - 1);
    if (count === null || count > REDIS_MULTIBULK_MAX_ARGS) {
      throw new ProtocolError("invalid multibulk length");
    }
    at = headerEnd + 1;
    if (count <= 0) {
      this.#start = at;
      return [];
    }
    const args: Uint8Array[] = new Array(count);
    for (let i = 0; i < count; i++) {
      if (at >= this.#end) return null;
      if (buffer[at] !== 0x24 /* $ */) {
        throw new ProtocolError(`expected '$', got '${String.fromCharCode(buffer[at]!)}'`);
      }
      const lineEnd = this.#lineEnd(at, "too big bulk count string");
      if (lineEnd < 0) return null;
      const length = buffer[lineEnd - 1] === CR ? this.#number(at + 1, lineEnd - 1) : null;
      if (length === null || length < 0 || length > REDIS_PROTO_MAX_BULK_BYTES) {
        throw new ProtocolError("invalid bulk length");
      }
      const dataStart = lineEnd + 1;
      if (dataStart + length + 2 > this.#end) return null;
      args[i] = buffer.slice(dataStart, dataStart + length);
      at = dataStart + length + 2; // Redis skips the two bytes after the data unread, too.
    }
    this.#start = at;
    return args;
  }

  #inline(): Uint8Array[] | null {
    const lineEnd = this.#lineEnd(this.#start, "too big inline request");
    if (lineEnd < 0) return null;
    let contentEnd = lineEnd;
    if (contentEnd > this.#start && this.#buffer[contentEnd - 1] === CR) contentEnd--;
    const line = this.#buffer.subarray(this.#start, contentEnd);
    this.#start = lineEnd + 1;
    const args = splitInlineArgs(line);
    if (args === null) throw new ProtocolError("unbalanced quotes in request");
    return args;
  }
}

const isSpace = (byte: number) => byte === 0x20 || (byte >= 0x09 && byte <= 0x0d);
const hexValue = (byte: number) =>
  byte >= 0x30 && byte <= 0x39
    ? byte - 0x30
    : (byte | 0x20) >= 0x61 && (byte | 0x20) <= 0x66
    ? (byte | 0x20) - 0x61 + 10
    : -1;

/**
 * Splits an inline command as Redis's `sdssplitargs` does: blanks separate arguments; "double
 * quotes" take \n \r \t \b \a \\ \" and \xHH escapes; 'single quotes' take \'; a closing quote
 * must be followed by a blank or the end. Null for unbalanced quotes.
 */
export function splitInlineArgs(line: Uint8Array): Uint8Array[] | null {
  const args: Uint8Array[] = [];
  let at = 0;
  for (;;) {
    while (at < line.length && isSpace(line[at]!)) at++;
    if (at >= line.length) return args;
    const out: number[] = [];
    let quote = 0; // 0, or the quote character we are inside
    for (;;) {
      if (at >= line.length) {
        if (quote !== 0) return null;
        break;
      }
      const byte = line[at]!;
      if (quote === 0x22 && byte === 0x5c && at + 3 < line.length && line[at + 1] === 0x78) {
        const high = hexValue(line[at + 2]!);
        const low = hexValue(line[at + 3]!);
        if (high >= 0 && low >= 0) {
          out.push(high * 16 + low);
          at += 4;
          continue;
        }
      }
      if (quote === 0x22 && byte === 0x5c && at + 1 < line.length) {
        const escaped = line[at + 1]!;
        const map: Record<number, number> = { 0x6e: 10, 0x72: 13, 0x74: 9, 0x62: 8, 0x61: 7 };
        out.push(map[escaped] ?? escaped);
        at += 2;
        continue;
      }
      if (quote === 0x27 && byte === 0x5c && line[at + 1] === 0x27) {
        out.push(0x27);
        at += 2;
        continue;
      }
      if (quote !== 0 && byte === quote) {
        at++;
        if (at < line.length && !isSpace(line[at]!)) return null;
        break;
      }
      if (quote === 0 && (byte === 0x22 || byte === 0x27) && out.length === 0) {
        quote = byte;
        at++;
        continue;
      }
      if (quote === 0 && isSpace(byte)) break;
      out.push(byte);
      at++;
    }
    args.push(Uint8Array.from(out));
  }
}

// --- Replies -------------------------------------------------------------------------------

/** A status reply (`+OK`). */
export class SimpleString {
  constructor(readonly text: string) {}
}

/** An error reply; `text` starts with its code (`ERR …`, `WRONGTYPE …`). */
export class ErrorReply {
  constructor(readonly text: string) {}
}

/** A map: RESP3 `%`, a flat array of key, value, … in RESP2. */
export class MapReply {
  constructor(readonly entries: Reply[]) {
    assert(entries.length % 2 === 0, "a map reply has pairs", { length: entries.length });
  }
}

/** A set: RESP3 `~`, an array in RESP2. */
export class SetReply {
  constructor(readonly items: Reply[]) {}
}

/** A double: RESP3 `,`, a bulk string in RESP2. */
export class DoubleReply {
  constructor(readonly value: number) {}
}

/** A verbatim text (INFO): RESP3 `=len txt:…`, a bulk string in RESP2. */
export class VerbatimReply {
  constructor(readonly text: string) {}
}

/** The null array (`*-1` in RESP2, `_` in RESP3): EXEC aborted by WATCH. */
export class NullArray {
  private constructor() {}
  static readonly instance = new NullArray();
}

/**
 * A reply: an integer (number or bigint), a bulk string (bytes, or a JS string sent as UTF-8),
 * null (the null bulk string), an array, or one of the classes above.
 */
export type Reply =
  | number
  | bigint
  | Uint8Array
  | string
  | null
  | Reply[]
  | SimpleString
  | ErrorReply
  | MapReply
  | SetReply
  | DoubleReply
  | VerbatimReply
  | NullArray;

/** The shared `+OK`. */
export const OK = new SimpleString("OK");
/** The shared `+QUEUED`. */
export const QUEUED = new SimpleString("QUEUED");

const encoder = new TextEncoder();

/** Formats a double as Redis 7 does for RESP3 and RESP2 (`%.17g`, inf, -inf, nan). */
export function formatDouble(value: number): string {
  if (Number.isNaN(value)) return "nan";
  if (value === Infinity) return "inf";
  if (value === -Infinity) return "-inf";
  return String(value);
}

/** Appends replies to a growable buffer, in the protocol version of one connection. */
export class RespWriter {
  #buffer = new Uint8Array(16 * 1024);
  #length = 0;
  /** 2 or 3 (HELLO). */
  protocol: 2 | 3 = 2;

  /** Bytes written since the last `take`. */
  get length(): number {
    return this.#length;
  }

  /** The bytes written so far; the writer is empty afterwards (the view is valid until then). */
  take(): Uint8Array {
    const out = this.#buffer.subarray(0, this.#length);
    this.#length = 0;
    return out;
  }

  /** Drops a buffer grown large by one big reply, so an idle connection holds little. */
  shrink(): void {
    if (this.#length === 0 && this.#buffer.length > 256 * 1024) {
      this.#buffer = new Uint8Array(16 * 1024);
    }
  }

  #reserve(bytes: number): void {
    if (this.#length + bytes <= this.#buffer.length) return;
    let size = this.#buffer.length * 2;
    while (size < this.#length + bytes) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.#buffer.subarray(0, this.#length));
    this.#buffer = grown;
  }

  /** Appends ASCII text (header lines, numbers). */
  #ascii(text: string): void {
    this.#reserve(text.length);
    const buffer = this.#buffer;
    let at = this.#length;
    for (let i = 0; i < text.length; i++) buffer[at++] = text.charCodeAt(i);
    this.#length = at;
  }

  #bytes(bytes: Uint8Array): void {
    this.#reserve(bytes.length);
    this.#buffer.set(bytes, this.#length);
    this.#length += bytes.length;
  }

  #bulk(bytes: Uint8Array): void {
    this.#ascii(`$${bytes.length}\r\n`);
    this.#bytes(bytes);
    this.#ascii("\r\n");
  }

  /** Appends one reply. */
  write(reply: Reply): void {
    if (reply === null) return this.#ascii(this.protocol === 3 ? "_\r\n" : "$-1\r\n");
    if (typeof reply === "number") {
      assert(Number.isSafeInteger(reply), "an integer reply is an integer", { reply });
      return this.#ascii(`:${reply}\r\n`);
    }
    if (typeof reply === "bigint") return this.#ascii(`:${reply}\r\n`);
    if (reply instanceof Uint8Array) return this.#bulk(reply);
    if (typeof reply === "string") return this.#bulk(encoder.encode(reply));
    if (Array.isArray(reply)) {
      this.#ascii(`*${reply.length}\r\n`);
      for (const item of reply) this.write(item);
      return;
    }
    this.#writeTagged(reply);
  }

  #writeTagged(
    reply:
      | SimpleString
      | ErrorReply
      | MapReply
      | SetReply
      | DoubleReply
      | VerbatimReply
      | NullArray,
  ): void {
    if (reply instanceof SimpleString) return this.#ascii(`+${reply.text}\r\n`);
    if (reply instanceof ErrorReply) {
      // Redis replaces CR and LF inside an error text with spaces (`addReplyErrorLength`).
      const text = reply.text.replace(/[\r\n]/g, " ");
      this.#bytes(encoder.encode(`-${text}\r\n`));
      return;
    }
    if (reply instanceof MapReply) {
      const pairs = reply.entries.length / 2;
      this.#ascii(this.protocol === 3 ? `%${pairs}\r\n` : `*${reply.entries.length}\r\n`);
      for (const item of reply.entries) this.write(item);
      return;
    }
    if (reply instanceof SetReply) {
      this.#ascii(`${this.protocol === 3 ? "~" : "*"}${reply.items.length}\r\n`);
      for (const item of reply.items) this.write(item);
      return;
    }
    if (reply instanceof DoubleReply) {
      const text = formatDouble(reply.value);
      if (this.protocol === 3) return this.#ascii(`,${text}\r\n`);
      return this.#bulk(encoder.encode(text));
    }
    if (reply instanceof VerbatimReply) {
      const body = encoder.encode(reply.text);
      if (this.protocol === 2) return this.#bulk(body);
      this.#ascii(`=${body.length + 4}\r\ntxt:`);
      this.#bytes(body);
      this.#ascii("\r\n");
      return;
    }
    this.#ascii(this.protocol === 3 ? "_\r\n" : "*-1\r\n");
  }
}
