/**
 * The resolver backed by PD: regions by key and id from `pdpb.PD` GetRegion / GetPrevRegion /
 * GetRegionByID / ScanRegions, store addresses from GetStore, cached in a `RegionCache`.
 *
 * The region holding the keys below +infinity (a reverse scan's first region) has no PD call of
 * its own: it is found by scanning regions from the first key to the last, which also warms the
 * cache.
 */
import { metapb } from "../../proto/mod.ts";
import { compareBytes } from "../util/bytes.ts";
import { CachedRegionResolver, type RegionSource } from "./cached_resolver.ts";
import { PD_SCAN_REGIONS_LIMIT } from "./constants.ts";
import { PdError } from "./errors.ts";
import { PdClient, type PdRegion } from "./pd_client.ts";
import type { TlsIdentity } from "../security/tls.ts";
import { regionFromProto, type RegionInfo } from "./region.ts";
import type { RegionCache } from "./region_cache.ts";
import type { LookupOptions } from "./region_resolver.ts";

const EMPTY = new Uint8Array(0);

function infoOf(route: PdRegion | null): RegionInfo | null {
  return route === null ? null : regionFromProto(route.region, { leader: route.leader });
}

/** Regions and stores from PD (`pdpb.PD`): a `RegionSource` for a cached resolver. */
export class PdRegionSource implements RegionSource {
  constructor(readonly pd: PdClient) {}

  async regionByKey(key: Uint8Array, options: LookupOptions): Promise<RegionInfo | null> {
    return infoOf(await this.pd.getRegion(key, options));
  }

  async regionBeforeKey(key: Uint8Array, options: LookupOptions): Promise<RegionInfo | null> {
    if (key.length === 0) return await this.#lastRegion(options);
    const containing = infoOf(await this.pd.getRegion(key, options));
    if (containing !== null && compareBytes(containing.startKey, key) < 0) return containing;
    return infoOf(await this.pd.getPrevRegion(key, options));
  }

  async regionById(regionId: bigint, options: LookupOptions): Promise<RegionInfo | null> {
    return infoOf(await this.pd.getRegionById(regionId, options));
  }

  async storeAddress(storeId: bigint, options: LookupOptions): Promise<string> {
    const store = await this.pd.getStore(storeId, options);
    if (store.state === metapb.StoreState.Tombstone) {
      throw new PdError("STORE_TOMBSTONE", `store ${storeId} is a tombstone`);
    }
    if (store.address === "") throw new PdError("UNKNOWN", `store ${storeId} has no address`);
    return store.address;
  }

  close(): void {
    this.pd.close();
  }

  async #lastRegion(options: LookupOptions): Promise<RegionInfo | null> {
    let startKey: Uint8Array = EMPTY;
    for (;;) {
      const page = await this.pd.scanRegions(
        { startKey, endKey: EMPTY, limit: PD_SCAN_REGIONS_LIMIT },
        options,
      );
      const last = page[page.length - 1];
      if (last === undefined) return null;
      const end = last.region.endKey ?? EMPTY;
      if (end.length === 0) return infoOf(last);
      if (compareBytes(end, startKey) <= 0) return null; // PD answered out of order: give up
      startKey = end;
    }
  }
}

/** A resolver asking PD. */
export class PdResolver extends CachedRegionResolver {
  /** The PD client, shared with whoever needs PD for more (e.g. timestamps). */
  readonly pd: PdClient;

  /** A resolver over `pd`; `options.cache` replaces the default cache (TTL `REGION_CACHE_TTL_MS`). */
  constructor(pd: PdClient, options: { cache?: RegionCache } = {}) {
    super(new PdRegionSource(pd), options);
    this.pd = pd;
  }

  /** Connects to PD at one of `endpoints` (host:port). */
  static async connect(
    endpoints: readonly string[],
    options: { timeoutMs?: number; tls?: TlsIdentity | null } = {},
  ): Promise<PdResolver> {
    return new PdResolver(await PdClient.connect(endpoints, options));
  }
}
