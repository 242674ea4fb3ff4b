/**
 * The resolver of a standalone store: one store at a given address, one region over every key
 * (store 1, region 1, peer 2, epoch {conf_ver 1, version 1}, as `src/server/region.ts`
 * bootstraps it). Region errors still update the cache, so a store whose region epoch moved is
 * followed through `EpochNotMatch`'s current regions.
 */
import { CachedRegionResolver, type RegionSource } from "./cached_resolver.ts";
import { ServerError } from "./errors.ts";
import type { RegionInfo } from "./region.ts";

/** The standalone store's identifiers (see `src/server/region.ts`). */
export const STANDALONE_STORE_ID = 1n;
export const STANDALONE_REGION_ID = 1n;
export const STANDALONE_PEER_ID = 2n;

/** The standalone store's one region as first bootstrapped. */
export function standaloneRegion(): RegionInfo {
  const peer = { id: STANDALONE_PEER_ID, storeId: STANDALONE_STORE_ID };
  return {
    id: STANDALONE_REGION_ID,
    startKey: new Uint8Array(0),
    endKey: new Uint8Array(0),
    epoch: { confVer: 1n, version: 1n },
    peers: [peer],
    leader: peer,
  };
}

class StandaloneSource implements RegionSource {
  constructor(readonly address: string) {}

  regionByKey(): Promise<RegionInfo> {
    return Promise.resolve(standaloneRegion());
  }

  regionBeforeKey(): Promise<RegionInfo> {
    // Every non-empty key has the empty key below it, and the one region holds both.
    return Promise.resolve(standaloneRegion());
  }

  regionById(regionId: bigint): Promise<RegionInfo | null> {
    return Promise.resolve(regionId === STANDALONE_REGION_ID ? standaloneRegion() : null);
  }

  storeAddress(storeId: bigint): Promise<string> {
    if (storeId !== STANDALONE_STORE_ID) {
      return Promise.reject(new ServerError(`standalone: no store ${storeId}`));
    }
    return Promise.resolve(this.address);
  }

  close(): void {}
}

/** Resolves every key to the standalone store at `address` (host:port). */
export class StandaloneResolver extends CachedRegionResolver {
  constructor(readonly address: string) {
    super(new StandaloneSource(address));
  }
}
