/**
 * A fresh PD adopting a standalone store's cluster (issue #12 item 6): the store that ran
 * standalone on a data directory restarts with `--pd` and asks a PD no store has bootstrapped to
 * become its cluster — same cluster id, its store and regions, its timestamps and ids left
 * behind — with no dump and no import (the store side: `src/server/standalone_adoption.ts`).
 *
 * PD's own rule is the inverse: PD makes the cluster id at its first start and stores adopt it
 * (`initOrGetClusterID`). A standalone store made its cluster id the same way, at its first
 * start, and every client and PD record of it (`pd/cluster`) names that id. Rather than rewrite
 * the store, a PD that was never used takes the store's id; the nearest thing PD has is
 * `pd-recover -cluster-id -alloc-id`, which sets both on a fresh PD by hand. The rules:
 *
 * 1. **Only a fresh PD adopts**: not bootstrapped, and no id handed out (a store that took an
 *    id may be about to bootstrap it with the old cluster id; switching would strand it). A
 *    bootstrapped PD refuses (AlreadyBootstrapped), naming both cluster ids.
 * 2. **Timestamps never go back**: the standalone TSO's saved bound (a physical ms no timestamp
 *    it issued reached) moves PD's TSO up to it first (`TimestampOracle.advanceTo`), so every
 *    timestamp PD issues afterwards is above every one the standalone store issued. kvproto has
 *    no field for this; the request is Basalt's own (`basalt.PdAdmin/AdoptStandalone`).
 * 3. **Ids never repeat**: the standalone id allocator's bound (its saved window end, and its
 *    fixed ids) becomes PD's `alloc_id`, written in the bootstrap's batch with the cluster id:
 *    the next region or peer id is above every id in the store's engine.
 * 4. **One batch makes it visible**: cluster id, id bound, cluster meta, store and one region.
 *    The TSO moves first and the GC safe point after; both only go up, so a crash between them
 *    is harmless, and a repeated request (an answer lost) finds the cluster adopted and raises
 *    them again.
 * 5. **One region in the request, the others by heartbeat**: the store's leaders heartbeat every
 *    region as soon as the store starts, and PD takes new regions from heartbeats; so the
 *    request stays small whatever the number of regions. The region sent may cover any range
 *    (PD's Bootstrap insists on every key; the store's regions are split already).
 *
 * Pure, as the rest of the core.
 *
 * @module
 */
import { TSO_MAX_PHYSICAL_MS, TsoError } from "../tso/mod.ts";
import { compareBytes } from "../util/bytes.ts";
import type { StorePut } from "./cluster.ts";
import { PdError } from "./errors.ts";
import type { PlacementDriver } from "./placement_driver.ts";
import type { RegionMeta } from "./types.ts";

/** What a standalone store asks a fresh PD to adopt. */
export interface StandaloneAdoption {
  /** The standalone store's cluster id (`<data-dir>/pd/cluster`). */
  clusterId: bigint;
  /** The store (id 1 for a standalone store) as it would register. */
  store: StorePut;
  /** One of its regions, with its one peer, a voter on the store. */
  region: RegionMeta;
  /** The standalone TSO's saved bound, a physical ms: every timestamp it issued lies below. */
  tsoBoundMs: bigint;
  /** The standalone id allocator's bound: every id it issued (and its fixed ids) is at most it. */
  idBound: bigint;
  /** The standalone store's GC safe point. */
  gcSafePoint: bigint;
}

/** `null` when the request is well formed; else the InvalidRequest naming the fault. */
export function checkAdoption(request: StandaloneAdoption): PdError | null {
  const { clusterId, store, region, idBound } = request;
  const invalid = (why: string) =>
    new PdError("InvalidRequest", `cannot adopt standalone cluster ${clusterId}: ${why}`);
  if (clusterId === 0n) return invalid("invalid zero cluster id");
  if (store.id === 0n) return invalid("invalid zero store id");
  if (region.id === 0n) return invalid("invalid zero region id");
  const [peer, ...more] = region.peers;
  if (peer === undefined || more.length > 0) {
    return invalid(`region ${region.id} has ${region.peers.length} peers, not 1`);
  }
  if (peer.id === 0n || peer.storeId !== store.id || peer.role !== "Voter") {
    return invalid(`region ${region.id}'s peer must be a voter on store ${store.id}`);
  }
  if (region.endKey.length > 0 && compareBytes(region.startKey, region.endKey) >= 0) {
    return invalid(`region ${region.id} ends before it starts`);
  }
  const largest = [store.id, region.id, peer.id].reduce((a, b) => (a > b ? a : b));
  if (largest > idBound) {
    return invalid(`id ${largest} is above the id bound ${idBound} the store gave`);
  }
  if (request.tsoBoundMs <= 0n || request.tsoBoundMs > BigInt(TSO_MAX_PHYSICAL_MS)) {
    return invalid(`TSO bound ${request.tsoBoundMs} is not a physical ms`);
  }
  return null;
}

/**
 * Adopts the standalone store's cluster (see the module comment); `null` when adopted now or
 * before (the same cluster id, the store known), else the refusal.
 */
export function adoptStandalone(
  driver: PlacementDriver,
  request: StandaloneAdoption,
): PdError | null {
  const malformed = checkAdoption(request);
  if (malformed !== null) return malformed;
  const { cluster } = driver;
  if (cluster.isBootstrapped) {
    const adoptedBefore = cluster.clusterId === request.clusterId &&
      !(cluster.getStore(request.store.id) instanceof PdError);
    if (!adoptedBefore) {
      return new PdError(
        "AlreadyBootstrapped",
        `PD already runs cluster ${cluster.clusterId} (bootstrapped); it cannot adopt ` +
          `standalone cluster ${request.clusterId}: a standalone store joins a fresh PD that no ` +
          `store has bootstrapped`,
      );
    }
    return raiseBounds(driver, request);
  }
  if (cluster.ids.issuedAny) {
    return new PdError(
      "InvalidRequest",
      `PD cluster ${cluster.clusterId} is not bootstrapped but has handed out ids (up to ` +
        `${cluster.ids.lastId}): a store may be joining it, and adopting standalone cluster ` +
        `${request.clusterId} would strand that store; use a fresh PD`,
    );
  }
  const tso = advanceTso(driver, request);
  if (tso !== null) return tso;
  cluster.adopt(request);
  return raiseBounds(driver, request);
}

/** Moves PD's TSO to the standalone bound; a bound past PD's range is InvalidRequest. */
function advanceTso(driver: PlacementDriver, request: StandaloneAdoption): PdError | null {
  try {
    driver.oracle.advanceTo(Number(request.tsoBoundMs));
    return null;
  } catch (error) {
    if (!(error instanceof TsoError)) throw error;
    return new PdError(
      "InvalidRequest",
      `cannot adopt standalone cluster ${request.clusterId}: ${error.message}`,
    );
  }
}

/** The monotone parts, repeated on a repeated request: the TSO and the GC safe point. */
function raiseBounds(driver: PlacementDriver, request: StandaloneAdoption): PdError | null {
  const tso = advanceTso(driver, request);
  if (tso !== null) return tso;
  const nowSec = Math.floor(driver.cluster.clock.nowMs() / 1000);
  driver.safePoints.updateGcSafePoint(request.gcSafePoint, nowSec);
  return null;
}
