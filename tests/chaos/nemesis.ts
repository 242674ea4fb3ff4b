/**
 * The chaos suite's nemesis: a schedule of faults drawn from a seed (`planFaults`, pure: the same
 * seed gives the same schedule), and an executor that applies them one at a time to a real
 * cluster (`tests/e2e/cluster.ts`) and records a timeline.
 *
 * Invariants:
 * - One fault at a time, healed before the next one starts: at most one store is down, paused
 *   or cut off (or one link cut) at any moment, so every region keeps a quorum of its three
 *   voters and PD keeps two of its three members.
 * - Every step is bounded: restarts by `lib.ts`'s ready timeout, PD calls by their deadlines,
 *   the whole run by `runNemesis`'s deadline (the fault under way is healed after it).
 * - The seed fixes which faults come, in which order, on which stores and for how long; what
 *   the processes do meanwhile (timing, elections) is the machine's.
 */
import { PdClient } from "../../src/client/pd_client.ts";
import { RawKV } from "../../src/client/raw.ts";
import { TxnKV } from "../../src/client/txn/mod.ts";
import { SeededRandom } from "../../src/util/random.ts";
import type { Cluster } from "../e2e/cluster.ts";
import { PdRpc } from "../e2e/pd_lib.ts";

/** Shortest and longest time a fault is held before it is healed. */
export const CHAOS_FAULT_HOLD_MIN_MS = 1_000;
export const CHAOS_FAULT_HOLD_MAX_MS = 4_000;
/** Shortest and longest quiet time after a heal, before the next fault. */
export const CHAOS_QUIET_MIN_MS = 1_500;
export const CHAOS_QUIET_MAX_MS = 3_500;
/** Most faults one schedule holds (a run stops at its deadline before that). */
export const CHAOS_MAX_FAULTS = 10_000;
/** Deadline of one PD call the nemesis makes (leader lookup, region scan, operator). */
export const CHAOS_PD_CALL_TIMEOUT_MS = 5_000;
/** Deadline of one forced split. */
export const CHAOS_SPLIT_TIMEOUT_MS = 10_000;

/** One fault of the schedule. `holdMs` is how long it lasts before it is healed. */
export type Fault =
  | { kind: "kill-store"; store: number; holdMs: number }
  | { kind: "kill-pd"; member: number; leader: boolean; holdMs: number }
  | { kind: "pause-store"; store: number; holdMs: number }
  | { kind: "cut-link"; a: number; b: number; holdMs: number }
  | { kind: "isolate-store"; store: number; holdMs: number }
  | { kind: "transfer-leader"; regionPick: number; store: number }
  | { kind: "split"; key: string; transactional: boolean }
  /** A region (picked as `regionPick` ∈ [0, 1) of PD's list) merged into its right neighbour. */
  | { kind: "merge"; regionPick: number };

/** A planned fault and the quiet time after it. */
export interface PlannedFault {
  fault: Fault;
  quietMs: number;
}

/** What the nemesis may touch. */
export interface NemesisShape {
  stores: number;
  pdMembers: number;
  /** Keys a forced split may pick (raw register keys and transactional account keys). */
  rawSplitKeys: readonly string[];
  txnSplitKeys: readonly string[];
}

const KINDS: readonly Fault["kind"][] = [
  "kill-store",
  "kill-pd",
  "pause-store",
  "cut-link",
  "isolate-store",
  "transfer-leader",
  "split",
  "merge",
];

function drawFault(random: SeededRandom, shape: NemesisShape): Fault {
  const holdMs = CHAOS_FAULT_HOLD_MIN_MS +
    random.int(CHAOS_FAULT_HOLD_MAX_MS - CHAOS_FAULT_HOLD_MIN_MS + 1);
  const store = random.int(shape.stores);
  const kind = random.pick(KINDS);
  switch (kind) {
    case "kill-store":
    case "pause-store":
    case "isolate-store":
      return { kind, store, holdMs };
    case "kill-pd":
      return { kind, member: random.int(shape.pdMembers), leader: random.chance(0.5), holdMs };
    case "cut-link": {
      const other = (store + 1 + random.int(shape.stores - 1)) % shape.stores;
      return { kind, a: store, b: other, holdMs };
    }
    case "transfer-leader":
      return { kind, regionPick: random.next(), store };
    case "merge":
      return { kind, regionPick: random.next() };
    case "split": {
      const transactional = random.chance(0.3);
      const keys = transactional ? shape.txnSplitKeys : shape.rawSplitKeys;
      return { kind, key: random.pick(keys), transactional };
    }
  }
}

/** The schedule of seed `seed` (pure: the same seed and shape give the same list). */
export function planFaults(seed: number, shape: NemesisShape): PlannedFault[] {
  if (shape.stores < 3) throw new RangeError(`the nemesis needs 3 stores, not ${shape.stores}`);
  if (shape.pdMembers !== 3) throw new RangeError("the nemesis needs 3 PD members");
  const random = new SeededRandom(seed ^ 0x6e656d65);
  return Array.from({ length: CHAOS_MAX_FAULTS }, () => ({
    fault: drawFault(random, shape),
    quietMs: CHAOS_QUIET_MIN_MS + random.int(CHAOS_QUIET_MAX_MS - CHAOS_QUIET_MIN_MS + 1),
  }));
}

/** A one-line description of a planned fault. */
export function describeFault(fault: Fault): string {
  switch (fault.kind) {
    case "kill-store":
      return `kill -9 store ${fault.store} for ${fault.holdMs} ms, restart`;
    case "kill-pd":
      return `kill -9 PD ${fault.leader ? "leader" : `member pd${fault.member + 1}`} ` +
        `for ${fault.holdMs} ms, restart`;
    case "pause-store":
      return `SIGSTOP store ${fault.store} for ${fault.holdMs} ms, SIGCONT`;
    case "cut-link":
      return `cut link store ${fault.a} <-> store ${fault.b} for ${fault.holdMs} ms, heal`;
    case "isolate-store":
      return `isolate store ${fault.store} for ${fault.holdMs} ms, rejoin`;
    case "transfer-leader":
      return `transfer a region's leader to store ${fault.store}`;
    case "split":
      return `split at ${fault.transactional ? "txn" : "raw"} key ${fault.key}`;
    case "merge":
      return "merge a region into its right neighbour";
  }
}

/** What the nemesis acts through. */
export interface NemesisContext {
  cluster: Cluster;
  pd: PdClient;
  raw: RawKV;
  txn: TxnKV;
  /** Called with each timeline line (already stamped). */
  log: (line: string) => void;
}

/** What a nemesis run did. */
export interface NemesisReport {
  timeline: string[];
  /** Faults applied, by kind. */
  applied: Record<string, number>;
  /** Faults that could not be applied as planned (e.g. no PD leader known); not failures. */
  skipped: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Applies `plan` in order until `deadlineMs` (Date.now() scale); the fault under way is always
 * healed before returning. A harness failure (a store that does not restart) rejects, after
 * the heal was tried.
 */
export async function runNemesis(
  context: NemesisContext,
  plan: readonly PlannedFault[],
  options: { deadlineMs: number; startMs: number },
): Promise<NemesisReport> {
  const report: NemesisReport = { timeline: [], applied: {}, skipped: 0 };
  const stamp = (line: string) => {
    const at = ((Date.now() - options.startMs) / 1000).toFixed(1).padStart(6);
    const stamped = `+${at}s ${line}`;
    report.timeline.push(stamped);
    context.log(stamped);
  };
  for (const { fault, quietMs } of plan) {
    if (Date.now() >= options.deadlineMs) break;
    const done = await applyFault(context, fault, stamp);
    if (done) report.applied[fault.kind] = (report.applied[fault.kind] ?? 0) + 1;
    else report.skipped++;
    await sleep(Math.max(0, Math.min(quietMs, options.deadlineMs - Date.now())));
  }
  return report;
}

/** Applies and heals one fault; false when it could not be applied (and nothing changed). */
async function applyFault(
  context: NemesisContext,
  fault: Fault,
  stamp: (line: string) => void,
): Promise<boolean> {
  const { cluster } = context;
  switch (fault.kind) {
    case "kill-store": {
      stamp(`kill -9 store ${fault.store} (id ${cluster.storeId(fault.store)})`);
      await cluster.kill(fault.store);
      await sleep(fault.holdMs);
      await cluster.restart(fault.store);
      stamp(`restarted store ${fault.store}`);
      return true;
    }
    case "kill-pd":
      return await killPd(context, fault, stamp);
    case "pause-store": {
      stamp(`SIGSTOP store ${fault.store}`);
      cluster.pause(fault.store);
      try {
        await sleep(fault.holdMs);
      } finally {
        cluster.resume(fault.store);
      }
      stamp(`SIGCONT store ${fault.store}`);
      return true;
    }
    case "cut-link": {
      stamp(`cut link store ${fault.a} <-> store ${fault.b}`);
      cluster.cut(fault.a, fault.b);
      try {
        await sleep(fault.holdMs);
      } finally {
        cluster.heal(fault.a, fault.b);
      }
      stamp(`healed link store ${fault.a} <-> store ${fault.b}`);
      return true;
    }
    case "isolate-store": {
      stamp(`isolate store ${fault.store}`);
      cluster.isolate(fault.store);
      try {
        await sleep(fault.holdMs);
      } finally {
        cluster.rejoin(fault.store);
      }
      stamp(`rejoined store ${fault.store}`);
      return true;
    }
    case "transfer-leader":
      return await transferLeader(context, fault, stamp);
    case "split":
      return await split(context, fault, stamp);
    case "merge":
      return await merge(context, fault, stamp);
  }
}

async function killPd(
  context: NemesisContext,
  fault: Extract<Fault, { kind: "kill-pd" }>,
  stamp: (line: string) => void,
): Promise<boolean> {
  let member = fault.member;
  if (fault.leader) {
    const deadlineMs = Date.now() + CHAOS_PD_CALL_TIMEOUT_MS;
    const name = await context.pd.getMembers({ deadlineMs }).then(
      (members) => members.leader?.name ?? "",
      () => "",
    );
    const index = ["pd1", "pd2", "pd3"].indexOf(name);
    if (index < 0) {
      stamp(`kill PD leader: skipped, no leader known`);
      return false;
    }
    member = index;
  }
  stamp(`kill -9 PD member pd${member + 1}${fault.leader ? " (the leader)" : ""}`);
  await context.cluster.killPd(member);
  await sleep(fault.holdMs);
  await context.cluster.restartPd(member);
  stamp(`restarted PD member pd${member + 1}`);
  return true;
}

/** Asks every PD member in turn to add the operator; the leader takes it. */
async function addOperator(cluster: Cluster, request: Record<string, string>): Promise<string> {
  let last = "no PD member answered";
  for (const member of cluster.pds) {
    const admin = new PdRpc(member.clientAddr);
    try {
      const answer = await admin.admin("AddOperator", request);
      if (!("error" in answer)) return "";
      last = JSON.stringify(answer.error);
    } catch (error) {
      last = (error as Error).message;
    } finally {
      admin.close();
    }
  }
  return last;
}

/** PD's regions, looking for its leader once if the first answer fails (see transferLeader). */
async function pdRegions(context: NemesisContext) {
  const deadlineMs = Date.now() + CHAOS_PD_CALL_TIMEOUT_MS;
  const scan = () =>
    context.pd.scanRegions({
      startKey: new Uint8Array(0),
      endKey: new Uint8Array(0),
      limit: 0,
    }, { deadlineMs });
  // A PdClient's own calls are not retried: one that reached a member no longer leading (it was
  // killed and restarted) marks the leader lost, and the second try looks for the leader first.
  return await scan().catch(async () => {
    await context.pd.ensureLeader({ deadlineMs });
    return await scan();
  }).catch((error) => error as Error);
}

/**
 * Asks PD to merge a region into its right neighbour (`merge-region`, as `ctl operator add`
 * does); PD refusing it (an operator running, a replica not aligned, no leader known) is
 * reported, not a failure of the run. The merge itself then runs under the other faults.
 */
async function merge(
  context: NemesisContext,
  fault: Extract<Fault, { kind: "merge" }>,
  stamp: (line: string) => void,
): Promise<boolean> {
  const regions = await pdRegions(context);
  if (regions instanceof Error || regions.length < 2) {
    const why = regions instanceof Error ? regions.message.slice(0, 160) : "one region only";
    stamp(`merge: skipped, ${why}`);
    return false;
  }
  const pick = Math.floor(fault.regionPick * (regions.length - 1));
  const source = regions[pick]!.region;
  const target = regions[pick + 1]!.region;
  const refused = await addOperator(context.cluster, {
    action: "merge-region",
    regionId: String(source.id),
    targetRegionId: String(target.id),
  });
  stamp(
    `merge region ${source.id} into region ${target.id}` +
      (refused === "" ? "" : `: refused, ${refused.slice(0, 160)}`),
  );
  return refused === "";
}

async function transferLeader(
  context: NemesisContext,
  fault: Extract<Fault, { kind: "transfer-leader" }>,
  stamp: (line: string) => void,
): Promise<boolean> {
  const regions = await pdRegions(context);
  if (regions instanceof Error || regions.length === 0) {
    const why = regions instanceof Error ? regions.message.slice(0, 160) : "PD listed no region";
    stamp(`transfer leader: skipped, ${why}`);
    return false;
  }
  const { region, leader } = regions[Math.floor(fault.regionPick * regions.length)]!;
  const target = context.cluster.storeId(fault.store);
  if (leader?.storeId === target) {
    stamp(`transfer leader of region ${region.id}: store ${fault.store} already leads it`);
    return true;
  }
  const refused = await addOperator(context.cluster, {
    action: "transfer-leader",
    regionId: String(region.id),
    storeId: String(target),
  });
  stamp(
    `transfer leader of region ${region.id} to store ${fault.store} (id ${target})` +
      (refused === "" ? "" : `: refused, ${refused}`),
  );
  return refused === "";
}

async function split(
  context: NemesisContext,
  fault: Extract<Fault, { kind: "split" }>,
  stamp: (line: string) => void,
): Promise<boolean> {
  try {
    // TxnKV's splits take the client's own deadline (the suite gives it CHAOS_SPLIT_TIMEOUT_MS).
    const made = fault.transactional
      ? await context.txn.splitRegions([fault.key])
      : await context.raw.splitRegions([fault.key], { timeoutMs: CHAOS_SPLIT_TIMEOUT_MS });
    stamp(
      `split at ${fault.transactional ? "txn" : "raw"} key ${fault.key}: ` +
        (made.length === 0 ? "already a region boundary" : `${made.length} new region(s)`),
    );
    return true;
  } catch (error) {
    stamp(`split at ${fault.key} failed: ${(error as Error).message.slice(0, 160)}`);
    return false;
  }
}
