/**
 * What the embedded PD reports about the cluster it fronts: its client URLs, the stores, and
 * the regions with their leaders. The handlers ask for a fresh view on every call (a function,
 * not a value), so a store whose port is known only after binding, or whose regions change,
 * is reported as it is now.
 *
 * @module
 */
import { metapb } from "../../../proto/mod.ts";
import { regionToProto, STANDALONE, standaloneRegion } from "../region.ts";

/** A region and its leader peer (`null` while it has none). */
export interface RegionRoute {
  region: metapb.Region.$Properties;
  leader: metapb.Peer.$Properties | null;
}

/** The cluster as the PD reports it. */
export interface PdView {
  /** Where clients reach this PD, as `http://host:port`. */
  clientUrls: string[];
  /** The version reported for stores and the PD member. */
  version: string;
  stores: metapb.Store.$Properties[];
  regions: RegionRoute[];
}

/**
 * The version a standalone store reports. TiKV clients turn features on by the store version
 * they read from PD (async commit and 1PC need ≥ 5.0); Basalt speaks the kvproto of TiKV 8.x.
 */
export const STANDALONE_REPORTED_VERSION = "8.5.0";

/** How the standalone store is described. */
export interface StandaloneViewOptions {
  /** The store's gRPC address, host:port (also the PD's address). */
  addr: string;
  /** The store's status HTTP address, host:port. */
  statusAddr: string;
  version?: string;
  /** Unix seconds when the store started. */
  startTimestampSec?: bigint;
}

/** The view of a standalone store: store 1 (Up), region 1 over all keys, its peer the leader. */
export function standaloneView(options: StandaloneViewOptions): PdView {
  const version = options.version ?? STANDALONE_REPORTED_VERSION;
  const region = regionToProto(standaloneRegion());
  const leader = (region.peers ?? []).find((peer) => peer.storeId === STANDALONE.storeId);
  return {
    clientUrls: [`http://${options.addr}`],
    version,
    stores: [{
      id: STANDALONE.storeId,
      address: options.addr,
      statusAddress: options.statusAddr,
      state: metapb.StoreState.Up,
      nodeState: metapb.NodeState.Serving,
      version,
      startTimestamp: options.startTimestampSec ?? 0n,
    }],
    regions: [{ region, leader: leader ?? null }],
  };
}
