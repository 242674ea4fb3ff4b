/**
 * Region snapshots (`snapshot.ts`) carry the region's entries of the raw TTL expiry index
 * (`src/storage/ttl_index.ts`, CF raft) along with its data, and no other key of CF raft:
 * a replica that catches up by snapshot sweeps the TTL'd values it received, and installing
 * one replaces exactly the region's index ranges, leaving the store's Raft records and other
 * regions' entries alone.
 */
import assert from "node:assert/strict";
import { metapb, raft_serverpb } from "../../proto/mod.ts";
import { MemoryEngine } from "../engine/memory_engine.ts";
import type { ColumnFamily, KvEngine } from "../engine/types.ts";
import { TTL_INDEX_BOUNDS, TTL_INDEX_CF, ttlIndexKey } from "../storage/ttl_index.ts";
import { toHex, utf8 } from "../util/bytes.ts";
import { raftLogKey, raftStateKey } from "./keys.ts";
import { PeerState, type RegionMeta, regionToProto } from "./local_state.ts";
import { PeerStorage, writeInitialPeerState } from "./peer_storage.ts";
import {
  clearRegionData,
  decodeRegionSnapshot,
  encodeRegionSnapshot,
  INLINE_SNAPSHOT_VERSION,
} from "./snapshot.ts";

const EXPIRY = 1_010;

/** Region 7, [b, m): keys "a" and "m" lie outside it, "l\xff\xff" inside (the index is prefix-free). */
const REGION: RegionMeta = {
  id: 7n,
  startKey: utf8("b"),
  endKey: utf8("m"),
  regionEpoch: { confVer: 1n, version: 1n },
  peers: [{ id: 11n, storeId: 1n, role: metapb.PeerRole.Voter }],
};

/** A raw value with a TTL: the value, and its index entry in CF raft. */
function putTtl(engine: KvEngine, cf: ColumnFamily, key: string): void {
  engine.put(cf, utf8(key), utf8(`value of ${key}`));
  engine.put(TTL_INDEX_CF, ttlIndexKey(EXPIRY, cf, utf8(key)), new Uint8Array(0));
}

function indexKeysOf(engine: KvEngine): string[] {
  using iterator = engine.iterator(TTL_INDEX_CF, {
    lowerBound: TTL_INDEX_BOUNDS.start,
    upperBound: TTL_INDEX_BOUNDS.end,
  });
  const keys: string[] = [];
  for (iterator.seekToFirst(); iterator.valid(); iterator.next()) keys.push(toHex(iterator.key()));
  return keys.sort();
}

function entryOf(cf: ColumnFamily, key: string): string {
  return toHex(ttlIndexKey(EXPIRY, cf, utf8(key)));
}

Deno.test("a region's snapshot carries the TTL index entries of its keys and no other CF raft key", () => {
  const engine = new MemoryEngine();
  {
    using batch = engine.newWriteBatch();
    writeInitialPeerState(batch, { state: PeerState.Normal, region: REGION });
    engine.write(batch);
  }
  for (const key of ["a", "b", "l", "l\u00ff\u00ff", "m", "z"]) putTtl(engine, "default", key);
  putTtl(engine, "write", "c");
  putTtl(engine, "lock", "zz");
  engine.put("default", utf8("d"), utf8("no ttl"));

  const snap = PeerStorage.load(engine, REGION.id).snapshot();
  const { region, pairs } = decodeRegionSnapshot(snap.data);
  assert.equal(region.id, REGION.id);
  const carried = pairs.filter((pair) => pair.cf === TTL_INDEX_CF).map((pair) => toHex(pair.key));
  assert.deepEqual(
    carried.sort(),
    [
      entryOf("default", "b"),
      entryOf("default", "l"),
      entryOf("default", "l\u00ff\u00ff"),
      entryOf("write", "c"),
    ].sort(),
  );
  const data = pairs.filter((pair) => pair.cf !== TTL_INDEX_CF);
  assert.deepEqual(
    data.map((pair) => `${pair.cf}:${new TextDecoder().decode(pair.key)}`).sort(),
    ["default:b", "default:d", "default:l", "default:l\u00ff\u00ff", "write:c"].sort(),
  );
});

Deno.test("installing a snapshot replaces the region's TTL index entries and leaves every other CF raft key", () => {
  const source = new MemoryEngine();
  putTtl(source, "default", "b");
  putTtl(source, "write", "c");
  const bytes = encodeRegionSnapshot(source, REGION, 1 << 20);
  assert.ok(bytes !== null);

  const target = new MemoryEngine();
  putTtl(target, "default", "k"); // stale: in the region, not in the snapshot
  putTtl(target, "default", "a"); // another region's
  putTtl(target, "lock", "m"); // another region's
  target.put(TTL_INDEX_CF, raftLogKey(7n, 6n), utf8("entry"));
  target.put(TTL_INDEX_CF, raftStateKey(7n), utf8("state"));
  // As `PeerStorage.applySnapshot` installs: clear the region's ranges, then write the pairs.
  {
    using batch = target.newWriteBatch();
    const { region, pairs } = decodeRegionSnapshot(bytes);
    clearRegionData(target, batch, region);
    for (const pair of pairs) batch.put(pair.cf, pair.key, pair.value);
    target.write(batch);
  }
  assert.deepEqual(
    indexKeysOf(target),
    [
      entryOf("default", "a"),
      entryOf("default", "b"),
      entryOf("lock", "m"),
      entryOf("write", "c"),
    ].sort(),
  );
  assert.equal(target.get("default", utf8("k")), null);
  assert.notEqual(target.get("default", utf8("a")), null);
  assert.deepEqual(target.get(TTL_INDEX_CF, raftLogKey(7n, 6n)), utf8("entry"));
  assert.deepEqual(target.get(TTL_INDEX_CF, raftStateKey(7n)), utf8("state"));
});

Deno.test("a snapshot whose CF raft pairs stray outside the region's TTL index ranges is refused as a bug", () => {
  const bytes = raft_serverpb.RaftSnapshotData.encode({
    region: regionToProto(REGION),
    data: [{ key: raftStateKey(7n), value: utf8("state") }],
    version: INLINE_SNAPSHOT_VERSION,
    meta: { cfFiles: [{ cf: TTL_INDEX_CF, size: 1n }] },
  }).finish();
  assert.throws(() => decodeRegionSnapshot(bytes), /outside its TTL index ranges/);
});
