/**
 * Local keys: where a store keeps its own Raft state in column family `raft`, in TiKV's layout
 * (tikv/tikv `components/keys/src/lib.rs`), so the bytes on disk read the same as TiKV's.
 *
 *     0x01 0x01                                        StoreIdent
 *     0x01 0x02 | region_id (u64 BE) | 0x01 | index (u64 BE)   raft log entry (eraftpb.Entry)
 *     0x01 0x02 | region_id (u64 BE) | 0x02            RaftLocalState (hard state, last index)
 *     0x01 0x02 | region_id (u64 BE) | 0x03            RaftApplyState (applied, truncated)
 *     0x01 0x03 | region_id (u64 BE) | 0x01            RegionLocalState (region, peer state)
 *
 * 0x01 is TiKV's local prefix (user data, in the other column families, starts with 'z' in TiKV;
 * Basalt's user keys never share this column family). Under 0x01, the second byte names the
 * kind: 0x01 store-wide records, 0x02 a region's Raft records (log, raft state, apply state),
 * 0x03 a region's metadata — kept apart, as TiKV does, so that a store starting up scans every
 * region's metadata without walking any log.
 *
 * Invariants:
 * - Big-endian integers: keys of one region sort by index, regions sort by id, and all of a
 *   region's Raft records lie in [regionRaftPrefix(id), regionRaftPrefix(id + 1)).
 * - A region's log entries are exactly the keys in `raftLogRange(id)`; its raft and apply
 *   state keys (suffix 0x02, 0x03) sort after the whole log (suffix 0x01), so a range deletion
 *   of log entries never touches them.
 * - No collision with the other tenant of column family `raft`: the raw TTL expiry index
 *   (`src/storage/ttl_index.ts`) lives under 0x01 0x74 ('t'), a second byte none of these
 *   use (0x01, 0x02, 0x03). `keys_test.ts` checks the prefixes stay disjoint. A new kind of local
 *   record must take an unused second byte and be added to that test.
 *
 * @module
 */

/** TiKV's `LOCAL_PREFIX`: every local key starts with it. */
export const LOCAL_PREFIX = 0x01;
/** Second byte of the store identity record. */
export const STORE_IDENT_KIND = 0x01;
/** Second byte of a region's Raft records (log, raft state, apply state). */
export const REGION_RAFT_KIND = 0x02;
/** Second byte of a region's metadata records. */
export const REGION_META_KIND = 0x03;

/** Suffix of a raft log entry key, followed by the index. */
export const RAFT_LOG_SUFFIX = 0x01;
/** Suffix of the RaftLocalState key. */
export const RAFT_STATE_SUFFIX = 0x02;
/** Suffix of the RaftApplyState key. */
export const APPLY_STATE_SUFFIX = 0x03;
/** Suffix of the RegionLocalState key (under REGION_META_KIND). */
export const REGION_STATE_SUFFIX = 0x01;

const U64_MAX = 0xffff_ffff_ffff_ffffn;
/** 0x01 kind | region id: the prefix length of every per-region key. */
const REGION_PREFIX_BYTES = 2 + 8;
/** A per-region key with its one-byte suffix. */
const REGION_KEY_BYTES = REGION_PREFIX_BYTES + 1;
/** A raft log key: prefix, suffix, index. */
const RAFT_LOG_KEY_BYTES = REGION_KEY_BYTES + 8;

function checkU64(value: bigint, what: string): void {
  if (value < 0n || value > U64_MAX) throw new RangeError(`${what} ${value} is not a u64`);
}

function regionKey(kind: number, regionId: bigint, suffix: number, extra: number): Uint8Array {
  checkU64(regionId, "region id");
  const key = new Uint8Array(REGION_KEY_BYTES + extra);
  key[0] = LOCAL_PREFIX;
  key[1] = kind;
  new DataView(key.buffer).setBigUint64(2, regionId, false);
  key[REGION_PREFIX_BYTES] = suffix;
  return key;
}

/** The store identity key: `0x01 0x01`. */
export function storeIdentKey(): Uint8Array {
  return new Uint8Array([LOCAL_PREFIX, STORE_IDENT_KIND]);
}

/** The key of raft log entry `index` of region `regionId`. */
export function raftLogKey(regionId: bigint, index: bigint): Uint8Array {
  checkU64(index, "log index");
  const key = regionKey(REGION_RAFT_KIND, regionId, RAFT_LOG_SUFFIX, 8);
  new DataView(key.buffer).setBigUint64(REGION_KEY_BYTES, index, false);
  return key;
}

/** The RaftLocalState key of region `regionId`. */
export function raftStateKey(regionId: bigint): Uint8Array {
  return regionKey(REGION_RAFT_KIND, regionId, RAFT_STATE_SUFFIX, 0);
}

/** The RaftApplyState key of region `regionId`. */
export function applyStateKey(regionId: bigint): Uint8Array {
  return regionKey(REGION_RAFT_KIND, regionId, APPLY_STATE_SUFFIX, 0);
}

/** The RegionLocalState key of region `regionId`. */
export function regionStateKey(regionId: bigint): Uint8Array {
  return regionKey(REGION_META_KIND, regionId, REGION_STATE_SUFFIX, 0);
}

/**
 * Bounds of region `regionId`'s log entries with index in [lo, hi): `start` inclusive, `end`
 * exclusive, for an iterator or a range deletion. `hi` may be 2^64 (the whole log above `lo`).
 */
export function raftLogRange(
  regionId: bigint,
  range: { lo: bigint; hi: bigint } = { lo: 0n, hi: U64_MAX + 1n },
): { start: Uint8Array; end: Uint8Array } {
  if (range.lo > range.hi) throw new RangeError(`log range [${range.lo}, ${range.hi}) is reversed`);
  const start = raftLogKey(regionId, range.lo);
  // Past the last index, the next suffix (the raft state key) bounds the log from above.
  const end = range.hi > U64_MAX
    ? regionKey(REGION_RAFT_KIND, regionId, RAFT_LOG_SUFFIX + 1, 0)
    : raftLogKey(regionId, range.hi);
  return { start, end };
}

/** Bounds of every region's metadata records, for the scan a starting store makes. */
export function regionMetaRange(): { start: Uint8Array; end: Uint8Array } {
  return {
    start: new Uint8Array([LOCAL_PREFIX, REGION_META_KIND]),
    end: new Uint8Array([LOCAL_PREFIX, REGION_META_KIND + 1]),
  };
}

/** The region id and index of a raft log key, or null if `key` is not one. */
export function parseRaftLogKey(key: Uint8Array): { regionId: bigint; index: bigint } | null {
  if (
    key.length !== RAFT_LOG_KEY_BYTES || key[0] !== LOCAL_PREFIX ||
    key[1] !== REGION_RAFT_KIND || key[REGION_PREFIX_BYTES] !== RAFT_LOG_SUFFIX
  ) {
    return null;
  }
  const view = new DataView(key.buffer, key.byteOffset, key.byteLength);
  return {
    regionId: view.getBigUint64(2, false),
    index: view.getBigUint64(REGION_KEY_BYTES, false),
  };
}

/** The region id of a RegionLocalState key, or null if `key` is not one. */
export function parseRegionStateKey(key: Uint8Array): bigint | null {
  if (
    key.length !== REGION_KEY_BYTES || key[0] !== LOCAL_PREFIX ||
    key[1] !== REGION_META_KIND || key[REGION_PREFIX_BYTES] !== REGION_STATE_SUFFIX
  ) {
    return null;
  }
  return new DataView(key.buffer, key.byteOffset, key.byteLength).getBigUint64(2, false);
}
