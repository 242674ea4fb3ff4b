/**
 * The regions a store holds, as its engine records them (RegionLocalState in CF `raft`), and the
 * bootstrap that records the first ones: a standalone store's one region, or the cluster's first
 * region on the store that bootstrapped the cluster (`cluster_join.ts`). After bootstrap the
 * engine is the only source of truth: replicas created by other stores' messages, removed ones,
 * and (later) split ones are recorded there by the raftstore.
 *
 * @module
 */

import type { KvEngine } from "../engine/types.ts";
import { metapb } from "../../proto/mod.ts";
import { PeerState } from "../raftstore/local_state.ts";
import { writeInitialPeerState } from "../raftstore/peer_storage.ts";
import { scanRegionStates } from "../raftstore/region_state.ts";
import type { Region } from "./region.ts";
import { regionOfPeer } from "./worker_raftstore.ts";

/**
 * Records `regions` (each with this store's one peer as its only voter) when the engine records
 * no region yet — a new store, or one whose data predates the log. Returns how many it wrote.
 */
export async function bootstrapRegions(
  engine: KvEngine,
  regions: readonly Region[],
): Promise<number> {
  if (regions.length === 0 || scanRegionStates(engine).length > 0) return 0;
  await recordRegions(engine, regions);
  return regions.length;
}

/**
 * Records `regions` as new replicas on this store (each with this store's one peer as its only
 * voter), durably, at TiKV's initial log position: a bootstrap, or a region a test hands a worker.
 */
export async function recordRegions(engine: KvEngine, regions: readonly Region[]): Promise<void> {
  const batch = engine.newWriteBatch();
  try {
    for (const region of regions) {
      writeInitialPeerState(batch, {
        state: PeerState.Normal,
        region: {
          id: region.id,
          startKey: region.startKey,
          endKey: region.endKey,
          regionEpoch: { confVer: region.confVer, version: region.version },
          peers: [{ id: region.peerId, storeId: region.storeId, role: metapb.PeerRole.Voter }],
        },
      });
    }
    await engine.writeDurable(batch);
  } finally {
    batch.destroy();
  }
}

/** Regions whose snapshot install a crash interrupted (RegionLocalState Applying). */
export function applyingRegionIds(engine: KvEngine): Set<bigint> {
  return new Set(
    scanRegionStates(engine)
      .filter((state) => state.state === PeerState.Applying)
      .map((state) => state.region.id),
  );
}

/** The initialized, live regions the engine records a replica of on store `storeId`. */
export function recordedRegions(engine: KvEngine, storeId: bigint): Region[] {
  const regions: Region[] = [];
  for (const state of scanRegionStates(engine)) {
    if (state.state === PeerState.Tombstone) continue;
    const own = state.region.peers.find((p) => p.storeId === storeId);
    if (own === undefined) continue;
    regions.push(regionOfPeer(state.region, own));
  }
  return regions;
}
