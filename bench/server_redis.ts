/**
 * The in-memory peer of the server benchmark: Debian's `redis-server` on a free loopback port,
 * no persistence (`--save ""`, `--appendonly no`), driven by `redis-benchmark -P 16 -t set,get
 * -d 100` — pipelines of 16 from 50 connections, the way Redis is usually quoted. Its RSS after
 * `num` keys of 100 bytes is read from /proc/<pid>/status, as Basalt's is.
 */
import { haveCommand } from "../scripts/setup.ts";
import { vmRssBytes } from "./server_process.ts";

/** What Redis did in this run. */
export interface RedisResult {
  setPerSecond: number;
  getPerSecond: number;
  setP50Ms: number;
  setP99Ms: number;
  getP50Ms: number;
  getP99Ms: number;
  /** VmRSS after `num` keys were loaded, bytes. */
  rssBytes: number;
}

const READY_TIMEOUT_MS = 10_000;

/** Why Redis cannot be measured here, or null when it can. */
export function redisMissing(): string | null {
  const missing = ["redis-server", "redis-benchmark", "redis-cli"].filter((c) => !haveCommand(c));
  if (missing.length === 0) return null;
  return `${missing.join(", ")} not found (sudo apt-get install -y redis-server redis-tools)`;
}

function freeLoopbackPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function run(command: string, args: string[]): Promise<string> {
  const output = await new Deno.Command(command, { args, stderr: "piped" }).output();
  const stdout = new TextDecoder().decode(output.stdout);
  if (!output.success) {
    throw new Error(`${command} ${args.join(" ")}: ${new TextDecoder().decode(output.stderr)}`);
  }
  return stdout;
}

/** Parses `redis-benchmark --csv` output: test → { rps, p50, p99 }. */
export function parseRedisBenchmarkCsv(
  csv: string,
): Map<string, { rps: number; p50Ms: number; p99Ms: number }> {
  const rows = csv.trim().split("\n").map((line) =>
    line.split(",").map((cell) => cell.replace(/^"|"$/g, ""))
  );
  const header = rows[0] ?? [];
  const column = (name: string) => header.indexOf(name);
  const [test, rps, p50, p99] = ["test", "rps", "p50_latency_ms", "p99_latency_ms"].map(column);
  if ([test, rps, p50, p99].some((index) => index === undefined || index < 0)) {
    throw new Error(`unexpected redis-benchmark output:\n${csv}`);
  }
  const results = new Map<string, { rps: number; p50Ms: number; p99Ms: number }>();
  for (const row of rows.slice(1)) {
    results.set(row[test!]!, {
      rps: Number(row[rps!]),
      p50Ms: Number(row[p50!]),
      p99Ms: Number(row[p99!]),
    });
  }
  return results;
}

/** A running `redis-server` of the benchmarks (no persistence), on a free loopback port. */
export interface RedisServer {
  port: number;
  pid: number;
  /** `redis-cli -p PORT ...args`; resolves with its stdout. */
  cli(...args: string[]): Promise<string>;
  /** SIGKILL, wait, remove its directory. */
  stop(): Promise<void>;
}

/**
 * Starts Debian's `redis-server` and waits until it answers PING (bounded): with no persistence,
 * or with `durable`, an append-only file fsynced before every write is answered
 * (`appendfsync always`: the durability of a store whose log is fsynced per write).
 */
export async function startRedisServer(
  options: { durable?: boolean } = {},
): Promise<RedisServer> {
  const port = freeLoopbackPort();
  const dir = await Deno.makeTempDir({ prefix: "basalt_bench_redis_" });
  const persistence = options.durable === true
    ? ["--appendonly", "yes", "--appendfsync", "always"]
    : ["--appendonly", "no"];
  const child = new Deno.Command("redis-server", {
    args: ["--port", `${port}`, "--bind", "127.0.0.1", "--save", "", ...persistence]
      .concat(["--dir", dir, "--enable-debug-command", "local", "--loglevel", "warning"]),
    stdout: "null",
    stderr: "null",
  }).spawn();
  const cli = (...args: string[]) =>
    run("redis-cli", ["-h", "127.0.0.1", "-p", `${port}`, ...args]);
  const stop = async () => {
    child.kill("SIGKILL");
    await child.status;
    await Deno.remove(dir, { recursive: true });
  };
  try {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while ((await cli("PING").catch(() => "")).trim() !== "PONG") {
      if (Date.now() > deadline) throw new Error(`redis-server did not answer on port ${port}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { port, pid: child.pid, cli, stop };
}

/** Starts Redis, measures SET and GET with `ops` requests each and RSS after `num` keys. */
export async function benchRedis(options: { num: number; ops: number }): Promise<RedisResult> {
  const redis = await startRedisServer();
  const port = redis.port;
  try {
    // `num` keys of 100-byte values, then RSS, as for Basalt.
    await redis.cli("DEBUG", "POPULATE", `${options.num}`, "key", "100");
    const rssBytes = vmRssBytes(redis.pid);
    const csv = await run("redis-benchmark", [
      ...["-h", "127.0.0.1", "-p", `${port}`, "-P", "16", "-t", "set,get", "-d", "100"],
      ...["-n", `${options.ops}`, "-r", `${options.num}`, "--csv"],
    ]);
    const results = parseRedisBenchmarkCsv(csv);
    const set = results.get("SET");
    const get = results.get("GET");
    if (set === undefined || get === undefined) throw new Error(`no SET/GET rows in:\n${csv}`);
    return {
      setPerSecond: set.rps,
      getPerSecond: get.rps,
      setP50Ms: set.p50Ms,
      setP99Ms: set.p99Ms,
      getP50Ms: get.p50Ms,
      getP99Ms: get.p99Ms,
      rssBytes,
    };
  } finally {
    await redis.stop();
  }
}
