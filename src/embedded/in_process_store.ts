/**
 * A standalone store inside the caller's process: the same parts `src/server/main.ts` starts for
 * a standalone store, without its network edge — the data directory (identity checked), RocksDB
 * at `<data-dir>/db`, the embedded PD under `<data-dir>/pd` (TSO, ids, regions), and the
 * region-group workers (Raft log, apply, MVCC, split checks) attached to the engine. The client
 * reaches them through `InProcessLink` (the command layer the gRPC handlers call), a resolver
 * over the embedded PD's region tree and a TSO over its oracle: no socket is opened.
 *
 * So the directory is a standalone store's, byte for byte: `deno task serve -- --data-dir D`
 * serves it afterwards (and a store started with `--pd` adopts it into a cluster, see
 * src/server/standalone_adoption.ts). RocksDB's lock file keeps two openers out at once.
 *
 * Left out, against the server: the gRPC, status and PD services (nothing listens), the disk
 * guard and its reserve file, and the GC safe-point poll (a standalone store's safe point moves
 * only through pdpb.UpdateGCSafePoint, which no one can call here).
 *
 * Close: new requests are refused, those in flight drain (bounded), the workers detach
 * (bounded), the PD's timer stops, then the engine flushes and closes — `shutDown`'s order
 * (src/server/shutdown.ts); when a worker may still hold the engine it is left to its WAL.
 */
import { openFileLimit } from "../../ffi/rlimit.ts";
import { SHUTDOWN_DRAIN_MS } from "../constants.ts";
import {
  CachedRegionResolver,
  PdError,
  type RegionInfo,
  type RegionResolver,
  type RegionSource,
  type TimestampOracle,
} from "../client/mod.ts";
import { RocksDbEngine } from "../engine/rocksdb_engine.ts";
import { PdError as PdCoreError } from "../pd/errors.ts";
import type { RegionInfo as PdRegionInfo } from "../pd/types.ts";
import { regionToProto as metaToProto } from "../raftstore/local_state.ts";
import { defaultConfig, type LogLevel } from "../server/config.ts";
import { prepareDataDir } from "../server/data_dir.ts";
import { descriptorBudget } from "../server/listener.ts";
import { Logger } from "../server/log.ts";
import { openStandalonePd, type StandalonePd } from "../server/pd/mod.ts";
import { STANDALONE, standaloneRegion } from "../server/region.ts";
import { poolOptions, RegionWorkers } from "../server/region_workers.ts";
import { shutDown, type ShutdownOutcome } from "../server/shutdown.ts";
import { bootstrapRegions, recordedRegions } from "../server/store_regions.ts";
import {
  followRegionsInEmbeddedPd,
  openStoreEngine,
  prepareSnapshotDir,
  raftstoreSettings,
} from "../server/store_parts.ts";
import { compareBytes } from "../util/bytes.ts";
import { InProcessLink } from "./in_process_link.ts";

/** The address the client's region cache knows the in-process store by (never dialled). */
export const IN_PROCESS_ADDRESS = "in-process";

/** How `InProcessStore.open` runs the store. Every field but `dataDir` has a default. */
export interface InProcessStoreOptions {
  /** The data directory: created on first use; a standalone store's afterwards. */
  dataDir: string;
  /** Region-group worker threads, 0: on this thread (default: `[raftstore] store-pool-size`'s). */
  workers?: number;
  /** Fsync the Raft log before acknowledging a write (default true). */
  syncLog?: boolean;
  /** The store's log level (default "warn"). */
  logLevel?: LogLevel;
  /** The store's log file (default: standard error). */
  logFile?: string;
  /** Deadline of one request to the store, ms. */
  requestTimeoutMs: number;
}

/** The embedded PD as the client's region source. */
class EmbeddedPdSource implements RegionSource {
  constructor(readonly pd: StandalonePd) {}

  regionByKey(key: Uint8Array): Promise<RegionInfo | null> {
    return Promise.resolve(infoOf(this.pd.driver.getRegion(key)));
  }

  regionBeforeKey(key: Uint8Array): Promise<RegionInfo | null> {
    if (key.length === 0) return Promise.resolve(this.#lastRegion());
    const containing = infoOf(this.pd.driver.getRegion(key));
    if (containing !== null && compareBytes(containing.startKey, key) < 0) {
      return Promise.resolve(containing);
    }
    return Promise.resolve(infoOf(this.pd.driver.getPrevRegion(key)));
  }

  regionById(regionId: bigint): Promise<RegionInfo | null> {
    return Promise.resolve(infoOf(this.pd.driver.getRegionById(regionId)));
  }

  storeAddress(storeId: bigint): Promise<string> {
    if (storeId !== STANDALONE.storeId) {
      return Promise.reject(new PdError("UNKNOWN", `in-process store: no store ${storeId}`));
    }
    return Promise.resolve(IN_PROCESS_ADDRESS);
  }

  close(): void {}

  #lastRegion(): RegionInfo | null {
    const all = this.pd.driver.scanRegions({
      startKey: new Uint8Array(0),
      endKey: new Uint8Array(0),
      limit: 0,
    });
    if (all instanceof PdCoreError) throw new PdError(all.code, all.message);
    const last = all[all.length - 1];
    return last === undefined || last.meta.endKey.length > 0 ? null : infoOf(last);
  }
}

/** The client's view of a region of the embedded PD (null: none, or the PD refused). */
function infoOf(answer: PdRegionInfo | null | PdCoreError): RegionInfo | null {
  if (answer === null) return null;
  if (answer instanceof PdCoreError) throw new PdError(answer.code, answer.message);
  const peers = answer.meta.peers.map((peer) => ({ id: peer.id, storeId: peer.storeId }));
  const leader = peers.find((peer) => peer.id === answer.leader?.id) ??
    peers.find((peer) => peer.storeId === STANDALONE.storeId) ?? peers[0];
  if (leader === undefined) return null;
  return {
    id: answer.meta.id,
    startKey: answer.meta.startKey,
    endKey: answer.meta.endKey,
    epoch: { confVer: answer.meta.regionEpoch.confVer, version: answer.meta.regionEpoch.version },
    peers,
    leader,
  };
}

/** A running in-process standalone store. */
export class InProcessStore {
  readonly link: InProcessLink;
  readonly resolver: RegionResolver;
  readonly tso: TimestampOracle;
  readonly #engine: RocksDbEngine;
  readonly #pd: StandalonePd;
  readonly #workers: RegionWorkers;
  readonly #log: Logger;
  #closing: Promise<ShutdownOutcome> | null = null;

  private constructor(
    parts: { engine: RocksDbEngine; pd: StandalonePd; workers: RegionWorkers; log: Logger },
    requestTimeoutMs: number,
  ) {
    this.#engine = parts.engine;
    this.#pd = parts.pd;
    this.#workers = parts.workers;
    this.#log = parts.log;
    this.link = new InProcessLink(IN_PROCESS_ADDRESS, {
      workers: parts.workers,
      defaultTimeoutMs: requestTimeoutMs,
    });
    this.resolver = new CachedRegionResolver(new EmbeddedPdSource(parts.pd));
    const pd = parts.pd;
    this.tso = {
      getTimestamp: () => {
        try {
          return Promise.resolve(pd.oracle.next().last);
        } catch (error) {
          return Promise.reject(new PdError("UNKNOWN", `TSO: ${(error as Error).message}`));
        }
      },
      close: () => {},
    };
  }

  /** Opens (creating on first use) the store of `options.dataDir` and starts its workers. */
  static async open(options: InProcessStoreOptions): Promise<InProcessStore> {
    const config = defaultConfig();
    const log = new Logger({ level: options.logLevel ?? "warn", file: options.logFile ?? "" });
    const { dbPath } = prepareDataDir(options.dataDir, {
      storeId: Number(STANDALONE.storeId),
      now: new Date(),
    });
    // The caller's process keeps its open-file limit: RocksDB takes the store's share of it.
    const engine = openStoreEngine(
      config,
      dbPath,
      descriptorBudget(openFileLimit().soft, 1).rocksdbMaxOpenFiles,
    );
    let pd: StandalonePd | null = null;
    try {
      pd = openStandalonePd(options.dataDir, { log });
      await bootstrapRegions(engine, [standaloneRegion()]);
      const snapshotDir = prepareSnapshotDir(options.dataDir, engine);
      const workers = await startWorkers({ options, config, engine, pd, log, snapshotDir });
      return new InProcessStore({ engine, pd, workers, log }, options.requestTimeoutMs);
    } catch (error) {
      pd?.close();
      // Nothing attached yet (the workers' start failed or never ran): the engine may close.
      if (engine.attachedCount === 0) engine.close();
      throw error;
    }
  }

  /** Stops the store (once; later calls get the same outcome). */
  close(): Promise<ShutdownOutcome> {
    this.#closing ??= this.#stop();
    return this.#closing;
  }

  async #stop(): Promise<ShutdownOutcome> {
    this.link.close();
    return await shutDown({
      log: this.#log,
      drain: () => this.link.drained(SHUTDOWN_DRAIN_MS),
      stopStatusServer: () => Promise.resolve(),
      stopWorkers: () => this.#workers.stop(),
      closePd: () => this.#pd.close(),
      engine: this.#engine,
    }).finally(() => this.#log.close());
  }
}

/** The region workers of a standalone store over `parts.engine`, as `src/server/main.ts` starts them. */
async function startWorkers(parts: {
  options: InProcessStoreOptions;
  config: ReturnType<typeof defaultConfig>;
  engine: RocksDbEngine;
  pd: StandalonePd;
  log: Logger;
  snapshotDir: string;
}): Promise<RegionWorkers> {
  const { options, config, engine, pd, log } = parts;
  const workers = await RegionWorkers.start({
    ...poolOptions(options.workers ?? config.raftstore.storePoolSize),
    engine,
    syncLog: options.syncLog ?? config.storage.syncLog,
    latestTs: () => pd.oracle.next().last,
    logLevel: options.logLevel ?? "warn",
    ttlCheckPollIntervalMs: config.storage.ttlCheckPollIntervalMs,
    log,
    regions: recordedRegions(engine, STANDALONE.storeId),
    storeId: STANDALONE.storeId,
    raftstore: raftstoreSettings(config),
    snapshotDir: parts.snapshotDir,
    askSplitIds: (region, count) => Promise.resolve(pd.askBatchSplit(metaToProto(region), count)),
  });
  followRegionsInEmbeddedPd(workers, pd, log);
  return workers;
}
