/**
 * Splitting regions at keys from a client (client-go's `SplitRegions`, TiKV's
 * `tikvpb.Tikv/SplitRegion`): the keys are grouped by the region holding them, and each group
 * (in chunks of `SPLIT_REGION_MAX_KEYS`) goes to that region's leader as one batch split.
 *
 * - Keys are request keys of the client's key space: raw keys (`is_raw_kv` true) or user keys
 *   of transactions (`is_raw_kv` false; the store encodes them, TiKV API V1), located by their
 *   data key as every other request is.
 * - A key that already starts its region is left out: the region is already split there, and
 *   TiKV refuses a split at a region's start key. This also makes a repeated request harmless
 *   (the keys it split are region starts by the time it is regrouped), so it is retried after
 *   an unknown outcome like any idempotent request.
 * - A group whose region answered with a region error (a split or leader move in between) is
 *   regrouped and sent again, as a batch get is; the call ends at its deadline.
 * - The regions a split made replace the split region in the cache only when next looked up
 *   (the entry is dropped; PD, or a store's EpochNotMatch, says what is there now).
 *
 * Returns every region the splits produced (kvproto's `SplitRegionResponse.regions`, each
 * split region's parts, the part that kept the id included), in key order.
 */
import { compareBytes } from "../util/bytes.ts";
import type { Backoffer } from "./backoff.ts";
import { MAX_CONCURRENT_REGION_REQUESTS, SPLIT_REGION_MAX_KEYS } from "./constants.ts";
import { InvalidArgumentError, ServerError } from "./errors.ts";
import { uniqueKeys } from "./keys.ts";
import { regionFromProto, type RegionInfo } from "./region.ts";
import { RETRY } from "./region_request.ts";
import { chunkByCount, type RegionRpc, runLimited } from "./region_rpc.ts";

/** Options of `splitRegions`. */
export interface SplitRegionsOptions {
  /** Raw keys (true) or transactional user keys the store encodes (false). */
  isRawKv: boolean;
  backoffer: Backoffer;
}

/** Splits the regions holding `keys` at them (see the module comment). */
export async function splitRegions(
  rpc: RegionRpc,
  keys: readonly Uint8Array[],
  options: SplitRegionsOptions,
): Promise<RegionInfo[]> {
  if (keys.some((key) => key.length === 0)) {
    throw new InvalidArgumentError("splitRegions: the empty key is not a split key");
  }
  const made = new Map<bigint, RegionInfo>();
  // Each request has its own attempt budget (`Backoffer.fork`); regrouped parts carry it on.
  const sendGroups = async (pending: readonly Uint8Array[], parent: Backoffer): Promise<void> => {
    const groups = await rpc.groupByRegion(pending, (key) => key, parent);
    const tasks = groups.flatMap(({ region, items }) => {
      const inside = items.filter((key) =>
        compareBytes(rpc.keySpace.regionKey(key), region.startKey) !== 0
      );
      return chunkByCount(inside, SPLIT_REGION_MAX_KEYS).map((part) => ({ region, part }));
    });
    await runLimited(tasks, MAX_CONCURRENT_REGION_REQUESTS, async ({ region, part }) => {
      const backoffer = parent.fork();
      const response = await rpc.sendToRegion("SplitRegion", region, {
        splitKeys: part,
        isRawKv: options.isRawKv,
      }, { backoffer, idempotent: true });
      if (response === RETRY) return sendGroups(part, backoffer);
      const refusal = response.errors?.[0];
      if (refusal != null) {
        throw new ServerError(
          `SplitRegion of region ${region.id}: ${refusal.abort || refusal.retryable || "refused"}`,
        );
      }
      rpc.resolver.invalidateRegion(region.id);
      for (const proto of response.regions) {
        // The split region's leader leads its new parts first (they campaign on its store).
        const part = regionFromProto(proto, { preferStoreId: region.leader.storeId });
        if (part !== null) made.set(part.id, part);
      }
    });
  };
  const sorted = uniqueKeys(keys).sort((a, b) =>
    compareBytes(rpc.keySpace.regionKey(a), rpc.keySpace.regionKey(b))
  );
  if (sorted.length > 0) await sendGroups(sorted, options.backoffer);
  return [...made.values()].sort((a, b) => compareBytes(a.startKey, b.startKey));
}
