/**
 * The effective configuration of a store: defaults, then a TOML file (`--config`), then flags.
 *
 * Keys are TiKV's spelling (`[server] addr`, `status-addr`, `[storage] data-dir`, `[log] level`).
 * Every key of the file is checked: an unknown key or a value of the wrong shape is refused
 * with a `ConfigError` naming the key and why, so a typo never silently falls back to a default.
 */
import { parseArgs } from "node:util";
import { parse as parseToml } from "smol-toml";
import { securityProblem } from "../security/settings.ts";
import {
  DEFAULT_HIBERNATE_REGIONS,
  DEFAULT_REGION_HEARTBEAT_INTERVAL_MS,
  DEFAULT_REGION_SPLIT_KEYS,
  DEFAULT_REGION_SPLIT_SIZE_BYTES,
  DEFAULT_SPLIT_REGION_CHECK_INTERVAL_MS,
  MIN_REGION_HEARTBEAT_INTERVAL_MS,
  RAFT_LOG_GC_COUNT_LIMIT,
  RAFT_LOG_GC_SIZE_LIMIT_BYTES,
  RAFTSTORE_ELECTION_TIMEOUT_TICKS,
  RAFTSTORE_HEARTBEAT_INTERVAL_TICKS,
  RAFTSTORE_MIN_TICK_MS,
  RAFTSTORE_TICK_MS,
  SPLIT_CHECK_SCAN_MAX_BYTES,
  SPLIT_CHECK_SCAN_MAX_KEYS,
  STORE_POOL_INLINE_MAX_CORES,
  STORE_POOL_SIZE_THREADS,
  STORE_WRITE_BUFFER_BYTES,
} from "../constants.ts";

/** Log levels, most verbose first. */
export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export type LogLevel = typeof LOG_LEVELS[number];

const COMPRESSIONS = ["none", "snappy", "zlib", "lz4", "zstd"] as const;

/** The whole configuration of one store process. */
export interface ServerConfig {
  server: {
    /** gRPC listen address, host:port (port 0 = any free port). */
    addr: string;
    /** Status HTTP listen address, host:port. */
    statusAddr: string;
    /** Most gRPC connections open at once (also held to half the open-file limit). */
    maxConnections: number;
    /** Most concurrent streams per gRPC connection (TiKV's `grpc-concurrent-stream`). */
    grpcConcurrentStream: number;
    /** gRPC ping interval on a silent connection (TiKV's `grpc-keepalive-time`); 0 = never. */
    grpcKeepaliveTimeMs: number;
    /** A ping unanswered this long drops the connection (TiKV's `grpc-keepalive-timeout`). */
    grpcKeepaliveTimeoutMs: number;
    /**
     * A gRPC connection with no open stream, or a status connection with no request, is closed
     * after this long; 0 = never.
     */
    connectionIdleTimeoutMs: number;
    /**
     * The gRPC address other stores and clients dial (TiKV's `advertise-addr`); empty = `addr`.
     * Published to PD by a clustered store.
     */
    advertiseAddr: string;
    /** The status address published to PD (TiKV's `advertise-status-addr`); empty = `status-addr`. */
    advertiseStatusAddr: string;
    /** Listen address of the Redis gateway run inside the store (src/gateway/redis/); empty = none. */
    redisAddr: string;
    /** Listen address of the HTTP API run inside the store (src/gateway/http/); empty = none. */
    httpAddr: string;
  };
  /**
   * PD: with endpoints, the store is a client of that PD cluster (a clustered store); with none,
   * it is standalone and serves `pdpb.PD` itself.
   */
  pd: {
    /** PD client addresses, host:port (an `http://` prefix is accepted and dropped). */
    endpoints: string[];
  };
  storage: {
    dataDir: string;
    /** fsync the write-ahead log before acknowledging a raw write. */
    syncLog: boolean;
    /** Period of the sweep that deletes expired raw values; 0 = never. */
    ttlCheckPollIntervalMs: number;
    /**
     * Disk space kept in reserve (TiKV's `reserve-space`): a placeholder file of this size, and
     * the free space below which writes are refused until space returns; 0 turns both off;
     * null: two RocksDB write buffers.
     */
    reserveSpaceBytes: number | null;
  };
  raftstore: {
    /**
     * Region-group workers: Web Workers that run the commands of their regions; 0 runs them on
     * the main thread instead (`inline_worker.ts`). Default: `defaultStorePoolSize()`.
     */
    storePoolSize: number;
    /** Milliseconds per Raft tick (TiKV's `raft-base-tick-interval`). */
    raftBaseTickIntervalMs: number;
    /** Ticks between a leader's heartbeats. */
    raftHeartbeatTicks: number;
    /** Ticks without a leader before an election (randomized up to twice this). */
    raftElectionTimeoutTicks: number;
    /** Applied entries in a region's log before the leader compacts it. */
    raftLogGcCountLimit: number;
    /** Bytes appended to a region's log before the leader compacts it. */
    raftLogGcSizeLimitBytes: number;
    /**
     * How often a leader checks whether its region should split (TiKV's
     * `split-region-check-tick-interval`); 0 = never (no automatic split).
     */
    splitRegionCheckTickIntervalMs: number;
    /**
     * Quiet regions stop ticking and heartbeating until traffic wakes them (TiKV's
     * `hibernate-regions`; src/raftstore/hibernate.ts).
     */
    hibernateRegions: boolean;
    /**
     * Period of the heartbeats a clustered store sends PD for every region it leads (TiKV's
     * `pd-heartbeat-tick-interval`); changed regions are reported at once besides.
     */
    pdHeartbeatTickIntervalMs: number;
  };
  /** TiKV's `[coprocessor]`: when a region splits and into what (`src/raftstore/split_check.ts`). */
  coprocessor: {
    /** Size of the pieces a split cuts a region into (`region-split-size`). */
    regionSplitSizeBytes: number;
    /** A region larger than this splits (`region-max-size`); null: 1.5 × region-split-size. */
    regionMaxSizeBytes: number | null;
    /** Keys per piece when a region splits by keys (`region-split-keys`). */
    regionSplitKeys: number;
    /** A region with more keys than this splits (`region-max-keys`); null: 1.5 × region-split-keys. */
    regionMaxKeys: number | null;
  };
  gc: {
    /** How often the store looks for a newer GC safe point (and then collects garbage). */
    pollSafePointIntervalMs: number;
  };
  rocksdb: {
    blockCacheSizeBytes: number;
    writeBufferSizeBytes: number;
    maxBackgroundJobs: number;
    compression: typeof COMPRESSIONS[number];
  };
  log: {
    level: LogLevel;
    /** Log file path; empty = standard error. */
    file: string;
    /** Requests slower than this are logged at warn level. */
    slowRequestThresholdMs: number;
  };
  /** TiKV's `[security]`: all three paths set = mutual TLS on gRPC and status; all empty = none. */
  security: {
    /** PEM of the CA that signs every peer's certificate. */
    caPath: string;
    /** PEM of this store's certificate. */
    certPath: string;
    /** PEM of this store's private key. */
    keyPath: string;
    /** Subject common names a client certificate may have; empty = any the CA signed. */
    certAllowedCn: string[];
  };
}

/** A configuration value that is refused; `key` is its dotted TOML name or flag. */
export class ConfigError extends Error {
  constructor(readonly key: string, readonly reason: string) {
    super(`invalid configuration: ${key}: ${reason}`);
    this.name = "ConfigError";
  }
}

/** The defaults, as `deno task serve` with no flags uses them. */
export function defaultConfig(): ServerConfig {
  return {
    server: {
      addr: "127.0.0.1:20160",
      statusAddr: "127.0.0.1:20180",
      maxConnections: 4096,
      grpcConcurrentStream: 1024,
      grpcKeepaliveTimeMs: 10_000,
      grpcKeepaliveTimeoutMs: 3_000,
      connectionIdleTimeoutMs: 10 * 60 * 1000,
      advertiseAddr: "",
      advertiseStatusAddr: "",
      redisAddr: "",
      httpAddr: "",
    },
    pd: { endpoints: [] },
    storage: {
      dataDir: "./data",
      syncLog: true,
      ttlCheckPollIntervalMs: 60 * 60 * 1000,
      reserveSpaceBytes: null,
    },
    raftstore: {
      storePoolSize: defaultStorePoolSize(),
      raftBaseTickIntervalMs: RAFTSTORE_TICK_MS,
      raftHeartbeatTicks: RAFTSTORE_HEARTBEAT_INTERVAL_TICKS,
      raftElectionTimeoutTicks: RAFTSTORE_ELECTION_TIMEOUT_TICKS,
      raftLogGcCountLimit: RAFT_LOG_GC_COUNT_LIMIT,
      raftLogGcSizeLimitBytes: RAFT_LOG_GC_SIZE_LIMIT_BYTES,
      splitRegionCheckTickIntervalMs: DEFAULT_SPLIT_REGION_CHECK_INTERVAL_MS,
      hibernateRegions: DEFAULT_HIBERNATE_REGIONS,
      pdHeartbeatTickIntervalMs: DEFAULT_REGION_HEARTBEAT_INTERVAL_MS,
    },
    coprocessor: {
      regionSplitSizeBytes: DEFAULT_REGION_SPLIT_SIZE_BYTES,
      regionMaxSizeBytes: null,
      regionSplitKeys: DEFAULT_REGION_SPLIT_KEYS,
      regionMaxKeys: null,
    },
    gc: { pollSafePointIntervalMs: 10_000 },
    rocksdb: {
      blockCacheSizeBytes: 256 * 1024 * 1024,
      writeBufferSizeBytes: STORE_WRITE_BUFFER_BYTES,
      maxBackgroundJobs: 2,
      compression: "lz4",
    },
    log: { level: "info", file: "", slowRequestThresholdMs: 1000 },
    security: { caPath: "", certPath: "", keyPath: "", certAllowedCn: [] },
  };
}

type Kind =
  | "addr"
  | "string"
  | "bool"
  | "size"
  | "sizeOrZero"
  | "count"
  | "positive"
  | "duration"
  | "level"
  | "compression"
  | "path"
  | "names"
  | "advertise"
  | "addrOrEmpty"
  | "endpoints";

/**
 * `store-pool-size` when the configuration does not set it: 0 (the regions on the main thread)
 * on a machine of at most STORE_POOL_INLINE_MAX_CORES cores, else STORE_POOL_SIZE_THREADS.
 */
export function defaultStorePoolSize(cores = navigator.hardwareConcurrency): number {
  return cores <= STORE_POOL_INLINE_MAX_CORES ? 0 : STORE_POOL_SIZE_THREADS;
}

/** Every key the TOML file may hold: section → key → [field, kind]. */
const SCHEMA: Record<string, Record<string, [string, Kind]>> = {
  server: {
    "addr": ["addr", "addr"],
    "status-addr": ["statusAddr", "addr"],
    "max-connections": ["maxConnections", "positive"],
    "grpc-concurrent-stream": ["grpcConcurrentStream", "positive"],
    "grpc-keepalive-time": ["grpcKeepaliveTimeMs", "duration"],
    "grpc-keepalive-timeout": ["grpcKeepaliveTimeoutMs", "duration"],
    "connection-idle-timeout": ["connectionIdleTimeoutMs", "duration"],
    "advertise-addr": ["advertiseAddr", "advertise"],
    "advertise-status-addr": ["advertiseStatusAddr", "advertise"],
    "redis-addr": ["redisAddr", "addrOrEmpty"],
    "http-addr": ["httpAddr", "addrOrEmpty"],
  },
  pd: { "endpoints": ["endpoints", "endpoints"] },
  storage: {
    "data-dir": ["dataDir", "string"],
    "sync-log": ["syncLog", "bool"],
    "ttl-check-poll-interval": ["ttlCheckPollIntervalMs", "duration"],
    "reserve-space": ["reserveSpaceBytes", "sizeOrZero"],
  },
  raftstore: {
    "store-pool-size": ["storePoolSize", "count"],
    "raft-base-tick-interval": ["raftBaseTickIntervalMs", "duration"],
    "raft-heartbeat-ticks": ["raftHeartbeatTicks", "positive"],
    "raft-election-timeout-ticks": ["raftElectionTimeoutTicks", "positive"],
    "raft-log-gc-count-limit": ["raftLogGcCountLimit", "positive"],
    "raft-log-gc-size-limit": ["raftLogGcSizeLimitBytes", "size"],
    "split-region-check-tick-interval": ["splitRegionCheckTickIntervalMs", "duration"],
    "hibernate-regions": ["hibernateRegions", "bool"],
    "pd-heartbeat-tick-interval": ["pdHeartbeatTickIntervalMs", "duration"],
  },
  coprocessor: {
    "region-split-size": ["regionSplitSizeBytes", "size"],
    "region-max-size": ["regionMaxSizeBytes", "size"],
    "region-split-keys": ["regionSplitKeys", "positive"],
    "region-max-keys": ["regionMaxKeys", "positive"],
  },
  gc: { "poll-safe-point-interval": ["pollSafePointIntervalMs", "duration"] },
  rocksdb: {
    "block-cache-size": ["blockCacheSizeBytes", "size"],
    "write-buffer-size": ["writeBufferSizeBytes", "size"],
    "max-background-jobs": ["maxBackgroundJobs", "count"],
    "compression": ["compression", "compression"],
  },
  log: {
    "level": ["level", "level"],
    "file": ["file", "string"],
    "slow-request-threshold-ms": ["slowRequestThresholdMs", "count"],
  },
  security: {
    "ca-path": ["caPath", "path"],
    "cert-path": ["certPath", "path"],
    "key-path": ["keyPath", "path"],
    "cert-allowed-cn": ["certAllowedCn", "names"],
  },
};

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  B: 1,
  KB: 1024,
  KIB: 1024,
  MB: 1024 ** 2,
  MIB: 1024 ** 2,
  GB: 1024 ** 3,
  GIB: 1024 ** 3,
};

/** Parses `host:port`; returns the reason it is refused, or null. */
export function addrProblem(value: string): string | null {
  const match = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.\-]+):(\d{1,5})$/.exec(value);
  if (match === null) return `"${value}" is not host:port`;
  if (Number(match[2]) > 65535) return `port ${match[2]} is above 65535`;
  return null;
}

/** Splits `host:port` (validated by `addrProblem`). */
export function splitAddr(value: string): { host: string; port: number } {
  const colon = value.lastIndexOf(":");
  return {
    host: value.slice(0, colon).replace(/^\[|\]$/g, ""),
    port: Number(value.slice(colon + 1)),
  };
}

function convert(key: string, kind: Kind, value: unknown): unknown {
  const refuse = (why: string): never => {
    throw new ConfigError(key, why);
  };
  switch (kind) {
    case "string":
      return typeof value === "string" && value !== ""
        ? value
        : refuse("expected a non-empty string");
    case "addr": {
      if (typeof value !== "string") return refuse("expected a string host:port");
      const problem = addrProblem(value);
      return problem === null ? value : refuse(problem);
    }
    case "bool":
      return typeof value === "boolean" ? value : refuse("expected true or false");
    case "count":
      return Number.isSafeInteger(value) && (value as number) >= 0
        ? value
        : refuse("expected a non-negative integer");
    case "positive":
      return Number.isSafeInteger(value) && (value as number) >= 1
        ? value
        : refuse("expected a positive integer");
    case "duration":
      return parseDuration(key, value);
    case "level":
      return (LOG_LEVELS as readonly unknown[]).includes(value)
        ? value
        : refuse(`expected one of ${LOG_LEVELS.join(", ")}`);
    case "compression":
      return (COMPRESSIONS as readonly unknown[]).includes(value)
        ? value
        : refuse(`expected one of ${COMPRESSIONS.join(", ")}`);
    case "size":
      return parseSize(key, value);
    case "sizeOrZero":
      return value === 0 || value === "0" ? 0 : parseSize(key, value);
    case "path":
      return typeof value === "string" ? value : refuse("expected a path (empty = unset)");
    case "names":
      return Array.isArray(value) && value.every((name) => typeof name === "string" && name !== "")
        ? [...value]
        : refuse(`expected a list of names, such as ["tikv-client"]`);
    case "advertise": {
      if (typeof value !== "string") return refuse("expected a string host:port");
      if (value === "") return value;
      const problem = addrProblem(value);
      if (problem !== null) return refuse(problem);
      const { host, port } = splitAddr(value);
      if (port === 0) return refuse("port 0 is not an address others can dial");
      if (host === "0.0.0.0" || host === "::") {
        return refuse(`${host} is not an address others can dial`);
      }
      return value;
    }
    case "addrOrEmpty": {
      if (typeof value !== "string") return refuse("expected a string host:port (empty = none)");
      const problem = value === "" ? null : addrProblem(value);
      return problem === null ? value : refuse(problem);
    }
    case "endpoints":
      return parseEndpoints(key, value);
  }
}

/** PD endpoints: a list of host:port (or http://host:port), at least one, no repeats. */
function parseEndpoints(key: string, value: unknown): string[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new ConfigError(
      key,
      `expected a non-empty list of host:port, such as ["127.0.0.1:2379"]`,
    );
  }
  const endpoints: string[] = [];
  for (const entry of value) {
    if (typeof entry !== "string") throw new ConfigError(key, "expected strings host:port");
    const addr = entry.trim().replace(/^https?:\/\//i, "").replace(/\/$/, "");
    const problem = addrProblem(addr);
    if (problem !== null) throw new ConfigError(key, problem);
    if (splitAddr(addr).port === 0) {
      throw new ConfigError(key, `${entry}: port 0 cannot be dialled`);
    }
    if (endpoints.includes(addr)) throw new ConfigError(key, `${entry} is listed twice`);
    endpoints.push(addr);
  }
  return endpoints;
}

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A duration as TiKV writes them ("500ms", "10s", "12h", "1h30m"), or "0" / 0 for never. */
function parseDuration(key: string, value: unknown): number {
  if (value === 0 || value === "0") return 0;
  if (typeof value === "string" && /^(\d+(ms|s|m|h))+$/.test(value.trim())) {
    let totalMs = 0;
    for (const [, amount, unit] of value.trim().matchAll(/(\d+)(ms|s|m|h)/g)) {
      totalMs += Number(amount) * DURATION_UNITS_MS[unit!]!;
    }
    return totalMs;
  }
  throw new ConfigError(key, `expected a duration such as "500ms", "10s", "12h" or "0"`);
}

/** A size: an integer of bytes or a string such as "256MB" / "1GiB". */
function parseSize(key: string, value: unknown): number {
  if (Number.isSafeInteger(value) && (value as number) > 0) return value as number;
  if (typeof value === "string") {
    const match = /^\s*(\d+)\s*([A-Za-z]*)\s*$/.exec(value);
    const unit = SIZE_UNITS[(match?.[2] ?? "").toUpperCase()];
    if (match !== null && unit !== undefined && Number(match[1]) > 0) {
      return Number(match[1]) * unit;
    }
  }
  throw new ConfigError(key, `expected a positive size such as 268435456 or "256MB"`);
}

/** Applies the parsed TOML document `doc` over `config`, refusing unknown keys. */
export function applyToml(config: ServerConfig, doc: Record<string, unknown>): void {
  for (const [section, body] of Object.entries(doc)) {
    const keys = SCHEMA[section];
    if (keys === undefined) throw new ConfigError(section, "unknown section");
    if (typeof body !== "object" || body === null || Array.isArray(body)) {
      throw new ConfigError(section, "expected a table");
    }
    const target = config[section as keyof ServerConfig] as Record<string, unknown>;
    for (const [key, value] of Object.entries(body)) {
      const entry = keys[key];
      const name = `${section}.${key}`;
      if (entry === undefined) throw new ConfigError(name, "unknown key");
      target[entry[0]] = convert(name, entry[1], value);
    }
  }
}

/** Reads and applies the TOML file at `path`. */
export function applyConfigFile(config: ServerConfig, path: string): void {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (error) {
    throw new ConfigError("--config", `cannot read ${path}: ${(error as Error).message}`);
  }
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (error) {
    throw new ConfigError("--config", `${path} is not valid TOML: ${(error as Error).message}`);
  }
  applyToml(config, doc);
}

/** The command-line flags, TiKV's spelling, each overriding its file key. */
const FLAGS = {
  "addr": { type: "string", key: "server.addr", help: "gRPC listen address (127.0.0.1:20160)" },
  "status-addr": {
    type: "string",
    key: "server.status-addr",
    help: "status HTTP address: /metrics /health /config /regions (127.0.0.1:20180)",
  },
  "data-dir": { type: "string", key: "storage.data-dir", help: "data directory (./data)" },
  "pd": {
    type: "string",
    key: "pd.endpoints",
    help: "PD addresses, comma-separated: join that cluster (none: standalone)",
  },
  "advertise-addr": {
    type: "string",
    key: "server.advertise-addr",
    help: "gRPC address published to PD (default: --addr)",
  },
  "advertise-status-addr": {
    type: "string",
    key: "server.advertise-status-addr",
    help: "status address published to PD (default: --status-addr)",
  },
  "redis-addr": {
    type: "string",
    key: "server.redis-addr",
    help: "also serve Redis (src/gateway/redis/) on this address (default: no)",
  },
  "http-addr": {
    type: "string",
    key: "server.http-addr",
    help: "also serve the HTTP API (src/gateway/http/) on this address (default: no)",
  },
  "config": { type: "string", key: "", help: "TOML configuration file; flags override it" },
  "log-level": { type: "string", key: "log.level", help: "debug, info, warn or error (info)" },
  "log-file": { type: "string", key: "log.file", help: "log file (default: standard error)" },
  "ca-path": { type: "string", key: "security.ca-path", help: "CA certificate (PEM): TLS" },
  "cert-path": { type: "string", key: "security.cert-path", help: "this store's certificate" },
  "key-path": { type: "string", key: "security.key-path", help: "this store's private key" },
  "help": { type: "boolean", key: "", help: "print this help and exit" },
} as const;

/** The `--help` text: every flag and every file key. */
export function usage(): string {
  const lines = ["Usage: deno task serve -- [flags]", "", "Flags:"];
  for (const [name, flag] of Object.entries(FLAGS)) {
    lines.push(`  --${name.padEnd(14)} ${flag.help}`);
  }
  lines.push("", "Configuration file keys (--config FILE, TOML):");
  for (const [section, keys] of Object.entries(SCHEMA)) {
    lines.push(`  [${section}] ${Object.keys(keys).join(", ")}`);
  }
  return lines.join("\n");
}

/**
 * A clustered store publishes its gRPC address to PD before it listens (Bootstrap names it), so
 * that address must be known: `advertise-addr`, or an `addr` with a fixed port.
 */
function clusteredProblem(config: ServerConfig): ConfigError | null {
  if (config.pd.endpoints.length === 0) return null;
  if (config.server.advertiseAddr !== "") return null;
  const { host, port } = splitAddr(config.server.addr);
  if (port === 0 || host === "0.0.0.0" || host === "::") {
    return new ConfigError(
      "server.advertise-addr",
      `a store joining PD must publish a dialable address: set --advertise-addr (addr is ${config.server.addr})`,
    );
  }
  return null;
}

/** The `[coprocessor]` split thresholds with the unset maxima derived (TiKV: 1.5 × split). */
export interface SplitThresholds {
  regionSplitSizeBytes: number;
  regionMaxSizeBytes: number;
  regionSplitKeys: number;
  regionMaxKeys: number;
}

/** `coprocessor`'s thresholds, each unset maximum 1.5 × its split value (TiKV's `/ 2 * 3`). */
export function splitThresholds(coprocessor: ServerConfig["coprocessor"]): SplitThresholds {
  const { regionSplitSizeBytes, regionSplitKeys } = coprocessor;
  return {
    regionSplitSizeBytes,
    regionMaxSizeBytes: coprocessor.regionMaxSizeBytes ??
      Math.floor(regionSplitSizeBytes / 2) * 3,
    regionSplitKeys,
    regionMaxKeys: coprocessor.regionMaxKeys ?? Math.floor(regionSplitKeys / 2) * 3,
  };
}

/**
 * Each maximum is at least its split value (TiKV's check), and at most what one split check
 * reads (`SPLIT_CHECK_SCAN_MAX_*`): a region past its maximum is then always seen to be.
 */
function splitProblem(config: ServerConfig): ConfigError | null {
  const limits = splitThresholds(config.coprocessor);
  const problem = maxProblem("size", {
    max: limits.regionMaxSizeBytes,
    split: limits.regionSplitSizeBytes,
    scanMax: SPLIT_CHECK_SCAN_MAX_BYTES,
  }) ?? maxProblem("keys", {
    max: limits.regionMaxKeys,
    split: limits.regionSplitKeys,
    scanMax: SPLIT_CHECK_SCAN_MAX_KEYS,
  });
  if (problem !== null) return problem;
  const { splitRegionCheckTickIntervalMs, raftBaseTickIntervalMs } = config.raftstore;
  if (config.raftstore.pdHeartbeatTickIntervalMs < MIN_REGION_HEARTBEAT_INTERVAL_MS) {
    return new ConfigError(
      "raftstore.pd-heartbeat-tick-interval",
      `must be at least ${MIN_REGION_HEARTBEAT_INTERVAL_MS}ms`,
    );
  }
  if (
    splitRegionCheckTickIntervalMs !== 0 && splitRegionCheckTickIntervalMs < raftBaseTickIntervalMs
  ) {
    return new ConfigError(
      "raftstore.split-region-check-tick-interval",
      `must be 0 (never) or at least raft-base-tick-interval (${raftBaseTickIntervalMs}ms)`,
    );
  }
  return null;
}

/** `region-max-<measure>` against `region-split-<measure>` and the split check's scan bound. */
function maxProblem(
  measure: "size" | "keys",
  values: { max: number; split: number; scanMax: number },
): ConfigError | null {
  const key = `coprocessor.region-max-${measure}`;
  if (values.max < values.split) {
    return new ConfigError(key, `${values.max} is below region-split-${measure} (${values.split})`);
  }
  if (values.max > values.scanMax) {
    return new ConfigError(
      key,
      `${values.max} is above ${values.scanMax}, the most one split check reads`,
    );
  }
  return null;
}

/** The result of reading the command line: a configuration, or a request for help. */
export type CommandLine =
  | { help: true }
  | { help: false; config: ServerConfig; /** The `--config` file, if any. */ configPath?: string };

/** Builds the effective configuration from `args`: defaults, then `--config`, then flags. */
export function loadConfig(args: string[]): CommandLine {
  const options = Object.fromEntries(
    Object.entries(FLAGS).map(([name, flag]) => [name, { type: flag.type }]),
  ) as Record<string, { type: "string" | "boolean" }>;
  let values: Record<string, string | boolean | undefined>;
  try {
    // `deno task serve -- --addr …` hands the "--" through; it separates nothing here.
    const flags = args[0] === "--" ? args.slice(1) : args;
    values = parseArgs({ args: flags, options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new ConfigError("command line", (error as Error).message);
  }
  if (values.help === true) return { help: true };
  const config = defaultConfig();
  if (typeof values.config === "string") applyConfigFile(config, values.config);
  for (const [name, flag] of Object.entries(FLAGS)) {
    const value = values[name];
    if (flag.key === "" || typeof value !== "string") continue;
    const [section, key] = flag.key.split(".") as [string, string];
    // `--pd a,b` is the file's list `endpoints = ["a", "b"]`.
    const asToml = name === "pd" ? value.split(",") : value;
    try {
      applyToml(config, { [section]: { [key]: asToml } });
    } catch (error) {
      if (error instanceof ConfigError) throw new ConfigError(`--${name}`, error.reason);
      throw error;
    }
  }
  const problem = securityProblem(config.security, config.security.certAllowedCn);
  if (problem !== null) throw new ConfigError(problem.key, problem.reason);
  const clusterProblem = clusteredProblem(config);
  if (clusterProblem !== null) throw clusterProblem;
  const { raftstore } = config;
  if (raftstore.raftBaseTickIntervalMs < RAFTSTORE_MIN_TICK_MS) {
    throw new ConfigError(
      "raftstore.raft-base-tick-interval",
      `must be at least ${RAFTSTORE_MIN_TICK_MS}ms`,
    );
  }
  if (raftstore.raftHeartbeatTicks >= raftstore.raftElectionTimeoutTicks) {
    throw new ConfigError(
      "raftstore.raft-heartbeat-ticks",
      `must be below raft-election-timeout-ticks (${raftstore.raftElectionTimeoutTicks})`,
    );
  }
  const splitConfigProblem = splitProblem(config);
  if (splitConfigProblem !== null) throw splitConfigProblem;
  const configPath = typeof values.config === "string" ? values.config : undefined;
  return { help: false, config, configPath };
}
