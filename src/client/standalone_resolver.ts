/**
 * The resolver of a standalone store: one store at a given address (store 1), its regions from
 * the PD it embeds (a standalone store serves `pdpb.PD` too, and knows its regions after a
 * split), cached and corrected by region errors like any other.
 *
 * A store that does not serve PD (it answers UNIMPLEMENTED) is taken to hold the one region it
 * bootstrapped — region 1, peer 2, epoch {conf_ver 1, version 1}, every key, as
 * `src/server/region.ts` creates it — and a region that moved on from it is followed through
 * EpochNotMatch's current regions. Store 1's address is always the one given: a standalone
 * store is that one address, whatever it advertises.
 */
import { CachedRegionResolver, type RegionSource } from "./cached_resolver.ts";
import { ServerError, UnsupportedError } from "./errors.ts";
import { PdClient } from "./pd_client.ts";
import { PdRegionSource } from "./pd_resolver.ts";
import type { RegionInfo } from "./region.ts";
import type { LookupOptions } from "./region_resolver.ts";
import type { TlsIdentity } from "../security/tls.ts";

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

/** How the resolver reaches the store's embedded PD. */
export interface StandaloneOptions {
  /** Deadline of connecting to the embedded PD (default `PD_REQUEST_TIMEOUT_MS`). */
  timeoutMs?: number;
  tls?: TlsIdentity | null;
}

class StandaloneSource implements RegionSource {
  /** The embedded PD once connected; null when the store serves none. */
  #pd: Promise<PdRegionSource | null> | null = null;

  constructor(readonly address: string, readonly options: StandaloneOptions) {}

  async regionByKey(key: Uint8Array, options: LookupOptions): Promise<RegionInfo | null> {
    const pd = await this.#embeddedPd();
    return pd === null ? standaloneRegion() : await pd.regionByKey(key, options);
  }

  async regionBeforeKey(key: Uint8Array, options: LookupOptions): Promise<RegionInfo | null> {
    // Without a PD: every non-empty key has the empty key below it, and the one region holds both.
    const pd = await this.#embeddedPd();
    return pd === null ? standaloneRegion() : await pd.regionBeforeKey(key, options);
  }

  async regionById(regionId: bigint, options: LookupOptions): Promise<RegionInfo | null> {
    const pd = await this.#embeddedPd();
    if (pd !== null) return await pd.regionById(regionId, options);
    return regionId === STANDALONE_REGION_ID ? standaloneRegion() : null;
  }

  storeAddress(storeId: bigint): Promise<string> {
    if (storeId !== STANDALONE_STORE_ID) {
      return Promise.reject(new ServerError(`standalone: no store ${storeId}`));
    }
    return Promise.resolve(this.address);
  }

  close(): void {
    this.#pd?.then((pd) => pd?.close(), () => {});
    this.#pd = null;
  }

  /**
   * The embedded PD, connected at the first lookup; null when the store serves no PD. A
   * failure to connect (the store is down) fails this lookup only: the next one tries again.
   */
  #embeddedPd(): Promise<PdRegionSource | null> {
    this.#pd ??= PdClient.connect([this.address], this.options).then(
      (pd) => new PdRegionSource(pd),
      (error) => {
        if (error instanceof UnsupportedError) return null;
        this.#pd = null;
        throw error;
      },
    );
    return this.#pd;
  }
}

/** Resolves every key to the standalone store at `address` (host:port). */
export class StandaloneResolver extends CachedRegionResolver {
  constructor(readonly address: string, options: StandaloneOptions = {}) {
    super(new StandaloneSource(address, options));
  }
}
