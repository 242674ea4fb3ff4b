/**
 * What idle regions cost real store processes (`deno task bench --only idle`, issue #12 item 3:
 * "10,000 idle regions on three stores cost under 5% of a core per store").
 * `bench/idle_bench.ts` measures the raftstore alone, in process; this runs the whole thing:
 * 1 PD + 3 store processes (`tests/e2e/cluster.ts`, store-to-store links direct), once with
 * `[raftstore] hibernate-regions = true` and once with `false`.
 *
 * Per run:
 * 1. Start the cluster; wait for PD to give region 1 three voters and a leader.
 * 2. Make `regions` regions: `RawKV.splitRegions` at `idle/r000001`, `idle/r000002`, … in
 *    batches of SPLIT_REGION_MAX_KEYS keys (each batch splits the last region, one
 *    SplitRegion). Timed.
 * 3. Wait for PD (ScanRegions) to know every region with three voters and a leader; then for
 *    balance-leader to finish (leader counts within IDLE_LEADER_SPREAD_SLACK, no operator
 *    running), or, when that does not come in time (on a loaded machine elections keep moving
 *    leaders and balance-leader keeps chasing them), for every store to lead at least
 *    IDLE_LEADER_SHARE_MIN of its third; the table says which.
 *    PD runs `leader-schedule-limit = IDLE_LEADER_SCHEDULE_LIMIT` so that the thousands of
 *    transfers take minutes, not half an hour at the default 4. Timed.
 * 4. Let the cluster idle for IDLE_SETTLE_MS (leaders sleep after an election timeout of
 *    quiet), then read each process's utime + stime from /proc/<pid>/stat over `seconds`: the
 *    store processes (`src/server/main.ts`; the launcher `setpriv` execs deno, so the pid found
 *    by the data directory argument is the store's) and PD. Also their RSS, and what disturbed
 *    the quiet: operators PD added during the measurement (its log's "operator added" lines)
 *    and how far each store's leader count moved.
 *
 * Not idle by design: each store sends PD a region heartbeat for every region it leads every
 * `pd-heartbeat-tick-interval` (60 s by default), hibernating or not, and PD handles them; both are
 * in the figures.
 */
import { PdClient } from "../src/client/pd_client.ts";
import { PdResolver } from "../src/client/pd_resolver.ts";
import { RawKV } from "../src/client/raw.ts";
import { DEFAULT_REGION_HEARTBEAT_INTERVAL_MS, SPLIT_REGION_MAX_KEYS } from "../src/constants.ts";
import { utf8 } from "../src/util/bytes.ts";
import { type Cluster, startCluster } from "../tests/e2e/cluster.ts";
import { PdRpc } from "../tests/e2e/pd_lib.ts";
import { loadAverage } from "./cluster_bench.ts";
import { printTable } from "./report.ts";
import { cpuSecondsOf, findProcessByArgument, vmRssBytes } from "./server_process.ts";

/** Parameters of a run. */
export interface IdleClusterOptions {
  /** Regions the cluster holds (default 10 000). */
  regions: number;
  /** How long the idle CPU is measured. */
  seconds: number;
  /** `hibernate-regions` settings to run, in order (default on, then off). */
  hibernate?: boolean[];
  /** Split keys per `splitRegions` call (default and most: SPLIT_REGION_MAX_KEYS). */
  splitBatch?: number;
}

const STORES = 3;
/** The fewest regions and the shortest measurement the bench accepts. */
export const IDLE_CLUSTER_MIN_REGIONS = 1;
export const IDLE_CLUSTER_MIN_SECONDS = 1;
/** Issue #12's target: % of a core per store. */
export const IDLE_CLUSTER_TARGET_PERCENT = 5;
/** PD's leader-schedule-limit here (module header, step 3). */
export const IDLE_LEADER_SCHEDULE_LIMIT = 32;
/** Leader counts this close are balanced (balance-leader stops at a difference of one). */
const IDLE_LEADER_SPREAD_SLACK = 2;
/** Failing that, leadership counts as spread once every store leads this share of its third. */
const IDLE_LEADER_SHARE_MIN = 0.9;
/** How long region 1 may take to get three voters. */
const VOTERS_TIMEOUT_MS = 60_000;
/** Deadline of one SplitRegion batch, and how many times a failed batch is tried. */
const SPLIT_BATCH_TIMEOUT_MS = 120_000;
const SPLIT_BATCH_ATTEMPTS = 3;
/** How long PD may take to know every region with three voters and a leader. */
const REGIONS_TIMEOUT_MS = 600_000;
/** How long balance-leader may take to finish (and then, to spread leadership). */
const LEADERS_TIMEOUT_MS = 480_000;
/** Quiet before the measurement (a few election timeouts: every group asleep). */
const IDLE_SETTLE_MS = 10_000;
const POLL_MS = 1_000;
/**
 * Deadline of one PD call of the bench. Long: with thousands of regions PD's scheduling rounds
 * take hundreds of milliseconds each, and a busy PD answers late; a poll that fails is retried.
 */
const PD_CALL_TIMEOUT_MS = 30_000;
const PROGRESS_EVERY_MS = 15_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const EMPTY = new Uint8Array(0);
const splitKey = (i: number) => `idle/r${String(i).padStart(6, "0")}`;
const seconds = (ms: number) => (ms / 1000).toFixed(1);

/** Regions, healthy ones and leaders per store, as PD knows them. */
interface PdView {
  regions: number;
  /** Regions with three voters (and no other peer) and a leader. */
  ready: number;
  leaders: Map<bigint, number>;
}

async function pdView(pd: PdClient, regions: number): Promise<PdView> {
  const found = await pd.scanRegions({ startKey: EMPTY, endKey: EMPTY, limit: regions + 16 }, {
    deadlineMs: Date.now() + PD_CALL_TIMEOUT_MS,
  });
  const leaders = new Map<bigint, number>();
  let ready = 0;
  for (const { region, leader } of found) {
    const peers = region.peers ?? [];
    const voters = peers.filter((p) => (p.role ?? 0) === 0).length;
    if (leader !== null) leaders.set(leader.storeId!, (leaders.get(leader.storeId!) ?? 0) + 1);
    if (voters === STORES && peers.length === STORES && leader !== null) ready++;
  }
  return { regions: found.length, ready, leaders };
}

function leaderText(view: PdView): string {
  return [...view.leaders].sort((a, b) => (a[0] < b[0] ? -1 : 1))
    .map(([id, n]) => `store ${id}: ${n}`).join(", ");
}

/** Polls `check` every POLL_MS until it returns a value; fails naming `what` and the last view. */
async function poll<T>(
  what: string,
  timeoutMs: number,
  check: () => Promise<{ done: T | null; seen: string }>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastProgressMs = Date.now();
  let failures = 0;
  for (;;) {
    const { done, seen } = await check().catch((error) => {
      failures++;
      return { done: null, seen: `the last poll failed (${failures} so far): ${error.message}` };
    });
    if (done !== null) {
      if (failures > 0) console.log(`idle: ${what}: ${failures} polls of PD failed on the way`);
      return done;
    }
    if (Date.now() >= deadline) {
      throw new Error(`idle: waited ${timeoutMs} ms for ${what}; ${seen}`);
    }
    if (Date.now() - lastProgressMs >= PROGRESS_EVERY_MS) {
      console.log(`idle: … ${what}: ${seen}`);
      lastProgressMs = Date.now();
    }
    await sleep(POLL_MS);
  }
}

/** What one run (one hibernate setting) measured. */
interface IdleRun {
  hibernate: boolean;
  splitMs: number;
  pdReadyMs: number;
  leadersMs: number;
  leaders: string;
  storeCpuPercent: number[];
  pdCpuPercent: number;
  storeRssMb: number[];
  pdRssMb: number;
  /** Operators PD added during the measurement, and running at its start. */
  operatorsAdded: number;
  operatorsRunning: number;
  /** Half the sum of each store's change in leaders over the measurement: leaders moved. */
  leadersMoved: number;
  /** Whether balance-leader had finished (no operator, counts within the slack). */
  quiet: boolean;
}

/**
 * Splits at `regions - 1` keys, `batch` keys per call; a call that fails is made again (at
 * most SPLIT_BATCH_ATTEMPTS times: keys already split are left out) and the failure printed.
 */
async function makeRegions(cluster: Cluster, options: { regions: number; batch: number }) {
  const client = new RawKV(await PdResolver.connect([cluster.pdAddr]));
  const started = performance.now();
  let failedCalls = 0;
  try {
    for (let from = 1; from < options.regions; from += options.batch) {
      const keys: Uint8Array[] = [];
      for (let i = from; i < Math.min(from + options.batch, options.regions); i++) {
        keys.push(utf8(splitKey(i)));
      }
      const batchStarted = performance.now();
      for (let attempt = 1;; attempt++) {
        try {
          await client.splitRegions(keys, { timeoutMs: SPLIT_BATCH_TIMEOUT_MS });
          break;
        } catch (error) {
          failedCalls++;
          console.log(
            `idle: split of ${keys.length} keys from ${splitKey(from)} failed after ` +
              `${seconds(performance.now() - batchStarted)} s (attempt ${attempt}): ` +
              `${(error as Error).message}`,
          );
          if (attempt >= SPLIT_BATCH_ATTEMPTS) throw error;
        }
      }
      console.log(
        `idle: split ${keys.length} keys from ${splitKey(from)} in ` +
          `${seconds(performance.now() - batchStarted)} s`,
      );
    }
  } finally {
    client.close();
  }
  return { splitMs: performance.now() - started, failedCalls };
}

/** WARN lines of a log, counted by their message (the text before the first `key=`). */
async function warnings(path: string): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  const text = await Deno.readTextFile(path).catch(() => "");
  for (const line of text.split("\n")) {
    const match = / WARN (.*?)(?: [a-zA-Z]+=|$)/.exec(line);
    if (match !== null) counts.set(match[1]!, (counts.get(match[1]!) ?? 0) + 1);
  }
  return counts;
}

/** Every WARN message of PD's and the stores' logs with its count, most frequent first. */
async function warningSummary(cluster: Cluster): Promise<string> {
  const logs = [
    ["PD", `${cluster.pd.dataDir}.server.log`],
    ...[0, 1, 2].map((i) => [`store ${i}`, cluster.logPath(i)]),
  ];
  const lines: string[] = [];
  for (const [what, path] of logs) {
    const counts = [...(await warnings(path!))].sort((a, b) => b[1] - a[1]);
    if (counts.length === 0) continue;
    lines.push(`  ${what}: ${counts.map(([message, n]) => `${n}× "${message}"`).join(", ")}`);
  }
  return lines.length === 0 ? "  none" : lines.join("\n");
}

/** Operators PD is running now. */
async function runningOperators(admin: PdRpc): Promise<number> {
  const answer = await admin.admin("ListOperators");
  return (answer.operators as unknown[]).length;
}

/**
 * Waits until PD is quiet: leader counts within IDLE_LEADER_SPREAD_SLACK of each other and no
 * operator running. When that does not come within LEADERS_TIMEOUT_MS (on a loaded machine
 * elections keep moving leaders and balance-leader keeps chasing them), goes on once every store
 * leads IDLE_LEADER_SHARE_MIN of its third, and says so: the measurement then shows how much
 * moved during it.
 */
async function waitForLeaderSpread(pd: PdClient, admin: PdRpc, regions: number) {
  const least = Math.floor((IDLE_LEADER_SHARE_MIN * regions) / STORES);
  const check = (strict: boolean) => async () => {
    const view = await pdView(pd, regions);
    const running = await runningOperators(admin);
    // Every store counts, leading none or not (PD's view names only stores that lead).
    const counts = [...view.leaders.values()];
    while (counts.length < STORES) counts.push(0);
    const spread = Math.max(...counts) - Math.min(...counts);
    const done = view.ready === regions &&
      (strict
        ? spread <= IDLE_LEADER_SPREAD_SLACK && running === 0
        : counts.every((n) => n >= least));
    return {
      done: done ? view : null,
      seen: `leaders ${leaderText(view)}; ${running} operators running; ${view.ready} ready`,
    };
  };
  try {
    return {
      view: await poll("balance-leader to finish", LEADERS_TIMEOUT_MS, check(true)),
      quiet: true,
    };
  } catch (error) {
    console.log(`idle: ${(error as Error).message}; measuring once every store leads ≥ ${least}`);
    return {
      view: await poll(`every store to lead ≥ ${least}`, LEADERS_TIMEOUT_MS, check(false)),
      quiet: false,
    };
  }
}

/** "operator added" lines in PD's log so far. */
async function operatorsAdded(cluster: Cluster): Promise<number> {
  const text = await Deno.readTextFile(`${cluster.pd.dataDir}.server.log`);
  return text.split("\n").filter((line) => line.includes("operator added")).length;
}

/** The CPU share (% of one core) of each pid over `ms`. */
async function cpuPercent(pids: readonly number[], ms: number): Promise<number[]> {
  const before = pids.map(cpuSecondsOf);
  const started = performance.now();
  await sleep(ms);
  const elapsedS = (performance.now() - started) / 1000;
  return pids.map((pid, i) => (100 * (cpuSecondsOf(pid) - before[i]!)) / elapsedS);
}

function pidOf(argument: string, what: string): number {
  const pid = findProcessByArgument(argument);
  if (pid === null) throw new Error(`idle: no process of ${what} (argument ${argument}) in /proc`);
  return pid;
}

async function runOnce(options: IdleClusterOptions, hibernate: boolean): Promise<IdleRun> {
  const configDir = await Deno.makeTempDir({ prefix: "basalt_bench_idle_" });
  await Deno.writeTextFile(
    `${configDir}/store.toml`,
    `[raftstore]\nhibernate-regions = ${hibernate}\n`,
  );
  console.log(
    `\nidle: hibernate-regions = ${hibernate}: 1 PD + ${STORES} stores, ${options.regions} ` +
      `regions (load average ${loadAverage()})…`,
  );
  const cluster = await startCluster({
    stores: STORES,
    proxies: false,
    storeArgs: ["--config", `${configDir}/store.toml`],
    pdConfig: `[schedule]\nleader-schedule-limit = ${IDLE_LEADER_SCHEDULE_LIMIT}\n`,
  });
  const pd = await PdClient.connect([cluster.pdAddr]);
  const admin = await new PdRpc(cluster.pdAddr).connect();
  let passed = false;
  try {
    await poll("region 1 to have three voters", VOTERS_TIMEOUT_MS, async () => {
      const view = await pdView(pd, 1);
      return { done: view.ready === 1 ? true : null, seen: `${view.ready} ready` };
    });
    const { splitMs, failedCalls } = await makeRegions(cluster, {
      regions: options.regions,
      batch: options.splitBatch ?? SPLIT_REGION_MAX_KEYS,
    });
    console.log(
      `idle: ${options.regions - 1} splits took ${seconds(splitMs)} s ` +
        `(${failedCalls} failed calls made again)`,
    );
    const readyStarted = performance.now();
    await poll(
      `PD to know ${options.regions} regions with 3 voters and a leader`,
      REGIONS_TIMEOUT_MS,
      async () => {
        const view = await pdView(pd, options.regions);
        const done = view.regions === options.regions && view.ready === options.regions;
        return { done: done ? true : null, seen: `${view.regions} regions, ${view.ready} ready` };
      },
    );
    const pdReadyMs = performance.now() - readyStarted;
    const leadersStarted = performance.now();
    const { view: balanced, quiet } = await waitForLeaderSpread(pd, admin, options.regions);
    const leadersMs = performance.now() - leadersStarted;
    console.log(
      `idle: PD knew every region ${seconds(pdReadyMs)} s after the splits; leaders spread ` +
        `${seconds(leadersMs)} s later (${leaderText(balanced)}); idling ${
          IDLE_SETTLE_MS / 1000
        } s…`,
    );
    await sleep(IDLE_SETTLE_MS);
    const storePids = [0, 1, 2].map((i) => pidOf(cluster.dataDir(i), `store ${i}`));
    const pdPid = pidOf(cluster.pd.dataDir, "PD");
    const before = await pdView(pd, options.regions);
    const operatorsRunning = await runningOperators(admin);
    const addedBefore = await operatorsAdded(cluster);
    const cpu = await cpuPercent([...storePids, pdPid], options.seconds * 1000);
    const operatorsAddedDuring = (await operatorsAdded(cluster)) - addedBefore;
    const mb = (pid: number) => vmRssBytes(pid) / (1024 * 1024);
    // The regions are still all there after the measurement (nothing fell over meanwhile).
    const after = await pdView(pd, options.regions);
    let leaderDelta = 0;
    for (const [id, n] of after.leaders) leaderDelta += Math.abs(n - (before.leaders.get(id) ?? 0));
    if (after.ready !== options.regions) {
      throw new Error(
        `idle: after the measurement PD saw ${after.ready} of ${options.regions} regions ready`,
      );
    }
    console.log(`idle: WARN lines of the run:\n${await warningSummary(cluster)}`);
    passed = true;
    return {
      hibernate,
      splitMs,
      pdReadyMs,
      leadersMs,
      leaders: leaderText(after),
      storeCpuPercent: cpu.slice(0, STORES),
      pdCpuPercent: cpu[STORES]!,
      storeRssMb: storePids.map(mb),
      pdRssMb: mb(pdPid),
      operatorsAdded: operatorsAddedDuring,
      operatorsRunning,
      leadersMoved: leaderDelta / 2,
      quiet,
    };
  } finally {
    pd.close();
    admin.close();
    await cluster.stop({ keepLogs: !passed });
    await Deno.remove(configDir, { recursive: true });
  }
}

function report(runs: readonly IdleRun[], options: IdleClusterOptions): void {
  const pct = (p: number) => p.toFixed(2);
  printTable(
    `idle: ${options.regions} idle regions on ${STORES} store processes, CPU over ` +
      `${options.seconds} s after ${IDLE_SETTLE_MS / 1000} s of quiet (region heartbeats every ` +
      `${DEFAULT_REGION_HEARTBEAT_INTERVAL_MS / 1000} s included)`,
    [
      "hibernate",
      "% of a core per store (1/2/3)",
      "PD %",
      "store RSS MB",
      "PD RSS MB",
      "splits s",
      "PD ready s",
      "leaders spread s",
      "leaders",
      "balanced",
      "ops running / added / leaders moved in window",
      `target < ${IDLE_CLUSTER_TARGET_PERCENT}%`,
    ],
    runs.map((run) => [
      run.hibernate ? "on" : "off",
      run.storeCpuPercent.map(pct).join(" / "),
      pct(run.pdCpuPercent),
      run.storeRssMb.map((m) => m.toFixed(0)).join(" / "),
      run.pdRssMb.toFixed(0),
      seconds(run.splitMs),
      seconds(run.pdReadyMs),
      seconds(run.leadersMs),
      run.leaders,
      run.quiet ? "yes" : "NO",
      `${run.operatorsRunning} / ${run.operatorsAdded} / ${run.leadersMoved}`,
      run.storeCpuPercent.every((p) => p < IDLE_CLUSTER_TARGET_PERCENT) ? "PASS" : "MISS",
    ]),
  );
  const on = runs.find((run) => run.hibernate);
  const off = runs.find((run) => !run.hibernate);
  if (on !== undefined && off !== undefined) {
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const ratio = mean(off.storeCpuPercent) / mean(on.storeCpuPercent);
    console.log(
      `\nidle: mean store CPU ${pct(mean(on.storeCpuPercent))}% hibernating vs ` +
        `${pct(mean(off.storeCpuPercent))}% awake: ${ratio.toFixed(1)}× less; PD ` +
        `${pct(on.pdCpuPercent)}% vs ${pct(off.pdCpuPercent)}%`,
    );
  }
}

/** Runs the idle benchmark (each hibernate setting on a fresh cluster) and prints its table. */
export async function benchIdleCluster(options: IdleClusterOptions): Promise<void> {
  if (!Number.isInteger(options.regions) || options.regions < IDLE_CLUSTER_MIN_REGIONS) {
    throw new RangeError(`idle bench: --num must be an integer ≥ ${IDLE_CLUSTER_MIN_REGIONS}`);
  }
  const batch = options.splitBatch ?? SPLIT_REGION_MAX_KEYS;
  if (!Number.isInteger(batch) || batch < 1 || batch > SPLIT_REGION_MAX_KEYS) {
    throw new RangeError(`idle bench: --split-batch must be 1..${SPLIT_REGION_MAX_KEYS}`);
  }
  if (!(options.seconds >= IDLE_CLUSTER_MIN_SECONDS)) {
    throw new RangeError(`idle bench: --seconds must be ≥ ${IDLE_CLUSTER_MIN_SECONDS}`);
  }
  const runs: IdleRun[] = [];
  for (const hibernate of options.hibernate ?? [true, false]) {
    runs.push(await runOnce(options, hibernate));
  }
  report(runs, options);
}

if (import.meta.main) {
  const { parseArgs } = await import("node:util");
  const { values } = parseArgs({
    options: {
      regions: { type: "string", default: "10000" },
      seconds: { type: "string", default: "20" },
      hibernate: { type: "string", default: "on,off" },
      "split-batch": { type: "string", default: String(SPLIT_REGION_MAX_KEYS) },
    },
  });
  await benchIdleCluster({
    regions: Number(values.regions),
    seconds: Number(values.seconds),
    hibernate: values.hibernate.split(",").map((v) => v.trim() === "on"),
    splitBatch: Number(values["split-batch"]),
  });
}
