/**
 * The operator controller (PD's `operator_controller.go`): which operators run, how many, and
 * what each region's heartbeat is answered with.
 *
 * Rules:
 * 1. At most one operator per region. A replica repair replaces a balance operator on the
 *    same region (the old one ends REPLACE); anything else waits for the running one to end.
 * 2. Limits in flight: per kind (`leaderScheduleLimit`, `regionScheduleLimit`,
 *    `replicaScheduleLimit`) and per store (`storeOperatorLimit` operators that add or remove
 *    a peer there). An operator over a limit is not added.
 * 3. A step running longer than `stepTimeoutMs` ends its operator TIMEOUT. A region whose epoch
 *    moved in a way the operator's finished steps do not explain (a split or merge, or more
 *    membership changes than it made), or whose next step can no longer be done, ends it
 *    CANCEL (PD's `checkStaleOperator`).
 * 4. Finished operators stay visible to GetOperator for `PD_OPERATOR_RECORD_TTL_MS`, at most
 *    `PD_OPERATOR_RECORDS_MAX` of them (the oldest go first).
 *
 * Operators live in memory only, as in PD: after a restart the schedulers make them again.
 *
 * @module
 */
import { PD_OPERATOR_RECORD_TTL_MS, PD_OPERATOR_RECORDS_MAX } from "../constants.ts";
import { assert } from "../util/assert.ts";
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
import type { RegionInfo } from "./types.ts";

/** What `add` is given: the steps and where they come from. */
export interface OperatorRequest {
  region: RegionInfo;
  desc: string;
  kind: OperatorKind;
  steps: OpStep[];
}

/** How a store's counts will change once the running operators finish. */
export interface StoreInfluence {
  regionCount: number;
  regionSizeMb: number;
  leaderCount: number;
}

/** A region's size as the balance schedulers count it: whole MiB, at least 1. */
export function regionSizeMb(region: RegionInfo): number {
  return Math.max(1, Number(region.approximateSizeBytes / (1024n * 1024n)));
}

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
    let count = 0;
    for (const op of this.#running.values()) if (op.kind === kind) count++;
    return count;
  }

  #limitOf(kind: OperatorKind): number {
    if (kind === "leader") return this.#config.leaderScheduleLimit;
    if (kind === "region") return this.#config.regionScheduleLimit;
    return this.#config.replicaScheduleLimit;
  }

  /** Whether one more operator adding or removing a peer on `storeId` fits its limit. */
  storeHasRoom(storeId: bigint): boolean {
    let count = 0;
    for (const op of this.#running.values()) if (storesTouched(op).includes(storeId)) count++;
    return count < this.#config.storeOperatorLimit;
  }

  /** Whether an operator of `kind` could be added on `regionId` now (rules 1 and 2). */
  hasRoom(kind: OperatorKind, regionId: bigint): boolean {
    const current = this.#running.get(regionId);
    if (current !== undefined && !(kind === "replica" && current.kind !== "replica")) return false;
    return this.countOf(kind) < this.#limitOf(kind);
  }

  /** Adds an operator if rules 1 and 2 allow; returns it, or why not. */
  add(request: OperatorRequest, nowMs: number): Operator | string {
    const regionId = request.region.meta.id;
    assert(request.steps.length > 0, `an operator on region ${regionId} needs steps`);
    if (!this.hasRoom(request.kind, regionId)) {
      return `region ${regionId}: no room for a ${request.kind} operator`;
    }
    for (const step of request.steps) {
      const storeId = step.type === "TransferLeader" ? null : step.storeId;
      if (step.type !== "PromoteLearner" && storeId !== null && !this.storeHasRoom(storeId)) {
        return `store ${storeId} has no room for an operator`;
      }
    }
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
    };
    const replaced = this.#running.get(regionId);
    if (replaced !== undefined) this.#finish(replaced, "REPLACE", `replaced by ${op.desc}`, nowMs);
    this.#running.set(regionId, op);
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

  /** Ends every operator whose current step has run too long (rule 3); returns them. */
  checkTimeouts(nowMs: number): Operator[] {
    return [...this.#running.values()].filter((op) => this.#timedOut(op, nowMs));
  }

  #timedOut(op: Operator, nowMs: number): boolean {
    const step = op.steps[op.currentStep]!;
    if (nowMs - op.stepStartedAtMs <= stepTimeoutMs(step)) return false;
    this.#finish(op, "TIMEOUT", `step ${op.currentStep} ran over ${stepTimeoutMs(step)} ms`, nowMs);
    return true;
  }

  #staleness(op: Operator, region: RegionInfo): string | null {
    const now = region.meta.regionEpoch;
    if (now.version !== op.regionEpoch.version) {
      return `region version moved from ${op.regionEpoch.version} to ${now.version}`;
    }
    // Its conf changes the region shows: the finished steps', and the current step's once in
    // force though unfinished (a learner added and still waiting for its snapshot: pending).
    const current = op.steps[op.currentStep]!;
    const inForce = current.type === "AddLearner" &&
      region.meta.peers.some((p) => p.id === current.peerId);
    const made = op.steps.slice(0, op.currentStep).filter(changesConf).length + (inForce ? 1 : 0);
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
    this.#sizes.delete(op.id);
    this.#records.delete(op.regionId);
    this.#records.set(op.regionId, op);
    while (this.#records.size > PD_OPERATOR_RECORDS_MAX) {
      this.#records.delete(this.#records.keys().next().value!);
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
        }
      }
    }
    return out;
  }
}
