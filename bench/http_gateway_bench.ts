/**
 * `deno task bench --only http-gateway` (issue #14 item 5): the HTTP API under Debian's `wrk`,
 * beside the same store's gRPC figure for the same operation, in the same run.
 *
 * The store: a standalone store process (`serve --http-addr`, a 1-replica Raft log with fsync),
 * `--num` keys loaded through gRPC first (16-byte `bk…` keys of server_load.ts, 100-byte
 * values). Cells, each `--seconds` long, at 1, 16 and 64 connections (`wrk -t 2`, one thread
 * at one connection, as wrk needs a connection per thread):
 *
 * - GET /v1/kv/{key} of random loaded keys, PUT /v1/kv/{key} of 100-byte bodies to random
 *   loaded keys, from a Lua script written to the temporary directory (`wrkScript`); wrk's
 *   requests/s, p50 and p99 (`--latency`) and its non-2xx and socket-error counts.
 * - The same operation through `Basalt.connect({ host })` — the embedded API over gRPC, the
 *   same transactional key space — with as many requests in flight as wrk has connections.
 *
 * What the ratio means: the gateway of `serve --http-addr` is itself a `Basalt.connect` client
 * of its own store (src/server/main.ts, startHttpGateway), so an HTTP request is the gRPC
 * path (a TSO call and KvGet, or prewrite and commit, over loopback) plus HTTP parsing, all
 * in the store's process; the gRPC cells run that client here instead. HTTP ÷ gRPC is the
 * HTTP layer's cost in throughput, and the store's CPU µs per request (from /proc, "store µs")
 * shows what moving the client into the store adds. The gRPC client here is a Deno process,
 * wrk is C: on the shared 2 cores the gRPC cells' client takes more CPU from the store.
 *
 * Without `wrk` the section prints why and is skipped. Everything started is stopped and the
 * temporary directory removed at the end, on failure and on Ctrl+C.
 *
 * Run alone: `deno run -A bench/http_gateway_bench.ts --keys 10000 --seconds 3`.
 */
import { haveCommand } from "../scripts/setup.ts";
import { Basalt } from "../src/embedded/mod.ts";
import { freeLoopbackPort, startServer, type TestServer } from "../tests/e2e/lib.ts";
import { loadAverage } from "./cluster_bench.ts";
import { KV_BENCH_VALUE_BYTES, loadKvKeys, runKvCell } from "./embedded_bench.ts";
import { formatFigure, printTable } from "./report.ts";
import type { LoadResult } from "./server_load.ts";
import { cpuSecondsOf, findProcessByArgument } from "./server_process.ts";

/** wrk threads of every cell with at least that many connections. */
const WRK_THREADS = 2;
/** wrk's own per-request timeout (its default, 2 s, would count slow fsyncs as errors). */
const WRK_REQUEST_TIMEOUT_SECONDS = 10;
/** Time a wrk call may run beyond its `-d` before it is killed and the cell marked failed. */
const WRK_CALL_GRACE_MS = 30_000;
/** Seconds of each warm-up run (GET, then PUT) before the measured cells. */
const WARMUP_SECONDS = 1;
/** Seed of the wrk script's key choice (a wrk thread's number is added). */
const WRK_KEY_SEED = 14;

/** Options of the HTTP gateway section. */
export interface HttpGatewayBenchOptions {
  /** Keys loaded before the cells; GETs and PUTs pick among them. */
  keys: number;
  /** Seconds per cell. */
  cellSeconds: number;
  /** Connections (HTTP) and requests in flight (gRPC) of each cell. */
  connections: readonly number[];
}

/** What one wrk run reported. */
export interface WrkResult {
  requests: number;
  requestsPerSecond: number;
  /** Latency percentiles of `--latency`, ms. */
  p50Ms: number;
  p99Ms: number;
  /** Answers that were not 2xx or 3xx. */
  non2xx: number;
  /** Connect, read, write and timeout errors together. */
  socketErrors: number;
}

/** Milliseconds of a wrk duration such as `144.00us`, `1.74ms`, `2.01s` or `1.00m`. */
function parseWrkDuration(text: string): number {
  const match = /^([\d.]+)(us|ms|s|m|h)$/.exec(text);
  if (match === null) throw new Error(`wrk output: "${text}" is not a duration`);
  const scale = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2]!]!;
  return Number(match[1]) * scale;
}

/**
 * Parses the output of `wrk --latency` (wrk 4.x): requests, requests/s, the 50% and 99% lines
 * of the latency distribution, non-2xx answers and socket errors. Throws naming the line it
 * did not find.
 */
export function parseWrkOutput(text: string): WrkResult {
  const find = (pattern: RegExp, what: string): RegExpExecArray => {
    const match = pattern.exec(text);
    if (match === null) throw new Error(`wrk output has no ${what} line:\n${text}`);
    return match;
  };
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  return {
    requests: Number(find(/^\s*(\d+) requests in /m, "'N requests in'")[1]),
    requestsPerSecond: Number(find(/^Requests\/sec:\s+([\d.]+)/m, "Requests/sec")[1]),
    p50Ms: parseWrkDuration(find(/^\s+50%\s+(\S+)/m, "50% latency")[1]!),
    p99Ms: parseWrkDuration(find(/^\s+99%\s+(\S+)/m, "99% latency")[1]!),
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(text)?.[1] ?? 0),
    socketErrors: errors === null ? 0 : errors.slice(1).reduce((sum, n) => sum + Number(n), 0),
  };
}

/**
 * The Lua script wrk runs for `method`: each request a random key of `bk` + 14 digits in
 * [0, keys) (server_load.ts's benchKey), PUT with a `valueBytes` body. Each wrk thread seeds
 * its own generator with its number, so threads do not send the same sequence.
 */
export function wrkScript(options: { method: "GET" | "PUT"; keys: number; valueBytes: number }) {
  return `-- written by bench/http_gateway_bench.ts
local keys = ${options.keys}
local method = "${options.method}"
local body = string.rep("v", ${options.valueBytes})
local headers = { ["Content-Type"] = "application/octet-stream" }
local threads = 0

function setup(thread)
  thread:set("thread_number", threads)
  threads = threads + 1
end

function init(args)
  math.randomseed(${WRK_KEY_SEED} + 7919 * thread_number)
end

function request()
  local path = string.format("/v1/kv/bk%014d", math.random(0, keys - 1))
  if method == "PUT" then
    return wrk.format("PUT", path, headers, body)
  end
  return wrk.format("GET", path)
end
`;
}

/** Runs wrk once; null (and why on stderr) when it failed or ran past its deadline. */
export async function runWrk(
  options: { url: string; script: string; connections: number; seconds: number },
): Promise<WrkResult | null> {
  const threads = Math.min(WRK_THREADS, options.connections);
  const args = ["-t", `${threads}`, "-c", `${options.connections}`, "-d", `${options.seconds}s`]
    .concat(["--timeout", `${WRK_REQUEST_TIMEOUT_SECONDS}s`, "--latency", "-s", options.script])
    .concat([options.url]);
  try {
    const output = await new Deno.Command("wrk", {
      args,
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(options.seconds * 1000 + WRK_CALL_GRACE_MS),
    }).output();
    const stdout = new TextDecoder().decode(output.stdout);
    if (!output.success) {
      const stderr = new TextDecoder().decode(output.stderr);
      console.error(`wrk ${args.join(" ")} failed (${output.code}):\n${stdout}${stderr}`);
      return null;
    }
    return parseWrkOutput(stdout);
  } catch (error) {
    console.error(`wrk ${args.join(" ")}: ${(error as Error).message}`);
    return null;
  }
}

/** One row: an operation at one concurrency, over HTTP and over gRPC. */
interface Row {
  op: "GET" | "PUT";
  connections: number;
  http: WrkResult | null;
  grpc: LoadResult;
  /** The store process's CPU µs per request of each side (NaN where /proc is not). */
  httpStoreCpuUs: number;
  grpcStoreCpuUs: number;
}

/** Runs `cell`; also the store's CPU µs per operation meanwhile (`count` of its result). */
async function withStoreCpu<T>(
  storePid: number | null,
  cell: { run: () => Promise<T>; count: (result: T) => number },
): Promise<{ result: T; storeCpuUs: number }> {
  const before = storePid === null ? NaN : cpuSecondsOf(storePid);
  const result = await cell.run();
  const after = storePid === null ? NaN : cpuSecondsOf(storePid);
  return { result, storeCpuUs: ((after - before) * 1e6) / cell.count(result) };
}

/** Runs the section; prints one table. */
export async function benchHttpGateway(options: HttpGatewayBenchOptions): Promise<void> {
  if (!haveCommand("wrk")) {
    console.log("\n## HTTP gateway: skipped: wrk not installed (apt-get install wrk)");
    return;
  }
  const loadBefore = loadAverage();
  const root = await Deno.makeTempDir({ prefix: "basalt-http-bench-" });
  let server: TestServer | null = null;
  let db: Basalt | null = null;
  const cleanUp = async () => {
    await db?.close().catch(() => {});
    await server?.stop().catch(() => {});
    await Deno.remove(root, { recursive: true }).catch(() => {});
  };
  // Ctrl+C would end this process without the finally block: stop what runs first, and start
  // no further cell meanwhile (a wrk started now would outlive this process by its -d).
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
    void cleanUp().finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", onSignal);
  try {
    const httpAddr = `127.0.0.1:${freeLoopbackPort()}`;
    server = await startServer({ dataDir: `${root}/data`, args: ["--http-addr", httpAddr] });
    const client = await Basalt.connect({ host: server.grpcAddr, reclaimIntervalMs: 0 });
    db = client;
    const loadStarted = performance.now();
    await loadKvKeys(client, options.keys);
    const loadSeconds = (performance.now() - loadStarted) / 1000;
    const scripts = { GET: `${root}/get.lua`, PUT: `${root}/put.lua` };
    for (const method of ["GET", "PUT"] as const) {
      const text = wrkScript({ method, keys: options.keys, valueBytes: KV_BENCH_VALUE_BYTES });
      await Deno.writeTextFile(scripts[method], text);
    }
    const url = `http://${httpAddr}`;
    for (const method of ["GET", "PUT"] as const) {
      await runWrk({ url, script: scripts[method], connections: 16, seconds: WARMUP_SECONDS });
    }
    // The store's own argument list names its data directory: that finds its pid.
    const storePid = findProcessByArgument(server.dataDir);
    const rows: Row[] = [];
    for (const op of ["GET", "PUT"] as const) {
      for (const connections of options.connections) {
        if (interrupted) return;
        const seconds = options.cellSeconds;
        const http = await withStoreCpu(storePid, {
          run: () => runWrk({ url, script: scripts[op], connections, seconds }),
          count: (result) => result?.requests ?? NaN,
        });
        const kvOp = op === "GET" ? "get" : "put";
        const grpc = await withStoreCpu(storePid, {
          run: () =>
            runKvCell(client, { op: kvOp, keys: options.keys, inFlight: connections, seconds }),
          count: (result) => result.ops,
        });
        rows.push({
          op,
          connections,
          http: http.result,
          grpc: grpc.result,
          httpStoreCpuUs: http.storeCpuUs,
          grpcStoreCpuUs: grpc.storeCpuUs,
        });
      }
    }
    printRows(rows, {
      title: `HTTP API (wrk) vs gRPC (Basalt.connect), one standalone store: ${options.keys} ` +
        `keys (loaded in ${loadSeconds.toFixed(1)} s), ${KV_BENCH_VALUE_BYTES} B values, ` +
        `${options.cellSeconds} s per cell; load average ${loadBefore} → ${loadAverage()}`,
    });
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    await cleanUp();
  }
}

function printRows(rows: Row[], options: { title: string }): void {
  const header = ["op", "conns", "HTTP req/s", "p50 ms", "p99 ms", "non-2xx/sock err", "store µs"]
    .concat(["gRPC ops/s", "p50 ms", "p99 ms", "errors", "store µs", "HTTP ÷ gRPC"]);
  const lines = rows.map(({ op, connections, http, grpc, httpStoreCpuUs, grpcStoreCpuUs }) => {
    const ratio = (http?.requestsPerSecond ?? NaN) / grpc.opsPerSecond;
    return [
      `${op} /v1/kv`,
      `${connections}`,
      http === null ? "failed" : formatFigure(http.requestsPerSecond),
      formatFigure(http?.p50Ms ?? NaN, 2),
      formatFigure(http?.p99Ms ?? NaN, 2),
      http === null ? "" : `${http.non2xx}/${http.socketErrors}`,
      formatFigure(httpStoreCpuUs),
      formatFigure(grpc.opsPerSecond),
      formatFigure(grpc.p50Ms, 2),
      formatFigure(grpc.p99Ms, 2),
      grpc.errors === 0 ? "0" : `${grpc.errors} (${grpc.firstError})`,
      formatFigure(grpcStoreCpuUs),
      Number.isFinite(ratio) ? `${ratio.toFixed(3)}×` : "n/a",
    ];
  });
  printTable(options.title, header, lines);
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
  await benchHttpGateway({
    keys: Number(values.keys),
    cellSeconds: Number(values.seconds),
    connections: [1, 16, 64],
  });
}
