/**
 * Snapshot files under a store's `<data-dir>/snap/` (TiKV's `SnapManager`): the raftstore's
 * `SnapshotManager` over RocksDB SST files, and what the `tikvpb.Tikv/Snapshot` sender and
 * receiver read and write there.
 *
 * The directory (all of one store's threads share it; names use `snapKeyName`):
 *
 *     gen_<region>_<term>_<index>_<cf>.sst   a generated snapshot's file of one column family
 *     gen_<region>_<term>_<index>.meta       its RaftSnapshotData; written last: the files are whole
 *     gen_slot_<i>                           i < maxGenerating: a generated snapshot's place (holds its name)
 *     rcv_<region>_<term>_<index>_<cf>.sst   a received file, checked against its size and checksum
 *     rcv_<region>_<term>_<index>.meta       written last, once every file was checked: received whole
 *     *.tmp                                  being written (a partial file; removed on failure and at start)
 *
 * Invariants:
 * - At most `maxGenerating` generated snapshots exist: generating one first creates a free
 *   `gen_slot_<i>` exclusively (atomic across a store's threads); the sender deletes the
 *   snapshot and its slot when its stream ends, and a slot older than `generatedMaxAgeMs`
 *   (its message was lost before any stream) is taken back by the next generation that finds
 *   none free.
 * - A `.meta` exists only beside whole files: a reader that finds it may trust the files
 *   (received ones were checked before their `.meta` was written).
 * - An install ingests a hard link of each received file (RocksDB moves what it ingests), so
 *   the received snapshot stays whole until the raftstore has recorded the install durable and
 *   prunes it (`pruneReceived`): a crash in between ingests the same files again.
 *
 * @module
 */

import { crc32 } from "node:zlib";
import {
  SNAPSHOT_CHUNK_BYTES,
  SNAPSHOT_GENERATED_MAX_AGE_MS,
  SNAPSHOT_MAX_GENERATING,
} from "../../constants.ts";
import { RocksDbEngine } from "../../engine/rocksdb_engine.ts";
import { ingestExternalFiles, SstFileWriter } from "../../engine/rocksdb_sst.ts";
import type { ColumnFamily, KvEngine, Readable } from "../../engine/types.ts";
import type { RegionMeta } from "../../raftstore/local_state.ts";
import {
  encodeSstSnapshotData,
  forEachSnapshotPair,
  isSstSnapshot,
  type SnapKey,
  snapKeyName,
  type SnapshotCfFile,
  snapshotFormOf,
  type SnapshotManager,
  SnapshotMissingError,
  SST_SNAPSHOT_CFS,
  type SstSnapshotMeta,
} from "../../raftstore/snapshot/sst_snapshot.ts";
import { assert } from "../../util/assert.ts";
import { MessageType } from "../../raft/mod.ts";
import type { RaftEnvelope } from "../../raftstore/transport.ts";

/**
 * Whether `envelope` is a `MsgSnapshot` whose data is the SST form: its files go on a Snapshot
 * stream of their own (`SnapshotRoutingTransport`), not on the BatchRaft stream.
 */
export function travelsAsSstFiles(envelope: RaftEnvelope): boolean {
  const snapshot = envelope.message.snapshot;
  return envelope.message.msgType === MessageType.MsgSnapshot && snapshot !== undefined &&
    !envelope.isTombstone && isSstSnapshot(snapshot.data);
}

/** Bounds of a snapshot directory; the constants' values when absent. */
export interface SnapshotDirLimits {
  maxGenerating: number;
  generatedMaxAgeMs: number;
}

/** A generated or received snapshot's name part of its files. */
type Side = "gen" | "rcv";

const NAME = /^(gen|rcv)_(\d+)_(\d+)_(\d+)(?:_([a-z]+)\.sst|\.meta)(\.tmp|\.ingest)?$/;
const SLOT = /^gen_slot_(\d+)$/;

/** The CRC-32 of a whole file, read in chunks. */
export function fileChecksum(path: string): number {
  using file = Deno.openSync(path, { read: true });
  const buffer = new Uint8Array(SNAPSHOT_CHUNK_BYTES);
  let sum = 0;
  for (;;) {
    const n = file.readSync(buffer);
    if (n === null || n === 0) return sum;
    sum = crc32(buffer.subarray(0, n), sum);
  }
}

function removeIfThere(path: string): void {
  try {
    Deno.removeSync(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

/** One store's snapshot directory (module header). */
export class SnapshotDir implements SnapshotManager {
  readonly limits: SnapshotDirLimits;

  /** `dir` is created if missing. */
  constructor(readonly dir: string, limits: Partial<SnapshotDirLimits> = {}) {
    this.limits = {
      maxGenerating: limits.maxGenerating ?? SNAPSHOT_MAX_GENERATING,
      generatedMaxAgeMs: limits.generatedMaxAgeMs ?? SNAPSHOT_GENERATED_MAX_AGE_MS,
    };
    assert(this.limits.maxGenerating >= 1, "a store can generate a snapshot", {
      maxGenerating: this.limits.maxGenerating,
    });
    Deno.mkdirSync(dir, { recursive: true });
  }

  /** The path of a snapshot's file of `cf`. */
  filePath(side: Side, key: SnapKey, cf: ColumnFamily): string {
    return `${this.dir}/${side}_${snapKeyName(key)}_${cf}.sst`;
  }

  /** The path of a snapshot's `.meta` (present once it is whole). */
  metaPath(side: Side, key: SnapKey): string {
    return `${this.dir}/${side}_${snapKeyName(key)}.meta`;
  }

  /** The snapshot's region and files if its `.meta` is there, else null. */
  readMeta(side: Side, key: SnapKey): SstSnapshotMeta | null {
    let bytes: Uint8Array;
    try {
      bytes = Deno.readFileSync(this.metaPath(side, key));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return null;
      throw error;
    }
    const form = snapshotFormOf(bytes);
    if (form.form !== "sst") {
      throw new SnapshotMissingError(
        key,
        `${this.metaPath(side, key)} is not an SST snapshot meta`,
      );
    }
    return form.meta;
  }

  /** Writes a `.meta` through a temporary file and a rename, so it appears whole or not at all. */
  writeMeta(side: Side, key: SnapKey, data: Uint8Array, options: { sync: boolean }): void {
    const path = this.metaPath(side, key);
    Deno.writeFileSync(`${path}.tmp`, data);
    if (options.sync) {
      using file = Deno.openSync(`${path}.tmp`, { read: true, write: true });
      file.syncSync();
    }
    Deno.renameSync(`${path}.tmp`, path);
  }

  // -------------------------------------------------------------------------------------------
  // The raftstore's SnapshotManager.

  /** @inheritdoc */
  generate(key: SnapKey, source: Readable, region: RegionMeta): SnapshotCfFile[] | null {
    const existing = this.readMeta("gen", key);
    if (existing !== null) return existing.files;
    const slot = this.claimSlot(key);
    if (slot === null) return null;
    const written: string[] = [];
    try {
      const files: SnapshotCfFile[] = [];
      for (const cf of SST_SNAPSHOT_CFS) {
        const path = this.filePath("gen", key, cf);
        written.push(path);
        const sizeBytes = writeCfFile(path, { source, region, cf });
        if (sizeBytes === 0) continue;
        files.push({ cf, sizeBytes, checksum: fileChecksum(path) });
      }
      this.writeMeta("gen", key, encodeSstSnapshotData(region, files), { sync: false });
      return files;
    } catch (error) {
      for (const path of written) removeIfThere(path);
      removeIfThere(slot);
      throw error;
    }
  }

  /** @inheritdoc */
  ingest(key: SnapKey, engine: KvEngine): void {
    assert(engine instanceof RocksDbEngine, "SST snapshots are ingested into RocksDB");
    const meta = this.readMeta("rcv", key);
    if (meta === null) {
      throw new SnapshotMissingError(key, `${this.metaPath("rcv", key)} is missing`);
    }
    for (const { cf, sizeBytes } of meta.files) {
      const path = this.filePath("rcv", key, cf);
      let size: number;
      try {
        size = Deno.statSync(path).size;
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) {
          throw new SnapshotMissingError(key, `${path} is missing`);
        }
        throw error;
      }
      if (size !== sizeBytes) {
        throw new SnapshotMissingError(key, `${path} holds ${size} bytes, not ${sizeBytes}`);
      }
      // RocksDB takes (moves) the file it ingests: give it a link, keep the snapshot whole.
      const link = `${path}.ingest`;
      removeIfThere(link);
      Deno.linkSync(path, link);
      try {
        ingestExternalFiles(engine, cf, [link], { move: true });
      } finally {
        removeIfThere(link);
      }
    }
  }

  /** @inheritdoc */
  pruneReceived(regionId: bigint, index: bigint): void {
    for (const { name, side, key } of this.list()) {
      if (side === "rcv" && key.regionId === regionId && key.index <= index) {
        removeIfThere(`${this.dir}/${name}`);
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // Generated snapshots: places and release.

  /** Deletes a generated snapshot's files, `.meta` and slot (its stream ended). */
  releaseGenerated(key: SnapKey): void {
    const name = snapKeyName(key);
    removeIfThere(this.metaPath("gen", key));
    for (const cf of SST_SNAPSHOT_CFS) removeIfThere(this.filePath("gen", key, cf));
    for (const entry of Deno.readDirSync(this.dir)) {
      if (!SLOT.test(entry.name)) continue;
      const path = `${this.dir}/${entry.name}`;
      if (readText(path) === name) removeIfThere(path);
    }
  }

  /** Generated snapshots holding a slot now (tests, metrics). */
  generatedCount(): number {
    let n = 0;
    for (const entry of Deno.readDirSync(this.dir)) if (SLOT.test(entry.name)) n++;
    return n;
  }

  /** The path of a claimed slot, or null when all are held by snapshots younger than the age limit. */
  private claimSlot(key: SnapKey): string | null {
    const name = snapKeyName(key);
    for (let pass = 0; pass < 2; pass++) {
      for (let i = 0; i < this.limits.maxGenerating; i++) {
        const path = `${this.dir}/gen_slot_${i}`;
        try {
          using file = Deno.openSync(path, { write: true, createNew: true });
          file.writeSync(new TextEncoder().encode(name));
          return path;
        } catch (error) {
          if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
        }
      }
      if (pass === 0 && !this.reclaimExpiredSlots()) return null;
    }
    return null;
  }

  /** Releases the generated snapshots whose slot is older than the age limit; whether any was. */
  private reclaimExpiredSlots(): boolean {
    let reclaimed = false;
    for (const entry of Deno.readDirSync(this.dir)) {
      if (!SLOT.test(entry.name)) continue;
      const path = `${this.dir}/${entry.name}`;
      let modified: number;
      try {
        modified = Deno.statSync(path).mtime?.getTime() ?? 0;
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) continue;
        throw error;
      }
      if (Date.now() - modified <= this.limits.generatedMaxAgeMs) continue;
      const key = parseKey(readText(path));
      if (key !== null) this.releaseGenerated(key);
      removeIfThere(path);
      reclaimed = true;
    }
    return reclaimed;
  }

  // -------------------------------------------------------------------------------------------
  // The directory as a whole.

  /** The snapshot files of the directory, parsed. */
  list(): { name: string; side: Side; key: SnapKey; temporary: boolean }[] {
    const out: { name: string; side: Side; key: SnapKey; temporary: boolean }[] = [];
    for (const entry of Deno.readDirSync(this.dir)) {
      const m = NAME.exec(entry.name);
      if (m === null) continue;
      out.push({
        name: entry.name,
        side: m[1] as Side,
        key: { regionId: BigInt(m[2]!), term: BigInt(m[3]!), index: BigInt(m[4]!) },
        temporary: m[6] !== undefined,
      });
    }
    return out;
  }

  /**
   * What a store does once at start, before its workers run: deletes every generated
   * snapshot and slot (no stream survives a restart), every partial file, and every received
   * snapshot `keepReceived` does not want (the raftstore keeps those of regions `Applying`).
   */
  cleanAtStart(keepReceived: (key: SnapKey) => boolean): void {
    for (const { name, side, key, temporary } of this.list()) {
      if (side === "gen" || temporary || !keepReceived(key)) removeIfThere(`${this.dir}/${name}`);
    }
    for (const entry of Deno.readDirSync(this.dir)) {
      if (SLOT.test(entry.name)) removeIfThere(`${this.dir}/${entry.name}`);
    }
  }
}

/** Writes `cf`'s pairs of `region` to an SST file at `path`: its size, or 0 (no file) when none. */
function writeCfFile(
  path: string,
  what: { source: Readable; region: RegionMeta; cf: ColumnFamily },
): number {
  const writer = SstFileWriter.open(path);
  try {
    forEachSnapshotPair(what.source, what, (key, value) => writer.put(key, value));
    if (writer.entries === 0) {
      writer.destroy();
      removeIfThere(path);
      return 0;
    }
    return writer.finish();
  } finally {
    writer.destroy();
  }
}

function readText(path: string): string {
  try {
    return new TextDecoder().decode(Deno.readFileSync(path));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return "";
    throw error;
  }
}

function parseKey(name: string): SnapKey | null {
  const m = /^(\d+)_(\d+)_(\d+)$/.exec(name);
  if (m === null) return null;
  return { regionId: BigInt(m[1]!), term: BigInt(m[2]!), index: BigInt(m[3]!) };
}
