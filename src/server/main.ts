/**
 * The store process: `deno task serve -- [flags]` (see `--help`).
 *
 * Start-up: configuration → data directory (identity checked) → RocksDB at `<data-dir>/db` →
 * region-group workers attached to it → gRPC and status servers → one line on standard output, `basalt ready: grpc H:P status H:P`.
 *
 * Two modes. Standalone (no `--pd`): store 1 with one region over every key, and PD's logic
 * in-process, served as `pdpb.PD` beside `tikvpb.Tikv`. Clustered (`--pd ADDR[,ADDR…]`): a
 * client of that PD (`cluster_join.ts`) — its store id, cluster id and regions come from PD and
 * the data directory, it registers and heartbeats, and it does not serve `pdpb.PD`.
 * Shutdown on SIGINT/SIGTERM (`shutdown.ts`): /health turns 503, gRPC stops accepting and ends
 * streams, in-flight requests drain (bounded by SHUTDOWN_DRAIN_MS), the workers detach (bounded
 * by WORKER_STOP_TIMEOUT_MS), then the engine flushes and closes — or, when a worker may still
 * hold its handles, is left to its write-ahead log and the process ends without closing it.
 */
import { allocateFile, availableBytes } from "../../ffi/disk_space.ts";
import { exitWithoutDestructors } from "../../ffi/exit.ts";
import {
  DISK_CHECK_INTERVAL_MS,
  RESERVE_SPACE_WRITE_BUFFERS,
  SHUTDOWN_DRAIN_MS,
} from "../constants.ts";
import { RocksDbEngine } from "../engine/rocksdb_engine.ts";
import { channelCredentials, loadTlsIdentity, serverCredentials } from "../security/tls.ts";
import { RaftClient, raftService } from "./raft_transport/mod.ts";
import type { RaftClientStats } from "./raft_transport/client.ts";
import { SnapshotDir } from "./raft_transport/snapshot_files.ts";
import { SnapshotRoutingTransport, SnapshotSender } from "./raft_transport/snapshot_sender.ts";
import { snapshotService } from "./raft_transport/snapshot_service.ts";
import type { RaftEnvelope } from "../raftstore/transport.ts";
import { ConfigError, loadConfig, type ServerConfig, splitAddr, usage } from "./config.ts";
import { type ClusterMember, joinCluster } from "./cluster_join.ts";
import { DataDirError, prepareDataDir } from "./data_dir.ts";
import { DiskGuard } from "./disk_guard.ts";
import { grpcEdgeSettings, startGrpcServer } from "./grpc_server.ts";
import { descriptorBudget } from "./listener.ts";
import { raiseOpenFileLimit } from "../../ffi/rlimit.ts";
import { Logger, openProcessLog } from "./log.ts";
import { RequestMetrics } from "./metrics.ts";
import {
  type DrainableStream,
  openStandalonePd,
  pdHandlers,
  pdServiceDefinition,
  standaloneView,
} from "./pd/mod.ts";
import { poolOptions, RegionWorkers } from "./region_workers.ts";
import { bootstrapRegions, recordedRegions } from "./store_regions.ts";
import { STANDALONE, standaloneRegion } from "./region.ts";
import { regionToProto as metaToProto } from "../raftstore/local_state.ts";
import { shutDown, type ShutdownOutcome } from "./shutdown.ts";
import { startStatusServer } from "./status_server.ts";
import {
  followRegionsInEmbeddedPd,
  openStoreEngine,
  prepareSnapshotDir,
  raftstoreSettings,
} from "./store_parts.ts";
import { TxnKV } from "../client/mod.ts";
import { RedisGateway } from "../gateway/redis/mod.ts";
import { Basalt } from "../embedded/basalt.ts";
import { HttpGateway } from "../gateway/http/mod.ts";

function standaloneDbPath(config: ServerConfig): string {
  return prepareDataDir(config.storage.dataDir, {
    storeId: Number(STANDALONE.storeId),
    now: new Date(),
  }).dbPath;
}

/** Watches whether the engine can write (`/health`), with a reserve file in the data dir. */
function startDiskGuard(
  config: ServerConfig,
  parts: { engine: RocksDbEngine; log: Logger },
): DiskGuard {
  const reserveBytes = config.storage.reserveSpaceBytes ??
    RESERVE_SPACE_WRITE_BUFFERS * config.rocksdb.writeBufferSizeBytes;
  const guard = new DiskGuard({
    ...parts,
    dataDir: config.storage.dataDir,
    reserveBytes,
    disk: { availableBytes, allocateFile },
  });
  if (guard.ensureReserve() === "no-room") {
    parts.log.warn("too little free disk space to reserve any; a full disk needs freeing by hand", {
      reserveBytes,
      availableBytes: availableBytes(config.storage.dataDir) ?? "unknown",
    });
  }
  guard.check();
  guard.start(DISK_CHECK_INTERVAL_MS);
  return guard;
}

/** Runs a store until a signal stops it; says whether the database was closed. */
async function serve(config: ServerConfig, log: Logger): Promise<ShutdownOutcome> {
  // Read once, before anything is opened: a bad certificate stops the store at start-up.
  const identity = loadTlsIdentity(config.security);
  const allowedCommonNames = config.security.certAllowedCn;
  // Descriptors: the soft limit raised to the hard one, then shared out so that connections can
  // never take the ones RocksDB needs (listener.ts).
  const fileLimit = raiseOpenFileLimit();
  const budget = descriptorBudget(fileLimit.soft, config.server.maxConnections);
  log.info("open-file limit", { ...fileLimit, problem: fileLimit.problem ?? undefined, ...budget });
  if (fileLimit.problem !== null) {
    log.warn("cannot raise the open-file limit", { problem: fileLimit.problem });
  }
  // Clustered: joined before the engine opens (the data directory's identity comes from PD).
  const member: ClusterMember | null = config.pd.endpoints.length === 0
    ? null
    : await joinCluster(config, { log, tls: identity });
  const engine = openStoreEngine(
    config,
    member?.dbPath ?? standaloneDbPath(config),
    budget.rocksdbMaxOpenFiles,
  );
  const diskGuard = startDiskGuard(config, { engine, log });
  // Standalone only: the embedded PD face — TSO, ids, GC safe point, cluster identity, under
  // <data-dir>/pd.
  const pd = member === null ? openStandalonePd(config.storage.dataDir, { log }) : null;
  const metrics = new RequestMetrics();
  // The engine records the regions; a new store (or one whose data predates the log) records
  // its first: the standalone region, or the cluster's first region if this store made it.
  const storeId = member?.storeId ?? STANDALONE.storeId;
  const bootstrapped = await bootstrapRegions(engine, member?.regions ?? [standaloneRegion()]);
  if (bootstrapped > 0) log.info("recorded the store's first regions", { count: bootstrapped });
  const snapshotDir = prepareSnapshotDir(config.storage.dataDir, engine);
  // Clustered: Raft messages to other stores over BatchRaft streams, addresses from PD; a
  // snapshot's files on a Snapshot stream of their own.
  const raftClient = member === null ? null : new RaftClient({
    resolve: (id) => member.storeAddress(id),
    unreachable: (id) => log.debug("store unreachable", { storeId: String(id) }),
    credentials: channelCredentials(identity),
    dialRewrite: testDialRewrite(log),
    log,
  });
  const snapshotSender = member === null ? null : new SnapshotSender({
    dir: new SnapshotDir(snapshotDir),
    resolve: (id) => member.storeAddress(id),
    credentials: channelCredentials(identity),
    log,
    onResult: (envelope, problem) => {
      const fields = {
        region: String(envelope.regionId),
        toStore: String(envelope.toPeer.storeId),
        index: String(envelope.message.snapshot?.metadata.index ?? 0n),
      };
      if (problem === null) log.info("region snapshot sent as SST files", fields);
      else log.warn("region snapshot not sent", { ...fields, problem });
    },
  });
  const outbound = raftClient === null
    ? null
    : new SnapshotRoutingTransport(raftClient, snapshotSender!);
  const workers = await RegionWorkers.start({
    ...poolOptions(config.raftstore.storePoolSize),
    engine,
    syncLog: config.storage.syncLog,
    latestTs: pd !== null ? () => pd.oracle.next().last : member!.latestTs,
    logLevel: config.log.level,
    ttlCheckPollIntervalMs: config.storage.ttlCheckPollIntervalMs,
    log,
    regions: recordedRegions(engine, storeId),
    storeId,
    raftstore: raftstoreSettings(config),
    fetchTs: member === null ? undefined : () => member.fetchTimestamp(),
    snapshotDir,
    // Encoded messages straight to the RaftClient; SST-form snapshots to their own streams.
    sendRaft: outbound === null ? undefined : {
      sendEncoded: (storeId, bytes, about) => raftClient!.sendEncoded(storeId, bytes, about),
      send: (envelope) => outbound.send(envelope),
    },
    // Split ids from PD, or from the embedded PD (which then hears of the regions made).
    askSplitIds: member !== null
      ? (region, count) => member.askBatchSplit(region, count)
      : (region, count) => Promise.resolve(pd!.askBatchSplit(metaToProto(region), count)),
    onSplit: member !== null ? (regions) => member.reportBatchSplit(regions) : undefined,
  });
  if (pd !== null) followRegionsInEmbeddedPd(workers, pd, log);
  // Clustered only: a standalone store has no peers, and must not create replicas for messages.
  const raft = member === null
    ? null
    : raftService({ deliver: (messages) => workers.deliverRaft(messages), log });
  const snapshots = member === null ? null : snapshotService({
    dir: new SnapshotDir(snapshotDir),
    deliver: (envelopes: RaftEnvelope[]) => workers.deliverRaftEnvelopes(envelopes),
    log,
  });
  let stopping = false;
  const grpcHost = splitAddr(config.server.addr).host;
  const statusAddr = splitAddr(config.server.statusAddr);
  // Filled in once both servers are bound (port 0 picks a port): PD answers with them.
  let view = standaloneView({ addr: config.server.addr, statusAddr: config.server.statusAddr });
  const pdStreams = new Set<DrainableStream>();
  const grpcServer = await startGrpcServer(config.server.addr, {
    workers,
    metrics,
    log,
    slowRequestThresholdMs: config.log.slowRequestThresholdMs,
    edge: grpcEdgeSettings(config.server, budget.grpcMaxConnections),
    credentials: serverCredentials(identity, {
      allowedCommonNames,
      onRefused: (cn) => log.warn("refused a client certificate", { cn: cn ?? "(none)" }),
    }),
    // A clustered store is PD's client, never a PD: it serves tikvpb.Tikv (with BatchRaft).
    extraServices: pd === null ? [raft!, snapshots!] : [{
      definition: pdServiceDefinition(),
      handlers: pdHandlers({ pd, log, view: () => view, openStreams: pdStreams }),
    }],
  });
  const statusServer = await startStatusServer(
    {
      hostname: statusAddr.host,
      port: statusAddr.port,
      tls: identity === null ? undefined : { identity, allowedCommonNames },
      log,
      idleTimeoutMs: config.server.connectionIdleTimeoutMs,
    },
    {
      config,
      metrics,
      engine,
      regions: () => workers.regions(),
      stopping: () => stopping,
      cannotWrite: () => diskGuard.cannotWrite(),
      network: () => grpcServer.stats(),
      raftstore: () => ({
        ...workers.raftstoreMetrics(),
        ...(raftClient === null ? {} : raftClientMetrics(raftClient.stats)),
      }),
    },
  );
  view = standaloneView({
    addr: `${grpcHost}:${grpcServer.port}`,
    statusAddr: `${statusAddr.host}:${statusServer.port}`,
    startTimestampSec: BigInt(Math.floor(Date.now() / 1000)),
  });
  // The GC safe point: the embedded PD's (standalone) or PD's (clustered, polled); each worker
  // collects garbage in the regions it leads, through their logs.
  let gcSafePoint = pd?.safePoint.value ?? 0n;
  let gcPolling = false;
  const pollGcSafePoint = async () => {
    if (gcPolling) return;
    gcPolling = true;
    try {
      const safePoint = pd !== null ? pd.safePoint.value : await member!.gcSafePoint();
      if (safePoint > gcSafePoint) workers.gc(gcSafePoint = safePoint);
    } catch (error) {
      log.warn("cannot read the GC safe point from PD", { error: (error as Error).message });
    } finally {
      gcPolling = false;
    }
  };
  const gcPoll = config.gc.pollSafePointIntervalMs === 0
    ? undefined
    : setInterval(() => void pollGcSafePoint(), config.gc.pollSafePointIntervalMs);
  if (member !== null) {
    await member.start(
      {
        addr: config.server.advertiseAddr || `${grpcHost}:${grpcServer.port}`,
        statusAddr: config.server.advertiseStatusAddr || `${statusAddr.host}:${statusServer.port}`,
      },
      () => workers.regions().map((served) => served.region),
      (regionId, operator) => {
        workers.operator(regionId, operator);
      },
      { regionHeartbeatIntervalMs: config.raftstore.pdHeartbeatTickIntervalMs },
    );
    workers.onRegionsChanged((changed) => member.heartbeatRegions(changed));
  }
  // `--redis-addr`: the Redis gateway, a client of this store (or of PD, when clustered).
  const redis = config.server.redisAddr === "" ? null : await startRedisGateway(config, {
    storeAddr: `${grpcHost}:${grpcServer.port}`,
    log,
  });
  // `--http-addr`: the HTTP API, likewise a client of this store (or of PD, when clustered).
  const http = config.server.httpAddr === "" ? null : await startHttpGateway(config, {
    storeAddr: `${grpcHost}:${grpcServer.port}`,
    log,
  });
  // The handlers are in place before the ready line: a signal sent as soon as it is read must
  // find them (without one, SIGTERM's default action ends the process with 143).
  const stopSignal = new Promise<string>((resolve) => {
    for (const name of ["SIGINT", "SIGTERM"] as const) {
      Deno.addSignalListener(name, () => resolve(name));
    }
  });
  console.log(
    `basalt ready: grpc ${grpcHost}:${grpcServer.port} status ${statusAddr.host}:${statusServer.port}` +
      (redis === null ? "" : ` redis ${redis.addr}`) + (http === null ? "" : ` http ${http.addr}`),
  );
  log.info("store started", { dataDir: config.storage.dataDir, pid: Deno.pid });

  const signal = await stopSignal;
  stopping = true;
  log.info("stopping", { signal, inFlight: metrics.inFlight });
  clearInterval(gcPoll);
  await redis?.close();
  await http?.close();
  member?.stop();
  diskGuard.stop();
  const outcome = await shutDown({
    log,
    drain: async () => {
      // One deadline for both: the gRPC server's graceful end, then the requests in flight.
      const deadline = Date.now() + SHUTDOWN_DRAIN_MS;
      for (const stream of pdStreams) stream.drain();
      raft?.drain();
      snapshots?.drain();
      await raftClient?.close();
      await snapshotSender?.close();
      await grpcServer.shutdown(SHUTDOWN_DRAIN_MS);
      const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
      return await metrics.drained(Math.max(0, deadline - Date.now()), sleep);
    },
    stopStatusServer: () => statusServer.shutdown(),
    stopWorkers: () => workers.stop(),
    closePd: () => pd?.close(),
    engine,
  });
  log.info("stopped", { engine: outcome });
  return outcome;
}

/** Starts the Redis gateway of `--redis-addr` over the TxnKV client of this store or its PD. */
async function startRedisGateway(
  config: ServerConfig,
  parts: { storeAddr: string; log: Logger },
): Promise<RedisGateway> {
  const kv = config.pd.endpoints.length === 0
    ? await TxnKV.connect({ host: parts.storeAddr })
    : await TxnKV.connect({ pd: config.pd.endpoints });
  const { host, port } = splitAddr(config.server.redisAddr);
  const gateway = await RedisGateway.start({
    hostname: host,
    port,
    kv,
    ownsClient: true,
    onError: (error) => parts.log.warn("redis gateway", { error: String(error) }),
  });
  parts.log.info("redis gateway started", { addr: gateway.addr });
  return gateway;
}

/** Starts the HTTP API of `--http-addr` over a `Basalt` client of this store or its PD. */
async function startHttpGateway(
  config: ServerConfig,
  parts: { storeAddr: string; log: Logger },
): Promise<HttpGateway> {
  const db = config.pd.endpoints.length === 0
    ? await Basalt.connect({ host: parts.storeAddr })
    : await Basalt.connect({ pd: config.pd.endpoints });
  const { host, port } = splitAddr(config.server.httpAddr);
  const gateway = await HttpGateway.start({
    hostname: host,
    port,
    db,
    ownsDb: true,
    onError: (error) => parts.log.warn("http gateway", { error: String(error) }),
  });
  parts.log.info("http gateway started", { addr: gateway.addr });
  return gateway;
}

async function main(args: string[]): Promise<number> {
  let config: ServerConfig;
  try {
    const commandLine = loadConfig(args);
    if (commandLine.help) {
      console.log(usage());
      return 0;
    }
    config = commandLine.config;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(`basalt: ${error.message}\n(see --help)`);
    return 2;
  }
  const log = openProcessLog("basalt", { level: config.log.level, file: config.log.file });
  if (log === null) return 2;
  try {
    const outcome = await serve(config, log);
    if (outcome !== "closed") {
      // A worker (or a stuck step) may still be inside RocksDB: end before librocksdb's static
      // destructors run under it (see ffi/exit.ts). The log is written synchronously. An
      // overrun is a failed shutdown, though the WAL keeps every acknowledged write.
      log.close();
      exitWithoutDestructors(outcome === "overrun" ? 1 : 0);
    }
    return 0;
  } catch (error) {
    if (!(error instanceof DataDirError) && !(error instanceof Error)) throw error;
    log.error("cannot serve", { error: error.message });
    console.error(`basalt: ${error.message}`);
    return 1;
  } finally {
    log.close();
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));

/**
 * Tests only: `BASALT_TEST_DIAL_MAP_FILE` names a JSON file `{"<address>": "<address to dial>"}`
 * read at every dial to another store, so that an end-to-end test routes each link through a
 * proxy it can cut (tests/e2e/cluster.ts). Absent (always, outside tests): no rewrite.
 */
function testDialRewrite(log: Logger): ((addr: string) => string) | undefined {
  const variable = "BASALT_TEST_DIAL_MAP_FILE";
  if (Deno.permissions.querySync({ name: "env", variable }).state !== "granted") return undefined;
  const path = Deno.env.get(variable);
  if (path === undefined || path === "") return undefined;
  log.warn("store-to-store dials follow a test dial map", { path });
  return (addr) => {
    try {
      const map = JSON.parse(Deno.readTextFileSync(path)) as Record<string, string>;
      return typeof map[addr] === "string" ? map[addr] : addr;
    } catch {
      return addr;
    }
  };
}

/** The Raft transport's counters, named for /metrics (every one counts since the start). */
function raftClientMetrics(stats: RaftClientStats): Record<string, number> {
  return Object.fromEntries(
    Object.entries(stats).map(([name, value]) => [
      `raft_client_${name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}_total`,
      value,
    ]),
  );
}
