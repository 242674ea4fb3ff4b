import assert from "node:assert/strict";
import {
  decodeRawValue,
  encodeRawValue,
  RAW_VALUE_SUFFIX_BYTES,
  RawValueEncoder,
} from "./value.ts";

const EXPIRIES = [0, 1, 0xff, 0x1_0000_0000, 1_700_000_000, Number.MAX_SAFE_INTEGER];

Deno.test("encodeRawValue appends the expiry as 8 bytes big-endian; decodeRawValue reads it back", () => {
  for (const expiry of EXPIRIES) {
    const stored = encodeRawValue(new Uint8Array([1, 2, 3]), expiry);
    assert.equal(stored.length, 3 + RAW_VALUE_SUFFIX_BYTES);
    const view = new DataView(stored.buffer, stored.byteOffset + 3, 8);
    assert.equal(view.getBigUint64(0, false), BigInt(expiry));
    const decoded = decodeRawValue(stored);
    assert.deepEqual([...decoded.userValue], [1, 2, 3]);
    assert.equal(decoded.expireUnixSeconds, expiry);
  }
});

Deno.test("RawValueEncoder gives the bytes encodeRawValue gives, small or large", () => {
  const encoder = new RawValueEncoder();
  for (const size of [0, 100, 1016, 1017, 5000]) {
    const value = new Uint8Array(size).map((_, i) => i & 0xff);
    for (const expiry of EXPIRIES) {
      assert.deepEqual(encoder.encode(value, expiry), encodeRawValue(value, expiry));
    }
  }
});

Deno.test("a stored value shorter than its suffix is damaged", () => {
  assert.throws(() => decodeRawValue(new Uint8Array(7)), /damaged raw value/);
});
