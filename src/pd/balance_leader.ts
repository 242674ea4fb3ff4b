/**
 * Balance-leader (PD's `balance_leader.go`): moves leadership from the store with the most
 * leaders to one with the fewest, by transferring the leader of a region that has a voter on
 * both, until no two eligible stores differ by more than one leader.
 *
 * Why it converges without flapping: a transfer is made only when the source has at least two
 * leaders more than the target (counts include transfers under way). Each one lowers the sum of
 * squared leader counts by at least 2 (`(a-1)² + (b+1)² = a² + b² - 2(a-b) + 2`, with
 * `a - b >= 2`), and that sum cannot fall forever; a transfer back would need the opposite
 * difference, which the one just made cannot create.
 *
 * Eligible stores are Up and heard from (a leader must answer); regions must be healthy and
 * have no operator running. The regions weighed are the source's leaders from the per-store
 * index, all of them or bounded random draws on a store with many (`pickOn`), from the source's
 * leaders or the target's followers, whichever are fewer.
 *
 * @module
 */
import type { OperatorRequest } from "./operator_controller.ts";
import {
  canReceive,
  isHealthy,
  pickOn,
  type ScheduleContext,
  type StoreView,
} from "./schedule_context.ts";
import type { RegionInfo } from "./types.ts";

/** The least difference in leaders between source and target worth a transfer. */
export const LEADER_BALANCE_MIN_DIFFERENCE = 2;

/** One leader transfer that narrows the spread, or `null` when balanced (or out of room). */
export function balanceLeader(ctx: ScheduleContext): OperatorRequest | null {
  const stores = [...ctx.stores.values()].filter(canReceive);
  const bySpread = (a: StoreView, b: StoreView) =>
    a.leaderCount !== b.leaderCount ? a.leaderCount - b.leaderCount : (a.id < b.id ? -1 : 1);
  const ascending = [...stores].sort(bySpread);
  const descending = [...ascending].reverse();
  for (const source of descending) {
    for (const target of ascending) {
      if (source.leaderCount - target.leaderCount < LEADER_BALANCE_MIN_DIFFERENCE) break;
      const request = transferBetween(ctx, source, target);
      if (request !== null) return request;
    }
  }
  return null;
}

/**
 * A transfer from `source` to `target` of a region `source` leads and `target` holds a voter of,
 * uniformly chosen among those that qualify (or among those drawn, on large stores), or `null`.
 */
function transferBetween(
  ctx: ScheduleContext,
  source: StoreView,
  target: StoreView,
): OperatorRequest | null {
  const accept = (region: RegionInfo) =>
    region.leader?.storeId === source.id && isHealthy(region) &&
    region.meta.peers.some((peer) => peer.storeId === target.id && peer.role === "Voter") &&
    ctx.controller.hasRoom("leader", region.meta.id) &&
    ctx.controller.get(region.meta.id, ctx.nowMs)?.status !== "RUNNING";
  // Draw from the smaller side: the source's leaders, or the target's followers (PD's
  // transfer-leader-out and -in). A target holding few of the source's regions (a new store)
  // is then settled in a few draws instead of a full sample of misses.
  const index = ctx.cluster.regions.byStore;
  const led = index.get(source.id)?.leaders.size ?? 0;
  const followed = index.get(target.id)?.followers.size ?? 0;
  const side = followed < led
    ? { storeId: target.id, role: "follower" as const }
    : { storeId: source.id, role: "leader" as const };
  const region = pickOn(ctx, { ...side, accept });
  if (region === null) return null;
  return {
    region,
    desc: "balance-leader",
    kind: "leader",
    steps: [{ type: "TransferLeader", fromStoreId: source.id, toStoreId: target.id }],
  };
}
