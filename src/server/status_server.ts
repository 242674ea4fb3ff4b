/**
 * The status HTTP server (Deno.serve) at `--status-addr`:
 * - `/health`  — 200 "ok" while serving, 503 "shutting down" while draining;
 * - `/metrics` — Prometheus text: request metrics, RocksDB properties, process memory;
 * - `/config`  — the effective configuration as JSON;
 * - `/regions` — the regions this store serves, as JSON (u64 fields as decimal strings).
 */
import type { KvEngine } from "../engine/types.ts";
import { COLUMN_FAMILIES } from "../engine/types.ts";
import type { ServerConfig } from "./config.ts";
import type { RequestMetrics } from "./metrics.ts";
import { type Region, regionToProto } from "./region.ts";
import { toHex } from "../util/bytes.ts";

/** What the status server reports on. */
export interface StatusSources {
  config: ServerConfig;
  metrics: RequestMetrics;
  engine: KvEngine;
  regions: ReadonlyMap<bigint, Region>;
  /** Whether the server is draining for shutdown. */
  stopping(): boolean;
}

const ROCKSDB_PROPERTIES = [
  "rocksdb.estimate-num-keys",
  "rocksdb.total-sst-files-size",
  "rocksdb.cur-size-all-mem-tables",
  "rocksdb.estimate-live-data-size",
];

function engineMetrics(engine: KvEngine): string {
  const lines: string[] = [];
  for (const property of ROCKSDB_PROPERTIES) {
    const name = `basalt_${property.replace(/[.-]/g, "_")}`;
    lines.push(`# TYPE ${name} gauge`);
    for (const cf of COLUMN_FAMILIES) {
      const value = engine.closed ? null : engine.property(cf, property);
      if (value !== null && /^\d+$/.test(value)) lines.push(`${name}{cf="${cf}"} ${value}`);
    }
  }
  return lines.join("\n") + "\n";
}

function processMetrics(): string {
  const memory = Deno.memoryUsage();
  return [
    "# TYPE basalt_process_resident_memory_bytes gauge",
    `basalt_process_resident_memory_bytes ${memory.rss}`,
    "# TYPE basalt_process_heap_used_bytes gauge",
    `basalt_process_heap_used_bytes ${memory.heapUsed}`,
  ].join("\n") + "\n";
}

function json(value: unknown): Response {
  const text = JSON.stringify(value, (_key, v) => {
    if (typeof v === "bigint") return v.toString();
    if (v instanceof Uint8Array) return toHex(v);
    return v;
  }, 2);
  return new Response(text + "\n", { headers: { "content-type": "application/json" } });
}

/** Answers one status request. */
export function handleStatusRequest(sources: StatusSources, request: Request): Response {
  const path = new URL(request.url).pathname;
  switch (path) {
    case "/health":
      return sources.stopping()
        ? new Response("shutting down\n", { status: 503 })
        : new Response("ok\n");
    case "/metrics":
      return new Response(
        sources.metrics.render() + engineMetrics(sources.engine) + processMetrics(),
        { headers: { "content-type": "text/plain; version=0.0.4" } },
      );
    case "/config":
      return json(sources.config);
    case "/regions":
      return json({ regions: [...sources.regions.values()].map(regionToProto) });
    default:
      return new Response(`not found: ${path}\n`, { status: 404 });
  }
}

/** Starts the status server; resolves with the bound port and a shutdown function. */
export function startStatusServer(
  options: { hostname: string; port: number },
  sources: StatusSources,
): Promise<{ port: number; shutdown(): Promise<void> }> {
  return new Promise((resolve) => {
    const server = Deno.serve({
      hostname: options.hostname,
      port: options.port,
      onListen: (addr) =>
        resolve({ port: (addr as Deno.NetAddr).port, shutdown: () => server.shutdown() }),
    }, (request) => handleStatusRequest(sources, request));
  });
}
