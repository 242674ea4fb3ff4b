/**
 * One scheduling round (PD's coordinator, its checkers and schedulers), pure: given the
 * cluster, the operator controller, the time and a random source, it ends operators that ran
 * over their time, buries drained Offline stores, and adds the operators the checkers and
 * schedulers propose, within the controller's limits. Order (first in line first):
 *
 * 1. Timeouts (`OperatorController.checkTimeouts`).
 * 2. The store checker: an Offline store holding no replica becomes Tombstone.
 * 3. The replica checker over the round's regions to check (`regionsToCheck`).
 * 4. The merge checker over the same regions (a region that became a merge's target or has an
 *    operator is passed over).
 * 5. Balance-leader, then balance-region, each until it proposes nothing or has no room.
 *
 * The regions to check: every region in key order while the cluster has at most
 * `PD_PATROL_REGIONS_MIN`; past that, the regions heartbeats marked (`region_patrol.ts`), then
 * a bounded number of regions on each Down, Offline or unknown store (their replicas are to
 * be replaced, and the patrol alone could take a whole pass to reach them), then the patrol's
 * next slice. So a round costs O(slice + limits × sample), not O(limits × regions).
 *
 * Up → Disconnected → Down is not a step: it is read from the time of each store's last
 * heartbeat whenever a store is weighed (`PdCluster.liveness`).
 *
 * @module
 */
import { PD_PATROL_STORE_REGIONS_PER_ROUND } from "../constants.ts";
import { balanceLeader } from "./balance_leader.ts";
import { balanceRegion } from "./balance_region.ts";
import type { PdCluster } from "./cluster.ts";
import { checkMerge } from "./merge_checker.ts";
import type { Operator } from "./operator.ts";
import type { OperatorController, OperatorRequest } from "./operator_controller.ts";
import { checkReplicas } from "./replica_checker.ts";
import { candidatesOn, type ScheduleContext, scheduleContext } from "./schedule_context.ts";
import type { RandomSource, RegionInfo } from "./types.ts";

/** What a round did. */
export interface RoundResult {
  /** Operators added this round, in the order they were added. */
  added: Operator[];
  /** Operators ended this round by timeout. */
  timedOut: Operator[];
  /** Operators ended this round because a store they need is Down or Tombstone. */
  cancelled: Operator[];
  /** Stores turned Tombstone this round. */
  buried: bigint[];
}

/** Which parts of a round run (all by default); tests run one at a time. */
export interface RoundParts {
  replica?: boolean;
  merge?: boolean;
  balanceLeader?: boolean;
  balanceRegion?: boolean;
}

/** Runs one scheduling round. */
export function runScheduleRound(
  pd: { cluster: PdCluster; controller: OperatorController },
  round: { nowMs: number; random: RandomSource; parts?: RoundParts },
): RoundResult {
  const parts = {
    replica: true,
    merge: true,
    balanceLeader: true,
    balanceRegion: true,
    ...round.parts,
  };
  const timedOut = pd.controller.checkTimeouts(round.nowMs);
  const lost = new Set(
    pd.cluster.stores().filter((store) =>
      store.meta.state === "Tombstone" || pd.cluster.liveness(store, round.nowMs) === "Down"
    ).map((store) => store.meta.id),
  );
  const cancelled = pd.controller.cancelTowards(lost, round.nowMs);
  const buried = buryDrainedStores(pd.cluster);
  const added: Operator[] = [];
  const offer = (request: OperatorRequest | null): boolean => {
    if (request === null) return false;
    const result = pd.controller.add(request, round.nowMs);
    if (typeof result === "string") return false;
    added.push(result);
    return true;
  };
  const toCheck = parts.replica || parts.merge ? regionsToCheck(scheduleContext(pd, round)) : [];
  if (parts.replica) {
    const ctx = scheduleContext(pd, round);
    for (const region of toCheck) offer(checkReplicas(ctx, region));
  }
  if (parts.merge) {
    const ctx = scheduleContext(pd, round);
    for (const region of toCheck) {
      const proposal = checkMerge(ctx, region);
      if (typeof proposal === "string") continue;
      const result = pd.controller.addMerge(proposal, round.nowMs);
      if (typeof result !== "string") added.push(...result);
    }
  }
  if (parts.balanceLeader) {
    repeatWhileAdded(
      pd,
      round,
      (ctx) => offer(balanceLeader(ctx)),
      pd.cluster.config.leaderScheduleLimit,
    );
  }
  if (parts.balanceRegion) {
    repeatWhileAdded(
      pd,
      round,
      (ctx) => offer(balanceRegion(ctx)),
      pd.cluster.config.regionScheduleLimit,
    );
  }
  return { added, timedOut, cancelled, buried };
}

/** The regions the checkers look at this round, each once (see the module header). */
export function regionsToCheck(ctx: ScheduleContext): readonly RegionInfo[] {
  const tree = ctx.cluster.regions;
  const patrol = ctx.cluster.patrol;
  const slice = patrol.nextSlice(tree);
  if (slice.whole) return slice.regions;
  const out: RegionInfo[] = [];
  const seen = new Set<bigint>();
  const take = (regions: readonly RegionInfo[]) => {
    for (const region of regions) {
      if (seen.has(region.meta.id)) continue;
      seen.add(region.meta.id);
      out.push(region);
    }
  };
  take(patrol.takeSuspects(tree));
  for (const storeId of tree.byStore.storeIds().sort((a, b) => (a < b ? -1 : 1))) {
    const store = ctx.stores.get(storeId);
    const broken = store === undefined || store.liveness === "Down" ||
      store.info.meta.state === "Offline";
    if (!broken) continue;
    const max = PD_PATROL_STORE_REGIONS_PER_ROUND;
    take(candidatesOn(ctx, { storeId, roles: ["leader", "follower", "learner"], max }));
  }
  take(slice.regions);
  return out;
}

/** Runs `step` on a fresh view (so each operator's influence counts) until it adds nothing. */
function repeatWhileAdded(
  pd: { cluster: PdCluster; controller: OperatorController },
  round: { nowMs: number; random: RandomSource },
  step: (ctx: ScheduleContext) => boolean,
  maxTimes: number,
): void {
  for (let i = 0; i < maxTimes; i++) {
    if (!step(scheduleContext(pd, round))) return;
  }
}

/** The store checker: Offline stores with no replica left become Tombstone. */
function buryDrainedStores(cluster: PdCluster): bigint[] {
  const buried: bigint[] = [];
  for (const store of cluster.stores()) {
    if (store.meta.state !== "Offline" || cluster.regionCountOn(store.meta.id) > 0) continue;
    if (cluster.buryStore(store.meta.id) === null) buried.push(store.meta.id);
  }
  return buried;
}
