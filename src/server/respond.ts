/**
 * Running one command: checks a request's region (id, store, epoch) and that its keys lie in
 * it — as data keys of the command's API (raw keys as they are, transactional keys encoded;
 * src/storage/region_range.ts) — runs the handler within that region (`CommandScope`), and
 * converts an expected failure into kvproto's form — `region_error` for region failures,
 * otherwise the command's error field (see `ErrorField`).
 */
import type { errorpb } from "../../proto/mod.ts";
import { MAX_KEY_BYTES } from "../constants.ts";
import { type AnswerBudget, unaryBudget } from "./answer_budget.ts";
import { type AnyCommand, isRefusal } from "./command.ts";
import {
  describeFailure,
  type Failure,
  failureOfRegionError,
  isRegionFailure,
  type RegionFailure,
} from "./failure.ts";
import { RegionWriteError } from "../raftstore/errors.ts";
import { checkContext, type Region } from "./region.ts";
import {
  coversAllKeys,
  type KeyApi,
  regionContainsKey,
  regionDataKey,
} from "../storage/region_range.ts";
import { checkRequestLimits } from "./request_limits.ts";
import type { StoreServices } from "./services.ts";

/** A region failure in kvproto's `errorpb.Error` shape. */
export function regionErrorOf(failure: RegionFailure): errorpb.Error.$Properties {
  const message = describeFailure(failure);
  switch (failure.code) {
    case "RegionNotFound":
      return { message, regionNotFound: { regionId: failure.regionId } };
    case "EpochNotMatch":
      return {
        message,
        epochNotMatch: { currentRegions: [failure.currentRegion, ...(failure.siblings ?? [])] },
      };
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
    case "NotLeader":
      return { message, notLeader: { regionId: failure.regionId, leader: failure.leader } };
    case "ServerIsBusy":
      return {
        message,
        serverIsBusy: { reason: failure.reason, backoffMs: BigInt(failure.backoffMs) },
      };
    case "StaleCommand":
      return { message, staleCommand: {} };
    case "MaxTimestampNotSynced":
      return { message, maxTimestampNotSynced: {} };
    case "ReadIndexNotReady":
      return {
        message,
        readIndexNotReady: { reason: failure.reason, regionId: failure.regionId },
      };
  }
}

/** The response `command` gives for `failure`. */
export function failureResponse(command: AnyCommand, failure: Failure): object {
  if (isRegionFailure(failure)) return { regionError: regionErrorOf(failure) };
  const message = describeFailure(failure);
  switch (command.errorField) {
    case "error":
      return { error: message };
    case "keyError":
      return { error: { abort: message } };
    case "keyErrors":
      return { errors: [{ abort: message }] };
    case "pairs":
    case "kvs":
      return { [command.errorField]: [{ error: { abort: message } }] };
  }
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
 * an expected failure; an unexpected error propagates as a bug). The answer gathers within
 * `budget` (a unary request's own by default; a BatchCommands sub-request's draws on its
 * message's). */
export async function runCommand(
  services: StoreServices,
  command: AnyCommand,
  // deno-lint-ignore no-explicit-any
  request: any,
  budget: AnswerBudget = unaryBudget(),
): Promise<object> {
  const oversized = checkRequestLimits(command, request);
  if (oversized !== null) return failureResponse(command, oversized);
  const keys = command.keysOf(request);
  const tooLarge = checkKeySizes(keys);
  if (tooLarge !== null) return failureResponse(command, tooLarge);
  const context = request.context as Parameters<typeof checkContext>[1]["context"];
  const region = checkContext(services.regions, { context, keys: NO_KEYS });
  if ("code" in region) return failureResponse(command, region);
  const outside = keyOutsideRegion(region, { api: command.keyApi, keys });
  if (outside !== null) return failureResponse(command, outside);
  // Clustered: a read is served only by the leader under its lease, or after a ReadIndex (a
  // blind write reads nothing: the log refuses it where this replica does not lead).
  const gate = command.blindWrite === true ? null : services.gate?.(region) ?? null;
  if (gate !== null) {
    const refused = await gate;
    if (refused !== null) return failureResponse(command, refused);
  }
  let result;
  try {
    result = await command.execute(services, request, { region, budget });
  } catch (error) {
    // A write the log refused (not the leader, a stale epoch, busy): the client retries.
    if (error instanceof RegionWriteError) {
      return failureResponse(command, failureOfRegionError(error.error));
    }
    throw error;
  }
  return isRefusal(result) ? failureResponse(command, result.failure) : result;
}

const NO_KEYS: Uint8Array[] = [];

/**
 * `KeyNotInRegion` for the first of `keys` whose data key (`regionDataKey`: raw keys as they
 * are, transactional keys encoded) lies outside `region`; null when all lie inside. The
 * failure names the data key, as the region's bounds are data keys.
 */
function keyOutsideRegion(
  region: Region,
  request: { api: KeyApi; keys: readonly Uint8Array[] },
): RegionFailure | null {
  if (coversAllKeys(region)) return null;
  for (const key of request.keys) {
    const dataKey = regionDataKey(request.api, key);
    if (regionContainsKey(region, dataKey)) continue;
    return {
      code: "KeyNotInRegion",
      key: dataKey,
      regionId: region.id,
      startKey: region.startKey,
      endKey: region.endKey,
    };
  }
  return null;
}
