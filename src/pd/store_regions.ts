/**
 * The regions on each store, by the role the store's replica plays (PD's per-store leader,
 * follower and learner sub-trees in `pkg/core/region.go`), and each store's totals, kept up to
 * date on every change of the region tree so that a scheduler finds its candidates and a store's
 * load without walking every region.
 *
 * Invariants (the randomized test `store_regions_test.ts` checks them against a full walk after
 * random changes):
 * 1. A region is in exactly one of a store's three sets when it has a peer on that store, and in
 *    none otherwise: `leaders` when its known leader is on the store, else `learners` when that
 *    peer is a Learner, else `followers` (a voter, incoming or demoting voter not leading).
 *    A region that (malformed) names two peers on one store counts once, by its first peer.
 * 2. A store's `sizeMb` is the sum of `regionSizeMb` over the regions in its three sets.
 * 3. A store whose three sets are empty is forgotten (the map holds only stores with replicas).
 *
 * Sets are arrays with a position map: add, remove and a uniform random pick are O(1).
 *
 * @module
 */
import { assert } from "../util/assert.ts";
import type { RandomSource, RegionInfo } from "./types.ts";

/** The role a store's replica plays in a region, as the schedulers group them. */
export type StoreRole = "leader" | "follower" | "learner";

/** A region's size as the balance schedulers count it: whole MiB, at least 1. */
export function regionSizeMb(region: RegionInfo): number {
  return Math.max(1, Number(region.approximateSizeBytes / (1024n * 1024n)));
}

/** A set of region ids with O(1) add, remove and random pick; iteration order is unspecified. */
export class RegionIdSet {
  readonly #ids: bigint[] = [];
  readonly #positions = new Map<bigint, number>();

  get size(): number {
    return this.#ids.length;
  }

  has(id: bigint): boolean {
    return this.#positions.has(id);
  }

  add(id: bigint): void {
    assert(!this.#positions.has(id), `region ${id} is already in the set`);
    this.#positions.set(id, this.#ids.length);
    this.#ids.push(id);
  }

  remove(id: bigint): void {
    const position = this.#positions.get(id);
    assert(position !== undefined, `region ${id} is not in the set`);
    const last = this.#ids.pop()!;
    if (last !== id) {
      this.#ids[position] = last;
      this.#positions.set(last, position);
    }
    this.#positions.delete(id);
  }

  /** A uniformly chosen id; the set must not be empty. */
  pick(random: RandomSource): bigint {
    assert(this.#ids.length > 0, "pick from an empty region set");
    return this.#ids[random.int(this.#ids.length)]!;
  }

  /** The ids, in no particular order. */
  values(): readonly bigint[] {
    return this.#ids;
  }
}

/** One store's replicas by role, and their total size. */
export interface StoreRegions {
  leaders: RegionIdSet;
  followers: RegionIdSet;
  learners: RegionIdSet;
  /** Sum of the regions' `regionSizeMb`. */
  sizeMb: number;
}

/** Each store's role in `region`, by invariant 1. */
export function rolesOf(region: RegionInfo): Map<bigint, StoreRole> {
  const roles = new Map<bigint, StoreRole>();
  for (const peer of region.meta.peers) {
    if (roles.has(peer.storeId)) continue;
    const role: StoreRole = region.leader?.storeId === peer.storeId
      ? "leader"
      : peer.role === "Learner"
      ? "learner"
      : "follower";
    roles.set(peer.storeId, role);
  }
  return roles;
}

/** The per-store index; `RegionTree` calls `update` on every put and remove. */
export class StoreRegionIndex {
  readonly #stores = new Map<bigint, StoreRegions>();

  /** `storeId`'s replicas, or `null` when it holds none. */
  get(storeId: bigint): StoreRegions | null {
    return this.#stores.get(storeId) ?? null;
  }

  /** Stores holding at least one replica. */
  storeIds(): bigint[] {
    return [...this.#stores.keys()];
  }

  /** Replicas (any role) on `storeId`. */
  regionCount(storeId: bigint): number {
    const store = this.#stores.get(storeId);
    if (store === undefined) return 0;
    return store.leaders.size + store.followers.size + store.learners.size;
  }

  /**
   * Replaces `before` (the region's old version, or `null` when new) by `after` (`null` when
   * removed). Only the stores whose role changed are touched; sizes move by the difference.
   */
  update(before: RegionInfo | null, after: RegionInfo | null): void {
    assert(
      before === null || after === null || before.meta.id === after.meta.id,
      "an index update replaces a region by a version of itself",
      { before: before?.meta.id, after: after?.meta.id },
    );
    const id = (after ?? before)?.meta.id;
    if (id === undefined) return;
    const oldRoles = before === null ? new Map<bigint, StoreRole>() : rolesOf(before);
    const newRoles = after === null ? new Map<bigint, StoreRole>() : rolesOf(after);
    const oldSize = before === null ? 0 : regionSizeMb(before);
    const newSize = after === null ? 0 : regionSizeMb(after);
    for (const [storeId, role] of oldRoles) {
      const store = this.#stores.get(storeId)!;
      assert(store !== undefined, `store ${storeId} missing from the index`, { region: id });
      store.sizeMb -= oldSize;
      if (newRoles.get(storeId) !== role) this.#setOf(store, role).remove(id);
      if (!newRoles.has(storeId)) this.#forgetIfEmpty(storeId, store);
    }
    for (const [storeId, role] of newRoles) {
      const store = this.#storeOf(storeId);
      store.sizeMb += newSize;
      if (oldRoles.get(storeId) !== role) this.#setOf(store, role).add(id);
    }
  }

  #setOf(store: StoreRegions, role: StoreRole): RegionIdSet {
    return role === "leader"
      ? store.leaders
      : role === "learner"
      ? store.learners
      : store.followers;
  }

  #storeOf(storeId: bigint): StoreRegions {
    let store = this.#stores.get(storeId);
    if (store === undefined) {
      store = {
        leaders: new RegionIdSet(),
        followers: new RegionIdSet(),
        learners: new RegionIdSet(),
        sizeMb: 0,
      };
      this.#stores.set(storeId, store);
    }
    return store;
  }

  #forgetIfEmpty(storeId: bigint, store: StoreRegions): void {
    if (store.leaders.size + store.followers.size + store.learners.size > 0) return;
    assert(store.sizeMb === 0, `store ${storeId} holds no region but ${store.sizeMb} MiB`);
    this.#stores.delete(storeId);
  }
}
