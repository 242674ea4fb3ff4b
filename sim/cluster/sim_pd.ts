/**
 * PD's two services to the real client in the cluster simulator, over the harness:
 *
 * - `SimTso`: timestamps from the simulated clock — physical part the clock's ms, logical part
 *   counting within one ms — strictly increasing (a clock that did not move still gives a new
 *   one). With the test-only bug `tsoGoesBack` it now and then hands out a timestamp from
 *   `TSO_BUG_LAG_MS` in the past (a PD leader change whose new leader did not wait out the old
 *   one's window): the bank's checker must catch that. With several PD members (`leader`) a
 *   timestamp is asked of the member the caller believes leads and arrives once that member's
 *   window committed — or never, and the caller asks again: the client after
 *   `TSO_RETRY_MS`, up to `TSO_ATTEMPTS` times (then a client error), a store at its next
 *   round.
 * - `SimPdView`: the client's `RegionSource`, as PD answers from heartbeats — a picture of the
 *   cluster's regions and leaders taken every `PD_VIEW_REFRESH_TICKS`, so it lags behind splits,
 *   merges and leader moves as a real PD does (and the client's cache lags further). A picture
 *   that does not cover the whole key space (every replica of some region down) is not taken:
 *   PD keeps what it knew. The client meets the difference as region errors from the stores
 *   (NotLeader, EpochNotMatch, RegionNotFound) and must retry.
 *
 * @module
 */

import type { LookupOptions } from "../../src/client/region_resolver.ts";
import type { RegionSource } from "../../src/client/cached_resolver.ts";
import type { RegionInfo } from "../../src/client/region.ts";
import { composeTimestamp, type TimestampOracle } from "../../src/client/tso.ts";
import { PdError as ClientPdError } from "../../src/client/errors.ts";
import type { RegionMeta } from "../../src/raftstore/local_state.ts";
import type { Cluster } from "../../src/raftstore/testing/cluster.ts";
import { assert } from "../../src/util/assert.ts";
import { compareBytes } from "../../src/util/bytes.ts";
import type { SeededRandom } from "../../src/util/random.ts";
import { regionMap } from "./region_map.ts";
import type { SimClock } from "./sim_clock.ts";

/** Ticks between two pictures of the regions PD answers from. */
export const PD_VIEW_REFRESH_TICKS = 5;
/**
 * How far back a timestamp of the `tsoGoesBack` bug lies, ms: a few rounds, so that it is still
 * after the start of the transaction asking for its commit ts (the client checks that much) but
 * may be before a snapshot another client already read at.
 */
export const TSO_BUG_LAG_MS = 50;
/** Chance that a timestamp of the `tsoGoesBack` bug lies in the past. */
const TSO_BUG_CHANCE = 0.1;
/** With several PD members: ms the client waits before asking again for a timestamp. */
export const TSO_RETRY_MS = 200;
/** With several PD members: attempts of the client's timestamp before it fails (5 s). */
export const TSO_ATTEMPTS = 25;
/** Most timestamps within one ms (the logical part's 18 bits). */
const MAX_LOGICAL = (1 << 18) - 1;

/** The address a store is known by to the client (resolved by `SimLinks`, never dialled). */
export function storeAddress(storeId: bigint): string {
  return `sim-store-${storeId}`;
}

/** The store id of an address made by `storeAddress`. */
export function storeIdOfAddress(address: string): bigint {
  const match = /^sim-store-(\d+)$/.exec(address);
  assert(match !== null, "a simulated store address", { address });
  return BigInt(match[1]!);
}

/** PD's timestamp oracle on the simulated clock (module header). */
export class SimTso implements TimestampOracle {
  #physicalMs = 0;
  #logical = 0;
  /** Timestamps handed out. */
  count = 0;

  constructor(
    readonly clock: SimClock,
    readonly bug: { goesBack: boolean; random: SeededRandom } | undefined = undefined,
    /** Where timestamps come from instead (the real PD's TSO, sim_placement_driver.ts). */
    readonly source: (() => bigint) | undefined = undefined,
    /**
     * With several PD members: a timestamp for `caller` from the member it believes leads,
     * `null` when refused (sim_placement_driver.ts's `timestampFromLeader`).
     */
    readonly leader: ((caller: string) => Promise<bigint | null>) | undefined = undefined,
  ) {}

  /** The next timestamp, now (with a single PD, the stores' max_ts syncs take it so). */
  next(): bigint {
    assert(this.leader === undefined, "a timestamp at once only from a single PD");
    return this.#bugged(this.source?.() ?? this.#local());
  }

  /** A timestamp for `caller`: at once with a single PD, else later, or `null` if refused. */
  ask(caller: string): bigint | Promise<bigint | null> {
    if (this.leader === undefined) return this.next();
    return this.leader(caller).then((ts) => ts === null ? null : this.#bugged(ts));
  }

  /**
   * The timestamp a store's new incarnation starts its max_ts at: PD's, with a single PD; else
   * its own clock's, as a store whose join-time PD timestamp is older does
   * (src/server/cluster_join.ts's `latestTs`). Its leaders raise max_ts from PD before they
   * take async-commit prewrites (sim_store_services.ts).
   */
  startTs(): bigint {
    if (this.leader === undefined) return this.next();
    return composeTimestamp(this.clock.nowMs(), 0);
  }

  #bugged(ts: bigint): bigint {
    this.count++;
    if (this.bug?.goesBack === true && this.bug.random.chance(TSO_BUG_CHANCE)) {
      return ts - composeTimestamp(TSO_BUG_LAG_MS, 0);
    }
    return ts;
  }

  #local(): bigint {
    const nowMs = this.clock.nowMs();
    if (nowMs > this.#physicalMs) {
      this.#physicalMs = nowMs;
      this.#logical = 0;
    } else if (++this.#logical > MAX_LOGICAL) {
      this.#physicalMs++;
      this.#logical = 0;
    }
    return composeTimestamp(this.#physicalMs, this.#logical);
  }

  getTimestamp(): Promise<bigint> {
    if (this.leader === undefined) return Promise.resolve(this.next());
    return this.#fromLeader();
  }

  async #fromLeader(): Promise<bigint> {
    for (let attempt = 0; attempt < TSO_ATTEMPTS; attempt++) {
      const ts = await this.ask("client");
      if (ts !== null) return ts;
      await this.clock.sleep(TSO_RETRY_MS);
    }
    throw new ClientPdError(
      "NotLeader",
      `no PD member handed out a timestamp in ${TSO_ATTEMPTS} tries`,
    );
  }

  close(): void {}
}

/** PD's picture of the regions, refreshed every PD_VIEW_REFRESH_TICKS (module header). */
export class SimPdView implements RegionSource {
  #regions: RegionInfo[] = [];
  #takenAtTick = -Infinity;
  /** Lookups answered. */
  lookups = 0;

  constructor(readonly c: Cluster) {
    this.refresh();
  }

  /** Takes a new picture if the last one is PD_VIEW_REFRESH_TICKS old (once per round). */
  refresh(): void {
    if (this.c.ticks - this.#takenAtTick < PD_VIEW_REFRESH_TICKS) return;
    const metas = regionMap(this.c);
    if (!coversKeySpace(metas)) return;
    this.#takenAtTick = this.c.ticks;
    this.#regions = metas.map((meta) => infoOf(meta, this.c.leader(meta.id)?.meta.id));
  }

  regionByKey(key: Uint8Array, _options: LookupOptions): Promise<RegionInfo | null> {
    this.lookups++;
    return Promise.resolve(this.#regions.find((r) => contains(r, key)) ?? null);
  }

  regionBeforeKey(key: Uint8Array, _options: LookupOptions): Promise<RegionInfo | null> {
    this.lookups++;
    const found = key.length === 0
      ? this.#regions.find((r) => r.endKey.length === 0)
      : this.#regions.find((r) =>
        compareBytes(r.startKey, key) < 0 &&
        (r.endKey.length === 0 || compareBytes(key, r.endKey) <= 0)
      );
    return Promise.resolve(found ?? null);
  }

  regionById(regionId: bigint, _options: LookupOptions): Promise<RegionInfo | null> {
    this.lookups++;
    return Promise.resolve(this.#regions.find((r) => r.id === regionId) ?? null);
  }

  storeAddress(storeId: bigint, _options: LookupOptions): Promise<string> {
    return Promise.resolve(storeAddress(storeId));
  }

  close(): void {}
}

function infoOf(meta: RegionMeta, leaderPeerId: bigint | undefined): RegionInfo {
  const peers = meta.peers.map((p) => ({ id: p.id, storeId: p.storeId }));
  assert(peers.length > 0, "a region in PD's picture has peers", { regionId: meta.id });
  return {
    id: meta.id,
    startKey: meta.startKey,
    endKey: meta.endKey,
    epoch: { confVer: meta.regionEpoch.confVer, version: meta.regionEpoch.version },
    peers,
    leader: peers.find((p) => p.id === leaderPeerId) ?? peers[0]!,
  };
}

function contains(r: RegionInfo, key: Uint8Array): boolean {
  return compareBytes(r.startKey, key) <= 0 &&
    (r.endKey.length === 0 || compareBytes(key, r.endKey) < 0);
}

/** Whether `metas` (sorted by start key) tile the whole key space without a gap. */
function coversKeySpace(metas: readonly RegionMeta[]): boolean {
  let at: Uint8Array = new Uint8Array(0);
  for (const meta of metas) {
    if (compareBytes(meta.startKey, at) !== 0) return false;
    if (meta.endKey.length === 0) return true;
    at = meta.endKey;
  }
  return false;
}
