/**
 * Cluster benchmark (`deno task bench --only cluster`): replicated raw KV on this machine, and
 * what the Raft log costs a standalone store (issue #10, item 11).
 *
 * - Cluster: 1 PD + 3 stores (`tests/e2e/cluster.ts`, store-to-store links direct, no test
 *   proxies), each with its default configuration (sync-log on: a put is acknowledged once a
 *   quorum has fsynced it). The bench waits for PD to report region 1 with three voters and a
 *   leader, then sends every request to the leader's store with the leader's peer in the context.
 * - Data: 16-byte keys, 100-byte values; `keys` keys are loaded first (256 in flight), then each
 *   cell overwrites or reads keys of that space in a scattered order, through BatchCommands
 *   (`src/client/transport.ts`), at 1, 16, 64 and 256 in flight, for `cellSeconds` each.
 *   CPU per operation is read from /proc for the leader, the two followers and this process.
 * - The race against etcd (issue #13 item 4, `etcd_race.ts`): when the system's etcd runs, a
 *   3-member etcd cluster on loopback (fsync on) is started beside Basalt's, loaded and warmed
 *   up the same way, and driven through `etcdserverpb.KV` (Put; Range, linearizable) at its
 *   leader with the same keys, values, in-flight counts and cell duration; its cells alternate
 *   with Basalt's. Without etcd the race is skipped, saying why.
 * - Standalone: raw puts on the store of the tree before the log (the "direct path") and of this
 *   tree, same run, alternating (`cluster_standalone.ts`).
 * - Every figure is the median over `repeat` runs. A cell with failed requests is reported with
 *   its count and first error and misses its target.
 *
 * Targets: 3-replica durable puts ≥ 20k/s at 256 in flight, gets ≥ 50k/s at 256, p99 < 50 ms at
 * 64 in flight; standalone puts through the log ≥ 0.8× the direct path. Against etcd, at 64 in
 * flight: puts ≥ 5× etcd's with a p99 no worse than etcd's, linearizable gets ≥ 5× etcd's.
 */
import { PdClient } from "../src/client/pd_client.ts";
import { StoreConnection } from "../src/client/transport.ts";
import { type Cluster, startCluster } from "../tests/e2e/cluster.ts";
import {
  BASELINE_COMMIT,
  benchStandaloneLog,
  CELL_MAX_OPS_PER_SECOND,
  measureCell,
  type MeasuredCell,
  type RegionTarget,
  type StandaloneResult,
  waitForRegionTarget,
} from "./cluster_standalone.ts";
import { type EtcdCluster, etcdVersion, startEtcdCluster } from "./etcd_cluster.ts";
import {
  type Contender,
  ETCD_CLIENT_CHANNELS,
  ETCD_MEMBERS,
  etcdContender,
  type Op,
  printRace,
  printRaceTargets,
} from "./etcd_race.ts";
import { median, printTable } from "./report.ts";
import { operation } from "./server_bench.ts";
import { runClosedLoop } from "./server_load.ts";
import { findProcessByArgument } from "./server_process.ts";

/** Parameters of one cluster benchmark run. */
export interface ClusterBenchOptions {
  /** Keys loaded before the cells, and the key space every cell walks. */
  keys: number;
  /** How long one cell runs. */
  cellSeconds: number;
  /** Runs of the cell grid; tables show medians. */
  repeat: number;
}

const IN_FLIGHT = [1, 16, 64, 256] as const;
const VALUE_BYTES = 100;
const STORES = 3;
const LOAD_IN_FLIGHT = 256;
/** Longest the initial load may run. */
const LOAD_MAX_MS = 600_000;
/**
 * Puts, then gets, at 256 in flight before the first cell (and after the load), so that the
 * cells measure code V8 has optimized: on this machine a fresh cluster's puts climb from ~2k/s
 * to their steady rate over the first ~15 s of load (measured; the hot functions of an
 * unwarmed store's profile are still baseline-compiled).
 */
export const CLUSTER_WARMUP_PUTS_MS = 10_000;
export const CLUSTER_WARMUP_GETS_MS = 3_000;
/** How long PD may take to bring region 1 to three voters with a leader. */
const VOTERS_TIMEOUT_MS = 60_000;
/** The fewest keys and the shortest cell the bench accepts (below, percentiles mean little). */
export const CLUSTER_BENCH_MIN_KEYS = 1_000;
export const CLUSTER_BENCH_MIN_CELL_SECONDS = 0.5;

/** Issue #10 item 11's targets. */
export const CLUSTER_TARGETS = {
  putsPerSecondAt256: 20_000,
  getsPerSecondAt256: 50_000,
  p99MsAt64: 50,
  logOverDirectAtLeast: 0.8,
} as const;

/** The figures of one cell over its runs (medians; errors summed). */
export interface Summary {
  opsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  firstError?: string;
  cpuUsPerOp: number[];
  benchCpuUsPerOp: number;
}

/** Medians over runs (errors: the total), CPU per process position. */
export function summarize(cells: readonly MeasuredCell[]): Summary {
  const pick = (f: (cell: MeasuredCell) => number) => median(cells.map(f));
  const processes = cells[0]?.cpuUsPerOp.length ?? 0;
  return {
    opsPerSecond: pick((c) => c.opsPerSecond),
    p50Ms: pick((c) => c.p50Ms),
    p99Ms: pick((c) => c.p99Ms),
    errors: cells.reduce((sum, c) => sum + c.errors, 0),
    firstError: cells.find((c) => c.firstError !== undefined)?.firstError,
    cpuUsPerOp: Array.from({ length: processes }, (_, i) => pick((c) => c.cpuUsPerOp[i]!)),
    benchCpuUsPerOp: pick((c) => c.benchCpuUsPerOp),
  };
}

/** One target of the issue and whether `summary` meets it (a cell with errors never does). */
export interface Verdict {
  what: string;
  target: string;
  measured: string;
  met: boolean;
}

/** The verdicts a cell of `op` at `inFlight` is judged by (none for most cells). */
export function clusterVerdicts(op: Op, inFlight: number, summary: Summary): Verdict[] {
  const verdicts: Verdict[] = [];
  const clean = summary.errors === 0;
  if (inFlight === 256) {
    const wanted = op === "put"
      ? CLUSTER_TARGETS.putsPerSecondAt256
      : CLUSTER_TARGETS.getsPerSecondAt256;
    verdicts.push({
      what: `3-replica ${op}s/s at 256 in flight`,
      target: `≥ ${fmt(wanted)}/s`,
      measured: `${fmt(summary.opsPerSecond)}/s`,
      met: clean && summary.opsPerSecond >= wanted,
    });
  }
  if (inFlight === 64) {
    verdicts.push({
      what: `3-replica ${op} p99 at 64 in flight`,
      target: `< ${CLUSTER_TARGETS.p99MsAt64} ms`,
      measured: `${fmt(summary.p99Ms, 1)} ms`,
      met: clean && summary.p99Ms < CLUSTER_TARGETS.p99MsAt64,
    });
  }
  return verdicts;
}

/** The verdict of standalone puts at `inFlight`: log ÷ direct throughput. */
export function logVerdict(inFlight: number, direct: Summary, log: Summary): Verdict {
  const ratio = log.opsPerSecond / direct.opsPerSecond;
  return {
    what: `standalone puts through the log ÷ direct, ${inFlight} in flight`,
    target: `≥ ${CLUSTER_TARGETS.logOverDirectAtLeast}×`,
    measured: Number.isFinite(ratio) ? `${ratio.toFixed(2)}×` : "n/a",
    met: log.errors === 0 && direct.errors === 0 &&
      ratio >= CLUSTER_TARGETS.logOverDirectAtLeast,
  };
}

function fmt(value: number, digits = 0): string {
  return Number.isFinite(value)
    ? value.toLocaleString("en-US", {
      maximumFractionDigits: digits,
      minimumFractionDigits: digits,
    })
    : "n/a";
}

/** The cluster's processes whose CPU a cell accounts: leader first, then the followers. */
function storePids(cluster: Cluster, leaderIndex: number): (number | null)[] {
  const order = [leaderIndex, ...[0, 1, 2].filter((i) => i !== leaderIndex)];
  return order.map((i) => findProcessByArgument(cluster.dataDir(i)));
}

/** The harness's index of the store that PD knows by `address`. */
function indexOfAddress(cluster: Cluster, address: string): number {
  for (let i = 0; i < cluster.storeCount; i++) if (cluster.storeAddr(i) === address) return i;
  throw new Error(`PD names leader address ${address}, which is none of the cluster's stores`);
}

/** One contender's figures: its load, and every run of each cell. */
interface ContenderResult {
  name: string;
  address: string;
  load: MeasuredCell;
  cells: Map<string, MeasuredCell[]>;
}

interface ClusterResult {
  basalt: ContenderResult;
  /** etcd's figures, or why the race was not run. */
  etcd: ContenderResult | { skipped: string };
}

const cellName = (op: Op, inFlight: number) => `${op} ${inFlight}`;

/** The first region of a 3-store cluster once it has three voters: its leader's address. */
export async function leaderTarget(cluster: Cluster): Promise<RegionTarget> {
  const pd = await PdClient.connect([cluster.pdAddr]);
  try {
    return await waitForRegionTarget(pd, {
      voters: STORES,
      timeoutMs: VOTERS_TIMEOUT_MS,
      addressOf: async (storeId) => (await pd.getStore(storeId)).address,
    });
  } finally {
    pd.close();
  }
}

/** Basalt's region 1 leader as a contender: raw puts and gets through BatchCommands. */
async function basaltContender(
  cluster: Cluster,
  options: { keys: number; value: Uint8Array },
): Promise<Contender> {
  const target = await leaderTarget(cluster);
  const connection = new StoreConnection(target.address);
  return {
    name: "Basalt",
    address: target.address,
    pids: storePids(cluster, indexOfAddress(cluster, target.address)),
    operation: (op) =>
      operation(connection, {
        op,
        keySpace: options.keys,
        value: options.value,
        context: target.context,
      }),
    close: () => connection.close(),
  };
}

const opsOf = (ms: number) => Math.ceil((CELL_MAX_OPS_PER_SECOND * ms) / 1000);

/** A closed loop of `op` on `contender`, its CPU accounted. */
function runCell(
  contender: Contender,
  op: Op,
  limits: { inFlight: number; ops: number; maxMs: number },
): Promise<MeasuredCell> {
  return measureCell(contender.pids, () => runClosedLoop(contender.operation(op), limits));
}

/** Loads the key space into `contender`, then warms it up; returns the load's figures. */
async function loadAndWarm(
  contender: Contender,
  options: ClusterBenchOptions,
): Promise<MeasuredCell> {
  console.log(
    `cluster: ${contender.name} at ${contender.address}: loading ${fmt(options.keys)} keys…`,
  );
  const load = await runCell(contender, "put", {
    inFlight: LOAD_IN_FLIGHT,
    ops: options.keys,
    maxMs: LOAD_MAX_MS,
  });
  if (load.errors > 0 || load.ops < options.keys) {
    throw new Error(
      `cluster: the load of ${contender.name} wrote ${load.ops - load.errors} of ` +
        `${options.keys} keys; first error: ${load.firstError ?? "none (it ran out of time)"}`,
    );
  }
  for (
    const [op, ms] of [["put", CLUSTER_WARMUP_PUTS_MS], ["get", CLUSTER_WARMUP_GETS_MS]] as const
  ) {
    await runCell(contender, op, { inFlight: LOAD_IN_FLIGHT, ops: opsOf(ms), maxMs: ms });
  }
  return load;
}

/**
 * Runs the grid `repeat` times, each cell on every contender in turn; which goes first swaps
 * every cell, so a burst of load from other processes falls on each in turn.
 */
async function runGrid(
  contenders: readonly Contender[],
  options: ClusterBenchOptions,
): Promise<Map<string, MeasuredCell[]>[]> {
  const cellMs = options.cellSeconds * 1000;
  const results = contenders.map(() => new Map<string, MeasuredCell[]>());
  let turn = 0;
  for (let run = 0; run < options.repeat; run++) {
    for (const op of ["put", "get"] as const) {
      for (const inFlight of IN_FLIGHT) {
        const order = contenders.map((_, k) => k);
        if (turn++ % 2 === 1) order.reverse();
        for (const k of order) {
          const cell = await runCell(contenders[k]!, op, {
            inFlight,
            ops: opsOf(cellMs),
            maxMs: cellMs,
          });
          const cells = results[k]!;
          const name = cellName(op, inFlight);
          cells.set(name, [...(cells.get(name) ?? []), cell]);
        }
      }
    }
  }
  return results;
}

/**
 * Loads and warms Basalt's cluster and, when given, etcd's; then runs the grid on both,
 * alternating. `etcd` is the running etcd cluster or why there is none.
 */
async function runClusterCells(
  cluster: Cluster,
  etcd: EtcdCluster | { skipped: string },
  options: ClusterBenchOptions & { value: Uint8Array },
): Promise<ClusterResult> {
  const contenders: Contender[] = [];
  try {
    contenders.push(await basaltContender(cluster, options));
    console.log(`cluster: region 1 has ${STORES} voters, leader at ${contenders[0]!.address}`);
    if (!("skipped" in etcd)) {
      contenders.push(await etcdContender(etcd, { ...options, channels: ETCD_CLIENT_CHANNELS }));
    }
    const loads: MeasuredCell[] = [];
    for (const contender of contenders) loads.push(await loadAndWarm(contender, options));
    const cells = await runGrid(contenders, options);
    const resultOf = (k: number): ContenderResult => ({
      name: contenders[k]!.name,
      address: contenders[k]!.address,
      load: loads[k]!,
      cells: cells[k]!,
    });
    if (!("skipped" in etcd)) {
      const leader = etcd.members[await etcd.leader()]!;
      if (leader.clientAddress !== contenders[1]!.address) {
        console.log(`cluster: etcd's leader moved to ${leader.name} during the grid`);
      }
    }
    return {
      basalt: resultOf(0),
      etcd: "skipped" in etcd ? etcd : resultOf(1),
    };
  } finally {
    for (const contender of contenders) contender.close();
  }
}

function reportCluster(result: ContenderResult, options: ClusterBenchOptions): Verdict[] {
  const verdicts: Verdict[] = [];
  const lines: string[][] = [];
  for (const op of ["put", "get"] as const) {
    for (const inFlight of IN_FLIGHT) {
      const summary = summarize(result.cells.get(cellName(op, inFlight))!);
      const cellVerdicts = clusterVerdicts(op, inFlight, summary);
      verdicts.push(...cellVerdicts);
      const [leader, ...followers] = summary.cpuUsPerOp;
      lines.push([
        op,
        `${inFlight}`,
        fmt(summary.opsPerSecond),
        fmt(summary.p50Ms, 2),
        fmt(summary.p99Ms, 2),
        fmt(leader ?? NaN),
        followers.map((f) => fmt(f)).join(" / "),
        fmt(summary.benchCpuUsPerOp),
        summary.errors === 0 ? "0" : `${summary.errors} (${summary.firstError})`,
        cellVerdicts.map((v) => `${v.target}: ${v.met ? "PASS" : "MISS"}`).join(", "),
      ]);
    }
  }
  printTable(
    `cluster: 3 stores, raw KV through BatchCommands to the leader (${result.address}), ` +
      `16 B keys, 100 B values, sync-log on; median of ${options.repeat} × ` +
      `${options.cellSeconds} s per cell over ${fmt(options.keys)} keys, after the load ` +
      `(${fmt(result.load.opsPerSecond)} puts/s) and a warm-up of ` +
      `${(CLUSTER_WARMUP_PUTS_MS + CLUSTER_WARMUP_GETS_MS) / 1000} s`,
    [
      "op",
      "in flight",
      "ops/s",
      "p50 ms",
      "p99 ms",
      "leader CPU µs/op",
      "followers CPU µs/op",
      "bench CPU µs/op",
      "errors",
      "target",
    ],
    lines,
  );
  return verdicts;
}

function reportStandalone(result: StandaloneResult, options: ClusterBenchOptions): Verdict[] {
  const verdicts: Verdict[] = [];
  const lines = result.inFlight.map((inFlight) => {
    const direct = summarize(result.direct.get(inFlight)!);
    const log = summarize(result.log.get(inFlight)!);
    const verdict = logVerdict(inFlight, direct, log);
    verdicts.push(verdict);
    const errors = direct.errors + log.errors;
    return [
      `${inFlight}`,
      fmt(direct.opsPerSecond),
      fmt(log.opsPerSecond),
      verdict.measured,
      `${fmt(direct.p50Ms, 2)} / ${fmt(log.p50Ms, 2)}`,
      `${fmt(direct.p99Ms, 2)} / ${fmt(log.p99Ms, 2)}`,
      `${fmt(direct.cpuUsPerOp[0] ?? NaN)} / ${fmt(log.cpuUsPerOp[0] ?? NaN)}`,
      errors === 0 ? "0" : `${errors} (${direct.firstError ?? log.firstError})`,
      `${verdict.target}: ${verdict.met ? "PASS" : "MISS"}`,
    ];
  });
  printTable(
    `cluster: standalone raw puts, direct path (${BASELINE_COMMIT}) vs through the log (this ` +
      `tree), same run, alternating; median of ${options.repeat} × ${options.cellSeconds} s`,
    [
      "in flight",
      "direct puts/s",
      "log puts/s",
      "log ÷ direct",
      "p50 ms direct / log",
      "p99 ms direct / log",
      "store CPU µs/put direct / log",
      "errors",
      "target",
    ],
    lines,
  );
  return verdicts;
}

/** The summary to paste into the issue: one markdown row per target. */
function printIssueTable(verdicts: readonly Verdict[], note: string): void {
  console.log(`\n## cluster: targets (issue #10, item 11) — ${note}\n`);
  console.log("| target | wanted | measured | |");
  console.log("| --- | --- | --- | --- |");
  for (const v of verdicts) {
    console.log(`| ${v.what} | ${v.target} | ${v.measured} | ${v.met ? "PASS" : "MISS"} |`);
  }
}

/** The 1-minute load average, as a note on how busy the shared machine was. */
export function loadAverage(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  } catch {
    return "n/a";
  }
}

/** Starts etcd's cluster, or says why there is none (the race is then skipped). */
async function startEtcd(): Promise<EtcdCluster | { skipped: string }> {
  const found = etcdVersion();
  if ("missing" in found) return { skipped: found.missing };
  console.log(`cluster: starting etcd ${found.version}, ${ETCD_MEMBERS} members on loopback…`);
  try {
    return await startEtcdCluster({ members: ETCD_MEMBERS });
  } catch (error) {
    return { skipped: `etcd did not start: ${(error as Error).message}` };
  }
}

function checkOptions(options: ClusterBenchOptions): void {
  if (!Number.isInteger(options.keys) || options.keys < CLUSTER_BENCH_MIN_KEYS) {
    throw new RangeError(`cluster bench: --num must be an integer ≥ ${CLUSTER_BENCH_MIN_KEYS}`);
  }
  if (!(options.cellSeconds >= CLUSTER_BENCH_MIN_CELL_SECONDS)) {
    throw new RangeError(`cluster bench: --seconds must be ≥ ${CLUSTER_BENCH_MIN_CELL_SECONDS}`);
  }
  if (!Number.isInteger(options.repeat) || options.repeat < 1) {
    throw new RangeError("cluster bench: --repeat must be an integer ≥ 1");
  }
}

/** Prints the race's tables (or why it was skipped); returns its verdicts. */
function reportRace(result: ClusterResult, options: ClusterBenchOptions): Verdict[] {
  const etcd = result.etcd;
  if ("skipped" in etcd) {
    console.log(`\ncluster: the race against etcd skipped: ${etcd.skipped}`);
    return [];
  }
  const sides = { basalt: result.basalt, etcd };
  return printRace(
    (side, op, inFlight) => summarize(sides[side].cells.get(cellName(op, inFlight))!),
    {
      inFlight: IN_FLIGHT,
      title: `Basalt (3 stores, BatchCommands to ${result.basalt.address}, 1 connection) vs ` +
        `etcd (${ETCD_MEMBERS} members, fsync on, unary calls to the leader ` +
        `${etcd.address} over ${ETCD_CLIENT_CHANNELS} connections), 16 B keys, 100 B values; ` +
        `median of ${options.repeat} × ${options.cellSeconds} s per cell, alternating; ` +
        `loads ${fmt(result.basalt.load.opsPerSecond)} / ${fmt(etcd.load.opsPerSecond)} puts/s`,
    },
  );
}

/** Runs the cluster benchmark and prints its tables. */
export async function benchCluster(options: ClusterBenchOptions): Promise<void> {
  checkOptions(options);
  const value = new Uint8Array(VALUE_BYTES).map((_, i) => (i * 31 + 7) & 0xff);
  const loadBefore = loadAverage();
  console.log(`cluster: starting 1 PD + ${STORES} stores (load average ${loadBefore})…`);
  const cluster = await startCluster({ stores: STORES, proxies: false });
  let etcd: EtcdCluster | { skipped: string } = { skipped: "not started" };
  let result: ClusterResult;
  let passed = false;
  try {
    etcd = await startEtcd();
    result = await runClusterCells(cluster, etcd, { ...options, value });
    passed = true;
  } finally {
    if (!("skipped" in etcd)) await etcd.stop();
    await cluster.stop({ keepLogs: !passed });
  }
  const verdicts = reportCluster(result.basalt, options);
  const raceVerdicts = reportRace(result, options);

  const repoRoot = new URL("..", import.meta.url).pathname;
  const standalone = await benchStandaloneLog({
    repoRoot,
    inFlight: IN_FLIGHT,
    keys: options.keys,
    cellMs: options.cellSeconds * 1000,
    repeat: options.repeat,
    value,
  });
  if ("skipped" in standalone) {
    console.log(`\ncluster: standalone comparison skipped: ${standalone.skipped}`);
  } else {
    verdicts.push(...reportStandalone(standalone, options));
  }
  const note = `${navigator.hardwareConcurrency} cores, median of ${options.repeat} × ` +
    `${options.cellSeconds} s per cell, load average ${loadBefore} before → ${loadAverage()} after`;
  printIssueTable(verdicts, note);
  if (raceVerdicts.length > 0) printRaceTargets(raceVerdicts, note);
}

if (import.meta.main) {
  const { parseArgs } = await import("node:util");
  const { values } = parseArgs({
    options: {
      num: { type: "string", default: "20000" },
      seconds: { type: "string", default: "5" },
      repeat: { type: "string", default: "1" },
    },
  });
  await benchCluster({
    keys: Number(values.num),
    cellSeconds: Number(values.seconds),
    repeat: Number(values.repeat),
  });
}
