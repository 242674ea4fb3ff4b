/**
 * The routing table of a store's main thread (DESIGN.md §4.1): region id → the region-group
 * worker that serves it. A table, not a modulo: a new region goes to the least-loaded worker, a
 * split region would stay with its parent's worker, and a region can be moved between workers
 * because its state is on disk (`RegionWorkers.moveRegion` drains it from one worker before the
 * other loads it).
 *
 * Invariants:
 * - Every region in the table has exactly one group, in [0, groups).
 * - `regionsOf(group)` is exactly the regions whose `groupOf` is `group`; the counts per group
 *   add up to the table's size.
 *
 * Pure: no I/O, no timers. An id that is not in the table has no group here; the caller routes
 * its requests to any worker, which answers `RegionNotFound` as it does for any region it does
 * not serve.
 *
 * @module
 */
import { ROUTING_TABLE_MAX_REGIONS } from "../constants.ts";
import { assert } from "../util/assert.ts";

/** An expected refusal of a change to the table. */
export type RoutingFailure =
  | { code: "RegionExists"; regionId: bigint; group: number }
  | { code: "RegionUnknown"; regionId: bigint }
  | { code: "NoSuchGroup"; group: number; groups: number }
  | { code: "TableFull"; limit: number };

/** A readable sentence for `failure`, naming the region or group. */
export function describeRoutingFailure(failure: RoutingFailure): string {
  switch (failure.code) {
    case "RegionExists":
      return `region ${failure.regionId} is already served by worker ${failure.group}`;
    case "RegionUnknown":
      return `region ${failure.regionId} is not in the routing table`;
    case "NoSuchGroup":
      return `worker ${failure.group} does not exist (this store has ${failure.groups})`;
    case "TableFull":
      return `the routing table holds at most ${failure.limit} regions`;
  }
}

/** Region id → worker group. */
export class RoutingTable {
  readonly #groupByRegion = new Map<bigint, number>();
  /** Per group, its regions (kept in step with `#groupByRegion`). */
  readonly #regionsByGroup: Set<bigint>[];

  constructor(readonly groups: number) {
    assert(Number.isSafeInteger(groups) && groups >= 1, "a store has at least one worker", {
      groups,
    });
    this.#regionsByGroup = Array.from({ length: groups }, () => new Set<bigint>());
  }

  /** How many regions the table holds. */
  get size(): number {
    return this.#groupByRegion.size;
  }

  /** The group serving `regionId`, or undefined when the table does not hold it. */
  groupOf(regionId: bigint): number | undefined {
    return this.#groupByRegion.get(regionId);
  }

  /** The regions of `group`, in the order they joined it. */
  regionsOf(group: number): bigint[] {
    return [...this.#regionsOf(group)];
  }

  /** Every region with its group. */
  entries(): { regionId: bigint; group: number }[] {
    return [...this.#groupByRegion].map(([regionId, group]) => ({ regionId, group }));
  }

  /**
   * Adds `regionId` to the group with the fewest regions (the lowest group on a tie), or to
   * `options.group` when given (a split region joins its parent's). Returns the group.
   */
  add(regionId: bigint, options: { group?: number } = {}): number | RoutingFailure {
    const existing = this.#groupByRegion.get(regionId);
    if (existing !== undefined) return { code: "RegionExists", regionId, group: existing };
    if (this.size >= ROUTING_TABLE_MAX_REGIONS) {
      return { code: "TableFull", limit: ROUTING_TABLE_MAX_REGIONS };
    }
    const group = options.group ?? this.leastLoaded();
    if (!this.#isGroup(group)) return { code: "NoSuchGroup", group, groups: this.groups };
    this.#place(regionId, group);
    return group;
  }

  /** Moves `regionId` to `group`; returns the group it left. */
  move(regionId: bigint, group: number): number | RoutingFailure {
    const from = this.#groupByRegion.get(regionId);
    if (from === undefined) return { code: "RegionUnknown", regionId };
    if (!this.#isGroup(group)) return { code: "NoSuchGroup", group, groups: this.groups };
    this.#regionsOf(from).delete(regionId);
    this.#place(regionId, group);
    return from;
  }

  /** Removes `regionId`; returns the group it left. */
  remove(regionId: bigint): number | RoutingFailure {
    const from = this.#groupByRegion.get(regionId);
    if (from === undefined) return { code: "RegionUnknown", regionId };
    this.#regionsOf(from).delete(regionId);
    this.#groupByRegion.delete(regionId);
    return from;
  }

  /** The group with the fewest regions; the lowest on a tie. */
  leastLoaded(): number {
    let best = 0;
    for (let group = 1; group < this.groups; group++) {
      if (this.#regionsOf(group).size < this.#regionsOf(best).size) best = group;
    }
    return best;
  }

  #place(regionId: bigint, group: number): void {
    this.#groupByRegion.set(regionId, group);
    this.#regionsOf(group).add(regionId);
    assert(
      this.#groupByRegion.get(regionId) === group && this.#regionsOf(group).has(regionId),
      "a placed region is in its group's set",
      { regionId, group },
    );
  }

  #regionsOf(group: number): Set<bigint> {
    const regions = this.#regionsByGroup[group];
    assert(regions !== undefined, "a group of the table exists", { group, groups: this.groups });
    return regions;
  }

  #isGroup(group: number): boolean {
    return Number.isSafeInteger(group) && group >= 0 && group < this.groups;
  }
}
