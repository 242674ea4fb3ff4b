import assert from "node:assert/strict";
import { crc64 } from "./crc64.ts";
import { utf8 } from "../../util/bytes.ts";

Deno.test('crc64() of "123456789" is the CRC-64/XZ check value 0x995dc9bbdf1939fa', () => {
  assert.equal(crc64(utf8("123456789")), 0x995dc9bbdf1939fan);
});

Deno.test("crc64() of nothing is 0", () => {
  assert.equal(crc64(new Uint8Array(0)), 0n);
});

Deno.test("crc64() over parts equals crc64() over their concatenation", () => {
  assert.equal(crc64(utf8("1234"), utf8("56789")), crc64(utf8("123456789")));
});
