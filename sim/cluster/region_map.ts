/**
 * The simulator's view of the regions, as PD would hold it from heartbeats: of every live
 * initialized replica's region, the newest (epoch version, then conf_ver) per region id, then —
 * newest version first — only regions whose range no newer one covers (a merged source's
 * lagging replica or a split parent's stale view drops out). Sorted by start key.
 *
 * It is an oracle for routing and scheduling only; checkers never trust it.
 *
 * @module
 */

import type { RegionMeta } from "../../src/raftstore/local_state.ts";
import type { Cluster } from "../../src/raftstore/testing/cluster.ts";
import { compareBytes } from "../../src/util/bytes.ts";

/** The current regions, non-overlapping, by start key. */
export function regionMap(c: Cluster): RegionMeta[] {
  const newest = new Map<bigint, RegionMeta>();
  for (const id of c.storeIds) {
    if (!c.isUp(id)) continue;
    for (const peer of c.store(id).peers()) {
      if (!peer.isInitialized() || peer.destroyed) continue;
      const r = peer.region();
      const seen = newest.get(r.id);
      if (seen === undefined || newerThan(r, seen)) newest.set(r.id, r);
    }
  }
  const byVersion = [...newest.values()].sort((a, b) =>
    a.regionEpoch.version > b.regionEpoch.version
      ? -1
      : a.regionEpoch.version < b.regionEpoch.version
      ? 1
      : a.id < b.id
      ? -1
      : 1
  );
  const kept: RegionMeta[] = [];
  for (const r of byVersion) {
    if (!kept.some((k) => overlaps(k, r))) kept.push(r);
  }
  return kept.sort((a, b) => compareBytes(a.startKey, b.startKey));
}

function newerThan(a: RegionMeta, b: RegionMeta): boolean {
  if (a.regionEpoch.version !== b.regionEpoch.version) {
    return a.regionEpoch.version > b.regionEpoch.version;
  }
  return a.regionEpoch.confVer > b.regionEpoch.confVer;
}

function overlaps(a: RegionMeta, b: RegionMeta): boolean {
  const aBeforeBEnds = b.endKey.length === 0 || compareBytes(a.startKey, b.endKey) < 0;
  const bBeforeAEnds = a.endKey.length === 0 || compareBytes(b.startKey, a.endKey) < 0;
  return aBeforeBEnds && bBeforeAEnds;
}

/** A region's range, printable (`[b, f)`; empty bounds as -∞/+∞). */
export function describeRange(r: RegionMeta): string {
  const text = (k: Uint8Array, inf: string) => k.length === 0 ? inf : new TextDecoder().decode(k);
  return `[${text(r.startKey, "-∞")}, ${text(r.endKey, "+∞")})`;
}
