/**
 * Where a cluster put's time goes (`deno task bench --only put-breakdown`, issue #13 item 5):
 * 1 PD + 3 stores on loopback (`tests/e2e/cluster.ts`, direct links), raw puts through
 * BatchCommands to region 1's leader as `cluster_bench.ts` sends them, at 1, 16 and 64 in flight
 * (`--in-flight` to choose), with the stores' stage clocks on (`BASALT_PUT_STAGES=1`,
 * `src/raftstore/worker/stage_clock.ts`).
 *
 * Each thread of each store logs its cumulative stage figures every second; the bench reads the
 * stores' logs before and after a cell (a pause of 1.5 dump intervals on each side, so the dump
 * after the cell holds all of it) and subtracts. Every stage is timed within one thread; the
 * hops between threads and processes are what one stage leaves over another, so the table
 * shows both the measured stages and the differences:
 *
 *   client latency (mean: in flight ÷ throughput, Little's law; p50 from the bench's samples)
 *   ├ client, gRPC and the leader's main thread  = client − main.workerBatch
 *   └ main.workerBatch (leader main: posted to the worker → its answer back)
 *     ├ to the worker and back, decode, latches  = main.workerBatch − worker.write
 *     └ worker.write (leader worker: handed to the write path → settled)
 *       ├ leader.proposeToLogWrite   proposal → the synced write carrying it starts
 *       ├ engine.syncedWrite         the leader's log write (group commit + fsync)
 *       ├ leader.appendRtt           append sent → first acknowledgement back, of which
 *       │  ├ follower.appendToAck    the follower's worker: received → ack sent (its fsync)
 *       │  └ the rest                worker → main → gRPC → other store's main → worker, twice
 *       └ leader.ackToSettle         ack received → write settled (commit, apply, answer)
 *
 * Also: store CPU µs per put (from /proc), synced writes (fsyncs) and rounds per put on each
 * store, and each thread's loop lag (how late a 20 ms timer fires: a busy or starved thread).
 * At 1 in flight the stages are serial and their means add up to the client's; at higher
 * concurrency they overlap and each is a latency, not a share.
 *
 *   deno task bench --only put-breakdown --seconds 3
 *   deno run -A bench/put_breakdown.ts --seconds 3 --in-flight 1,16,64 --repeat 1
 */
import { StoreConnection } from "../src/client/transport.ts";
import { STAGE_CLOCK_DUMP_INTERVAL_MS } from "../src/constants.ts";
import {
  bucketUpperMs,
  PUT_STAGES_ENV,
  PUT_STAGES_LOG_MESSAGE,
  type StageFigures,
  type StageSnapshot,
} from "../src/raftstore/worker/stage_clock.ts";
import { type Cluster, startCluster } from "../tests/e2e/cluster.ts";
import { leaderTarget, loadAverage } from "./cluster_bench.ts";
import { measureCell, type MeasuredCell } from "./cluster_standalone.ts";
import { formatFigure as fmt, median, printTable } from "./report.ts";
import { operation } from "./server_bench.ts";
import { runClosedLoop } from "./server_load.ts";
import { findProcessByArgument } from "./server_process.ts";

/** Parameters of one breakdown run. */
export interface PutBreakdownOptions {
  /** Keys loaded first; every cell overwrites keys of this space. */
  keys: number;
  cellSeconds: number;
  inFlight: readonly number[];
  /** Cells per in-flight count; the table shows medians. */
  repeat: number;
  /** Puts at 256 in flight before the cells (V8 optimizes the hot code meanwhile). */
  warmupMs: number;
}

const STORES = 3;
const VALUE_BYTES = 100;
const LOAD_IN_FLIGHT = 256;
const WARMUP_IN_FLIGHT = 256;
/** Longest the load may run. */
const LOAD_MAX_MS = 300_000;
/** Sizes a cell's latency array. */
const CELL_MAX_OPS_PER_SECOND = 100_000;
/** The pause around a cell: every thread dumps at least once in it. */
const DUMP_WAIT_MS = Math.ceil(1.5 * STAGE_CLOCK_DUMP_INTERVAL_MS);

/** One thread's figures, keyed `store index/thread/group`. */
type Dumps = Map<string, StageSnapshot>;

/** The last dump of each thread in store `index`'s log. */
export function readDumps(text: string, index: number): Dumps {
  const dumps: Dumps = new Map();
  for (const line of text.split("\n")) {
    if (!line.includes(PUT_STAGES_LOG_MESSAGE)) continue;
    const thread = /thread=("(?:[^"\\]|\\.)*")/.exec(line)?.[1];
    const figures = /figures=("(?:[^"\\]|\\.)*")/.exec(line)?.[1];
    if (thread === undefined || figures === undefined) continue;
    const group = /group=("(?:[^"\\]|\\.)*")/.exec(line)?.[1] ?? '"main"';
    const key = `${index}/${JSON.parse(thread)}/${JSON.parse(group)}`;
    dumps.set(key, JSON.parse(JSON.parse(figures)) as StageSnapshot);
  }
  return dumps;
}

async function readAllDumps(cluster: Cluster): Promise<Dumps> {
  const all: Dumps = new Map();
  for (let i = 0; i < cluster.storeCount; i++) {
    const text = await Deno.readTextFile(`${cluster.dataDir(i)}.server.log`);
    for (const [key, dump] of readDumps(text, i)) all.set(key, dump);
  }
  return all;
}

/** `after − before` for one stage. */
function subtractStage(after: StageFigures, before: StageFigures | undefined): StageFigures {
  return {
    count: after.count - (before?.count ?? 0),
    sumMs: after.sumMs - (before?.sumMs ?? 0),
    buckets: after.buckets.map((n, i) => n - (before?.buckets[i] ?? 0)),
  };
}

/** What the threads of the stores matching `which` did between two reads, stage by stage. */
function stagesBetween(
  before: Dumps,
  after: Dumps,
  which: (storeIndex: number, thread: string) => boolean,
): { stages: Map<string, StageFigures>; counters: Map<string, number> } {
  const stages = new Map<string, StageFigures>();
  const counters = new Map<string, number>();
  for (const [key, dump] of after) {
    const [storeIndex, thread] = key.split("/") as [string, string];
    if (!which(Number(storeIndex), thread)) continue;
    const earlier = before.get(key);
    for (const [name, figures] of Object.entries(dump.stages)) {
      const delta = subtractStage(figures, earlier?.stages[name]);
      const sum = stages.get(name);
      stages.set(
        name,
        sum === undefined ? delta : {
          count: sum.count + delta.count,
          sumMs: sum.sumMs + delta.sumMs,
          buckets: sum.buckets.map((n, i) => n + delta.buckets[i]!),
        },
      );
    }
    for (const [name, n] of Object.entries(dump.counters)) {
      counters.set(name, (counters.get(name) ?? 0) + n - (earlier?.counters[name] ?? 0));
    }
  }
  return { stages, counters };
}

/** The median of a histogram, as its bucket's upper bound (ms). */
function histogramP50(figures: StageFigures | undefined): number {
  if (figures === undefined || figures.count === 0) return NaN;
  let seen = 0;
  for (let i = 0; i < figures.buckets.length; i++) {
    seen += figures.buckets[i]!;
    if (seen * 2 >= figures.count) return bucketUpperMs(i);
  }
  return NaN;
}

const meanOf = (f: StageFigures | undefined) =>
  f === undefined || f.count === 0 ? NaN : f.sumMs / f.count;

/** One cell's figures. */
interface CellFigures {
  cell: MeasuredCell;
  inFlight: number;
  /** Leader's threads ("main" and "worker"), followers' threads. */
  leaderMain: Map<string, StageFigures>;
  leaderWorker: Map<string, StageFigures>;
  followerMain: Map<string, StageFigures>;
  followerWorker: Map<string, StageFigures>;
}

/** A row: a stage, where it is measured, its mean and p50 (ms) and how often per put. */
type Row = { stage: string; where: string; meanMs: number; p50Ms: number; perPut: number };

function rowsOf(f: CellFigures): Row[] {
  const puts = Math.max(1, f.cell.ops);
  const clientMeanMs = (f.inFlight / f.cell.opsPerSecond) * 1000;
  const row = (
    stages: Map<string, StageFigures>,
    name: string,
    where: string,
    label = name,
  ): Row => {
    const figures = stages.get(name);
    return {
      stage: label,
      where,
      meanMs: meanOf(figures),
      p50Ms: histogramP50(figures),
      perPut: (figures?.count ?? 0) / puts,
    };
  };
  const diff = (label: string, a: number, b: number): Row => ({
    stage: label,
    where: "(difference)",
    meanMs: a - b,
    p50Ms: NaN,
    perPut: NaN,
  });
  const mainBatch = row(f.leaderMain, "main.workerBatch", "leader main");
  const write = row(f.leaderWorker, "worker.write", "leader worker");
  const rtt = row(f.leaderWorker, "leader.appendRtt", "leader worker");
  const followerAck = row(f.followerWorker, "follower.appendToAck", "follower workers");
  return [
    {
      stage: "client latency",
      where: "bench",
      meanMs: clientMeanMs,
      p50Ms: f.cell.p50Ms,
      perPut: 1,
    },
    diff("  client + gRPC + leader main thread", clientMeanMs, mainBatch.meanMs),
    mainBatch,
    diff("    main → worker → main hops, decode, latches", mainBatch.meanMs, write.meanMs),
    write,
    row(f.leaderWorker, "leader.proposeToLogWrite", "leader worker", "      propose → log write"),
    row(f.leaderWorker, "engine.syncedWrite", "leader worker", "      log write (fsync)"),
    { ...rtt, stage: "      append → ack (replication RTT)" },
    { ...followerAck, stage: "        follower: append → ack (its fsync)" },
    diff("        hops and gRPC both ways", rtt.meanMs, followerAck.meanMs),
    row(f.leaderWorker, "leader.ackToSettle", "leader worker", "      ack → settled (apply)"),
    row(f.leaderWorker, "driver.round", "leader worker", "rounds (any)"),
    row(f.leaderWorker, "driver.kickToRound", "leader worker", "kick → round (idle loop)"),
    row(f.leaderWorker, "driver.kickDuringRoundToRound", "leader worker", "input waits for round"),
    row(f.leaderWorker, "engine.write", "leader worker", "unsynced writes (apply)"),
    row(f.followerWorker, "engine.syncedWrite", "follower workers", "follower fsyncs"),
    row(f.followerWorker, "driver.round", "follower workers", "follower rounds"),
    row(f.leaderMain, "loop.lag", "leader main", "loop lag (20 ms timer)"),
    row(f.leaderWorker, "loop.lag", "leader worker", "loop lag (20 ms timer)"),
    row(f.followerMain, "loop.lag", "follower mains", "loop lag (20 ms timer)"),
    row(f.followerWorker, "loop.lag", "follower workers", "loop lag (20 ms timer)"),
  ];
}

function indexOfAddress(cluster: Cluster, address: string): number {
  for (let i = 0; i < cluster.storeCount; i++) if (cluster.storeAddr(i) === address) return i;
  throw new Error(`PD names leader address ${address}, which is none of the cluster's stores`);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs one cell with the stage dumps read around it. */
async function runBreakdownCell(
  cluster: Cluster,
  options: {
    leader: number;
    pids: (number | null)[];
    put: (i: number) => Promise<string | null>;
    inFlight: number;
    cellMs: number;
  },
): Promise<CellFigures> {
  await sleep(DUMP_WAIT_MS);
  const before = await readAllDumps(cluster);
  const cell = await measureCell(options.pids, () =>
    runClosedLoop(options.put, {
      inFlight: options.inFlight,
      ops: Math.ceil((CELL_MAX_OPS_PER_SECOND * options.cellMs) / 1000),
      maxMs: options.cellMs,
    }));
  await sleep(DUMP_WAIT_MS);
  const after = await readAllDumps(cluster);
  const part = (leader: boolean, main: boolean) =>
    stagesBetween(
      before,
      after,
      (store, thread) =>
        (store === options.leader) === leader && thread.startsWith("main") === main,
    ).stages;
  return {
    cell,
    inFlight: options.inFlight,
    leaderMain: part(true, true),
    leaderWorker: part(true, false),
    followerMain: part(false, true),
    followerWorker: part(false, false),
  };
}

function printBreakdown(cells: CellFigures[], options: PutBreakdownOptions): void {
  const byInFlight = options.inFlight.map((n) => cells.filter((c) => c.inFlight === n));
  const rows = byInFlight.map((runs) => runs.map(rowsOf));
  const header = ["stage", "measured in"];
  for (const n of options.inFlight) header.push(`${n}: mean ms`, `p50`, `/put`);
  const lines = rows[0]![0]!.map((first, r) => {
    const line = [first.stage, first.where];
    for (const runs of rows) {
      const pick = (f: (row: Row) => number) => median(runs.map((run) => f(run[r]!)));
      line.push(fmt(pick((x) => x.meanMs), 2), fmt(pick((x) => x.p50Ms), 2));
      line.push(fmt(pick((x) => x.perPut), 2));
    }
    return line;
  });
  printTable(
    `put breakdown: 3 stores, raw puts through BatchCommands to the leader, 100 B values; ` +
      `median of ${options.repeat} × ${options.cellSeconds} s per cell (p50 of a stage: its ` +
      `histogram bucket's bound, ±19%)`,
    header,
    lines,
  );
  const summary = byInFlight.map((runs, k) => {
    const pick = (f: (c: CellFigures) => number) => median(runs.map(f));
    const puts = (c: CellFigures) => Math.max(1, c.cell.ops);
    const count = (stages: Map<string, StageFigures>, name: string) => stages.get(name)?.count ?? 0;
    return [
      `${options.inFlight[k]}`,
      fmt(pick((c) => c.cell.opsPerSecond)),
      fmt(pick((c) => c.cell.p50Ms), 2),
      fmt(pick((c) => c.cell.p99Ms), 2),
      fmt(pick((c) => c.cell.cpuUsPerOp[0]!)),
      fmt(pick((c) => c.cell.cpuUsPerOp[1]! + c.cell.cpuUsPerOp[2]!)),
      fmt(pick((c) => count(c.leaderWorker, "engine.syncedWrite") / puts(c)), 3),
      fmt(pick((c) => count(c.followerWorker, "engine.syncedWrite") / puts(c)), 3),
      fmt(pick((c) => count(c.leaderWorker, "driver.round") / puts(c)), 3),
      fmt(pick((c) => c.cell.errors)),
    ];
  });
  printTable(
    `put breakdown: throughput, CPU and fsyncs per put (load average ${loadAverage()})`,
    [
      "in flight",
      "puts/s",
      "p50 ms",
      "p99 ms",
      "leader CPU µs/put",
      "followers CPU µs/put (sum)",
      "leader fsyncs/put",
      "followers fsyncs/put (sum)",
      "leader rounds/put",
      "errors",
    ],
    summary,
  );
}

/** Runs the breakdown and prints its tables. */
export async function benchPutBreakdown(options: PutBreakdownOptions): Promise<void> {
  const value = new Uint8Array(VALUE_BYTES).map((_, i) => (i * 31 + 7) & 0xff);
  console.log(`put breakdown: starting 1 PD + ${STORES} stores (load ${loadAverage()})…`);
  const cluster = await startCluster({
    stores: STORES,
    proxies: false,
    env: { [PUT_STAGES_ENV]: "1" },
  });
  let passed = false;
  const cells: CellFigures[] = [];
  try {
    const target = await leaderTarget(cluster);
    const leader = indexOfAddress(cluster, target.address);
    const pids = [leader, ...[0, 1, 2].filter((i) => i !== leader)]
      .map((i) => findProcessByArgument(cluster.dataDir(i)));
    const connection = new StoreConnection(target.address);
    try {
      const put = operation(connection, {
        op: "put",
        keySpace: options.keys,
        value,
        context: target.context,
      });
      console.log(`put breakdown: leader ${target.address}; loading ${options.keys} keys…`);
      const load = await runClosedLoop(put, {
        inFlight: LOAD_IN_FLIGHT,
        ops: options.keys,
        maxMs: LOAD_MAX_MS,
      });
      if (load.errors > 0) throw new Error(`the load failed: ${load.firstError}`);
      await runClosedLoop(put, {
        inFlight: WARMUP_IN_FLIGHT,
        ops: Math.ceil((CELL_MAX_OPS_PER_SECOND * options.warmupMs) / 1000),
        maxMs: options.warmupMs,
      });
      for (let run = 0; run < options.repeat; run++) {
        for (const inFlight of options.inFlight) {
          const cellMs = options.cellSeconds * 1000;
          cells.push(await runBreakdownCell(cluster, { leader, pids, put, inFlight, cellMs }));
          const last = cells[cells.length - 1]!.cell;
          console.log(
            `put breakdown: ${inFlight} in flight: ${fmt(last.opsPerSecond)} puts/s, ` +
              `p50 ${fmt(last.p50Ms, 2)} ms, errors ${last.errors}`,
          );
        }
      }
      passed = true;
    } finally {
      connection.close();
    }
  } finally {
    await cluster.stop({ keepLogs: !passed });
  }
  printBreakdown(cells, options);
}

if (import.meta.main) {
  const { parseArgs } = await import("node:util");
  const { values } = parseArgs({
    options: {
      num: { type: "string", default: "5000" },
      seconds: { type: "string", default: "3" },
      repeat: { type: "string", default: "1" },
      "in-flight": { type: "string", default: "1,16,64" },
      "warmup-seconds": { type: "string", default: "8" },
    },
  });
  await benchPutBreakdown({
    keys: Number(values.num),
    cellSeconds: Number(values.seconds),
    repeat: Number(values.repeat),
    inFlight: values["in-flight"].split(",").map(Number),
    warmupMs: Number(values["warmup-seconds"]) * 1000,
  });
}
