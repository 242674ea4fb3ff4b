/**
 * A simulated cluster of stores that obey PD, pure, for tests and the simulator: each region's
 * leader carries out the instruction PD gave it in its last heartbeat answer (a conf change
 * bumps `confVer`, a transfer moves the leader and bumps the term, a merge folds the source into
 * the target as TiKV's CommitMerge does, or rolls back when `failMerges` is set) and heartbeats
 * again; dead stores send nothing, and a region whose leader died elects another live voter.
 *
 * It models only what the schedulers need to be checked end to end: membership, leaders,
 * sizes and liveness, not data or Raft messages.
 *
 * @module
 */
import { assert } from "../util/assert.ts";
import { PdError } from "./errors.ts";
import { type HeartbeatInstruction, mergedRange } from "./operator.ts";
import type { PlacementDriver } from "./placement_driver.ts";
import type { Peer, RegionMeta, StoreStats } from "./types.ts";

/** A region as its replicas hold it. */
interface SimRegion {
  meta: RegionMeta;
  leaderStoreId: bigint;
  term: bigint;
  sizeBytes: bigint;
  keys: bigint;
  /** The answer to its last heartbeat, carried out on the next `step`. */
  instruction: HeartbeatInstruction | null;
}

const MIB = 1024n * 1024n;

function keyOf(n: number): Uint8Array {
  return n < 0 ? new Uint8Array(0) : new TextEncoder().encode(`r${String(n).padStart(6, "0")}`);
}

/**
 * A simulated store's heartbeat statistics: a 1 TiB disk half free, `regionCount` replicas,
 * idle (this harness and the cluster simulator's PD use the same).
 */
export function simStoreStats(regionCount: number): StoreStats {
  return {
    capacity: 1n << 40n,
    available: 1n << 39n,
    usedSize: 0n,
    regionCount,
    sendingSnapCount: 0,
    receivingSnapCount: 0,
    isBusy: false,
  };
}

/** Stores and regions that follow PD's instructions. */
export class SimCluster {
  readonly regions = new Map<bigint, SimRegion>();
  readonly dead = new Set<bigint>();
  /** When set, a merge is rolled back (TiKV's RollbackMerge) instead of committed. */
  failMerges = false;

  constructor(readonly pd: PlacementDriver) {}

  /**
   * Adds region `id` over keys [r<id>, r<id+1>) with a voter on each of `storeIds` (peer id
   * `id * 100 + store`), led from `leaderStoreId`, and sends its first heartbeat.
   */
  addRegion(
    region: {
      id: bigint;
      storeIds: bigint[];
      leaderStoreId: bigint;
      sizeMb: number;
      keys?: number;
    },
  ): PdError | null {
    const n = Number(region.id);
    const meta: RegionMeta = {
      id: region.id,
      startKey: keyOf(n),
      endKey: keyOf(n + 1),
      // Above the bootstrap region's version, so the new region replaces the part it covers.
      regionEpoch: { confVer: 1n, version: 10n },
      peers: region.storeIds.map((storeId) => ({
        id: region.id * 100n + storeId,
        storeId,
        role: "Voter",
      })),
    };
    const sim: SimRegion = {
      meta,
      leaderStoreId: region.leaderStoreId,
      term: 1n,
      sizeBytes: BigInt(region.sizeMb) * MIB,
      keys: BigInt(region.keys ?? 0),
      instruction: null,
    };
    this.regions.set(region.id, sim);
    return this.#heartbeat(sim);
  }

  /**
   * Splits region `regionId` in two as TiKV does (right-derive: the region keeps the right
   * half, a new one takes the left): ids from AskBatchSplit, both versions one up, the size and
   * keys halved, the split reported and both regions heartbeat. Returns the new region's id.
   */
  split(regionId: bigint): bigint | PdError {
    const region = this.regions.get(regionId);
    assert(region !== undefined, `no region ${regionId} to split`);
    const ids = this.pd.askBatchSplit({ region: region.meta, splitCount: 1 });
    if (ids instanceof PdError) return ids;
    const { newRegionId, newPeerIds } = ids[0]!;
    const meta = region.meta;
    const splitKey = new Uint8Array([...meta.startKey, 0x6d]); // "m": between start and end
    const regionEpoch = { ...meta.regionEpoch, version: meta.regionEpoch.version + 1n };
    const left: SimRegion = {
      ...region,
      meta: {
        id: newRegionId,
        startKey: meta.startKey,
        endKey: splitKey,
        regionEpoch,
        peers: meta.peers.map((peer, i) => ({ ...peer, id: newPeerIds[i]! })),
      },
      sizeBytes: region.sizeBytes / 2n,
      keys: region.keys / 2n,
      instruction: null,
    };
    region.meta = { ...meta, startKey: splitKey, regionEpoch };
    region.sizeBytes -= left.sizeBytes;
    region.keys -= left.keys;
    region.instruction = null;
    this.regions.set(newRegionId, left);
    const refused = this.pd.reportBatchSplit([left.meta, region.meta]) ??
      this.#heartbeat(left) ?? this.#heartbeat(region);
    return refused ?? newRegionId;
  }

  /** Every live store heartbeats, reporting its replica count. */
  heartbeatStores(): void {
    for (const store of this.pd.cluster.stores({ excludeTombstone: true })) {
      const id = store.meta.id;
      if (this.dead.has(id)) continue;
      let regionCount = 0;
      for (const region of this.regions.values()) {
        if (region.meta.peers.some((peer) => peer.storeId === id)) regionCount++;
      }
      const result = this.pd.storeHeartbeat(id, simStoreStats(regionCount));
      assert(!(result instanceof PdError), `store ${id} heartbeat refused: ${String(result)}`);
    }
  }

  /**
   * Each region with an instruction carries it out and heartbeats; every other region with a
   * live leader heartbeats too. Returns what was carried out, one line each.
   */
  step(): string[] {
    const lines: string[] = [];
    for (
      const region of [...this.regions.values()].sort((a, b) => (a.meta.id < b.meta.id ? -1 : 1))
    ) {
      this.#electIfLeaderDead(region);
      if (this.dead.has(region.leaderStoreId)) continue;
      const done = region.instruction === null ? null : this.#apply(region, region.instruction);
      if (done !== null) lines.push(`region ${region.meta.id}: ${done}`);
      if (!this.regions.has(region.meta.id)) continue; // merged away
      const refused = this.#heartbeat(region);
      if (refused !== null) {
        lines.push(`region ${region.meta.id}: heartbeat refused: ${refused.message}`);
      }
    }
    return lines;
  }

  #electIfLeaderDead(region: SimRegion): void {
    if (!this.dead.has(region.leaderStoreId)) return;
    const heir = region.meta.peers.find((peer) =>
      peer.role === "Voter" && !this.dead.has(peer.storeId)
    );
    if (heir === undefined) return;
    region.leaderStoreId = heir.storeId;
    region.term++;
  }

  #apply(region: SimRegion, instruction: HeartbeatInstruction): string | null {
    region.instruction = null;
    const meta = region.meta;
    if (instruction.transferLeader !== undefined) {
      const target = instruction.transferLeader.peer.storeId;
      if (this.dead.has(target)) return null;
      region.leaderStoreId = target;
      region.term++;
      return `leader to store ${target}`;
    }
    if (instruction.merge !== undefined) return this.#merge(region, instruction.merge.target.id);
    const change = instruction.changePeer;
    if (change === undefined) return null;
    const peer: Peer = change.peer;
    let peers = meta.peers.filter((p) => p.storeId !== peer.storeId);
    if (change.changeType === "AddLearnerNode") peers.push({ ...peer, role: "Learner" });
    else if (change.changeType === "AddNode") peers.push({ ...peer, role: "Voter" });
    else peers = peers.filter((p) => p.id !== peer.id);
    peers.sort((a, b) => (a.storeId < b.storeId ? -1 : 1));
    region.meta = {
      ...meta,
      peers,
      regionEpoch: { ...meta.regionEpoch, confVer: meta.regionEpoch.confVer + 1n },
    };
    return `${change.changeType} peer ${peer.id} on store ${peer.storeId}`;
  }

  /**
   * TiKV's merge, at once: PrepareMerge on the source (version and conf_ver one up), then
   * CommitMerge on the target (its range grows over the source's, its version above both) and
   * the source is gone; or, with `failMerges`, RollbackMerge (the source's version one up more).
   */
  #merge(source: SimRegion, targetId: bigint): string {
    const target = this.regions.get(targetId);
    const stores = (r: SimRegion) => r.meta.peers.map((p) => p.storeId).sort().join(",");
    if (target === undefined || stores(target) !== stores(source)) {
      return `merge into region ${targetId} refused`;
    }
    const epoch = source.meta.regionEpoch;
    source.meta = {
      ...source.meta,
      regionEpoch: { confVer: epoch.confVer + 1n, version: epoch.version + 1n },
    };
    if (this.failMerges) {
      const prepared = source.meta.regionEpoch;
      source.meta = {
        ...source.meta,
        regionEpoch: { ...prepared, version: prepared.version + 1n },
      };
      return `merge into region ${targetId} rolled back`;
    }
    const sourceVersion = source.meta.regionEpoch.version;
    const targetVersion = target.meta.regionEpoch.version;
    const version = (sourceVersion > targetVersion ? sourceVersion : targetVersion) + 1n;
    target.meta = {
      ...target.meta,
      ...mergedRange(source.meta, target.meta),
      regionEpoch: { ...target.meta.regionEpoch, version },
    };
    target.sizeBytes += source.sizeBytes;
    target.keys += source.keys;
    this.regions.delete(source.meta.id);
    return `merged into region ${targetId}`;
  }

  #heartbeat(region: SimRegion): PdError | null {
    const leader = region.meta.peers.find((peer) => peer.storeId === region.leaderStoreId);
    assert(leader !== undefined, `region ${region.meta.id} has no peer on its leader's store`);
    const answer = this.pd.regionHeartbeat({
      region: region.meta,
      leader,
      term: region.term,
      downPeers: region.meta.peers
        .filter((peer) => this.dead.has(peer.storeId))
        .map((peer) => ({ peer, downSeconds: 60n })),
      approximateSize: region.sizeBytes,
      approximateKeys: region.keys,
    });
    if (answer instanceof PdError) return answer;
    region.instruction = answer;
    return null;
  }
}
