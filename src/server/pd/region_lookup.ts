/**
 * Region lookups by key, as PD's region tree answers them (`pkg/core/region_tree.go`): the
 * region containing a key, the one just before it, and a scan of those intersecting a range.
 * Pure. Regions are ordered by start key here; an empty end key means "to the last key".
 *
 * @module
 */
import { compareBytes } from "../../util/bytes.ts";
import type { RegionRoute } from "./view.ts";

const EMPTY = new Uint8Array(0);

function startOf(route: RegionRoute): Uint8Array {
  return route.region.startKey ?? EMPTY;
}

function endOf(route: RegionRoute): Uint8Array {
  return route.region.endKey ?? EMPTY;
}

/** Whether `key` lies in [start, end) of the route's region. */
function contains(route: RegionRoute, key: Uint8Array): boolean {
  if (compareBytes(key, startOf(route)) < 0) return false;
  const end = endOf(route);
  return end.length === 0 || compareBytes(key, end) < 0;
}

/** `routes` ordered by start key. */
export function sortedByStart(routes: readonly RegionRoute[]): RegionRoute[] {
  return [...routes].sort((a, b) => compareBytes(startOf(a), startOf(b)));
}

/** The region containing `key`, or `null` (a gap: no such region is known). */
export function regionByKey(routes: readonly RegionRoute[], key: Uint8Array): RegionRoute | null {
  return routes.find((route) => contains(route, key)) ?? null;
}

/**
 * The region just before the one containing `key`: its end key is that region's start key.
 * `null` when `key` is in no region or its region is the first (PD's `searchPrev`).
 */
export function prevRegion(routes: readonly RegionRoute[], key: Uint8Array): RegionRoute | null {
  const current = regionByKey(routes, key);
  if (current === null || startOf(current).length === 0) return null;
  return routes.find((route) => compareBytes(endOf(route), startOf(current)) === 0) ?? null;
}

/** The region with id `regionId`, or `null`. */
export function regionById(routes: readonly RegionRoute[], regionId: bigint): RegionRoute | null {
  return routes.find((route) => (route.region.id ?? 0n) === regionId) ?? null;
}

/**
 * Regions intersecting [startKey, endKey) in key order, at most `limit` of them (no limit when
 * `limit <= 0`); an empty `endKey` means no upper bound (PD's `ScanRegions`).
 */
export function scanRegions(
  routes: readonly RegionRoute[],
  range: { startKey: Uint8Array; endKey: Uint8Array; limit: number },
): RegionRoute[] {
  const out: RegionRoute[] = [];
  for (const route of sortedByStart(routes)) {
    const end = endOf(route);
    if (end.length > 0 && compareBytes(end, range.startKey) <= 0) continue;
    if (range.endKey.length > 0 && compareBytes(startOf(route), range.endKey) >= 0) break;
    if (range.limit > 0 && out.length >= range.limit) break;
    out.push(route);
  }
  return out;
}
