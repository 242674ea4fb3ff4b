/**
 * `tikvpb.Tikv/SplitRegion`: splits the request's region at the given keys, through its leader
 * on this store (a BatchSplit through the region's log; ids from PD). As TiKV reads it:
 * `split_keys` (or the deprecated single `split_key`) are user keys; transactional ones
 * (`is_raw_kv` false) are split at their encoded form with no timestamp, so that a split never
 * falls between two versions of one key; raw ones are used as they are. Every key must lie in
 * the request's region (KeyNotInRegion otherwise). A key equal to the region's start is a
 * boundary already and is skipped, as are repeats; with nothing left to split the region is
 * answered as it is. At most SPLIT_REGION_MAX_KEYS keys (request_limits.ts). The answer lists every resulting region in key order (`regions`), and
 * `left`/`right` when there are exactly two.
 */
import { kvrpcpb } from "../../proto/mod.ts";
import { regionDataKey } from "../storage/region_range.ts";
import { bytesEqual, compareBytes } from "../util/bytes.ts";
import { type Command, refuse } from "./command.ts";
import { regionToProto as metaToProto } from "../raftstore/local_state.ts";
import { regionToProto } from "./region.ts";

/** The data keys a SplitRegion request names (see the module header), as sent. */
function splitKeysOf(request: kvrpcpb.SplitRegionRequest): Uint8Array[] {
  const keys = request.splitKeys.length > 0
    ? request.splitKeys
    : request.splitKey.length > 0
    ? [request.splitKey]
    : [];
  return keys.map((key) => regionDataKey(request.isRawKv ? "raw" : "txn", key));
}

/** SplitRegion. */
export const splitRegion: Command<
  kvrpcpb.SplitRegionRequest,
  kvrpcpb.SplitRegionResponse.$Properties
> = {
  name: "SplitRegion",
  batchName: null,
  requestCodec: kvrpcpb.SplitRegionRequest,
  responseCodec: kvrpcpb.SplitRegionResponse,
  errorField: "keyErrors",
  // The keys are checked as data keys: `keysOf` encodes transactional ones itself.
  keyApi: "raw",
  keysOf: splitKeysOf,
  async execute(services, request, { region }) {
    const asked = splitKeysOf(request);
    if (asked.length === 0) {
      return refuse({ code: "InvalidArgument", message: "SplitRegion names no split key" });
    }
    const keys = asked
      .filter((key) => !bytesEqual(key, region.startKey))
      .sort(compareBytes)
      .filter((key, i, sorted) => i === 0 || !bytesEqual(key, sorted[i - 1]!));
    if (keys.length === 0) return { regions: [regionToProto(region)] };
    if (services.split === undefined) {
      return refuse({ code: "InvalidArgument", message: "this store does not split regions" });
    }
    const outcome = await services.split(region, keys);
    if ("failure" in outcome) return refuse(outcome.failure);
    const regions = outcome.regions.map(metaToProto);
    return regions.length === 2 ? { regions, left: regions[0], right: regions[1] } : { regions };
  },
};
