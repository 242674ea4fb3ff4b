/**
 * A region as the storage layer sees it, and how its bounds relate to the keys stored in the
 * engine.
 *
 * **Region bounds are data keys.** A region is one range `[startKey, endKey)` of the bytes
 * stored in the data column families (`default`, `lock`, `write`); an empty `startKey` is the
 * first key, an empty `endKey` is past the last. What a request's key becomes in that space
 * depends on its API, as in TiKV API V1:
 *
 * | API           | request key | data key in `lock`   | data key in `write` / `default`  |
 * | ------------- | ----------- | -------------------- | -------------------------------- |
 * | raw           | `k`         | `k` (any raw CF)     | `k`                              |
 * | transactional | `u`         | `memcomparable(u)`   | `memcomparable(u) ++ u64desc(ts)` |
 *
 * So a transactional region bound is an encoded user key without a timestamp (DESIGN §4.3: a
 * split key never falls between two versions of one key), and a raw region bound is a raw key.
 * Because a memcomparable encoding is self-delimiting (no encoded key is a proper prefix of
 * another), `memcomparable(u) < b` implies `memcomparable(u) ++ ts < b` for any encoded bound
 * `b`: every version of a user key falls on the same side of the bound as its lock. One
 * bytewise clamp to `[startKey, endKey)` is therefore right in every data CF and for both APIs
 * (`regionDataKey` turns a request key into the data key that is checked).
 *
 * The standalone store's one region has empty bounds: every key. CF `raft` holds store-local
 * keys (Raft state, the TTL expiry index), which belong to no region and are never clamped.
 */
import type { ColumnFamily } from "../engine/types.ts";
import { encodeKey } from "../codec/key.ts";
import { compareBytes } from "../codec/compare.ts";
import { MAX_KEY_BYTES } from "../constants.ts";
import { assert } from "../util/assert.ts";
import { toHex } from "../util/bytes.ts";
import type { Modification } from "./modification.ts";

/**
 * What the storage layer needs of a region: its identity and epoch (the header of a Raft
 * proposal, checked again at apply) and its range of data keys. `src/server/region.ts`'s
 * `Region` is one.
 */
export interface RegionMeta {
  readonly id: bigint;
  /** Inclusive data key; empty = from the first key. */
  readonly startKey: Uint8Array;
  /** Exclusive data key; empty = past the last key. */
  readonly endKey: Uint8Array;
  readonly confVer: bigint;
  readonly version: bigint;
}

/** The API a request speaks, which fixes how its keys map to data keys (see the header). */
export type KeyApi = "raw" | "txn";

/**
 * Above every data key: raw keys have at most MAX_KEY_BYTES bytes, encoded transactional keys
 * 9/8 of that plus an 8-byte ts, so 2 × MAX_KEY_BYTES + 64 bytes of 0xff sorts after both. The
 * exclusive end of a range that reaches past the last key (a delete-range needs a real key).
 */
export const DATA_KEYS_END: Uint8Array = new Uint8Array(2 * MAX_KEY_BYTES + 64).fill(0xff);

/** Whether `cf` holds region data (and so is clamped to a region's range). */
export function isDataCf(cf: ColumnFamily): boolean {
  return cf !== "raft";
}

/** The data key a request key of `api` is checked as against region bounds. */
export function regionDataKey(api: KeyApi, key: Uint8Array): Uint8Array {
  return api === "raw" ? key : encodeKey(key);
}

/** Whether data key `key` lies in `[region.startKey, region.endKey)`. */
export function regionContainsKey(
  region: Pick<RegionMeta, "startKey" | "endKey">,
  key: Uint8Array,
): boolean {
  if (region.startKey.length > 0 && compareBytes(key, region.startKey) < 0) return false;
  return region.endKey.length === 0 || compareBytes(key, region.endKey) < 0;
}

/** Whether `region` covers every key (the standalone region): no clamp is needed. */
export function coversAllKeys(region: RegionMeta): boolean {
  return region.startKey.length === 0 && region.endKey.length === 0;
}

/** Bounds of a key range: `lower` inclusive, `upper` exclusive; an absent one is unbounded. */
export interface KeyBounds {
  lower?: Uint8Array;
  upper?: Uint8Array;
}

/**
 * `bounds` (data keys) clamped to `region`: the larger lower bound and the smaller upper
 * bound; null when nothing is left (the range lies outside the region, or is empty).
 */
export function clampToRegion(region: RegionMeta, bounds: KeyBounds): KeyBounds | null {
  const { startKey, endKey } = region;
  let lower = bounds.lower;
  if (startKey.length > 0 && (lower === undefined || compareBytes(lower, startKey) < 0)) {
    lower = startKey;
  }
  let upper = bounds.upper;
  if (endKey.length > 0 && (upper === undefined || compareBytes(endKey, upper) < 0)) {
    upper = endKey;
  }
  if (lower !== undefined && upper !== undefined && compareBytes(lower, upper) >= 0) return null;
  const clamped: KeyBounds = {};
  if (lower !== undefined) clamped.lower = lower;
  if (upper !== undefined) clamped.upper = upper;
  return clamped;
}

/** Whether `[start, end)` (data keys) lies inside `region`. */
export function regionContainsRange(
  region: RegionMeta,
  range: { start: Uint8Array; end: Uint8Array },
): boolean {
  if (compareBytes(range.start, region.startKey) < 0) return false;
  if (region.endKey.length === 0) return true;
  return compareBytes(range.end, region.endKey) <= 0;
}

/**
 * Throws unless every modification of a data column family lies in `region` (the write path's
 * duty 6, `write_path.ts`): a command that writes outside its region is a bug. Free for the
 * standalone region, which holds every key.
 */
export function assertModificationsInRegion(
  region: RegionMeta,
  modifications: readonly Modification[],
): void {
  if (coversAllKeys(region)) return;
  for (const modification of modifications) {
    if (!isDataCf(modification.cf)) continue;
    const inside = modification.type === "deleteRange"
      ? regionContainsRange(region, { start: modification.startKey, end: modification.endKey })
      : regionContainsKey(region, modification.key);
    assert(inside, "a command writes only inside its region", {
      region: region.id,
      range: describeRange(region),
      modification: modification.type,
      cf: modification.cf,
      key: modification.type === "deleteRange" ? modification.startKey : modification.key,
      ...(modification.type === "deleteRange" ? { endKey: modification.endKey } : {}),
    });
  }
}

/** `[start, end)` of a region in hex, for messages. */
export function describeRange(region: { startKey: Uint8Array; endKey: Uint8Array }): string {
  return `[${toHex(region.startKey)}, ${toHex(region.endKey)})`;
}
