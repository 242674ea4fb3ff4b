/**
 * What one scheduling round sees: every store with its counts as they will be once the running
 * operators finish (PD's "operator influence", so a round never schedules on top of moves
 * already under way). Built fresh per scheduler step, pure, and cheap: the counts come from the
 * region tree's per-store index (`store_regions.ts`), so building one costs O(stores + running
 * operators), not O(regions). Schedulers find regions on a store with `candidatesOn`.
 *
 * @module
 */
import { PD_SCHEDULE_SAMPLE_REGIONS } from "../constants.ts";
import { assert } from "../util/assert.ts";
import { compareBytes } from "../util/bytes.ts";
import type { PdCluster } from "./cluster.ts";
import type { ScheduleConfig } from "./config.ts";
import type { OperatorController } from "./operator_controller.ts";
import type { StoreRole } from "./store_regions.ts";
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
}

/** Builds the round's view. */
export function scheduleContext(
  pd: { cluster: PdCluster; controller: OperatorController },
  round: { nowMs: number; random: RandomSource },
): ScheduleContext {
  const { cluster, controller } = pd;
  const index = cluster.regions.byStore;
  const stores = new Map<bigint, StoreView>();
  for (const info of cluster.stores({ excludeTombstone: true })) {
    const id = info.meta.id;
    const held = index.get(id);
    stores.set(id, {
      info,
      id,
      liveness: cluster.liveness(info, round.nowMs),
      regionCount: index.regionCount(id),
      regionSizeMb: held?.sizeMb ?? 0,
      leaderCount: held?.leaders.size ?? 0,
    });
  }
  for (const [storeId, delta] of controller.influence()) {
    const view = stores.get(storeId);
    if (view === undefined) continue;
    view.regionCount += delta.regionCount;
    view.regionSizeMb += delta.regionSizeMb;
    view.leaderCount += delta.leaderCount;
  }
  return { cluster, controller, config: cluster.config, ...round, stores };
}

/**
 * The regions in which `storeId` plays one of `roles`, for a scheduler to weigh: for each role,
 * all of them when the store has at most `max` (default `PD_SCHEDULE_SAMPLE_REGIONS`), else
 * `max` draws at random (the distinct ones, in the order drawn). When nothing was drawn they
 * come in key order, so below the bound a scheduler chooses as a walk of every region would.
 * A step thus costs O(max log max) whatever the number of regions.
 */
export function candidatesOn(
  ctx: ScheduleContext,
  on: { storeId: bigint; roles: readonly StoreRole[]; max?: number },
): RegionInfo[] {
  const held = ctx.cluster.regions.byStore.get(on.storeId);
  if (held === null) return [];
  const max = on.max ?? PD_SCHEDULE_SAMPLE_REGIONS;
  const ids = new Set<bigint>();
  let sampled = false;
  for (const role of on.roles) {
    const set = role === "leader"
      ? held.leaders
      : role === "follower"
      ? held.followers
      : held.learners;
    if (set.size <= max) {
      for (const id of set.values()) ids.add(id);
    } else {
      sampled = true;
      for (let draw = 0; draw < max; draw++) ids.add(set.pick(ctx.random));
    }
  }
  const regions: RegionInfo[] = [];
  for (const id of ids) {
    const region = ctx.cluster.regions.getById(id);
    assert(region !== null, `region ${id} is indexed on store ${on.storeId} but not in the tree`);
    regions.push(region);
  }
  // Key order makes a whole set's order the one a walk of the tree gives; a sample is in
  // random order already, and sorting it would be most of this function's cost.
  if (!sampled) regions.sort((a, b) => compareBytes(a.meta.startKey, b.meta.startKey));
  return regions;
}

/**
 * A uniformly chosen region in which `storeId` plays `role` and that `accept`s, or `null`. On a
 * store with at most `PD_SCHEDULE_SAMPLE_REGIONS` such regions it weighs them all (the choice a
 * walk of every region would make); on a larger one it draws at random up to that many times
 * and takes the first accepted (PD's schedulers likewise retry random picks a bounded number of
 * times), so a step costs O(1) when most regions qualify and O(sample) at worst.
 */
export function pickOn(
  ctx: ScheduleContext,
  on: { storeId: bigint; role: StoreRole; accept: (region: RegionInfo) => boolean },
): RegionInfo | null {
  const held = ctx.cluster.regions.byStore.get(on.storeId);
  if (held === null) return null;
  const set = on.role === "leader"
    ? held.leaders
    : on.role === "follower"
    ? held.followers
    : held.learners;
  if (set.size <= PD_SCHEDULE_SAMPLE_REGIONS) {
    const all = candidatesOn(ctx, { storeId: on.storeId, roles: [on.role] });
    return shuffled(all.filter(on.accept), ctx.random)[0] ?? null;
  }
  for (let draw = 0; draw < PD_SCHEDULE_SAMPLE_REGIONS; draw++) {
    const id = set.pick(ctx.random);
    const region = ctx.cluster.regions.getById(id);
    assert(region !== null, `region ${id} is indexed on store ${on.storeId} but not in the tree`);
    if (on.accept(region)) return region;
  }
  return null;
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
