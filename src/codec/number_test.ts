import { deepStrictEqual as assertEquals, throws } from "node:assert/strict";
import { CodecError } from "./codec_error.ts";
import { compareBytes } from "./compare.ts";
import {
  decodeI64,
  decodeI64Desc,
  decodeU64,
  decodeU64Desc,
  encodeI64,
  encodeI64Desc,
  encodeU64,
  encodeU64Desc,
  I64_MAX,
  I64_MIN,
  U64_MAX,
  writeU64,
} from "./number.ts";
import { catchError, hex, withSeed } from "./test_support.ts";

const sign = (n: number | bigint) => (n < 0 ? -1 : n > 0 ? 1 : 0);

Deno.test("u64 encodes big-endian ascending and as its bitwise NOT descending", () => {
  assertEquals(hex(encodeU64(0n)), "0000000000000000");
  assertEquals(hex(encodeU64(1n)), "0000000000000001");
  assertEquals(hex(encodeU64(0x0102030405060708n)), "0102030405060708");
  assertEquals(hex(encodeU64(U64_MAX)), "ffffffffffffffff");
  assertEquals(hex(encodeU64Desc(0n)), "ffffffffffffffff");
  assertEquals(hex(encodeU64Desc(1n)), "fffffffffffffffe");
  // TiKV txn_types test_append_ts: ts 100 and 1000 descending.
  assertEquals(hex(encodeU64Desc(100n)), "ffffffffffffff9b");
  assertEquals(hex(encodeU64Desc(1000n)), "fffffffffffffc17");
});

Deno.test("i64 flips the sign bit so negatives sort first", () => {
  assertEquals(hex(encodeI64(I64_MIN)), "0000000000000000");
  assertEquals(hex(encodeI64(-1n)), "7fffffffffffffff");
  assertEquals(hex(encodeI64(0n)), "8000000000000000");
  assertEquals(hex(encodeI64(1n)), "8000000000000001");
  assertEquals(hex(encodeI64(I64_MAX)), "ffffffffffffffff");
  assertEquals(hex(encodeI64Desc(0n)), "7fffffffffffffff");
  assertEquals(hex(encodeI64Desc(-1n)), "8000000000000000");
});

Deno.test("out-of-range values are refused with RangeError", () => {
  throws(() => encodeU64(-1n), RangeError);
  throws(() => encodeU64(U64_MAX + 1n), RangeError);
  throws(() => encodeI64(I64_MAX + 1n), RangeError);
  throws(() => encodeI64Desc(I64_MIN - 1n), RangeError);
  throws(() => writeU64(new Uint8Array(8), 1, 0n), RangeError);
});

Deno.test("decoding fewer than 8 bytes is a truncated CodecError", () => {
  for (const decode of [decodeU64, decodeU64Desc, decodeI64, decodeI64Desc]) {
    const error = catchError(() => decode(new Uint8Array(7)), CodecError);
    assertEquals(error.code, "truncated");
    assertEquals(catchError(() => decode(new Uint8Array(12), 5), CodecError).offset, 5);
  }
});

Deno.test("decoding reads at an offset", () => {
  const buffer = new Uint8Array(11);
  writeU64(buffer, 3, 0xdead_beef_cafe_f00dn);
  assertEquals(decodeU64(buffer, 3), 0xdead_beef_cafe_f00dn);
});

Deno.test("property: u64/i64 encodings preserve order, descending reverses it, decode inverts", () => {
  withSeed((prng) => {
    for (let round = 0; round < 5000; round++) {
      const a = prng.u64();
      const b = prng.below(8) === 0 ? a : prng.u64();
      const order = sign(a - b);
      assertEquals(sign(compareBytes(encodeU64(a), encodeU64(b))), order);
      assertEquals(sign(compareBytes(encodeU64Desc(a), encodeU64Desc(b))), 0 - order);
      assertEquals(decodeU64(encodeU64(a)), a);
      assertEquals(decodeU64Desc(encodeU64Desc(a)), a);
      const signedA = BigInt.asIntN(64, a);
      const signedB = BigInt.asIntN(64, b);
      const signedOrder = sign(signedA - signedB);
      assertEquals(sign(compareBytes(encodeI64(signedA), encodeI64(signedB))), signedOrder);
      assertEquals(
        sign(compareBytes(encodeI64Desc(signedA), encodeI64Desc(signedB))),
        0 - signedOrder,
      );
      assertEquals(decodeI64(encodeI64(signedA)), signedA);
      assertEquals(decodeI64Desc(encodeI64Desc(signedA)), signedA);
    }
  });
});
