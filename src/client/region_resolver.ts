/**
 * Where a request for a key goes: the interface the request loops (`RawKV`, the transactional
 * client) use to find regions and stores, and to report what a region error taught them.
 *
 * Implementations: `StandaloneResolver` (one store, one region over every key) and
 * `PdResolver` (regions and stores from PD's `pdpb.PD` service), both over the region cache in
 * `cached_resolver.ts`. This module imports no implementation.
 */
import type { errorpb } from "../../proto/mod.ts";
import type { RegionInfo } from "./region.ts";

/** Options of a lookup: its deadline, ms since the Unix epoch. */
export interface LookupOptions {
  deadlineMs: number;
}

/** Finds regions and store addresses, caching what it learns. */
export interface RegionResolver {
  /** The region containing `key`. */
  locateKey(key: Uint8Array, options: LookupOptions): Promise<RegionInfo>;
  /**
   * The region holding the keys just below `key` (an empty `key` means +infinity, so the last
   * region). Reverse scans walk regions with it.
   */
  locateEndKey(key: Uint8Array, options: LookupOptions): Promise<RegionInfo>;
  /** The region with id `regionId`, or null if there is none. */
  regionById(regionId: bigint, options: LookupOptions): Promise<RegionInfo | null>;
  /** The gRPC address (host:port) of store `storeId`. */
  storeAddress(storeId: bigint, options: LookupOptions): Promise<string>;
  /**
   * Learns from a region error that `region`'s leader returned: a new leader (NotLeader), the
   * current regions (EpochNotMatch), or that the cached entry is stale and must be reloaded.
   */
  onRegionError(region: RegionInfo, error: errorpb.Error.$Properties): void;
  /** Forgets `regionId`; the next lookup asks the source again. */
  invalidateRegion(regionId: bigint): void;
  /** Store `storeId` could not be reached: forget its address and the regions routed to it. */
  invalidateStore(storeId: bigint): void;
  /** Releases connections (to PD). */
  close(): void;
}
