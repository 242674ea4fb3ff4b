/**
 * The standalone store's one region, and the check every request's `Context` passes.
 *
 * Standalone: store 1, region 1 covering every key (start and end empty), one peer with id 2
 * (TiKV's bootstrap gives the first peer the id after the region's), epoch {conf_ver 1,
 * version 1}. As TiKV does for ordinary reads and writes, only the epoch's `version` is
 * compared (conf_ver changes with membership, which does not move keys).
 */
import type { kvrpcpb, metapb } from "../../proto/mod.ts";
import { bytesEqual, compareBytes } from "../util/bytes.ts";
import { EPOCH_NOT_MATCH_MAX_SIBLINGS } from "../constants.ts";
import type { RegionFailure } from "./failure.ts";

/** Identifiers of the standalone store and its region. */
export const STANDALONE = { storeId: 1n, regionId: 1n, peerId: 2n } as const;

/** A region this store serves. */
export interface Region {
  id: bigint;
  /** Inclusive; empty = from the first key. */
  startKey: Uint8Array;
  /** Exclusive; empty = to the last key. */
  endKey: Uint8Array;
  confVer: bigint;
  version: bigint;
  peerId: bigint;
  storeId: bigint;
  /** Every peer of the region, when known (a replicated region); else just this store's. */
  peers?: readonly { id: bigint; storeId: bigint; role?: metapb.PeerRole }[];
  /** Replicated regions: whether this store's peer led the region, and in which term, when seen. */
  leading?: boolean;
  term?: bigint;
  /** Led here: the peers that need a snapshot before they can follow (PD's pending peers). */
  pendingPeerIds?: readonly bigint[];
  /** What the last split check saw (data bytes and entries), for PD's heartbeats. */
  approximateSizeBytes?: number;
  approximateKeys?: number;
}

/** The one region of a standalone store. */
export function standaloneRegion(): Region {
  return {
    id: STANDALONE.regionId,
    startKey: new Uint8Array(0),
    endKey: new Uint8Array(0),
    confVer: 1n,
    version: 1n,
    peerId: STANDALONE.peerId,
    storeId: STANDALONE.storeId,
  };
}

/** `region` in kvproto's shape. */
export function regionToProto(region: Region): metapb.Region.$Properties {
  return {
    id: region.id,
    startKey: region.startKey,
    endKey: region.endKey,
    regionEpoch: { confVer: region.confVer, version: region.version },
    peers: region.peers?.map((p) => ({ id: p.id, storeId: p.storeId, role: p.role })) ??
      [{ id: region.peerId, storeId: region.storeId }],
  };
}

/** Whether `key` lies in [startKey, endKey) of `region`. */
export function regionContains(region: Region, key: Uint8Array): boolean {
  if (compareBytes(key, region.startKey) < 0) return false;
  return region.endKey.length === 0 || compareBytes(key, region.endKey) < 0;
}

/**
 * Checks a request's context against the regions served; returns the region on success or
 * the failure a TiKV client expects. `keys` are the keys the request touches.
 */
export function checkContext(
  regions: ReadonlyMap<bigint, Region>,
  request: { context: kvrpcpb.Context.$Properties | null | undefined; keys: Uint8Array[] },
): Region | RegionFailure {
  const context = request.context ?? {};
  const regionId = context.regionId ?? 0n;
  const region = regions.get(regionId);
  if (region === undefined) return { code: "RegionNotFound", regionId };
  const storeId = context.peer?.storeId ?? 0n;
  if (context.peer != null && storeId !== region.storeId) {
    return { code: "StoreNotMatch", requestStoreId: storeId, actualStoreId: region.storeId };
  }
  const requested = context.regionEpoch?.version ?? 0n;
  if (requested !== region.version) {
    return {
      code: "EpochNotMatch",
      currentRegion: regionToProto(region),
      siblings: siblingsOf(regions, region, requested).map(regionToProto),
    };
  }
  for (const key of request.keys) {
    if (!regionContains(region, key)) {
      return {
        code: "KeyNotInRegion",
        key,
        regionId: region.id,
        startKey: region.startKey,
        endKey: region.endKey,
      };
    }
  }
  return region;
}

/**
 * The regions around `region` that splits since epoch version `requested` may have made, for an
 * EpochNotMatch (TiKV's `collect_sibling_region`): a client holding the old, wider range learns
 * where its keys went in one answer. Walks adjacent served regions on both sides, as many as
 * the version moved (a split of n keys adds n), at most EPOCH_NOT_MATCH_MAX_SIBLINGS; an extra
 * region is harmless (the client takes what is newer than its cache).
 */
export function siblingsOf(
  regions: ReadonlyMap<bigint, Region>,
  region: Region,
  requested: bigint,
): Region[] {
  if (requested >= region.version) return [];
  const moved = region.version - requested;
  const wanted = moved < BigInt(EPOCH_NOT_MATCH_MAX_SIBLINGS)
    ? Number(moved)
    : EPOCH_NOT_MATCH_MAX_SIBLINGS;
  const out: Region[] = [];
  const step = (edge: Uint8Array, next: (r: Region) => boolean): Region | undefined => {
    if (edge.length === 0) return undefined;
    for (const r of regions.values()) if (next(r)) return r;
    return undefined;
  };
  for (const side of ["left", "right"] as const) {
    let at = region;
    for (let i = 0; i < wanted && out.length < EPOCH_NOT_MATCH_MAX_SIBLINGS; i++) {
      const found = side === "left"
        ? step(at.startKey, (r) => r.endKey.length > 0 && bytesEqual(r.endKey, at.startKey))
        : step(at.endKey, (r) => bytesEqual(r.startKey, at.endKey));
      if (found === undefined) break;
      out.push(found);
      at = found;
    }
  }
  return out;
}
