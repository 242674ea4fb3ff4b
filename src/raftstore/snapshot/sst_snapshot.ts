/**
 * Region snapshots as SST files, one per column family (TiKV's form; DESIGN.md §4.1): the
 * Raft message carries only metadata, the files travel beside it (`tikvpb.Tikv/Snapshot` between
 * stores) and are kept by a `SnapshotManager`, the one door between the raftstore and files.
 *
 * The snapshot's `eraftpb.Snapshot.data` is a `raft_serverpb.RaftSnapshotData` with
 * `version` = `SST_SNAPSHOT_VERSION`, the region (range, epoch, peers), no pairs, and
 * `meta.cf_files`: per column family that has pairs in the region's range, its file's `size` in
 * bytes and `checksum` (CRC-32, IEEE, of the file's bytes). The column families are the data
 * CFs (`SNAPSHOT_CFS`) and CF raft for the region's entries of the raw TTL expiry index
 * (`ttlIndexRangesOf`, as the inline form carries them). A column family with no pairs has no
 * file (RocksDB cannot write an empty SST) and is not listed.
 *
 * A snapshot is named by its `SnapKey` (region, term, index), as TiKV names it; the index and
 * term are the applied index the snapshot was taken at and its term.
 *
 * Installing one (peer_storage.ts) happens in two steps, so that a crash in the middle never
 * leaves half a region: (1) in the round's synced batch, the region's state becomes `Applying`
 * with the new region, and the raft and apply states move to the snapshot's index (the log is
 * emptied); (2) after that write, the region's ranges are cleared, the files ingested, and the
 * state set back to `Normal` with a synced write. A store that starts with a region `Applying`
 * does (2) again from the received files, which the manager keeps until (2) is durable; (2) is
 * idempotent (clear, then ingest the same files).
 *
 * @module
 */

import { raft_serverpb } from "../../../proto/mod.ts";
import type { ColumnFamily, KvEngine, Readable } from "../../engine/types.ts";
import { assert } from "../../raft/mod.ts";
import { TTL_INDEX_CF, ttlIndexRangesOf } from "../../storage/ttl_index.ts";
import { regionFromProto, type RegionMeta, regionToProto } from "../local_state.ts";
import { INLINE_SNAPSHOT_VERSION, SNAPSHOT_CFS } from "../snapshot.ts";

/** `RaftSnapshotData.version` of the SST-file form. */
export const SST_SNAPSHOT_VERSION = 2n;

/** The column families a snapshot may hold files of, in the order files are listed and sent. */
export const SST_SNAPSHOT_CFS: readonly ColumnFamily[] = [...SNAPSHOT_CFS, TTL_INDEX_CF];

/** A snapshot's name: its region, and the term and index it was taken at. */
export interface SnapKey {
  regionId: bigint;
  term: bigint;
  index: bigint;
}

/** `<region>_<term>_<index>`: the stem of a snapshot's file names (TiKV's spelling). */
export function snapKeyName(key: SnapKey): string {
  return `${key.regionId}_${key.term}_${key.index}`;
}

/** One column family's file of a snapshot. */
export interface SnapshotCfFile {
  cf: ColumnFamily;
  sizeBytes: number;
  /** CRC-32 (IEEE) of the file's bytes. */
  checksum: number;
}

/** A decoded SST-form snapshot: its region and files. */
export interface SstSnapshotMeta {
  region: RegionMeta;
  files: SnapshotCfFile[];
}

/**
 * The files of snapshots, for the raftstore: written when a leader generates one, kept when a
 * store receives one, ingested when it is installed. The raftstore calls it synchronously from
 * its round (generation reads an engine view that must not change under it).
 */
export interface SnapshotManager {
  /**
   * Writes the files of `region`'s snapshot read from `source` under `key` and answers them,
   * or answers the files already written under `key`; null when the store already holds its
   * limit of generated snapshots not yet sent (Raft asks again later).
   */
  generate(key: SnapKey, source: Readable, region: RegionMeta): SnapshotCfFile[] | null;
  /**
   * Ingests the received files of `key` into their column families of `engine` (the caller
   * cleared the region's ranges first). Throws `SnapshotMissingError` when the snapshot was
   * not received whole.
   */
  ingest(key: SnapKey, engine: KvEngine): void;
  /** Deletes every received snapshot of `regionId` at or below `index` (installed or stale). */
  pruneReceived(regionId: bigint, index: bigint): void;
}

/** A snapshot to install whose files are not all there (the snapshot directory was damaged). */
export class SnapshotMissingError extends Error {
  constructor(readonly key: SnapKey, detail: string) {
    super(`snapshot ${snapKeyName(key)} of region ${key.regionId} cannot be installed: ${detail}`);
    this.name = "SnapshotMissingError";
  }
}

/**
 * Calls `visit` with every pair of `region` in column family `cf` that a snapshot carries, in
 * ascending key order (the order an SST file takes them): the region's range in a data CF, the
 * region's TTL index ranges in CF raft (ascending and disjoint, one per raw CF). The bytes are
 * views valid only during the call.
 */
export function forEachSnapshotPair(
  source: Readable,
  { region, cf }: { region: RegionMeta; cf: ColumnFamily },
  visit: (key: Uint8Array, value: Uint8Array) => void,
): void {
  const ranges = cf === TTL_INDEX_CF
    ? ttlIndexRangesOf(region).map((r) => ({ lowerBound: r.start, upperBound: r.end }))
    : [
      region.endKey.length === 0
        ? { lowerBound: region.startKey }
        : { lowerBound: region.startKey, upperBound: region.endKey },
    ];
  for (const bounds of ranges) {
    using iter = source.iterator(cf, bounds);
    for (iter.seekToFirst(); iter.valid(); iter.next()) visit(iter.key(), iter.value());
  }
}

/** The `RaftSnapshotData` bytes of an SST-form snapshot. */
export function encodeSstSnapshotData(region: RegionMeta, files: readonly SnapshotCfFile[]) {
  let total = 0;
  for (const f of files) total += f.sizeBytes;
  return raft_serverpb.RaftSnapshotData.encode({
    region: regionToProto(region),
    fileSize: BigInt(total),
    version: SST_SNAPSHOT_VERSION,
    meta: {
      cfFiles: files.map((f) => ({ cf: f.cf, size: BigInt(f.sizeBytes), checksum: f.checksum })),
    },
  }).finish();
}

/** What a snapshot's data holds: the inline form, the SST form, or bytes that are neither. */
export type SnapshotForm =
  | { form: "inline" }
  | { form: "sst"; meta: SstSnapshotMeta }
  | { form: "malformed"; problem: string };

/**
 * Reads a snapshot's `data`. Bytes from the network go through here before anything trusts
 * them: a malformed SST form (unknown or repeated column family, sizes that do not add up,
 * no region) is a value naming the problem.
 */
export function snapshotFormOf(data: Uint8Array): SnapshotForm {
  let m: raft_serverpb.RaftSnapshotData;
  try {
    m = raft_serverpb.RaftSnapshotData.decode(data);
  } catch (error) {
    return { form: "malformed", problem: `RaftSnapshotData does not decode: ${error}` };
  }
  if (m.version === INLINE_SNAPSHOT_VERSION) return { form: "inline" };
  if (m.version !== SST_SNAPSHOT_VERSION) {
    return { form: "malformed", problem: `unknown snapshot version ${m.version}` };
  }
  if (m.region === null || m.region === undefined) {
    return { form: "malformed", problem: "SST snapshot without a region" };
  }
  if (m.data.length > 0) return { form: "malformed", problem: "SST snapshot with inline pairs" };
  const files: SnapshotCfFile[] = [];
  let total = 0n;
  let order = -1;
  for (const f of m.meta?.cfFiles ?? []) {
    const at = SST_SNAPSHOT_CFS.indexOf(f.cf as ColumnFamily);
    if (at < 0) return { form: "malformed", problem: `snapshot file of column family "${f.cf}"` };
    if (at <= order) {
      return { form: "malformed", problem: `snapshot files out of order or repeated at "${f.cf}"` };
    }
    order = at;
    const size = f.size ?? 0n;
    if (size <= 0n || size > BigInt(Number.MAX_SAFE_INTEGER)) {
      return { form: "malformed", problem: `snapshot file of "${f.cf}" has size ${size}` };
    }
    total += size;
    files.push({ cf: f.cf as ColumnFamily, sizeBytes: Number(size), checksum: f.checksum ?? 0 });
  }
  if (total !== (m.fileSize ?? 0n)) {
    return { form: "malformed", problem: `file sizes add up to ${total}, not ${m.fileSize}` };
  }
  const region = regionFromProto(m.region);
  if (region.id === 0n) return { form: "malformed", problem: "SST snapshot of region 0" };
  return { form: "sst", meta: { region, files } };
}

/** The SST form of a snapshot our own store checked on receipt (asserted). */
export function decodeSstSnapshotData(data: Uint8Array): SstSnapshotMeta {
  const form = snapshotFormOf(data);
  assert(
    form.form === "sst",
    `not an SST snapshot: ${form.form === "malformed" ? form.problem : "inline"}`,
  );
  return form.meta;
}

/** Whether a snapshot's data is the SST form (decodes its metadata; the form has no pairs). */
export function isSstSnapshot(data: Uint8Array): boolean {
  return snapshotFormOf(data).form === "sst";
}
