/**
 * What commands run against inside one region-group worker: the regions it serves and the
 * stores of each API (raw and transactional; both over the same engine). Built once per worker (`region_worker.ts`) over the shared engine.
 */
import type { RawStore } from "./raw/store.ts";
import type { Failure } from "./failure.ts";
import type { Region } from "./region.ts";
import type { TxnStore } from "./txn/store.ts";
import type { SplitOutcome } from "./worker_raftstore.ts";

export interface StoreServices {
  /** Regions served by this worker, by id. */
  regions: ReadonlyMap<bigint, Region>;
  raw: RawStore;
  txn: TxnStore;
  /**
   * Whether a request on `region` may run now: null when it may (the leader under its lease),
   * else a promise of the refusal (not the leader, a ReadIndex that failed) or of null once a
   * ReadIndex round says it may. Absent: always.
   */
  gate?: (region: Region) => Promise<Failure | null> | null;
  /**
   * False while the leader of `regionId` here has not raised max_ts to a PD timestamp since it
   * became leader (TiKV's max-ts sync): async-commit and 1PC prewrites wait. Absent: synced.
   */
  maxTsSynced?: (regionId: bigint) => boolean;
  /**
   * Splits `region` at `splitKeys` (data keys, ascending) through its leader here: the regions
   * made, in key order, or why not. Absent: this store does not split.
   */
  split?: (region: Region, splitKeys: readonly Uint8Array[]) => Promise<SplitOutcome>;
}
