/**
 * A `RegionResolver` over a `RegionCache`, loading misses from a `RegionSource` (PD, or the
 * fixed region of a standalone store) and learning from region errors as TiKV's client does:
 *
 * | region error                         | what the cache does                                  |
 * | ------------------------------------ | ---------------------------------------------------- |
 * | NotLeader with a leader among peers  | points the region at the new leader                  |
 * | NotLeader without one                | forgets the region (reloaded on next use)            |
 * | EpochNotMatch with current regions   | replaces the stale entries with the current regions  |
 * |                                      | (a region cached at the same epoch keeps its leader) |
 * | EpochNotMatch, the store behind      | forgets the region, but does not take the store's    |
 * |                                      | older view of it (the source is asked again)         |
 * | StoreNotMatch                        | forgets the region and the store's address           |
 * | RegionNotFound, KeyNotInRegion, other| forgets the region                                   |
 * | ServerIsBusy, StaleCommand, …        | nothing: the same place is right, only later         |
 */
import type { errorpb } from "../../proto/mod.ts";
import { bytesEqual, toHex } from "../util/bytes.ts";
import { RegionError } from "./errors.ts";
import { epochBehind, regionFromProto, type RegionInfo } from "./region.ts";
import { type Clock, REAL_CLOCK } from "./clock.ts";
import { RegionCache } from "./region_cache.ts";
import { REGION_CACHE_TTL_MS } from "./constants.ts";
import type { LookupOptions, RegionResolver } from "./region_resolver.ts";

/** Where a resolver loads what its cache misses. */
export interface RegionSource {
  /** The region containing `key`, or null if none is known. */
  regionByKey(key: Uint8Array, options: LookupOptions): Promise<RegionInfo | null>;
  /** The region holding the keys just below `key` (empty = +infinity), or null. */
  regionBeforeKey(key: Uint8Array, options: LookupOptions): Promise<RegionInfo | null>;
  /** The region with id `regionId`, or null. */
  regionById(regionId: bigint, options: LookupOptions): Promise<RegionInfo | null>;
  /** The gRPC address of store `storeId`. */
  storeAddress(storeId: bigint, options: LookupOptions): Promise<string>;
  close(): void;
}

/** Region errors after which the cached region is still right (retry the same place later). */
const KEEP_REGION_ERRORS = [
  "serverIsBusy",
  "staleCommand",
  "maxTimestampNotSynced",
  "readIndexNotReady",
  "proposalInMergingMode",
  "dataIsNotReady",
  "raftEntryTooLarge",
  "diskFull",
  "RecoveryInProgress",
  "FlashbackInProgress",
  "FlashbackNotPrepared",
  "undeterminedResult",
] as const;

/** A cached resolver; subclasses supply the source. */
export class CachedRegionResolver implements RegionResolver {
  readonly cache: RegionCache;
  readonly #source: RegionSource;
  readonly #storeAddresses = new Map<bigint, string>();

  /**
   * A resolver loading from `source`; its cache (`options.cache`) defaults to one whose entries
   * unused for `REGION_CACHE_TTL_MS` (by `options.clock`, the real one by default) are loaded
   * again.
   */
  constructor(source: RegionSource, options: { cache?: RegionCache; clock?: Clock } = {}) {
    this.#source = source;
    const clock = options.clock ?? REAL_CLOCK;
    this.cache = options.cache ??
      new RegionCache({ ttl: { ttlMs: REGION_CACHE_TTL_MS, nowMs: () => clock.nowMs() } });
  }

  async locateKey(key: Uint8Array, options: LookupOptions): Promise<RegionInfo> {
    const cached = this.cache.locate(key);
    if (cached !== null) return cached;
    const region = await this.#source.regionByKey(key, options);
    if (region === null) throw noRegion(`no region contains key 0x${toHex(key)}`);
    this.cache.insert(region);
    return region;
  }

  async locateEndKey(key: Uint8Array, options: LookupOptions): Promise<RegionInfo> {
    const cached = this.cache.locateEnd(key);
    if (cached !== null) return cached;
    const region = await this.#source.regionBeforeKey(key, options);
    if (region === null) {
      throw noRegion(
        `no region holds the keys below ${key.length === 0 ? "+inf" : `0x${toHex(key)}`}`,
      );
    }
    this.cache.insert(region);
    return region;
  }

  async regionById(regionId: bigint, options: LookupOptions): Promise<RegionInfo | null> {
    const cached = this.cache.get(regionId);
    if (cached !== null) return cached;
    const region = await this.#source.regionById(regionId, options);
    if (region !== null) this.cache.insert(region);
    return region;
  }

  async storeAddress(storeId: bigint, options: LookupOptions): Promise<string> {
    const cached = this.#storeAddresses.get(storeId);
    if (cached !== undefined) return cached;
    const address = await this.#source.storeAddress(storeId, options);
    this.#storeAddresses.set(storeId, address);
    return address;
  }

  onRegionError(region: RegionInfo, error: errorpb.Error.$Properties): void {
    if (error.notLeader != null) {
      const leader = error.notLeader.leader;
      const known = leader != null && (leader.id ?? 0n) !== 0n &&
        this.cache.updateLeader(region.id, { id: leader.id!, storeId: leader.storeId ?? 0n });
      if (!known) this.cache.remove(region.id);
      return;
    }
    if (error.epochNotMatch != null) {
      const current = error.epochNotMatch.currentRegions ?? [];
      this.cache.remove(region.id);
      // A store behind the client (it has not applied the split the client knows of) must
      // not roll the cache back to its view; the region is asked of the source again.
      if (current.some((proto) => epochBehind(proto, region))) return;
      for (const proto of current) {
        // The store that answered holds these regions' peers; prefer it as the leader guess —
        // unless the cache holds the region at this very epoch, with a leader it learned.
        const fresh = regionFromProto(proto, { preferStoreId: region.leader.storeId });
        if (fresh === null || sameEpoch(this.cache.get(fresh.id), fresh)) continue;
        this.cache.insert(fresh);
      }
      return;
    }
    if (error.storeNotMatch != null) {
      this.invalidateStore(region.leader.storeId);
      this.cache.remove(region.id);
      return;
    }
    if (KEEP_REGION_ERRORS.some((field) => error[field] != null)) return;
    this.cache.remove(region.id);
  }

  invalidateRegion(regionId: bigint): void {
    this.cache.remove(regionId);
  }

  invalidateStore(storeId: bigint): void {
    this.#storeAddresses.delete(storeId);
    this.cache.removeStore(storeId);
  }

  close(): void {
    this.cache.clear();
    this.#source.close();
  }
}

/** Whether `cached` is `fresh` at the same epoch and range (nothing new to learn of it). */
function sameEpoch(cached: RegionInfo | null, fresh: RegionInfo): boolean {
  return cached !== null && cached.epoch.version === fresh.epoch.version &&
    cached.epoch.confVer === fresh.epoch.confVer && bytesEqual(cached.startKey, fresh.startKey) &&
    bytesEqual(cached.endKey, fresh.endKey);
}

/** A lookup found no region: retriable, as PD may learn of it shortly. */
function noRegion(message: string): RegionError {
  return new RegionError({ message, regionNotFound: {} }, message);
}
