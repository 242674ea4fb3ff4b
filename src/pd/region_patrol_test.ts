/**
 * The checkers' patrol (`region_patrol.ts`) and scheduling past the sizes where PD checks every
 * region and weighs every candidate (issue #11): slices are bounded and one pass visits every
 * region; the waiting queue is bounded; a heartbeat that changed something is checked in the
 * next round wherever the patrol is; a Down store's replicas are found without waiting for the
 * patrol; balance-leader still spreads leaders when it draws from the per-store index.
 */
import assert from "node:assert/strict";
import {
  PD_PATROL_REGIONS_MIN,
  PD_PATROL_ROUNDS_PER_PASS,
  PD_SCHEDULE_SAMPLE_REGIONS,
  PD_SUSPECT_REGIONS_MAX,
  PD_SUSPECT_REGIONS_PER_ROUND,
} from "../constants.ts";
import { MemoryEngine } from "../engine/memory_engine.ts";
import { SeededRandom } from "../util/random.ts";
import { EngineStorage } from "./engine_storage.ts";
import type { ScheduleConfig } from "./config.ts";
import { PlacementDriver } from "./placement_driver.ts";
import { patrolSliceSize, RegionPatrol } from "./region_patrol.ts";
import { RegionTree } from "./region_tree.ts";
import { SimCluster } from "./sim_cluster.ts";
import type { RegionInfo } from "./types.ts";

const START_MS = 1_700_000_000_000;
/** Past both bounds, so the patrol slices and the schedulers draw. */
const MANY_REGIONS = 3_000;

function key(n: number): Uint8Array {
  return new TextEncoder().encode(`k${String(n).padStart(8, "0")}`);
}

function treeOf(count: number): RegionTree {
  const tree = new RegionTree();
  for (let i = 0; i < count; i++) {
    const region: RegionInfo = {
      meta: {
        id: BigInt(i + 1),
        startKey: i === 0 ? new Uint8Array(0) : key(i),
        endKey: i === count - 1 ? new Uint8Array(0) : key(i + 1),
        regionEpoch: { confVer: 1n, version: 1n },
        peers: [{ id: BigInt(i + 1) * 10n, storeId: 1n, role: "Voter" }],
      },
      leader: null,
      term: 0n,
      downPeers: [],
      pendingPeers: [],
      approximateSizeBytes: 0n,
      approximateKeys: 0n,
    };
    tree.put(region);
  }
  return tree;
}

Deno.test("patrol: each round's slice is bounded and one pass of PD_PATROL_ROUNDS_PER_PASS rounds visits every region", () => {
  for (const count of [PD_PATROL_REGIONS_MIN + 1, 5_000, 40_000]) {
    const tree = treeOf(count);
    const patrol = new RegionPatrol();
    const size = patrolSliceSize(count);
    assert.ok(size < count, `a slice of ${count} regions is smaller than the tree`);
    const visited = new Set<bigint>();
    for (let round = 0; round < PD_PATROL_ROUNDS_PER_PASS; round++) {
      const slice = patrol.nextSlice(tree);
      assert.equal(slice.whole, false);
      assert.ok(slice.regions.length <= size, `round ${round}: ${slice.regions.length} > ${size}`);
      for (const region of slice.regions) visited.add(region.meta.id);
    }
    assert.equal(visited.size, count, `${count} regions: one pass visits every region`);
  }
});

Deno.test("patrol: a cluster of at most PD_PATROL_REGIONS_MIN regions is checked whole, in key order", () => {
  const tree = treeOf(PD_PATROL_REGIONS_MIN);
  const patrol = new RegionPatrol();
  patrol.markSuspect(5n);
  for (let round = 0; round < 3; round++) {
    const slice = patrol.nextSlice(tree);
    assert.equal(slice.whole, true);
    assert.deepEqual(slice.regions, tree.all());
  }
  assert.equal(patrol.suspectCount, 0, "the waiting regions are in the whole tree's check");
});

Deno.test("patrol: at most PD_SUSPECT_REGIONS_MAX regions wait, a round takes PD_SUSPECT_REGIONS_PER_ROUND oldest first, removed ones are skipped", () => {
  const tree = treeOf(PD_SUSPECT_REGIONS_MAX + 100);
  const patrol = new RegionPatrol();
  for (let id = 1; id <= PD_SUSPECT_REGIONS_MAX + 100; id++) patrol.markSuspect(BigInt(id));
  assert.equal(patrol.suspectCount, PD_SUSPECT_REGIONS_MAX);
  tree.remove(2n);
  const first = patrol.takeSuspects(tree).map((region) => region.meta.id);
  assert.equal(first.length, PD_SUSPECT_REGIONS_PER_ROUND);
  assert.deepEqual(first.slice(0, 3), [1n, 3n, 4n], "oldest first; region 2 is gone: skipped");
  assert.equal(patrol.suspectCount, PD_SUSPECT_REGIONS_MAX - PD_SUSPECT_REGIONS_PER_ROUND - 1);
});

/** A PD with `stores` stores and MANY_REGIONS regions (ids 10…) on `placement(id)`. */
function bigCluster(options: {
  stores: number;
  placement: (id: number) => { storeIds: bigint[]; leaderStoreId: bigint };
  config?: Partial<ScheduleConfig>;
}) {
  const clock = { nowMs: START_MS };
  const pd = PlacementDriver.open({
    storage: new EngineStorage({ engine: new MemoryEngine() }),
    clock: { nowMs: () => clock.nowMs },
    random: new SeededRandom(3),
    config: options.config,
    reservedIdsThrough: 10_000_000n,
  });
  pd.bootstrap({
    store: { id: 1n, address: "s1" },
    region: {
      id: 1n,
      startKey: new Uint8Array(0),
      endKey: new Uint8Array(0),
      regionEpoch: { confVer: 1n, version: 1n },
      peers: [{ id: 101n, storeId: 1n, role: "Voter" }],
    },
  });
  for (let id = 2; id <= options.stores; id++) pd.putStore({ id: BigInt(id), address: `s${id}` });
  const sim = new SimCluster(pd);
  sim.heartbeatStores();
  for (let id = 10; id < 10 + MANY_REGIONS; id++) {
    const refused = sim.addRegion({ id: BigInt(id), ...options.placement(id), sizeMb: 96 });
    assert.equal(refused, null);
  }
  return { pd, sim, clock };
}

const ON_1_2_3 = (id: number) => ({ storeIds: [1n, 2n, 3n], leaderStoreId: BigInt(1 + id % 3) });

Deno.test("patrol: a heartbeat that drops a replica is checked in the next round, wherever the patrol is", () => {
  const { pd, sim } = bigCluster({ stores: 4, placement: ON_1_2_3 });
  const replicaOnly = { replica: true, merge: false, balanceLeader: false, balanceRegion: false };
  // Drain the regions their first heartbeats marked, and move the patrol on.
  const rounds = Math.ceil((MANY_REGIONS + 1) / PD_SUSPECT_REGIONS_PER_ROUND);
  for (let round = 0; round < rounds; round++) {
    assert.deepEqual(pd.scheduleRound(replicaOnly).added, []);
  }
  assert.equal(pd.cluster.patrol.suspectCount, 0);
  // The patrol's next slice (from its cursor, wrapping) does not reach region 2500.
  const tree = pd.cluster.regions;
  const size = patrolSliceSize(tree.size);
  const noEnd = new Uint8Array(0);
  const ahead = tree.scan({ startKey: pd.cluster.patrol.cursor, endKey: noEnd, limit: size });
  if (ahead.length < size) {
    ahead.push(...tree.scan({ startKey: noEnd, endKey: noEnd, limit: size - ahead.length }));
  }
  assert.ok(!ahead.some((r) => r.meta.id === 2_500n), "the patrol alone would not see it yet");
  const region = sim.regions.get(2_500n)!;
  assert.notEqual(region.leaderStoreId, 3n);
  region.meta = {
    ...region.meta,
    peers: region.meta.peers.filter((peer) => peer.storeId !== 3n),
    regionEpoch: { ...region.meta.regionEpoch, confVer: region.meta.regionEpoch.confVer + 1n },
  };
  sim.step();
  const added = pd.scheduleRound(replicaOnly).added;
  assert.deepEqual(added.map((op) => [op.regionId, op.desc]), [[2_500n, "make-up-replica"]]);
});

Deno.test("store pass: a Down store's few replicas far from the patrol are replaced in the first round", () => {
  const few = new Set([2_500, 2_501, 2_502]);
  const { pd, sim, clock } = bigCluster({
    stores: 5,
    placement: (id) =>
      few.has(id)
        ? { storeIds: [1n, 2n, 4n], leaderStoreId: 1n }
        : { storeIds: [1n, 2n, 3n], leaderStoreId: BigInt(1 + id % 3) },
    config: { maxStoreDownTimeMs: 30_000 },
  });
  const replicaOnly = { replica: true, merge: false, balanceLeader: false, balanceRegion: false };
  sim.dead.add(4n);
  clock.nowMs += 31_000;
  sim.heartbeatStores();
  const added = pd.scheduleRound(replicaOnly).added;
  assert.deepEqual(
    added.map((op) => [op.regionId, op.desc]),
    [[2_500n, "replace-down-replica"], [2_501n, "replace-down-replica"], [
      2_502n,
      "replace-down-replica",
    ]],
  );
});

Deno.test("balance-leader drawing from the index: 3,000 leaders on one store spread to within one, no flapping back", () => {
  assert.ok(MANY_REGIONS > PD_SCHEDULE_SAMPLE_REGIONS * 3, "the schedulers draw, not walk");
  const { pd, sim, clock } = bigCluster({
    stores: 3,
    placement: () => ({ storeIds: [1n, 2n, 3n], leaderStoreId: 1n }),
    config: { leaderScheduleLimit: 64 },
  });
  const leaders = () => [1n, 2n, 3n].map((id) => pd.cluster.regions.byStore.get(id)!.leaders.size);
  const maxRounds = Math.ceil(MANY_REGIONS / 64) * 2;
  let rounds = 0;
  for (; rounds < maxRounds; rounds++) {
    const spread = Math.max(...leaders()) - Math.min(...leaders());
    if (spread <= 1 && pd.controller.running().length === 0) break;
    sim.heartbeatStores();
    const added = pd.scheduleRound().added;
    for (const op of added) {
      const step = op.steps[0]!;
      assert.ok(step.type === "TransferLeader" && step.fromStoreId === 1n, "only store 1 gives");
    }
    sim.step();
    sim.step();
    clock.nowMs += 1_000;
  }
  assert.ok(rounds < maxRounds, `leaders ${leaders()} after ${rounds} rounds`);
  assert.deepEqual(leaders(), [1_000, 1_000, 1_000]);
});
