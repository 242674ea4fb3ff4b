import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { CodecError } from "./codec_error.ts";
import { compareBytes } from "./compare.ts";
import {
  appendTs,
  decodeKey,
  decodeKeyWithTs,
  decodeTs,
  encodeKey,
  encodeKeyWithTs,
  isUserKeyEq,
  keyWithTsLength,
  splitOnTs,
  truncateTs,
  writeKeyWithTs,
} from "./key.ts";
import { catchError, hex, withSeed } from "./test_support.ts";

const text = (s: string) => new TextEncoder().encode(s);
const sign = (n: number | bigint) => (n < 0 ? -1 : n > 0 ? 1 : 0);

Deno.test("encodeKeyWithTs() matches TiKV's test_append_ts vectors", () => {
  // Key::from_raw(b"z").append_ts(1000)
  assertEquals(hex(encodeKeyWithTs(text("z"), 1000n)), "7a00000000000000f8fffffffffffffc17");
  // Key::from_encoded(b"abc").append_ts(100)
  assertEquals(hex(appendTs(text("abc"), 100n)), "616263ffffffffffffff9b");
  assertEquals(encodeKeyWithTs(text("z"), 1000n), appendTs(encodeKey(text("z")), 1000n));
});

Deno.test("a key with ts splits back into the encoded key and the ts", () => {
  const key = encodeKeyWithTs(text("hello world"), 424242n);
  assertEquals(truncateTs(key), encodeKey(text("hello world")));
  assertEquals(decodeTs(key), 424242n);
  assertEquals(splitOnTs(key), { encodedKey: encodeKey(text("hello world")), ts: 424242n });
  assertEquals(decodeKeyWithTs(key), { userKey: text("hello world"), ts: 424242n });
  assertEquals(decodeKey(encodeKey(text("hello world"))), text("hello world"));
});

Deno.test("a key shorter than 8 bytes has no ts: bad_key_length", () => {
  for (const split of [truncateTs, decodeTs, splitOnTs, decodeKeyWithTs]) {
    assertEquals(catchError(() => split(new Uint8Array(7)), CodecError).code, "bad_key_length");
  }
});

Deno.test("decodeKey() refuses bytes after the encoded key (a ts left on)", () => {
  const error = catchError(() => decodeKey(encodeKeyWithTs(text("k"), 1n)), CodecError);
  assertEquals([error.code, error.offset], ["trailing_bytes", 9]);
});

Deno.test("decodeKeyWithTs() refuses a corrupt or misplaced user key", () => {
  const padded = Uint8Array.of(...encodeKey(text("k")), 0, ...new Uint8Array(8));
  assertEquals(catchError(() => decodeKeyWithTs(padded), CodecError).code, "trailing_bytes");
  const corrupt = encodeKeyWithTs(text("k"), 5n);
  corrupt[8] = 0x00; // marker of the only group
  assertEquals(catchError(() => decodeKeyWithTs(corrupt), CodecError).code, "bad_padding");
  assertEquals(
    catchError(() => decodeKeyWithTs(corrupt.subarray(4)), CodecError).code,
    "truncated",
  );
});

Deno.test("isUserKeyEq() follows TiKV's test_is_user_key_eq", () => {
  const eq = (a: string, b: string) => isUserKeyEq(text(a), text(b));
  assertEquals(eq("", ""), false);
  assertEquals(eq("12345", ""), false);
  assertEquals(eq("12345678", ""), true);
  assertEquals(eq("x12345678", "x"), true);
  assertEquals(eq("x12345", "x"), false);
  assertEquals(eq("xyz________", "xyz"), true);
  assertEquals(eq("xyy12345678", "xyz"), false);
  assertEquals(eq("abcdefgh12345678", "abcdefgh"), true);
  assertEquals(eq("abcdefgz12345678", "abcdefgh"), false);
  assertEquals(eq("zbcdefgh12345678", "abcdefgh"), false);
  assertEquals(eq("abcdefghijk87654321", "abcdefghijk"), true);
  assertEquals(eq("abxdefghijk87654321", "abcdefghijk"), false);
});

Deno.test("property: keys with ts sort by user key, then newest ts first (Percolator MVCC order)", () => {
  withSeed((prng) => {
    for (let round = 0; round < 3000; round++) {
      const keyA = prng.bytes(prng.below(20));
      const keyB = prng.below(3) === 0 ? keyA : prng.bytes(prng.below(20));
      const tsA = prng.u64();
      const tsB = prng.below(4) === 0 ? tsA : prng.u64();
      const expected = sign(compareBytes(keyA, keyB)) || sign(tsB - tsA);
      const encodedA = encodeKeyWithTs(keyA, tsA);
      const encodedB = encodeKeyWithTs(keyB, tsB);
      assertEquals(
        sign(compareBytes(encodedA, encodedB)),
        expected,
        `${keyA}@${tsA} ${keyB}@${tsB}`,
      );
      assertEquals(decodeKeyWithTs(encodedA), { userKey: keyA, ts: tsA });
      assert(isUserKeyEq(encodedA, encodeKey(keyA)));
      assertEquals(isUserKeyEq(encodedA, encodeKey(keyB)), compareBytes(keyA, keyB) === 0);
    }
  });
});

Deno.test("writeKeyWithTs() fills a preallocated buffer with the same bytes as encodeKeyWithTs()", () => {
  const arena = new Uint8Array(64);
  const userKey = text("0123456789");
  const end = writeKeyWithTs(arena, 5, userKey, 77n);
  assertEquals(end - 5, keyWithTsLength(userKey.length));
  assertEquals(arena.subarray(5, end), encodeKeyWithTs(userKey, 77n));
});
