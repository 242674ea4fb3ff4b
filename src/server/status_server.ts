/**
 * The status HTTP server (Deno.serve) at `--status-addr`:
 * - `/health`  — 200 "ok" while serving, 503 "shutting down" while draining, 503 "cannot write:
 *   <why>" while the store refuses writes (a full disk): a load balancer takes the store out,
 *   and the body tells the operator what to fix;
 * - `/metrics` — Prometheus text: request metrics, RocksDB properties, process memory;
 * - `/config`  — the effective configuration as JSON;
 * - `/regions` — the regions this store serves, each with the worker serving it (`worker`, its
 *   group in the routing table), as JSON (u64 fields as decimal strings).
 * Any method other than GET gets 405 with `Allow: GET`.
 *
 * Plain HTTP is served by `http1.ts` over our own accept loop (`listener.ts`): at most
 * STATUS_MAX_CONNECTIONS connections, an idle timeout, a header-read timeout
 * (STATUS_HEADER_TIMEOUT_MS, or the idle timeout when shorter), and accept errors survived.
 */
import {
  STATUS_HEADER_TIMEOUT_MS,
  STATUS_MAX_CONNECTIONS,
  STATUS_MAX_HEADER_BYTES,
} from "../constants.ts";
import type { KvEngine } from "../engine/types.ts";
import { serveHttps } from "../security/https_server.ts";
import type { TlsIdentity } from "../security/tls.ts";
import { COLUMN_FAMILIES } from "../engine/types.ts";
import type { ServerConfig } from "./config.ts";
import { serveHttp1 } from "./http1.ts";
import { ConnectionListener } from "./listener.ts";
import type { Logger } from "./log.ts";
import type { RequestMetrics } from "./metrics.ts";
import { type Region, regionToProto } from "./region.ts";
import { toHex } from "../util/bytes.ts";

/** What the status server reports on. */
export interface StatusSources {
  config: ServerConfig;
  metrics: RequestMetrics;
  engine: KvEngine;
  /** The regions served, each with its worker (`RegionWorkers.regions`). */
  regions(): readonly { region: Region; worker: number }[];
  /** Whether the server is draining for shutdown. */
  stopping(): boolean;
  /** Why the store refuses writes now, or null while it accepts them (`disk_guard.ts`). */
  cannotWrite?: () => string | null;
  /** Gauges and counters of the network edge (connections, flow control), for /metrics. */
  network?: () => Record<string, number>;
  /** Gauges and counters of the raftstore and its transport (`RegionWorkers.raftstoreMetrics`). */
  raftstore?: () => Record<string, number>;
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

/** `basalt_<name> value` lines; counters are the names ending in `_total`. */
export function flatMetrics(values: Record<string, number>): string {
  return Object.entries(values).map(([name, value]) =>
    `# TYPE basalt_${name} ${name.endsWith("_total") ? "counter" : "gauge"}\n` +
    `basalt_${name} ${value}\n`
  ).join("");
}

/** Descriptors this process holds (Linux), or null where /proc/self/fd does not exist. */
function openDescriptors(): number | null {
  try {
    let count = 0;
    for (const _ of Deno.readDirSync("/proc/self/fd")) count++;
    return count - 1; // the directory handle being read
  } catch {
    return null;
  }
}

function processMetrics(): string {
  const memory = Deno.memoryUsage();
  const fds = openDescriptors();
  return [
    ...(fds === null ? [] : [
      "# TYPE basalt_process_open_fds gauge",
      `basalt_process_open_fds ${fds}`,
    ]),
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
  if (request.method !== "GET") {
    return new Response(`method not allowed: ${request.method}\n`, {
      status: 405,
      headers: { allow: "GET" },
    });
  }
  const path = new URL(request.url).pathname;
  switch (path) {
    case "/health": {
      if (sources.stopping()) return new Response("shutting down\n", { status: 503 });
      const cannotWrite = sources.cannotWrite?.() ?? null;
      if (cannotWrite !== null) {
        return new Response(`cannot write: ${cannotWrite}\n`, { status: 503 });
      }
      return new Response("ok\n");
    }
    case "/metrics":
      return new Response(
        sources.metrics.render() + engineMetrics(sources.engine) + processMetrics() +
          flatMetrics(sources.network?.() ?? {}) + flatMetrics(sources.raftstore?.() ?? {}),
        { headers: { "content-type": "text/plain; version=0.0.4" } },
      );
    case "/config":
      return json(sources.config);
    case "/regions":
      return json({
        regions: sources.regions().map(({ region, worker }) => ({
          ...regionToProto(region),
          worker,
          leading: region.leading,
          term: region.term,
        })),
      });
    default:
      return new Response(`not found: ${path}\n`, { status: 404 });
  }
}

/**
 * Starts the status server; resolves with the bound port and a shutdown function. With `tls`
 * it serves HTTPS with mutual TLS (`src/security/https_server.ts`: Deno.serve cannot verify
 * client certificates).
 */
export function startStatusServer(
  options: StatusServeOptions,
  sources: StatusSources,
): Promise<{ port: number; shutdown(): Promise<void> }> {
  return serveStatus(options, (request) => handleStatusRequest(sources, request));
}

/** Where and how a status server listens. */
export interface StatusServeOptions {
  hostname: string;
  port: number;
  tls?: { identity: TlsIdentity; allowedCommonNames: readonly string[] };
  log: Logger;
  /** A connection with no request under way this long is closed; 0 = never. */
  idleTimeoutMs: number;
}

/**
 * Serves `handler` as the status server does (the store's and the PD process's): plain HTTP/1.1
 * over our accept loop with its caps and timeouts, or HTTPS with mutual TLS under `tls`.
 */
export function serveStatus(
  options: StatusServeOptions,
  handler: (request: Request) => Response,
): Promise<{ port: number; shutdown(): Promise<void> }> {
  if (options.tls !== undefined) {
    return serveHttps({ hostname: options.hostname, port: options.port, ...options.tls }, handler);
  }
  const connections = new Set<Deno.Conn>();
  const idleTimeoutMs = options.idleTimeoutMs;
  const http1 = {
    idleTimeoutMs,
    headerTimeoutMs: idleTimeoutMs > 0
      ? Math.min(STATUS_HEADER_TIMEOUT_MS, idleTimeoutMs)
      : STATUS_HEADER_TIMEOUT_MS,
    maxHeaderBytes: STATUS_MAX_HEADER_BYTES,
    authority: "",
  };
  const listener = ConnectionListener.listen({ hostname: options.hostname, port: options.port }, {
    name: "status",
    maxConnections: STATUS_MAX_CONNECTIONS,
    log: options.log,
    onConnection(conn, release) {
      connections.add(conn);
      serveHttp1(conn, handler, http1).finally(() => {
        connections.delete(conn);
        release();
      });
    },
  });
  http1.authority = `${
    options.hostname.includes(":") ? `[${options.hostname}]` : options.hostname
  }:${listener.port}`;
  return Promise.resolve({
    port: listener.port,
    shutdown: async () => {
      listener.close();
      for (const conn of connections) {
        try {
          conn.close();
        } catch { /* closed by its own deadline */ }
      }
      await listener.done;
    },
  });
}
