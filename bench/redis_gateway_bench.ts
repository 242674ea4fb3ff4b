/**
 * `deno task bench --only redis-gateway` (issue #14 item 5): Debian's `redis-benchmark` against
 * the Redis gateway and against Debian's `redis-server`, in the same run, cells alternating.
 *
 * Targets: Redis (`startRedisServer`, no persistence, the peer of the server section), and Redis
 * with an append-only file fsynced before every answer (`appendfsync always`: the gateway's
 * durability, whose every commit is an fsynced log write); the
 * gateway inside a standalone store (`serve --redis-addr`: a 1-replica Raft log with fsync);
 * with `--redis-cluster`, also a gateway process (`deno task redis`) over 1 PD + 3 stores
 * (3 replicas). Cells: SET, GET, INCR and MSET (10 keys) from 50 connections (`-c 50`), each
 * unpipelined and at `-P 16`, random keys out of 100,000 (`-r`), 3-byte values (its default).
 * Each cell runs `--num` requests (MSET a tenth: it writes 10 keys each); `--repeat` rounds,
 * the median printed, with the gateway ÷ Redis ratio of the medians. Every redis-benchmark
 * call is bounded (REDIS_GATEWAY_BENCH_CELL_TIMEOUT_MS); a cell past it, or failing, prints "failed" (why on stderr).
 * Everything started is stopped at the end, on failure and on Ctrl+C.
 *
 * Run alone: `deno run -A bench/redis_gateway_bench.ts --num 20000 --repeat 3 [--cluster]`.
 */
import { type Cluster, startCluster } from "../tests/e2e/cluster.ts";
import { freeLoopbackPort, startServer, type TestServer } from "../tests/e2e/lib.ts";
import { loadAverage } from "./cluster_bench.ts";
import { median, printTable } from "./report.ts";
import { parseRedisBenchmarkCsv, redisMissing, startRedisServer } from "./server_redis.ts";

/** Longest one redis-benchmark call may run before it is killed and the cell marked. */
export const REDIS_GATEWAY_BENCH_CELL_TIMEOUT_MS = 180_000;
/** Longest a gateway process may take to print its ready line. */
const GATEWAY_READY_TIMEOUT_MS = 30_000;
/** Connections of every cell (`-c`). */
const CLIENTS = 50;
/** Pipeline depths measured (`-P`). */
const PIPELINES = [1, 16] as const;
/** Random keys (`-r`). */
const KEY_SPACE = 100_000;

/** One redis-benchmark test: its `-t` name, its CSV row name, the share of `--num` it runs. */
const TESTS = [
  { test: "set", row: "SET", share: 1 },
  { test: "get", row: "GET", share: 1 },
  { test: "incr", row: "INCR", share: 1 },
  { test: "mset", row: "MSET (10 keys)", share: 0.1 },
] as const;

/** Something redis-benchmark can be pointed at (a peer: a redis-server the gateways are weighed against). */
interface Target {
  name: string;
  port: number;
  peer?: true;
  stop(): Promise<void>;
}

/** ops/s of one cell (NaN when it timed out or failed). */
async function runCell(
  port: number,
  cell: { test: (typeof TESTS)[number]; pipeline: number; requests: number },
): Promise<number> {
  const args = ["-h", "127.0.0.1", "-p", `${port}`, "-c", `${CLIENTS}`, "-P", `${cell.pipeline}`]
    .concat(["-t", cell.test.test, "-n", `${cell.requests}`, "-r", `${KEY_SPACE}`, "-q", "--csv"]);
  try {
    const output = await new Deno.Command("redis-benchmark", {
      args,
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(REDIS_GATEWAY_BENCH_CELL_TIMEOUT_MS),
    }).output();
    const stdout = new TextDecoder().decode(output.stdout);
    const row = parseRedisBenchmarkCsv(stdout).get(cell.test.row);
    if (!output.success || row === undefined) {
      console.error(`redis-benchmark ${args.join(" ")} failed:\n${stdout}`);
      return NaN;
    }
    return row.rps;
  } catch (error) {
    console.error(`redis-benchmark ${args.join(" ")}: ${(error as Error).message}`);
    return NaN;
  }
}

async function redisTarget(durable: boolean): Promise<Target> {
  const redis = await startRedisServer({ durable });
  const name = durable ? "redis-server (fsync always)" : "redis-server";
  return { name, port: redis.port, peer: true, stop: redis.stop };
}

async function standaloneTarget(): Promise<Target> {
  const port = freeLoopbackPort();
  const server: TestServer = await startServer({ args: ["--redis-addr", `127.0.0.1:${port}`] });
  return {
    name: "gateway (standalone store)",
    port,
    stop: async () => {
      await server.stop();
      await Deno.remove(server.dataDir.replace(/\/data$/, ""), { recursive: true });
    },
  };
}

/** A gateway process (`src/gateway/redis/main.ts`) over 1 PD + 3 stores. */
async function clusterTarget(): Promise<Target> {
  const cluster: Cluster = await startCluster({ stores: 3, proxies: false });
  let child: Deno.ChildProcess | null = null;
  const stop = async () => {
    if (child !== null) {
      try {
        child.kill("SIGTERM");
      } catch { /* exited */ }
      await child.status;
    }
    await cluster.stop();
  };
  try {
    const port = freeLoopbackPort();
    const main = new URL("../src/gateway/redis/main.ts", import.meta.url).pathname;
    child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", main, "--addr", `127.0.0.1:${port}`, "--pd", cluster.pdAddr],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    await waitForLine(child.stdout, /basalt redis ready/);
    return { name: "gateway (1 PD + 3 stores)", port, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Reads `stdout` until a line matches (bounded), then drains the rest in the background. */
async function waitForLine(stdout: ReadableStream<Uint8Array>, ready: RegExp): Promise<void> {
  const reader = stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const deadline = Date.now() + GATEWAY_READY_TIMEOUT_MS;
  while (!ready.test(text)) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"late">((resolve) => {
      timer = setTimeout(() => resolve("late"), Math.max(0, deadline - Date.now()));
    });
    const next = await Promise.race([reader.read(), late]);
    clearTimeout(timer);
    if (next === "late" || next.done) {
      throw new Error(`the gateway did not print ${ready} within the deadline:\n${text}`);
    }
    text += next.value;
  }
  (async () => {
    while (!(await reader.read()).done) { /* drain */ }
  })().catch(() => {});
}

/** Runs the section; prints one table. */
export async function benchRedisGateway(
  options: { num: number; repeat: number; cluster: boolean },
): Promise<void> {
  const missing = redisMissing();
  if (missing !== null) {
    console.log(`\n## Redis gateway vs redis-server: skipped (${missing})`);
    return;
  }
  const loadBefore = loadAverage();
  const targets: Target[] = [];
  // Ctrl+C would end this process without the finally block: stop what runs first.
  const onSignal = () => {
    void Promise.allSettled(targets.map((target) => target.stop())).finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", onSignal);
  try {
    targets.push(await redisTarget(false));
    targets.push(await redisTarget(true));
    targets.push(await standaloneTarget());
    if (options.cluster) targets.push(await clusterTarget());
    // results[target][cell] = ops/s of each round.
    const results = targets.map(() => new Map<string, number[]>());
    for (let round = 0; round < options.repeat; round++) {
      for (const pipeline of PIPELINES) {
        for (const test of TESTS) {
          const cell = `${test.row} -P ${pipeline}`;
          const requests = Math.max(CLIENTS * pipeline, Math.round(options.num * test.share));
          for (const [i, target] of targets.entries()) {
            const rps = await runCell(target.port, { test, pipeline, requests });
            const list = results[i]!.get(cell) ?? [];
            list.push(rps);
            results[i]!.set(cell, list);
          }
        }
      }
    }
    printResults(targets, results, {
      title: `Redis gateway vs redis-server: redis-benchmark -c ${CLIENTS} -r ${KEY_SPACE}, ` +
        `-n ${options.num} (MSET ${options.num / 10}), median of ${options.repeat}; ` +
        `load average ${loadBefore} → ${loadAverage()}`,
    });
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    for (const target of targets.reverse()) await target.stop().catch(() => {});
  }
}

function printResults(
  targets: Target[],
  results: Map<string, number[]>[],
  options: { title: string },
): void {
  const peers = targets.flatMap((target, i) => (target.peer === true ? [i] : []));
  const header = ["cell", ...targets.map((target) => `${target.name} ops/s`)];
  for (const target of targets) {
    if (target.peer !== true) { for (const p of peers) header.push(`÷ ${targets[p]!.name}`); }
  }
  const lines: string[][] = [];
  for (const cell of results[0]!.keys()) {
    const medians = results.map((byCell) =>
      median(byCell.get(cell)!.filter((rps) => !Number.isNaN(rps)))
    );
    const line = [cell, ...medians.map(format)];
    for (const [i, target] of targets.entries()) {
      if (target.peer === true) continue;
      for (const p of peers) {
        const ratio = medians[i]! / medians[p]!;
        line.push(Number.isFinite(ratio) ? `${ratio.toFixed(3)}×` : "n/a");
      }
    }
    lines.push(line);
  }
  printTable(options.title, header, lines);
}

function format(rps: number): string {
  return Number.isFinite(rps) ? Math.round(rps).toLocaleString("en-US") : "failed";
}

if (import.meta.main) {
  const { parseArgs } = await import("node:util");
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      num: { type: "string", default: "20000" },
      repeat: { type: "string", default: "1" },
      cluster: { type: "boolean", default: false },
    },
  });
  await benchRedisGateway({
    num: Number(values.num),
    repeat: Number(values.repeat),
    cluster: values.cluster,
  });
}
