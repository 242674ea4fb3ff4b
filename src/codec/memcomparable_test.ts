import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import { CodecError } from "./codec_error.ts";
import { compareBytes } from "./compare.ts";
import {
  decodeBytes,
  decodeBytesDesc,
  encodeBytes,
  encodeBytesDesc,
  encodedBytesLength,
  encodedBytesSpan,
  writeBytes,
} from "./memcomparable.ts";
import { catchError, withSeed } from "./test_support.ts";

const u8 = (...bytes: number[]) => new Uint8Array(bytes);
const sign = (n: number) => Math.sign(n);

// TiKV components/codec/src/byte.rs `test_memcmp_encode_all`: (raw, ascending, descending).
const TIKV_VECTORS: [number[], number[], number[]][] = [
  [[], [0, 0, 0, 0, 0, 0, 0, 0, 247], [255, 255, 255, 255, 255, 255, 255, 255, 8]],
  [[0], [0, 0, 0, 0, 0, 0, 0, 0, 248], [255, 255, 255, 255, 255, 255, 255, 255, 7]],
  [[1, 2, 3], [1, 2, 3, 0, 0, 0, 0, 0, 250], [254, 253, 252, 255, 255, 255, 255, 255, 5]],
  [[1, 2, 3, 0], [1, 2, 3, 0, 0, 0, 0, 0, 251], [254, 253, 252, 255, 255, 255, 255, 255, 4]],
  [
    [1, 2, 3, 4, 5, 6, 7],
    [1, 2, 3, 4, 5, 6, 7, 0, 254],
    [254, 253, 252, 251, 250, 249, 248, 255, 1],
  ],
  [
    [0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0, 255, 0, 0, 0, 0, 0, 0, 0, 0, 247],
    [255, 255, 255, 255, 255, 255, 255, 255, 0, 255, 255, 255, 255, 255, 255, 255, 255, 8],
  ],
  [
    [1, 2, 3, 4, 5, 6, 7, 8],
    [1, 2, 3, 4, 5, 6, 7, 8, 255, 0, 0, 0, 0, 0, 0, 0, 0, 247],
    [254, 253, 252, 251, 250, 249, 248, 247, 0, 255, 255, 255, 255, 255, 255, 255, 255, 8],
  ],
  [
    [1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 2, 3, 4, 5, 6, 7, 8, 255, 9, 0, 0, 0, 0, 0, 0, 0, 248],
    [254, 253, 252, 251, 250, 249, 248, 247, 0, 246, 255, 255, 255, 255, 255, 255, 255, 7],
  ],
];

Deno.test("encodeBytes() matches TiKV's known ascending and descending vectors", () => {
  for (const [raw, ascending, descending] of TIKV_VECTORS) {
    assertEquals(encodeBytes(u8(...raw)), u8(...ascending), `asc ${raw}`);
    assertEquals(encodeBytesDesc(u8(...raw)), u8(...descending), `desc ${raw}`);
    assertEquals(decodeBytes(u8(...ascending)), {
      value: u8(...raw),
      nextOffset: ascending.length,
    });
    assertEquals(decodeBytesDesc(u8(...descending)).value, u8(...raw));
  }
});

Deno.test("encodedBytesLength() is (n / 8 + 1) * 9 as TiKV's test_memcmp_encoded_len", () => {
  const cases: [number, number][] = [[0, 9], [4, 9], [7, 9], [8, 18], [9, 18], [16, 27], [17, 27]];
  for (const [raw, encoded] of cases) assertEquals(encodedBytesLength(raw), encoded);
  throws(() => encodedBytesLength(-1), RangeError);
});

Deno.test("encodeBytes() keeps the order of TiKV's test_encode_bytes_compare pairs", () => {
  const pairs: [number[], number[], number][] = [
    [[], [0], -1],
    [[0], [0], 0],
    [[0xff], [0], 1],
    [[0xff], [0xff, 0], -1],
    [[0x61], [0x62], -1],
    [[0x61], [0], 1],
    [[0], [1], -1],
    [[0, 1], [0, 0], 1],
    [[0, 0, 0], [0, 0], 1],
    [[0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0, 0], -1],
    [[1, 2, 3, 0], [1, 2, 3], 1],
    [[1, 3, 3, 4], [1, 3, 3, 5], -1],
    [[1, 2, 3, 4, 5, 6, 7], [1, 2, 3, 4, 5, 6, 7, 8], -1],
    [[1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 5, 6, 7, 8], 1],
    [[1, 2, 3, 4, 5, 6, 7, 8, 0], [1, 2, 3, 4, 5, 6, 7, 8], 1],
  ];
  for (const [a, b, order] of pairs) {
    assertEquals(sign(compareBytes(encodeBytes(u8(...a)), encodeBytes(u8(...b)))), order);
    assertEquals(
      sign(compareBytes(encodeBytesDesc(u8(...a)), encodeBytesDesc(u8(...b)))),
      0 - order,
    );
  }
});

Deno.test("decodeBytes() rejects TiKV's test_dec_bytes_fail inputs with a CodecError", () => {
  const invalid: [number[], string][] = [
    [[1, 2, 3, 4], "truncated"],
    [[0, 0, 0, 0, 0, 0, 0, 247], "truncated"],
    [[0, 0, 0, 0, 0, 0, 0, 0, 246], "bad_padding"],
    [[0, 0, 0, 0, 0, 0, 0, 1, 247], "bad_padding"],
    [[1, 2, 3, 4, 5, 6, 7, 8, 0], "bad_padding"],
    [[1, 2, 3, 4, 5, 6, 7, 8, 255, 1], "truncated"],
    [[1, 2, 3, 4, 5, 6, 7, 8, 255, 1, 2, 3, 4, 5, 6, 7, 8], "truncated"],
    [[1, 2, 3, 4, 5, 6, 7, 8, 255, 1, 2, 3, 4, 5, 6, 7, 8, 255], "truncated"],
    [[1, 2, 3, 4, 5, 6, 7, 8, 255, 1, 2, 3, 4, 5, 6, 7, 8, 0], "bad_padding"],
    [[1, 2, 3, 4, 5, 6, 7, 8, 255, 1, 0, 0, 0, 0, 0, 0, 0, 247], "bad_padding"],
  ];
  for (const [bytes, code] of invalid) {
    const error = catchError(() => decodeBytes(u8(...bytes)), CodecError);
    assertEquals(error.code, code, `${bytes}: ${error.message}`);
  }
});

Deno.test("decodeBytes() error names the offset of the bad pad byte", () => {
  const error = catchError(() => decodeBytes(u8(0, 0, 0, 0, 0, 0, 0, 1, 247)), CodecError);
  assertEquals(error.offset, 7);
  assert(error.message.includes("offset 7"), error.message);
});

Deno.test("decodeBytes() fails on every strict prefix of a valid encoding", () => {
  const encoded = encodeBytes(u8(1, 2, 3, 4, 5, 6, 7, 8, 9, 10));
  for (let length = 0; length < encoded.length; length++) {
    for (const decode of [decodeBytes, decodeBytesDesc]) {
      throws(() => decode(encoded.subarray(0, length)), CodecError);
    }
  }
});

Deno.test("decodeBytes() at an offset leaves the bytes after the field to the caller", () => {
  const first = encodeBytes(u8(9, 9, 9, 9, 9, 9, 9, 9, 9));
  const buffer = new Uint8Array(3 + first.length + 2);
  buffer.set(first, 3);
  buffer.set([0xaa, 0xbb], 3 + first.length);
  assertEquals(decodeBytes(buffer, 3), { value: u8(9, 9, 9, 9, 9, 9, 9, 9, 9), nextOffset: 21 });
  assertEquals(encodedBytesSpan(buffer, 3), first.length);
});

Deno.test("writeBytes() refuses a destination too small", () => {
  throws(() => writeBytes(new Uint8Array(8), 0, u8()), RangeError);
  throws(() => writeBytes(new Uint8Array(9), 1, u8()), RangeError);
});

Deno.test("property: memcomparable encoding preserves order, descending reverses it, decode inverts", () => {
  withSeed((prng) => {
    for (let round = 0; round < 5000; round++) {
      const a = prng.bytes(prng.below(26));
      // Half the pairs share a prefix, which is where a group/marker mistake would show.
      const b = prng.below(2) === 0
        ? Uint8Array.of(...a.subarray(0, prng.below(a.length + 1)), ...prng.bytes(prng.below(10)))
        : prng.bytes(prng.below(26));
      const order = sign(compareBytes(a, b));
      const ascA = encodeBytes(a);
      const ascB = encodeBytes(b);
      const descA = encodeBytesDesc(a);
      assertEquals(sign(compareBytes(ascA, ascB)), order, `asc ${a} vs ${b}`);
      assertEquals(sign(compareBytes(descA, encodeBytesDesc(b))), 0 - order, `desc ${a} vs ${b}`);
      assertEquals(decodeBytes(ascA), { value: a, nextOffset: ascA.length });
      assertEquals(decodeBytesDesc(descA), { value: a, nextOffset: descA.length });
      assertEquals(ascA.length, encodedBytesLength(a.length));
    }
  });
});
