/**
 * The values PD's pure core works with: stores, regions, peers and epochs shaped and named as
 * kvproto's `metapb` messages are (camelCase fields, enums as their names), so the gRPC edge
 * maps them one to one, yet nothing here imports the generated protobuf code: kvproto stays at
 * the edge. Every u64 of the protocol is a `bigint`.
 *
 * Also the two sources of non-determinism every pure PD function takes as arguments: a clock
 * and a random source.
 *
 * @module
 */
import type { Clock } from "../tso/types.ts";

export type { Clock };

/** A uniform random source; `SeededRandom` (src/util/random.ts) is one. */
export interface RandomSource {
  /** A uniform integer in [0, bound). */
  int(bound: number): number;
  /** A uniform 32-bit unsigned integer. */
  nextUint32(): number;
}

/** `metapb.PeerRole`. */
export type PeerRole = "Voter" | "Learner" | "IncomingVoter" | "DemotingVoter";

/** `metapb.Peer`: one replica of a region, on one store. */
export interface Peer {
  id: bigint;
  storeId: bigint;
  role: PeerRole;
}

/** `metapb.RegionEpoch`: `confVer` grows on membership changes, `version` on split and merge. */
export interface RegionEpoch {
  confVer: bigint;
  version: bigint;
}

/** `metapb.Region`: the key range [startKey, endKey) (an empty end is +infinity) and its peers. */
export interface RegionMeta {
  id: bigint;
  startKey: Uint8Array;
  endKey: Uint8Array;
  regionEpoch: RegionEpoch;
  peers: Peer[];
}

/** `pdpb.PeerStats`: a peer the leader reports as unreachable, and for how long. */
export interface DownPeer {
  peer: Peer;
  downSeconds: bigint;
}

/** What PD knows of a region: its meta and what its latest heartbeat told. */
export interface RegionInfo {
  meta: RegionMeta;
  /** `null` until a heartbeat names one (a region loaded from storage has none). */
  leader: Peer | null;
  /** The leader's Raft term at its latest heartbeat; 0 when unknown. */
  term: bigint;
  downPeers: DownPeer[];
  pendingPeers: Peer[];
  approximateSizeBytes: bigint;
  approximateKeys: bigint;
}

/** `metapb.StoreState`. */
export type StoreState = "Up" | "Offline" | "Tombstone";
/** `metapb.NodeState`. */
export type NodeState = "Preparing" | "Serving" | "Removing" | "Removed";

/** `metapb.StoreLabel`. */
export interface StoreLabel {
  key: string;
  value: string;
}

/** `metapb.Store`: one storage process, as PD keeps it. */
export interface StoreMeta {
  id: bigint;
  address: string;
  state: StoreState;
  labels: StoreLabel[];
  version: string;
  peerAddress: string;
  statusAddress: string;
  gitHash: string;
  /** Unix seconds when the store started. */
  startTimestamp: bigint;
  deployPath: string;
  /** Unix nanoseconds of the last heartbeat PD received. */
  lastHeartbeat: bigint;
  physicallyDestroyed: boolean;
  nodeState: NodeState;
}

/** The parts of `pdpb.StoreStats` PD schedules by. */
export interface StoreStats {
  capacity: bigint;
  available: bigint;
  usedSize: bigint;
  regionCount: number;
  sendingSnapCount: number;
  receivingSnapCount: number;
  isBusy: boolean;
}

/** What PD knows of a store: its meta, its latest stats, and when it last heard from it. */
export interface StoreInfo {
  meta: StoreMeta;
  /** `null` until the first store heartbeat. */
  stats: StoreStats | null;
  /** The clock's reading at the latest heartbeat (or at PD's start, or at PutStore). */
  lastHeartbeatMs: number;
}

/**
 * Whether PD hears from a store: `Up`, `Disconnected` after `PD_STORE_DISCONNECTED_MS` of
 * silence, `Down` after `maxStoreDownTimeMs`. Kept apart from `StoreState` (Up, Offline,
 * Tombstone), which is what an operator decided: an Offline store may be Up or Down.
 */
export type Liveness = "Up" | "Disconnected" | "Down";
