/**
 * Expected failures of a request, as values. Handlers return them; only the gRPC edge
 * (`raw/respond.ts`) turns them into kvproto's `region_error` or `error` fields.
 */
import type { metapb } from "../../proto/mod.ts";

/** A failure a TiKV client answers by refreshing its region cache and retrying. */
export type RegionFailure =
  | { code: "RegionNotFound"; regionId: bigint }
  | { code: "EpochNotMatch"; currentRegion: metapb.Region.$Properties }
  | { code: "StoreNotMatch"; requestStoreId: bigint; actualStoreId: bigint }
  | {
    code: "KeyNotInRegion";
    key: Uint8Array;
    regionId: bigint;
    startKey: Uint8Array;
    endKey: Uint8Array;
  };

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
    failure.code === "StoreNotMatch" || failure.code === "KeyNotInRegion";
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
