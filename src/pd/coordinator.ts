/**
 * One scheduling round (PD's coordinator, its checkers and schedulers), pure: given the
 * cluster, the operator controller, the time and a random source, it ends operators that ran
 * over their time, buries drained Offline stores, and adds the operators the checkers and
 * schedulers propose, within the controller's limits. Order (first in line first):
 *
 * 1. Timeouts (`OperatorController.checkTimeouts`).
 * 2. The store checker: an Offline store holding no replica becomes Tombstone.
 * 3. The replica checker over every region, in key order.
 * 4. The merge checker over every region, in key order (a region that became a merge's target
 *    or has an operator is passed over).
 * 5. Balance-leader, then balance-region, each until it proposes nothing or has no room.
 *
 * Up → Disconnected → Down is not a step: it is read from the time of each store's last
 * heartbeat whenever a store is weighed (`PdCluster.liveness`).
 *
 * @module
 */
import { balanceLeader } from "./balance_leader.ts";
import { balanceRegion } from "./balance_region.ts";
import type { PdCluster } from "./cluster.ts";
import { checkMerge } from "./merge_checker.ts";
import type { Operator } from "./operator.ts";
import type { OperatorController, OperatorRequest } from "./operator_controller.ts";
import { checkReplicas } from "./replica_checker.ts";
import { type ScheduleContext, scheduleContext } from "./schedule_context.ts";
import type { RandomSource } from "./types.ts";

/** What a round did. */
export interface RoundResult {
  /** Operators added this round, in the order they were added. */
  added: Operator[];
  /** Operators ended this round by timeout. */
  timedOut: Operator[];
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
  const buried = buryDrainedStores(pd.cluster);
  const added: Operator[] = [];
  const offer = (request: OperatorRequest | null): boolean => {
    if (request === null) return false;
    const result = pd.controller.add(request, round.nowMs);
    if (typeof result === "string") return false;
    added.push(result);
    return true;
  };
  if (parts.replica) {
    const ctx = scheduleContext(pd, round);
    for (const region of pd.cluster.regions.all()) offer(checkReplicas(ctx, region));
  }
  if (parts.merge) {
    const ctx = scheduleContext(pd, round);
    for (const region of pd.cluster.regions.all()) {
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
  return { added, timedOut, buried };
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
