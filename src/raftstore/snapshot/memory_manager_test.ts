/**
 * The SST path of peer storage on the memory engine with `MemorySnapshotManager`: what the
 * in-process harness would run. Generation on one store, install on another (Applying, then
 * ingest + Normal), a restart between the two steps, damaged "files", and the generation limit.
 */
import assert from "node:assert/strict";
import { metapb } from "../../../proto/mod.ts";
import { MemoryEngine } from "../../engine/memory_engine.ts";
import type { KvEngine } from "../../engine/types.ts";
import { PeerState, type RegionMeta } from "../local_state.ts";
import { PeerStorage, writeInitialPeerState } from "../peer_storage.ts";
import { readRegionState, writeRegionState } from "../region_state.ts";
import { crc32 } from "./crc32.ts";
import { MemorySnapshotDisk, MemorySnapshotManager } from "./memory_manager.ts";
import { decodeSstSnapshotData, snapshotFormOf, SnapshotMissingError } from "./sst_snapshot.ts";

const utf8 = (text: string) => new TextEncoder().encode(text);

const REGION: RegionMeta = {
  id: 7n,
  startKey: utf8("b"),
  endKey: new Uint8Array(0),
  regionEpoch: { confVer: 1n, version: 1n },
  peers: [{ id: 8n, storeId: 1n, role: metapb.PeerRole.Voter }],
};

function keys(engine: KvEngine, cf: "default" | "write"): string[] {
  const out: string[] = [];
  using iter = engine.iterator(cf);
  for (iter.seekToFirst(); iter.valid(); iter.next()) {
    out.push(new TextDecoder().decode(iter.key()));
  }
  return out;
}

function leader(disk: MemorySnapshotDisk) {
  const engine = new MemoryEngine();
  using batch = engine.newWriteBatch();
  writeInitialPeerState(batch, { state: PeerState.Normal, region: REGION });
  for (const k of ["a", "b", "c", "zz"]) batch.put("default", utf8(k), utf8(`v-${k}`));
  batch.put("write", utf8("c"), utf8("w"));
  engine.write(batch);
  const storage = PeerStorage.load(engine, REGION.id, {
    snapshots: new MemorySnapshotManager(disk),
  });
  return { engine, storage };
}

function follower() {
  const engine = new MemoryEngine();
  using batch = engine.newWriteBatch();
  writeRegionState(batch, { state: PeerState.Normal, region: { ...REGION, peers: [] } });
  batch.put("default", utf8("a"), utf8("another region's"));
  batch.put("default", utf8("bb"), utf8("stale"));
  engine.write(batch);
  return engine;
}

Deno.test("crc32: the check value of the IEEE polynomial, and incremental", () => {
  assert.equal(crc32(utf8("123456789")), 0xcbf43926);
  assert.equal(crc32(utf8("6789"), crc32(utf8("12345"))), 0xcbf43926);
});

Deno.test("memory snapshots: generate on a leader, install on a follower across a restart", async () => {
  const disk = new MemorySnapshotDisk();
  const { storage } = leader(disk);
  const snap = storage.snapshot();
  assert.equal(snapshotFormOf(snap.data).form, "sst");
  assert.deepEqual(decodeSstSnapshotData(snap.data).files.map((f) => f.cf), ["default", "write"]);

  const engine = follower();
  const manager = new MemorySnapshotManager(disk);
  const replica = PeerStorage.load(engine, REGION.id, { snapshots: manager });
  using batch = engine.newWriteBatch();
  replica.applySnapshot(batch, snap);
  await engine.writeDurable(batch);
  assert.deepEqual(keys(engine, "default"), ["a"], "step 1 cleared the region");
  // A restart between the steps: the region is Applying, and the install resumes.
  const restarted = PeerStorage.load(engine, REGION.id, { snapshots: manager });
  assert.deepEqual(restarted.pendingSnapshotInstall(), { regionId: 7n, term: 5n, index: 5n });
  await restarted.finishSnapshotInstall(engine);
  assert.equal(readRegionState(engine, REGION.id)?.state, PeerState.Normal);
  assert.deepEqual(keys(engine, "default"), ["a", "b", "c", "zz"]);
  assert.equal(new TextDecoder().decode(engine.get("default", utf8("a"))!), "another region's");
  assert.deepEqual(keys(engine, "write"), ["c"]);
  assert.equal(disk.snapshots.size, 0, "pruned once installed");
});

Deno.test("memory snapshots: a damaged file is refused by name and the region stays Applying", async () => {
  const disk = new MemorySnapshotDisk();
  const snap = leader(disk).storage.snapshot();
  const [stored] = disk.snapshots.values();
  stored!.files.get("write")![0]! ^= 1;
  const engine = follower();
  const replica = PeerStorage.load(engine, REGION.id, {
    snapshots: new MemorySnapshotManager(disk),
  });
  using batch = engine.newWriteBatch();
  replica.applySnapshot(batch, snap);
  await engine.writeDurable(batch);
  await assert.rejects(
    () => replica.finishSnapshotInstall(engine),
    (e: unknown) =>
      e instanceof SnapshotMissingError && /7_5_5 .*column family write is damaged/.test(e.message),
  );
  assert.equal(readRegionState(engine, REGION.id)?.state, PeerState.Applying);
});

Deno.test("memory snapshots: past maxGenerated unpruned snapshots, Raft is told to wait", () => {
  const disk = new MemorySnapshotDisk();
  const { engine } = leader(disk);
  const manager = new MemorySnapshotManager(disk, 1);
  assert.ok(manager.generate({ regionId: 7n, term: 5n, index: 5n }, engine, REGION) !== null);
  assert.equal(manager.generate({ regionId: 7n, term: 5n, index: 6n }, engine, REGION), null);
  const storage = PeerStorage.load(engine, REGION.id, { snapshots: manager });
  assert.ok(storage.snapshot().data.length > 0, "the same key is reused, not a new one");
  manager.pruneReceived(7n, 5n);
  assert.ok(manager.generate({ regionId: 7n, term: 5n, index: 6n }, engine, REGION) !== null);
});
