/**
 * Parts a store is assembled from, shared by the server (`main.ts`) and the store embedded in a
 * program (`src/embedded/in_process_store.ts`), so that both open the same engine, run the same
 * raftstore settings and keep the embedded PD following their regions.
 *
 * @module
 */
import { RocksDbEngine } from "../engine/rocksdb_engine.ts";
import { type ServerConfig, splitThresholds } from "./config.ts";
import type { Logger } from "./log.ts";
import type { StandalonePd } from "./pd/mod.ts";
import { SnapshotDir } from "./raft_transport/snapshot_files.ts";
import { regionToProto } from "./region.ts";
import type { RegionWorkers } from "./region_workers.ts";
import type { RaftstoreSettings } from "./worker_raftstore.ts";
import { applyingRegionIds } from "./store_regions.ts";

/** RocksDB at `dbPath` with the `[rocksdb]` settings of `config`. */
export function openStoreEngine(
  config: Pick<ServerConfig, "rocksdb">,
  dbPath: string,
  maxOpenFiles: number,
): RocksDbEngine {
  return RocksDbEngine.open(dbPath, {
    blockCacheBytes: config.rocksdb.blockCacheSizeBytes,
    writeBufferBytes: config.rocksdb.writeBufferSizeBytes,
    maxBackgroundJobs: config.rocksdb.maxBackgroundJobs,
    compression: config.rocksdb.compression,
    maxOpenFiles,
  });
}

/** The region workers' raftstore settings from `[raftstore]` and `[coprocessor]`. */
export function raftstoreSettings(
  config: Pick<ServerConfig, "raftstore" | "coprocessor">,
): RaftstoreSettings {
  return {
    tickMs: config.raftstore.raftBaseTickIntervalMs,
    heartbeatTicks: config.raftstore.raftHeartbeatTicks,
    electionTimeoutTicks: config.raftstore.raftElectionTimeoutTicks,
    raftLogGcCountLimit: config.raftstore.raftLogGcCountLimit,
    raftLogGcSizeLimitBytes: config.raftstore.raftLogGcSizeLimitBytes,
    splitCheckIntervalMs: config.raftstore.splitRegionCheckTickIntervalMs,
    hibernateRegions: config.raftstore.hibernateRegions,
    split: splitThresholds(config.coprocessor),
  };
}

/**
 * `<data-dir>/snap`, where region snapshots are kept as SST files, cleared of what a crash left
 * but for the files of an install it interrupted (the first round finishes that install).
 */
export function prepareSnapshotDir(dataDir: string, engine: RocksDbEngine): string {
  const snapshotDir = `${dataDir}/snap`;
  const applying = applyingRegionIds(engine);
  new SnapshotDir(snapshotDir).cleanAtStart((key) => applying.has(key.regionId));
  return snapshotDir;
}

/** The embedded PD follows the regions (a split makes new ones), as PD follows a cluster's. */
export function followRegionsInEmbeddedPd(
  workers: RegionWorkers,
  pd: StandalonePd,
  log: Logger,
): void {
  workers.onRegionsChanged((changed) => {
    const refused = pd.heartbeatRegions(
      changed.filter((region) => region.leading ?? true).map((region) => ({
        region: regionToProto(region),
        term: region.term ?? 1n,
      })),
    );
    for (const reason of refused) {
      log.warn("the embedded PD refused a region heartbeat", { reason });
    }
  });
}
