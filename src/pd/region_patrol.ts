/**
 * Which regions the replica and merge checkers look at in one round (PD's checker controller:
 * a patrol that walks the region tree in slices from a cursor, and the regions waiting for an
 * immediate check because a heartbeat changed something the checkers weigh).
 *
 * Why: checking every region every round cost O(regions) per round, 10–30 ms at 10,000 regions
 * and a large share of a 1 s round at 100,000 (issue #11). A cluster of at most
 * `PD_PATROL_REGIONS_MIN` regions is still checked whole each round, in key order, as before.
 *
 * Invariants:
 * 1. One round's slice holds at most `patrolSliceSize(regions)` regions, so every region is
 *    visited within `PD_PATROL_ROUNDS_PER_PASS` rounds (the cursor moves on past each slice and
 *    wraps at the end of the key space).
 * 2. At most `PD_SUSPECT_REGIONS_MAX` regions wait; a round takes at most
 *    `PD_SUSPECT_REGIONS_PER_ROUND` of them, oldest first. A region marked while the queue is
 *    full waits for the patrol instead.
 *
 * @module
 */
import {
  PD_PATROL_REGIONS_MAX,
  PD_PATROL_REGIONS_MIN,
  PD_PATROL_ROUNDS_PER_PASS,
  PD_SUSPECT_REGIONS_MAX,
  PD_SUSPECT_REGIONS_PER_ROUND,
} from "../constants.ts";
import { assert } from "../util/assert.ts";
import type { RegionTree } from "./region_tree.ts";
import type { RegionInfo } from "./types.ts";

/** How many regions one round's patrol slice checks when the tree holds `regionCount`. */
export function patrolSliceSize(regionCount: number): number {
  const share = Math.ceil(regionCount / PD_PATROL_ROUNDS_PER_PASS);
  return Math.min(PD_PATROL_REGIONS_MAX, Math.max(PD_PATROL_REGIONS_MIN, share));
}

/** The patrol's cursor and the regions waiting for an immediate check. */
export class RegionPatrol {
  /** The start key of the next slice; empty is the start of the key space. */
  #cursor: Uint8Array = new Uint8Array(0);
  /** Region ids waiting, oldest first (a Set keeps insertion order). */
  readonly #suspects = new Set<bigint>();

  /** Where the next slice starts (empty: the start of the key space). */
  get cursor(): Uint8Array {
    return this.#cursor;
  }

  /** Regions waiting for an immediate check. */
  get suspectCount(): number {
    return this.#suspects.size;
  }

  /** Asks for `regionId` to be checked in the next round (invariant 2 bounds the queue). */
  markSuspect(regionId: bigint): void {
    if (this.#suspects.size >= PD_SUSPECT_REGIONS_MAX) return;
    this.#suspects.add(regionId);
  }

  /** Takes up to `PD_SUSPECT_REGIONS_PER_ROUND` waiting regions still in `tree`, oldest first. */
  takeSuspects(tree: RegionTree): RegionInfo[] {
    const out: RegionInfo[] = [];
    for (const id of this.#suspects) {
      if (out.length >= PD_SUSPECT_REGIONS_PER_ROUND) break;
      this.#suspects.delete(id);
      const region = tree.getById(id);
      if (region !== null) out.push(region);
    }
    return out;
  }

  /**
   * The next slice of the tree in key order (invariant 1), or the whole tree when it is no
   * larger than a slice (then the waiting regions are dropped: they are all in it).
   */
  nextSlice(tree: RegionTree): { regions: readonly RegionInfo[]; whole: boolean } {
    const size = patrolSliceSize(tree.size);
    if (tree.size <= size) {
      this.#cursor = new Uint8Array(0);
      this.#suspects.clear();
      return { regions: tree.all(), whole: true };
    }
    const noEnd = new Uint8Array(0);
    const regions = tree.scan({ startKey: this.#cursor, endKey: noEnd, limit: size });
    if (regions.length < size) {
      // Wrap to the start. The first scan took a suffix of the key order, this takes a prefix,
      // and together they are `size` < `tree.size` regions: the two never meet.
      regions.push(...tree.scan({ startKey: noEnd, endKey: noEnd, limit: size - regions.length }));
    }
    const last = regions[regions.length - 1];
    assert(last !== undefined && regions.length <= size, "a patrol slice is bounded", {
      slice: regions.length,
      size,
    });
    this.#cursor = last.meta.endKey;
    return { regions, whole: false };
  }
}
