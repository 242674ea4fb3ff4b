/**
 * A fresh PD adopting a standalone store's cluster (`adoption.ts`): the cluster id, store and
 * region taken over in one batch, timestamps above the standalone TSO's saved bound and ids above
 * its id bound (PD's own guarantees, `pkg/tso` and `pkg/id`, kept across the adoption and a
 * restart), and the refusals — a bootstrapped PD, a PD that has handed out ids, a malformed
 * request — that leave PD as it was.
 */
import assert from "node:assert/strict";
import { MemoryEngine } from "../engine/memory_engine.ts";
import { TSO_LOGICAL_BITS, TSO_MAX_PHYSICAL_MS } from "../tso/mod.ts";
import { utf8 } from "../util/bytes.ts";
import { SeededRandom } from "../util/random.ts";
import type { StandaloneAdoption } from "./adoption.ts";
import { EngineStorage } from "./engine_storage.ts";
import { PdError } from "./errors.ts";
import { PlacementDriver } from "./placement_driver.ts";
import type { RegionMeta } from "./types.ts";

const START_MS = 1_700_000_000_000;
const STANDALONE_CLUSTER_ID = 7_000_000_000_000_000_001n;

function open(engine: MemoryEngine, clock: { nowMs: number }) {
  return PlacementDriver.open({
    storage: new EngineStorage({ engine }),
    clock: { nowMs: () => clock.nowMs },
    random: new SeededRandom(11),
  });
}

function region(
  id: bigint,
  range: [string, string],
  peers = [{ id: id + 100n, storeId: 1n }],
): RegionMeta {
  return {
    id,
    startKey: utf8(range[0]),
    endKey: utf8(range[1]),
    regionEpoch: { confVer: 1n, version: 3n },
    peers: peers.map((p) => ({ ...p, role: "Voter" as const })),
  };
}

/** A standalone store whose TSO bound is a minute ahead of PD's clock (a clock behind). */
function adoption(overrides: Partial<StandaloneAdoption> = {}): StandaloneAdoption {
  return {
    clusterId: STANDALONE_CLUSTER_ID,
    store: { id: 1n, address: "127.0.0.1:20160" },
    region: region(1n, ["", "mmm"]),
    tsoBoundMs: BigInt(START_MS + 60_000),
    idBound: 5_000n,
    gcSafePoint: 42n << BigInt(TSO_LOGICAL_BITS),
    ...overrides,
  };
}

function value<T>(result: T | PdError): T {
  assert.ok(!(result instanceof PdError), `unexpected ${String(result)}`);
  return result;
}

function bootstrapOther(pd: PlacementDriver): void {
  const refused = pd.bootstrap({
    store: { id: 1n, address: "other" },
    region: {
      id: 2n,
      startKey: new Uint8Array(0),
      endKey: new Uint8Array(0),
      regionEpoch: { confVer: 1n, version: 1n },
      peers: [{ id: 3n, storeId: 1n, role: "Voter" }],
    },
  });
  assert.equal(refused, null);
}

Deno.test("adoption: a fresh PD takes the standalone cluster id, store and region in one go", () => {
  const engine = new MemoryEngine();
  const clock = { nowMs: START_MS };
  const pd = open(engine, clock);
  const ownId = pd.clusterId;
  assert.notEqual(ownId, STANDALONE_CLUSTER_ID);
  assert.equal(pd.adoptStandalone(adoption()), null);
  assert.equal(pd.clusterId, STANDALONE_CLUSTER_ID);
  assert.ok(pd.isBootstrapped());
  assert.equal(pd.checkClusterId(STANDALONE_CLUSTER_ID), null);
  assert.equal(pd.checkClusterId(ownId)?.code, "ClusterIdMismatch", "the old id is refused");
  assert.equal(value(pd.getStore(1n)).meta.address, "127.0.0.1:20160");
  const first = value(pd.getRegion(utf8("aaa")));
  assert.equal(first?.meta.id, 1n, "the region sent covers its keys");
  assert.equal(value(pd.getRegion(utf8("zzz"))), null, "the others wait for their heartbeats");
  assert.equal(value(pd.getGcSafePoint()), 42n << BigInt(TSO_LOGICAL_BITS));
});

Deno.test("adoption: timestamps follow every standalone one and ids pass its bound, across a restart", () => {
  const engine = new MemoryEngine();
  const clock = { nowMs: START_MS };
  const pd = open(engine, clock);
  const bound = adoption().tsoBoundMs;
  // Every timestamp the standalone TSO issued is below `bound << 18`.
  const highestStandalone = (bound << BigInt(TSO_LOGICAL_BITS)) - 1n;
  assert.equal(pd.adoptStandalone(adoption()), null);
  assert.ok(value(pd.tso(1)).first > highestStandalone, "the first timestamp after adoption");
  assert.equal(value(pd.allocId(1)), 5_001n, "the first id after adoption");
  // A restart (the wall clock still a minute behind the standalone bound) keeps both.
  const again = open(engine, clock);
  assert.equal(again.clusterId, STANDALONE_CLUSTER_ID);
  assert.ok(again.isBootstrapped());
  assert.ok(value(again.tso(1)).first > highestStandalone, "after a restart");
  assert.ok(value(again.allocId(1)) > 5_001n, "ids after a restart");
  assert.equal(value(again.getRegionById(1n))?.meta.id, 1n);
});

Deno.test("adoption: the store's other regions come by heartbeat, as PD takes new regions", () => {
  const pd = open(new MemoryEngine(), { nowMs: START_MS });
  assert.equal(pd.adoptStandalone(adoption()), null);
  const right = region(7n, ["mmm", ""]);
  const answer = pd.regionHeartbeat({ region: right, leader: right.peers[0]!, term: 5n });
  assert.ok(!(answer instanceof PdError), String(answer));
  assert.equal(value(pd.getRegion(utf8("zzz")))?.meta.id, 7n);
  assert.equal(value(pd.scanRegions({ startKey: utf8(""), endKey: utf8(""), limit: 0 })).length, 2);
});

Deno.test("adoption: a repeated request (its answer lost) finds the cluster adopted and succeeds", () => {
  const engine = new MemoryEngine();
  const pd = open(engine, { nowMs: START_MS });
  assert.equal(pd.adoptStandalone(adoption()), null);
  const id = value(pd.allocId(1));
  assert.equal(pd.adoptStandalone(adoption()), null);
  assert.equal(open(engine, { nowMs: START_MS }).adoptStandalone(adoption()), null);
  assert.ok(value(pd.allocId(1)) > id, "ids go on from where they were");
});

Deno.test("adoption: a bootstrapped PD refuses, naming both cluster ids, and stays as it was", () => {
  const pd = open(new MemoryEngine(), { nowMs: START_MS });
  bootstrapOther(pd);
  const ownId = pd.clusterId;
  const lastTs = value(pd.tso(1)).last;
  const refused = pd.adoptStandalone(adoption());
  assert.ok(refused instanceof PdError);
  assert.equal(refused.code, "AlreadyBootstrapped");
  assert.match(refused.message, new RegExp(`cluster ${ownId}\\b`));
  assert.match(refused.message, new RegExp(`cluster ${STANDALONE_CLUSTER_ID}\\b`));
  assert.equal(pd.clusterId, ownId);
  assert.equal(value(pd.getStore(1n)).meta.address, "other");
  const next = value(pd.tso(1)).first;
  assert.ok(next > lastTs && next >> BigInt(TSO_LOGICAL_BITS) < adoption().tsoBoundMs, "TSO kept");
});

Deno.test("adoption: a PD that handed out ids (a store may be joining it) refuses", () => {
  const engine = new MemoryEngine();
  const pd = open(engine, { nowMs: START_MS });
  value(pd.allocId(1));
  const ownId = pd.clusterId;
  const refused = pd.adoptStandalone(adoption());
  assert.ok(refused instanceof PdError);
  assert.equal(refused.code, "InvalidRequest");
  assert.match(refused.message, /has handed out ids/);
  assert.equal(pd.clusterId, ownId);
  assert.ok(!pd.isBootstrapped());
  // The same after a restart: the saved id window says ids were handed out.
  assert.equal(
    open(engine, { nowMs: START_MS }).adoptStandalone(adoption())?.code,
    "InvalidRequest",
  );
});

Deno.test("adoption: malformed requests are refused and change nothing", () => {
  const cases: [string, Partial<StandaloneAdoption>, RegExp][] = [
    ["zero cluster id", { clusterId: 0n }, /zero cluster id/],
    ["zero store id", { store: { id: 0n, address: "a" } }, /zero store id/],
    ["two peers", {
      region: region(1n, ["", ""], [{ id: 2n, storeId: 1n }, { id: 3n, storeId: 4n }]),
    }, /2 peers, not 1/],
    ["a peer on another store", {
      region: region(1n, ["", ""], [{ id: 2n, storeId: 9n }]),
    }, /must be a voter on store 1/],
    ["a learner", {
      region: { ...region(1n, ["", ""]), peers: [{ id: 2n, storeId: 1n, role: "Learner" }] },
    }, /must be a voter on store 1/],
    ["an empty range", { region: region(1n, ["b", "a"]) }, /ends before it starts/],
    ["ids above the id bound", { idBound: 10n }, /id 101 is above the id bound 10/],
    ["no TSO bound", { tsoBoundMs: 0n }, /TSO bound 0/],
    ["a TSO bound past PD's range", {
      tsoBoundMs: BigInt(TSO_MAX_PHYSICAL_MS),
    }, /TSO physical part would pass/],
  ];
  for (const [name, overrides, message] of cases) {
    const pd = open(new MemoryEngine(), { nowMs: START_MS });
    const ownId = pd.clusterId;
    const refused = pd.adoptStandalone(adoption(overrides));
    assert.ok(refused instanceof PdError, name);
    assert.equal(refused.code, "InvalidRequest", name);
    assert.match(refused.message, message, name);
    assert.equal(pd.clusterId, ownId, name);
    assert.ok(!pd.isBootstrapped(), name);
  }
});
