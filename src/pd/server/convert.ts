/**
 * kvproto's shapes ↔ the pure core's values (`src/pd/types.ts`), at the gRPC edge only: the
 * core names enums by their kvproto names and fields in camelCase, so each conversion is one
 * to one. Decoded messages may leave any field unset; an unset field reads as its proto3
 * default, and an enum number outside kvproto's values is refused (`MalformedRequest`), as a
 * request that cannot be understood.
 *
 * @module
 */
import { eraftpb, metapb, pdpb } from "../../../proto/mod.ts";
import type { HeartbeatInstruction, Operator } from "../operator.ts";
import type {
  Peer,
  PeerRole,
  RegionInfo,
  RegionMeta,
  StoreInfo,
  StoreMeta,
  StoreStats,
} from "../types.ts";
import type { RegionHeartbeat, StorePut } from "../cluster.ts";

/** A request the edge cannot turn into the core's values (INVALID_ARGUMENT). */
export class MalformedRequest extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MalformedRequest";
  }
}

const PEER_ROLES: readonly PeerRole[] = ["Voter", "Learner", "IncomingVoter", "DemotingVoter"];
const EMPTY = new Uint8Array(0);

function enumName<T extends string>(
  names: readonly T[],
  value: number | null | undefined,
  what: string,
): T {
  const name = names[value ?? 0];
  if (name === undefined) throw new MalformedRequest(`${what} ${value} is not a known value`);
  return name;
}

/** `metapb.Peer` → `Peer`. */
export function peerFromProto(peer: metapb.Peer.$Properties): Peer {
  return {
    id: peer.id ?? 0n,
    storeId: peer.storeId ?? 0n,
    role: enumName(PEER_ROLES, peer.role, "peer role"),
  };
}

/** `Peer` → `metapb.Peer`. */
export function peerToProto(peer: Peer): metapb.Peer.$Properties {
  return { id: peer.id, storeId: peer.storeId, role: metapb.PeerRole[peer.role] };
}

/** `metapb.Region` → `RegionMeta`. */
export function regionFromProto(region: metapb.Region.$Properties): RegionMeta {
  return {
    id: region.id ?? 0n,
    startKey: region.startKey ?? EMPTY,
    endKey: region.endKey ?? EMPTY,
    regionEpoch: {
      confVer: region.regionEpoch?.confVer ?? 0n,
      version: region.regionEpoch?.version ?? 0n,
    },
    peers: (region.peers ?? []).map(peerFromProto),
  };
}

/** `RegionMeta` → `metapb.Region`. */
export function regionToProto(region: RegionMeta): metapb.Region.$Properties {
  return {
    id: region.id,
    startKey: region.startKey,
    endKey: region.endKey,
    regionEpoch: { ...region.regionEpoch },
    peers: region.peers.map(peerToProto),
  };
}

/** `metapb.Store` (as a store says it in PutStore or Bootstrap) → `StorePut`. */
export function storeFromProto(store: metapb.Store.$Properties): StorePut {
  return {
    id: store.id ?? 0n,
    address: store.address ?? "",
    labels: (store.labels ?? []).map((label) => ({
      key: label.key ?? "",
      value: label.value ?? "",
    })),
    version: store.version ?? "",
    peerAddress: store.peerAddress ?? "",
    statusAddress: store.statusAddress ?? "",
    gitHash: store.gitHash ?? "",
    startTimestamp: store.startTimestamp ?? 0n,
    deployPath: store.deployPath ?? "",
  };
}

/** `StoreMeta` → `metapb.Store`. */
export function storeToProto(meta: StoreMeta): metapb.Store.$Properties {
  return {
    id: meta.id,
    address: meta.address,
    state: metapb.StoreState[meta.state],
    labels: meta.labels.map((label) => ({ ...label })),
    version: meta.version,
    peerAddress: meta.peerAddress,
    statusAddress: meta.statusAddress,
    gitHash: meta.gitHash,
    startTimestamp: meta.startTimestamp,
    deployPath: meta.deployPath,
    lastHeartbeat: meta.lastHeartbeat,
    physicallyDestroyed: meta.physicallyDestroyed,
    nodeState: metapb.NodeState[meta.nodeState],
  };
}

/** A known store's latest stats as `pdpb.StoreStats` (only its id before any heartbeat). */
export function storeStatsToProto(store: StoreInfo): pdpb.StoreStats.$Properties {
  const stats = store.stats;
  if (stats === null) return { storeId: store.meta.id };
  return {
    storeId: store.meta.id,
    capacity: stats.capacity,
    available: stats.available,
    usedSize: stats.usedSize,
    regionCount: stats.regionCount,
    sendingSnapCount: stats.sendingSnapCount,
    receivingSnapCount: stats.receivingSnapCount,
    isBusy: stats.isBusy,
  };
}

/** `pdpb.StoreStats` → `StoreStats`. */
export function storeStatsFromProto(stats: pdpb.StoreStats.$Properties): StoreStats {
  return {
    capacity: stats.capacity ?? 0n,
    available: stats.available ?? 0n,
    usedSize: stats.usedSize ?? 0n,
    regionCount: stats.regionCount ?? 0,
    sendingSnapCount: stats.sendingSnapCount ?? 0,
    receivingSnapCount: stats.receivingSnapCount ?? 0,
    isBusy: stats.isBusy ?? false,
  };
}

/** `pdpb.RegionHeartbeatRequest` → `RegionHeartbeat`; a request without a region is malformed. */
export function regionHeartbeatFromProto(
  request: pdpb.RegionHeartbeatRequest,
): RegionHeartbeat {
  if (request.region == null) throw new MalformedRequest("a region heartbeat names no region");
  return {
    region: regionFromProto(request.region),
    leader: request.leader == null ? null : peerFromProto(request.leader),
    term: request.term ?? 0n,
    downPeers: (request.downPeers ?? []).map((down) => ({
      peer: peerFromProto(down.peer ?? {}),
      downSeconds: down.downSeconds ?? 0n,
    })),
    pendingPeers: (request.pendingPeers ?? []).map(peerFromProto),
    approximateSize: request.approximateSize ?? 0n,
    approximateKeys: request.approximateKeys ?? 0n,
  };
}

/** The core's instruction as a `pdpb.RegionHeartbeatResponse` (header added by the caller). */
export function instructionToProto(
  instruction: HeartbeatInstruction,
): pdpb.RegionHeartbeatResponse.$Properties {
  const response: pdpb.RegionHeartbeatResponse.$Properties = {
    regionId: instruction.regionId,
    regionEpoch: { ...instruction.regionEpoch },
    targetPeer: peerToProto(instruction.targetPeer),
  };
  if (instruction.changePeer !== undefined) {
    response.changePeer = {
      peer: peerToProto(instruction.changePeer.peer),
      changeType: eraftpb.ConfChangeType[instruction.changePeer.changeType],
    };
  }
  if (instruction.transferLeader !== undefined) {
    response.transferLeader = {
      peer: peerToProto(instruction.transferLeader.peer),
      peers: instruction.transferLeader.peers.map(peerToProto),
    };
  }
  if (instruction.merge !== undefined) {
    response.merge = { target: regionToProto(instruction.merge.target) };
  }
  return response;
}

/** A region and its leader as PD's GetRegion answers it. */
export function regionRoute(
  info: RegionInfo,
): { region: metapb.Region.$Properties; leader: metapb.Peer.$Properties | null } {
  return {
    region: regionToProto(info.meta),
    leader: info.leader === null ? null : peerToProto(info.leader),
  };
}

/** An operator as `pdpb.GetOperatorResponse` fields (header added by the caller). */
export function operatorToProto(op: Operator): pdpb.GetOperatorResponse.$Properties {
  const encoder = new TextEncoder();
  return {
    regionId: op.regionId,
    desc: encoder.encode(op.desc),
    status: pdpb.OperatorStatus[op.status],
    kind: encoder.encode(op.kind),
  };
}
