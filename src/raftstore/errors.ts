/**
 * The expected failures of a peer, as values with a stable `code` and the fields a client needs
 * to retry (TiKV's region errors), converted to `errorpb.Error` only at the gRPC edge.
 *
 * Which of them leave a write's outcome unknown matters to a client that retries:
 * - Never proposed, so never applied: `NotLeader`, `EpochNotMatch` (at propose), `KeyNotInRegion`,
 *   `RegionNotFound`, `ServerIsBusy`, `ProposalDropped`, `ReadIndexTimeout` (reads only).
 * - Refused at apply, so not applied: `EpochNotMatch` (at apply).
 * - Unknown (the entry may or may not have been, or be, applied): `StaleCommand`, `StoreStopped`.
 *   `outcomeUnknown` says which.
 *
 * @module
 */

import { toHex } from "../util/bytes.ts";
import type { PeerMeta, RegionMeta } from "./local_state.ts";

/** A failure of a request to a region, as a value. */
export type RegionError =
  | { code: "NotLeader"; regionId: bigint; leader: PeerMeta | undefined }
  | { code: "EpochNotMatch"; regionId: bigint; currentRegion: RegionMeta; atApply: boolean }
  | { code: "RegionNotFound"; regionId: bigint }
  | {
    code: "KeyNotInRegion";
    regionId: bigint;
    key: Uint8Array;
    startKey: Uint8Array;
    endKey: Uint8Array;
  }
  | { code: "ServerIsBusy"; regionId: bigint; reason: string }
  | { code: "ProposalDropped"; regionId: bigint; reason: string }
  | { code: "ReadIndexTimeout"; regionId: bigint; ticks: number }
  | { code: "StaleCommand"; regionId: bigint; reason: string }
  | { code: "StoreStopped"; regionId: bigint; storeId: bigint }
  | { code: "InvalidCommand"; regionId: bigint; reason: string };

/** True if a write that failed with `error` may still have been, or be, applied. */
export function outcomeUnknown(error: RegionError): boolean {
  return error.code === "StaleCommand" || error.code === "StoreStopped";
}

/** A sentence naming the region and what went wrong. */
export function describeRegionError(error: RegionError): string {
  const region = `region ${error.regionId}`;
  switch (error.code) {
    case "NotLeader":
      return error.leader === undefined
        ? `${region}: this peer is not the leader and knows no leader`
        : `${region}: not the leader; the leader is peer ${error.leader.id} on store ${error.leader.storeId}`;
    case "EpochNotMatch": {
      const e = error.currentRegion.regionEpoch;
      const when = error.atApply ? "at apply" : "at propose";
      return `${region}: the request's epoch is stale ${when}; current conf_ver ${e.confVer} version ${e.version}`;
    }
    case "RegionNotFound":
      return `${region} is not on this store`;
    case "KeyNotInRegion":
      return `${region}: key ${toHex(error.key)} is outside [${toHex(error.startKey)}, ${
        toHex(error.endKey)
      })`;
    case "ServerIsBusy":
      return `${region}: busy: ${error.reason}`;
    case "ProposalDropped":
      return `${region}: proposal dropped: ${error.reason}`;
    case "ReadIndexTimeout":
      return `${region}: no ReadIndex answer within ${error.ticks} ticks`;
    case "StaleCommand":
      return `${region}: stale command (outcome unknown): ${error.reason}`;
    case "StoreStopped":
      return `${region}: store ${error.storeId} stopped before answering (outcome unknown)`;
    case "InvalidCommand":
      return `${region}: invalid command: ${error.reason}`;
  }
}

/**
 * A write path's rejection for a region error (`write_path.ts`): the command that wrote answers
 * it as kvproto's `region_error`, and the client retries as TiKV's does.
 */
export class RegionWriteError extends Error {
  constructor(readonly error: RegionError) {
    super(describeRegionError(error));
    this.name = "RegionWriteError";
  }
}
