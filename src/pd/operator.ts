/**
 * Operators: what PD asks a region's leader to do, as a list of steps the leader carries out
 * one at a time (PD's `pkg/schedule/operator`). A step is done when a heartbeat shows its
 * effect (a learner appears, a peer goes, the leader moves); the heartbeat that shows it gets
 * the next step in its answer.
 *
 * Membership changes are single-step Raft conf changes (DESIGN §4.1): a replica is added as a
 * learner, which catches up by snapshot, then promoted to voter; a voter is removed by itself.
 * A leader is never removed: a transfer goes first.
 *
 * A merge (PD's `CreateMergeRegionOperator`) is two operators: the source's, whose last step
 * tells its leader to merge into the target (TiKV's PrepareMerge, then CommitMerge on the
 * target or RollbackMerge), and the target's, one passive step that tells its leader nothing
 * and keeps other operators off it. The target's finishes when a heartbeat of the target covers
 * both ranges at a higher version; the source's ends with it (its region is gone by then).
 *
 * @module
 */
import {
  PD_OPERATOR_FAST_STEP_TIMEOUT_MS,
  PD_OPERATOR_SLOW_STEP_TIMEOUT_MS,
} from "../constants.ts";
import { assert } from "../util/assert.ts";
import { compareBytes } from "../util/bytes.ts";
import type { Peer, RegionEpoch, RegionInfo, RegionMeta } from "./types.ts";

/** One step of an operator. */
export type OpStep =
  | { type: "AddLearner"; storeId: bigint; peerId: bigint }
  | { type: "PromoteLearner"; storeId: bigint; peerId: bigint }
  | { type: "RemovePeer"; storeId: bigint; peerId: bigint }
  | { type: "TransferLeader"; fromStoreId: bigint; toStoreId: bigint }
  | {
    type: "MergeRegion";
    /** The source and the target as PD knew them when it planned the merge. */
    source: RegionMeta;
    target: RegionMeta;
    /** The target's half: nothing to carry out; it keeps other operators off the target. */
    passive: boolean;
    /** How long the step may take (the passive half: as long as all of the source's steps). */
    timeoutMs: number;
  };

/**
 * Which schedule limit an operator counts against: `replica` (repairs, first in line), `region`
 * (balance moves), `leader` (balance transfers) or `merge` (both halves of a merge).
 */
export type OperatorKind = "replica" | "region" | "leader" | "merge";

/** `pdpb.OperatorStatus` names. */
export type OperatorStatus = "RUNNING" | "SUCCESS" | "TIMEOUT" | "CANCEL" | "REPLACE";

/** An operator on one region. */
export interface Operator {
  /** Unique within a PD run, increasing. */
  id: number;
  regionId: bigint;
  /** What made it, for people: `replace-down-replica`, `balance-region`, … */
  desc: string;
  kind: OperatorKind;
  steps: OpStep[];
  /** The region's epoch when the operator was made; later epochs must be explained by its steps. */
  regionEpoch: RegionEpoch;
  createdAtMs: number;
  /** Index of the step in progress; `steps.length` once all are done. */
  currentStep: number;
  stepStartedAtMs: number;
  status: OperatorStatus;
  /** Why it ended, when it did not succeed. */
  reason: string;
  finishedAtMs: number | null;
  /** A merge's other region, whose operator ends with this one; `null` for any other operator. */
  mergePartner: bigint | null;
}

/** `eraftpb.ConfChangeType` names used by `pdpb.ChangePeer`. */
export type ConfChangeType = "AddNode" | "RemoveNode" | "AddLearnerNode";

/**
 * A `pdpb.RegionHeartbeatResponse` as a plain value: at most one of `changePeer`,
 * `transferLeader` and `merge` is set; the edge encodes it.
 */
export interface HeartbeatInstruction {
  regionId: bigint;
  regionEpoch: RegionEpoch;
  targetPeer: Peer;
  changePeer?: { peer: Peer; changeType: ConfChangeType };
  transferLeader?: { peer: Peer; peers: Peer[] };
  /** `pdpb.Merge`: merge this region into `target` (as PD knew it when it planned the merge). */
  merge?: { target: RegionMeta };
}

function peerOn(region: RegionInfo, storeId: bigint): Peer | undefined {
  return region.meta.peers.find((peer) => peer.storeId === storeId);
}

/** Whether a step changes the region's membership (and so bumps its `confVer` by one). */
export function changesConf(step: OpStep): boolean {
  return step.type !== "TransferLeader" && step.type !== "MergeRegion";
}

/** The range [startKey, endKey) of two adjacent regions together (an empty end is +infinity). */
export function mergedRange(
  a: RegionMeta,
  b: RegionMeta,
): { startKey: Uint8Array; endKey: Uint8Array } {
  const [first, second] = compareBytes(a.startKey, b.startKey) <= 0 ? [a, b] : [b, a];
  return { startKey: first.startKey, endKey: second.endKey };
}

/**
 * Whether `region` shows the merge done: it is the target, at a higher version, and its range
 * covers both the source's and its own old one (TiKV's CommitMerge).
 */
export function mergeCommitted(step: OpStep & { type: "MergeRegion" }, region: RegionInfo) {
  const meta = region.meta;
  if (meta.id !== step.target.id) return false;
  if (meta.regionEpoch.version <= step.target.regionEpoch.version) return false;
  const merged = mergedRange(step.source, step.target);
  if (compareBytes(meta.startKey, merged.startKey) > 0) return false;
  if (meta.endKey.length === 0) return true;
  return merged.endKey.length > 0 && compareBytes(meta.endKey, merged.endKey) >= 0;
}

function storeIdsOf(meta: RegionMeta): string {
  return meta.peers.map((peer) => peer.storeId).sort((a, b) => (a < b ? -1 : 1)).join(",");
}

/** Whether the region, as this heartbeat shows it, has carried out `step` (PD's `IsFinish`). */
export function stepFinished(step: OpStep, region: RegionInfo): boolean {
  switch (step.type) {
    case "AddLearner": {
      const peer = peerOn(region, step.storeId);
      const pending = region.pendingPeers.some((p) => p.id === step.peerId);
      return peer !== undefined && peer.id === step.peerId && !pending;
    }
    case "PromoteLearner":
      return peerOn(region, step.storeId)?.role === "Voter";
    case "RemovePeer":
      return peerOn(region, step.storeId) === undefined;
    case "TransferLeader":
      return region.leader?.storeId === step.toStoreId;
    case "MergeRegion":
      // The source's region is gone once merged: its half ends with the target's.
      return step.passive && mergeCommitted(step, region);
  }
}

/**
 * Why `step` can no longer be carried out in `region`, or `null` (PD's `CheckInProgress`): a
 * different peer already on the target store, a learner gone before promotion, the leader
 * itself about to be removed, no peer to hand leadership to.
 */
export function stepBlocked(step: OpStep, region: RegionInfo): string | null {
  switch (step.type) {
    case "AddLearner": {
      const peer = peerOn(region, step.storeId);
      if (peer !== undefined && peer.id !== step.peerId) {
        return `peer ${peer.id} is already on store ${step.storeId}, not ${step.peerId}`;
      }
      return null;
    }
    case "PromoteLearner":
      return peerOn(region, step.storeId)?.id === step.peerId
        ? null
        : `learner ${step.peerId} is no longer on store ${step.storeId}`;
    case "RemovePeer":
      return region.leader?.storeId === step.storeId
        ? `cannot remove leader peer ${step.peerId} on store ${step.storeId}`
        : null;
    case "TransferLeader": {
      const target = peerOn(region, step.toStoreId);
      return target === undefined || target.role !== "Voter"
        ? `no voter on store ${step.toStoreId} to take leadership`
        : null;
    }
    case "MergeRegion": {
      // TiKV merges only replicas on the same stores (they share each store's engine).
      if (step.passive || storeIdsOf(region.meta) === storeIdsOf(step.target)) return null;
      return `its peers are on stores ${storeIdsOf(region.meta)}, region ${step.target.id}'s ` +
        `on stores ${storeIdsOf(step.target)}`;
    }
  }
}

/** How long `step` may take before its operator times out. */
export function stepTimeoutMs(step: OpStep): number {
  // Adding a learner waits for a snapshot of the whole region; a merge waits for the target to
  // catch up with the source's log; the rest are one Raft round.
  if (step.type === "MergeRegion") return step.timeoutMs;
  return step.type === "AddLearner"
    ? PD_OPERATOR_SLOW_STEP_TIMEOUT_MS
    : PD_OPERATOR_FAST_STEP_TIMEOUT_MS;
}

/** What the leader is told to do for `step` (the answer to its heartbeat); `null`: nothing. */
export function stepInstruction(step: OpStep, region: RegionInfo): HeartbeatInstruction | null {
  assert(region.leader !== null, `region ${region.meta.id} has no leader to instruct`);
  const base = {
    regionId: region.meta.id,
    regionEpoch: region.meta.regionEpoch,
    targetPeer: region.leader,
  };
  switch (step.type) {
    case "AddLearner":
      return {
        ...base,
        changePeer: {
          peer: { id: step.peerId, storeId: step.storeId, role: "Learner" },
          changeType: "AddLearnerNode",
        },
      };
    case "PromoteLearner":
      return {
        ...base,
        changePeer: {
          peer: { id: step.peerId, storeId: step.storeId, role: "Voter" },
          changeType: "AddNode",
        },
      };
    case "RemovePeer": {
      const peer = peerOn(region, step.storeId);
      return {
        ...base,
        changePeer: {
          peer: peer ?? { id: step.peerId, storeId: step.storeId, role: "Voter" },
          changeType: "RemoveNode",
        },
      };
    }
    case "TransferLeader": {
      const peer = peerOn(region, step.toStoreId);
      assert(peer !== undefined, `no peer on store ${step.toStoreId} to transfer leader to`);
      return { ...base, transferLeader: { peer, peers: [] } };
    }
    case "MergeRegion":
      assert(step.source.id === region.meta.id || step.passive, "a merge told to its target", {
        regionId: region.meta.id,
        sourceId: step.source.id,
      });
      return step.passive ? null : { ...base, merge: { target: step.target } };
  }
}

/** A step as a line of text (ctl, datadriven tests). */
export function describeStep(step: OpStep): string {
  switch (step.type) {
    case "AddLearner":
      return `add learner ${step.peerId} on store ${step.storeId}`;
    case "PromoteLearner":
      return `promote learner ${step.peerId} on store ${step.storeId}`;
    case "RemovePeer":
      return `remove peer ${step.peerId} on store ${step.storeId}`;
    case "TransferLeader":
      return `transfer leader from store ${step.fromStoreId} to store ${step.toStoreId}`;
    case "MergeRegion":
      return `merge region ${step.source.id} into region ${step.target.id}` +
        (step.passive ? " (passive)" : "");
  }
}

/** An operator as one line: region, what made it, its steps, where it stands. */
export function describeOperator(op: Operator): string {
  const steps = op.steps.map(describeStep).join(", ");
  const where = op.status === "RUNNING" ? `step ${op.currentStep}` : op.status;
  const why = op.reason === "" ? "" : ` (${op.reason})`;
  return `region ${op.regionId} ${op.desc}: ${steps} [${where}]${why}`;
}

// -------------------------------------------------------------------------------------------
// Building operators. Each returns the steps; the controller wraps them in an `Operator`.

/** A voter on another store than `excluded` to hand leadership to (lowest store id). */
function leaderHeir(region: RegionInfo, excluded: bigint): Peer | undefined {
  return region.meta.peers
    .filter((peer) => peer.role === "Voter" && peer.storeId !== excluded)
    .sort((a, b) => (a.storeId < b.storeId ? -1 : 1))[0];
}

/** Steps that remove the peer on `storeId`, moving leadership away first when it is there. */
export function removePeerSteps(region: RegionInfo, storeId: bigint): OpStep[] | null {
  const peer = peerOn(region, storeId);
  if (peer === undefined) return null;
  const steps: OpStep[] = [];
  if (region.leader?.storeId === storeId) {
    const heir = leaderHeir(region, storeId);
    if (heir === undefined) return null;
    steps.push({ type: "TransferLeader", fromStoreId: storeId, toStoreId: heir.storeId });
  }
  steps.push({ type: "RemovePeer", storeId, peerId: peer.id });
  return steps;
}

/** Steps that add a voter on `storeId`: a learner first, promoted once it has caught up. */
export function addVoterSteps(storeId: bigint, peerId: bigint): OpStep[] {
  return [
    { type: "AddLearner", storeId, peerId },
    { type: "PromoteLearner", storeId, peerId },
  ];
}

/**
 * Steps that move the replica on `fromStoreId` to `toStoreId`: add and promote the new one,
 * hand leadership on when it was on the old one (to another voter, or to the new one when there
 * is no other), then remove the old one.
 */
export function movePeerSteps(
  region: RegionInfo,
  move: { fromStoreId: bigint; toStoreId: bigint; newPeerId: bigint },
): OpStep[] | null {
  const peer = peerOn(region, move.fromStoreId);
  if (peer === undefined || peerOn(region, move.toStoreId) !== undefined) return null;
  const steps = addVoterSteps(move.toStoreId, move.newPeerId);
  if (region.leader?.storeId === move.fromStoreId) {
    const heir = leaderHeir(region, move.fromStoreId)?.storeId ?? move.toStoreId;
    steps.push({ type: "TransferLeader", fromStoreId: move.fromStoreId, toStoreId: heir });
  }
  steps.push({ type: "RemovePeer", storeId: move.fromStoreId, peerId: peer.id });
  return steps;
}
