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
 * @module
 */
import {
  PD_OPERATOR_FAST_STEP_TIMEOUT_MS,
  PD_OPERATOR_SLOW_STEP_TIMEOUT_MS,
} from "../constants.ts";
import { assert } from "../util/assert.ts";
import type { Peer, RegionEpoch, RegionInfo } from "./types.ts";

/** One step of an operator. */
export type OpStep =
  | { type: "AddLearner"; storeId: bigint; peerId: bigint }
  | { type: "PromoteLearner"; storeId: bigint; peerId: bigint }
  | { type: "RemovePeer"; storeId: bigint; peerId: bigint }
  | { type: "TransferLeader"; fromStoreId: bigint; toStoreId: bigint };

/**
 * Which schedule limit an operator counts against: `replica` (repairs, first in line), `region`
 * (balance moves) or `leader` (balance transfers).
 */
export type OperatorKind = "replica" | "region" | "leader";

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
}

/** `eraftpb.ConfChangeType` names used by `pdpb.ChangePeer`. */
export type ConfChangeType = "AddNode" | "RemoveNode" | "AddLearnerNode";

/**
 * A `pdpb.RegionHeartbeatResponse` as a plain value: at most one of `changePeer` and
 * `transferLeader` is set; the edge encodes it.
 */
export interface HeartbeatInstruction {
  regionId: bigint;
  regionEpoch: RegionEpoch;
  targetPeer: Peer;
  changePeer?: { peer: Peer; changeType: ConfChangeType };
  transferLeader?: { peer: Peer; peers: Peer[] };
}

function peerOn(region: RegionInfo, storeId: bigint): Peer | undefined {
  return region.meta.peers.find((peer) => peer.storeId === storeId);
}

/** Whether a step changes the region's membership (and so bumps its `confVer` by one). */
export function changesConf(step: OpStep): boolean {
  return step.type !== "TransferLeader";
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
  }
}

/** How long `step` may take before its operator times out. */
export function stepTimeoutMs(step: OpStep): number {
  // Adding a learner waits for a snapshot of the whole region; the rest are one Raft round.
  return step.type === "AddLearner"
    ? PD_OPERATOR_SLOW_STEP_TIMEOUT_MS
    : PD_OPERATOR_FAST_STEP_TIMEOUT_MS;
}

/** What the leader is told to do for `step` (the answer to its heartbeat). */
export function stepInstruction(step: OpStep, region: RegionInfo): HeartbeatInstruction {
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
