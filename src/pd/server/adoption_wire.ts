/**
 * `basalt.PdAdmin/AdoptStandalone`'s JSON (see `src/pd/adoption.ts`): written by the store
 * (`src/server/standalone_adoption.ts`), read by PD's admin service. u64s travel as decimal
 * strings and keys as hex, as the rest of `basalt.PdAdmin` does:
 *
 * ```json
 * { "clusterId": "7390…", "tsoBoundMs": "1733…", "idBound": "1002", "gcSafePoint": "0",
 *   "store": { "id": "1", "address": "127.0.0.1:20160", "statusAddress": "…", "version": "8.5.0" },
 *   "region": { "id": "1", "startKey": "", "endKey": "6d6d6d", "confVer": "1", "version": "2",
 *               "peers": [{ "id": "2", "storeId": "1" }] } }
 * ```
 *
 * @module
 */
import { MAX_KEY_BYTES, PD_ADMIN_REQUEST_MAX_BYTES } from "../../constants.ts";
import { assert } from "../../util/assert.ts";
import { fromHex, toHex } from "../../util/bytes.ts";
import type { StandaloneAdoption } from "../adoption.ts";

type Json = Record<string, unknown>;

/** A region boundary's most bytes: a largest user key, memcomparable-encoded, with `z`. */
const REGION_KEY_MAX_BYTES = Math.ceil((MAX_KEY_BYTES + 1) / 8) * 9 + 1;
/** Room for everything but the two keys (ids, addresses, names), generously. */
const REQUEST_OTHER_MAX_BYTES = 4096;

assert(
  2 * 2 * REGION_KEY_MAX_BYTES + REQUEST_OTHER_MAX_BYTES <= PD_ADMIN_REQUEST_MAX_BYTES,
  "an AdoptStandalone request with two largest keys in hex fits PD's admin request limit",
);

/** The request as JSON. */
export function adoptionToJson(request: StandaloneAdoption): Json {
  const { store, region } = request;
  return {
    clusterId: String(request.clusterId),
    tsoBoundMs: String(request.tsoBoundMs),
    idBound: String(request.idBound),
    gcSafePoint: String(request.gcSafePoint),
    store: {
      id: String(store.id),
      address: store.address,
      statusAddress: store.statusAddress ?? "",
      version: store.version ?? "",
    },
    region: {
      id: String(region.id),
      startKey: toHex(region.startKey),
      endKey: toHex(region.endKey),
      confVer: String(region.regionEpoch.confVer),
      version: String(region.regionEpoch.version),
      peers: region.peers.map((peer) => ({ id: String(peer.id), storeId: String(peer.storeId) })),
    },
  };
}

/** A field the JSON lacks or holds in the wrong shape. */
export class AdoptionJsonError extends Error {}

function object(value: unknown, name: string): Json {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new AdoptionJsonError(`"${name}" must be an object`);
  }
  return value as Json;
}

function u64(fields: Json, name: string): bigint {
  const value = fields[name];
  if (typeof value !== "string" || !/^[0-9]{1,20}$/.test(value) || BigInt(value) >= 1n << 64n) {
    throw new AdoptionJsonError(`"${name}" must be a u64 as a decimal string`);
  }
  return BigInt(value);
}

function text(fields: Json, name: string): string {
  const value = fields[name] ?? "";
  if (typeof value !== "string") throw new AdoptionJsonError(`"${name}" must be a string`);
  return value;
}

function hex(fields: Json, name: string): Uint8Array {
  const value = text(fields, name);
  if (!/^([0-9a-f]{2})*$/.test(value)) {
    throw new AdoptionJsonError(`"${name}" must be lowercase hex`);
  }
  return fromHex(value);
}

/** The request from JSON; throws `AdoptionJsonError` naming the field at fault. */
export function adoptionFromJson(json: Json): StandaloneAdoption {
  const store = object(json.store, "store");
  const region = object(json.region, "region");
  const peers = region.peers;
  if (!Array.isArray(peers) || peers.length > 1) {
    throw new AdoptionJsonError(`"region.peers" must be an array of one peer`);
  }
  return {
    clusterId: u64(json, "clusterId"),
    tsoBoundMs: u64(json, "tsoBoundMs"),
    idBound: u64(json, "idBound"),
    gcSafePoint: u64(json, "gcSafePoint"),
    store: {
      id: u64(store, "id"),
      address: text(store, "address"),
      statusAddress: text(store, "statusAddress"),
      version: text(store, "version"),
    },
    region: {
      id: u64(region, "id"),
      startKey: hex(region, "startKey"),
      endKey: hex(region, "endKey"),
      regionEpoch: { confVer: u64(region, "confVer"), version: u64(region, "version") },
      peers: peers.map((peer, i) => {
        const fields = object(peer, `region.peers[${i}]`);
        return { id: u64(fields, "id"), storeId: u64(fields, "storeId"), role: "Voter" };
      }),
    },
  };
}
