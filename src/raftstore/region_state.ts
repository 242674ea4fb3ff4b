/**
 * Reading and writing the store-wide and per-region metadata records: `StoreIdent` (which
 * cluster and store a data directory belongs to) and `RegionLocalState` (a region's range,
 * epoch, peers and this replica's state). Writes go into a caller's WriteBatch, so that they
 * commit atomically with whatever changed them (a split's new regions with the parent's new
 * range, a conf change's peers with the apply state).
 *
 * @module
 */

import type { Readable, WriteBatch } from "../engine/types.ts";
import {
  CorruptLocalStateError,
  decodeRegionLocalState,
  decodeStoreIdent,
  encodeRegionLocalState,
  encodeStoreIdent,
  type RegionLocalState,
  type StoreIdent,
} from "./local_state.ts";
import { parseRegionStateKey, regionMetaRange, regionStateKey, storeIdentKey } from "./keys.ts";

/** The column family of every local record. */
export const LOCAL_CF = "raft" as const;

/** This store's identity, or null on a data directory that never joined a cluster. */
export function readStoreIdent(engine: Readable): StoreIdent | null {
  const key = storeIdentKey();
  const bytes = engine.get(LOCAL_CF, key);
  return bytes === null ? null : decodeStoreIdent(bytes, { regionId: null, key });
}

/** Records this store's identity. */
export function writeStoreIdent(batch: WriteBatch, ident: StoreIdent): void {
  batch.put(LOCAL_CF, storeIdentKey(), encodeStoreIdent(ident));
}

/** Region `regionId`'s local state, or null if this store has no replica of it. */
export function readRegionState(engine: Readable, regionId: bigint): RegionLocalState | null {
  const key = regionStateKey(regionId);
  const bytes = engine.get(LOCAL_CF, key);
  return bytes === null ? null : decodeRegionLocalState(bytes, { regionId, key });
}

/** Records a region's local state. */
export function writeRegionState(batch: WriteBatch, state: RegionLocalState): void {
  batch.put(LOCAL_CF, regionStateKey(state.region.id), encodeRegionLocalState(state));
}

/**
 * Every region's local state on this store, by ascending region id: what a starting store
 * rebuilds its peers from (Tombstone ones included; the caller skips them). A key in the
 * metadata range that is not a region state key is reported as corrupt.
 */
export function scanRegionStates(engine: Readable): RegionLocalState[] {
  const { start, end } = regionMetaRange();
  const out: RegionLocalState[] = [];
  using iter = engine.iterator(LOCAL_CF, { lowerBound: start, upperBound: end });
  for (iter.seekToFirst(); iter.valid(); iter.next()) {
    const key = iter.key().slice();
    const regionId = parseRegionStateKey(key);
    if (regionId === null) {
      throw new CorruptLocalStateError(
        { regionId: null, key, record: "region metadata" },
        "the key is not a RegionLocalState key",
      );
    }
    out.push(decodeRegionLocalState(iter.value().slice(), { regionId, key }));
  }
  return out;
}
