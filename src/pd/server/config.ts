/**
 * The PD process's configuration: PD's own flag names and TOML keys (`pd-server --help`,
 * `conf/config.toml`), defaults as PD's, then the `--config` file, then flags (flags win).
 *
 * | flag / TOML key                         | meaning                                         |
 * | --------------------------------------- | ----------------------------------------------- |
 * | `--name` / `name`                       | this member's name (default `pd`)               |
 * | `--client-urls` / `client-urls`         | where clients and stores reach PD (gRPC)        |
 * | `--advertise-client-urls`               | what GetMembers tells them (default the above)  |
 * | `--peer-urls` / `peer-urls`             | where members talk (`basalt.PdMembers`, Raft)   |
 * | `--initial-cluster` / `initial-cluster` | `name=peer-url,…`: the members (at most `PD_MEMBERS_MAX`); this one's entry must be its `--peer-urls` |
 * | `--data-dir` / `data-dir`               | PD's state (default `default.<name>`)           |
 * | `--status-addr` / `status-addr`         | Basalt's: `/health`, `/metrics` (PD serves them on the client URL; grpc-js cannot share its port) |
 * | `--log-file`, `--log-level` / `[log] level`, `[log.file] filename` | as PD's         |
 * | `[schedule]` `max-store-down-time`, `leader-schedule-limit`, `region-schedule-limit`, `replica-schedule-limit`, `max-snapshot-count`… | PD's; see `SCHEDULE_KEYS` |
 * | `[schedule]` `max-merge-region-size` (MiB), `max-merge-region-keys`, `split-merge-interval`, `merge-schedule-limit`, `enable-one-way-merge` | PD's region merge (`src/pd/merge_checker.ts`); a size or limit of 0 turns merge off |
 * | `[replication] max-replicas`            | voters per region                               |
 * | `--cacert`, `--cert`, `--key` / `[security]` `cacert-path` (or the store's `ca-path`), `cert-path`, `key-path` | mutual TLS on the client and status ports, as PD's; all three or none |
 * | `[security] cert-allowed-cn`            | common names a client certificate may have (empty: any the CA signed) |
 * | `max-connections`, `connection-idle-timeout` | Basalt's: the client port's connection cap and idle timeout, as the store's `[server]` keys |
 * | `election-interval`                     | PD's: how long a member hears nothing from its leader before it campaigns (default `PD_ELECTION_INTERVAL_MS`; a multiple of the 100 ms Raft tick, at least 3 ticks) |
 *
 * @module
 */
import { parseArgs } from "node:util";
import { parse as parseToml } from "smol-toml";
import {
  DEFAULT_PD_SCHEDULE_INTERVAL_MS,
  PD_ELECTION_INTERVAL_MS,
  PD_MEMBERS_MAX,
  PD_RAFT_HEARTBEAT_INTERVAL_TICKS,
  PD_RAFT_TICK_INTERVAL_MS,
} from "../../constants.ts";
import {
  addrProblem,
  ConfigError,
  defaultConfig,
  LOG_LEVELS,
  type LogLevel,
} from "../../server/config.ts";
import { securityProblem } from "../../security/settings.ts";
import { DEFAULT_SCHEDULE_CONFIG, type ScheduleConfig, scheduleConfig } from "../config.ts";

export { ConfigError };

/** The PD process's settings. */
export interface PdConfig {
  name: string;
  /** host:port to listen on for gRPC (the first client URL). */
  clientAddr: string;
  advertiseClientUrls: string[];
  peerUrls: string[];
  /** Members by name → peer URLs. */
  initialCluster: Map<string, string[]>;
  dataDir: string;
  statusAddr: string;
  log: { level: LogLevel; file: string };
  schedule: ScheduleConfig;
  /** How often the coordinator runs a scheduling round. */
  scheduleIntervalMs: number;
  /** Most connections open at once on the client port; more are closed on accept. */
  maxConnections: number;
  /** A client connection without open streams (or a status one without requests) this long is closed; 0 = never. */
  connectionIdleTimeoutMs: number;
  /** The members' Raft election timeout, in ticks of `PD_RAFT_TICK_INTERVAL_MS` (`election-interval`). */
  electionTimeoutTicks: number;
  /** PD's `[security]`: all three paths set = mutual TLS on both ports; all empty = none. */
  security: {
    caPath: string;
    certPath: string;
    keyPath: string;
    /** Subject common names a client certificate may have; empty = any the CA signed. */
    certAllowedCn: string[];
  };
}

const DEFAULT_CLIENT_URL = "http://127.0.0.1:2379";
const DEFAULT_PEER_URL = "http://127.0.0.1:2380";
/** etcd's metrics port (`--listen-metrics-urls`), next to PD's two. */
const DEFAULT_STATUS_ADDR = "127.0.0.1:2381";

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

function duration(key: string, value: unknown): number {
  if (typeof value === "string" && /^(\d+(ms|s|m|h))+$/.test(value.trim())) {
    let totalMs = 0;
    for (const [, amount, unit] of value.trim().matchAll(/(\d+)(ms|s|m|h)/g)) {
      totalMs += Number(amount) * DURATION_UNITS_MS[unit!]!;
    }
    if (totalMs > 0) return totalMs;
  }
  throw new ConfigError(key, `expected a duration such as "100ms", "10s" or "30m"`);
}

/** A duration as `duration` reads it, or "0s" (and the like) for never. */
function durationOrZero(key: string, value: unknown): number {
  if (typeof value === "string" && /^0+(ms|s|m|h)$/.test(value.trim())) return 0;
  return duration(key, value);
}

function positive(key: string, value: unknown): number {
  if (Number.isSafeInteger(value) && (value as number) >= 1) return value as number;
  throw new ConfigError(key, "expected a positive integer");
}

function count(key: string, value: unknown): number {
  if (Number.isSafeInteger(value) && (value as number) >= 0) return value as number;
  throw new ConfigError(key, "expected a non-negative integer");
}

function boolean(key: string, value: unknown): boolean {
  if (typeof value === "boolean") return value;
  throw new ConfigError(key, "expected true or false");
}

function text(key: string, value: unknown): string {
  if (typeof value === "string") return value;
  throw new ConfigError(key, "expected a string");
}

/** How a `[schedule]` value is read. */
const SCHEDULE_READERS = {
  duration,
  durationOrZero,
  positive,
  count,
  boolean,
} as const;

/** `[schedule]` keys → `ScheduleConfig` fields, with how each is read. */
const SCHEDULE_KEYS: Record<
  string,
  [keyof ScheduleConfig | "interval", keyof typeof SCHEDULE_READERS]
> = {
  "max-store-down-time": ["maxStoreDownTimeMs", "duration"],
  "leader-schedule-limit": ["leaderScheduleLimit", "positive"],
  "region-schedule-limit": ["regionScheduleLimit", "positive"],
  "replica-schedule-limit": ["replicaScheduleLimit", "positive"],
  "store-limit": ["storeOperatorLimit", "positive"],
  // PD's region merge: sizes in MiB; 0 turns merge off, as a merge-schedule-limit of 0 does.
  "max-merge-region-size": ["maxMergeRegionSizeMb", "count"],
  "max-merge-region-keys": ["maxMergeRegionKeys", "count"],
  "split-merge-interval": ["splitMergeIntervalMs", "durationOrZero"],
  "merge-schedule-limit": ["mergeScheduleLimit", "count"],
  "enable-one-way-merge": ["enableOneWayMerge", "boolean"],
  // Basalt's: the coordinator's round interval (PD's patrol and scheduler intervals).
  "interval": ["interval", "duration"],
};

/** A URL (`http://host:port`) or host:port as host:port; throws naming `key` otherwise. */
export function hostPort(key: string, url: string): string {
  const bare = url.replace(/^https?:\/\//, "").replace(/\/$/, "");
  if (addrProblem(bare) !== null) throw new ConfigError(key, `"${url}" is not http://host:port`);
  return bare;
}

function urls(key: string, value: string): string[] {
  const list = value.split(",").map((url) => url.trim()).filter((url) => url !== "");
  if (list.length === 0) throw new ConfigError(key, "expected at least one URL");
  for (const url of list) hostPort(key, url);
  return list.map((url) => (/^https?:\/\//.test(url) ? url : `http://${url}`));
}

function initialCluster(value: string): Map<string, string[]> {
  const members = new Map<string, string[]>();
  for (const part of value.split(",").map((p) => p.trim()).filter((p) => p !== "")) {
    const eq = part.indexOf("=");
    if (eq <= 0) throw new ConfigError("initial-cluster", `"${part}" is not name=peer-url`);
    const name = part.slice(0, eq);
    members.set(name, [
      ...(members.get(name) ?? []),
      ...urls("initial-cluster", part.slice(eq + 1)),
    ]);
  }
  return members;
}

interface Raw {
  name: string;
  clientUrls: string;
  advertiseClientUrls?: string;
  peerUrls: string;
  initialCluster?: string;
  dataDir?: string;
  statusAddr: string;
  logLevel: string;
  logFile: string;
  schedule: Partial<ScheduleConfig>;
  intervalMs: number;
  maxConnections: number;
  connectionIdleTimeoutMs: number;
  electionIntervalMs: number;
  security: PdConfig["security"];
}

function applyToml(raw: Raw, doc: Record<string, unknown>): void {
  const top: Record<string, keyof Raw> = {
    "name": "name",
    "client-urls": "clientUrls",
    "advertise-client-urls": "advertiseClientUrls",
    "peer-urls": "peerUrls",
    "initial-cluster": "initialCluster",
    "data-dir": "dataDir",
    "status-addr": "statusAddr",
  };
  for (const [key, value] of Object.entries(doc)) {
    if (key in top) {
      (raw as unknown as Record<string, unknown>)[top[key]!] = text(key, value);
    } else if (key === "log") applyLog(raw, value);
    else if (key === "schedule") applySchedule(raw, value);
    else if (key === "security") applySecurity(raw, value);
    else if (key === "max-connections") raw.maxConnections = positive(key, value);
    else if (key === "election-interval") raw.electionIntervalMs = duration(key, value);
    else if (key === "connection-idle-timeout") {
      raw.connectionIdleTimeoutMs = durationOrZero(key, value);
    } else if (key === "replication") {
      for (const [name, v] of Object.entries(table(key, value))) {
        if (name !== "max-replicas") throw new ConfigError(`replication.${name}`, "unknown key");
        raw.schedule.maxReplicas = positive("replication.max-replicas", v);
      }
    } else throw new ConfigError(key, "unknown key");
  }
}

function table(key: string, value: unknown): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ConfigError(key, "expected a table");
  }
  return value as Record<string, unknown>;
}

function applyLog(raw: Raw, value: unknown): void {
  for (const [key, v] of Object.entries(table("log", value))) {
    if (key === "level") raw.logLevel = text("log.level", v);
    else if (key === "file") {
      for (const [name, f] of Object.entries(table("log.file", v))) {
        if (name !== "filename") throw new ConfigError(`log.file.${name}`, "unknown key");
        raw.logFile = text("log.file.filename", f);
      }
    } else throw new ConfigError(`log.${key}`, "unknown key");
  }
}

/** `[security]` keys → fields; `cacert-path` is PD's name, `ca-path` the store's. */
const SECURITY_PATH_KEYS: Record<string, "caPath" | "certPath" | "keyPath"> = {
  "cacert-path": "caPath",
  "ca-path": "caPath",
  "cert-path": "certPath",
  "key-path": "keyPath",
};

function applySecurity(raw: Raw, value: unknown): void {
  for (const [key, v] of Object.entries(table("security", value))) {
    const name = `security.${key}`;
    const field = SECURITY_PATH_KEYS[key];
    if (field !== undefined) raw.security[field] = text(name, v);
    else if (key === "cert-allowed-cn") {
      // PD and TiKV take a list of names; a single string is one name.
      const names = typeof v === "string" ? [v] : v;
      if (!Array.isArray(names) || !names.every((n) => typeof n === "string" && n !== "")) {
        throw new ConfigError(name, "expected a list of common names");
      }
      raw.security.certAllowedCn = names as string[];
    } else throw new ConfigError(name, "unknown key");
  }
}

function applySchedule(raw: Raw, value: unknown): void {
  for (const [key, v] of Object.entries(table("schedule", value))) {
    const entry = SCHEDULE_KEYS[key];
    if (entry === undefined) throw new ConfigError(`schedule.${key}`, "unknown key");
    const name = `schedule.${key}`;
    const read = SCHEDULE_READERS[entry[1]](name, v);
    if (entry[0] === "interval") raw.intervalMs = read as number;
    else (raw.schedule as Record<string, number | boolean>)[entry[0]] = read;
  }
}

const FLAGS = {
  name: { type: "string" },
  "client-urls": { type: "string" },
  "advertise-client-urls": { type: "string" },
  "peer-urls": { type: "string" },
  "advertise-peer-urls": { type: "string" },
  "initial-cluster": { type: "string" },
  "data-dir": { type: "string" },
  "status-addr": { type: "string" },
  config: { type: "string" },
  "log-file": { type: "string" },
  "log-level": { type: "string" },
  cacert: { type: "string" },
  cert: { type: "string" },
  key: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

/** `--help` text. */
export function pdUsage(): string {
  return `Usage: deno task pd -- [flags]

  --name NAME                     this member's name (default "pd")
  --client-urls URL               where clients and stores reach PD (default ${DEFAULT_CLIENT_URL})
  --advertise-client-urls URL     what PD tells clients (default: --client-urls)
  --peer-urls URL                 where members talk (default ${DEFAULT_PEER_URL})
  --initial-cluster N=URL,…       the members (default NAME=--peer-urls); several replicate over Raft
  --data-dir DIR                  PD's state (default "default.NAME")
  --status-addr HOST:PORT         /health and /metrics (default ${DEFAULT_STATUS_ADDR}; port 0: any)
  --config FILE                   TOML with PD's keys; flags win over it
  --log-file FILE                 log here instead of standard error
  --log-level LEVEL               ${LOG_LEVELS.join(", ")} (default info)
  --cacert FILE --cert FILE --key FILE
                                  mutual TLS on both ports (CA, PD's certificate and key);
                                  [security] cert-allowed-cn in --config limits client names
  --help                          this text

On start it prints "basalt-pd ready: client H:P status H:P" to standard output.`;
}

/** What the command line asks for. */
export type PdCommandLine = { help: true } | { help: false; config: PdConfig; configPath?: string };

/** Reads flags and the `--config` file; throws `ConfigError` naming what is wrong. */
export function loadPdConfig(args: string[]): PdCommandLine {
  let parsed;
  try {
    parsed = parseArgs({ args: args[0] === "--" ? args.slice(1) : args, options: FLAGS });
  } catch (error) {
    throw new ConfigError("flags", (error as Error).message);
  }
  const flags = parsed.values;
  if (flags.help) return { help: true };
  const raw: Raw = {
    name: "pd",
    clientUrls: DEFAULT_CLIENT_URL,
    peerUrls: DEFAULT_PEER_URL,
    statusAddr: DEFAULT_STATUS_ADDR,
    logLevel: "info",
    logFile: "",
    schedule: {},
    intervalMs: DEFAULT_PD_SCHEDULE_INTERVAL_MS,
    maxConnections: defaultConfig().server.maxConnections,
    connectionIdleTimeoutMs: defaultConfig().server.connectionIdleTimeoutMs,
    electionIntervalMs: PD_ELECTION_INTERVAL_MS,
    security: { caPath: "", certPath: "", keyPath: "", certAllowedCn: [] },
  };
  if (flags.config !== undefined) {
    let doc: Record<string, unknown>;
    try {
      doc = parseToml(Deno.readTextFileSync(flags.config)) as Record<string, unknown>;
    } catch (error) {
      throw new ConfigError("config", `${flags.config}: ${(error as Error).message}`);
    }
    applyToml(raw, doc);
  }
  if (flags.name !== undefined) raw.name = flags.name;
  if (flags["client-urls"] !== undefined) raw.clientUrls = flags["client-urls"];
  if (flags["advertise-client-urls"] !== undefined) {
    raw.advertiseClientUrls = flags["advertise-client-urls"];
  }
  if (flags["peer-urls"] !== undefined) raw.peerUrls = flags["peer-urls"];
  if (flags["initial-cluster"] !== undefined) raw.initialCluster = flags["initial-cluster"];
  if (flags["data-dir"] !== undefined) raw.dataDir = flags["data-dir"];
  if (flags["status-addr"] !== undefined) raw.statusAddr = flags["status-addr"];
  if (flags["log-file"] !== undefined) raw.logFile = flags["log-file"];
  if (flags["log-level"] !== undefined) raw.logLevel = flags["log-level"];
  if (flags.cacert !== undefined) raw.security.caPath = flags.cacert;
  if (flags.cert !== undefined) raw.security.certPath = flags.cert;
  if (flags.key !== undefined) raw.security.keyPath = flags.key;
  return { help: false, config: finish(raw), configPath: flags.config };
}

function finish(raw: Raw): PdConfig {
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(raw.name)) {
    throw new ConfigError("name", `"${raw.name}": letters, digits, ".", "_" and "-", at most 64`);
  }
  const clientUrls = urls("client-urls", raw.clientUrls);
  const peerUrls = urls("peer-urls", raw.peerUrls);
  const members = initialCluster(raw.initialCluster ?? `${raw.name}=${peerUrls.join(",")}`);
  if (!members.has(raw.name)) {
    throw new ConfigError("initial-cluster", `does not name this member "${raw.name}"`);
  }
  if (members.size > PD_MEMBERS_MAX) {
    throw new ConfigError(
      "initial-cluster",
      `names ${members.size} members; at most ${PD_MEMBERS_MAX}`,
    );
  }
  const listed = members.get(raw.name)!;
  if (members.size > 1 && listed.join(",") !== peerUrls.join(",")) {
    // The other members reach this one at its entry, and its id is made from it.
    throw new ConfigError(
      "initial-cluster",
      `names ${raw.name} at ${listed.join(",")} but --peer-urls is ${peerUrls.join(",")}`,
    );
  }
  if (!(LOG_LEVELS as readonly string[]).includes(raw.logLevel)) {
    throw new ConfigError("log-level", `expected one of ${LOG_LEVELS.join(", ")}`);
  }
  const tlsProblem = securityProblem(raw.security, raw.security.certAllowedCn);
  if (tlsProblem !== null) throw new ConfigError(tlsProblem.key, tlsProblem.reason);
  const electionTimeoutTicks = raw.electionIntervalMs / PD_RAFT_TICK_INTERVAL_MS;
  if (
    !Number.isSafeInteger(electionTimeoutTicks) ||
    electionTimeoutTicks <= PD_RAFT_HEARTBEAT_INTERVAL_TICKS
  ) {
    throw new ConfigError(
      "election-interval",
      `${raw.electionIntervalMs} ms: expected a multiple of ${PD_RAFT_TICK_INTERVAL_MS} ms, ` +
        `at least ${(PD_RAFT_HEARTBEAT_INTERVAL_TICKS + 1) * PD_RAFT_TICK_INTERVAL_MS} ms`,
    );
  }
  let schedule: ScheduleConfig;
  try {
    schedule = scheduleConfig({ ...DEFAULT_SCHEDULE_CONFIG, ...raw.schedule });
  } catch (error) {
    throw new ConfigError("schedule", (error as Error).message);
  }
  return {
    name: raw.name,
    clientAddr: hostPort("client-urls", clientUrls[0]!),
    advertiseClientUrls: raw.advertiseClientUrls === undefined
      ? clientUrls
      : urls("advertise-client-urls", raw.advertiseClientUrls),
    peerUrls,
    initialCluster: members,
    dataDir: raw.dataDir ?? `default.${raw.name}`,
    statusAddr: hostPort("status-addr", raw.statusAddr),
    log: { level: raw.logLevel as LogLevel, file: raw.logFile },
    schedule,
    scheduleIntervalMs: raw.intervalMs,
    maxConnections: raw.maxConnections,
    connectionIdleTimeoutMs: raw.connectionIdleTimeoutMs,
    electionTimeoutTicks,
    security: raw.security,
  };
}
