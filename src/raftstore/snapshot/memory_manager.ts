/**
 * A `SnapshotManager` whose "files" are byte arrays in a `MemorySnapshotDisk` the stores of an
 * in-process harness share: what a leader generates is what a follower ingests, as if the
 * `tikvpb.Tikv/Snapshot` stream had always delivered it. A "file" is the column family's pairs
 * in a `raft_serverpb.RaftSnapshotData.data` list, checksummed with CRC-32 like a real file,
 * and checked at ingestion. It exercises the raftstore's SST path (Applying, install, resume
 * after a crash) on the memory engine; the stream itself is src/server/raft_transport's.
 *
 * Generation is bounded like the file manager's: at most `maxGenerated` snapshots that no
 * install has pruned yet.
 *
 * @module
 */

import { raft_serverpb } from "../../../proto/mod.ts";
import { SNAPSHOT_MAX_GENERATING } from "../../constants.ts";
import type { ColumnFamily, KvEngine, Readable } from "../../engine/types.ts";
import type { RegionMeta } from "../local_state.ts";
import { crc32 } from "./crc32.ts";
import {
  forEachSnapshotPair,
  type SnapKey,
  snapKeyName,
  type SnapshotCfFile,
  type SnapshotManager,
  SnapshotMissingError,
  SST_SNAPSHOT_CFS,
} from "./sst_snapshot.ts";

/** One snapshot's files. */
interface MemorySnapshot {
  key: SnapKey;
  files: Map<ColumnFamily, Uint8Array>;
  meta: SnapshotCfFile[];
}

/** The snapshots of a harness, by `snapKeyName`, shared by its stores' managers. */
export class MemorySnapshotDisk {
  readonly snapshots = new Map<string, MemorySnapshot>();
}

/** The in-memory `SnapshotManager` (module header). */
export class MemorySnapshotManager implements SnapshotManager {
  constructor(
    private readonly disk: MemorySnapshotDisk,
    private readonly maxGenerated = SNAPSHOT_MAX_GENERATING,
  ) {}

  /** @inheritdoc */
  generate(key: SnapKey, source: Readable, region: RegionMeta): SnapshotCfFile[] | null {
    const name = snapKeyName(key);
    const existing = this.disk.snapshots.get(name);
    if (existing !== undefined) return existing.meta;
    if (this.disk.snapshots.size >= this.maxGenerated) return null;
    const files = new Map<ColumnFamily, Uint8Array>();
    const meta: SnapshotCfFile[] = [];
    for (const cf of SST_SNAPSHOT_CFS) {
      const data: raft_serverpb.KeyValue.$Properties[] = [];
      forEachSnapshotPair(
        source,
        { region, cf },
        (k, v) => data.push({ key: k.slice(), value: v.slice() }),
      );
      if (data.length === 0) continue;
      const bytes = raft_serverpb.RaftSnapshotData.encode({ data }).finish();
      files.set(cf, bytes);
      meta.push({ cf, sizeBytes: bytes.length, checksum: crc32(bytes) });
    }
    this.disk.snapshots.set(name, { key: { ...key }, files, meta });
    return meta;
  }

  /** @inheritdoc */
  ingest(key: SnapKey, engine: KvEngine): void {
    const snapshot = this.disk.snapshots.get(snapKeyName(key));
    if (snapshot === undefined) throw new SnapshotMissingError(key, "no such snapshot");
    using batch = engine.newWriteBatch();
    for (const { cf, sizeBytes, checksum } of snapshot.meta) {
      const bytes = snapshot.files.get(cf);
      if (bytes === undefined || bytes.length !== sizeBytes || crc32(bytes) !== checksum) {
        throw new SnapshotMissingError(key, `the file of column family ${cf} is damaged`);
      }
      for (const kv of raft_serverpb.RaftSnapshotData.decode(bytes).data) {
        batch.put(cf, Uint8Array.from(kv.key ?? []), Uint8Array.from(kv.value ?? []));
      }
    }
    engine.write(batch);
  }

  /** @inheritdoc */
  pruneReceived(regionId: bigint, index: bigint): void {
    for (const [name, { key }] of this.disk.snapshots) {
      if (key.regionId === regionId && key.index <= index) this.disk.snapshots.delete(name);
    }
  }
}
