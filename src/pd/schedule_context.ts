/**
 * What one scheduling round sees: every store with its counts as they will be once the running
 * operators finish (PD's "operator influence", so a round never schedules on top of moves
 * already under way), and the regions on each store. Built fresh per round; pure.
 *
 * @module
 */
import type { PdCluster } from "./cluster.ts";
import type { ScheduleConfig } from "./config.ts";
import { type OperatorController, regionSizeMb } from "./operator_controller.ts";
import type { Liveness, RandomSource, RegionInfo, StoreInfo } from "./types.ts";

/** A store as the schedulers weigh it. */
export interface StoreView {
  info: StoreInfo;
  id: bigint;
  liveness: Liveness;
  /** Replicas (any role), with the running operators' effect. */
  regionCount: number;
  /** Sum of its replicas' sizes in MiB, with the running operators' effect: the region score. */
  regionSizeMb: number;
  /** Leaders, with the running operators' effect: the leader score. */
  leaderCount: number;
}

/** One scheduling round's view of the cluster. */
export interface ScheduleContext {
  cluster: PdCluster;
  controller: OperatorController;
  config: ScheduleConfig;
  nowMs: number;
  random: RandomSource;
  /** Non-Tombstone stores by id. */
  stores: Map<bigint, StoreView>;
  /** Regions with a replica on each store. */
  regionsOn: Map<bigint, RegionInfo[]>;
}

/** Builds the round's view. */
export function scheduleContext(
  pd: { cluster: PdCluster; controller: OperatorController },
  round: { nowMs: number; random: RandomSource },
): ScheduleContext {
  const { cluster, controller } = pd;
  const stores = new Map<bigint, StoreView>();
  const regionsOn = new Map<bigint, RegionInfo[]>();
  for (const info of cluster.stores({ excludeTombstone: true })) {
    const id = info.meta.id;
    const liveness = cluster.liveness(info, round.nowMs);
    stores.set(id, { info, id, liveness, regionCount: 0, regionSizeMb: 0, leaderCount: 0 });
    regionsOn.set(id, []);
  }
  for (const region of cluster.regions.all()) {
    for (const peer of region.meta.peers) {
      const view = stores.get(peer.storeId);
      if (view === undefined) continue;
      view.regionCount++;
      view.regionSizeMb += regionSizeMb(region);
      if (region.leader?.storeId === peer.storeId) view.leaderCount++;
      regionsOn.get(peer.storeId)!.push(region);
    }
  }
  for (const [storeId, delta] of controller.influence()) {
    const view = stores.get(storeId);
    if (view === undefined) continue;
    view.regionCount += delta.regionCount;
    view.regionSizeMb += delta.regionSizeMb;
    view.leaderCount += delta.leaderCount;
  }
  return { cluster, controller, config: cluster.config, ...round, stores, regionsOn };
}

/** Whether a store may take a new replica or leadership: Up, heard from, not busy. */
export function canReceive(store: StoreView): boolean {
  return store.info.meta.state === "Up" && store.liveness === "Up" &&
    !(store.info.stats?.isBusy ?? false);
}

/** Whether a region is quiet enough to balance: a leader, no pending or down peer. */
export function isHealthy(region: RegionInfo): boolean {
  return region.leader !== null && region.pendingPeers.length === 0 &&
    region.downPeers.length === 0;
}

/** The region's voters (incoming voters count as voters, as Raft counts them). */
export function votersOf(region: RegionInfo) {
  return region.meta.peers.filter((p) => p.role === "Voter" || p.role === "IncomingVoter");
}

/** Uniform shuffle (Fisher–Yates) with the round's random source; a new array. */
export function shuffled<T>(items: readonly T[], random: RandomSource): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = random.int(i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
