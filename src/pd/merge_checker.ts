/**
 * The merge checker (PD's `merge_checker.go`): a small region merges into an adjacent one. For
 * one region it proposes at most one merge (two operators, `OperatorController.addMerge`):
 *
 * 1. Nothing merges while merging is off (`max-merge-region-size` or `merge-schedule-limit`
 *    0), in the first `split-merge-interval` after PD opened (it does not know which regions
 *    split lately; PD waits the same), or while `merge-schedule-limit` merge operators run.
 * 2. The source: no operator on it, not split within `split-merge-interval`
 *    (`split_records.ts`), at most `max-merge-region-size` MiB and `max-merge-region-keys` keys,
 *    and sound: a leader, no down or pending peer, exactly `max-replicas` peers, all voters, on
 *    stores heard from (PD's `IsRegionHealthy` and `IsRegionReplicated`).
 * 3. The target: the next region by key (its start is the source's end) or, unless
 *    `enable-one-way-merge`, the previous one, whichever qualifies and is smaller (the next one
 *    on a tie): no operator, not split lately, sound as in 2, and each of its stores the source
 *    lacks can take a replica (PD refuses a target with a peer on a store being removed).
 * 4. The merged region must not be split again at once (PD's rules, against TiKV's default
 *    split thresholds, which Basalt's PD takes for the stores'): the target at most
 *    max(`PD_MERGE_TARGET_MAX_SIZE_MB`, `PD_MERGE_TARGET_MAX_SIZE_FACTOR` × region-max-size)
 *    MiB; and when the sum reaches region-max-size (or -keys), the remainder after splitting at
 *    region-split-size (or -keys) must not itself be small enough to merge.
 * 5. TiKV merges replicas on the same stores only: when the source's stores differ from the
 *    target's, its operator first moves its replicas there (PD's `matchPeerSteps`: add a
 *    learner, promote it, move leadership away, remove the old one), then merges.
 *
 * Hot-region and key-type (table) rules of PD do not apply: Basalt has neither.
 *
 * @module
 */
import {
  DEFAULT_REGION_MAX_KEYS,
  DEFAULT_REGION_MAX_SIZE_BYTES,
  DEFAULT_REGION_SPLIT_KEYS,
  DEFAULT_REGION_SPLIT_SIZE_BYTES,
  PD_MERGE_TARGET_MAX_SIZE_FACTOR,
  PD_MERGE_TARGET_MAX_SIZE_MB,
  PD_OPERATOR_MERGE_STEP_TIMEOUT_MS,
} from "../constants.ts";
import { assert } from "../util/assert.ts";
import { PdError } from "./errors.ts";
import { movePeerSteps, type OpStep } from "./operator.ts";
import { type MergeRequest, regionSizeMb } from "./operator_controller.ts";
import { canReceive, type ScheduleContext } from "./schedule_context.ts";
import type { RegionInfo } from "./types.ts";

const MIB = 1024 * 1024;
const REGION_MAX_SIZE_MB = DEFAULT_REGION_MAX_SIZE_BYTES / MIB;
const REGION_SPLIT_SIZE_MB = DEFAULT_REGION_SPLIT_SIZE_BYTES / MIB;
/** PD's `maxTargetRegionSize` rule, in MiB. */
const TARGET_MAX_SIZE_MB = Math.max(
  PD_MERGE_TARGET_MAX_SIZE_MB,
  PD_MERGE_TARGET_MAX_SIZE_FACTOR * REGION_MAX_SIZE_MB,
);

function keysOf(region: RegionInfo): number {
  return Number(region.approximateKeys);
}

/** Why `region` may not take part in a merge now (rule 2's checks common to both sides), or null. */
function unsound(
  ctx: ScheduleContext,
  region: RegionInfo,
  options: { ignoreRecentSplit?: boolean } = {},
): string | null {
  const id = region.meta.id;
  if (ctx.controller.get(id, ctx.nowMs)?.status === "RUNNING") {
    return `region ${id} has an operator running`;
  }
  const at = { nowMs: ctx.nowMs, intervalMs: ctx.config.splitMergeIntervalMs };
  if (options.ignoreRecentSplit !== true && ctx.cluster.recentSplits.recentlySplit(id, at)) {
    return `region ${id} split less than split-merge-interval ago`;
  }
  if (region.leader === null) return `region ${id} has no leader known yet`;
  if (region.downPeers.length > 0 || region.pendingPeers.length > 0) {
    return `region ${id} has down or pending peers`;
  }
  const peers = region.meta.peers;
  if (peers.length !== ctx.config.maxReplicas || peers.some((peer) => peer.role !== "Voter")) {
    return `region ${id} has ${peers.length} peers, not ${ctx.config.maxReplicas} voters`;
  }
  for (const peer of peers) {
    if (ctx.stores.get(peer.storeId)?.liveness !== "Up") {
      return `region ${id}'s store ${peer.storeId} is not up`;
    }
  }
  return null;
}

/** Why `adjacent` cannot be `source`'s target (rule 3), or null. */
function targetProblem(
  ctx: ScheduleContext,
  source: RegionInfo,
  adjacent: RegionInfo | null,
): string | null {
  if (adjacent === null) return "none";
  const problem = unsound(ctx, adjacent);
  if (problem !== null) return problem;
  const held = new Set(source.meta.peers.map((peer) => peer.storeId));
  for (const peer of adjacent.meta.peers) {
    const store = ctx.stores.get(peer.storeId);
    if (!held.has(peer.storeId) && (store === undefined || !canReceive(store))) {
      return `region ${adjacent.meta.id}'s store ${peer.storeId} cannot take a replica`;
    }
  }
  return null;
}

/** Why merging `source` into `target` would make a region split again at once (rule 4). */
function mergedTooLarge(ctx: ScheduleContext, source: RegionInfo, target: RegionInfo) {
  const targetMb = regionSizeMb(target);
  if (targetMb > TARGET_MAX_SIZE_MB) {
    return `region ${target.meta.id} is too large a target: ${targetMb} MiB > ${TARGET_MAX_SIZE_MB}`;
  }
  const sizeMb = targetMb + regionSizeMb(source);
  const sizeRest = sizeMb % REGION_SPLIT_SIZE_MB;
  if (
    sizeMb >= REGION_MAX_SIZE_MB && sizeRest !== 0 && sizeRest <= ctx.config.maxMergeRegionSizeMb
  ) {
    return `merged, ${sizeMb} MiB would split leaving ${sizeRest} MiB to merge again`;
  }
  const keys = keysOf(target) + keysOf(source);
  const keysRest = keys % DEFAULT_REGION_SPLIT_KEYS;
  if (
    keys >= DEFAULT_REGION_MAX_KEYS && keysRest !== 0 && keysRest <= ctx.config.maxMergeRegionKeys
  ) {
    return `merged, ${keys} keys would split leaving ${keysRest} keys to merge again`;
  }
  return null;
}

/**
 * The merge checker's proposal for `region` as the source (module header), or why there is none.
 */
export function checkMerge(ctx: ScheduleContext, region: RegionInfo): MergeRequest | string {
  const config = ctx.config;
  if (config.maxMergeRegionSizeMb === 0 || config.mergeScheduleLimit === 0) {
    return "merge is off (max-merge-region-size or merge-schedule-limit is 0)";
  }
  if (ctx.nowMs - ctx.cluster.openedAtMs < config.splitMergeIntervalMs) {
    return "PD opened less than split-merge-interval ago";
  }
  const id = region.meta.id;
  if (!ctx.controller.hasRoom("merge", id)) return `no room for a merge of region ${id}`;
  const sizeMb = regionSizeMb(region);
  if (sizeMb > config.maxMergeRegionSizeMb || keysOf(region) > config.maxMergeRegionKeys) {
    return `region ${id} is not small: ${sizeMb} MiB, ${keysOf(region)} keys`;
  }
  const problem = unsound(ctx, region);
  if (problem !== null) return problem;
  const next = region.meta.endKey.length === 0
    ? null
    : ctx.cluster.regions.getByKey(region.meta.endKey);
  const prev = config.enableOneWayMerge ? null : ctx.cluster.regions.getPrev(region.meta.startKey);
  const nextProblem = targetProblem(ctx, region, next);
  const prevProblem = config.enableOneWayMerge ? "one-way merge" : targetProblem(ctx, region, prev);
  let target = nextProblem === null ? next : null;
  if (prevProblem === null && (target === null || regionSizeMb(prev!) < regionSizeMb(target))) {
    target = prev;
  }
  if (target === null) {
    return `region ${id} has no target: next: ${nextProblem}; prev: ${prevProblem}`;
  }
  const tooLarge = mergedTooLarge(ctx, region, target);
  if (tooLarge !== null) return tooLarge;
  const steps = alignmentSteps(ctx, region, target);
  if (typeof steps === "string") return steps;
  steps.push({
    type: "MergeRegion",
    source: region.meta,
    target: target.meta,
    passive: false,
    timeoutMs: PD_OPERATOR_MERGE_STEP_TIMEOUT_MS,
  });
  return { source: { region, desc: "merge-region", kind: "merge", steps }, target };
}

/**
 * An operator's merge of `source` into `target` (PD's `operator add merge-region`): the regions
 * must be neighbours, sound (as for the checker: a leader known, `max-replicas` voters, every
 * store up, no operator running), and their replicas alignable; sizes, the split-merge interval
 * and merge-schedule-limit's count are not weighed (an operator asked for by hand is meant).
 */
export function adminMerge(
  ctx: ScheduleContext,
  source: RegionInfo,
  target: RegionInfo,
): MergeRequest | string {
  const s = source.meta;
  const t = target.meta;
  if (s.id === t.id) return `region ${s.id} cannot merge into itself`;
  const sameKey = (a: Uint8Array, b: Uint8Array) =>
    a.length === b.length && a.every((byte, i) => byte === b[i]);
  const next = s.endKey.length > 0 && sameKey(s.endKey, t.startKey);
  const prev = t.endKey.length > 0 && sameKey(t.endKey, s.startKey);
  if (!next && !prev) return `regions ${s.id} and ${t.id} are not neighbours`;
  for (const region of [source, target]) {
    const problem = unsound(ctx, region, { ignoreRecentSplit: true });
    if (problem !== null) return problem;
  }
  const steps = alignmentSteps(ctx, source, target);
  if (typeof steps === "string") return steps;
  steps.push({
    type: "MergeRegion",
    source: s,
    target: t,
    passive: false,
    timeoutMs: PD_OPERATOR_MERGE_STEP_TIMEOUT_MS,
  });
  return { source: { region: source, desc: "admin-merge-region", kind: "merge", steps }, target };
}

/**
 * Rule 5: steps that move `source`'s replicas onto the stores of `target`'s it lacks, one store
 * for one, each move planned on the region as the moves before it leave it.
 */
function alignmentSteps(
  ctx: ScheduleContext,
  source: RegionInfo,
  target: RegionInfo,
): OpStep[] | string {
  const byId = (a: bigint, b: bigint) => (a < b ? -1 : 1);
  const sourceStores = new Set(source.meta.peers.map((peer) => peer.storeId));
  const targetStores = new Set(target.meta.peers.map((peer) => peer.storeId));
  const from = [...sourceStores].filter((id) => !targetStores.has(id)).sort(byId);
  const to = [...targetStores].filter((id) => !sourceStores.has(id)).sort(byId);
  assert(from.length === to.length, "both regions of a merge have max-replicas voters", {
    source: source.meta.id,
    target: target.meta.id,
  });
  const steps: OpStep[] = [];
  let view = source;
  for (let i = 0; i < from.length; i++) {
    const toStoreId = to[i]!;
    if (!ctx.controller.storeHasRoom(toStoreId)) return `store ${toStoreId} has no room`;
    const newPeerId = ctx.cluster.ids.alloc(1);
    if (newPeerId instanceof PdError) throw new Error(`merge checker: ${newPeerId.message}`);
    const move = movePeerSteps(view, { fromStoreId: from[i]!, toStoreId, newPeerId });
    if (move === null) {
      return `cannot move region ${source.meta.id}'s replica to store ${toStoreId}`;
    }
    steps.push(...move);
    view = afterSteps(view, move);
  }
  return steps;
}

/** `region` as it will be once `steps` (membership and leadership steps) are carried out. */
function afterSteps(region: RegionInfo, steps: readonly OpStep[]): RegionInfo {
  let peers = [...region.meta.peers];
  let leader = region.leader;
  for (const step of steps) {
    if (step.type === "AddLearner") {
      peers.push({ id: step.peerId, storeId: step.storeId, role: "Learner" });
    } else if (step.type === "PromoteLearner") {
      peers = peers.map((peer) => (peer.id === step.peerId ? { ...peer, role: "Voter" } : peer));
    } else if (step.type === "RemovePeer") {
      peers = peers.filter((peer) => peer.id !== step.peerId);
    } else if (step.type === "TransferLeader") {
      leader = peers.find((peer) => peer.storeId === step.toStoreId) ?? leader;
    }
  }
  return { ...region, meta: { ...region.meta, peers }, leader };
}
