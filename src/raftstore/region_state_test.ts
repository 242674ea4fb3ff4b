import assert from "node:assert/strict";
import { MemoryEngine } from "../engine/memory_engine.ts";
import { kvrpcpb, metapb, raft_serverpb } from "../../proto/mod.ts";
import { ttlIndexKey } from "../storage/ttl_index.ts";
import { regionStateKey, storeIdentKey } from "./keys.ts";
import {
  confStateOf,
  CorruptLocalStateError,
  decodeRegionLocalState,
  PeerState,
  type RegionLocalState,
} from "./local_state.ts";
import {
  LOCAL_CF,
  readRegionState,
  readStoreIdent,
  scanRegionStates,
  writeRegionState,
  writeStoreIdent,
} from "./region_state.ts";

function region(id: bigint, state = PeerState.Normal): RegionLocalState {
  return {
    state,
    region: {
      id,
      startKey: new TextEncoder().encode(`a${id}`),
      endKey: new TextEncoder().encode(`b${id}`),
      regionEpoch: { confVer: 2n, version: id },
      peers: [
        { id: id * 10n + 1n, storeId: 1n, role: metapb.PeerRole.Voter },
        { id: id * 10n + 2n, storeId: 2n, role: metapb.PeerRole.Learner },
      ],
    },
  };
}

Deno.test("StoreIdent and RegionLocalState survive a write and a read, in raft_serverpb's bytes", () => {
  const engine = new MemoryEngine();
  assert.equal(readStoreIdent(engine), null);
  assert.equal(readRegionState(engine, 3n), null);
  const batch = engine.newWriteBatch();
  writeStoreIdent(batch, { clusterId: 9n, storeId: 4n, apiVersion: kvrpcpb.APIVersion.V1TTL });
  writeRegionState(batch, region(3n));
  engine.write(batch);
  batch.destroy();
  assert.deepEqual(readStoreIdent(engine), {
    clusterId: 9n,
    storeId: 4n,
    apiVersion: kvrpcpb.APIVersion.V1TTL,
  });
  assert.deepEqual(readRegionState(engine, 3n), region(3n));
  // The bytes are kvproto's: the generated decoder reads them.
  const raw = raft_serverpb.RegionLocalState.decode(engine.get(LOCAL_CF, regionStateKey(3n))!);
  assert.equal(raw.region?.peers?.[1]?.role, metapb.PeerRole.Learner);
  assert.equal(raft_serverpb.StoreIdent.decode(engine.get(LOCAL_CF, storeIdentKey())!).storeId, 4n);
});

Deno.test("a starting store finds every region's state by id, Tombstones included, and nothing else", () => {
  const engine = new MemoryEngine();
  const batch = engine.newWriteBatch();
  for (const id of [300n, 2n, 1n]) writeRegionState(batch, region(id));
  writeRegionState(batch, region(7n, PeerState.Tombstone));
  writeStoreIdent(batch, { clusterId: 1n, storeId: 1n, apiVersion: kvrpcpb.APIVersion.V1 });
  batch.put(LOCAL_CF, ttlIndexKey(10, "default", new Uint8Array([1])), new Uint8Array(0));
  engine.write(batch);
  batch.destroy();
  const states = scanRegionStates(engine);
  assert.deepEqual(states.map((s) => s.region.id), [1n, 2n, 7n, 300n]);
  assert.equal(states[2]!.state, PeerState.Tombstone);
  // A stray key under the metadata prefix is reported, not skipped.
  engine.put(LOCAL_CF, new Uint8Array([0x01, 0x03, 0x00]), new Uint8Array(0));
  assert.throws(() => scanRegionStates(engine), /not a RegionLocalState key/);
});

Deno.test("a peer of a joint-consensus role is refused as damaged: only single-step membership exists", () => {
  const bytes = raft_serverpb.RegionLocalState.encode({
    region: {
      id: 5n,
      regionEpoch: { confVer: 1n, version: 1n },
      peers: [{ id: 51n, storeId: 1n, role: metapb.PeerRole.IncomingVoter }],
    },
  }).finish();
  assert.throws(
    () => decodeRegionLocalState(bytes, { regionId: 5n, key: regionStateKey(5n) }),
    (e: unknown) =>
      e instanceof CorruptLocalStateError && /region 5: .*IncomingVoter/.test(e.message),
  );
  assert.throws(() =>
    writeRegionState(new MemoryEngine().newWriteBatch(), {
      ...region(5n),
      region: { ...region(5n).region, peers: [{ id: 0n, storeId: 1n, role: 0 }] },
    }), /encodeRegionLocalState: peer 0/);
});

Deno.test("the membership of a region is its voters and learners by peer id, sorted", () => {
  const cs = confStateOf({
    ...region(1n).region,
    peers: [
      { id: 30n, storeId: 3n, role: metapb.PeerRole.Voter },
      { id: 4n, storeId: 1n, role: metapb.PeerRole.Learner },
      { id: 12n, storeId: 2n, role: metapb.PeerRole.Voter },
    ],
  });
  assert.deepEqual([cs.voters, cs.learners], [[12n, 30n], [4n]]);
});
