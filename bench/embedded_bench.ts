/**
 * `deno task bench --only embedded` (issue #14 item 5): the embedded API's gets and puts per
 * second — `Basalt.open({ dataDir })`, a standalone store inside this process, requests through
 * the command layer with no gRPC — beside the engine's own figure measured in the same run.
 *
 * The store: a fresh data directory, `--num` keys loaded first (16-byte `bk…` keys of
 * server_load.ts, 100-byte values), the Raft log fsynced as `serve` does (syncLog on). Cells:
 * gets of random loaded keys and puts of 100-byte values to random loaded keys, one request in
 * flight and then 16 and 64 concurrent promises, each for `--seconds`; every latency recorded.
 *
 * The engine: bench/engine_workload.ts (RocksDB through Deno FFI, the engine section's
 * db_bench twin) on a fresh RocksDB directory after the store is closed — `fillrandom` and
 * `readrandom` over ENGINE_NUM keys, `fillsync` (each write fsynced, one in flight) over
 * ENGINE_SYNC_WRITES. A get is compared with readrandom; a put with fillsync, the engine's
 * durable write, since an embedded put is durable: it is a transaction (prewrite then commit,
 * each a Raft log write with fsync, each taking a timestamp from the embedded TSO).
 *
 * Everything started is stopped and the temporary directory removed at the end, on failure
 * and on Ctrl+C. Run alone: `deno run -A bench/embedded_bench.ts --keys 10000 --seconds 3`.
 */
import { Basalt } from "../src/embedded/mod.ts";
import { SeededRandom } from "../src/util/random.ts";
import { loadAverage } from "./cluster_bench.ts";
import { formatFigure, printTable } from "./report.ts";
import { benchKey, type LoadResult, runClosedLoop } from "./server_load.ts";

/** Bytes of every value written. */
export const KV_BENCH_VALUE_BYTES = 100;
/** Keys written per transaction while loading. */
const LOAD_BATCH_KEYS = 256;
/** Most operations one cell records (its latency array's length); cells end by time first. */
export const KV_CELL_MAX_OPS = 1_000_000;
/** Keys of the engine's fillrandom and readrandom (enough that a run is not a few ms). */
const ENGINE_NUM = 200_000;
/** Fsynced writes of the engine's fillsync. */
const ENGINE_SYNC_WRITES = 2_000;
/** Longest one engine workload process may run. */
const ENGINE_TIMEOUT_MS = 120_000;
/** Seed of the key choice in every cell (a cell's own index is added). */
const KEY_SEED = 145;

/** Options of the embedded section. */
export interface EmbeddedBenchOptions {
  /** Keys loaded before the cells; gets and puts pick among them. */
  keys: number;
  /** Seconds per cell. */
  cellSeconds: number;
  /** Concurrent requests of each cell. */
  inFlight: readonly number[];
}

/** A 100-byte value of printable bytes (the same every time, as db_bench's are). */
export function benchValue(): Uint8Array {
  const value = new Uint8Array(KV_BENCH_VALUE_BYTES);
  for (let i = 0; i < value.length; i++) value[i] = 32 + ((i * 7919) % 95);
  return value;
}

/** Writes keys 0..keys-1 (benchKey) with 100-byte values, LOAD_BATCH_KEYS per transaction. */
export async function loadKvKeys(db: Basalt, keys: number): Promise<void> {
  const value = benchValue();
  for (let first = 0; first < keys; first += LOAD_BATCH_KEYS) {
    const last = Math.min(keys, first + LOAD_BATCH_KEYS);
    await db.transaction((txn) => {
      for (let i = first; i < last; i++) txn.put(benchKey(i), value);
    });
  }
}

/**
 * Gets or puts of random loaded keys through `db` with `inFlight` outstanding, for `seconds`.
 * A get that finds nothing counts as an error: the load did not happen.
 */
export function runKvCell(
  db: Basalt,
  cell: { op: "get" | "put"; keys: number; inFlight: number; seconds: number },
): Promise<LoadResult> {
  const random = new SeededRandom(KEY_SEED + cell.inFlight);
  const value = benchValue();
  const operation = cell.op === "get"
    ? async () => {
      const index = random.int(cell.keys);
      return (await db.get(benchKey(index))) === null ? `key ${index} not found` : null;
    }
    : async () => {
      await db.put(benchKey(random.int(cell.keys)), value);
      return null;
    };
  return runClosedLoop(operation, {
    ops: KV_CELL_MAX_OPS,
    inFlight: cell.inFlight,
    maxMs: cell.seconds * 1000,
  });
}

/** ops/s of the engine's own put and get, from bench/engine_workload.ts on fresh directories. */
export async function engineFigures(root: string): Promise<Record<string, number>> {
  const workload = new URL("./engine_workload.ts", import.meta.url).pathname;
  const run = async (args: string[], dir: string) => {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", workload, ...args, "--dir", `${root}/${dir}`],
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(ENGINE_TIMEOUT_MS),
    }).output();
    const stdout = new TextDecoder().decode(output.stdout).trim();
    if (!output.success) {
      const stderr = new TextDecoder().decode(output.stderr).slice(-2000);
      throw new Error(`engine_workload ${args.join(" ")} failed: ${stderr}`);
    }
    return JSON.parse(stdout.split("\n").pop()!) as Record<string, number>;
  };
  return {
    ...await run(["--mode", "fill-read-seek", "--num", `${ENGINE_NUM}`, "--seeks", "1000"], "e1"),
    ...await run(["--mode", "sync", "--writes", `${ENGINE_SYNC_WRITES}`], "e2"),
  };
}

/** Runs the section; prints one table. */
export async function benchEmbedded(options: EmbeddedBenchOptions): Promise<void> {
  const loadBefore = loadAverage();
  const root = await Deno.makeTempDir({ prefix: "basalt-embedded-bench-" });
  let db: Basalt | null = null;
  // Ctrl+C would end this process without the finally block: close and clean up first, and
  // start nothing more meanwhile.
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
    void (db?.close() ?? Promise.resolve()).catch(() => {})
      .finally(() => Deno.remove(root, { recursive: true }).catch(() => {}))
      .finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", onSignal);
  try {
    db = await Basalt.open({
      dataDir: `${root}/data`,
      logFile: `${root}/store.log`,
      reclaimIntervalMs: 0,
    });
    const loadStarted = performance.now();
    await loadKvKeys(db, options.keys);
    const loadSeconds = (performance.now() - loadStarted) / 1000;
    const cells: { op: "get" | "put"; inFlight: number; result: LoadResult }[] = [];
    for (const op of ["get", "put"] as const) {
      for (const inFlight of options.inFlight) {
        if (interrupted) return;
        const cell = { op, keys: options.keys, inFlight, seconds: options.cellSeconds };
        cells.push({ op, inFlight, result: await runKvCell(db, cell) });
      }
    }
    await db.close();
    db = null;
    if (interrupted) return;
    const engine = await engineFigures(root);
    printEmbedded(cells, engine, {
      title: `embedded (Basalt.open, in-process) vs the engine (RocksDB via FFI), same run: ` +
        `${options.keys} keys (loaded in ${loadSeconds.toFixed(1)} s), ${KV_BENCH_VALUE_BYTES} B ` +
        `values, ${options.cellSeconds} s per cell; load average ${loadBefore} → ${loadAverage()}`,
    });
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    if (db !== null) await db.close().catch(() => {});
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
}

function printEmbedded(
  cells: { op: "get" | "put"; inFlight: number; result: LoadResult }[],
  engine: Record<string, number>,
  options: { title: string },
): void {
  const header = ["op", "in flight", "embedded ops/s", "p50 ms", "p99 ms", "errors"]
    .concat(["engine (FFI) ops/s", "embedded ÷ engine"]);
  const lines = cells.map(({ op, inFlight, result }) => {
    const peerName = op === "get" ? "readrandom" : "fillsync";
    const peer = engine[peerName] ?? NaN;
    const ratio = result.opsPerSecond / peer;
    return [
      op,
      `${inFlight}`,
      formatFigure(result.opsPerSecond),
      formatFigure(result.p50Ms, 2),
      formatFigure(result.p99Ms, 2),
      result.errors === 0 ? "0" : `${result.errors} (${result.firstError})`,
      `${formatFigure(peer)} ${peerName}`,
      Number.isFinite(ratio) ? `${ratio.toFixed(3)}×` : "n/a",
    ];
  });
  printTable(options.title, header, lines);
  const best = Math.max(...cells.filter((c) => c.op === "put").map((c) => c.result.opsPerSecond));
  console.log(
    `engine without fsync: fillrandom ${formatFigure(engine.fillrandom ?? NaN)} ops/s ` +
      `(best embedded put ÷ fillrandom ${(best / (engine.fillrandom ?? NaN)).toFixed(4)}×); ` +
      `an embedded put is a transaction: prewrite + commit, two fsynced Raft log writes`,
  );
}

if (import.meta.main) {
  const { parseArgs } = await import("node:util");
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      keys: { type: "string", default: "10000" },
      seconds: { type: "string", default: "3" },
    },
  });
  await benchEmbedded({
    keys: Number(values.keys),
    cellSeconds: Number(values.seconds),
    inFlight: [1, 16, 64],
  });
}
