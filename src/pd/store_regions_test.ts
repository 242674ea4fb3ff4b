/**
 * The per-store index (`store_regions.ts`) never goes stale: after seeded random changes to the
 * region tree — leaders moving, peers added, promoted and removed, sizes changing, splits,
 * merges and regions removed — it equals what a full walk of the tree computes. The seed is
 * printed; `SEED=n` replays a run.
 */
import assert from "node:assert/strict";
import { SeededRandom, seedFromEnv } from "../util/random.ts";
import { RegionTree } from "./region_tree.ts";
import { RegionIdSet, regionSizeMb, rolesOf, type StoreRole } from "./store_regions.ts";
import type { Peer, PeerRole, RegionInfo } from "./types.ts";

const STORES = 6;
const STEPS = 3_000;
const MIB = 1024n * 1024n;

/** What the index should hold for one store, by a walk of every region. */
interface StoreSummary {
  leaders: bigint[];
  followers: bigint[];
  learners: bigint[];
  sizeMb: number;
}

function byId(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function walk(tree: RegionTree): Map<bigint, StoreSummary> {
  const out = new Map<bigint, StoreSummary>();
  for (const region of tree.all()) {
    for (const [storeId, role] of rolesOf(region)) {
      let summary = out.get(storeId);
      if (summary === undefined) {
        summary = { leaders: [], followers: [], learners: [], sizeMb: 0 };
        out.set(storeId, summary);
      }
      const list = role === "leader"
        ? summary.leaders
        : role === "follower"
        ? summary.followers
        : summary.learners;
      list.push(region.meta.id);
      summary.sizeMb += regionSizeMb(region);
    }
  }
  for (const summary of out.values()) {
    for (const list of [summary.leaders, summary.followers, summary.learners]) list.sort(byId);
  }
  return out;
}

function indexed(tree: RegionTree): Map<bigint, StoreSummary> {
  const out = new Map<bigint, StoreSummary>();
  for (const storeId of tree.byStore.storeIds()) {
    const held = tree.byStore.get(storeId)!;
    const sorted = (set: RegionIdSet) => [...set.values()].sort(byId);
    out.set(storeId, {
      leaders: sorted(held.leaders),
      followers: sorted(held.followers),
      learners: sorted(held.learners),
      sizeMb: held.sizeMb,
    });
    assert.equal(
      tree.byStore.regionCount(storeId),
      held.leaders.size + held.followers.size + held.learners.size,
    );
  }
  return out;
}

function key(n: number): Uint8Array {
  return new TextEncoder().encode(`k${String(n).padStart(8, "0")}`);
}

/** A random model of a cluster's regions, changed through `RegionTree.put` as PD changes it. */
class Model {
  readonly tree = new RegionTree();
  #nextId = 1n;
  #nextPeerId = 1_000n;
  #version = 1n;

  constructor(readonly random: SeededRandom) {
    // Start with 40 adjacent regions over [k0, k4000) and one open-ended one after them.
    for (let i = 0; i < 40; i++) {
      this.tree.put(this.#region({ start: key(i * 100), end: key((i + 1) * 100) }));
    }
    this.tree.put(this.#region({ start: key(4_000), end: new Uint8Array(0) }));
  }

  #peers(): Peer[] {
    const count = 1 + this.random.int(4);
    const stores = [...Array(STORES).keys()].map((i) => BigInt(i + 1));
    const peers: Peer[] = [];
    for (let i = 0; i < count; i++) {
      const storeId = stores.splice(this.random.int(stores.length), 1)[0]!;
      const roles: PeerRole[] = ["Voter", "Voter", "Learner", "IncomingVoter", "DemotingVoter"];
      peers.push({ id: this.#nextPeerId++, storeId, role: this.random.pick(roles) });
    }
    return peers;
  }

  #region(range: { start: Uint8Array; end: Uint8Array; id?: bigint }): RegionInfo {
    const peers = this.#peers();
    return {
      meta: {
        id: range.id ?? this.#nextId++,
        startKey: range.start,
        endKey: range.end,
        regionEpoch: { confVer: 1n, version: this.#version++ },
        peers,
      },
      leader: this.random.chance(0.1) ? null : this.random.pick(peers),
      term: 1n,
      downPeers: [],
      pendingPeers: [],
      approximateSizeBytes: BigInt(this.random.int(300)) * MIB,
      approximateKeys: 0n,
    };
  }

  #any(): RegionInfo {
    const all = this.tree.all();
    return all[this.random.int(all.length)]!;
  }

  /** One random change; returns its name. */
  step(): string {
    const region = this.#any();
    const change = this.random.int(7);
    if (change === 0) {
      this.tree.put({ ...region, leader: this.random.pick(region.meta.peers) });
      return "leader moves";
    }
    if (change === 1) {
      const peers = this.#peers();
      this.tree.put({
        ...region,
        meta: { ...region.meta, peers },
        leader: this.random.chance(0.1) ? null : this.random.pick(peers),
      });
      return "peers change";
    }
    if (change === 2) {
      const size = BigInt(this.random.int(300)) * MIB;
      this.tree.put({ ...region, approximateSizeBytes: size });
      return "size changes";
    }
    if (change === 3) return this.#split(region);
    if (change === 4) return this.#merge(region);
    if (change === 5 && this.tree.size > 5) {
      this.tree.remove(region.meta.id);
      return "region removed";
    }
    // A new region covering this one and up to three after it replaces them all (as a heartbeat
    // of a merged region PD had not heard of would).
    let end = region.meta.endKey;
    for (let more = this.random.int(4); more > 0 && end.length > 0; more--) {
      const next = this.tree.getByKey(end);
      if (next === null) break;
      end = next.meta.endKey;
    }
    this.tree.put(this.#region({ start: region.meta.startKey, end }));
    return "wide region replaces others";
  }

  #split(region: RegionInfo): string {
    const { startKey, endKey } = region.meta;
    const middle = new Uint8Array([...startKey, 0x30 + this.random.int(10)]);
    if (endKey.length > 0 && !(compare(middle, endKey) < 0)) return "split skipped";
    const left = this.#region({ start: startKey, end: middle });
    this.tree.put({ ...region, meta: { ...region.meta, startKey: middle } });
    this.tree.put(left);
    return "split";
  }

  #merge(region: RegionInfo): string {
    if (region.meta.endKey.length === 0) return "merge skipped";
    const next = this.tree.getByKey(region.meta.endKey);
    if (next === null) return "merge skipped";
    // The target grows over the source; the put removes the source as overlapped.
    this.tree.put({ ...next, meta: { ...next.meta, startKey: region.meta.startKey } });
    return "merge";
  }
}

function compare(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return a[i]! - b[i]!;
  }
  return a.length - b.length;
}

Deno.test("store index: after random leader moves, peer changes, splits, merges and removals it equals a full walk", () => {
  const seed = seedFromEnv();
  console.log(`seed ${seed}`);
  const model = new Model(new SeededRandom(seed));
  const seen = new Map<string, number>();
  for (let step = 0; step < STEPS; step++) {
    const change = model.step();
    seen.set(change, (seen.get(change) ?? 0) + 1);
    assert.deepEqual(
      indexed(model.tree),
      walk(model.tree),
      `index differs from a walk after step ${step} (${change}), seed ${seed}`,
    );
  }
  console.log([...seen].map(([change, count]) => `${change}: ${count}`).join(", "));
  for (const change of ["leader moves", "peers change", "split", "merge", "region removed"]) {
    assert.ok((seen.get(change) ?? 0) > 20, `too few "${change}" steps (seed ${seed})`);
  }
});

Deno.test("store index: roles follow the leader first, then learner, else follower; one per store", () => {
  const peers: Peer[] = [
    { id: 1n, storeId: 1n, role: "Voter" },
    { id: 2n, storeId: 2n, role: "Learner" },
    { id: 3n, storeId: 3n, role: "DemotingVoter" },
    { id: 4n, storeId: 3n, role: "Learner" }, // a second peer on store 3: the first one counts
  ];
  const region: RegionInfo = {
    meta: {
      id: 9n,
      startKey: new Uint8Array(0),
      endKey: new Uint8Array(0),
      regionEpoch: { confVer: 1n, version: 1n },
      peers,
    },
    leader: peers[0]!,
    term: 1n,
    downPeers: [],
    pendingPeers: [],
    approximateSizeBytes: 0n,
    approximateKeys: 0n,
  };
  const expected: [bigint, StoreRole][] = [[1n, "leader"], [2n, "learner"], [3n, "follower"]];
  assert.deepEqual([...rolesOf(region)], expected);
  const tree = new RegionTree();
  tree.put(region);
  assert.equal(tree.byStore.get(3n)!.sizeMb, 1, "a region counts at least 1 MiB, once per store");
  tree.remove(9n);
  assert.deepEqual(tree.byStore.storeIds(), [], "a store with no region left is forgotten");
});
