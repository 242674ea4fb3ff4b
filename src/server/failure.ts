/**
 * Expected failures of a request, as values. Handlers return them; only the gRPC edge
 * (`raw/respond.ts`) turns them into kvproto's `region_error` or `error` fields.
 */
import type { metapb } from "../../proto/mod.ts";
import { describeRegionError, type RegionError } from "../raftstore/errors.ts";
import { regionToProto } from "../raftstore/local_state.ts";
import { SERVER_IS_BUSY_BACKOFF_MS } from "../constants.ts";

/** A failure a TiKV client answers by refreshing its region cache and retrying. */
export type RegionFailure =
  | { code: "RegionNotFound"; regionId: bigint }
  | {
    code: "EpochNotMatch";
    currentRegion: metapb.Region.$Properties;
    /** Regions a split of it made that this store serves (TiKV's sibling regions), if any. */
    siblings?: metapb.Region.$Properties[];
  }
  | { code: "StoreNotMatch"; requestStoreId: bigint; actualStoreId: bigint }
  | {
    code: "KeyNotInRegion";
    key: Uint8Array;
    regionId: bigint;
    startKey: Uint8Array;
    endKey: Uint8Array;
  }
  /** This replica is not the leader; `leader` is the one it knows. */
  | { code: "NotLeader"; regionId: bigint; leader: metapb.Peer.$Properties | null }
  /** Too much is waiting (proposals, reads, an inbox): retry after `backoffMs`. */
  | { code: "ServerIsBusy"; reason: string; backoffMs: number }
  /** The write's outcome is unknown (its entry may or may not be applied); `reason` says why. */
  | { code: "StaleCommand"; reason: string }
  /** A ReadIndex round did not finish in time. */
  | { code: "ReadIndexNotReady"; regionId: bigint; reason: string }
  /** A new leader has not yet raised max_ts to a PD timestamp: async commit and 1PC wait. */
  | { code: "MaxTimestampNotSynced"; regionId: bigint };

/** A failure of the request itself: retrying it unchanged fails the same way. */
export type RequestFailure =
  | { code: "KeyTooLarge"; sizeBytes: number; limitBytes: number }
  | { code: "EntryTooLarge"; sizeBytes: number; limitBytes: number }
  | { code: "InvalidColumnFamily"; name: string }
  | { code: "InvalidArgument"; message: string }
  /** An answer would pass its byte budget (`answer_budget.ts`); `shared`: the message's. */
  | { code: "AnswerTooLarge"; rpc: string; entries: number; limitBytes: number; shared: boolean }
  /** A request list (keys, mutations, ranges) or its bytes pass their stated maximum. */
  | { code: "RequestTooLarge"; rpc: string; what: string; size: number; limit: number };

/** Any expected failure. */
export type Failure = RegionFailure | RequestFailure;

/** Whether `failure` belongs in `region_error`. */
export function isRegionFailure(failure: Failure): failure is RegionFailure {
  return failure.code === "RegionNotFound" || failure.code === "EpochNotMatch" ||
    failure.code === "StoreNotMatch" || failure.code === "KeyNotInRegion" ||
    failure.code === "NotLeader" || failure.code === "ServerIsBusy" ||
    failure.code === "StaleCommand" || failure.code === "ReadIndexNotReady" ||
    failure.code === "MaxTimestampNotSynced";
}

/** A human-readable description naming the thing that failed. */
export function describeFailure(failure: Failure): string {
  switch (failure.code) {
    case "RegionNotFound":
      return `region ${failure.regionId} not found`;
    case "EpochNotMatch":
      return `region epoch is stale; current region ${failure.currentRegion.id}`;
    case "StoreNotMatch":
      return `request is for store ${failure.requestStoreId}, this is store ${failure.actualStoreId}`;
    case "KeyNotInRegion":
      return `key is not in region ${failure.regionId}`;
    case "NotLeader":
      return failure.leader === null
        ? `region ${failure.regionId}: not the leader, and no leader is known`
        : `region ${failure.regionId}: not the leader; the leader is peer ${failure.leader.id} ` +
          `on store ${failure.leader.storeId}`;
    case "ServerIsBusy":
      return `server is busy: ${failure.reason}`;
    case "StaleCommand":
      return `stale command: ${failure.reason}`;
    case "ReadIndexNotReady":
      return `region ${failure.regionId}: read index not ready: ${failure.reason}`;
    case "MaxTimestampNotSynced":
      return `region ${failure.regionId}: a new leader's max_ts is not yet synced with PD`;
    case "KeyTooLarge":
      return `key is too large: ${failure.sizeBytes} bytes, limit ${failure.limitBytes}`;
    case "EntryTooLarge":
      return `entry is too large: ${failure.sizeBytes} bytes, limit ${failure.limitBytes}`;
    case "InvalidColumnFamily":
      return `invalid column family "${failure.name}": expected "default", "write" or "lock"`;
    case "InvalidArgument":
      return failure.message;
    case "AnswerTooLarge":
      return failure.shared
        ? `${failure.rpc}: the answers of this BatchCommands message would pass ` +
          `${failure.limitBytes} bytes; send the request again in another message`
        : `${failure.rpc}: answer would pass ${failure.limitBytes} bytes after ` +
          `${failure.entries} entries; ask for fewer (a smaller limit or fewer keys)`;
    case "RequestTooLarge":
      return `${failure.rpc}: ${failure.size} ${failure.what} exceed the limit of ${failure.limit}`;
  }
}

/** A raftstore region error as the failure a request answers with (kvproto's mapping). */
export function failureOfRegionError(error: RegionError): Failure {
  const reason = describeRegionError(error);
  switch (error.code) {
    case "NotLeader":
      return {
        code: "NotLeader",
        regionId: error.regionId,
        leader: error.leader === undefined
          ? null
          : { id: error.leader.id, storeId: error.leader.storeId, role: error.leader.role },
      };
    case "EpochNotMatch":
      return { code: "EpochNotMatch", currentRegion: regionToProto(error.currentRegion) };
    case "RegionNotFound":
      return { code: "RegionNotFound", regionId: error.regionId };
    case "KeyNotInRegion":
      return {
        code: "KeyNotInRegion",
        key: error.key,
        regionId: error.regionId,
        startKey: error.startKey,
        endKey: error.endKey,
      };
    case "ServerIsBusy":
      return { code: "ServerIsBusy", reason, backoffMs: SERVER_IS_BUSY_BACKOFF_MS };
    case "ProposalDropped":
      // Never proposed (too much uncommitted, or a leadership transfer under way): the client
      // backs off and retries; a leader that moved meanwhile answers NotLeader then.
      return { code: "ServerIsBusy", reason, backoffMs: SERVER_IS_BUSY_BACKOFF_MS };
    case "ReadIndexTimeout":
      return { code: "ReadIndexNotReady", regionId: error.regionId, reason };
    case "StaleCommand":
    case "StoreStopped":
      return { code: "StaleCommand", reason };
    case "InvalidCommand":
      return { code: "InvalidArgument", message: reason };
  }
}
