/**
 * The expiry index of raw values: for every raw value written with a TTL, one empty entry in
 * column family `raft` (store-local metadata, never served), so the sweeper finds values to
 * reclaim without reading every value, and never mistakes a value of another API (a
 * transaction's, in the same column family) for an expiring raw value. An entry whose key was
 * since overwritten or deleted is stale; the sweeper drops it when it comes due.
 *
 * Layout, per region by construction — ordered by column family, then user key:
 *
 *     0x01 't' 0x01 | cf (1 byte) | memcomparable(user key) | expiry (u64 big-endian Unix seconds)
 *
 * Why this layout. A store holds many regions, and a region's data moves as a key range: a
 * snapshot is generated from [start, end) per column family, a split divides a range at a key,
 * a region moves between workers or stores whole. With the index ordered by user key, the
 * entries of the keys in [start, end) of one column family are exactly the index keys in
 * `ttlIndexRangeOf(cf, [start, end))`: a snapshot carries them by copying those ranges of CF
 * raft (`ttlIndexRangesOf(region)`, one per raw column family), and a split or merge carries them
 * with no work at all, because the index was never keyed by region. The memcomparable encoding
 * keeps the order prefix-free: with the key written as it is, key "a" with its expiry suffix
 * would sort after "ab" and leave the range of a region that ends at "ab".
 *
 * The other choices, and why not:
 * - Keyed by region id (0x01 't' | region | expiry | …): the sweeper finds expired entries with
 *   one seek per region, but a split must rewrite every entry of the keys that change region,
 *   inside the apply of the split (work proportional to the region's TTL keys), and a merge or a
 *   snapshot to a region of another id likewise.
 * - Inside the region's data range, as a reserved prefix of the user key space: API V1 raw keys
 *   are any bytes, so no prefix is free of user keys (TiKV's V2 reserves prefixes; V1 does not).
 * - Ordered by expiry, store-wide (this module's first layout, kept below as the legacy one): the
 *   cheapest sweep, but no key range of it belongs to one region.
 *
 * The cost is the sweep's: without an expiry order, a round reads every index entry of the
 * worker's regions (keys only, 20 to 30 bytes plus the key; values are read only for the entries
 * that came due), in chunks that yield to requests (`src/server/raw/ttl_sweeper.ts`). Regions
 * without TTL keys cost three seeks. At the default interval (one hour) that is cheap next to the writes that
 * made the entries.
 *
 * Legacy layout (stores written before this one), rewritten into the layout above when a store
 * opens (`migrateLegacyTtlIndex`, idempotent and crash-safe: each batch puts the new entries and
 * deletes the old ones atomically):
 *
 *     0x01 't' | expiry (u64 big-endian; below 2^53, so its first byte is 0x00) | cf | user key
 *
 * Both layouts live under 0x01 't' (0x74) in CF raft, which `src/raftstore/keys.ts` leaves to
 * this index (its own local keys use second bytes 0x01, 0x02, 0x03); the third byte tells the
 * layouts apart. `src/server/raw/ttl_index_test.ts` checks that no key of either layout falls in
 * a range of the raftstore's keys.
 *
 * Why in src/storage. Two layers use the layout: the raw store writes and sweeps the entries
 * (`src/server/raw/`, which re-exports this module), and the raftstore carries a region's
 * entries in its snapshots (`src/raftstore/snapshot.ts`). The raftstore depends on no module of
 * src/server, so the layout lives beside the other storage seams both may import.
 *
 * @module
 */
import { TTL_INDEX_MIGRATION_BATCH_ENTRIES } from "../constants.ts";
import { CodecError } from "../codec/codec_error.ts";
import { decodeBytes, encodedBytesLength, writeBytes } from "../codec/memcomparable.ts";
import type { ColumnFamily, KvEngine } from "../engine/types.ts";
import { assert } from "../util/assert.ts";
import { successor } from "../util/bytes.ts";

/** Column family of the index. */
export const TTL_INDEX_CF: ColumnFamily = "raft";

/** The column families that hold raw values, by their code in the index. */
export const RAW_CFS: readonly ColumnFamily[] = ["default", "lock", "write"];

const LOCAL_PREFIX = 0x01;
const TTL_KIND = 0x74; // 't'
/** Third byte of the layout by key; the legacy layout's third byte is always 0x00. */
const BY_KEY_LAYOUT = 0x01;
/** 0x01 't' 0x01 cf: the prefix of one column family's entries. */
const CF_PREFIX_BYTES = 4;
const EXPIRY_BYTES = 8;
const LEGACY_PREFIX_BYTES = 2;

/** Bounds of every index key of either layout in CF raft: [0x01 't', 0x01 'u'). */
export const TTL_INDEX_BOUNDS: { readonly start: Uint8Array; readonly end: Uint8Array } = {
  start: new Uint8Array([LOCAL_PREFIX, TTL_KIND]),
  end: new Uint8Array([LOCAL_PREFIX, TTL_KIND + 1]),
};

/** A key range of user keys: `endKey` empty means "to the last key". */
export interface KeyRange {
  startKey: Uint8Array;
  endKey: Uint8Array;
}

/** An index entry, decoded. */
export interface TtlIndexEntry {
  expireUnixSeconds: number;
  cf: ColumnFamily;
  key: Uint8Array;
}

function cfCodeOf(cf: ColumnFamily): number {
  const code = RAW_CFS.indexOf(cf);
  assert(code >= 0, "raw values live in default, lock or write", { cf });
  return code;
}

/** Raw values expire at a Unix second below 2^53 (`value.ts` caps it); 0 is "never". */
function checkExpiry(expireUnixSeconds: number): void {
  if (!Number.isSafeInteger(expireUnixSeconds) || expireUnixSeconds < 0) {
    assert(false, "an indexed expiry is a safe non-negative integer", { expireUnixSeconds });
  }
}

/** The index key of `key` in `cf` expiring at `expireUnixSeconds` (the layout by key). */
export function ttlIndexKey(
  expireUnixSeconds: number,
  cf: ColumnFamily,
  key: Uint8Array,
): Uint8Array {
  checkExpiry(expireUnixSeconds);
  const encodedBytes = encodedBytesLength(key.length);
  const out = new Uint8Array(CF_PREFIX_BYTES + encodedBytes + EXPIRY_BYTES);
  out[0] = LOCAL_PREFIX;
  out[1] = TTL_KIND;
  out[2] = BY_KEY_LAYOUT;
  out[3] = cfCodeOf(cf);
  const at = writeBytes(out, CF_PREFIX_BYTES, key);
  new DataView(out.buffer).setBigUint64(at, BigInt(expireUnixSeconds), false);
  return out;
}

/**
 * An index key of the layout by key, decoded; null when `indexKey` is not one (a damaged entry,
 * which the sweeper drops).
 */
export function parseTtlIndexKey(indexKey: Uint8Array): TtlIndexEntry | null {
  if (
    indexKey.length < CF_PREFIX_BYTES + EXPIRY_BYTES || indexKey[0] !== LOCAL_PREFIX ||
    indexKey[1] !== TTL_KIND || indexKey[2] !== BY_KEY_LAYOUT
  ) {
    return null;
  }
  const cf = RAW_CFS[indexKey[3]!];
  if (cf === undefined) return null;
  let decoded;
  try {
    decoded = decodeBytes(indexKey, CF_PREFIX_BYTES);
  } catch (error) {
    if (error instanceof CodecError) return null;
    throw error;
  }
  if (decoded.nextOffset + EXPIRY_BYTES !== indexKey.length) return null;
  const view = new DataView(indexKey.buffer, indexKey.byteOffset, indexKey.byteLength);
  const expiry = view.getBigUint64(decoded.nextOffset, false);
  if (expiry > BigInt(Number.MAX_SAFE_INTEGER)) return null;
  return { expireUnixSeconds: Number(expiry), cf, key: decoded.value };
}

/** The expiry of a layout-by-key index key, read from its last 8 bytes without decoding it. */
export function expiryOfTtlIndexKey(indexKey: Uint8Array): number {
  assert(indexKey.length >= CF_PREFIX_BYTES + EXPIRY_BYTES, "an index key ends in its expiry", {
    bytes: indexKey.length,
  });
  const view = new DataView(indexKey.buffer, indexKey.byteOffset, indexKey.byteLength);
  const expiry = view.getBigUint64(indexKey.length - EXPIRY_BYTES, false);
  return expiry > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(expiry);
}

/**
 * The index keys (in CF raft) of the keys of `cf` in `range`: every entry of a key in
 * [startKey, endKey) lies in [start, end), and no other.
 */
export function ttlIndexRangeOf(
  cf: ColumnFamily,
  range: KeyRange,
): { start: Uint8Array; end: Uint8Array } {
  const code = cfCodeOf(cf);
  const prefix = [LOCAL_PREFIX, TTL_KIND, BY_KEY_LAYOUT, code];
  const bound = (key: Uint8Array) => {
    const out = new Uint8Array(CF_PREFIX_BYTES + encodedBytesLength(key.length));
    out.set(prefix, 0);
    writeBytes(out, CF_PREFIX_BYTES, key);
    return out;
  };
  // An empty start is the first key: the bare prefix sorts before every entry of the family.
  const start = range.startKey.length === 0 ? new Uint8Array(prefix) : bound(range.startKey);
  const end = range.endKey.length === 0
    ? new Uint8Array([LOCAL_PREFIX, TTL_KIND, BY_KEY_LAYOUT, code + 1])
    : bound(range.endKey);
  return { start, end };
}

/**
 * What a snapshot of a region carries of the index besides its data: per raw column family, the
 * range of CF raft holding the entries of the region's keys. A split needs none of this: the
 * two halves' ranges divide the parent's at the split key.
 */
export function ttlIndexRangesOf(
  region: KeyRange,
): { cf: ColumnFamily; start: Uint8Array; end: Uint8Array }[] {
  return RAW_CFS.map((cf) => ({ cf, ...ttlIndexRangeOf(cf, region) }));
}

// ---------------------------------------------------------------------------------------------
// The legacy layout, ordered by expiry: read once, when a store opens, and rewritten.

/** Bounds of every legacy index key: the third byte (the expiry's first) is 0x00. */
export const LEGACY_TTL_INDEX_BOUNDS: { readonly start: Uint8Array; readonly end: Uint8Array } = {
  start: new Uint8Array([LOCAL_PREFIX, TTL_KIND, 0x00]),
  end: new Uint8Array([LOCAL_PREFIX, TTL_KIND, BY_KEY_LAYOUT]),
};

/** The legacy index key of `key` in `cf` expiring at `expireUnixSeconds` (tests write old stores). */
export function legacyTtlIndexKey(
  expireUnixSeconds: number,
  cf: ColumnFamily,
  key: Uint8Array,
): Uint8Array {
  checkExpiry(expireUnixSeconds);
  const out = new Uint8Array(LEGACY_PREFIX_BYTES + EXPIRY_BYTES + 1 + key.length);
  out[0] = LOCAL_PREFIX;
  out[1] = TTL_KIND;
  new DataView(out.buffer).setBigUint64(LEGACY_PREFIX_BYTES, BigInt(expireUnixSeconds), false);
  out[LEGACY_PREFIX_BYTES + EXPIRY_BYTES] = cfCodeOf(cf);
  out.set(key, LEGACY_PREFIX_BYTES + EXPIRY_BYTES + 1);
  return out;
}

/** A legacy index key decoded; null when `indexKey` is not one. */
export function parseLegacyTtlIndexKey(indexKey: Uint8Array): TtlIndexEntry | null {
  const header = LEGACY_PREFIX_BYTES + EXPIRY_BYTES + 1;
  if (indexKey.length < header || indexKey[0] !== LOCAL_PREFIX || indexKey[1] !== TTL_KIND) {
    return null;
  }
  const view = new DataView(indexKey.buffer, indexKey.byteOffset, indexKey.byteLength);
  const expiry = view.getBigUint64(LEGACY_PREFIX_BYTES, false);
  const cf = RAW_CFS[indexKey[header - 1]!];
  if (cf === undefined || expiry > BigInt(Number.MAX_SAFE_INTEGER)) return null;
  return { expireUnixSeconds: Number(expiry), cf, key: indexKey.slice(header) };
}

/** What `migrateLegacyTtlIndex` did. */
export interface TtlIndexMigration {
  /** Legacy entries rewritten into the layout by key. */
  moved: number;
  /** Legacy entries that did not parse, deleted. */
  dropped: number;
}

/**
 * Rewrites every legacy index entry of `engine` into the layout by key, in batches of
 * TTL_INDEX_MIGRATION_BATCH_ENTRIES, each putting the new entries and deleting the old ones
 * atomically; a crash between batches leaves a store that the next open finishes. Run when a
 * store opens, before any worker serves (`src/server/region_workers.ts`); on a store without
 * legacy entries it costs one seek.
 */
export function migrateLegacyTtlIndex(engine: KvEngine): TtlIndexMigration {
  const result: TtlIndexMigration = { moved: 0, dropped: 0 };
  let from = LEGACY_TTL_INDEX_BOUNDS.start;
  for (;;) {
    const keys: Uint8Array[] = [];
    {
      using iterator = engine.iterator(TTL_INDEX_CF, {
        lowerBound: from,
        upperBound: LEGACY_TTL_INDEX_BOUNDS.end,
      });
      iterator.seekToFirst();
      for (; iterator.valid() && keys.length < TTL_INDEX_MIGRATION_BATCH_ENTRIES; iterator.next()) {
        keys.push(iterator.key().slice());
      }
    }
    if (keys.length === 0) return result;
    using batch = engine.newWriteBatch();
    for (const legacyKey of keys) {
      const entry = parseLegacyTtlIndexKey(legacyKey);
      if (entry === null) result.dropped++;
      else {
        batch.put(TTL_INDEX_CF, ttlIndexKey(entry.expireUnixSeconds, entry.cf, entry.key), EMPTY);
        result.moved++;
      }
      batch.delete(TTL_INDEX_CF, legacyKey);
    }
    engine.write(batch);
    from = successor(keys[keys.length - 1]!);
  }
}

const EMPTY = new Uint8Array(0);
