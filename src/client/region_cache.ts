/**
 * The client's region cache: regions ordered by start key, for "which region holds this key"
 * without asking PD. Pure (no I/O; the clock is the caller's, passed in `ttl.nowMs`).
 *
 * With a TTL (client-go's `region-cache-ttl`), an entry not used for `ttlMs` counts as absent:
 * the lookup that finds it drops it, so the caller loads the region from PD again. Each hit
 * restarts the entry's TTL, as client-go's `checkRegionCacheTTL` does: a region in use is kept
 * right by the region errors its requests meet, an idle one is not, and it may have split,
 * merged or moved while nobody looked.
 *
 * Invariants: cached regions never overlap (inserting a region drops every cached region its
 * range overlaps, which is how a split or merge learned from `EpochNotMatch` replaces the stale
 * entries); `#byStart` is sorted by start key; `#byId` holds exactly the regions of `#byStart`;
 * at most `maxRegions` regions are held (the least recently inserted go first); `#lastUsedMs`
 * holds exactly the ids of `#byId` when a TTL is set.
 */
import { assert } from "../util/assert.ts";
import { compareBytes } from "../util/bytes.ts";
import { REGION_CACHE_MAX_REGIONS } from "./constants.ts";
import {
  type PeerInfo,
  regionContains,
  regionContainsEndKey,
  type RegionInfo,
  withLeader,
} from "./region.ts";

/** How long an unused entry stays valid, and the clock that says what time it is. */
export interface RegionCacheTtl {
  ttlMs: number;
  nowMs: () => number;
}

/** Regions by key range and by id. */
export class RegionCache {
  readonly #byStart: RegionInfo[] = [];
  /** Insertion order doubles as eviction order. */
  readonly #byId = new Map<bigint, RegionInfo>();
  /** When each entry was inserted or last found (only with a TTL). */
  readonly #lastUsedMs = new Map<bigint, number>();
  readonly #maxRegions: number;
  readonly #ttl: RegionCacheTtl | null;

  constructor(options: { maxRegions?: number; ttl?: RegionCacheTtl } = {}) {
    this.#maxRegions = options.maxRegions ?? REGION_CACHE_MAX_REGIONS;
    if (this.#maxRegions < 1) throw new RangeError("a region cache holds at least one region");
    this.#ttl = options.ttl ?? null;
    if (this.#ttl !== null && !(this.#ttl.ttlMs > 0)) {
      throw new RangeError("a region cache TTL must be positive");
    }
  }

  /** Regions held. */
  get size(): number {
    return this.#byId.size;
  }

  /** Every cached region in key order. */
  regions(): readonly RegionInfo[] {
    return [...this.#byStart];
  }

  /** The cached region containing `key`, or null (also when its TTL ran out). */
  locate(key: Uint8Array): RegionInfo | null {
    const index = this.#lastStartingAtOrBefore(key, { inclusive: true });
    const region = index < 0 ? undefined : this.#byStart[index];
    return region !== undefined && regionContains(region, key) ? this.#use(region) : null;
  }

  /** The cached region holding the keys just below `key` (empty = +infinity), or null. */
  locateEnd(key: Uint8Array): RegionInfo | null {
    const region = key.length === 0
      ? this.#byStart[this.#byStart.length - 1]
      : this.#byStart[this.#lastStartingAtOrBefore(key, { inclusive: false })];
    return region !== undefined && regionContainsEndKey(region, key) ? this.#use(region) : null;
  }

  /** The cached region with id `regionId`, or null (also when its TTL ran out). */
  get(regionId: bigint): RegionInfo | null {
    const region = this.#byId.get(regionId);
    return region === undefined ? null : this.#use(region);
  }

  /** Caches `region`, dropping every cached region it overlaps (older epochs of it included). */
  insert(region: RegionInfo): void {
    this.remove(region.id);
    let first = this.#lastStartingAtOrBefore(region.startKey, { inclusive: true });
    const before = first < 0 ? undefined : this.#byStart[first];
    if (before === undefined || !overlaps(before, region)) first++;
    let end = Math.max(first, 0);
    while (end < this.#byStart.length && overlaps(this.#byStart[end]!, region)) end++;
    for (const dropped of this.#byStart.splice(first, end - first, region)) {
      this.#byId.delete(dropped.id);
      this.#lastUsedMs.delete(dropped.id);
    }
    this.#byId.set(region.id, region);
    if (this.#ttl !== null) this.#lastUsedMs.set(region.id, this.#ttl.nowMs());
    while (this.#byId.size > this.#maxRegions) {
      this.remove(this.#byId.keys().next().value!);
    }
  }

  /** Forgets the region with id `regionId` (no-op if absent). */
  remove(regionId: bigint): void {
    const region = this.#byId.get(regionId);
    if (region === undefined) return;
    this.#byId.delete(regionId);
    this.#lastUsedMs.delete(regionId);
    const index = this.#lastStartingAtOrBefore(region.startKey, { inclusive: true });
    if (this.#byStart[index] !== region) throw new Error(`region cache lost region ${regionId}`);
    this.#byStart.splice(index, 1);
  }

  /**
   * Points region `regionId` at `leader` if that is one of its peers; returns whether the cache
   * changed. A leader outside the cached peers means the cached membership is stale.
   */
  updateLeader(regionId: bigint, leader: PeerInfo): boolean {
    const region = this.#byId.get(regionId);
    if (region === undefined) return false;
    const peer = region.peers.find((p) => p.id === leader.id && p.storeId === leader.storeId);
    if (peer === undefined) return false;
    this.insert(withLeader(region, peer));
    return true;
  }

  /** Forgets every region whose requests go to store `storeId`. */
  removeStore(storeId: bigint): void {
    for (const region of [...this.#byStart]) {
      if (region.leader.storeId === storeId) this.remove(region.id);
    }
  }

  /** Forgets everything. */
  clear(): void {
    this.#byStart.length = 0;
    this.#byId.clear();
    this.#lastUsedMs.clear();
  }

  /** `region` if its TTL has not run out (restarting it), else null after dropping it. */
  #use(region: RegionInfo): RegionInfo | null {
    if (this.#ttl === null) return region;
    const nowMs = this.#ttl.nowMs();
    const lastUsedMs = this.#lastUsedMs.get(region.id);
    assert(lastUsedMs !== undefined, "a cached region has a last-used time", {
      regionId: region.id,
    });
    if (nowMs - lastUsedMs > this.#ttl.ttlMs) {
      this.remove(region.id);
      return null;
    }
    this.#lastUsedMs.set(region.id, nowMs);
    return region;
  }

  /**
   * Index of the last region whose start key is <= `key` (or < `key` when not inclusive);
   * -1 when there is none.
   */
  #lastStartingAtOrBefore(key: Uint8Array, options: { inclusive: boolean }): number {
    let low = 0;
    let high = this.#byStart.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      const order = compareBytes(this.#byStart[mid]!.startKey, key);
      if (order < 0 || (options.inclusive && order === 0)) low = mid + 1;
      else high = mid;
    }
    return low - 1;
  }
}

/** Whether the key ranges of `a` and `b` intersect. */
function overlaps(a: RegionInfo, b: RegionInfo): boolean {
  const aBeforeB = a.endKey.length > 0 && compareBytes(a.endKey, b.startKey) <= 0;
  const bBeforeA = b.endKey.length > 0 && compareBytes(b.endKey, a.startKey) <= 0;
  return !aBeforeB && !bBeforeA;
}
