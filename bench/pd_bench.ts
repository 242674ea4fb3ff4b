/**
 * The placement driver (`deno task bench -- --only pd [--num 100000]`, issue #11): one PD
 * process (`src/pd/server/main.ts`, started as the e2e tests start it: loopback, port 0, a
 * temporary data directory, stopped at the end), bootstrapped with 3 stores, measured for:
 *
 * 1. TSO: timestamps/s through one `Tso` stream, one request in flight, `count` = 1, 16, 256
 *    (p50/p99 of the round trip), and through `src/client/tso.ts`'s batching client with 64
 *    concurrent callers (p50/p99 of `getTimestamp()`).
 * 2. Region heartbeats: `num` regions (3 peers each, leaders spread over the 3 stores), their
 *    ids allocated by AskBatchSplit as a splitting store gets them. A load generator sends one
 *    heartbeat per region on 3 streams (one per store, as 3 stores' leaders would). PD answers
 *    a heartbeat only when it has something to say, so what it processed is read from its
 *    `/metrics` counter `basalt_pd_region_heartbeats_total`: the figure is the burst's size ÷
 *    the time from the first send until the counter reached it. The first burst brings new
 *    regions (each one written to PD's storage); the repeats are unchanged (nothing written).
 * 3. PD's resident memory (VmRSS) after bootstrap and with the `num` regions loaded.
 *
 * There is no peer: TiKV's PD (Go) is not packaged for Debian, and etcd (`etcd-server`, which
 * PD embeds) serves neither timestamps nor region heartbeats, so its figures would not compare
 * like for like. The section prints absolute figures and says so.
 */
import { Buffer } from "node:buffer";
import { pdpb } from "../proto/mod.ts";
import { TsoClient } from "../src/client/tso.ts";
import { PdRpc, startPd } from "../tests/e2e/pd_lib.ts";
import { median, printTable } from "./report.ts";
import { findProcessByArgument, vmRssBytes } from "./server_process.ts";

/** How long each TSO workload runs. */
const TSO_RUN_MS = 3_000;
/** Timestamps asked per request on the raw stream. */
const TSO_COUNTS = [1, 16, 256] as const;
/** Concurrent callers of the batching client. */
const TSO_CALLERS = 64;
/** Stores of the simulated cluster: one heartbeat stream each. */
const STORES = 3;
/** Regions per AskBatchSplit (PD's `PD_SPLIT_MAX_COUNT`). */
const SPLIT_BATCH = 1024;
/** Unchanged heartbeat bursts after the first; the median is printed. */
const HEARTBEAT_REPEATS = 3;
/** Longest wait for PD to process one heartbeat burst. */
const HEARTBEAT_BURST_TIMEOUT_MS = 10 * 60_000;
/** How often `/metrics` is read while a burst is processed. */
const METRICS_POLL_MS = 50;
/** Deadline of one `/metrics` read. */
const METRICS_TIMEOUT_MS = 10_000;

/** Parameters of a run. */
export interface PdBenchOptions {
  /** Regions loaded into PD. */
  num: number;
}

const CODECS = {
  AllocID: { request: pdpb.AllocIDRequest, response: pdpb.AllocIDResponse },
  Bootstrap: { request: pdpb.BootstrapRequest, response: pdpb.BootstrapResponse },
  PutStore: { request: pdpb.PutStoreRequest, response: pdpb.PutStoreResponse },
  AskBatchSplit: { request: pdpb.AskBatchSplitRequest, response: pdpb.AskBatchSplitResponse },
};

type Method = keyof typeof CODECS;

/** Calls `method`, failing the benchmark on an error header: failures measure nothing. */
async function call<Res extends { header?: pdpb.ResponseHeader.$Properties | null }>(
  rpc: PdRpc,
  method: Method,
  request: Record<string, unknown>,
): Promise<Res> {
  const response = await rpc.call<Res>(method, CODECS[method] as never, request);
  const error = response.header?.error;
  if (error && error.type !== pdpb.ErrorType.OK) {
    throw new Error(`${method} failed: ${pdpb.ErrorType[error.type ?? 0]} ${error.message}`);
  }
  return response;
}

/** The `p`-th percentile (0–1) of `values`, nearest rank. */
function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!;
}

interface TsoResult {
  name: string;
  perSecond: number;
  latenciesMs: number[];
}

/** One request of `count` in flight on one raw Tso stream, for `TSO_RUN_MS`. */
async function tsoRaw(rpc: PdRpc, count: number): Promise<TsoResult> {
  const stream = rpc.stream<pdpb.TsoResponse>("Tso", pdpb.TsoResponse);
  const request = pdpb.TsoRequest.encode({ header: rpc.header(), count }).finish();
  const latenciesMs: number[] = [];
  let last = 0n;
  const start = performance.now();
  try {
    while (performance.now() - start < TSO_RUN_MS) {
      const sent = performance.now();
      stream.send(request);
      const response = await stream.next();
      if (response === null) throw new Error(`no TsoResponse to a request of count ${count}`);
      latenciesMs.push(performance.now() - sent);
      const { physical, logical } = response.timestamp ?? {};
      const ts = ((physical ?? 0n) << 18n) | (logical ?? 0n);
      if (response.count !== count || ts <= last) {
        throw new Error(`TsoResponse count ${response.count} ts ${ts} after ${last}`);
      }
      last = ts;
    }
  } finally {
    stream.end();
  }
  const seconds = (performance.now() - start) / 1000;
  return {
    name: `one Tso stream, count=${count}`,
    perSecond: (latenciesMs.length * count) / seconds,
    latenciesMs,
  };
}

/** `TSO_CALLERS` callers of the batching client, each asking again when answered. */
async function tsoBatching(clientAddr: string): Promise<TsoResult> {
  const tso = await TsoClient.connect([clientAddr]);
  const latenciesMs: number[] = [];
  const start = performance.now();
  try {
    await tso.getTimestamp(); // the stream is open before timing
    const caller = async () => {
      while (performance.now() - start < TSO_RUN_MS) {
        const asked = performance.now();
        await tso.getTimestamp();
        latenciesMs.push(performance.now() - asked);
      }
    };
    await Promise.all(Array.from({ length: TSO_CALLERS }, caller));
  } finally {
    tso.close();
  }
  const seconds = (performance.now() - start) / 1000;
  return {
    name: `TsoClient, ${TSO_CALLERS} callers`,
    perSecond: latenciesMs.length / seconds,
    latenciesMs,
  };
}

/** PD's `/metrics` text. */
async function metricsOf(statusAddr: string): Promise<string> {
  const response = await fetch(`http://${statusAddr}/metrics`, {
    signal: AbortSignal.timeout(METRICS_TIMEOUT_MS),
  });
  if (!response.ok) throw new Error(`/metrics answered ${response.status}`);
  return await response.text();
}

/** The value of the metric line starting with `name` (labels included), or 0. */
function metricValue(text: string, name: string): number {
  for (const line of text.split("\n")) {
    if (line.startsWith(`${name} `)) return Number(line.slice(name.length + 1));
  }
  return 0;
}

/** Heartbeats PD has processed so far, and how many it did not keep. */
async function heartbeatsProcessed(
  statusAddr: string,
): Promise<{ processed: number; notKept: number; regions: number }> {
  const text = await metricsOf(statusAddr);
  const of = (outcome: string) =>
    metricValue(text, `basalt_pd_region_heartbeats_total{outcome="${outcome}"}`);
  const notKept = of("stale") + of("refused");
  return {
    processed: of("kept") + notKept,
    notKept,
    regions: metricValue(text, "basalt_pd_regions"),
  };
}

function regionKey(index: number): Uint8Array {
  return new TextEncoder().encode(`r${String(index).padStart(10, "0")}`);
}

/** Stores 1..STORES (ids from AllocID), PD bootstrapped with the first one. */
async function bootstrap(rpc: PdRpc): Promise<{ storeIds: bigint[]; first: object }> {
  const alloc = async () => (await call<pdpb.AllocIDResponse>(rpc, "AllocID", {})).id;
  const storeIds: bigint[] = [];
  for (let i = 0; i < STORES; i++) storeIds.push(await alloc());
  const first = {
    id: await alloc(),
    startKey: new Uint8Array(0),
    endKey: new Uint8Array(0),
    regionEpoch: { confVer: 1n, version: 1n },
    peers: [{ id: await alloc(), storeId: storeIds[0]! }],
  };
  const store = (id: bigint, i: number) => ({ id, address: `127.0.0.1:${20160 + i}` });
  await call(rpc, "Bootstrap", { store: store(storeIds[0]!, 0), region: first });
  for (let i = 1; i < STORES; i++) {
    await call(rpc, "PutStore", { store: store(storeIds[i]!, i) });
  }
  return { storeIds, first };
}

/**
 * The encoded heartbeats of `num` regions splitting the key space, 3 peers each, ids from
 * AskBatchSplit on the first region; grouped by the store of their leader.
 */
async function regionHeartbeats(
  rpc: PdRpc,
  num: number,
  storeIds: bigint[],
  first: object,
): Promise<Buffer[][]> {
  const byStore: Buffer[][] = storeIds.map(() => []);
  const asking = { ...first, peers: storeIds.map((storeId) => ({ id: 0n, storeId })) };
  for (let done = 0; done < num;) {
    const splitCount = Math.min(SPLIT_BATCH, num - done);
    const answer = await call<pdpb.AskBatchSplitResponse>(rpc, "AskBatchSplit", {
      region: asking,
      splitCount,
    });
    for (const split of answer.ids) {
      const index = done++;
      const peers = storeIds.map((storeId, i) => ({ id: split.newPeerIds?.[i] ?? 0n, storeId }));
      const leaderIndex = index % storeIds.length;
      const region = {
        id: split.newRegionId,
        startKey: index === 0 ? new Uint8Array(0) : regionKey(index),
        endKey: index === num - 1 ? new Uint8Array(0) : regionKey(index + 1),
        // Newer than the bootstrap region (version 1), which the first of them replaces.
        regionEpoch: { confVer: 2n, version: 2n },
        peers,
      };
      const bytes = pdpb.RegionHeartbeatRequest.encode({
        header: rpc.header(),
        region,
        leader: peers[leaderIndex],
        term: 6n,
        approximateSize: 96n << 20n,
        approximateKeys: 1_000_000n,
      }).finish();
      byStore[leaderIndex]!.push(Buffer.from(bytes));
    }
  }
  return byStore;
}

/**
 * Sends every heartbeat of `byStore` on its store's stream and answers the seconds until PD
 * has processed them all (its `/metrics` counter); fails if any was not kept.
 */
async function heartbeatBurst(
  rpc: PdRpc,
  statusAddr: string,
  byStore: Buffer[][],
): Promise<number> {
  const total = byStore.reduce((sum, beats) => sum + beats.length, 0);
  const before = await heartbeatsProcessed(statusAddr);
  const streams = byStore.map(() =>
    rpc.stream<pdpb.RegionHeartbeatResponse>("RegionHeartbeat", pdpb.RegionHeartbeatResponse)
  );
  const start = performance.now();
  try {
    // Interleaved, as 3 stores' leaders heartbeat at the same time.
    const longest = Math.max(...byStore.map((beats) => beats.length));
    for (let i = 0; i < longest; i++) {
      for (const [s, beats] of byStore.entries()) {
        const bytes = beats[i];
        if (bytes !== undefined) streams[s]!.send(bytes);
      }
    }
    const deadline = Date.now() + HEARTBEAT_BURST_TIMEOUT_MS;
    for (;;) {
      const now = await heartbeatsProcessed(statusAddr);
      if (now.notKept > before.notKept) {
        throw new Error(`PD did not keep ${now.notKept - before.notKept} heartbeats`);
      }
      if (now.processed - before.processed >= total) break;
      if (Date.now() > deadline) {
        throw new Error(
          `PD processed ${now.processed - before.processed} of ${total} heartbeats ` +
            `in ${HEARTBEAT_BURST_TIMEOUT_MS} ms`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, METRICS_POLL_MS));
    }
    return (performance.now() - start) / 1000;
  } finally {
    for (const stream of streams) stream.end();
  }
}

const MIB = 1024 * 1024;

function formatRate(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString("en-US") : "n/a";
}

/** Runs the PD section and prints its tables. */
export async function benchPd(options: PdBenchOptions): Promise<void> {
  const { num } = options;
  const pd = await startPd();
  const pid = findProcessByArgument(pd.dataDir);
  const rpc = await new PdRpc(pd.clientAddr).connect();
  let failed = true;
  try {
    const { storeIds, first } = await bootstrap(rpc);
    const rssBootstrapped = pid === null ? NaN : vmRssBytes(pid);

    const tso: TsoResult[] = [];
    for (const count of TSO_COUNTS) tso.push(await tsoRaw(rpc, count));
    tso.push(await tsoBatching(pd.clientAddr));
    printTable(
      `PD: TSO (${TSO_RUN_MS / 1000} s each; loopback, one PD process)`,
      ["workload", "timestamps/s", "p50 ms", "p99 ms", "requests"],
      tso.map((r) => [
        r.name,
        formatRate(r.perSecond),
        percentile(r.latenciesMs, 0.5).toFixed(2),
        percentile(r.latenciesMs, 0.99).toFixed(2),
        r.latenciesMs.length.toLocaleString("en-US"),
      ]),
    );

    const prepareStart = performance.now();
    const byStore = await regionHeartbeats(rpc, num, storeIds, first);
    const prepareSeconds = (performance.now() - prepareStart) / 1000;
    const load = await heartbeatBurst(rpc, pd.statusAddr, byStore);
    const loaded = await heartbeatsProcessed(pd.statusAddr);
    if (loaded.regions !== num) {
      throw new Error(`PD knows ${loaded.regions} regions after loading ${num}`);
    }
    const rssLoaded = pid === null ? NaN : vmRssBytes(pid);
    const repeats: number[] = [];
    for (let i = 0; i < HEARTBEAT_REPEATS; i++) {
      repeats.push(await heartbeatBurst(rpc, pd.statusAddr, byStore));
    }
    const repeat = median(repeats);
    printTable(
      `PD: region heartbeats, ${num.toLocaleString("en-US")} regions on ${STORES} streams ` +
        `(ids from ${Math.ceil(num / SPLIT_BATCH)} AskBatchSplit in ${
          prepareSeconds.toFixed(1)
        } s)`,
      ["burst", "heartbeats/s", "seconds"],
      [
        ["new regions (each persisted)", formatRate(num / load), load.toFixed(2)],
        [
          `unchanged (median of ${HEARTBEAT_REPEATS})`,
          formatRate(num / repeat),
          repeat.toFixed(2),
        ],
      ],
    );
    const perRegion = (rssLoaded - rssBootstrapped) / num;
    printTable(
      "PD: resident memory (VmRSS)",
      ["state", "MiB", "per region"],
      [
        ["bootstrapped, 0 regions", (rssBootstrapped / MIB).toFixed(1), ""],
        [
          `${num.toLocaleString("en-US")} regions loaded`,
          (rssLoaded / MIB).toFixed(1),
          Number.isFinite(perRegion) ? `${Math.round(perRegion)} B` : "n/a",
        ],
      ],
    );
    console.log(
      "\nno peer: TiKV's PD (Go) is not packaged for Debian, and etcd (PD's embedded store) " +
        "serves neither TSO nor region heartbeats; figures above are absolute (±2× on shared " +
        "machines).",
    );
    failed = false;
  } finally {
    rpc.close();
    await pd.stop();
    const parent = pd.dataDir.replace(/\/pd$/, "");
    if (failed) console.error(`pd bench: kept PD data and logs in ${parent}`);
    else await Deno.remove(parent, { recursive: true });
  }
}

if (import.meta.main) {
  const { parseArgs } = await import("node:util");
  const { values } = parseArgs({
    args: Deno.args[0] === "--" ? Deno.args.slice(1) : Deno.args,
    options: { num: { type: "string", default: "100000" } },
  });
  await benchPd({ num: Number(values.num) });
}
