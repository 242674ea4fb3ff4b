/**
 * The Deno permissions of one store process, worked out from its configuration: what
 * `deno task serve` (through `scripts/serve.ts`), the end-to-end tests and `deno task compile`
 * grant, and nothing more.
 *
 * - `--allow-net`: the two listen addresses, host and port; a port of 0 (any free port, as the
 *   tests use) grants the host on every port. `localhost` also grants 127.0.0.1 and [::1],
 *   the addresses grpc-js binds for it. A standalone store dials nobody. A clustered store
 *   (`[pd] endpoints`) dials PD and every other store, at addresses it learns from PD while it
 *   runs: it is granted the network unscoped (no list could name its peers in advance).
 * - `--allow-read`: the data directory, the log file and its rotated `.1`, the `--config` file,
 *   the three TLS files, the RocksDB library (`ffi/library.ts` looks it up with `stat`), and the
 *   code directories: region workers are Web Workers, and a Worker needs read permission on
 *   every module it loads (measured: without it the first worker import fails).
 * - `--allow-write`: the data directory, the log file and its `.1`.
 * - `--allow-ffi`, unscoped: Deno 2.9.6 makes every `Deno.UnsafePointer`/`UnsafePointerView`
 *   helper throw NotCapable under a scoped `--allow-ffi=<lib>` (measured under Deno 2.9.6).
 * - `--allow-env`: the variables read, by name — `BASALT_ROCKSDB_LIB`, and those grpc-js reads
 *   when it loads (a name missing from the list stops the process at start-up).
 *
 * Pure: takes every fact as an argument and touches neither the file system nor the process.
 */
import type { ServerConfig } from "../server/config.ts";

/** Environment variables grpc-js 1.14.7 reads (grep of its build for `process.env`). */
export const GRPC_ENV_VARIABLES = [
  "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
  "GRPC_EXPERIMENTAL_ENABLE_OUTLIER_DETECTION",
  "GRPC_NODE_DEBUG_SEND_ERROR_DETAILS",
  "GRPC_NODE_TRACE",
  "GRPC_NODE_USE_ALTERNATIVE_RESOLVER",
  "GRPC_NODE_VERBOSITY",
  "GRPC_SSL_CIPHER_SUITES",
  "GRPC_TRACE",
  "GRPC_VERBOSITY",
  "grpc_proxy",
  "http_proxy",
  "https_proxy",
  "no_grpc_proxy",
  "no_proxy",
] as const;

/** Environment variables a store process reads. */
export const SERVER_ENV_VARIABLES = ["BASALT_ROCKSDB_LIB", ...GRPC_ENV_VARIABLES] as const;

/** Directories under the code root that hold the modules a region worker loads. */
export const CODE_DIRECTORIES = ["src", "ffi", "proto"] as const;

/** What the permissions depend on besides the configuration. */
export interface PermissionFacts {
  config: ServerConfig;
  /** The `--config` file, when one is given. */
  configPath?: string;
  /** The directory holding `src/`, `ffi/` and `proto/`. */
  codeRoot: string;
  /** The RocksDB library the store will load (`findLibrary()`), or null when none was found. */
  libraryPath: string | null;
}

/** The `--allow-net` entries that let a process listen on `addr` (host:port). */
export function listenGrants(addr: string): string[] {
  const colon = addr.lastIndexOf(":");
  const host = addr.slice(0, colon);
  const port = addr.slice(colon + 1);
  const hosts = host === "localhost" ? ["localhost", "127.0.0.1", "[::1]"] : [host];
  return hosts.map((name) => port === "0" ? name : `${name}:${port}`);
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}

/**
 * The `deno run` permission flags of a store with `facts.config`, in a stable order.
 *
 * @example
 * ```ts
 * const flags = serverPermissionFlags({ config, codeRoot: "/basalt", libraryPath: null });
 * // ["--no-prompt", "--allow-net=127.0.0.1:20160,127.0.0.1:20180", "--allow-read=./data,…", …]
 * ```
 */
export function serverPermissionFlags(facts: PermissionFacts): string[] {
  const { config } = facts;
  const root = facts.codeRoot.replace(/\/$/, "");
  return processPermissionFlags({
    listen: [
      config.server.addr,
      config.server.statusAddr,
      config.server.redisAddr,
      config.server.httpAddr,
    ]
      .filter((addr) => addr !== ""),
    dial: config.pd.endpoints,
    dialAny: config.pd.endpoints.length > 0,
    dataDir: config.storage.dataDir,
    logFile: config.log.file,
    configPath: facts.configPath,
    security: config.security,
    libraryPath: facts.libraryPath,
    code: CODE_DIRECTORIES.map((directory) => `${root}/${directory}`),
  });
}

/**
 * The `deno run` permission flags of one Basalt process (a store or a PD), in a stable order:
 * net = what it listens on and dials; read = data dir, log file and its `.1`, config file, the
 * `[security]` files that are set, the RocksDB library, then `code`; write = data dir and logs.
 */
export function processPermissionFlags(grants: {
  listen: readonly string[];
  dial: readonly string[];
  /** It dials addresses learnt at run time: the network unscoped. */
  dialAny?: boolean;
  dataDir: string;
  /** "" = standard error. */
  logFile: string;
  configPath?: string;
  security: { caPath: string; certPath: string; keyPath: string };
  libraryPath: string | null;
  /** Directories of modules its Workers load. */
  code: readonly string[];
}): string[] {
  const { security } = grants;
  const logFiles = grants.logFile === "" ? [] : [grants.logFile, `${grants.logFile}.1`];
  const net = unique([...grants.listen, ...grants.dial].flatMap(listenGrants));
  const read = unique([
    grants.dataDir,
    ...logFiles,
    ...(grants.configPath === undefined ? [] : [grants.configPath]),
    ...[security.caPath, security.certPath, security.keyPath].filter((path) => path !== ""),
    ...(grants.libraryPath === null ? [] : [grants.libraryPath]),
    ...grants.code,
  ]);
  const write = unique([grants.dataDir, ...logFiles]);
  for (const entry of [...net, ...read, ...write]) {
    // Deno splits a permission list on commas; such a path cannot be granted alone.
    if (entry.includes(",")) throw new RangeError(`cannot grant a path with a comma: ${entry}`);
  }
  return [
    // A missing grant fails at once, never waits on an interactive prompt.
    "--no-prompt",
    grants.dialAny === true ? "--allow-net" : `--allow-net=${net.join(",")}`,
    `--allow-read=${read.join(",")}`,
    `--allow-write=${write.join(",")}`,
    "--allow-ffi",
    `--allow-env=${SERVER_ENV_VARIABLES.join(",")}`,
  ];
}
