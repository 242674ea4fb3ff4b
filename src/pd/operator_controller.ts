/**
 * The operator controller (PD's `operator_controller.go`): which operators run, how many, and
 * what each region's heartbeat is answered with.
 *
 * Rules:
 * 1. At most one operator per region. A replica repair replaces a balance or merge operator on
 *    the same region (the old one ends REPLACE); anything else waits for the running one to end.
 * 2. Limits in flight: per kind (`leaderScheduleLimit`, `regionScheduleLimit`,
 *    `replicaScheduleLimit`, `mergeScheduleLimit`) and per store (`storeOperatorLimit`
 *    operators that add or remove a peer there). An operator over a limit is not added. A merge
 *    is added while fewer than `mergeScheduleLimit` merge operators run, both halves at once
 *    (PD's count: each merge is two operators).
 * 3. A step running longer than `stepTimeoutMs` ends its operator TIMEOUT. A region whose epoch
 *    moved in a way the operator's finished steps do not explain (a split or merge, or more
 *    membership changes than it made), or whose next step can no longer be done, ends it
 *    CANCEL (PD's `checkStaleOperator`). A merge's source may show PrepareMerge (version and
 *    conf_ver one up each) while its merge step runs; a further version (RollbackMerge) or any
 *    change of its range ends it CANCEL.
 * 4. The two halves of a merge end together: the target's SUCCESS ends the source's SUCCESS
 *    (its region is gone), any other end of either ends the other CANCEL.
 * 5. An operator with a step still to do that needs a Down or Tombstone store (adds or
 *    promotes a replica there, moves leadership there) ends CANCEL (`cancelTowards`, PD's
 *    step check of its target store).
 * 6. Finished operators stay visible to GetOperator for `PD_OPERATOR_RECORD_TTL_MS`, at most
 *    `PD_OPERATOR_RECORDS_MAX` of them (the oldest go first).
 *
 * Operators live in memory only, as in PD: after a restart the schedulers make them again.
 *
 * @module
 */
import { PD_OPERATOR_RECORD_TTL_MS, PD_OPERATOR_RECORDS_MAX } from "../constants.ts";
import { assert } from "../util/assert.ts";
import { bytesEqual } from "../util/bytes.ts";
import type { ScheduleConfig } from "./config.ts";
import {
  changesConf,
  type HeartbeatInstruction,
  type Operator,
  type OperatorKind,
  type OperatorStatus,
  type OpStep,
  stepBlocked,
  stepFinished,
  stepInstruction,
  stepTimeoutMs,
} from "./operator.ts";
import { regionSizeMb } from "./store_regions.ts";
import type { RegionInfo } from "./types.ts";

/** What `add` is given: the steps and where they come from. */
export interface OperatorRequest {
  region: RegionInfo;
  desc: string;
  kind: OperatorKind;
  steps: OpStep[];
}

/**
 * What `addMerge` is given: the source's operator (ending with its active `MergeRegion` step)
 * and the target region; the target's passive half is made from them.
 */
export interface MergeRequest {
  source: OperatorRequest;
  target: RegionInfo;
}

/** How a store's counts will change once the running operators finish. */
export interface StoreInfluence {
  regionCount: number;
  regionSizeMb: number;
  leaderCount: number;
}

export { regionSizeMb };

function storesTouched(op: Operator): bigint[] {
  const stores = new Set<bigint>();
  for (const step of op.steps) {
    if (step.type === "AddLearner" || step.type === "RemovePeer") stores.add(step.storeId);
  }
  return [...stores];
}

/** The running operators and the record of finished ones. */
export class OperatorController {
  readonly #config: ScheduleConfig;
  readonly #running = new Map<bigint, Operator>();
  /** Finished operators by region, oldest first (a Map keeps insertion order). */
  readonly #records = new Map<bigint, Operator>();
  /** Region sizes when each operator was added, for influence. */
  readonly #sizes = new Map<number, number>();
  /**
   * Running operators by kind, and by store they add or remove a peer on: the limits are
   * asked once per candidate region, so they are counted as operators start and end rather
   * than by a walk of every running operator each time.
   */
  readonly #runningByKind = new Map<OperatorKind, number>();
  readonly #runningOnStore = new Map<bigint, number>();
  #nextId = 1;

  constructor(config: ScheduleConfig) {
    this.#config = config;
  }

  /** The running operators, by region id order. */
  running(): Operator[] {
    return [...this.#running.values()].sort((a, b) => (a.regionId < b.regionId ? -1 : 1));
  }

  /** The running operator of a region, or else its latest finished one still remembered. */
  get(regionId: bigint, nowMs: number): Operator | null {
    this.#expireRecords(nowMs);
    return this.#running.get(regionId) ?? this.#records.get(regionId) ?? null;
  }

  /** How many running operators count against `kind`'s limit. */
  countOf(kind: OperatorKind): number {
    return this.#runningByKind.get(kind) ?? 0;
  }

  #limitOf(kind: OperatorKind): number {
    if (kind === "leader") return this.#config.leaderScheduleLimit;
    if (kind === "region") return this.#config.regionScheduleLimit;
    if (kind === "merge") return this.#config.mergeScheduleLimit;
    return this.#config.replicaScheduleLimit;
  }

  /** Whether one more operator adding or removing a peer on `storeId` fits its limit. */
  storeHasRoom(storeId: bigint): boolean {
    return (this.#runningOnStore.get(storeId) ?? 0) < this.#config.storeOperatorLimit;
  }

  /** Counts `op` in (`delta` 1) or out (-1) of the running counts by kind and by store. */
  #count(op: Operator, delta: 1 | -1): void {
    const byKind = (this.#runningByKind.get(op.kind) ?? 0) + delta;
    assert(byKind >= 0, `more ${op.kind} operators ended than started`, { op: op.id });
    this.#runningByKind.set(op.kind, byKind);
    for (const storeId of storesTouched(op)) {
      const onStore = (this.#runningOnStore.get(storeId) ?? 0) + delta;
      assert(onStore >= 0, `more operators on store ${storeId} ended than started`);
      if (onStore === 0) this.#runningOnStore.delete(storeId);
      else this.#runningOnStore.set(storeId, onStore);
    }
  }

  /** Whether an operator of `kind` could be added on `regionId` now (rules 1 and 2). */
  hasRoom(kind: OperatorKind, regionId: bigint): boolean {
    const current = this.#running.get(regionId);
    if (current !== undefined && !(kind === "replica" && current.kind !== "replica")) return false;
    return this.countOf(kind) < this.#limitOf(kind);
  }

  /** Adds an operator if rules 1 and 2 allow; returns it, or why not. */
  add(request: OperatorRequest, nowMs: number): Operator | string {
    assert(request.kind !== "merge", "a merge is added with addMerge, both halves at once");
    const refused = this.#refusal(request);
    return refused ?? this.#start(request, { nowMs, mergePartner: null });
  }

  /**
   * Adds both halves of a merge if rules 1 and 2 allow: the source's operator and the target's
   * passive one; returns them, or why not.
   */
  addMerge(request: MergeRequest, nowMs: number): [Operator, Operator] | string {
    const { source, target } = request;
    const sourceId = source.region.meta.id;
    const targetId = target.meta.id;
    const last = source.steps[source.steps.length - 1];
    assert(
      source.kind === "merge" && last?.type === "MergeRegion" && !last.passive &&
        last.source.id === sourceId && last.target.id === targetId,
      "a merge's source operator ends with its active merge step",
      { sourceId, targetId },
    );
    const refused = this.#refusal(source);
    if (refused !== null) return refused;
    if (this.#running.has(targetId)) return `region ${targetId}: it already has an operator`;
    const passive: OpStep = {
      ...last,
      passive: true,
      timeoutMs: source.steps.reduce((sum, step) => sum + stepTimeoutMs(step), 0),
    };
    const targetRequest = {
      region: target,
      desc: source.desc,
      kind: source.kind,
      steps: [passive],
    };
    return [
      this.#start(source, { nowMs, mergePartner: targetId }),
      this.#start(targetRequest, { nowMs, mergePartner: sourceId }),
    ];
  }

  /** Why rules 1 and 2 refuse `request`, or `null`. */
  #refusal(request: OperatorRequest): string | null {
    const regionId = request.region.meta.id;
    assert(request.steps.length > 0, `an operator on region ${regionId} needs steps`);
    if (!this.hasRoom(request.kind, regionId)) {
      return `region ${regionId}: no room for a ${request.kind} operator`;
    }
    for (const step of request.steps) {
      if (step.type !== "AddLearner" && step.type !== "RemovePeer") continue;
      if (!this.storeHasRoom(step.storeId)) {
        return `store ${step.storeId} has no room for an operator`;
      }
    }
    return null;
  }

  #start(
    request: OperatorRequest,
    at: { nowMs: number; mergePartner: bigint | null },
  ): Operator {
    const { nowMs } = at;
    const regionId = request.region.meta.id;
    const op: Operator = {
      id: this.#nextId++,
      regionId,
      desc: request.desc,
      kind: request.kind,
      steps: request.steps,
      regionEpoch: { ...request.region.meta.regionEpoch },
      createdAtMs: nowMs,
      currentStep: 0,
      stepStartedAtMs: nowMs,
      status: "RUNNING",
      reason: "",
      finishedAtMs: null,
      mergePartner: at.mergePartner,
    };
    const replaced = this.#running.get(regionId);
    if (replaced !== undefined) this.#finish(replaced, "REPLACE", `replaced by ${op.desc}`, nowMs);
    this.#running.set(regionId, op);
    this.#count(op, 1);
    this.#sizes.set(op.id, regionSizeMb(request.region));
    return op;
  }

  /** Ends a region's running operator as CANCEL; returns whether there was one. */
  cancel(regionId: bigint, reason: string, nowMs: number): boolean {
    const op = this.#running.get(regionId);
    if (op === undefined) return false;
    this.#finish(op, "CANCEL", reason, nowMs);
    return true;
  }

  /**
   * Answers a region heartbeat: moves the region's operator past the steps the heartbeat shows
   * done, ends it (SUCCESS, TIMEOUT or CANCEL by rule 3), or returns the step to carry out.
   */
  dispatch(region: RegionInfo, nowMs: number): HeartbeatInstruction | null {
    const op = this.#running.get(region.meta.id);
    if (op === undefined) return null;
    while (op.currentStep < op.steps.length && stepFinished(op.steps[op.currentStep]!, region)) {
      op.currentStep++;
      op.stepStartedAtMs = nowMs;
    }
    if (op.currentStep === op.steps.length) {
      this.#finish(op, "SUCCESS", "", nowMs);
      return null;
    }
    const stale = this.#staleness(op, region);
    if (stale !== null) {
      this.#finish(op, "CANCEL", stale, nowMs);
      return null;
    }
    if (this.#timedOut(op, nowMs)) return null;
    if (region.leader === null) return null;
    return stepInstruction(op.steps[op.currentStep]!, region);
  }

  /**
   * Ends CANCEL every operator with a step still to do that needs one of `down`'s stores — a
   * replica added or promoted there, leadership moved there — and returns them (rule 5): such a
   * step cannot finish, and the operator would hold its region and its stores' operator room
   * until its timeout (minutes), keeping the repair of the very store out. A step removing a
   * replica there is that repair, and stays.
   */
  cancelTowards(down: ReadonlySet<bigint>, nowMs: number): Operator[] {
    if (down.size === 0) return [];
    const cancelled: Operator[] = [];
    for (const op of [...this.#running.values()]) {
      if (op.status !== "RUNNING") continue; // a merge partner ended by an earlier one
      const storeId = op.steps.slice(op.currentStep).map(storeNeeded).find((id) =>
        id !== null && down.has(id)
      );
      if (storeId === undefined) continue;
      this.#finish(op, "CANCEL", `store ${storeId} is down`, nowMs);
      cancelled.push(op);
    }
    return cancelled;
  }

  /** Ends every operator whose current step has run too long (rule 3); returns them. */
  checkTimeouts(nowMs: number): Operator[] {
    // A merge half that times out cancels its partner (rule 4), which is then skipped here.
    return [...this.#running.values()].filter((op) =>
      op.status === "RUNNING" && this.#timedOut(op, nowMs)
    );
  }

  #timedOut(op: Operator, nowMs: number): boolean {
    const step = op.steps[op.currentStep]!;
    if (nowMs - op.stepStartedAtMs <= stepTimeoutMs(step)) return false;
    this.#finish(op, "TIMEOUT", `step ${op.currentStep} ran over ${stepTimeoutMs(step)} ms`, nowMs);
    return true;
  }

  #staleness(op: Operator, region: RegionInfo): string | null {
    const now = region.meta.regionEpoch;
    const current = op.steps[op.currentStep]!;
    // A source that carried out PrepareMerge shows version and conf_ver one up each (TiKV);
    // RollbackMerge moves its version once more, which ends the operator.
    const merging = current.type === "MergeRegion" && !current.passive;
    const prepared = merging && now.version === op.regionEpoch.version + 1n;
    if (now.version !== op.regionEpoch.version && !prepared) {
      const rolledBack = merging && now.version > op.regionEpoch.version + 1n
        ? " (the merge was rolled back or the region changed)"
        : "";
      return `region version moved from ${op.regionEpoch.version} to ${now.version}${rolledBack}`;
    }
    if (
      merging &&
      (!bytesEqual(region.meta.startKey, current.source.startKey) ||
        !bytesEqual(region.meta.endKey, current.source.endKey))
    ) {
      return `region ${region.meta.id}'s range changed while it was to merge`;
    }
    // Its conf changes the region shows: the finished steps', and the current step's once in
    // force though unfinished (a learner added and still waiting for its snapshot: pending).
    const inForce = current.type === "AddLearner" &&
      region.meta.peers.some((p) => p.id === current.peerId);
    const made = op.steps.slice(0, op.currentStep).filter(changesConf).length +
      (inForce || prepared ? 1 : 0);
    if (now.confVer - op.regionEpoch.confVer > BigInt(made)) {
      return `stale operator: conf_ver moved from ${op.regionEpoch.confVer} to ${now.confVer}` +
        ` after ${made} of its changes`;
    }
    return stepBlocked(op.steps[op.currentStep]!, region);
  }

  #finish(op: Operator, status: OperatorStatus, reason: string, nowMs: number): void {
    assert(op.status === "RUNNING", `operator ${op.id} finished twice`);
    assert(this.#running.get(op.regionId) === op, `operator ${op.id} is not running`);
    op.status = status;
    op.reason = reason;
    op.finishedAtMs = nowMs;
    this.#running.delete(op.regionId);
    this.#count(op, -1);
    this.#sizes.delete(op.id);
    this.#records.delete(op.regionId);
    this.#records.set(op.regionId, op);
    while (this.#records.size > PD_OPERATOR_RECORDS_MAX) {
      this.#records.delete(this.#records.keys().next().value!);
    }
    this.#finishPartner(op, nowMs);
  }

  /** Rule 4: a merge's other half ends with this one. */
  #finishPartner(op: Operator, nowMs: number): void {
    if (op.mergePartner === null) return;
    const partner = this.#running.get(op.mergePartner);
    if (partner === undefined || partner.mergePartner !== op.regionId) return;
    if (op.status === "SUCCESS") {
      this.#finish(partner, "SUCCESS", "", nowMs);
    } else {
      this.#finish(
        partner,
        "CANCEL",
        `region ${op.regionId}'s half of the merge ended ${op.status}`,
        nowMs,
      );
    }
  }

  #expireRecords(nowMs: number): void {
    for (const [regionId, op] of this.#records) {
      if (nowMs - op.finishedAtMs! <= PD_OPERATOR_RECORD_TTL_MS) break;
      this.#records.delete(regionId);
    }
  }

  /** How each store's counts change once the running operators' remaining steps are done. */
  influence(): Map<bigint, StoreInfluence> {
    const out = new Map<bigint, StoreInfluence>();
    const of = (storeId: bigint) => {
      let entry = out.get(storeId);
      if (entry === undefined) {
        entry = { regionCount: 0, regionSizeMb: 0, leaderCount: 0 };
        out.set(storeId, entry);
      }
      return entry;
    };
    for (const op of this.#running.values()) {
      const size = this.#sizes.get(op.id) ?? 1;
      for (const step of op.steps.slice(op.currentStep)) {
        if (step.type === "AddLearner") {
          of(step.storeId).regionCount++;
          of(step.storeId).regionSizeMb += size;
        } else if (step.type === "RemovePeer") {
          of(step.storeId).regionCount--;
          of(step.storeId).regionSizeMb -= size;
        } else if (step.type === "TransferLeader") {
          of(step.fromStoreId).leaderCount--;
          of(step.toStoreId).leaderCount++;
        } else if (step.type === "MergeRegion" && step.passive) {
          // A merge leaves one region where there were two, on each of the target's stores;
          // the size stays (the source's moves into the target).
          for (const peer of step.target.peers) of(peer.storeId).regionCount--;
        }
      }
    }
    return out;
  }
}

/** The store a step needs alive to finish: where it adds or promotes a replica or moves the lead. */
function storeNeeded(step: OpStep): bigint | null {
  switch (step.type) {
    case "AddLearner":
    case "PromoteLearner":
      return step.storeId;
    case "TransferLeader":
      return step.toStoreId;
    default:
      return null;
  }
}
