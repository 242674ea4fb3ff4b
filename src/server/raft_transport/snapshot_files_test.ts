/**
 * SST-form region snapshots on RocksDB in a temporary directory: a leader's peer storage
 * generates the files per column family with checksums, a follower's installs them in two steps
 * (Applying in the synced batch, then clear + ingest + Normal), a crash at any point between
 * resumes the install from the received files, and the generation limit holds.
 */
import assert from "node:assert/strict";
import { crc32 as zlibCrc32 } from "node:zlib";
import { RocksDbEngine } from "../../engine/rocksdb_engine.ts";
import { ingestExternalFiles } from "../../engine/rocksdb_sst.ts";
import type { ColumnFamily, KvEngine } from "../../engine/types.ts";
import { metapb } from "../../../proto/mod.ts";
import { PeerState, type RegionMeta } from "../../raftstore/local_state.ts";
import { PeerStorage, writeInitialPeerState } from "../../raftstore/peer_storage.ts";
import { readRegionState, writeRegionState } from "../../raftstore/region_state.ts";
import { crc32 } from "../../raftstore/snapshot/crc32.ts";
import {
  decodeSstSnapshotData,
  type SnapKey,
  SnapshotMissingError,
} from "../../raftstore/snapshot/sst_snapshot.ts";
import { ttlIndexKey } from "../../storage/ttl_index.ts";
import { SnapshotDir } from "./snapshot_files.ts";

const utf8 = (text: string) => new TextEncoder().encode(text);
const text = (
  bytes: Uint8Array | null,
) => (bytes === null ? null : new TextDecoder().decode(bytes));

const REGION: RegionMeta = {
  id: 2n,
  startKey: utf8("k10"),
  endKey: utf8("k20"),
  regionEpoch: { confVer: 1n, version: 1n },
  peers: [{ id: 3n, storeId: 1n, role: metapb.PeerRole.Voter }],
};

async function withTempDir(body: (dir: string) => Promise<void> | void): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "basalt-snap-" });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The pairs of `cf` in the engine, as "key=value" strings. */
function dump(
  engine: KvEngine,
  cf: ColumnFamily,
  bounds?: { lowerBound: Uint8Array; upperBound: Uint8Array },
) {
  const out: string[] = [];
  using iter = engine.iterator(cf, bounds);
  for (iter.seekToFirst(); iter.valid(); iter.next()) {
    out.push(`${text(iter.key())}=${text(iter.value())}`);
  }
  return out;
}

/** A leader's store: the region with data in every data CF, TTL index entries, and keys outside it. */
function leaderEngine(dir: string): RocksDbEngine {
  const engine = RocksDbEngine.open(dir);
  using batch = engine.newWriteBatch();
  writeInitialPeerState(batch, { state: PeerState.Normal, region: REGION });
  for (let i = 10; i < 20; i++) {
    batch.put("default", utf8(`k${i}`), utf8(`value-${i}`));
    batch.put("write", utf8(`k${i}`), utf8(`write-${i}`));
  }
  batch.put("lock", utf8("k15"), utf8("lock-15"));
  batch.put("default", utf8("k05"), utf8("outside"));
  batch.put("default", utf8("k25"), utf8("outside"));
  batch.put("raft", ttlIndexKey(1_000, "default", utf8("k12")), new Uint8Array(0));
  batch.put("raft", ttlIndexKey(1_000, "default", utf8("k30")), new Uint8Array(0)); // another region's
  engine.write(batch);
  return engine;
}

/** A follower's store: an uninitialized replica of the region, stale data in its range, other data. */
function followerEngine(dir: string): RocksDbEngine {
  const engine = RocksDbEngine.open(dir);
  using batch = engine.newWriteBatch();
  writeRegionState(batch, { state: PeerState.Normal, region: { ...REGION, peers: [] } });
  batch.put("default", utf8("k11"), utf8("stale"));
  batch.put("default", utf8("k19x"), utf8("stale, not in the snapshot"));
  batch.put("default", utf8("k01"), utf8("another region's"));
  batch.put("write", utf8("k99"), utf8("another region's"));
  engine.write(batch);
  return engine;
}

/** What the Snapshot stream does: the leader's generated files become the follower's received ones. */
function transfer(from: SnapshotDir, to: SnapshotDir, key: SnapKey): void {
  const meta = from.readMeta("gen", key);
  assert.ok(meta !== null, "the generated snapshot is whole");
  for (const { cf } of meta.files) {
    Deno.copyFileSync(from.filePath("gen", key, cf), to.filePath("rcv", key, cf));
  }
  Deno.copyFileSync(from.metaPath("gen", key), to.metaPath("rcv", key));
}

/** Generates the region's snapshot on a leader and hands it to the follower's directory. */
function generateAndTransfer(root: string, followerSnaps: SnapshotDir) {
  const leaderSnaps = new SnapshotDir(`${root}/leader-snap`);
  const leader = leaderEngine(`${root}/leader`);
  try {
    const storage = PeerStorage.load(leader, REGION.id, { snapshots: leaderSnaps });
    const snap = storage.snapshot();
    const key = { regionId: REGION.id, term: snap.metadata.term, index: snap.metadata.index };
    transfer(leaderSnaps, followerSnaps, key);
    return { snap, key, leaderSnaps };
  } finally {
    leader.close();
  }
}

Deno.test("SST snapshot: generated per column family with checksums, only the region's pairs", async () => {
  await withTempDir((root) => {
    const snaps = new SnapshotDir(`${root}/snap`);
    const engine = leaderEngine(`${root}/db`);
    try {
      const storage = PeerStorage.load(engine, REGION.id, { snapshots: snaps });
      const snap = storage.snapshot();
      assert.equal(snap.metadata.index, 5n);
      const meta = decodeSstSnapshotData(snap.data);
      assert.deepEqual(meta.region, REGION);
      assert.deepEqual(meta.files.map((f) => f.cf), ["default", "lock", "write", "raft"]);
      const key = { regionId: REGION.id, term: 5n, index: 5n };
      for (const f of meta.files) {
        const bytes = Deno.readFileSync(snaps.filePath("gen", key, f.cf));
        assert.equal(bytes.length, f.sizeBytes, `${f.cf}: size`);
        assert.equal(f.checksum, zlibCrc32(bytes), `${f.cf}: checksum`);
        assert.equal(crc32(bytes), zlibCrc32(bytes), "the pure CRC-32 is zlib's");
      }
      assert.equal(snaps.generatedCount(), 1);
      // The same key again reuses the files (two followers, one snapshot).
      assert.deepEqual(decodeSstSnapshotData(storage.snapshot().data).files, meta.files);
      assert.equal(snaps.generatedCount(), 1);

      // The files hold exactly the region's pairs: ingest them into an empty database.
      const check = RocksDbEngine.open(`${root}/check`);
      try {
        for (const f of meta.files) {
          ingestExternalFiles(check, f.cf, [snaps.filePath("gen", key, f.cf)]);
        }
        assert.equal(dump(check, "default").length, 10);
        assert.deepEqual(dump(check, "default").slice(0, 2), ["k10=value-10", "k11=value-11"]);
        assert.deepEqual(dump(check, "lock"), ["k15=lock-15"]);
        assert.equal(dump(check, "write").length, 10);
        using iter = check.iterator("raft");
        iter.seekToFirst();
        assert.deepEqual(iter.key().slice(), ttlIndexKey(1_000, "default", utf8("k12")));
        assert.equal(iter.next(), false, "only the region's TTL index entry");
      } finally {
        check.close();
      }
      snaps.releaseGenerated(key);
      assert.equal(snaps.generatedCount(), 0);
      assert.deepEqual(snaps.list(), [], "released: no file left");
    } finally {
      engine.close();
    }
  });
});

Deno.test("SST snapshot: an empty region generates no files and installs as an empty region", async () => {
  await withTempDir((root) => {
    const snaps = new SnapshotDir(`${root}/snap`);
    const engine = RocksDbEngine.open(`${root}/db`);
    try {
      using batch = engine.newWriteBatch();
      writeInitialPeerState(batch, { state: PeerState.Normal, region: REGION });
      engine.write(batch);
      const snap = PeerStorage.load(engine, REGION.id, { snapshots: snaps }).snapshot();
      assert.deepEqual(decodeSstSnapshotData(snap.data).files, []);
    } finally {
      engine.close();
    }
  });
});

Deno.test("SST snapshot: install records Applying, then clear + ingest + Normal, and prunes the files", async () => {
  await withTempDir(async (root) => {
    const snaps = new SnapshotDir(`${root}/follower-snap`);
    const { snap, key } = generateAndTransfer(root, snaps);
    const engine = followerEngine(`${root}/follower`);
    try {
      const storage = PeerStorage.load(engine, REGION.id, { snapshots: snaps });
      using batch = engine.newWriteBatch();
      storage.applySnapshot(batch, snap);
      assert.deepEqual(storage.pendingSnapshotInstall(), key);
      await engine.writeDurable(batch);
      assert.equal(readRegionState(engine, REGION.id)?.state, PeerState.Applying);
      assert.deepEqual(
        dump(engine, "default"),
        ["k01=another region's"],
        "step 1 cleared the range",
      );

      await storage.finishSnapshotInstall(engine);
      assert.equal(storage.pendingSnapshotInstall(), null);
      assert.equal(readRegionState(engine, REGION.id)?.state, PeerState.Normal);
      assert.deepEqual(readRegionState(engine, REGION.id)?.region, REGION);
      const data = dump(engine, "default");
      assert.equal(data.length, 11);
      assert.ok(data.includes("k11=value-11") && !data.some((p) => p.startsWith("k19x")));
      assert.ok(data.includes("k01=another region's"), "outside the region: untouched");
      assert.deepEqual(dump(engine, "lock"), ["k15=lock-15"]);
      assert.ok(dump(engine, "write").includes("k99=another region's"));
      assert.equal(storage.appliedIndex(), 5n);
      assert.deepEqual(snaps.list(), [], "the received snapshot is pruned once installed");
    } finally {
      engine.close();
    }
  });
});

for (const crashAfter of ["step 1", "one column family ingested", "every file ingested"] as const) {
  Deno.test(`SST snapshot: a crash after ${crashAfter} resumes the install on load`, async () => {
    await withTempDir(async (root) => {
      const snaps = new SnapshotDir(`${root}/follower-snap`);
      const { snap, key } = generateAndTransfer(root, snaps);
      let engine = followerEngine(`${root}/follower`);
      try {
        const storage = PeerStorage.load(engine, REGION.id, { snapshots: snaps });
        using batch = engine.newWriteBatch();
        storage.applySnapshot(batch, snap);
        await engine.writeDurable(batch);
        const meta = snaps.readMeta("rcv", key)!;
        const ingested = crashAfter === "step 1"
          ? []
          : crashAfter === "every file ingested"
          ? meta.files
          : meta.files.slice(0, 1);
        for (const f of ingested) {
          ingestExternalFiles(engine, f.cf, [snaps.filePath("rcv", key, f.cf)]);
        }
        engine.close(); // The crash: the region is Applying on disk.
        engine = RocksDbEngine.open(`${root}/follower`);
        assert.equal(readRegionState(engine, REGION.id)?.state, PeerState.Applying);

        const restarted = PeerStorage.load(engine, REGION.id, { snapshots: snaps });
        assert.deepEqual(restarted.pendingSnapshotInstall(), key);
        await restarted.finishSnapshotInstall(engine);
        assert.equal(readRegionState(engine, REGION.id)?.state, PeerState.Normal);
        const data = dump(engine, "default");
        assert.equal(data.length, 11, data.join(" "));
        assert.ok(data.includes("k19=value-19") && !data.includes("k11=stale"));
        assert.equal(dump(engine, "write").length, 11);
        assert.equal(restarted.appliedIndex(), 5n);
        assert.equal(restarted.firstIndex(), 6n);
      } finally {
        engine.close();
      }
    });
  });
}

Deno.test("SST snapshot: an install whose files are gone fails naming the snapshot and stays Applying", async () => {
  await withTempDir(async (root) => {
    const snaps = new SnapshotDir(`${root}/follower-snap`);
    const { snap, key } = generateAndTransfer(root, snaps);
    const engine = followerEngine(`${root}/follower`);
    try {
      const storage = PeerStorage.load(engine, REGION.id, { snapshots: snaps });
      using batch = engine.newWriteBatch();
      storage.applySnapshot(batch, snap);
      await engine.writeDurable(batch);
      Deno.removeSync(snaps.filePath("rcv", key, "write"));
      await assert.rejects(
        () => storage.finishSnapshotInstall(engine),
        (error: unknown) =>
          error instanceof SnapshotMissingError &&
          /snapshot 2_5_5 of region 2/.test(error.message) &&
          /rcv_2_5_5_write\.sst is missing/.test(error.message),
      );
      assert.equal(readRegionState(engine, REGION.id)?.state, PeerState.Applying);
      assert.deepEqual(storage.pendingSnapshotInstall(), key);
    } finally {
      engine.close();
    }
  });
});

Deno.test("SST snapshot: a store without a snapshot manager refuses to load a region Applying", async () => {
  await withTempDir((root) => {
    const engine = RocksDbEngine.open(`${root}/db`);
    try {
      using batch = engine.newWriteBatch();
      writeInitialPeerState(batch, { state: PeerState.Applying, region: REGION });
      engine.write(batch);
      assert.throws(
        () => PeerStorage.load(engine, REGION.id),
        /Applying a snapshot.*no snapshot manager/,
      );
    } finally {
      engine.close();
    }
  });
});

Deno.test("SST snapshot: at most maxGenerating snapshots are generated until one is released or expires", async () => {
  await withTempDir((root) => {
    const engine = leaderEngine(`${root}/db`);
    try {
      const snaps = new SnapshotDir(`${root}/snap`, { maxGenerating: 2 });
      const key = (index: bigint) => ({ regionId: REGION.id, term: 5n, index });
      assert.ok(snaps.generate(key(5n), engine, REGION) !== null);
      assert.ok(snaps.generate(key(6n), engine, REGION) !== null);
      assert.equal(snaps.generate(key(7n), engine, REGION), null, "the limit is reached");
      assert.equal(snaps.generatedCount(), 2);
      assert.ok(snaps.generate(key(6n), engine, REGION) !== null, "an existing one is reused");
      snaps.releaseGenerated(key(5n));
      assert.ok(snaps.generate(key(7n), engine, REGION) !== null, "a released place is free");
      assert.equal(snaps.generatedCount(), 2);

      // Another thread's view of the same directory shares the places.
      const other = new SnapshotDir(`${root}/snap`, { maxGenerating: 2 });
      assert.equal(other.generate(key(8n), engine, REGION), null);
      // A place held longer than the age limit (its message was lost) is taken back.
      const expiring = new SnapshotDir(`${root}/snap`, { maxGenerating: 2, generatedMaxAgeMs: 0 });
      const old = new Date(Date.now() - 60_000);
      for (const name of ["gen_slot_0", "gen_slot_1"]) {
        Deno.utimeSync(`${root}/snap/${name}`, old, old);
      }
      assert.ok(expiring.generate(key(8n), engine, REGION) !== null);
      assert.equal(expiring.generatedCount(), 1, "both expired places were released, one taken");
      assert.equal(expiring.readMeta("gen", key(6n)), null, "an expired snapshot's files are gone");
    } finally {
      engine.close();
    }
  });
});

Deno.test("SnapshotDir.cleanAtStart: keeps only the received snapshots asked for", async () => {
  await withTempDir((root) => {
    const snaps = new SnapshotDir(`${root}/snap`);
    const { key } = generateAndTransfer(root, snaps);
    const other = { ...key, regionId: 9n };
    Deno.writeFileSync(snaps.metaPath("rcv", other), new Uint8Array([1]));
    Deno.writeFileSync(`${snaps.filePath("rcv", other, "default")}.tmp`, new Uint8Array([1]));
    Deno.writeFileSync(`${root}/snap/gen_slot_0`, utf8("2_5_5"));
    snaps.cleanAtStart((k) => k.regionId === REGION.id);
    assert.deepEqual(
      snaps.list().map((f) => f.name).sort(),
      [
        "rcv_2_5_5.meta",
        "rcv_2_5_5_default.sst",
        "rcv_2_5_5_lock.sst",
        "rcv_2_5_5_raft.sst",
        "rcv_2_5_5_write.sst",
      ],
    );
    assert.equal(snaps.generatedCount(), 0);
  });
});
