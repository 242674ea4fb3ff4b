/**
 * The store process: `deno task serve -- [flags]` (see `--help`).
 *
 * Start-up: configuration → data directory (identity checked) → RocksDB at `<data-dir>/db` →
 * region-group workers attached to it → gRPC and status servers → one line on standard output, `basalt ready: grpc H:P status H:P`.
 * Shutdown on SIGINT/SIGTERM: /health turns 503, gRPC stops accepting and ends streams, in-flight
 * requests drain (bounded by SHUTDOWN_DRAIN_MS), the workers detach, then the engine flushes and
 * closes.
 */
import { SHUTDOWN_DRAIN_MS } from "../constants.ts";
import { RocksDbEngine } from "../engine/rocksdb_engine.ts";
import { ConfigError, loadConfig, type ServerConfig, splitAddr, usage } from "./config.ts";
import { DataDirError, prepareDataDir } from "./data_dir.ts";
import { startGrpcServer } from "./grpc_server.ts";
import { Logger } from "./log.ts";
import { RequestMetrics } from "./metrics.ts";
import {
  type DrainableStream,
  openStandalonePd,
  pdHandlers,
  pdServiceDefinition,
  standaloneView,
} from "./pd/mod.ts";
import { RegionWorkers } from "./region_workers.ts";
import { STANDALONE, standaloneRegion } from "./region.ts";
import { startStatusServer } from "./status_server.ts";

function openEngine(config: ServerConfig): RocksDbEngine {
  const { dbPath } = prepareDataDir(config.storage.dataDir, {
    storeId: Number(STANDALONE.storeId),
    now: new Date(),
  });
  return RocksDbEngine.open(dbPath, {
    blockCacheBytes: config.rocksdb.blockCacheSizeBytes,
    writeBufferBytes: config.rocksdb.writeBufferSizeBytes,
    maxBackgroundJobs: config.rocksdb.maxBackgroundJobs,
    compression: config.rocksdb.compression,
  });
}

/** Runs a store until a signal stops it. */
async function serve(config: ServerConfig, log: Logger): Promise<void> {
  const engine = openEngine(config);
  // The embedded PD face: TSO, ids, GC safe point, cluster identity, under <data-dir>/pd.
  const pd = openStandalonePd(config.storage.dataDir, { log });
  const region = standaloneRegion();
  const regions = new Map([[region.id, region]]);
  const metrics = new RequestMetrics();
  const workers = await RegionWorkers.start({
    count: config.raftstore.storePoolSize,
    engine,
    syncLog: config.storage.syncLog,
    latestTs: () => pd.oracle.next().last,
    logLevel: config.log.level,
    ttlCheckPollIntervalMs: config.storage.ttlCheckPollIntervalMs,
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
    extraServices: [{
      definition: pdServiceDefinition(),
      handlers: pdHandlers({ pd, log, view: () => view, openStreams: pdStreams }),
    }],
  });
  const statusServer = await startStatusServer(
    { hostname: statusAddr.host, port: statusAddr.port },
    { config, metrics, engine, regions, stopping: () => stopping },
  );
  view = standaloneView({
    addr: `${grpcHost}:${grpcServer.port}`,
    statusAddr: `${statusAddr.host}:${statusServer.port}`,
    startTimestampSec: BigInt(Math.floor(Date.now() / 1000)),
  });
  let gcSafePoint = pd.safePoint.value;
  const gcPoll = config.gc.pollSafePointIntervalMs === 0 ? undefined : setInterval(() => {
    if (pd.safePoint.value > gcSafePoint) workers.gc(gcSafePoint = pd.safePoint.value);
  }, config.gc.pollSafePointIntervalMs);
  console.log(
    `basalt ready: grpc ${grpcHost}:${grpcServer.port} status ${statusAddr.host}:${statusServer.port}`,
  );
  log.info("store started", { dataDir: config.storage.dataDir, pid: Deno.pid });

  const signal = await new Promise<string>((resolve) => {
    for (const name of ["SIGINT", "SIGTERM"] as const) {
      Deno.addSignalListener(name, () => resolve(name));
    }
  });
  stopping = true;
  log.info("stopping", { signal, inFlight: metrics.inFlight });
  clearInterval(gcPoll);
  for (const stream of pdStreams) stream.drain();
  await grpcServer.shutdown(SHUTDOWN_DRAIN_MS);
  const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
  if (!await metrics.drained(SHUTDOWN_DRAIN_MS, sleep)) {
    log.warn("requests still in flight at shutdown", { inFlight: metrics.inFlight });
  }
  await statusServer.shutdown();
  await workers.stop();
  pd.close();
  engine.flush();
  engine.close();
  log.info("stopped");
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
  const log = new Logger({ level: config.log.level, file: config.log.file });
  try {
    await serve(config, log);
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
