/**
 * The placement driver (`deno task bench -- --only pd [--num 100000]`, issue #11 item 10),
 * measured twice with the same workloads: as one PD process (`src/pd/server/main.ts`, started as
 * the e2e tests start it: loopback, port 0, a temporary data directory), then as three members
 * replicating PD's state through their Raft log (`bench/pd_group.ts`, driven at the leader).
 * Each is bootstrapped with 3 stores and measured for:
 *
 * 1. TSO: timestamps/s through one `Tso` stream, one request in flight, `count` = 1, 16, 256
 *    (p50/p99/max of the round trip), and through `src/client/tso.ts`'s batching client with 64
 *    concurrent callers (p50/p99/max of `getTimestamp()`). A request that moves the TSO window
 *    waits until the window's save is durable: an fsync alone, a Raft commit with three
 *    members; the max and the Raft entries of the run show it.
 * 2. One write's durable path: PutStore calls one at a time (each writes the store's record),
 *    writes/s and latency — the cost every write of PD pays, alone or replicated.
 * 3. Region heartbeats: `num` regions (3 peers each, leaders spread over the 3 stores), their
 *    ids allocated by AskBatchSplit as a splitting store gets them. A load generator sends one
 *    heartbeat per region on 3 streams (one per store, as 3 stores' leaders would). PD answers
 *    a heartbeat only when it has something to say, so what it processed is read from its
 *    `/metrics` counter `basalt_pd_region_heartbeats_total` (counted when the heartbeat is
 *    answered: a single member syncs its writes first; three members answer before their
 *    region writes commit, `src/pd/pd_member.ts` design 6): the figure is the burst's size ÷
 *    the time from the first send until the counter reached it and, with three members, the
 *    leader had also committed every region write the burst made (nothing buffered, its
 *    applied index at its last index) — so both figures end with every write durable. The
 *    first burst brings new regions (each one written to PD's storage, with three members
 *    through the Raft log, in batches); the repeats are unchanged (nothing written). Raft
 *    entries (the leader's `basalt_pd_member_applied_index`) and each process's CPU per
 *    heartbeat are printed beside. A burst fails when PD ends a stream or the leader's term
 *    moves (the leader was deposed).
 * 4. Resident memory (VmRSS) after bootstrap and with the `num` regions loaded.
 * 5. In-process scheduling rounds at 10k regions (`bench/pd_round_bench.ts`).
 *
 * The three-member figures are printed beside the single member's with their ratio
 * (3 members ÷ 1). There is no outside peer: TiKV's PD (Go) is not packaged for Debian, and
 * etcd (`etcd-server`, which PD embeds) serves neither timestamps nor region heartbeats, so its
 * figures would not compare like for like.
 *
 * Everything started is stopped, also on failure; a run that fails keeps its data directories
 * (and says where) for their logs, a run that passes removes them.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { pdpb } from "../proto/mod.ts";
import { TsoClient } from "../src/client/tso.ts";
import { PdRpc, startPd } from "../tests/e2e/pd_lib.ts";
import { PD_GROUP_MEMBERS, startPdGroup } from "./pd_group.ts";
import { benchPdRounds } from "./pd_round_bench.ts";
import { median, printTable } from "./report.ts";
import { cpuSecondsOf, findProcessByArgument, vmRssBytes } from "./server_process.ts";

/** How long each TSO workload runs. */
const TSO_RUN_MS = 3_000;
/** How long the one-write-at-a-time PutStore workload runs. */
const WRITE_RUN_MS = 2_000;
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
/** Longest time PD may process none of a burst's heartbeats before the burst fails. */
const HEARTBEAT_STALL_TIMEOUT_MS = 60_000;
/** How often a long burst's progress is printed (on stderr). */
const HEARTBEAT_PROGRESS_MS = 30_000;
/** How often `/metrics` is read while a burst is processed. */
const METRICS_POLL_MS = 50;
/** Deadline of one `/metrics` read. */
const METRICS_TIMEOUT_MS = 10_000;
/** The scheduling-round cells printed with the section (about 5 s in all). */
const ROUND_SHAPE = { regions: 10_000, stores: [3, 5], limits: [4, 64], rounds: 3 } as const;

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

/** A PD the figures are taken from: a single member, or the leader of a group. */
interface PdTarget {
  /** "1 PD" or "3 PD", for progress lines. */
  label: string;
  rpc: PdRpc;
  clientAddr: string;
  statusAddr: string;
  /** The serving process's pid first, then its followers'; null where not found. */
  pids: (number | null)[];
}

/** A timed workload of requests, one latency per request. */
export interface TimedResult {
  name: string;
  /** Timestamps (or writes) per second. */
  perSecond: number;
  latenciesMs: number[];
  /** Entries the leader's Raft log applied during the run (NaN for a single member). */
  raftEntries: number;
}

/** A heartbeat burst: how long PD took, what it wrote, what it cost each process. */
export interface BurstResult {
  seconds: number;
  /** Entries the leader's Raft log applied during the burst (NaN for a single member). */
  raftEntries: number;
  /** CPU seconds each process of `PdTarget.pids` used during the burst. */
  cpuSeconds: number[];
}

/** Everything measured on one PD (single or replicated); what a failure cut short is absent. */
export interface PdFigures {
  tso: TimedResult[];
  write?: TimedResult;
  prepareSeconds?: number;
  fresh?: BurstResult;
  unchanged?: BurstResult;
  rssBootstrappedBytes?: number;
  /** VmRSS of each process of `PdTarget.pids` with the regions loaded. */
  rssLoadedBytes?: number[];
  /** Why the measurement stopped early. */
  failure?: string;
}

/** Runs `body` and counts the Raft entries the leader of `target` applied meanwhile. */
async function countingEntries<T>(
  target: PdTarget,
  body: () => Promise<T>,
): Promise<{ value: T; raftEntries: number }> {
  const before = await appliedIndex(target.statusAddr);
  const value = await body();
  return { value, raftEntries: (await appliedIndex(target.statusAddr)) - before };
}

/** One request of `count` in flight on one raw Tso stream, for `TSO_RUN_MS`. */
async function tsoRaw(rpc: PdRpc, count: number): Promise<TimedResult> {
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
    raftEntries: NaN,
  };
}

/** `TSO_CALLERS` callers of the batching client, each asking again when answered. */
async function tsoBatching(clientAddr: string): Promise<TimedResult> {
  const tso = await TsoClient.connect([clientAddr]);
  const latenciesMs: number[] = [];
  let start = performance.now();
  try {
    await tso.getTimestamp(); // the stream is open before timing
    start = performance.now();
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
    raftEntries: NaN,
  };
}

/** PutStore of one store, again and again, one in flight, for `WRITE_RUN_MS`. */
async function writesOneAtATime(
  rpc: PdRpc,
  store: { id: bigint; address: string },
): Promise<TimedResult> {
  const latenciesMs: number[] = [];
  const start = performance.now();
  for (let i = 0; performance.now() - start < WRITE_RUN_MS; i++) {
    const sent = performance.now();
    // A changed version each time, so every call has something to write.
    await call(rpc, "PutStore", { store: { ...store, version: `bench-${i}` } });
    latenciesMs.push(performance.now() - sent);
  }
  const seconds = (performance.now() - start) / 1000;
  return {
    name: "PutStore, 1 in flight",
    perSecond: latenciesMs.length / seconds,
    latenciesMs,
    raftEntries: NaN,
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

/** The value of the metric line starting with `name` (labels included), or `absent`. */
export function metricValue(text: string, name: string, absent = 0): number {
  for (const line of text.split("\n")) {
    if (line.startsWith(`${name} `)) return Number(line.slice(name.length + 1));
  }
  return absent;
}

/** The Raft log index a replicated member has applied; NaN for a single member (no log). */
async function appliedIndex(statusAddr: string): Promise<number> {
  return metricValue(await metricsOf(statusAddr), "basalt_pd_member_applied_index", NaN);
}

/**
 * Resolves once a replicated leader has committed every write it made (nothing buffered, its
 * applied index at its last index); at once for a single member. Fails after
 * `HEARTBEAT_STALL_TIMEOUT_MS`.
 */
async function untilCommitted(statusAddr: string): Promise<void> {
  const deadline = Date.now() + HEARTBEAT_STALL_TIMEOUT_MS;
  for (;;) {
    const text = await metricsOf(statusAddr);
    const applied = metricValue(text, "basalt_pd_member_applied_index", NaN);
    if (Number.isNaN(applied)) return; // a single member: its writes were synced already
    const buffered = metricValue(text, "basalt_pd_member_buffered_writes");
    const last = metricValue(text, "basalt_pd_member_last_index");
    if (buffered === 0 && applied >= last) return;
    if (Date.now() > deadline) {
      throw new Error(
        `PD's leader did not commit its writes within ${HEARTBEAT_STALL_TIMEOUT_MS} ms ` +
          `(${buffered} buffered, applied ${applied} of ${last})`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, METRICS_POLL_MS));
  }
}

/** The Raft term of a replicated member (NaN for a single member). */
async function termOf(statusAddr: string): Promise<number> {
  return metricValue(await metricsOf(statusAddr), "basalt_pd_member_term", NaN);
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

/** The simulated store `id`, the `index`-th. */
function storeOf(id: bigint, index: number): { id: bigint; address: string } {
  return { id, address: `127.0.0.1:${20160 + index}` };
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
  await call(rpc, "Bootstrap", { store: storeOf(storeIds[0]!, 0), region: first });
  for (let i = 1; i < STORES; i++) {
    await call(rpc, "PutStore", { store: storeOf(storeIds[i]!, i) });
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
 * Resolves once PD has processed `total` heartbeats more than `before`; fails on one not kept,
 * and when the count has not moved for `HEARTBEAT_STALL_TIMEOUT_MS`. A slow burst (new regions
 * through a Raft log, at --num 100000) may take many minutes, so the deadline is on progress,
 * and the progress is printed every `HEARTBEAT_PROGRESS_MS`.
 */
async function untilProcessed(
  { statusAddr, label }: PdTarget,
  before: { processed: number; notKept: number },
  total: number,
): Promise<void> {
  let lastCount = 0;
  let movedAtMs = Date.now();
  let printedAtMs = Date.now();
  for (;;) {
    const now = await heartbeatsProcessed(statusAddr);
    if (now.notKept > before.notKept) {
      throw new Error(`PD did not keep ${now.notKept - before.notKept} heartbeats`);
    }
    const count = now.processed - before.processed;
    if (count >= total) return;
    if (count > lastCount) [lastCount, movedAtMs] = [count, Date.now()];
    if (Date.now() - movedAtMs > HEARTBEAT_STALL_TIMEOUT_MS) {
      throw new Error(
        `PD processed ${count} of ${total} heartbeats, none in the last ` +
          `${HEARTBEAT_STALL_TIMEOUT_MS} ms`,
      );
    }
    if (Date.now() - printedAtMs > HEARTBEAT_PROGRESS_MS) {
      printedAtMs = Date.now();
      console.error(
        `pd bench: ${label}: ${count.toLocaleString("en-US")} of ${total} heartbeats processed`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, METRICS_POLL_MS));
  }
}

/** `error` with how far the burst got, so a failed burst still tells its rate so far. */
async function withProgress(
  error: unknown,
  burst: { target: PdTarget; before: { processed: number }; total: number; start: number },
): Promise<Error> {
  const seconds = (performance.now() - burst.start) / 1000;
  const message = error instanceof Error ? error.message : String(error);
  try {
    const done = (await heartbeatsProcessed(burst.target.statusAddr)).processed -
      burst.before.processed;
    return new Error(
      `${message} (after ${done} of ${burst.total} heartbeats in ${seconds.toFixed(1)} s: ` +
        `${formatRate(done / seconds)}/s)`,
    );
  } catch {
    return new Error(message); // PD's /metrics is gone too
  }
}

/**
 * Sends every heartbeat of `byStore` on its store's stream and measures the time until PD has
 * processed them all (its `/metrics` counter), the Raft entries and each process's CPU.
 */
async function heartbeatBurst(target: PdTarget, byStore: Buffer[][]): Promise<BurstResult> {
  const { rpc, statusAddr } = target;
  const total = byStore.reduce((sum, beats) => sum + beats.length, 0);
  const before = await heartbeatsProcessed(statusAddr);
  const appliedBefore = await appliedIndex(statusAddr);
  const termBefore = await termOf(statusAddr);
  const cpuBefore = target.pids.map((pid) => pid === null ? NaN : cpuSecondsOf(pid));
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
    // A stream PD ends (a leader that lost its leadership ends them with UNAVAILABLE) fails
    // the burst at once: what it carried will never be counted.
    const ended = streams.map((stream, s) =>
      stream.ended.then((status) => {
        throw new Error(
          `PD ended store ${s + 1}'s heartbeat stream mid-burst: ${status.code} ${status.details}`,
        );
      })
    );
    try {
      await Promise.race([untilProcessed(target, before, total), ...ended]);
      await untilCommitted(statusAddr);
      const termAfter = await termOf(statusAddr);
      if (termAfter !== termBefore && !Number.isNaN(termBefore)) {
        throw new Error(`PD's leader was deposed mid-burst: term ${termBefore} → ${termAfter}`);
      }
    } catch (error) {
      throw await withProgress(error, { target, before, total, start });
    }
    const seconds = (performance.now() - start) / 1000;
    return {
      seconds,
      raftEntries: (await appliedIndex(statusAddr)) - appliedBefore,
      cpuSeconds: target.pids.map((pid, i) =>
        pid === null ? NaN : cpuSecondsOf(pid) - cpuBefore[i]!
      ),
    };
  } finally {
    for (const stream of streams) stream.end();
  }
}

/** The TSO workloads and the one-at-a-time writes, each with the Raft entries it made. */
async function measureTso(
  target: PdTarget,
  store: { id: bigint; address: string },
  figures: PdFigures,
): Promise<void> {
  const runs = [
    ...TSO_COUNTS.map((count) => () => tsoRaw(target.rpc, count)),
    () => tsoBatching(target.clientAddr),
  ];
  for (const run of runs) {
    const { value, raftEntries } = await countingEntries(target, run);
    figures.tso.push({ ...value, raftEntries });
  }
  const written = await countingEntries(target, () => writesOneAtATime(target.rpc, store));
  figures.write = { ...written.value, raftEntries: written.raftEntries };
}

/** Every workload of the module header against `target`, filling `figures` as it goes. */
async function measure(target: PdTarget, num: number, figures: PdFigures): Promise<void> {
  const leaderPid = target.pids[0] ?? null;
  const { storeIds, first } = await bootstrap(target.rpc);
  figures.rssBootstrappedBytes = leaderPid === null ? NaN : vmRssBytes(leaderPid);
  await measureTso(target, storeOf(storeIds[STORES - 1]!, STORES - 1), figures);

  const prepareStart = performance.now();
  const byStore = await regionHeartbeats(target.rpc, num, storeIds, first);
  figures.prepareSeconds = (performance.now() - prepareStart) / 1000;
  figures.fresh = await heartbeatBurst(target, byStore);
  const loaded = await heartbeatsProcessed(target.statusAddr);
  if (loaded.regions !== num) {
    throw new Error(`PD knows ${loaded.regions} regions after loading ${num}`);
  }
  figures.rssLoadedBytes = target.pids.map((pid) => pid === null ? NaN : vmRssBytes(pid));
  const repeats: BurstResult[] = [];
  for (let i = 0; i < HEARTBEAT_REPEATS; i++) repeats.push(await heartbeatBurst(target, byStore));
  const middle = median(repeats.map((burst) => burst.seconds));
  figures.unchanged = repeats.find((burst) => burst.seconds === middle)!;
}

/**
 * Runs `body` to fill figures; a failure is recorded in them (and printed) rather than thrown,
 * so the other PD's figures still print; the section then sets a failing exit code.
 */
async function measured(
  what: string,
  body: (figures: PdFigures) => Promise<void>,
): Promise<PdFigures> {
  const figures: PdFigures = { tso: [] };
  try {
    await body(figures);
  } catch (error) {
    figures.failure = error instanceof Error ? error.message : String(error);
    console.error(`pd bench: ${what} failed: ${figures.failure}`);
  }
  return figures;
}

/** Measures one PD process; stops it, removes its directory unless the run failed. */
async function measureSingle(num: number, figures: PdFigures): Promise<void> {
  const pd = await startPd();
  const parent = pd.dataDir.replace(/\/pd$/, "");
  let rpc: PdRpc | null = null;
  let failed = true;
  try {
    rpc = await new PdRpc(pd.clientAddr).connect();
    const pid = findProcessByArgument(pd.dataDir);
    await measure({ ...pd, label: "1 PD", rpc, pids: [pid] }, num, figures);
    failed = false;
  } finally {
    rpc?.close();
    await pd.stop();
    if (failed) console.error(`pd bench: kept PD data and logs in ${parent}`);
    else await Deno.remove(parent, { recursive: true });
  }
}

/** Measures a PD of `PD_GROUP_MEMBERS` members at its leader; stops and removes them. */
async function measureGroup(num: number, figures: PdFigures): Promise<void> {
  const group = await startPdGroup();
  let rpc: PdRpc | null = null;
  let failed = true;
  try {
    const { leader, followers } = group;
    rpc = await new PdRpc(leader.clientAddr).connect();
    const pids = [leader, ...followers].map((pd) => findProcessByArgument(pd.dataDir));
    await measure({ ...leader, label: `${PD_GROUP_MEMBERS} PD`, rpc, pids }, num, figures);
    failed = false;
  } finally {
    rpc?.close();
    await group.stop();
    if (failed) console.error(`pd bench: kept the PD group's data and logs in ${group.dir}`);
    else await Deno.remove(group.dir, { recursive: true });
  }
}

const MIB = 1024 * 1024;

function formatRate(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString("en-US") : "n/a";
}

function formatMs(value: number): string {
  return Number.isFinite(value) ? value.toFixed(value < 10 ? 2 : 1) : "n/a";
}

/** "single / group" of two figures. */
function pair(single: number, group: number, format: (value: number) => string): string {
  return `${format(single)} / ${format(group)}`;
}

/** group ÷ single, as "0.42×". */
export function ratio(single: number, group: number): string {
  const value = group / single;
  return Number.isFinite(value) ? `${value.toFixed(2)}×` : "n/a";
}

/** A workload a failure cut short: every figure of it prints as n/a. */
function missingTimed(name: string): TimedResult {
  return { name, perSecond: NaN, latenciesMs: [], raftEntries: NaN };
}

const MISSING_BURST: BurstResult = { seconds: NaN, raftEntries: NaN, cpuSeconds: [] };

/**
 * The rows of the TSO and write table: single and group side by side, a workload either side
 * lacks (it failed first) in n/a.
 */
export function timedRows(
  single: readonly (TimedResult | undefined)[],
  group: readonly (TimedResult | undefined)[],
): string[][] {
  const rows = Math.max(single.length, group.length);
  return Array.from({ length: rows }, (_, i) => {
    const name = single[i]?.name ?? group[i]?.name ?? "?";
    const one = single[i] ?? missingTimed(name);
    const three = group[i] ?? missingTimed(name);
    const at = (p: number) => (r: TimedResult) => percentile(r.latenciesMs, p);
    const both = (of: (r: TimedResult) => number) => pair(of(one), of(three), formatMs);
    return [
      one.name,
      formatRate(one.perSecond),
      formatRate(three.perSecond),
      ratio(one.perSecond, three.perSecond),
      both(at(0.5)),
      both(at(0.99)),
      both(at(1)),
      Number.isFinite(three.raftEntries) ? String(three.raftEntries) : "n/a",
    ];
  });
}

/** CPU µs per heartbeat of each process, "leader | followers' mean". */
function cpuPerHeartbeat(burst: BurstResult, num: number): { leader: string; followers: string } {
  const us = (seconds: number) => formatRate((seconds * 1e6) / num);
  const [leader = NaN, ...followers] = burst.cpuSeconds;
  const followersMean = followers.reduce((sum, s) => sum + s, 0) / followers.length;
  return { leader: us(leader), followers: us(followersMean) };
}

/** The rows of the heartbeat table. */
export function burstRows(single: PdFigures, group: PdFigures, num: number): string[][] {
  const rows: [string, BurstResult | undefined, BurstResult | undefined][] = [
    ["new regions (each persisted)", single.fresh, group.fresh],
    [`unchanged (median of ${HEARTBEAT_REPEATS})`, single.unchanged, group.unchanged],
  ];
  return rows.map(([name, oneOrNone, threeOrNone]) => {
    const [one, three] = [oneOrNone ?? MISSING_BURST, threeOrNone ?? MISSING_BURST];
    const perEntry = three.raftEntries > 0 ? formatRate(num / three.raftEntries) : "—";
    const threeCpu = cpuPerHeartbeat(three, num);
    return [
      name,
      formatRate(num / one.seconds),
      formatRate(num / three.seconds),
      ratio(num / one.seconds, num / three.seconds),
      pair(one.seconds, three.seconds, formatMs),
      Number.isFinite(three.raftEntries) ? String(three.raftEntries) : "n/a",
      perEntry,
      `${cpuPerHeartbeat(one, num).leader} / ${threeCpu.leader} / ${threeCpu.followers}`,
    ];
  });
}

/** Prints the section's comparison tables. */
function printFigures(single: PdFigures, group: PdFigures, num: number): void {
  const members = `1 PD / ${PD_GROUP_MEMBERS} PD`;
  const timedHeader = (unit: string) => [
    "workload",
    `1 PD ${unit}`,
    `${PD_GROUP_MEMBERS} PD ${unit}`,
    `${PD_GROUP_MEMBERS}÷1`,
    `p50 ms ${members}`,
    `p99 ms ${members}`,
    `max ms ${members}`,
    `Raft entries ${PD_GROUP_MEMBERS} PD`,
  ];
  printTable(
    `PD: TSO (${TSO_RUN_MS / 1000} s each; loopback; ${PD_GROUP_MEMBERS} PD = at the leader)`,
    timedHeader("timestamps/s"),
    timedRows(single.tso, group.tso),
  );
  printTable(
    `PD: one write's durable path (${WRITE_RUN_MS / 1000} s; 1 PD: RocksDB sync, ` +
      `${PD_GROUP_MEMBERS} PD: Raft commit)`,
    timedHeader("writes/s"),
    timedRows([single.write], [group.write]),
  );
  printTable(
    `PD: region heartbeats, ${num.toLocaleString("en-US")} regions on ${STORES} streams ` +
      `(ids from ${Math.ceil(num / SPLIT_BATCH)} AskBatchSplit in ` +
      `${pair(single.prepareSeconds ?? NaN, group.prepareSeconds ?? NaN, formatMs)} s)`,
    [
      "burst",
      "1 PD heartbeats/s",
      `${PD_GROUP_MEMBERS} PD heartbeats/s`,
      `${PD_GROUP_MEMBERS}÷1`,
      `seconds ${members}`,
      "Raft entries",
      "heartbeats/entry",
      "CPU µs/heartbeat 1 PD / leader / follower",
    ],
    burstRows(single, group, num),
  );
  const mib = (bytes: number) => Number.isFinite(bytes) ? (bytes / MIB).toFixed(1) : "n/a";
  const [groupLeader = NaN, ...groupFollowers] = group.rssLoadedBytes ?? [];
  printTable(
    "PD: resident memory (VmRSS, MiB)",
    ["state", "1 PD", `${PD_GROUP_MEMBERS} PD leader`, `${PD_GROUP_MEMBERS} PD followers`],
    [
      [
        "bootstrapped, 0 regions",
        mib(single.rssBootstrappedBytes ?? NaN),
        mib(group.rssBootstrappedBytes ?? NaN),
        "",
      ],
      [
        `${num.toLocaleString("en-US")} regions loaded`,
        mib(single.rssLoadedBytes?.[0] ?? NaN),
        mib(groupLeader),
        groupFollowers.map(mib).join(" / "),
      ],
    ],
  );
}

/** Runs the PD section and prints its tables. */
export async function benchPd(options: PdBenchOptions): Promise<void> {
  const { num } = options;
  const single = await measured("1 PD", (figures) => measureSingle(num, figures));
  const group = await measured(
    `${PD_GROUP_MEMBERS} PD`,
    (figures) => measureGroup(num, figures),
  );
  printFigures(single, group, num);
  for (const [name, figures] of [["1 PD", single], [`${PD_GROUP_MEMBERS} PD`, group]] as const) {
    if (figures.failure === undefined) continue;
    console.log(`\n${name} FAILED (its missing figures are n/a): ${figures.failure}`);
    Deno.exitCode = 1;
  }
  benchPdRounds(ROUND_SHAPE);
  console.log(
    "\nno outside peer: TiKV's PD (Go) is not packaged for Debian, and etcd (PD's embedded " +
      "store) serves neither TSO nor region heartbeats; the ratios compare Basalt's PD with " +
      "itself (±2× on shared machines).",
  );
}

if (import.meta.main) {
  const { parseArgs } = await import("node:util");
  const { values } = parseArgs({
    args: Deno.args[0] === "--" ? Deno.args.slice(1) : Deno.args,
    options: { num: { type: "string", default: "100000" } },
  });
  await benchPd({ num: Number(values.num) });
}
