/**
 * Region snapshots in one message: the form the memory harness uses. The real store uses SST
 * files per column family streamed over `tikvpb.Tikv/Snapshot` (`snapshot/sst_snapshot.ts`,
 * DESIGN.md §4.1); `RaftSnapshotData.version` tells the two apart.
 *
 * The snapshot's `data` is a `raft_serverpb.RaftSnapshotData`: the region (range, epoch, peers),
 * and every key-value pair of the region's range in the data column families, CF by CF in
 * `SNAPSHOT_CFS` order, then the region's entries of the raw TTL expiry index in CF raft (the
 * ranges `ttlIndexRangesOf(region)` of `src/storage/ttl_index.ts`: without them a follower that
 * caught up by snapshot would never sweep the TTL'd values it received); `meta.cf_files` names
 * each column family and, in `size`, how many of the pairs in `data` are its (Basalt's use of
 * the field: the pairs travel inline, not as files). `version` is `INLINE_SNAPSHOT_VERSION`, so a
 * reader can tell this form from a later one. Installing one first clears the region's ranges of
 * the data column families and of the index (`clearRegionData`), then writes the pairs.
 *
 * Generated synchronously from the engine at the applied index (the engine holds exactly the
 * applied state between rounds, apply being written in the round). A region whose pairs exceed
 * the size limit is not snapshotted: the generator answers null and the caller reports
 * "SnapshotTemporarilyUnavailable" (src/raft then keeps the follower in Probe).
 *
 * @module
 */

import { raft_serverpb } from "../../proto/mod.ts";
import type { ColumnFamily, Readable, WriteBatch } from "../engine/types.ts";
import { assert } from "../raft/mod.ts";
import { TTL_INDEX_CF, ttlIndexRangesOf } from "../storage/ttl_index.ts";
import { compareBytes, successor, toHex } from "../util/bytes.ts";
import { regionFromProto, type RegionMeta, regionToProto } from "./local_state.ts";

/** The column families a region's data lives in (CF raft holds no region data). */
export const SNAPSHOT_CFS: readonly ColumnFamily[] = ["default", "lock", "write"];
/** `RaftSnapshotData.version` of the inline form this module writes. */
export const INLINE_SNAPSHOT_VERSION = 1n;

/** One pair of a snapshot. */
export interface SnapshotPair {
  cf: ColumnFamily;
  key: Uint8Array;
  value: Uint8Array;
}

/** A decoded region snapshot. */
export interface RegionSnapshot {
  region: RegionMeta;
  pairs: SnapshotPair[];
}

function iterOptions(region: RegionMeta) {
  return region.endKey.length === 0
    ? { lowerBound: region.startKey }
    : { lowerBound: region.startKey, upperBound: region.endKey };
}

/**
 * The bytes of `region`'s snapshot read from `engine`, or null when its pairs exceed
 * `maxBytes` (keys plus values).
 */
export function encodeRegionSnapshot(
  engine: Readable,
  region: RegionMeta,
  maxBytes: number,
): Uint8Array | null {
  const out: SnapshotOut = { data: [], sizeBytes: 0, maxBytes };
  const cfFiles: raft_serverpb.SnapshotCFFile.$Properties[] = [];
  for (const cf of SNAPSHOT_CFS) {
    const count = copyRange(engine, { cf, bounds: iterOptions(region), out });
    if (count === null) return null;
    cfFiles.push({ cf, size: BigInt(count) });
  }
  let indexCount = 0;
  for (const { start, end } of ttlIndexRangesOf(region)) {
    const bounds = { lowerBound: start, upperBound: end };
    const count = copyRange(engine, { cf: TTL_INDEX_CF, bounds, out });
    if (count === null) return null;
    indexCount += count;
  }
  cfFiles.push({ cf: TTL_INDEX_CF, size: BigInt(indexCount) });
  return raft_serverpb.RaftSnapshotData.encode({
    region: regionToProto(region),
    fileSize: BigInt(out.sizeBytes),
    data: out.data,
    version: INLINE_SNAPSHOT_VERSION,
    meta: { cfFiles },
  }).finish();
}

/** The pairs of a snapshot being generated, and their size so far against the limit. */
interface SnapshotOut {
  data: raft_serverpb.KeyValue.$Properties[];
  sizeBytes: number;
  maxBytes: number;
}

/** Appends the pairs of `cf` within `bounds` to `out`: how many, or null past the size limit. */
function copyRange(
  engine: Readable,
  { cf, bounds, out }: {
    cf: ColumnFamily;
    bounds: { lowerBound: Uint8Array; upperBound?: Uint8Array };
    out: SnapshotOut;
  },
): number | null {
  let count = 0;
  using iter = engine.iterator(cf, bounds);
  for (iter.seekToFirst(); iter.valid(); iter.next()) {
    const key = iter.key().slice();
    const value = iter.value().slice();
    out.sizeBytes += key.length + value.length;
    if (out.sizeBytes > out.maxBytes) return null;
    out.data.push({ key, value });
    count++;
  }
  return count;
}

/**
 * A snapshot's region and pairs. Snapshot bytes come from a leader of the same cluster; bytes
 * that do not decode, or whose counts do not add up, are a bug (asserted).
 */
export function decodeRegionSnapshot(bytes: Uint8Array): RegionSnapshot {
  const m = raft_serverpb.RaftSnapshotData.decode(bytes);
  assert(m.version === INLINE_SNAPSHOT_VERSION, `snapshot version ${m.version} is not inline`);
  assert(m.region !== null && m.region !== undefined, "snapshot without a region");
  const region = regionFromProto(m.region);
  const indexRanges = ttlIndexRangesOf(region);
  const pairs: SnapshotPair[] = [];
  let at = 0;
  for (const file of m.meta?.cfFiles ?? []) {
    const cf = file.cf as ColumnFamily;
    assert(
      SNAPSHOT_CFS.includes(cf) || cf === TTL_INDEX_CF,
      `snapshot names column family "${file.cf}"`,
    );
    for (let i = 0n; i < (file.size ?? 0n); i++) {
      const kv = m.data[at++];
      assert(kv !== undefined, "snapshot holds fewer pairs than its meta counts");
      const key = Uint8Array.from(kv.key ?? []);
      // Installing writes CF raft pairs into ranges it cleared: any other key would overwrite
      // store-local state (a Raft log, another region's index entries).
      assert(
        cf !== TTL_INDEX_CF || indexRanges.some((range) => inRange(key, range)),
        `snapshot of region ${region.id} carries CF raft key ${
          toHex(key)
        } outside its TTL index ranges`,
      );
      pairs.push({ cf, key, value: Uint8Array.from(kv.value ?? []) });
    }
  }
  assert(at === m.data.length, "snapshot holds more pairs than its meta counts");
  return { region, pairs };
}

function inRange(key: Uint8Array, range: { start: Uint8Array; end: Uint8Array }): boolean {
  return compareBytes(key, range.start) >= 0 && compareBytes(key, range.end) < 0;
}

/**
 * Deletes every pair of `region`'s range in the data column families, and the region's entries
 * of the TTL expiry index in CF raft (`ttlIndexRangesOf`), into `batch`.
 */
export function clearRegionData(engine: Readable, batch: WriteBatch, region: RegionMeta): void {
  // The index ranges are bounded even for a region reaching past the last key.
  for (const { start, end } of ttlIndexRangesOf(region)) {
    batch.deleteRange(TTL_INDEX_CF, start, end);
  }
  for (const cf of SNAPSHOT_CFS) {
    let end = region.endKey;
    if (end.length === 0) {
      // An unbounded range ends right after its last key.
      using iter = engine.iterator(cf, iterOptions(region));
      iter.seekToLast();
      if (!iter.valid()) continue;
      end = successor(iter.key().slice());
    }
    batch.deleteRange(cf, region.startKey, end);
  }
}
