/**
 * The storage seams of a store: the one write path every write leaves through
 * (`WritePath`, `Modification`, and today's `GroupCommit` behind it) and the region-clamped
 * read view every command reads through (`RegionSnapshot`); and the layout of the raw TTL
 * expiry index (`ttl_index.ts`), which the raw store writes and region snapshots carry. With
 * replication, the write path becomes the region's Raft proposal and nothing above it changes.
 *
 * @module
 */

export { addTo, admitWrite, GroupCommit } from "./group_commit.ts";
export {
  type DeleteModification,
  type DeleteRangeModification,
  type Modification,
  modificationSizeBytes,
  type PutModification,
} from "./modification.ts";
export { modificationToRaftRequest, raftRequestToModification } from "./raft_cmd.ts";
export {
  assertModificationsInRegion,
  clampToRegion,
  coversAllKeys,
  DATA_KEYS_END,
  isDataCf,
  type KeyApi,
  type KeyBounds,
  regionContainsKey,
  regionContainsRange,
  regionDataKey,
  type RegionMeta,
} from "./region_range.ts";
export { RegionSnapshot } from "./region_snapshot.ts";
export {
  expiryOfTtlIndexKey,
  type KeyRange,
  LEGACY_TTL_INDEX_BOUNDS,
  legacyTtlIndexKey,
  migrateLegacyTtlIndex,
  parseLegacyTtlIndexKey,
  parseTtlIndexKey,
  RAW_CFS,
  TTL_INDEX_BOUNDS,
  TTL_INDEX_CF,
  type TtlIndexEntry,
  ttlIndexKey,
  type TtlIndexMigration,
  ttlIndexRangeOf,
  ttlIndexRangesOf,
} from "./ttl_index.ts";
export type { Release, WriteOptions, WritePath } from "./write_path.ts";
