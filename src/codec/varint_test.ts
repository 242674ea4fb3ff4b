import { deepStrictEqual as assertEquals, throws } from "node:assert/strict";
import { CodecError } from "./codec_error.ts";
import { I64_MAX, I64_MIN, U64_MAX } from "./number.ts";
import { catchError, hex, withSeed } from "./test_support.ts";
import {
  decodeVarI64,
  decodeVarU64,
  decodeVarUint,
  encodeVarI64,
  encodeVarU64,
  encodeVarUint,
  varI64Length,
  varU64Length,
  varUintLength,
} from "./varint.ts";

const u8 = (...bytes: number[]) => new Uint8Array(bytes);

// Protobuf's uint64 wire bytes, which TiKV's test_var_u64 checks its encoding against.
const U64_VECTORS: [bigint, string][] = [
  [0n, "00"],
  [1n, "01"],
  [127n, "7f"],
  [128n, "8001"],
  [300n, "ac02"],
  [16383n, "ff7f"],
  [16384n, "808001"],
  [0xffff_ffffn, "ffffffff0f"],
  [0x1_0000_0000n, "8080808010"],
  [2n ** 53n - 1n, "ffffffffffffff0f"],
  [2n ** 63n, "80808080808080808001"],
  [U64_MAX, "ffffffffffffffffff01"],
];

Deno.test("encodeVarU64() writes protobuf's uint64 bytes", () => {
  for (const [value, bytes] of U64_VECTORS) {
    assertEquals(hex(encodeVarU64(value)), bytes, `${value}`);
    assertEquals(varU64Length(value), bytes.length / 2);
    assertEquals(decodeVarU64(encodeVarU64(value)), { value, nextOffset: bytes.length / 2 });
  }
});

Deno.test("the number path writes the same bytes as the bigint path", () => {
  for (const [value, bytes] of U64_VECTORS) {
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) continue;
    assertEquals(hex(encodeVarUint(Number(value))), bytes);
    assertEquals(varUintLength(Number(value)), bytes.length / 2);
    assertEquals(decodeVarUint(encodeVarU64(value)).value, Number(value));
  }
});

Deno.test("encodeVarI64() zigzags: 0, -1, 1, -2 become 0, 1, 2, 3", () => {
  const cases: [bigint, string][] = [
    [0n, "00"],
    [-1n, "01"],
    [1n, "02"],
    [-2n, "03"],
    [63n, "7e"],
    [-64n, "7f"],
    [64n, "8001"],
    [I64_MAX, "feffffffffffffffff01"],
    [I64_MIN, "ffffffffffffffffff01"],
  ];
  for (const [value, bytes] of cases) {
    assertEquals(hex(encodeVarI64(value)), bytes, `${value}`);
    assertEquals(varI64Length(value), bytes.length / 2);
    assertEquals(decodeVarI64(encodeVarI64(value)).value, value);
  }
});

Deno.test("a varint cut short is a truncated CodecError at its start", () => {
  for (const bytes of [[], [0x80], [0xff, 0xff, 0xff]]) {
    const error = catchError(() => decodeVarU64(u8(...bytes)), CodecError);
    assertEquals(error.code, "truncated");
    assertEquals(error.offset, 0);
  }
  assertEquals(catchError(() => decodeVarUint(u8(1, 0x80), 1), CodecError).offset, 1);
});

Deno.test("a varint beyond 64 bits is a varint_overflow CodecError", () => {
  const elevenBytes = u8(0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00);
  assertEquals(catchError(() => decodeVarU64(elevenBytes), CodecError).code, "varint_overflow");
  const tenthTooBig = u8(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02);
  const error = catchError(() => decodeVarU64(tenthTooBig), CodecError);
  assertEquals([error.code, error.offset], ["varint_overflow", 9]);
});

Deno.test("decodeVarUint() refuses values above Number.MAX_SAFE_INTEGER", () => {
  const error = catchError(() => decodeVarUint(encodeVarU64(2n ** 53n)), CodecError);
  assertEquals(error.code, "varint_overflow");
  throws(() => encodeVarUint(2 ** 53), RangeError);
  throws(() => encodeVarUint(-1), RangeError);
  throws(() => encodeVarUint(1.5), RangeError);
  throws(() => encodeVarU64(-1n), RangeError);
  throws(() => encodeVarI64(I64_MAX + 1n), RangeError);
});

Deno.test("property: varint decode inverts encode, back to back in one buffer", () => {
  withSeed((prng) => {
    for (let round = 0; round < 2000; round++) {
      const unsigned = prng.u64();
      const signed = BigInt.asIntN(64, prng.u64());
      const small = prng.below(2 ** 31) * (prng.below(2) === 0 ? 1 : 2 ** 21);
      const buffer = Uint8Array.of(
        ...encodeVarU64(unsigned),
        ...encodeVarI64(signed),
        ...encodeVarUint(small),
      );
      const first = decodeVarU64(buffer);
      const second = decodeVarI64(buffer, first.nextOffset);
      const third = decodeVarUint(buffer, second.nextOffset);
      assertEquals([first.value, second.value, third.value], [unsigned, signed, small]);
      assertEquals(third.nextOffset, buffer.length);
    }
  });
});
