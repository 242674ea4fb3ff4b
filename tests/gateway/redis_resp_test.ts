/** RESP parsing and encoding, Redis's number rules and glob patterns (no server). */
import assert from "node:assert/strict";
import {
  ErrorReply,
  MapReply,
  NullArray,
  ProtocolError,
  RespParser,
  RespWriter,
  SimpleString,
} from "../../src/gateway/redis/resp.ts";
import { addFloats, parseInt64 } from "../../src/gateway/redis/numbers.ts";
import { globMatch } from "../../src/gateway/redis/glob.ts";
import {
  REDIS_INLINE_MAX_BYTES,
  REDIS_MULTIBULK_MAX_ARGS,
  REDIS_PROTO_MAX_BULK_BYTES,
} from "../../src/constants.ts";

const assertEquals = (actual: unknown, expected: unknown, what?: string) =>
  assert.deepStrictEqual(actual, expected, what ?? "");
function assertThrows(fn: () => unknown, type: new (...args: never[]) => Error, text: string) {
  assert.throws(fn, (error) => error instanceof type && error.message.includes(text));
}
const enc = (text: string) => new TextEncoder().encode(text);
const dec = (args: Uint8Array[] | null) =>
  args?.map((arg) => new TextDecoder().decode(arg)) ?? null;

function parseAll(input: string): (string[] | null)[] {
  const parser = new RespParser(8);
  parser.feed(enc(input));
  const out: (string[] | null)[] = [];
  for (let args = parser.next(); args !== null; args = parser.next()) out.push(dec(args));
  return out;
}

Deno.test("RESP parser: a pipeline of multibulk and inline commands comes out in order", () => {
  assertEquals(parseAll("*2\r\n$3\r\nGET\r\n$1\r\na\r\nPING\r\n*1\r\n$4\r\nPING\r\nset k  v\n"), [
    ["GET", "a"],
    ["PING"],
    ["PING"],
    ["set", "k", "v"],
  ]);
});

Deno.test("RESP parser: a command split across reads is parsed once complete", () => {
  const parser = new RespParser(4);
  const input = enc("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n");
  for (let at = 0; at < input.length - 1; at++) {
    parser.feed(input.subarray(at, at + 1));
    assertEquals(parser.next(), null);
  }
  parser.feed(input.subarray(input.length - 1));
  assertEquals(dec(parser.next()), ["SET", "k", "hello"]);
});

Deno.test("RESP parser: inline quotes and escapes follow sdssplitargs", () => {
  assertEquals(parseAll(`set "a b" 'c\\'d' "\\x41\\n"\r\n`), [["set", "a b", "c'd", "A\n"]]);
  assertEquals(parseAll("\r\n*0\r\n*-1\r\nping\r\n"), [["ping"]]);
  assertThrows(() => parseAll(`set "abc\r\n`), ProtocolError, "unbalanced quotes in request");
  assertThrows(() => parseAll(`set "a"b\r\n`), ProtocolError, "unbalanced quotes in request");
});

Deno.test("RESP parser: malformed headers are Redis's protocol errors", () => {
  assertThrows(() => parseAll("*x\r\n"), ProtocolError, "Protocol error: invalid multibulk length");
  assertThrows(() => parseAll("*1\r\n+GET\r\n"), ProtocolError, "expected '$', got '+'");
  assertThrows(() => parseAll("*1\r\n$-2\r\n"), ProtocolError, "invalid bulk length");
  assertThrows(() => parseAll("*1\r\n$abc\r\n"), ProtocolError, "invalid bulk length");
});

Deno.test("RESP parser: the stated limits are enforced (bulk, multibulk, inline)", () => {
  assertThrows(
    () => parseAll(`*1\r\n$${REDIS_PROTO_MAX_BULK_BYTES + 1}\r\n`),
    ProtocolError,
    "invalid bulk length",
  );
  // At the limit the header is accepted (the parser waits for the data).
  assertEquals(parseAll(`*1\r\n$${REDIS_PROTO_MAX_BULK_BYTES}\r\n`), []);
  assertThrows(
    () => parseAll(`*${REDIS_MULTIBULK_MAX_ARGS + 1}\r\n`),
    ProtocolError,
    "invalid multibulk length",
  );
  assertThrows(
    () => parseAll("x".repeat(REDIS_INLINE_MAX_BYTES + 1)),
    ProtocolError,
    "too big inline request",
  );
  assertThrows(
    () => parseAll("*1\r\n$" + "1".repeat(REDIS_INLINE_MAX_BYTES + 1)),
    ProtocolError,
    "too big bulk count string",
  );
});

Deno.test("RESP writer: RESP2 and RESP3 encodings of every reply kind", () => {
  const replies = [
    new SimpleString("OK"),
    new ErrorReply("ERR x\r\ny"),
    42,
    -7n,
    enc("ab"),
    null,
    [1, "x"],
    new MapReply(["k", 1]),
    NullArray.instance,
  ];
  const writer = new RespWriter();
  for (const reply of replies) writer.write(reply);
  assertEquals(
    new TextDecoder().decode(writer.take()),
    "+OK\r\n-ERR x  y\r\n:42\r\n:-7\r\n$2\r\nab\r\n$-1\r\n*2\r\n:1\r\n$1\r\nx\r\n" +
      "*2\r\n$1\r\nk\r\n:1\r\n*-1\r\n",
  );
  writer.protocol = 3;
  writer.write(null);
  writer.write(new MapReply(["k", 1]));
  writer.write(NullArray.instance);
  assertEquals(new TextDecoder().decode(writer.take()), "_\r\n%1\r\n$1\r\nk\r\n:1\r\n_\r\n");
});

Deno.test("string2ll: Redis's strict 64-bit integers", () => {
  const cases: [string, bigint | null][] = [
    ["0", 0n],
    ["-1", -1n],
    ["9223372036854775807", 9223372036854775807n],
    ["-9223372036854775808", -9223372036854775808n],
    ["9223372036854775808", null],
    ["01", null],
    ["+1", null],
    [" 1", null],
    ["1 ", null],
    ["-0", null],
    ["", null],
    ["1.0", null],
  ];
  for (const [text, expected] of cases) assertEquals(parseInt64(enc(text)), expected, text);
});

Deno.test("INCRBYFLOAT arithmetic prints as Redis's long double %.17Lf does", () => {
  assertEquals(addFloats("0.1", "0.2"), { text: "0.3" });
  assertEquals(addFloats("10.50", "0.1"), { text: "10.6" });
  assertEquals(addFloats(null, "5.0e3"), { text: "5000" });
  assertEquals(addFloats("3", "-3"), { text: "0" });
  assertEquals(addFloats("1", "-1.5"), { text: "-0.5" });
  assertEquals(addFloats("abc", "1"), { error: "ERR value is not a valid float" });
  assertEquals(addFloats("1", " 1"), { error: "ERR value is not a valid float" });
  assertEquals(addFloats("1", "1e5000"), { error: "ERR value is not a valid float" });
});

Deno.test("glob patterns match as Redis's stringmatchlen", () => {
  const cases: [string, string, boolean][] = [
    ["*", "anything", true],
    ["h?llo", "hello", true],
    ["h*llo", "heeeello", true],
    ["h[ae]llo", "hallo", true],
    ["h[ae]llo", "hillo", false],
    ["h[^e]llo", "hallo", true],
    ["h[^e]llo", "hello", false],
    ["h[a-b]llo", "hbllo", true],
    ["h\\*llo", "h*llo", true],
    ["h\\*llo", "hello", false],
    ["*a*b*c*", "xxaxxbxxcxx", true],
    ["*a*b*c*", "xxaxxcxxbxx", false],
    ["user:*", "user:1", true],
    ["user:*", "usr:1", false],
  ];
  for (const [pattern, subject, expected] of cases) {
    assertEquals(globMatch(enc(pattern), enc(subject)), expected, `${pattern} ~ ${subject}`);
  }
  // A hostile pattern ends quickly (no exponential backtracking).
  assertEquals(globMatch(enc("*a".repeat(50) + "b"), enc("a".repeat(5000))), false);
});
