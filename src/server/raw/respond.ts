/**
 * The gRPC edge of raw commands: checks a request's keys and region, runs the handler, and
 * converts an expected failure into kvproto's form — `region_error` for region failures; the
 * `error` string, or a single `KvPair` with `error.abort` where the response has no `error`
 * field (as TiKV answers RawBatchGet and RawScan).
 */
import type { errorpb } from "../../../proto/mod.ts";
import { MAX_KEY_BYTES } from "../../constants.ts";
import { describeFailure, type Failure, isRegionFailure, type RegionFailure } from "../failure.ts";
import { checkContext, type Region } from "../region.ts";
import { type AnyRawCommand, isRefusal } from "./command.ts";
import type { RawStore } from "./store.ts";

/** What a raw command runs against on this server. */
export interface RawServices {
  store: RawStore;
  regions: ReadonlyMap<bigint, Region>;
}

/** A region failure in kvproto's `errorpb.Error` shape. */
export function regionErrorOf(failure: RegionFailure): errorpb.Error.$Properties {
  const message = describeFailure(failure);
  switch (failure.code) {
    case "RegionNotFound":
      return { message, regionNotFound: { regionId: failure.regionId } };
    case "EpochNotMatch":
      return { message, epochNotMatch: { currentRegions: [failure.currentRegion] } };
    case "StoreNotMatch":
      return {
        message,
        storeNotMatch: {
          requestStoreId: failure.requestStoreId,
          actualStoreId: failure.actualStoreId,
        },
      };
    case "KeyNotInRegion":
      return {
        message,
        keyNotInRegion: {
          key: failure.key,
          regionId: failure.regionId,
          startKey: failure.startKey,
          endKey: failure.endKey,
        },
      };
  }
}

/** The response `command` gives for `failure`. */
export function failureResponse(command: AnyRawCommand, failure: Failure): object {
  if (isRegionFailure(failure)) return { regionError: regionErrorOf(failure) };
  const message = describeFailure(failure);
  if (command.errorField === "error") return { error: message };
  return { [command.errorField]: [{ error: { abort: message } }] };
}

function checkKeySizes(keys: readonly Uint8Array[]): Failure | null {
  for (const key of keys) {
    if (key.length > MAX_KEY_BYTES) {
      return { code: "KeyTooLarge", sizeBytes: key.length, limitBytes: MAX_KEY_BYTES };
    }
  }
  return null;
}

/** Runs `command` on a decoded `request` and returns its response message (never throws for
 * an expected failure; an unexpected error propagates as a bug). */
export async function runRawCommand(
  services: RawServices,
  command: AnyRawCommand,
  // deno-lint-ignore no-explicit-any
  request: any,
): Promise<object> {
  const keys = command.keysOf(request);
  const tooLarge = checkKeySizes(keys);
  if (tooLarge !== null) return failureResponse(command, tooLarge);
  const context = request.context as Parameters<typeof checkContext>[1]["context"];
  const region = checkContext(services.regions, { context, keys });
  if ("code" in region) return failureResponse(command, region);
  const result = await command.execute(services.store, request);
  return isRefusal(result) ? failureResponse(command, result.failure) : result;
}
