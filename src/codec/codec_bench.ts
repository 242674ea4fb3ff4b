/**
 * Per-key costs of the codec: `deno bench -A src/codec/codec_bench.ts`.
 *
 * @module
 */

import {
  decodeBytes,
  decodeKeyWithTs,
  decodeTs,
  decodeU64Desc,
  decodeVarU64,
  encodeBytes,
  encodeKeyWithTs,
  encodeU64Desc,
  encodeVarU64,
  truncateTs,
} from "./mod.ts";

const key16 = new TextEncoder().encode("key0000000000042");
const ts = (1_700_000_000_000n << 18n) | 42n;
const encodedKey = encodeBytes(key16);
const keyWithTs = encodeKeyWithTs(key16, ts);
const tsBytes = encodeU64Desc(ts);
const varTs = encodeVarU64(ts);
let sink = 0;

Deno.bench("new Uint8Array(33) (allocation floor)", { group: "floor" }, () => {
  sink += new Uint8Array(33).length;
});
Deno.bench("encodeBytes(16-byte key)", () => {
  sink += encodeBytes(key16).length;
});
Deno.bench("decodeBytes(16-byte key)", () => {
  sink += decodeBytes(encodedKey).value.length;
});
Deno.bench("encodeKeyWithTs(16-byte key, ts)", () => {
  sink += encodeKeyWithTs(key16, ts).length;
});
Deno.bench("decodeKeyWithTs(16-byte key + ts)", () => {
  sink += decodeKeyWithTs(keyWithTs).userKey.length;
});
Deno.bench("decodeTs(key with ts)", () => {
  sink += Number(decodeTs(keyWithTs) & 1n);
});
Deno.bench("truncateTs(key with ts)", () => {
  sink += truncateTs(keyWithTs).length;
});
Deno.bench("encodeU64Desc(ts)", () => {
  sink += encodeU64Desc(ts).length;
});
Deno.bench("decodeU64Desc(ts)", () => {
  sink += Number(decodeU64Desc(tsBytes) & 1n);
});
Deno.bench("encodeVarU64(ts)", () => {
  sink += encodeVarU64(ts).length;
});
Deno.bench("decodeVarU64(ts)", () => {
  sink += decodeVarU64(varTs).nextOffset;
});

addEventListener("unload", () => {
  if (sink === -1) console.log(sink);
});
