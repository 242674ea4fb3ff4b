/**
 * What the client knows of a region: its key range, epoch, peers and the peer requests go to
 * (the leader, as far as the client knows), and the `kvrpcpb.Context` a request to it carries.
 *
 * Key ranges follow kvproto: [startKey, endKey), an empty endKey meaning "to the last key".
 */
import type { kvrpcpb, metapb } from "../../proto/mod.ts";
import { compareBytes } from "../util/bytes.ts";

/** One replica of a region. */
export interface PeerInfo {
  readonly id: bigint;
  readonly storeId: bigint;
}

/** A region as the client caches it. */
export interface RegionInfo {
  readonly id: bigint;
  readonly startKey: Uint8Array;
  readonly endKey: Uint8Array;
  readonly epoch: { readonly confVer: bigint; readonly version: bigint };
  readonly peers: readonly PeerInfo[];
  /** The peer requests are sent to: the leader if known, else a peer to try. */
  readonly leader: PeerInfo;
}

const EMPTY = new Uint8Array(0);

/**
 * A `RegionInfo` from kvproto's region and leader. The leader is kept only if it is one of the
 * region's peers; otherwise `preferStoreId`'s peer, else the first peer, stands in. Returns
 * null for a region without peers (nothing to send to).
 */
export function regionFromProto(
  region: metapb.Region.$Properties,
  options: { leader?: metapb.Peer.$Properties | null; preferStoreId?: bigint } = {},
): RegionInfo | null {
  const peers: PeerInfo[] = (region.peers ?? []).map((peer) => ({
    id: peer.id ?? 0n,
    storeId: peer.storeId ?? 0n,
  }));
  if (peers.length === 0) return null;
  const leaderId = options.leader?.id ?? 0n;
  const leader = peers.find((peer) => leaderId !== 0n && peer.id === leaderId) ??
    peers.find((peer) => peer.storeId === options.preferStoreId) ?? peers[0]!;
  return {
    id: region.id ?? 0n,
    startKey: region.startKey ?? EMPTY,
    endKey: region.endKey ?? EMPTY,
    epoch: {
      confVer: region.regionEpoch?.confVer ?? 0n,
      version: region.regionEpoch?.version ?? 0n,
    },
    peers,
    leader,
  };
}

/** The same region with another peer to send to. */
export function withLeader(region: RegionInfo, leader: PeerInfo): RegionInfo {
  return { ...region, leader };
}

/** The `Context` of a request to `region`'s leader. */
export function contextOf(region: RegionInfo): kvrpcpb.Context.$Properties {
  return {
    regionId: region.id,
    regionEpoch: { confVer: region.epoch.confVer, version: region.epoch.version },
    peer: { id: region.leader.id, storeId: region.leader.storeId },
  };
}

/** Whether `key` lies in [startKey, endKey) of `region`. */
export function regionContains(region: RegionInfo, key: Uint8Array): boolean {
  if (compareBytes(key, region.startKey) < 0) return false;
  return region.endKey.length === 0 || compareBytes(key, region.endKey) < 0;
}

/**
 * Whether `region` holds the keys just below `key` — (startKey, endKey] — with an empty `key`
 * meaning +infinity (only the last region holds the keys just below it). Reverse scans walk
 * regions by this rule.
 */
export function regionContainsEndKey(region: RegionInfo, key: Uint8Array): boolean {
  if (key.length === 0) return region.endKey.length === 0;
  if (compareBytes(key, region.startKey) <= 0) return false;
  return region.endKey.length === 0 || compareBytes(key, region.endKey) <= 0;
}

/**
 * Whether `current` (a region as a store reported it, e.g. in EpochNotMatch's current regions)
 * is the same region as `region` at an older epoch: the store lags behind what the client
 * already knows (it has not applied the split or conf change yet), so its view must not replace
 * the client's (client-go: "region epoch is ahead of tikv").
 */
export function epochBehind(current: metapb.Region.$Properties, region: RegionInfo): boolean {
  if ((current.id ?? 0n) !== region.id) return false;
  const epoch = current.regionEpoch;
  return (epoch?.version ?? 0n) < region.epoch.version ||
    (epoch?.confVer ?? 0n) < region.epoch.confVer;
}

/** A short description for errors and logs. */
export function describeRegion(region: RegionInfo): string {
  return `region ${region.id} (epoch ${region.epoch.confVer}/${region.epoch.version}, ` +
    `store ${region.leader.storeId})`;
}
