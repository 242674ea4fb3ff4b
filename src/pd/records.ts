/**
 * How stores, regions and service safe points are written into `PdStorage`: JSON with every
 * u64 as a decimal string and every key as hex. A record that does not read back as what was
 * written is corrupt, and reading it throws naming the storage key: PD must not start on state
 * it cannot trust.
 *
 * @module
 */
import { fromHex, toHex } from "../util/bytes.ts";
import type { NodeState, Peer, PeerRole, RegionMeta, StoreMeta, StoreState } from "./types.ts";

const PEER_ROLES: readonly PeerRole[] = ["Voter", "Learner", "IncomingVoter", "DemotingVoter"];
const STORE_STATES: readonly StoreState[] = ["Up", "Offline", "Tombstone"];
const NODE_STATES: readonly NodeState[] = ["Preparing", "Serving", "Removing", "Removed"];

type Json = Record<string, unknown>;

/** Reads JSON fields, throwing with the storage key on any mismatch. */
class FieldReader {
  constructor(readonly key: string, readonly fields: Json) {}

  static parse(key: string, text: string): FieldReader {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new Error(`PD storage: "${key}" is not JSON`);
    }
    if (typeof value !== "object" || value === null) {
      throw new Error(`PD storage: "${key}" is not a JSON object`);
    }
    return new FieldReader(key, value as Json);
  }

  fail(field: string): never {
    throw new Error(`PD storage: "${this.key}" has an unreadable field "${field}"`);
  }

  u64(field: string): bigint {
    const value = this.fields[field];
    if (typeof value !== "string" || !/^[0-9]{1,20}$/.test(value)) this.fail(field);
    return BigInt(value);
  }

  i64(field: string): bigint {
    const value = this.fields[field];
    if (typeof value !== "string" || !/^-?[0-9]{1,19}$/.test(value)) this.fail(field);
    return BigInt(value);
  }

  string(field: string): string {
    const value = this.fields[field];
    if (typeof value !== "string") this.fail(field);
    return value;
  }

  boolean(field: string): boolean {
    const value = this.fields[field];
    if (typeof value !== "boolean") this.fail(field);
    return value;
  }

  hex(field: string): Uint8Array {
    try {
      return fromHex(this.string(field));
    } catch {
      this.fail(field);
    }
  }

  oneOf<T extends string>(field: string, allowed: readonly T[]): T {
    const value = this.string(field);
    if (!(allowed as readonly string[]).includes(value)) this.fail(field);
    return value as T;
  }

  list(field: string): FieldReader[] {
    const value = this.fields[field];
    if (!Array.isArray(value)) this.fail(field);
    return value.map((item, i) => {
      if (typeof item !== "object" || item === null) this.fail(`${field}[${i}]`);
      return new FieldReader(this.key, item as Json);
    });
  }
}

/** A store as stored. */
export function encodeStore(store: StoreMeta): string {
  return JSON.stringify({
    ...store,
    id: store.id.toString(),
    startTimestamp: store.startTimestamp.toString(),
    lastHeartbeat: store.lastHeartbeat.toString(),
  });
}

/** A stored store; throws naming `key` when unreadable. */
export function decodeStore(key: string, text: string): StoreMeta {
  const r = FieldReader.parse(key, text);
  return {
    id: r.u64("id"),
    address: r.string("address"),
    state: r.oneOf("state", STORE_STATES),
    labels: r.list("labels").map((label) => ({
      key: label.string("key"),
      value: label.string("value"),
    })),
    version: r.string("version"),
    peerAddress: r.string("peerAddress"),
    statusAddress: r.string("statusAddress"),
    gitHash: r.string("gitHash"),
    startTimestamp: r.i64("startTimestamp"),
    deployPath: r.string("deployPath"),
    lastHeartbeat: r.i64("lastHeartbeat"),
    physicallyDestroyed: r.boolean("physicallyDestroyed"),
    nodeState: r.oneOf("nodeState", NODE_STATES),
  };
}

function encodePeer(peer: Peer): Json {
  return { id: peer.id.toString(), storeId: peer.storeId.toString(), role: peer.role };
}

/** A region as stored. */
export function encodeRegion(region: RegionMeta): string {
  return JSON.stringify({
    id: region.id.toString(),
    startKey: toHex(region.startKey),
    endKey: toHex(region.endKey),
    confVer: region.regionEpoch.confVer.toString(),
    version: region.regionEpoch.version.toString(),
    peers: region.peers.map(encodePeer),
  });
}

/** A stored region; throws naming `key` when unreadable. */
export function decodeRegion(key: string, text: string): RegionMeta {
  const r = FieldReader.parse(key, text);
  return {
    id: r.u64("id"),
    startKey: r.hex("startKey"),
    endKey: r.hex("endKey"),
    regionEpoch: { confVer: r.u64("confVer"), version: r.u64("version") },
    peers: r.list("peers").map((peer) => ({
      id: peer.u64("id"),
      storeId: peer.u64("storeId"),
      role: peer.oneOf("role", PEER_ROLES),
    })),
  };
}

/** A service GC safe point (PD's `endpoint.ServiceSafePoint`). */
export interface ServiceSafePoint {
  serviceId: string;
  /** Unix seconds after which it no longer counts; `null` for never. */
  expiredAtSec: number | null;
  safePoint: bigint;
}

/** A service safe point as stored. */
export function encodeServiceSafePoint(point: ServiceSafePoint): string {
  return JSON.stringify({
    serviceId: point.serviceId,
    expiredAtSec: point.expiredAtSec === null ? "never" : String(point.expiredAtSec),
    safePoint: point.safePoint.toString(),
  });
}

/** A stored service safe point; throws naming `key` when unreadable. */
export function decodeServiceSafePoint(key: string, text: string): ServiceSafePoint {
  const r = FieldReader.parse(key, text);
  const expired = r.string("expiredAtSec");
  if (expired !== "never" && !/^-?[0-9]{1,16}$/.test(expired)) r.fail("expiredAtSec");
  return {
    serviceId: r.string("serviceId"),
    expiredAtSec: expired === "never" ? null : Number(expired),
    safePoint: r.u64("safePoint"),
  };
}
