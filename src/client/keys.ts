/**
 * Byte keys as both clients (`raw.ts`, `txn/`) handle them: an identity usable as a Map key,
 * and the bounds of a key range walked region by region. An exclusive end that is empty means
 * +infinity ("to the last key"), as in kvproto.
 */
import { compareBytes } from "../util/bytes.ts";
import type { RegionInfo } from "./region.ts";

/** Most bytes spread into one `String.fromCharCode` call (stays far below argument limits). */
const KEY_ID_SLICE_BYTES = 4096;

/** A string with one char per byte: a Map key that sorts as the bytes do. */
export function keyId(key: Uint8Array): string {
  let id = "";
  for (let i = 0; i < key.length; i += KEY_ID_SLICE_BYTES) {
    id += String.fromCharCode(...key.subarray(i, i + KEY_ID_SLICE_BYTES));
  }
  return id;
}

/** `keys` without repeats, in first-seen order. */
export function uniqueKeys(keys: readonly Uint8Array[]): Uint8Array[] {
  const seen = new Set<string>();
  return keys.filter((key) => {
    const id = keyId(key);
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

/** The smaller of two exclusive upper bounds, an empty one being +infinity. */
export function minEnd(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  return compareBytes(a, b) <= 0 ? a : b;
}

/** Whether the region's range reaches `end` (exclusive; empty = +infinity). */
export function reachesEnd(region: RegionInfo, end: Uint8Array): boolean {
  if (region.endKey.length === 0) return true;
  return end.length > 0 && compareBytes(end, region.endKey) <= 0;
}

export { successor } from "../util/bytes.ts";
