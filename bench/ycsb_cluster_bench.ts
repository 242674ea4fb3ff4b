/**
 * YCSB on the cluster (`deno task bench --only ycsb-cluster`, issue #12): workloads A–F through
 * `TxnKV` and `RawKV` against 1 PD + 3 stores holding at least YCSB_CLUSTER_MIN_REGIONS
 * regions, beside the same workloads against a standalone store started in the same run; the
 * time a manual split takes under load; and every client operation that failed.
 *
 * - **Regions by the split checker**, not by pre-splitting: the stores run with
 *   `[coprocessor] region-max-size` set to the loaded data ÷ YCSB_CLUSTER_TARGET_REGIONS
 *   (`region-split-size` two thirds of it) and `[raftstore] split-region-check-tick-interval`
 *   short, so the regions split as the records load (real splits, under the load's writes).
 *   The bench then waits for PD (ScanRegions) to report at least YCSB_CLUSTER_MIN_REGIONS
 *   regions, each with three voters and a leader, and fails naming what it saw otherwise.
 *   The standalone store runs its default configuration (one region, one replica): it is the
 *   reference the cluster's figures are divided by.
 * - Records, workloads and clients are `ycsb_bench.ts`'s: `records` records of VALUE_BYTES in
 *   each key space ("r/" raw, "t/" transactional, loaded on each target), 64 requests in
 *   flight, transactional operations with async commit and 1PC, read-modify-write (F) as one
 *   transaction (raw: RawGet then RawPut). Each (workload, client, target) cell runs for
 *   `seconds`; the cluster and the standalone cells alternate (which goes first swaps every
 *   workload), so a burst of load from other processes falls on both.
 * - **Errors** are operations that failed after the client's own retries (region errors are
 *   retried inside the client and are not errors here); expected: none.
 * - **Split under load**: while workload A runs through RawKV on the cluster, the region that
 *   the workload's zipfian keys hit most is split at the middle record key it holds
 *   (`RawKV.splitRegions`). Reported: request → answer, request → both new regions answering a
 *   RawGet sent straight to their leaders, request → PD knowing both with a leader, and the
 *   latency (p99, max) and errors of the operations started in the second before, during, and
 *   the second after.
 */
import { PdClient, type PdRegion } from "../src/client/pd_client.ts";
import { RawKV } from "../src/client/raw.ts";
import type { RegionInfo } from "../src/client/region.ts";
import { type TransactionOptions, TxnKV } from "../src/client/txn/mod.ts";
import { compareBytes, utf8 } from "../src/util/bytes.ts";
import { SeededRandom } from "../src/util/random.ts";
import { type Cluster, startCluster } from "../tests/e2e/cluster.ts";
import { startServer, type TestServer } from "../tests/e2e/lib.ts";
import { loadAverage } from "./cluster_bench.ts";
import { waitForRegionTarget } from "./cluster_standalone.ts";
import { cpuSecondsOf, findProcessByArgument } from "./server_process.ts";
import { TIKV_RAW_YCSB_A } from "./etcd_race.ts";
import { printTable } from "./report.ts";
import { type LoadResult, quantile, runClosedLoop } from "./server_load.ts";
import { guarded, rawStore, txnStore } from "./ycsb_bench.ts";
import { ScrambledZipfianGenerator } from "./ycsb_generators.ts";
import {
  KeySpace,
  recordKey,
  RequestStream,
  VALUE_BYTES,
  type Workload,
  WORKLOADS,
  type YcsbStore,
} from "./ycsb_workloads.ts";

/** Parameters of a run. */
export interface YcsbClusterOptions {
  /** Records loaded into each key space of each target. */
  records: number;
  /** How long each (workload, client, target) cell runs. */
  seconds: number;
  /** Requests in flight (YCSB threads); default 64. */
  inFlight?: number;
  /** Seed of the request sequences; default 42. */
  seed?: number;
}

/** The fewest regions the cluster must hold before the workloads run (issue #12). */
export const YCSB_CLUSTER_MIN_REGIONS = 64;
/**
 * Regions the split thresholds aim at: `region-split-size` is the loaded data ÷ this (a split
 * cuts pieces of that size) and `region-max-size` 1.5 × that. Once the split checker has caught
 * up no region is larger than region-max-size, so the data makes at least target ÷ 1.5 regions
 * (asserted ≥ the minimum below), about the target in practice.
 */
export const YCSB_CLUSTER_TARGET_REGIONS = 100;
/** The fewest records per key space (below, the regions would be a few keys each). */
export const YCSB_CLUSTER_MIN_RECORDS = 1_000;
/** The shortest cell (below, percentiles mean little). */
export const YCSB_CLUSTER_MIN_SECONDS = 1;
const STORES = 3;
/** region-max-size ÷ region-split-size (TiKV's default ratio). */
const SPLIT_MAX_OVER_SPLIT = 1.5;
if (YCSB_CLUSTER_TARGET_REGIONS / SPLIT_MAX_OVER_SPLIT < YCSB_CLUSTER_MIN_REGIONS) {
  throw new Error("ycsb-cluster: the split thresholds must make at least the minimum of regions");
}
/** Bytes a record adds beside its value: its key, and a transactional one's write record. */
const RECORD_OVERHEAD_BYTES = 48;
/** The stores' `split-region-check-tick-interval`: short, so splits follow the load closely. */
const SPLIT_CHECK_TICK = "300ms";
const IN_FLIGHT = 64;
const LOAD_BATCH = 50;
const LOAD_IN_FLIGHT = 8;
/** How long region 1 may take to get three voters after the stores start. */
const VOTERS_TIMEOUT_MS = 60_000;
/** How long the split checker may take to make the regions after the load. */
const REGIONS_TIMEOUT_MS = 300_000;
const REGIONS_POLL_MS = 500;
/** Sizes a cell's latency array: more operations per second than any target here reaches. */
const CELL_MAX_OPS_PER_SECOND = 100_000;
/** Sizes the zipfian chooser for a cell's inserts (YCSB sizes it for the expected inserts). */
const CELL_EXPECTED_OPS_PER_SECOND = 5_000;
/** Zipfian draws that find the busiest region before the split. */
const BUSY_REGION_SAMPLES = 2_000;
/** How long the idle stores' CPU is sampled once the regions are ready. */
const IDLE_SAMPLE_MS = 3_000;
/** How long a new region may take to answer after the split, and how often it is asked. */
const SPLIT_SERVED_TIMEOUT_MS = 30_000;
const SPLIT_POLL_MS = 5;
/** The windows before and after the split whose operations are compared. */
const SPLIT_WINDOW_MS = 1_000;
/** Longest the split run's workload may run (it stops a window after the split is served). */
const SPLIT_RUN_MAX_MS = 120_000;
/** Most operations of the split run (sizes its latency array: 8 MB). */
const SPLIT_RUN_MAX_OPS = 1_000_000;

const fast: TransactionOptions = { asyncCommit: true, onePc: true };
const describe = (error: unknown) => error instanceof Error ? error.message : String(error);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One target's clients, stores and key spaces (a key space grows with its inserts). */
interface Target {
  name: "cluster" | "standalone";
  raw: RawKV;
  txn: TxnKV;
  stores: { raw: YcsbStore; txn: YcsbStore };
  keys: { raw: KeySpace; txn: KeySpace };
}

function target(
  name: Target["name"],
  clients: { raw: RawKV; txn: TxnKV },
  records: number,
): Target {
  return {
    name,
    ...clients,
    stores: {
      raw: guarded(rawStore(clients.raw, utf8("r0"))),
      txn: guarded(txnStore(clients.txn, utf8("t0"), fast)),
    },
    keys: { raw: new KeySpace("r/", records), txn: new KeySpace("t/", records) },
  };
}

/** The stores' configuration: regions split by size as the records load. */
function splitConfig(records: number): { text: string; maxSizeBytes: number } {
  const dataBytes = 2 * records * (VALUE_BYTES + RECORD_OVERHEAD_BYTES);
  const splitSizeBytes = Math.floor(dataBytes / YCSB_CLUSTER_TARGET_REGIONS);
  const maxSizeBytes = Math.floor(splitSizeBytes * SPLIT_MAX_OVER_SPLIT);
  const text = [
    "[coprocessor]",
    `region-split-size = ${splitSizeBytes}`,
    `region-max-size = ${maxSizeBytes}`,
    "[raftstore]",
    `split-region-check-tick-interval = "${SPLIT_CHECK_TICK}"`,
    "",
  ].join("\n");
  return { text, maxSizeBytes };
}

interface LoadFigures {
  recordsPerSecond: number;
  errors: number;
  firstError?: string;
}

/** Loads every record of `keys` in batches through `put`; a failed batch is counted. */
async function loadRecords(
  keys: KeySpace,
  put: (batch: Uint8Array[]) => Promise<void>,
): Promise<LoadFigures> {
  const started = performance.now();
  const batches = Math.ceil(keys.records / LOAD_BATCH);
  let next = 0;
  let errors = 0;
  let firstError: string | undefined;
  const worker = async () => {
    while (next < batches) {
      const batch = next++;
      const count = Math.min(LOAD_BATCH, keys.records - batch * LOAD_BATCH);
      const batchKeys = Array.from(
        { length: count },
        (_, i) => recordKey(keys.prefix, batch * LOAD_BATCH + i),
      );
      await put(batchKeys).catch((error) => {
        errors++;
        firstError ??= describe(error);
      });
    }
  };
  await Promise.all(Array.from({ length: LOAD_IN_FLIGHT }, worker));
  return {
    recordsPerSecond: keys.records / ((performance.now() - started) / 1000),
    errors,
    firstError,
  };
}

/** Loads both key spaces of `target`: raw in batches of puts, transactional in transactions. */
async function loadTarget(target: Target, value: Uint8Array) {
  const raw = await loadRecords(
    target.keys.raw,
    (keys) => target.raw.batchPut(keys.map((key) => ({ key, value }))),
  );
  const txn = await loadRecords(target.keys.txn, async (keys) => {
    const load = await target.txn.begin();
    for (const key of keys) load.set(key, value);
    await load.commit();
  });
  return { raw, txn };
}

/** What PD reports of the regions: how many, how many with three voters and a leader. */
async function regionCensus(pd: PdClient): Promise<{ regions: number; ready: number }> {
  const empty = new Uint8Array(0);
  const all = await pd.scanRegions({ startKey: empty, endKey: empty, limit: 100_000 });
  const ready = all.filter((route) =>
    route.leader !== null &&
    (route.region.peers ?? []).filter((peer) => (peer.role ?? 0) === 0).length === STORES
  );
  return { regions: all.length, ready: ready.length };
}

/** Waits until PD reports the minimum of regions, every one ready; returns the census. */
async function waitForRegions(pd: PdClient): Promise<{ regions: number; waitedMs: number }> {
  const started = Date.now();
  let seen = { regions: 0, ready: 0 };
  let lastReportMs = started;
  for (;;) {
    seen = await regionCensus(pd).catch(() => seen);
    if (seen.regions >= YCSB_CLUSTER_MIN_REGIONS && seen.ready === seen.regions) {
      return { regions: seen.regions, waitedMs: Date.now() - started };
    }
    if (Date.now() - started >= REGIONS_TIMEOUT_MS) {
      throw new Error(
        `ycsb-cluster: waited ${REGIONS_TIMEOUT_MS} ms for ${YCSB_CLUSTER_MIN_REGIONS} regions ` +
          `with ${STORES} voters and a leader each; PD reports ${seen.regions} regions, ` +
          `${seen.ready} of them ready`,
      );
    }
    if (Date.now() - lastReportMs >= 10_000) {
      console.log(`ycsb-cluster: … ${seen.regions} regions, ${seen.ready} ready`);
      lastReportMs = Date.now();
    }
    await sleep(REGIONS_POLL_MS);
  }
}

/**
 * The CPU share (% of one core) each process of `dataDirs` used over IDLE_SAMPLE_MS with no
 * requests: what the regions cost when nothing happens (ticks, heartbeats, split checks).
 */
async function idleCpuPercent(dataDirs: readonly string[]): Promise<number[]> {
  const pids = dataDirs.map(findProcessByArgument);
  const before = pids.map((pid) => pid === null ? NaN : cpuSecondsOf(pid));
  await sleep(IDLE_SAMPLE_MS);
  return pids.map((pid, i) =>
    pid === null ? NaN : ((cpuSecondsOf(pid) - before[i]!) * 100_000) / IDLE_SAMPLE_MS
  );
}

/** Runs `workload` against `store` over `keys` for `seconds`. */
async function runCell(
  workload: Workload,
  how: {
    store: YcsbStore;
    keys: KeySpace;
    value: Uint8Array;
    options: YcsbClusterOptions;
    until?: () => boolean;
    /** Most operations (default: the cell's seconds × CELL_MAX_OPS_PER_SECOND). */
    maxOps?: number;
  },
): Promise<LoadResult> {
  const { options } = how;
  const expectedInserts = Math.ceil(
    CELL_EXPECTED_OPS_PER_SECOND * options.seconds * (workload.mix.insert ?? 0),
  );
  const stream = new RequestStream(
    workload,
    how.keys,
    new SeededRandom(options.seed ?? 42),
    expectedInserts,
  );
  return await runClosedLoop(() => stream.run(how.store, how.value), {
    ops: how.maxOps ?? Math.ceil(CELL_MAX_OPS_PER_SECOND * options.seconds),
    inFlight: options.inFlight ?? IN_FLIGHT,
    maxMs: options.seconds * 1000,
    until: how.until,
  });
}

interface Row {
  workload: string;
  client: "txn" | "raw";
  cluster: LoadResult;
  standalone: LoadResult;
}

/** Every workload, transactional then raw, on both targets (alternating which goes first). */
async function runWorkloads(
  targets: { cluster: Target; standalone: Target },
  how: { value: Uint8Array; options: YcsbClusterOptions },
): Promise<Row[]> {
  const rows: Row[] = [];
  const order = ["A", "B", "C", "F", "D", "E"];
  for (const [index, name] of order.entries()) {
    const workload = WORKLOADS.find((w) => w.name === name)!;
    for (const client of ["txn", "raw"] as const) {
      const results = new Map<Target["name"], LoadResult>();
      const sides = index % 2 === 0
        ? [targets.cluster, targets.standalone]
        : [targets.standalone, targets.cluster];
      for (const side of sides) {
        const result = await runCell(workload, {
          ...how,
          store: side.stores[client],
          keys: side.keys[client],
        });
        results.set(side.name, result);
      }
      const row = {
        workload: name,
        client,
        cluster: results.get("cluster")!,
        standalone: results.get("standalone")!,
      };
      console.log(
        `ycsb-cluster: ${name} ${client}: cluster ${fmt(row.cluster.opsPerSecond)} ops/s, ` +
          `standalone ${fmt(row.standalone.opsPerSecond)} ops/s`,
      );
      rows.push(row);
    }
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------
// Split under load.

/** One operation's start and end (performance.now() ms) and whether it failed. */
interface TimedOp {
  startMs: number;
  endMs: number;
  failed: boolean;
}

/** `store` with every operation's timing appended to `log`. */
function timed(store: YcsbStore, log: TimedOp[]): YcsbStore {
  const wrap =
    <A extends unknown[]>(call: (...args: A) => Promise<string | null>) => async (...args: A) => {
      const startMs = performance.now();
      const error = await call(...args);
      log.push({ startMs, endMs: performance.now(), failed: error !== null });
      return error;
    };
  return {
    read: wrap(store.read),
    update: wrap(store.update),
    insert: wrap(store.insert),
    scan: wrap(store.scan),
    readModifyWrite: wrap(store.readModifyWrite),
  };
}

/** The loaded record keys of `keys` (raw: data keys as they are), sorted. */
function sortedRecordKeys(keys: KeySpace): Uint8Array[] {
  return Array.from({ length: keys.records }, (_, n) => recordKey(keys.prefix, n))
    .sort(compareBytes);
}

function inRegion(key: Uint8Array, region: { startKey: Uint8Array; endKey: Uint8Array }) {
  return compareBytes(key, region.startKey) >= 0 &&
    (region.endKey.length === 0 || compareBytes(key, region.endKey) < 0);
}

/** The raw region the workload's zipfian keys hit most, and the middle record key inside it. */
async function busySplitKey(
  pd: PdClient,
  keys: KeySpace,
): Promise<{ route: PdRegion; splitKey: Uint8Array; sorted: Uint8Array[] }> {
  const routes = await pd.scanRegions({
    startKey: utf8(keys.prefix),
    endKey: utf8("r0"),
    limit: 100_000,
  });
  const bounds = routes.map((route) => ({
    startKey: route.region.startKey ?? new Uint8Array(0),
    endKey: route.region.endKey ?? new Uint8Array(0),
  }));
  const hits = new Array<number>(routes.length).fill(0);
  // Sized as workload A's request stream sizes its chooser (no inserts: the keys so far).
  const zipfian = new ScrambledZipfianGenerator(keys.nextInsert);
  const random = new SeededRandom(1);
  for (let i = 0; i < BUSY_REGION_SAMPLES; i++) {
    const keyNumber = zipfian.next(random);
    if (keyNumber > keys.latest()) continue;
    const key = recordKey(keys.prefix, keyNumber);
    const at = bounds.findIndex((bound) => inRegion(key, bound));
    if (at >= 0) hits[at]!++;
  }
  const busiest = hits.indexOf(Math.max(...hits));
  const sorted = sortedRecordKeys(keys);
  const inside = sorted.filter((key) =>
    inRegion(key, bounds[busiest]!) && compareBytes(key, bounds[busiest]!.startKey) > 0
  );
  if (inside.length === 0) {
    throw new Error(`ycsb-cluster: the busiest region ${routes[busiest]?.region.id} has no key`);
  }
  return { route: routes[busiest]!, splitKey: inside[inside.length >> 1]!, sorted };
}

/** When a region a split made first answered, after how many requests, and its refusals. */
interface Served {
  regionId: bigint;
  atMs: number;
  answers: number;
  /** Region errors by kind (notLeader, …) before the first answer. */
  refusals: Map<string, number>;
}

/**
 * When `part` (a region a split made) first answers a RawGet of `key` without a region error,
 * asked straight at its leader (following NotLeader, and a newer epoch of the same region).
 */
async function servedAt(
  clients: { raw: RawKV; pd: PdClient },
  part: RegionInfo,
  key: Uint8Array,
): Promise<Served> {
  const deadline = performance.now() + SPLIT_SERVED_TIMEOUT_MS;
  let peer = { id: part.leader.id, storeId: part.leader.storeId };
  let epoch = { confVer: part.epoch.confVer, version: part.epoch.version };
  let last = "no answer";
  const refusals = new Map<string, number>();
  for (let answers = 1;; answers++) {
    const address = (await clients.pd.getStore(peer.storeId)).address;
    const response = await clients.raw.connections.get(address).send("RawGet", {
      context: { regionId: part.id, regionEpoch: epoch, peer },
      key,
    }, { timeoutMs: SPLIT_SERVED_TIMEOUT_MS });
    const error = response.regionError;
    if (error == null) return { regionId: part.id, atMs: performance.now(), answers, refusals };
    last = JSON.stringify(error, (_k, v) => typeof v === "bigint" ? String(v) : v);
    const kind = Object.entries(error).find(([name, v]) => name !== "message" && v != null)?.[0];
    refusals.set(kind ?? "unknown", (refusals.get(kind ?? "unknown") ?? 0) + 1);
    const leader = error.notLeader?.leader;
    if (leader?.id != null && leader.storeId != null) {
      peer = { id: leader.id, storeId: leader.storeId };
    }
    const current = error.epochNotMatch?.currentRegions?.find((r) => r.id === part.id);
    if (current?.regionEpoch?.version != null && current.regionEpoch.confVer != null) {
      epoch = { confVer: current.regionEpoch.confVer, version: current.regionEpoch.version };
    }
    if (performance.now() >= deadline) {
      throw new Error(`ycsb-cluster: region ${part.id} not served after the split: ${last}`);
    }
    await sleep(SPLIT_POLL_MS);
  }
}

/** When PD knows every region of `made` at its epoch with a leader. */
async function pdKnowsAt(pd: PdClient, made: readonly RegionInfo[]): Promise<number> {
  const deadline = performance.now() + SPLIT_SERVED_TIMEOUT_MS;
  for (;;) {
    const known = await Promise.all(made.map((part) => pd.getRegionById(part.id)));
    const current = known.every((route, i) =>
      route !== null && route.leader !== null &&
      (route.region.regionEpoch?.version ?? 0n) >= made[i]!.epoch.version
    );
    if (current) return performance.now();
    if (performance.now() >= deadline) {
      throw new Error(`ycsb-cluster: PD did not report the split's regions in time`);
    }
    await sleep(SPLIT_POLL_MS);
  }
}

interface WindowFigures {
  ops: number;
  failed: number;
  p99Ms: number;
  maxMs: number;
}

function window(log: readonly TimedOp[], fromMs: number, toMs: number): WindowFigures {
  const inside = log.filter((op) => op.startMs >= fromMs && op.startMs < toMs);
  const latencies = Float64Array.from(inside.map((op) => op.endMs - op.startMs)).sort();
  return {
    ops: inside.length,
    failed: inside.filter((op) => op.failed).length,
    p99Ms: quantile(latencies, 0.99),
    maxMs: latencies.length === 0 ? NaN : latencies[latencies.length - 1]!,
  };
}

interface SplitFigures {
  regionId: bigint;
  splitKey: string;
  /** Request → the split's answer. */
  answeredMs: number;
  /** Per region made: request → its first answer at its leader. */
  served: (Served & { afterMs: number })[];
  /** Request → both regions answering. */
  servedMs: number;
  /** Request → PD reporting both at the split's epoch with a leader. */
  pdKnowsMs: number;
  before: WindowFigures;
  during: WindowFigures;
  after: WindowFigures;
  workload: LoadResult;
}

/**
 * Workload A through RawKV on the cluster; after `seconds` its busiest region is split, and the
 * workload runs on until both new regions answer and SPLIT_WINDOW_MS more.
 */
async function splitUnderLoad(
  cluster: Target,
  how: { pd: PdClient; value: Uint8Array; options: YcsbClusterOptions },
): Promise<SplitFigures> {
  const log: TimedOp[] = [];
  let stopAtMs = Infinity;
  const running = runCell(WORKLOADS.find((w) => w.name === "A")!, {
    store: timed(cluster.stores.raw, log),
    keys: cluster.keys.raw,
    value: how.value,
    options: { ...how.options, seconds: SPLIT_RUN_MAX_MS / 1000 },
    until: () => performance.now() >= stopAtMs,
    maxOps: SPLIT_RUN_MAX_OPS,
  });
  try {
    await sleep(Math.max(how.options.seconds * 1000, SPLIT_WINDOW_MS * 2));
    const { route, splitKey, sorted } = await busySplitKey(how.pd, cluster.keys.raw);
    const requestedMs = performance.now();
    const made = await cluster.raw.splitRegions([splitKey]);
    const answeredMs = performance.now();
    const served = await Promise.all(made.map((part) => {
      const key = part.startKey.length > 0
        ? part.startKey
        : sorted.filter((k) => inRegion(k, part)).pop() ?? splitKey;
      return servedAt({ raw: cluster.raw, pd: how.pd }, part, key);
    }));
    const servedMs = Math.max(...served.map((s) => s.atMs));
    stopAtMs = servedMs + SPLIT_WINDOW_MS;
    const pdKnowsMs = await pdKnowsAt(how.pd, made);
    const workload = await running;
    return {
      regionId: route.region.id ?? 0n,
      splitKey: new TextDecoder().decode(splitKey),
      answeredMs: answeredMs - requestedMs,
      served: served.map((s) => ({ ...s, afterMs: s.atMs - requestedMs })),
      servedMs: servedMs - requestedMs,
      pdKnowsMs: pdKnowsMs - requestedMs,
      before: window(log, requestedMs - SPLIT_WINDOW_MS, requestedMs),
      during: window(log, requestedMs, servedMs),
      after: window(log, servedMs, servedMs + SPLIT_WINDOW_MS),
      workload,
    };
  } finally {
    stopAtMs = 0;
    await running;
  }
}

// ---------------------------------------------------------------------------------------------
// Report.

function fmt(value: number, digits = 0): string {
  return Number.isFinite(value)
    ? value.toLocaleString("en-US", {
      maximumFractionDigits: digits,
      minimumFractionDigits: digits,
    })
    : "n/a";
}

function printRows(rows: readonly Row[], regions: number, options: YcsbClusterOptions): void {
  printTable(
    `YCSB: 3-store cluster (${regions} regions, 3 replicas, sync-log on) vs a standalone store ` +
      `(1 region), same run; ${options.seconds} s per cell, ${options.inFlight ?? IN_FLIGHT} ` +
      `in flight, ${fmt(options.records)} records per key space (ops/s, p99 ms)`,
    [
      "workload",
      "client",
      "cluster ops/s",
      "cluster p99",
      "standalone ops/s",
      "standalone p99",
      "cluster/standalone",
      "failed ops cluster/standalone",
    ],
    rows.map((row) => [
      row.workload,
      row.client,
      fmt(row.cluster.opsPerSecond),
      fmt(row.cluster.p99Ms, 1),
      fmt(row.standalone.opsPerSecond),
      fmt(row.standalone.p99Ms, 1),
      `${(row.cluster.opsPerSecond / row.standalone.opsPerSecond).toFixed(2)}×`,
      `${row.cluster.errors}/${row.standalone.errors}`,
    ]),
  );
  for (const row of rows) {
    const first = row.cluster.firstError ?? row.standalone.firstError;
    if (first !== undefined) console.log(`  ${row.workload} ${row.client}: first error: ${first}`);
  }
}

/** Workload A through RawKV on the cluster, beside TiKV's published figure (issue #13 item 4). */
function printYcsbABesideTikv(rows: readonly Row[]): void {
  const row = rows.find((r) => r.workload === "A" && r.client === "raw");
  const updateShare = WORKLOADS.find((w) => w.name === "A")?.mix.update ?? 0;
  if (row === undefined) return;
  console.log(
    `\nYCSB-A through RawKV on the 3-replica cluster: ${fmt(row.cluster.opsPerSecond)} ops/s, ` +
      `${fmt(row.cluster.opsPerSecond * updateShare)} of them updates ` +
      `(${navigator.hardwareConcurrency} shared cores); TiKV's published RawKV YCSB-A: ` +
      `${fmt(TIKV_RAW_YCSB_A.updatesPerSecond)} updates/s on ${TIKV_RAW_YCSB_A.hardware}`,
  );
}

function printSplit(split: SplitFigures): void {
  const parts = split.served.map((s) => {
    const refusals = [...s.refusals].map(([kind, n]) => `${n} ${kind}`).join(", ");
    return `region ${s.regionId} at ${fmt(s.afterMs, 1)} ms (${s.answers} requests` +
      `${refusals === "" ? "" : `; refused first: ${refusals}`})`;
  });
  console.log(
    `\n## Split under load (workload A, RawKV, cluster): region ${split.regionId} split at ` +
      `"${split.splitKey}"`,
  );
  console.log(
    `request → answered ${fmt(split.answeredMs, 1)} ms; → both regions answer a RawGet at ` +
      `their leaders ${fmt(split.servedMs, 1)} ms [${parts.join("; ")}]; → PD knows both ` +
      `with a leader ${fmt(split.pdKnowsMs, 1)} ms`,
  );
  printTable(
    "operations around the split (by start time)",
    [
      "window",
      "ops",
      "failed",
      "p99 ms",
      "max ms",
    ],
    [
      ["1 s before the request", split.before],
      ["request → served", split.during],
      ["1 s after served", split.after],
    ].map(([name, w]) => {
      const figures = w as WindowFigures;
      return [
        name as string,
        `${figures.ops}`,
        `${figures.failed}`,
        fmt(figures.p99Ms, 1),
        fmt(figures.maxMs, 1),
      ];
    }),
  );
  console.log(
    `whole run: ${fmt(split.workload.opsPerSecond)} ops/s, p99 ${fmt(split.workload.p99Ms, 1)} ` +
      `ms, ${split.workload.errors} failed${
        split.workload.firstError ? ` (first: ${split.workload.firstError})` : ""
      }`,
  );
}

// ---------------------------------------------------------------------------------------------
// The run.

async function connectTargets(
  cluster: Cluster,
  server: TestServer,
  records: number,
): Promise<{ cluster: Target; standalone: Target }> {
  const pd = [cluster.pdAddr];
  return {
    cluster: target("cluster", {
      raw: await RawKV.connect({ pd }),
      txn: await TxnKV.connect({ pd }),
    }, records),
    standalone: target("standalone", {
      raw: await RawKV.connect({ host: server.grpcAddr }),
      txn: await TxnKV.connect({ host: server.grpcAddr }),
    }, records),
  };
}

async function closeTargets(targets: Partial<Record<string, Target>>): Promise<void> {
  for (const side of Object.values(targets)) {
    if (side === undefined) continue;
    await side.txn.close();
    side.raw.close();
  }
}

function checkOptions(options: YcsbClusterOptions): void {
  if (!Number.isInteger(options.records) || options.records < YCSB_CLUSTER_MIN_RECORDS) {
    throw new RangeError(`ycsb-cluster: --num must be an integer ≥ ${YCSB_CLUSTER_MIN_RECORDS}`);
  }
  if (!(options.seconds >= YCSB_CLUSTER_MIN_SECONDS)) {
    throw new RangeError(`ycsb-cluster: --seconds must be ≥ ${YCSB_CLUSTER_MIN_SECONDS}`);
  }
}

/** Loads both targets and waits for the cluster's regions; prints what it took. */
async function prepare(
  targets: { cluster: Target; standalone: Target },
  how: { pd: PdClient; value: Uint8Array; dataDirs: string[] },
): Promise<{ regions: number; loadErrors: number }> {
  let loadErrors = 0;
  for (const side of [targets.cluster, targets.standalone]) {
    const load = await loadTarget(side, how.value);
    loadErrors += load.raw.errors + load.txn.errors;
    console.log(
      `ycsb-cluster: ${side.name} loaded at ${fmt(load.raw.recordsPerSecond)} records/s (raw), ` +
        `${fmt(load.txn.recordsPerSecond)} (txn); failed batches ${load.raw.errors}/` +
        `${load.txn.errors}${
          (load.raw.firstError ?? load.txn.firstError) === undefined
            ? ""
            : ` (first: ${load.raw.firstError ?? load.txn.firstError})`
        }`,
    );
  }
  const census = await regionCensus(how.pd);
  console.log(
    `ycsb-cluster: after the load PD reports ${census.regions} regions (${census.ready} with ` +
      `${STORES} voters and a leader); waiting for ${YCSB_CLUSTER_MIN_REGIONS}…`,
  );
  const { regions, waitedMs } = await waitForRegions(how.pd);
  console.log(`ycsb-cluster: ${regions} regions ready after ${fmt(waitedMs / 1000, 1)} s more`);
  const idle = await idleCpuPercent(how.dataDirs);
  console.log(
    `ycsb-cluster: idle CPU with ${regions} regions, no requests (${IDLE_SAMPLE_MS / 1000} s): ` +
      `stores ${idle.slice(0, -1).map((p) => `${fmt(p)}%`).join(" / ")}, ` +
      `standalone ${fmt(idle[idle.length - 1]!)}% of one core`,
  );
  return { regions, loadErrors };
}

/** Runs the section and prints its tables. */
export async function benchYcsbCluster(options: YcsbClusterOptions): Promise<void> {
  checkOptions(options);
  const value = new SeededRandom(7).bytes(VALUE_BYTES);
  const config = splitConfig(options.records);
  const configDir = await Deno.makeTempDir({ prefix: "basalt_bench_ycsb_cluster_" });
  await Deno.writeTextFile(`${configDir}/store.toml`, config.text);
  console.log(
    `ycsb-cluster: 1 PD + ${STORES} stores (region-max-size ${fmt(config.maxSizeBytes)} B, ` +
      `split check every ${SPLIT_CHECK_TICK}) and a standalone store; ` +
      `${fmt(options.records)} records of ${VALUE_BYTES} B per key space ` +
      `(load average ${loadAverage()})…`,
  );
  const cluster = await startCluster({
    stores: STORES,
    proxies: false,
    storeArgs: ["--config", `${configDir}/store.toml`],
  });
  let server: TestServer | null = null;
  let pd: PdClient | null = null;
  let targets: { cluster: Target; standalone: Target } | null = null;
  let passed = false;
  try {
    server = await startServer();
    pd = await PdClient.connect([cluster.pdAddr]);
    const connected = pd;
    await waitForRegionTarget(pd, {
      voters: STORES,
      timeoutMs: VOTERS_TIMEOUT_MS,
      addressOf: async (storeId) => (await connected.getStore(storeId)).address,
    });
    targets = await connectTargets(cluster, server, options.records);
    const dataDirs = [...Array.from({ length: STORES }, (_, i) => cluster.dataDir(i))];
    const { regions, loadErrors } = await prepare(targets, {
      pd,
      value,
      dataDirs: [...dataDirs, server.dataDir],
    });
    const rows = await runWorkloads(targets, { value, options });
    const split = await splitUnderLoad(targets.cluster, { pd, value, options });
    const census = await regionCensus(pd);
    printRows(rows, regions, options);
    printYcsbABesideTikv(rows);
    printSplit(split);
    const failed = rows.reduce((sum, row) => sum + row.cluster.errors + row.standalone.errors, 0);
    console.log(
      `\nycsb-cluster: client errors (operations that failed after the client's retries): ` +
        `${failed} in the workloads, ${split.workload.errors} in the split run, ` +
        `${loadErrors} failed load batches — expected 0; ` +
        `${census.regions} regions at the end; load average ${loadAverage()}`,
    );
    passed = true;
  } finally {
    await closeTargets(targets ?? {});
    pd?.close();
    await server?.stop().catch(() => {});
    await cluster.stop({ keepLogs: !passed });
    await Deno.remove(configDir, { recursive: true });
    const standaloneRoot = server?.dataDir.replace(/\/data$/, "");
    if (standaloneRoot === undefined) { /* it never started */ }
    else if (passed) await Deno.remove(standaloneRoot, { recursive: true });
    else {console.error(
        `ycsb-cluster: kept the standalone store's data and logs in ${standaloneRoot}`,
      );}
  }
}

if (import.meta.main) {
  const { parseArgs } = await import("node:util");
  const { values } = parseArgs({
    options: {
      num: { type: "string", default: "10000" },
      seconds: { type: "string", default: "3" },
      "in-flight": { type: "string", default: String(IN_FLIGHT) },
    },
  });
  await benchYcsbCluster({
    records: Number(values.num),
    seconds: Number(values.seconds),
    inFlight: Number(values["in-flight"]),
  });
}
