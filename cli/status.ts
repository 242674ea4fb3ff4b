/**
 * `basalt-ctl --status ADDR`: a readable summary of a store's status server — health, requests
 * per RPC by outcome with p50/p99 latency estimates from its histograms, requests in flight,
 * process memory, and RocksDB properties per column family — from `http://ADDR/health` and
 * `http://ADDR/metrics` (Prometheus text).
 */
import type { TlsIdentity } from "../src/security/tls.ts";
import { CtlError } from "./ctl_error.ts";
import { type Bucket, histogramQuantile, parsePrometheusText, type Sample } from "./prometheus.ts";

/** One RPC's counts and latency. */
export interface RpcSummary {
  rpc: string;
  total: number;
  byOutcome: Record<string, number>;
  /** Latency estimates in ms (null without observations). */
  p50Ms: number | null;
  p99Ms: number | null;
  meanMs: number | null;
}

/** What `--status` reports. */
export interface StatusSummary {
  address: string;
  /** `/health`'s answer: "ok", "shutting down", or the HTTP status. */
  health: string;
  rpcs: RpcSummary[];
  inFlight: number | null;
  residentMemoryBytes: number | null;
  heapUsedBytes: number | null;
  /** RocksDB property (e.g. "estimate_num_keys") → column family → value. */
  rocksdb: Record<string, Record<string, number>>;
  /** The raftstore's figures (`basalt_raftstore_*` without the prefix), empty from older stores. */
  raftstore: Record<string, number>;
}

const ROCKSDB_PREFIX = "basalt_rocksdb_";
const RAFTSTORE_PREFIX = "basalt_raftstore_";

function single(samples: readonly Sample[], name: string): number | null {
  return samples.find((sample) => sample.name === name)?.value ?? null;
}

function rpcSummaries(samples: readonly Sample[]): RpcSummary[] {
  const byRpc = new Map<string, RpcSummary & { buckets: Bucket[]; sum: number; count: number }>();
  const entry = (rpc: string) => {
    let summary = byRpc.get(rpc);
    if (summary === undefined) {
      summary = {
        rpc,
        total: 0,
        byOutcome: {},
        p50Ms: null,
        p99Ms: null,
        meanMs: null,
        buckets: [],
        sum: 0,
        count: 0,
      };
      byRpc.set(rpc, summary);
    }
    return summary;
  };
  for (const sample of samples) {
    const rpc = sample.labels.rpc;
    if (rpc === undefined) continue;
    if (sample.name === "basalt_grpc_requests_total") {
      const summary = entry(rpc);
      const outcome = sample.labels.outcome ?? "all";
      summary.byOutcome[outcome] = (summary.byOutcome[outcome] ?? 0) + sample.value;
      summary.total += sample.value;
    } else if (sample.name === "basalt_grpc_request_duration_seconds_bucket") {
      const le = sample.labels.le === "+Inf" ? Infinity : Number(sample.labels.le);
      entry(rpc).buckets.push({ le, count: sample.value });
    } else if (sample.name === "basalt_grpc_request_duration_seconds_sum") {
      entry(rpc).sum = sample.value;
    } else if (sample.name === "basalt_grpc_request_duration_seconds_count") {
      entry(rpc).count = sample.value;
    }
  }
  const toMs = (seconds: number | null) => seconds === null ? null : seconds * 1000;
  return [...byRpc.values()].map(({ buckets, sum, count, ...summary }) => ({
    ...summary,
    p50Ms: toMs(histogramQuantile(0.5, buckets)),
    p99Ms: toMs(histogramQuantile(0.99, buckets)),
    meanMs: count > 0 ? (sum / count) * 1000 : null,
  })).sort((a, b) => b.total - a.total || a.rpc.localeCompare(b.rpc));
}

/** The summary of parsed metrics. */
export function summarize(
  samples: readonly Sample[],
  options: { address: string; health: string },
): StatusSummary {
  const rocksdb: Record<string, Record<string, number>> = {};
  const raftstore: Record<string, number> = {};
  for (const sample of samples) {
    if (sample.name.startsWith(ROCKSDB_PREFIX)) {
      const property = sample.name.slice(ROCKSDB_PREFIX.length);
      (rocksdb[property] ??= {})[sample.labels.cf ?? "-"] = sample.value;
    } else if (sample.name.startsWith(RAFTSTORE_PREFIX)) {
      raftstore[sample.name.slice(RAFTSTORE_PREFIX.length)] = sample.value;
    }
  }
  return {
    address: options.address,
    health: options.health,
    rpcs: rpcSummaries(samples),
    inFlight: single(samples, "basalt_grpc_requests_in_flight"),
    residentMemoryBytes: single(samples, "basalt_process_resident_memory_bytes"),
    heapUsedBytes: single(samples, "basalt_process_heap_used_bytes"),
    rocksdb,
    raftstore,
  };
}

async function fetchText(
  url: string,
  options: { timeoutMs: number; client?: Deno.HttpClient },
): Promise<Response> {
  const { timeoutMs } = options;
  try {
    return await fetch(url, { signal: AbortSignal.timeout(timeoutMs), client: options.client });
  } catch (error) {
    // Deno's fetch says only "fetch failed"; the reason is in the cause.
    const cause = error instanceof Error && error.cause !== undefined ? `: ${error.cause}` : "";
    const reason = (error instanceof Error ? error.message : String(error)) + cause;
    const refused = /refused/i.test(reason) ? "connection refused" : reason.split("\n")[0];
    if (error instanceof DOMException && error.name === "TimeoutError") {
      throw new CtlError(`no answer from the status server at ${url} within ${timeoutMs} ms`);
    }
    throw new CtlError(`cannot reach the status server at ${url}: ${refused}`);
  }
}

/**
 * Fetches and summarizes the status server at `address` (host:port): over HTTPS with the
 * client certificate of `tls` when given (the server's must be signed by its CA), else HTTP.
 */
export async function fetchStatus(
  address: string,
  timeoutMs: number,
  tls: TlsIdentity | null = null,
): Promise<StatusSummary> {
  const scheme = tls === null ? "http" : "https";
  const base = /^https?:\/\//.test(address) ? address.replace(/\/$/, "") : `${scheme}://${address}`;
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  const client = tls === null ? undefined : Deno.createHttpClient({
    caCerts: [decode(tls.ca)],
    cert: decode(tls.cert),
    key: decode(tls.key),
  });
  try {
    const metrics = await fetchText(`${base}/metrics`, { timeoutMs, client });
    if (!metrics.ok) {
      const reason = (await metrics.text()).split("\n")[0];
      throw new CtlError(`${base}/metrics answered HTTP ${metrics.status}: ${reason}`);
    }
    const samples = parsePrometheusText(await metrics.text());
    const healthResponse = await fetchText(`${base}/health`, { timeoutMs, client });
    const healthText = (await healthResponse.text()).trim();
    const health = healthText !== "" ? healthText : `HTTP ${healthResponse.status}`;
    return summarize(samples, { address, health });
  } finally {
    client?.close();
  }
}

function mib(bytes: number | null): string {
  return bytes === null ? "-" : `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

function ms(value: number | null): string {
  if (value === null) return "-";
  return value < 10 ? value.toFixed(2) : value.toFixed(1);
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) =>
    row.map((cell, column) =>
      column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!)
    )
      .join("  ").trimEnd()
  ).join("\n");
}

/** The human-readable form of a summary. */
export function renderStatus(summary: StatusSummary): string {
  const lines = [
    `store status ${summary.address}: ${summary.health}`,
    `in flight: ${summary.inFlight ?? "-"}   resident memory: ${mib(summary.residentMemoryBytes)}` +
    `   heap used: ${mib(summary.heapUsedBytes)}`,
    "",
  ];
  if (summary.rpcs.length === 0) lines.push("no requests served yet");
  else {
    const rows = [["rpc", "requests", "ok", "region err", "error", "p50 ms", "p99 ms", "mean ms"]];
    for (const rpc of summary.rpcs) {
      const other = rpc.total - (rpc.byOutcome.ok ?? 0) - (rpc.byOutcome.region_error ?? 0);
      rows.push([
        rpc.rpc,
        String(rpc.total),
        String(rpc.byOutcome.ok ?? 0),
        String(rpc.byOutcome.region_error ?? 0),
        String(other),
        ms(rpc.p50Ms),
        ms(rpc.p99Ms),
        ms(rpc.meanMs),
      ]);
    }
    lines.push(table(rows));
  }
  const r = summary.raftstore;
  if (Object.keys(r).length > 0) {
    const figure = (name: string) => String(r[name] ?? "-");
    lines.push(
      "",
      `raftstore: peers awake ${figure("peers_awake")}, asleep ${figure("peers_asleep")}; ` +
        `rounds ${figure("rounds_total")}, synced writes ${figure("synced_writes_total")}; ` +
        `messages dropped ${figure("messages_dropped_total")}, malformed ` +
        `${figure("messages_dropped_malformed_total")}`,
    );
  }
  const properties = Object.keys(summary.rocksdb);
  if (properties.length > 0) {
    const families = [...new Set(properties.flatMap((p) => Object.keys(summary.rocksdb[p]!)))];
    const rows = [["rocksdb", ...families]];
    for (const property of properties) {
      rows.push([
        property.replaceAll("_", "-"),
        ...families.map((cf) => String(summary.rocksdb[property]![cf] ?? "-")),
      ]);
    }
    lines.push("", table(rows));
  }
  return lines.join("\n");
}
