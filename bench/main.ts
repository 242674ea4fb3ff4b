/**
 * `deno task bench`: the benchmark suite. Each section compares Basalt with a peer measured on
 * the same machine in the same run and prints ratios (absolute figures here wander ±2×).
 *
 *   deno task bench                         every section, defaults below
 *   deno task bench --only engine --repeat 5
 *   deno task bench --num 200000            a quicker, smaller run
 *   deno task bench --only server --num 100000
 *   deno task bench --only ycsb --num 20000   YCSB A–F, txn vs raw (records = ops = --num;
 *                                             without --num, 10 000: about a minute)
 *   deno task bench --only txn-large          one transaction of --num keys (default 100 000)
 *                                             through the command layer: prewrite, commit,
 *                                             rollback, pessimistic lock and rollback, resolve
 *   deno task bench --only pd                 one PD process, then 3 PD members (Raft,
 *                                             driven at the leader), side by side with the
 *                                             ratio 3÷1: TSO timestamps/s, one write's
 *                                             durable path, region heartbeats/s for --num
 *                                             regions (default 100 000; the 3-member load
 *                                             of new regions takes minutes), RSS; and
 *                                             in-process scheduling rounds at 10k regions
 *   deno task bench --only cluster --seconds 2
 *                                             1 PD + 3 stores: raw puts/gets through
 *                                             BatchCommands to the leader at 1/16/64/256 in
 *                                             flight, --seconds per cell (default 5) over --num
 *                                             keys (default 20 000), raced against a
 *                                             3-member etcd when etcd is installed; standalone
 *                                             puts through the log vs the tree before it
 *                                             (ad2d13b)
 *   deno task bench --only ycsb-cluster --seconds 3
 *                                             YCSB A–F through TxnKV and RawKV on 1 PD + 3
 *                                             stores split (by the split checker) into ≥ 64
 *                                             regions, beside a standalone store, --seconds
 *                                             per cell (default 5) over --num records per key
 *                                             space (default 5 000); a split under load; the
 *                                             failed operations (about 3–4 min at --seconds 3)
 *   deno task bench --only put-breakdown --seconds 3
 *                                             where a cluster put's time goes: 1 PD + 3
 *                                             stores with stage clocks on, raw puts at 1/16/64
 *                                             in flight, per stage (proposal, log write,
 *                                             replication round trip, apply, hops), CPU and
 *                                             fsyncs per put (bench/put_breakdown.ts)
 *   deno task bench --only idle --num 3000    idle regions on 1 PD + 3 store processes: --num
 *                                             regions (default 10 000) made by SplitRegion,
 *                                             each store's and PD's CPU over --seconds (default
 *                                             20) of quiet, hibernate-regions on vs off
 *   deno task bench --only redis-gateway [--redis-cluster]
 *                                             redis-benchmark SET/GET/INCR/MSET, -c 50, -P 1
 *                                             and 16, against the Redis gateway in a
 *                                             standalone store (and with --redis-cluster a
 *                                             gateway over 1 PD + 3 stores) and redis-server;
 *                                             --num requests per cell (default 20 000),
 *                                             --repeat rounds (median)
 *   deno task bench --only http-gateway --seconds 3
 *                                             wrk GET and PUT /v1/kv/{key} (100 B bodies) at
 *                                             1/16/64 connections against a standalone store
 *                                             (serve --http-addr), beside the same operation
 *                                             through gRPC (Basalt.connect) at as many in
 *                                             flight; --num keys (default 10 000), --seconds
 *                                             per cell (default 3): about 45 s
 *   deno task bench --only embedded --seconds 3
 *                                             Basalt.open in this process: gets and puts of
 *                                             100 B values, 1/16/64 concurrent promises, beside
 *                                             the engine's readrandom and fillsync (RocksDB via
 *                                             FFI) in the same run; --num keys (default
 *                                             10 000), --seconds per cell (default 3): ~30 s
 */
import { parseArgs } from "node:util";
import { benchCluster } from "./cluster_bench.ts";
import { benchEmbedded } from "./embedded_bench.ts";
import { benchEngine } from "./engine_bench.ts";
import { benchHttpGateway } from "./http_gateway_bench.ts";
import { benchIdleCluster } from "./idle_cluster_bench.ts";
import { benchPd } from "./pd_bench.ts";
import { benchPutBreakdown } from "./put_breakdown.ts";
import { benchRaft } from "./raft_bench.ts";
import { benchRedisGateway } from "./redis_gateway_bench.ts";
import { benchServer } from "./server_bench.ts";
import { benchTxnLarge } from "./txn_large_bench.ts";
import { benchYcsb } from "./ycsb_bench.ts";
import { benchYcsbCluster } from "./ycsb_cluster_bench.ts";

const SECTIONS = [
  "engine",
  "raft",
  "server",
  "ycsb",
  "txn-large",
  "pd",
  "cluster",
  "ycsb-cluster",
  "idle",
  "put-breakdown",
  "redis-gateway",
  "http-gateway",
  "embedded",
] as const;
/** YCSB records and operations per workload when `--num` is not given. */
const YCSB_DEFAULT_NUM = 10_000;
/** Keys of the large transaction when `--num` is not given (issue #9: 100k-key commit). */
const TXN_LARGE_DEFAULT_NUM = 100_000;
/** Regions loaded into PD when `--num` is not given (issue #11: 100k regions). */
const PD_DEFAULT_NUM = 100_000;
/** Keys loaded into the cluster when `--num` is not given. */
const CLUSTER_DEFAULT_NUM = 20_000;
/** YCSB records per key space on the cluster and the standalone store without `--num`. */
const YCSB_CLUSTER_DEFAULT_NUM = 5_000;
/** Idle regions without `--num` (issue #12 item 3: 10,000 idle regions on three stores). */
const IDLE_DEFAULT_NUM = 10_000;
/** Keys the put breakdown loads without `--num`. */
const PUT_BREAKDOWN_DEFAULT_NUM = 5_000;
/** Seconds per put-breakdown cell without `--seconds`. */
const PUT_BREAKDOWN_DEFAULT_SECONDS = 3;
/** Seconds of puts at 256 in flight before the breakdown's cells. */
const PUT_BREAKDOWN_WARMUP_SECONDS = 8;
/** Seconds of idle CPU measured without `--seconds`. */
const IDLE_DEFAULT_SECONDS = 20;
/** redis-benchmark requests per Redis gateway cell without `--num`. */
const REDIS_GATEWAY_DEFAULT_NUM = 20_000;
/** Keys loaded for the HTTP gateway and embedded sections without `--num`. */
const KV_API_DEFAULT_NUM = 10_000;
/** Seconds per HTTP gateway or embedded cell without `--seconds` (12 cells: tens of seconds). */
const KV_API_DEFAULT_SECONDS = 3;
/** Connections (HTTP) and requests in flight (gRPC, embedded) of those sections' cells. */
const KV_API_IN_FLIGHT = [1, 16, 64] as const;

const { values } = parseArgs({
  // `deno task bench -- --only …` hands the "--" through; it separates nothing here.
  args: Deno.args[0] === "--" ? Deno.args.slice(1) : Deno.args,
  options: {
    only: { type: "string" },
    repeat: { type: "string", default: "3" },
    num: { type: "string", default: "1000000" },
    reads: { type: "string", default: "300000" },
    "sync-writes": { type: "string", default: "5000" },
    seconds: { type: "string", default: "5" },
    "redis-cluster": { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
});

if (values.help) {
  console.log(
    `Usage: deno task bench [--only ${
      SECTIONS.join(",")
    }] [--repeat N] [--num N] [--reads N] [--sync-writes N] [--seconds S] [--redis-cluster]`,
  );
  Deno.exit(0);
}

// The put breakdown is a diagnosis, not a race: it runs when asked for.
const only = new Set(values.only?.split(",") ?? SECTIONS.filter((s) => s !== "put-breakdown"));
for (const name of only) {
  if (!(SECTIONS as readonly string[]).includes(name)) {
    console.error(`unknown section "${name}"; sections: ${SECTIONS.join(", ")}`);
    Deno.exit(2);
  }
}

console.log(
  `# Basalt benchmarks — ${new Date().toISOString()}, ${navigator.hardwareConcurrency} cores`,
);
if (only.has("engine")) {
  await benchEngine({
    num: Number(values.num),
    reads: Number(values.reads),
    syncWrites: Number(values["sync-writes"]),
    repeat: Number(values.repeat),
  });
}
if (only.has("raft")) await benchRaft();
if (only.has("server")) {
  await benchServer({ num: Number(values.num), repeat: Number(values.repeat) });
}
const numGiven = Deno.args.some((arg) => arg === "--num" || arg.startsWith("--num="));
const secondsGiven = Deno.args.some((arg) => arg === "--seconds" || arg.startsWith("--seconds="));
if (only.has("ycsb")) {
  const num = numGiven ? Number(values.num) : YCSB_DEFAULT_NUM;
  await benchYcsb({ records: num, operations: num });
}
if (only.has("txn-large")) {
  await benchTxnLarge({ num: numGiven ? Number(values.num) : TXN_LARGE_DEFAULT_NUM });
}
if (only.has("pd")) await benchPd({ num: numGiven ? Number(values.num) : PD_DEFAULT_NUM });
if (only.has("cluster")) {
  await benchCluster({
    keys: numGiven ? Number(values.num) : CLUSTER_DEFAULT_NUM,
    cellSeconds: Number(values.seconds),
    repeat: Number(values.repeat),
  });
}
if (only.has("ycsb-cluster")) {
  await benchYcsbCluster({
    records: numGiven ? Number(values.num) : YCSB_CLUSTER_DEFAULT_NUM,
    seconds: Number(values.seconds),
  });
}
if (only.has("idle")) {
  await benchIdleCluster({
    regions: numGiven ? Number(values.num) : IDLE_DEFAULT_NUM,
    seconds: secondsGiven ? Number(values.seconds) : IDLE_DEFAULT_SECONDS,
  });
}
if (only.has("put-breakdown")) {
  await benchPutBreakdown({
    keys: numGiven ? Number(values.num) : PUT_BREAKDOWN_DEFAULT_NUM,
    cellSeconds: secondsGiven ? Number(values.seconds) : PUT_BREAKDOWN_DEFAULT_SECONDS,
    inFlight: [1, 16, 64],
    repeat: Number(values.repeat),
    warmupMs: PUT_BREAKDOWN_WARMUP_SECONDS * 1000,
  });
}
if (only.has("redis-gateway")) {
  await benchRedisGateway({
    num: numGiven ? Number(values.num) : REDIS_GATEWAY_DEFAULT_NUM,
    repeat: Number(values.repeat),
    cluster: values["redis-cluster"],
  });
}
if (only.has("http-gateway")) {
  await benchHttpGateway({
    keys: numGiven ? Number(values.num) : KV_API_DEFAULT_NUM,
    cellSeconds: secondsGiven ? Number(values.seconds) : KV_API_DEFAULT_SECONDS,
    connections: KV_API_IN_FLIGHT,
  });
}
if (only.has("embedded")) {
  await benchEmbedded({
    keys: numGiven ? Number(values.num) : KV_API_DEFAULT_NUM,
    cellSeconds: secondsGiven ? Number(values.seconds) : KV_API_DEFAULT_SECONDS,
    inFlight: KV_API_IN_FLIGHT,
  });
}
