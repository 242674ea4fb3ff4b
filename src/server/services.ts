/**
 * What commands run against inside one region-group worker: the regions it serves and the
 * stores of each API (raw and transactional; both over the same engine). Built once per worker (`region_worker.ts`) over the shared engine.
 */
import type { RawStore } from "./raw/store.ts";
import type { Region } from "./region.ts";
import type { TxnStore } from "./txn/store.ts";

export interface StoreServices {
  /** Regions served by this worker, by id. */
  regions: ReadonlyMap<bigint, Region>;
  raw: RawStore;
  txn: TxnStore;
}
