/**
 * Balance-region (PD's `balance_region.go`): moves replicas from the store with the highest
 * region score to one with the lowest, so a new store fills up and the stores carry alike.
 *
 * The region score is the sum of the store's replicas' sizes in MiB, each region counting at
 * least 1 MiB: by size, and by count when sizes are alike (PD scores by size too).
 *
 * Why it converges without flapping: a region of size `s` moves from a store of score `a` to
 * one of score `b` only when `a - b >= 2s` (scores include moves under way). Each move lowers
 * the sum of squared scores by `2s(a - b) - 2s² >= 2s²`, a positive amount, and that sum cannot
 * fall forever; after the move the target is still at most the source, so the move never pays
 * back. With equal sizes it stops once no two stores differ by two regions or more.
 *
 * Sources and targets are Up and heard from; a region moves only when it is healthy, has all
 * its voters and no operator running, and the target does not hold it. Followers are preferred
 * over leaders (no transfer needed), larger regions over smaller ones (fewer moves, and small
 * regions are not shuffled about); ties are broken at random. The regions weighed come from the
 * per-store index: all of the source's, or a bounded random sample of its followers and of its
 * leaders on a store with many (`candidatesOn`; PD draws random follower, then leader regions).
 *
 * @module
 */
import { PdError } from "./errors.ts";
import { movePeerSteps } from "./operator.ts";
import { type OperatorRequest, regionSizeMb } from "./operator_controller.ts";
import {
  candidatesOn,
  canReceive,
  isHealthy,
  type ScheduleContext,
  shuffled,
  type StoreView,
  votersOf,
} from "./schedule_context.ts";
import type { RegionInfo } from "./types.ts";

/** One move that narrows the spread of region scores, or `null`. */
export function balanceRegion(ctx: ScheduleContext): OperatorRequest | null {
  const stores = [...ctx.stores.values()].filter(canReceive);
  const byScore = (a: StoreView, b: StoreView) =>
    a.regionSizeMb !== b.regionSizeMb ? a.regionSizeMb - b.regionSizeMb : (a.id < b.id ? -1 : 1);
  const ascending = [...stores].sort(byScore);
  const descending = [...ascending].reverse();
  const lowest = ascending[0];
  for (const source of descending) {
    // A source that could give no region (each counts at least 1 MiB, so it must lead the
    // lowest score by 2) or has no room is passed over before its regions are drawn.
    if (lowest === undefined || source.regionSizeMb - lowest.regionSizeMb < 2) break;
    if (!ctx.controller.storeHasRoom(source.id)) continue;
    const candidates = movableRegions(ctx, source);
    for (const region of candidates) {
      const size = regionSizeMb(region);
      for (const target of ascending) {
        if (source.regionSizeMb - target.regionSizeMb < 2 * size) break;
        if (region.meta.peers.some((peer) => peer.storeId === target.id)) continue;
        if (!ctx.controller.storeHasRoom(target.id) || !ctx.controller.storeHasRoom(source.id)) {
          continue;
        }
        return moveRequest(ctx, region, { fromStoreId: source.id, toStoreId: target.id });
      }
    }
  }
  return null;
}

/** Regions on `source` that may move, followers first, each group in random order. */
function movableRegions(ctx: ScheduleContext, source: StoreView): RegionInfo[] {
  const held = candidatesOn(ctx, { storeId: source.id, roles: ["follower", "leader"] });
  const movable = held.filter((region) =>
    isHealthy(region) && region.meta.peers.length === ctx.config.maxReplicas &&
    votersOf(region).length === ctx.config.maxReplicas &&
    ctx.controller.hasRoom("region", region.meta.id) &&
    ctx.controller.get(region.meta.id, ctx.nowMs)?.status !== "RUNNING"
  );
  // Largest first (a stable sort keeps the random order among equal sizes): the biggest move
  // that still narrows the spread, so the spread closes in few moves and small regions are
  // not shuffled around to even out the last megabytes.
  const bySize = (regions: RegionInfo[]) =>
    shuffled(regions, ctx.random)
      .map((region) => ({ region, sizeMb: regionSizeMb(region) }))
      .sort((a, b) => b.sizeMb - a.sizeMb)
      .map((sized) => sized.region);
  const followers = movable.filter((region) => region.leader?.storeId !== source.id);
  const leaders = movable.filter((region) => region.leader?.storeId === source.id);
  return [...bySize(followers), ...bySize(leaders)];
}

function moveRequest(
  ctx: ScheduleContext,
  region: RegionInfo,
  move: { fromStoreId: bigint; toStoreId: bigint },
): OperatorRequest | null {
  const newPeerId = ctx.cluster.ids.alloc(1);
  if (newPeerId instanceof PdError) throw new Error(`balance-region: ${newPeerId.message}`);
  const steps = movePeerSteps(region, { ...move, newPeerId });
  return steps === null ? null : { region, desc: "balance-region", kind: "region", steps };
}
