/**
 * The replica checker (PD's `replica_checker.go`): keeps every region at `maxReplicas` voters
 * on live stores. For one region it proposes at most one operator, the first that applies:
 *
 * 1. A replica on a Down store (silent for `maxStoreDownTimeMs`) is replaced: a new replica on
 *    the best store (add learner, promote), then the dead one removed. `replace-down-replica`.
 * 2. A replica on an Offline store (`ctl store delete`) is replaced the same way, so the store
 *    drains. `replace-offline-replica`. When the region has a voter to spare, or the replica
 *    is a learner, it is only removed. When the region already holds a caught-up learner on an
 *    Up store (left by an operator a split, merge or timeout ended after its learner was
 *    added), that learner is promoted in the broken voter's place and the broken one removed:
 *    the best store is usually the one holding it, so a new replica could never be placed (PD
 *    runs its learner checker, which promotes every learner, before the replica checker).
 *    Rules 1 and 2 displace a balance operator.
 * 3. With no operator running on the region: a learner left behind (an operator that timed
 *    out) is promoted when voters are missing, else removed; too few voters get one more on
 *    the best store (`make-up-replica`); too many lose the worst (`remove-extra-replica`).
 *
 * The best store for a new replica: Up, heard from, not busy, not holding the region, with room
 * for an operator; the least loaded by region score, then count, then id. The worst replica:
 * one on a store not heard from, else on the most loaded store.
 *
 * @module
 */
import { PdError } from "./errors.ts";
import { addVoterSteps, movePeerSteps, removePeerSteps } from "./operator.ts";
import type { OperatorRequest } from "./operator_controller.ts";
import { canReceive, type ScheduleContext, type StoreView, votersOf } from "./schedule_context.ts";
import type { Peer, RegionInfo } from "./types.ts";

function byLoad(a: StoreView, b: StoreView): number {
  if (a.regionSizeMb !== b.regionSizeMb) return a.regionSizeMb - b.regionSizeMb;
  if (a.regionCount !== b.regionCount) return a.regionCount - b.regionCount;
  return a.id < b.id ? -1 : 1;
}

/** The best store to hold a new replica of `region`, or `null`. */
export function bestTarget(ctx: ScheduleContext, region: RegionInfo): StoreView | null {
  const holding = new Set(region.meta.peers.map((peer) => peer.storeId));
  const candidates = [...ctx.stores.values()].filter((store) =>
    canReceive(store) && !holding.has(store.id) && ctx.controller.storeHasRoom(store.id)
  );
  return candidates.sort(byLoad)[0] ?? null;
}

function newPeerId(ctx: ScheduleContext): bigint {
  const id = ctx.cluster.ids.alloc(1);
  if (id instanceof PdError) throw new Error(`replica checker: ${id.message}`);
  return id;
}

/** Rule 1 and 2: the first replica on a Down, Offline or unknown store. */
function replicaToReplace(ctx: ScheduleContext, region: RegionInfo): [Peer, string] | null {
  for (const peer of region.meta.peers) {
    const store = ctx.stores.get(peer.storeId);
    if (store === undefined || store.liveness === "Down") return [peer, "replace-down-replica"];
  }
  for (const peer of region.meta.peers) {
    if (ctx.stores.get(peer.storeId)?.info.meta.state === "Offline") {
      return [peer, "replace-offline-replica"];
    }
  }
  return null;
}

/**
 * A learner of `region` that can take a broken voter's place at once: on an Up store that is
 * not Offline, and caught up (not pending a snapshot), so promoting it keeps a live quorum.
 */
function readyLearner(ctx: ScheduleContext, region: RegionInfo): Peer | null {
  const pending = new Set(region.pendingPeers.map((peer) => peer.id));
  const learner = region.meta.peers.find((peer) => {
    const store = ctx.stores.get(peer.storeId);
    return peer.role === "Learner" && !pending.has(peer.id) && store !== undefined &&
      store.liveness === "Up" && store.info.meta.state === "Up";
  });
  return learner ?? null;
}

function replace(ctx: ScheduleContext, region: RegionInfo, peer: Peer, desc: string) {
  // With a voter to spare, the broken replica just goes (PD's `fixPeer`).
  if (peer.role === "Learner" || votersOf(region).length > ctx.config.maxReplicas) {
    const steps = removePeerSteps(region, peer.storeId);
    return steps === null ? null : { region, desc, kind: "replica" as const, steps };
  }
  const heir = readyLearner(ctx, region);
  if (heir !== null) {
    const removal = removePeerSteps(region, peer.storeId);
    if (removal === null) return null;
    const promote = { type: "PromoteLearner" as const, storeId: heir.storeId, peerId: heir.id };
    return { region, desc, kind: "replica" as const, steps: [promote, ...removal] };
  }
  const target = bestTarget(ctx, region);
  if (target === null) return null;
  const steps = movePeerSteps(region, {
    fromStoreId: peer.storeId,
    toStoreId: target.id,
    newPeerId: newPeerId(ctx),
  });
  return steps === null ? null : { region, desc, kind: "replica" as const, steps };
}

/** The replica to drop from a region with too many voters (see module header). */
function worstVoter(ctx: ScheduleContext, region: RegionInfo): Peer | null {
  const ranked = votersOf(region)
    .filter((peer) => peer.storeId !== region.leader?.storeId || votersOf(region).length > 1)
    .map((peer) => ({ peer, store: ctx.stores.get(peer.storeId) }))
    .sort((a, b) => {
      const aLost = a.store === undefined || a.store.liveness !== "Up" ? 1 : 0;
      const bLost = b.store === undefined || b.store.liveness !== "Up" ? 1 : 0;
      if (aLost !== bLost) return bLost - aLost;
      if (a.store === undefined || b.store === undefined) return 0;
      return byLoad(b.store, a.store);
    });
  return ranked[0]?.peer ?? null;
}

/** Rule 3: learners, missing and extra voters, on a region with no operator running. */
function checkCounts(ctx: ScheduleContext, region: RegionInfo): OperatorRequest | null {
  const voters = votersOf(region).length;
  const max = ctx.config.maxReplicas;
  const learner = region.meta.peers.find((peer) => peer.role === "Learner");
  if (learner !== undefined) {
    const steps = voters < max
      ? [{ type: "PromoteLearner" as const, storeId: learner.storeId, peerId: learner.id }]
      : removePeerSteps(region, learner.storeId);
    const desc = voters < max ? "promote-orphan-learner" : "remove-orphan-learner";
    return steps === null ? null : { region, desc, kind: "replica", steps };
  }
  if (voters < max) {
    const target = bestTarget(ctx, region);
    if (target === null) return null;
    const steps = addVoterSteps(target.id, newPeerId(ctx));
    return { region, desc: "make-up-replica", kind: "replica", steps };
  }
  if (voters > max) {
    const worst = worstVoter(ctx, region);
    const steps = worst === null ? null : removePeerSteps(region, worst.storeId);
    return steps === null ? null : { region, desc: "remove-extra-replica", kind: "replica", steps };
  }
  return null;
}

/** The replica checker's operator for `region`, or `null` when it is as it should be. */
export function checkReplicas(ctx: ScheduleContext, region: RegionInfo): OperatorRequest | null {
  if (region.leader === null) return null; // no one to instruct until a heartbeat comes
  if (!ctx.controller.hasRoom("replica", region.meta.id)) return null;
  const running = ctx.controller.get(region.meta.id, ctx.nowMs);
  const idle = running === null || running.status !== "RUNNING";
  const broken = replicaToReplace(ctx, region);
  if (broken !== null) {
    if (!idle && running?.kind === "replica") return null;
    return replace(ctx, region, broken[0], broken[1]);
  }
  return idle ? checkCounts(ctx, region) : null;
}
