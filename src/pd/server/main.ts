/**
 * The PD process: `deno task pd -- [flags]` (see `--help` and `config.ts`). One member alone, or
 * one of several (`--initial-cluster` naming more than one) replicating PD's state over src/raft
 * (`replicated.ts`, `src/pd/pd_member.ts`): then the members' service listens on the peer URL,
 * only the Raft leader serves `pdpb.PD`, and the ready line adds `peer H:P`.
 *
 * Start-up: configuration → the `[security]` files, read and checked once → RocksDB at
 * `<data-dir>/db` → `PlacementDriver` over `EngineStorage` (its state under keys `pd/…`, see
 * `src/pd/storage.ts`) → gRPC (`pdpb.PD` and `basalt.PdAdmin`) on the client address and the
 * status HTTP server (`/health`, `/metrics`)
 * → the TSO tick and the scheduling round on timers → one line on standard output,
 * `basalt-pd ready: client H:P status H:P`.
 *
 * Every change of PD's state goes through one function, `PdStorage.write` (called by the core):
 * a single member writes it to `EngineStorage`, and answers requests that wrote after
 * `EngineStorage.sync()` (one fsync); a replicated member proposes it to its Raft group and
 * answers after it committed (`PdMember.barrier()`), as PD answers once etcd has committed.
 *
 * The network edge is the store's, reused: the client port is `startGrpcEdge`
 * (`src/server/grpc_server.ts`: our accept loop with `max-connections`, the connection injector,
 * message size limits, `connection-idle-timeout`, keepalive, the HTTP/2 guards) and the status
 * port is `serveStatus` (`src/server/status_server.ts`: `http1.ts` with its header timeout, or
 * HTTPS). With `[security]` both ports require a client certificate signed by the CA and, with
 * `cert-allowed-cn`, one of the names listed (UNAUTHENTICATED on gRPC, 403 on status).
 *
 * Shutdown on SIGINT/SIGTERM: /health turns 503, timers stop, streams end, gRPC drains
 * (bounded by SHUTDOWN_DRAIN_MS, then forced), the status server stops, the state is synced
 * and RocksDB closed.
 *
 * @module
 */
import { SHUTDOWN_DRAIN_MS } from "../../constants.ts";
import { RocksDbEngine } from "../../engine/rocksdb_engine.ts";
import {
  channelCredentials,
  loadTlsIdentity,
  serverCredentials,
  type TlsIdentity,
} from "../../security/tls.ts";
import { ConfigError, defaultConfig, splitAddr } from "../../server/config.ts";
import { type GrpcEdgeSettings, type GrpcServer, startGrpcEdge } from "../../server/grpc_server.ts";
import { Logger, openProcessLog } from "../../server/log.ts";
import { flatMetrics, serveStatus } from "../../server/status_server.ts";
import { TSO_TICK_INTERVAL_MS } from "../../tso/mod.ts";
import { SeededRandom } from "../../util/random.ts";
import { EngineStorage } from "../engine_storage.ts";
import { PlacementDriver } from "../placement_driver.ts";
import { pdAdminHandlers, pdAdminServiceDefinition } from "./admin.ts";
import { hostPort, loadPdConfig, type PdConfig, pdUsage } from "./config.ts";
import type { DrainableStream, PdServiceDeps } from "./dependencies.ts";
import { HeartbeatStreams } from "./heartbeat_stream.ts";
import { PdMetrics } from "./metrics.ts";
import { memberIdOf, type ReplicatedPd, startReplicated } from "./replicated.ts";
import { pdServiceDefinition, pdServiceHandlers } from "./service.ts";

/** The version GetMembers reports (the kvproto of TiKV/PD 8.x, as the store reports). */
export const PD_REPORTED_VERSION = "8.5.0";

/** RocksDB settings for PD's small state: a few MiB of cache and write buffer. */
const PD_ROCKSDB = {
  blockCacheBytes: 8 * 1024 * 1024,
  writeBufferBytes: 4 * 1024 * 1024,
  maxBackgroundJobs: 2,
  maxOpenFiles: 256,
};

export { memberIdOf };

/** The client port's edge: the store's keepalive and stream cap, PD's own cap and idle timeout. */
function pdEdgeSettings(config: PdConfig): GrpcEdgeSettings {
  const store = defaultConfig().server;
  return {
    maxConnections: config.maxConnections,
    concurrentStreams: store.grpcConcurrentStream,
    idleTimeoutMs: config.connectionIdleTimeoutMs,
    keepaliveTimeMs: store.grpcKeepaliveTimeMs,
    keepaliveTimeoutMs: store.grpcKeepaliveTimeoutMs,
  };
}

function statusHandler(
  deps: PdServiceDeps & { metrics: PdMetrics },
  parts: {
    stopping: () => boolean;
    network: () => Record<string, number>;
    /** A replicated member: its core while it serves (else null) and its Raft standing. */
    group: ReplicatedPd | null;
  },
): (request: Request) => Response {
  return (request) => {
    if (request.method !== "GET") {
      return new Response(`method not allowed: ${request.method}\n`, {
        status: 405,
        headers: { allow: "GET" },
      });
    }
    const path = new URL(request.url).pathname;
    if (path === "/health") {
      return parts.stopping()
        ? new Response("shutting down\n", { status: 503 })
        : new Response("ok\n");
    }
    if (path === "/metrics") {
      const { group } = parts;
      const text = group === null
        ? deps.metrics.render(deps.driver)
        : deps.metrics.render(group.member.driver, group.member.status());
      return new Response(text + flatMetrics(parts.network()), {
        headers: { "content-type": "text/plain; version=0.0.4" },
      });
    }
    return new Response(`not found: ${path}\n`, { status: 404 });
  };
}

/** Runs the scheduling round and the TSO tick on timers until `stop()`. */
function startTimers(
  config: PdConfig,
  parts: { deps: PdServiceDeps & { metrics: PdMetrics }; log: Logger },
): { stop(): void } {
  const { deps, log } = parts;
  const persistLater = () => {
    deps.persist?.()?.catch((error) => log.error("PD state sync failed", { error: String(error) }));
  };
  // A replicated member that does not serve has no core to tick or schedule.
  const serving = () => deps.notServing?.() == null;
  const tso = setInterval(() => {
    if (!serving()) return;
    try {
      deps.driver.tsoTick();
      persistLater();
    } catch (error) {
      // The next request retries the save itself and fails visibly if it still cannot.
      log.error("TSO window renewal failed", { error: String(error) });
    }
  }, TSO_TICK_INTERVAL_MS);
  const schedule = setInterval(() => {
    if (!serving()) return;
    const round = deps.driver.scheduleRound();
    deps.metrics.scheduleRound(round.added.length);
    for (const op of round.added) {
      log.info("operator added", { regionId: op.regionId, desc: op.desc, steps: op.steps.length });
      deps.heartbeatStreams?.push(deps, op.regionId);
    }
    for (const op of round.timedOut) log.warn("operator timed out", { regionId: op.regionId });
    for (const op of round.cancelled) {
      log.info("operator cancelled", { regionId: op.regionId, reason: op.reason });
    }
    for (const storeId of round.buried) log.info("store is tombstone", { storeId });
    persistLater();
  }, config.scheduleIntervalMs);
  return {
    stop() {
      clearInterval(tso);
      clearInterval(schedule);
    },
  };
}

/** Serves `pdpb.PD` and `basalt.PdAdmin` on the client address behind the store's edge. */
function startClientPort(
  config: PdConfig,
  parts: {
    deps: Parameters<typeof pdServiceHandlers>[0] & Parameters<typeof pdAdminHandlers>[0];
    identity: TlsIdentity | null;
    log: Logger;
  },
): GrpcServer {
  const { deps, log } = parts;
  return startGrpcEdge(config.clientAddr, {
    services: [
      { definition: pdServiceDefinition(), handlers: pdServiceHandlers(deps) },
      { definition: pdAdminServiceDefinition(), handlers: pdAdminHandlers(deps) },
    ],
    edge: pdEdgeSettings(config),
    credentials: serverCredentials(parts.identity, {
      allowedCommonNames: config.security.certAllowedCn,
      onRefused: (cn) => log.warn("refused a client certificate", { cn: cn ?? "(none)" }),
    }),
    log,
    drainStreams: () => {
      for (const stream of deps.openStreams ?? []) stream.drain();
    },
  });
}

/** Runs PD until a signal stops it. */
async function serve(config: PdConfig, log: Logger): Promise<void> {
  // Read once, before anything is opened: a bad certificate stops PD at start-up.
  const identity = loadTlsIdentity(config.security);
  Deno.mkdirSync(config.dataDir, { recursive: true });
  const engine = RocksDbEngine.open(`${config.dataDir}/db`, PD_ROCKSDB);
  let clientUrls = config.advertiseClientUrls;
  const openStreams = new Set<DrainableStream>();
  const common = {
    log,
    metrics: new PdMetrics(),
    heartbeatStreams: new HeartbeatStreams(),
    openStreams,
  };
  let storage: EngineStorage | null = null;
  let group: ReplicatedPd | null = null;
  let deps: PdServiceDeps & typeof common;
  if (config.initialCluster.size === 1) {
    const single = new EngineStorage({ engine });
    storage = single;
    const seed = crypto.getRandomValues(new Uint32Array(1))[0]!;
    const driver = PlacementDriver.open({
      storage: single,
      clock: { nowMs: () => Date.now() },
      random: new SeededRandom(seed),
      config: config.schedule,
      log,
    });
    await single.sync();
    const memberId = memberIdOf(config.name, config.peerUrls);
    deps = {
      ...common,
      driver,
      member: () => ({
        name: config.name,
        memberId,
        clientUrls,
        peerUrls: config.peerUrls,
        binaryVersion: PD_REPORTED_VERSION,
      }),
      persist: () => single.needsSync ? single.sync() : null,
    };
  } else {
    const replicated = startReplicated(config, {
      engine,
      log,
      clientUrls: () => clientUrls,
      version: PD_REPORTED_VERSION,
      edge: pdEdgeSettings(config),
      serverCredentials: serverCredentials(identity, {
        allowedCommonNames: config.security.certAllowedCn,
        onRefused: (cn) => log.warn("refused a member certificate", { cn: cn ?? "(none)" }),
      }),
      channelCredentials: channelCredentials(identity),
    });
    group = replicated;
    const { members, clusterId, notServing, leaseLapsed, persist } = replicated.deps;
    deps = {
      ...common,
      // Read only while this member serves (every handler asks `notServing` first).
      get driver() {
        return replicated.deps.driver;
      },
      member: () => members!().members.find((m) => m.name === config.name)!,
      members,
      clusterId,
      notServing,
      leaseLapsed,
      persist,
    };
  }
  const grpcServer = startClientPort(config, { deps, identity, log });
  const clientHost = splitAddr(config.clientAddr).host;
  const clientPort = grpcServer.port;
  if (splitAddr(config.clientAddr).port === 0) {
    // Port 0 picked a port: advertise the one bound where the URL named port 0.
    clientUrls = clientUrls.map((url) => url.replace(/:0(\/?)$/, `:${clientPort}$1`));
  }
  let stopping = false;
  const statusAddr = splitAddr(config.statusAddr);
  const status = await serveStatus({
    hostname: statusAddr.host,
    port: statusAddr.port,
    tls: identity === null
      ? undefined
      : { identity, allowedCommonNames: config.security.certAllowedCn },
    log,
    idleTimeoutMs: config.connectionIdleTimeoutMs,
  }, statusHandler(deps, { stopping: () => stopping, network: () => grpcServer.stats(), group }));
  const timers = startTimers(config, { deps, log });
  // The handlers are in place before the ready line, so a signal sent on reading it is handled.
  const stopSignal = new Promise<string>((resolve) => {
    for (const name of ["SIGINT", "SIGTERM"] as const) {
      Deno.addSignalListener(name, () => resolve(name));
    }
  });
  const peer = group === null
    ? ""
    : ` peer ${splitAddr(hostPort("peer-urls", config.peerUrls[0]!)).host}:${group.peerPort}`;
  console.log(
    `basalt-pd ready: client ${clientHost}:${clientPort} status ${statusAddr.host}:${status.port}${peer}`,
  );
  log.info("PD started", {
    name: config.name,
    members: config.initialCluster.size,
    clusterId: group === null ? deps.driver.clusterId : group.member.clusterId,
    bootstrapped: group === null ? deps.driver.isBootstrapped() : undefined,
    dataDir: config.dataDir,
    tls: identity !== null,
    pid: Deno.pid,
  });

  const signal = await stopSignal;
  stopping = true;
  log.info("stopping", { signal });
  timers.stop();
  await grpcServer.shutdown(SHUTDOWN_DRAIN_MS);
  await status.shutdown();
  await group?.stop();
  await storage?.sync();
  engine.close();
  log.info("stopped", {});
}

async function main(args: string[]): Promise<number> {
  let config: PdConfig;
  try {
    const commandLine = loadPdConfig(args);
    if (commandLine.help) {
      console.log(pdUsage());
      return 0;
    }
    config = commandLine.config;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(`basalt-pd: ${error.message}\n(see --help)`);
    return 2;
  }
  const log = openProcessLog("basalt-pd", { level: config.log.level, file: config.log.file });
  if (log === null) return 2;
  try {
    await serve(config, log);
    return 0;
  } catch (error) {
    if (!(error instanceof Error)) throw error;
    log.error("cannot serve", { error: error.message });
    console.error(`basalt-pd: ${error.message}`);
    return 1;
  } finally {
    log.close();
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
