/**
 * PD's cluster metadata rules: bootstrap, stores, region heartbeats and their staleness (PD's
 * `core.check`), overlap removal, lookups, split ids, and state surviving a restart.
 */
import assert from "node:assert/strict";
import { PD_STORE_DOWN_GRACE_AFTER_LOAD_MS, PD_STORE_HEARTBEAT_PERSIST_MS } from "../constants.ts";
import { MemoryEngine } from "../engine/memory_engine.ts";
import { SeededRandom } from "../util/random.ts";
import { PdCluster, type RegionHeartbeat } from "./cluster.ts";
import { EngineStorage } from "./engine_storage.ts";
import { PdError } from "./errors.ts";
import type { RegionMeta } from "./types.ts";

const text = (s: string) => new TextEncoder().encode(s);
const START_MS = 1_700_000_000_000;

/** A store heartbeat's statistics (their values do not matter here). */
const STATS = {
  capacity: 1n,
  available: 1n,
  usedSize: 0n,
  regionCount: 0,
  sendingSnapCount: 0,
  receivingSnapCount: 0,
  isBusy: false,
};

/** The cluster on `engine` as PD opens it with the clock `nowMs`. */
function openAt(
  engine: MemoryEngine,
  nowMs: () => number,
  options: { maxStores?: number; maxRegions?: number } = {},
): PdCluster {
  return PdCluster.open({
    storage: new EngineStorage({ engine }),
    clock: { nowMs },
    random: new SeededRandom(7),
    reservedIdsThrough: 1000n,
    ...options,
  });
}

function open(
  engine = new MemoryEngine(),
  options: { maxStores?: number; maxRegions?: number } = {},
) {
  let nowMs = START_MS;
  const cluster = openAt(engine, () => nowMs, options);
  return { cluster, engine, advance: (ms: number) => (nowMs += ms) };
}

function region(
  id: bigint,
  range: [string, string],
  epoch: [confVer: number, version: number],
  stores: bigint[] = [1n],
): RegionMeta {
  return {
    id,
    startKey: text(range[0]),
    endKey: text(range[1]),
    regionEpoch: { confVer: BigInt(epoch[0]), version: BigInt(epoch[1]) },
    peers: stores.map((storeId) => ({ id: id * 10n + storeId, storeId, role: "Voter" })),
  };
}

function heartbeat(meta: RegionMeta, term = 1n): RegionHeartbeat {
  return { region: meta, leader: meta.peers[0]!, term };
}

function bootstrapped(engine?: MemoryEngine) {
  const env = open(engine);
  const refused = env.cluster.bootstrap({
    store: { id: 1n, address: "s1" },
    region: region(2n, ["", ""], [1, 1]),
  });
  assert.equal(refused, null);
  return env;
}

function code(value: unknown): string {
  assert.ok(value instanceof PdError, `expected a PdError, got ${String(value)}`);
  return value.code;
}

Deno.test("bootstrap: NOT_BOOTSTRAPPED before, ALREADY_BOOTSTRAPPED after, PD's request checks", () => {
  const { cluster } = open();
  assert.equal(code(cluster.requireBootstrapped()), "NotBootstrapped");
  const bad = (store: bigint, meta: RegionMeta) =>
    code(cluster.bootstrap({ store: { id: store, address: "s" }, region: meta }));
  assert.equal(bad(0n, region(2n, ["", ""], [1, 1])), "InvalidRequest");
  assert.equal(bad(1n, region(2n, ["a", ""], [1, 1])), "InvalidRequest");
  assert.equal(bad(1n, region(2n, ["", ""], [1, 1], [1n, 2n])), "InvalidRequest");
  assert.equal(bad(1n, region(2n, ["", ""], [1, 1], [3n])), "InvalidRequest");
  assert.equal(cluster.isBootstrapped, false, "a refused bootstrap leaves the cluster as it was");
  assert.equal(
    cluster.bootstrap({ store: { id: 1n, address: "s1" }, region: region(2n, ["", ""], [1, 1]) }),
    null,
  );
  assert.equal(cluster.requireBootstrapped(), null);
  assert.equal(bad(1n, region(2n, ["", ""], [1, 1])), "AlreadyBootstrapped");
});

Deno.test("a request naming another cluster id is refused with PD's message", () => {
  const { cluster } = open();
  assert.equal(cluster.checkClusterId(cluster.clusterId), null);
  const refused = cluster.checkClusterId(cluster.clusterId + 1n);
  assert.equal(code(refused), "ClusterIdMismatch");
  assert.match(refused!.message, /mismatch cluster id, need \d+ but got \d+/);
});

Deno.test("region heartbeat: a lower version, conf_ver or term than PD knows is ignored", () => {
  const { cluster } = bootstrapped();
  assert.ok(
    !(cluster.regionHeartbeat(heartbeat(region(2n, ["", ""], [5, 5]), 7n)) instanceof PdError),
  );
  for (const [confVer, version, term] of [[5, 4, 7], [4, 5, 7], [5, 5, 6]]) {
    const stale = cluster.regionHeartbeat(
      heartbeat(region(2n, ["", ""], [confVer!, version!]), BigInt(term!)),
    );
    assert.equal(code(stale), "StaleRegion", `epoch ${confVer}/${version} term ${term}`);
  }
  // Term 0 means "not reported" (TiKV before 3.0): not stale by term.
  assert.ok(
    !(cluster.regionHeartbeat(heartbeat(region(2n, ["", ""], [5, 5]), 0n)) instanceof PdError),
  );
  assert.deepEqual(cluster.regions.getById(2n)!.meta.regionEpoch, { confVer: 5n, version: 5n });
});

Deno.test("region heartbeat after a split: the newer regions replace the parent; an old parent is stale", () => {
  const { cluster } = bootstrapped();
  // Region 2 [ , ) splits at "m" into 3 [ , m) and 2 [m, ), both at version 2.
  assert.ok(
    !(cluster.regionHeartbeat(heartbeat(region(3n, ["", "m"], [1, 2]))) instanceof PdError),
  );
  assert.equal(
    cluster.regions.getById(2n),
    null,
    "the parent overlapping the newer left half is gone",
  );
  assert.ok(
    !(cluster.regionHeartbeat(heartbeat(region(2n, ["m", ""], [1, 2]))) instanceof PdError),
  );
  // The parent's old shape arrives late: it overlaps region 3 at a higher version.
  const late = cluster.regionHeartbeat(heartbeat(region(2n, ["", ""], [1, 1])));
  assert.equal(code(late), "StaleRegion");
  assert.deepEqual(cluster.regions.all().map((r) => r.meta.id), [3n, 2n]);
  assert.equal(cluster.regions.getByKey(text("a"))!.meta.id, 3n);
  assert.equal(cluster.regions.getByKey(text("z"))!.meta.id, 2n);
  assert.equal(cluster.regions.getPrev(text("z"))!.meta.id, 3n);
  assert.equal(cluster.regions.getPrev(text("a")), null);
});

Deno.test("region heartbeat: no leader, region id 0, too many peers or regions are refused", () => {
  const { cluster } = bootstrapped();
  assert.equal(
    code(cluster.regionHeartbeat({ region: region(2n, ["", ""], [1, 1]), leader: null, term: 1n })),
    "InvalidRequest",
  );
  assert.equal(
    code(cluster.regionHeartbeat(heartbeat(region(0n, ["", ""], [1, 1])))),
    "InvalidRequest",
  );
  const many = Array.from({ length: 17 }, (_, i) => BigInt(i + 1));
  assert.equal(
    code(cluster.regionHeartbeat(heartbeat(region(2n, ["", ""], [1, 1], many)))),
    "LimitExceeded",
  );
  const small = open(new MemoryEngine(), { maxRegions: 2 }).cluster;
  small.bootstrap({ store: { id: 1n, address: "s1" }, region: region(2n, ["", ""], [1, 1]) });
  // Region 3 replaces the bootstrap region it overlaps; region 4 is the second.
  assert.ok(!(small.regionHeartbeat(heartbeat(region(3n, ["b", "c"], [1, 2]))) instanceof PdError));
  assert.ok(!(small.regionHeartbeat(heartbeat(region(4n, ["c", "d"], [1, 2]))) instanceof PdError));
  assert.equal(
    code(small.regionHeartbeat(heartbeat(region(5n, ["d", "e"], [1, 2])))),
    "LimitExceeded",
  );
  assert.equal(small.regions.size, 2);
});

Deno.test("ScanRegions returns the regions meeting the range, in key order, up to the limit", () => {
  const { cluster } = bootstrapped();
  cluster.regionHeartbeat(heartbeat(region(3n, ["", "c"], [1, 2])));
  cluster.regionHeartbeat(heartbeat(region(4n, ["c", "f"], [1, 2])));
  cluster.regionHeartbeat(heartbeat(region(5n, ["f", ""], [1, 2])));
  const ids = (start: string, end: string, limit: number) =>
    cluster.regions.scan({ startKey: text(start), endKey: text(end), limit }).map((r) => r.meta.id);
  assert.deepEqual(ids("", "", 0), [3n, 4n, 5n]);
  assert.deepEqual(ids("d", "", 0), [4n, 5n]);
  assert.deepEqual(ids("a", "c", 0), [3n]);
  assert.deepEqual(ids("", "", 2), [3n, 4n]);
});

Deno.test("AskBatchSplit: fresh region and peer ids, never reused; unknown region or old epoch refused", () => {
  const { cluster } = bootstrapped();
  const meta = region(2n, ["", ""], [1, 1], [1n]);
  meta.peers.push({ id: 99n, storeId: 2n, role: "Voter" }, { id: 98n, storeId: 3n, role: "Voter" });
  const first = cluster.askBatchSplit({ region: meta, splitCount: 2 });
  const second = cluster.askBatchSplit({ region: meta, splitCount: 1 });
  assert.ok(Array.isArray(first) && Array.isArray(second));
  assert.equal(first.length, 2);
  for (const split of [...first, ...second]) assert.equal(split.newPeerIds.length, 3);
  const all = [...first, ...second].flatMap((s) => [s.newRegionId, ...s.newPeerIds]);
  assert.equal(new Set(all).size, all.length, "every id is distinct");
  assert.ok(all.every((id) => id > 1000n), "ids come after the reserved ones");
  cluster.regionHeartbeat(heartbeat(region(2n, ["", ""], [2, 3])));
  assert.equal(code(cluster.askBatchSplit({ region: meta, splitCount: 1 })), "StaleEpoch");
  assert.equal(code(cluster.askBatchSplit({ region: meta, splitCount: 0 })), "InvalidRequest");
  assert.equal(code(cluster.askBatchSplit({ region: meta, splitCount: 1025 })), "InvalidRequest");
  const gap = open().cluster;
  gap.bootstrap({ store: { id: 1n, address: "s1" }, region: region(2n, ["", ""], [1, 1]) });
  gap.regionHeartbeat(heartbeat(region(3n, ["", "m"], [1, 2])));
  assert.equal(
    code(gap.askBatchSplit({ region: region(9n, ["n", ""], [1, 2]), splitCount: 1 })),
    "RegionNotFound",
  );
});

Deno.test("ReportBatchSplit accepts adjacent regions in order and refuses others", () => {
  const { cluster } = bootstrapped();
  assert.equal(
    cluster.reportBatchSplit([region(3n, ["", "m"], [1, 2]), region(2n, ["m", ""], [1, 2])]),
    null,
  );
  assert.equal(
    code(cluster.reportBatchSplit([region(3n, ["", "m"], [1, 2]), region(2n, ["n", ""], [1, 2])])),
    "InvalidRequest",
  );
  assert.equal(code(cluster.reportBatchSplit([region(3n, ["", "m"], [1, 2])])), "InvalidRequest");
});

Deno.test("PutStore: new stores join Up; a duplicate address, a Tombstone or too many stores are refused", () => {
  const env = open(new MemoryEngine(), { maxStores: 3 });
  const { cluster } = env;
  cluster.bootstrap({ store: { id: 1n, address: "s1" }, region: region(2n, ["", ""], [1, 1]) });
  assert.equal(
    cluster.putStore({ id: 2n, address: "s2", labels: [{ key: "zone", value: "a" }] }),
    null,
  );
  assert.equal(code(cluster.putStore({ id: 3n, address: "s2" })), "DuplicatedStoreAddress");
  assert.equal(cluster.putStore({ id: 3n, address: "s3" }), null);
  assert.equal(code(cluster.putStore({ id: 4n, address: "s4" })), "LimitExceeded");
  assert.equal(cluster.putStore({ id: 2n, address: "s2-moved", version: "8.5.0" }), null);
  const store = cluster.getStore(2n);
  assert.ok(!(store instanceof PdError));
  assert.equal(store.meta.address, "s2-moved");
  assert.deepEqual(store.meta.labels, [{ key: "zone", value: "a" }], "unsaid fields are kept");
  assert.equal(store.meta.state, "Up");
  assert.equal(code(cluster.getStore(9n)), "StoreNotFound");
  const labels = Array.from({ length: 33 }, (_, i) => ({ key: `k${i}`, value: "v" }));
  assert.equal(code(cluster.putStore({ id: 3n, address: "s3", labels })), "LimitExceeded");
});

Deno.test("store liveness: Disconnected after 20 s of silence, Down after max-store-down-time", () => {
  const { cluster, advance } = bootstrapped();
  const live = () => cluster.liveness(cluster.getStore(1n) as never, START_MS + elapsed);
  let elapsed = 0;
  assert.equal(live(), "Up");
  elapsed = 19_999;
  assert.equal(live(), "Up");
  elapsed = 20_000;
  assert.equal(live(), "Disconnected");
  elapsed = 30 * 60 * 1000;
  assert.equal(live(), "Down");
  advance(elapsed);
  assert.ok(!(cluster.storeHeartbeat(1n, STATS) instanceof PdError));
  assert.equal(live(), "Up", "a heartbeat brings it back");
  assert.equal(code(cluster.storeHeartbeat(5n, STATS)), "StoreNotFound");
});

Deno.test("stores, regions, the cluster id and bootstrap survive a restart on the same engine", () => {
  const engine = new MemoryEngine();
  const before = bootstrapped(engine).cluster;
  before.putStore({ id: 2n, address: "s2" });
  before.regionHeartbeat(heartbeat(region(3n, ["", "m"], [1, 2])));
  before.regionHeartbeat(heartbeat(region(2n, ["m", ""], [1, 2])));
  const after = open(engine).cluster;
  assert.equal(after.clusterId, before.clusterId);
  assert.equal(after.isBootstrapped, true);
  assert.deepEqual(after.stores().map((s) => s.meta.address), ["s1", "s2"]);
  assert.deepEqual(after.regions.all().map((r) => [r.meta.id, r.meta.regionEpoch.version]), [[
    3n,
    2n,
  ], [2n, 2n]]);
  assert.equal(after.regions.getById(3n)!.leader, null, "leaders come back with heartbeats");
  // The region removed for overlapping was removed from storage too: a stale copy would be
  // a third region here.
  assert.equal(after.regions.size, 2);
});

Deno.test("a corrupt region record stops PD with an error naming its key", () => {
  const engine = new MemoryEngine();
  bootstrapped(engine);
  const storage = new EngineStorage({ engine });
  storage.write([{ kind: "put", key: "region/00000000000000000002", value: '{"id":"x"}' }]);
  assert.throws(() => open(engine), /region\/00000000000000000002.*"id"/);
});

Deno.test("a store's heartbeat time is saved every PD_STORE_HEARTBEAT_PERSIST_MS, and a PD that loads its stores takes their silence from it — a store silent past max-store-down-time is Down once the load's grace is over, not at once, not a whole max-store-down-time later", () => {
  const engine = new MemoryEngine();
  const { cluster, advance } = bootstrapped(engine);
  const saved = () => {
    const reopened = openAt(engine, () => START_MS + 24 * 60 * 60 * 1000);
    return (reopened.getStore(1n) as { lastHeartbeatMs: number }).lastHeartbeatMs;
  };
  advance(60_000);
  assert.ok(!(cluster.storeHeartbeat(1n, STATS) instanceof PdError));
  assert.equal(saved(), START_MS, "a heartbeat a minute after the last save is not saved");
  const lastMs = START_MS + PD_STORE_HEARTBEAT_PERSIST_MS + 1;
  advance(lastMs - START_MS - 60_000);
  assert.ok(!(cluster.storeHeartbeat(1n, STATS) instanceof PdError));
  assert.equal(saved(), lastMs, "saved once the interval passed");
  // The store then goes silent for good; 40 minutes later another PD member loads the stores.
  let nowMs = lastMs + 40 * 60 * 1000;
  const loaded = openAt(engine, () => nowMs);
  const live = () => loaded.liveness(loaded.getStore(1n) as never, nowMs);
  assert.equal(live(), "Disconnected", "not Down within the load's grace");
  nowMs += PD_STORE_DOWN_GRACE_AFTER_LOAD_MS;
  assert.equal(live(), "Down");
  // A store that spoke just before the load is Up.
  nowMs = lastMs + 1_000;
  const fresh = openAt(engine, () => nowMs);
  assert.equal(fresh.liveness(fresh.getStore(1n) as never, nowMs), "Up");
});
