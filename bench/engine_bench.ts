/**
 * Engine benchmark: Basalt's RocksDB engine through Deno FFI against RocksDB's own `db_bench`,
 * same parameters, same machine, same run. 16-byte keys, 100-byte values, one thread, no
 * compression, 256 MiB block cache, 10-bit bloom filters. Each side runs in its own process
 * (peak RSS from GNU time), alternating, `repeat` times; the table shows medians.
 *
 * Workloads: fillrandom, readrandom and seekrandom (seek + 10 nexts, keys and values handed to
 * the caller) in one invocation as db_bench runs them; fillbatch (100 puts per write batch);
 * fillsync (each write fsynced, one in flight).
 */
import { haveCommand } from "../scripts/setup.ts";
import { median, printRatioTable, type RatioRow, runMeasured } from "./report.ts";

/** Parameters of one engine benchmark run. */
export interface EngineBenchOptions {
  num: number;
  reads: number;
  syncWrites: number;
  repeat: number;
}

const COMMON_DB_BENCH_FLAGS = [
  "--key_size=16",
  "--value_size=100",
  "--threads=1",
  "--compression_type=none",
  "--cache_size=268435456",
  "--bloom_bits=10",
  "--write_buffer_size=67108864",
  "--max_background_jobs=2",
  "--seek_nexts=10",
];

interface Workload {
  name: string;
  dbBench: (o: EngineBenchOptions) => string[];
  ours: (o: EngineBenchOptions) => string[];
}

const WORKLOADS: Workload[] = [
  {
    name: "fill-read-seek",
    dbBench: (o) => [
      "--benchmarks=fillrandom,readrandom,seekrandom",
      `--num=${o.num}`,
      `--reads=${o.reads}`,
    ],
    ours: (o) => ["--mode", "fill-read-seek", "--num", `${o.num}`, "--seeks", `${o.reads}`],
  },
  {
    name: "batch",
    dbBench: (o) => ["--benchmarks=fillrandom", "--batch_size=100", `--num=${o.num}`],
    ours: (o) => ["--mode", "batch", "--num", `${o.num}`],
  },
  {
    name: "sync",
    dbBench: (o) => ["--benchmarks=fillsync", `--num=${o.syncWrites}`],
    ours: (o) => ["--mode", "sync", "--writes", `${o.syncWrites}`],
  },
];

/** db_bench's name for each of our result keys. */
const DB_BENCH_NAMES: Record<string, string> = {
  fillrandom: "fillrandom",
  readrandom: "readrandom",
  seekrandom: "seekrandom",
  fillbatch: "fillrandom",
  fillsync: "fillsync",
};

const TARGETS: Record<string, number> = {
  fillrandom: 0.9,
  readrandom: 0.9,
  seekrandom: 0.8,
  fillbatch: 0.9,
  fillsync: 0.95,
};

function parseDbBench(stdout: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const match of stdout.matchAll(/^(\w+)\s*:\s*[\d.]+ micros\/op (\d+) ops\/sec/gm)) {
    out[match[1]!] = Number(match[2]);
  }
  return out;
}

async function runOnce(workload: Workload, options: EngineBenchOptions) {
  const oursDir = await Deno.makeTempDir({ prefix: "basalt-bench-" });
  const peerDir = await Deno.makeTempDir({ prefix: "dbbench-" });
  try {
    const ours = await runMeasured(Deno.execPath(), [
      "run",
      "-A",
      new URL("./engine_workload.ts", import.meta.url).pathname,
      ...workload.ours(options),
      "--dir",
      oursDir,
    ]);
    const peer = await runMeasured("db_bench", [
      ...COMMON_DB_BENCH_FLAGS,
      ...workload.dbBench(options),
      `--db=${peerDir}`,
    ]);
    return {
      ours: JSON.parse(ours.stdout.trim().split("\n").pop()!) as Record<string, number>,
      peer: parseDbBench(peer.stdout),
      oursRss: ours.peakRssBytes,
      peerRss: peer.peakRssBytes,
    };
  } finally {
    await Deno.remove(oursDir, { recursive: true });
    await Deno.remove(peerDir, { recursive: true });
  }
}

/** Runs the engine benchmark and prints its ratio table. */
export async function benchEngine(options: EngineBenchOptions): Promise<RatioRow[]> {
  if (!haveCommand("db_bench")) {
    console.log(
      "\n## engine vs db_bench: skipped: db_bench not installed (apt-get install rocksdb-tools)",
    );
    return [];
  }
  const samples = new Map<string, { ours: number[]; peer: number[] }>();
  const rss = { ours: [] as number[], peer: [] as number[] };
  for (let round = 0; round < options.repeat; round++) {
    for (const workload of WORKLOADS) {
      const result = await runOnce(workload, options);
      for (const [name, value] of Object.entries(result.ours)) {
        const entry = samples.get(name) ?? { ours: [], peer: [] };
        entry.ours.push(value);
        entry.peer.push(result.peer[DB_BENCH_NAMES[name]!] ?? NaN);
        samples.set(name, entry);
      }
      if (workload.name === "fill-read-seek") {
        rss.ours.push(result.oursRss);
        rss.peer.push(result.peerRss);
      }
    }
  }
  const rows: RatioRow[] = [...samples].map(([name, s]) => ({
    name,
    ours: median(s.ours),
    peer: median(s.peer),
    target: TARGETS[name],
    unit: "ops/s",
  }));
  printRatioTable(
    `engine vs db_bench (num=${options.num}, reads=${options.reads}, median of ${options.repeat})`,
    { ours: "basalt (Deno FFI)", peer: "db_bench (C++)" },
    rows,
  );
  const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
  console.log(
    `peak RSS of fill-read-seek: basalt ${mib(median(rss.ours))}, db_bench ${
      mib(median(rss.peer))
    }`,
  );
  return rows;
}
