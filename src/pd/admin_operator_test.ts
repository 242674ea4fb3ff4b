/**
 * What an administrator may ask of PD (`ctl operator add`, PD's `/operators` API) and
 * ScatterRegion: operators made from the region as PD knows it, refused — naming why — when
 * they make no sense, and answered on the leader's next heartbeat (`instructionFor`).
 */
import assert from "node:assert/strict";
import { PD_SCATTER_MAX_REGIONS } from "../constants.ts";
import { MemoryEngine } from "../engine/memory_engine.ts";
import { SeededRandom } from "../util/random.ts";
import { EngineStorage } from "./engine_storage.ts";
import { PdError } from "./errors.ts";
import { PlacementDriver } from "./placement_driver.ts";
import type { RegionMeta } from "./types.ts";

const TWO_PEERS: RegionMeta = {
  id: 2n,
  startKey: new Uint8Array(0),
  endKey: new Uint8Array(0),
  regionEpoch: { confVer: 2n, version: 1n },
  peers: [{ id: 3n, storeId: 1n, role: "Voter" }, { id: 5n, storeId: 4n, role: "Voter" }],
};

function cluster(): PlacementDriver {
  const pd = PlacementDriver.open({
    storage: new EngineStorage({ engine: new MemoryEngine() }),
    clock: { nowMs: () => 1_700_000_000_000 },
    random: new SeededRandom(5),
  });
  assert.equal(
    pd.bootstrap({
      store: { id: 1n, address: "s1" },
      region: {
        ...TWO_PEERS,
        regionEpoch: { confVer: 1n, version: 1n },
        peers: [TWO_PEERS.peers[0]!],
      },
    }),
    null,
  );
  for (const [id, address] of [[4n, "s4"], [6n, "s6"]] as const) {
    assert.equal(pd.putStore({ id, address }), null);
  }
  const kept = pd.regionHeartbeat({ region: TWO_PEERS, leader: TWO_PEERS.peers[0]!, term: 1n });
  assert.equal(kept, null);
  return pd;
}

function refusal(result: unknown): string {
  assert.ok(result instanceof PdError, `expected a refusal, got ${JSON.stringify(result)}`);
  return `${result.code}: ${result.message}`;
}

Deno.test("admin transfer-leader: one TransferLeader step, sent on the leader's next heartbeat, done when the leader moves", () => {
  const pd = cluster();
  const op = pd.addOperator({ action: "transfer-leader", regionId: 2n, storeId: 4n });
  assert.ok(!(op instanceof PdError));
  assert.deepEqual(op.steps, [{ type: "TransferLeader", fromStoreId: 1n, toStoreId: 4n }]);
  assert.equal(op.desc, "admin-transfer-leader");
  assert.equal(pd.instructionFor(2n)?.transferLeader?.peer.storeId, 4n);
  assert.deepEqual(pd.operators().map((o) => o.regionId), [2n]);
  pd.regionHeartbeat({ region: TWO_PEERS, leader: TWO_PEERS.peers[1]!, term: 2n });
  assert.equal((pd.getOperator(2n) as { status: string }).status, "SUCCESS");
});

Deno.test("admin add-peer: a new peer id, added as a learner then promoted; remove-peer of the leader moves leadership first", () => {
  const pd = cluster();
  const add = pd.addOperator({ action: "add-peer", regionId: 2n, storeId: 6n });
  assert.ok(!(add instanceof PdError));
  assert.deepEqual(add.steps.map((s) => s.type), ["AddLearner", "PromoteLearner"]);
  const peerId = (add.steps[0] as { peerId: bigint }).peerId;
  assert.ok((pd.allocId(1) as bigint) > peerId, "the peer id came from the id allocator");
  assert.equal(pd.instructionFor(2n)?.changePeer?.changeType, "AddLearnerNode");

  const other = cluster();
  const remove = other.addOperator({ action: "remove-peer", regionId: 2n, storeId: 1n });
  assert.ok(!(remove instanceof PdError));
  assert.deepEqual(remove.steps.map((s) => s.type), ["TransferLeader", "RemovePeer"]);
});

Deno.test("admin operators are refused, naming why: unknown region or store, nothing to do, one already running", () => {
  const pd = cluster();
  assert.equal(
    refusal(pd.addOperator({ action: "transfer-leader", regionId: 9n, storeId: 4n })),
    "RegionNotFound: region 9 not found",
  );
  assert.equal(
    refusal(pd.addOperator({ action: "add-peer", regionId: 2n, storeId: 9n })),
    "StoreNotFound: invalid store ID 9, not found",
  );
  assert.match(
    refusal(pd.addOperator({ action: "transfer-leader", regionId: 2n, storeId: 1n })),
    /its leader is on store 1/,
  );
  assert.match(
    refusal(pd.addOperator({ action: "add-peer", regionId: 2n, storeId: 4n })),
    /already has peer 5 on store 4/,
  );
  assert.match(
    refusal(pd.addOperator({ action: "remove-peer", regionId: 2n, storeId: 6n })),
    /no peer on store 6/,
  );
  assert.ok(
    !(pd.addOperator({ action: "add-peer", regionId: 2n, storeId: 6n }) instanceof PdError),
  );
  assert.match(
    refusal(pd.addOperator({ action: "transfer-leader", regionId: 2n, storeId: 4n })),
    /no room for a leader operator/,
  );
});

Deno.test("ScatterRegion: known regions are done, unknown ones named, one unknown region is REGION_NOT_FOUND, the count bounded", () => {
  const pd = cluster();
  assert.deepEqual(pd.scatterRegion({ regionIds: [2n, 8n], region: null, leader: null }), {
    finishedPercentage: 50,
    failedRegionIds: [8n],
  });
  assert.equal(
    refusal(pd.scatterRegion({ regionIds: [8n], region: null, leader: null })),
    "RegionNotFound: region 8 not found",
  );
  const many = Array.from({ length: PD_SCATTER_MAX_REGIONS + 1 }, (_, i) => BigInt(i + 1));
  assert.match(
    refusal(pd.scatterRegion({ regionIds: many, region: null, leader: null })),
    /at most/,
  );
});

Deno.test("admin merge-region: neighbours with three voters each get both halves of a merge (the source's returned); a region that is no neighbour, itself, or unknown is refused by name", () => {
  const clock = { ms: 1_700_000_000_000 };
  const pd = PlacementDriver.open({
    storage: new EngineStorage({ engine: new MemoryEngine() }),
    clock: { nowMs: () => clock.ms },
    random: new SeededRandom(5),
  });
  const voters = (ids: bigint[]) =>
    ids.map((id, i) => ({ id, storeId: [1n, 4n, 6n][i]!, role: "Voter" as const }));
  const key = (k: string) => new TextEncoder().encode(k);
  const left: RegionMeta = {
    id: 2n,
    startKey: new Uint8Array(0),
    endKey: key("m"),
    regionEpoch: { confVer: 3n, version: 2n },
    peers: voters([3n, 5n, 7n]),
  };
  const right: RegionMeta = {
    id: 10n,
    startKey: key("m"),
    endKey: key("t"),
    regionEpoch: { confVer: 3n, version: 2n },
    peers: voters([11n, 12n, 13n]),
  };
  const last: RegionMeta = {
    id: 20n,
    startKey: key("t"),
    endKey: new Uint8Array(0),
    regionEpoch: { confVer: 3n, version: 2n },
    peers: voters([21n, 22n, 23n]),
  };
  const first: RegionMeta = {
    ...left,
    endKey: new Uint8Array(0),
    regionEpoch: { confVer: 1n, version: 1n },
    peers: [left.peers[0]!],
  };
  assert.equal(pd.bootstrap({ store: { id: 1n, address: "s1" }, region: first }), null);
  for (const [id, address] of [[4n, "s4"], [6n, "s6"]] as const) {
    assert.equal(pd.putStore({ id, address }), null);
  }
  for (const region of [left, right, last]) {
    assert.equal(pd.regionHeartbeat({ region, leader: region.peers[0]!, term: 1n }), null);
  }
  const stats = {
    capacity: 1n << 40n,
    available: 1n << 39n,
    usedSize: 0n,
    regionCount: 3,
    sendingSnapCount: 0,
    receivingSnapCount: 0,
    isBusy: false,
  };
  for (const id of [1n, 4n, 6n]) assert.ok(!(pd.storeHeartbeat(id, stats) instanceof PdError));

  assert.match(
    refusal(pd.addOperator({ action: "merge-region", regionId: 2n, targetRegionId: 20n })),
    /InvalidRequest: merge of region 2: regions 2 and 20 are not neighbours/,
  );
  assert.match(
    refusal(pd.addOperator({ action: "merge-region", regionId: 2n, targetRegionId: 2n })),
    /cannot merge into itself/,
  );
  assert.match(
    refusal(pd.addOperator({ action: "merge-region", regionId: 2n, targetRegionId: 99n })),
    /RegionNotFound: region 99 not found/,
  );
  const op = pd.addOperator({ action: "merge-region", regionId: 10n, targetRegionId: 2n });
  assert.ok(!(op instanceof PdError), op instanceof PdError ? op.message : "");
  assert.equal(op.regionId, 10n);
  assert.equal(op.desc, "admin-merge-region");
  assert.equal(op.steps.at(-1)?.type, "MergeRegion");
  assert.deepEqual(pd.operators().map((o) => o.regionId).sort((a, b) => Number(a - b)), [2n, 10n]);
  // The source's leader is told to merge into the target.
  assert.equal(pd.instructionFor(10n)?.merge?.target.id, 2n);
  // A region with an operator running takes no other.
  assert.match(
    refusal(pd.addOperator({ action: "merge-region", regionId: 20n, targetRegionId: 10n })),
    /region 10 has an operator running/,
  );
});
