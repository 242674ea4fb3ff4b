/**
 * The cluster PD keeps: its id, whether it is bootstrapped, its stores and its regions, and the
 * rules by which requests and heartbeats change them (PD's `server/cluster` and `pkg/core`).
 * Pure: the clock is an argument, state lives on `PdStorage`.
 *
 * Invariants:
 * 1. A region is replaced only by a heartbeat or report that is not stale: a lower epoch
 *    `version` than any region it overlaps, or a lower `version`, lower `confVer` or lower
 *    non-zero term than its own previous report, is ignored (PD's `core.check`).
 * 2. Regions never overlap: a newer region removes those it overlaps, in storage too.
 * 3. A store is never forgotten: Tombstone is its last state, and its id is never reused.
 * 4. Every change of cluster, store or region meta is written to storage before it is
 *    visible to a request; leaders, sizes and heartbeat times live in memory only.
 *
 * @module
 */
import {
  PD_REGION_MAX_PEERS,
  PD_REGIONS_MAX,
  PD_SPLIT_MAX_COUNT,
  PD_STORE_DISCONNECTED_MS,
  PD_STORE_DOWN_GRACE_AFTER_LOAD_MS,
  PD_STORE_HEARTBEAT_PERSIST_MS,
  PD_STORE_MAX_LABELS,
  PD_STORES_MAX,
} from "../constants.ts";
import { bytesEqual as sameBytes } from "../util/bytes.ts";
import { assert } from "../util/assert.ts";
import { PdError } from "./errors.ts";
import { IdAllocator } from "./id_allocator.ts";
import { decodeRegion, decodeStore, encodeRegion, encodeStore } from "./records.ts";
import { RegionPatrol } from "./region_patrol.ts";
import { RegionTree } from "./region_tree.ts";
import { regionSizeMb } from "./store_regions.ts";
import { SplitRecords } from "./split_records.ts";
import { type ScheduleConfig, scheduleConfig } from "./config.ts";
import {
  loadU64,
  PD_KEYS,
  type PdStorage,
  type PdWrite,
  putU64,
  regionKey,
  storeKey,
} from "./storage.ts";
import type {
  Clock,
  Liveness,
  Peer,
  RandomSource,
  RegionInfo,
  RegionMeta,
  StoreInfo,
  StoreMeta,
  StoreStats,
} from "./types.ts";

/** How a cluster is opened. */
export interface PdClusterOptions {
  storage: PdStorage;
  clock: Clock;
  /** Draws the 32 random bits of a new cluster id. */
  random: RandomSource;
  config?: Partial<ScheduleConfig>;
  /** Ids up to this one are never allocated (a standalone store's fixed ids). */
  reservedIdsThrough?: bigint;
  /** Bounds, for tests; default `PD_STORES_MAX`, `PD_REGIONS_MAX`. */
  maxStores?: number;
  maxRegions?: number;
}

/** A region heartbeat (`pdpb.RegionHeartbeatRequest`), the fields PD keeps. */
export interface RegionHeartbeat {
  region: RegionMeta;
  leader: Peer | null;
  term: bigint;
  downPeers?: RegionInfo["downPeers"];
  pendingPeers?: Peer[];
  approximateSize?: bigint;
  approximateKeys?: bigint;
}

/** The ids of one new region of an AskBatchSplit (`pdpb.SplitID`). */
export interface SplitId {
  newRegionId: bigint;
  newPeerIds: bigint[];
}

/** A store as PutStore gives it: what the store says of itself. */
export type StorePut = Pick<StoreMeta, "id" | "address"> & Partial<StoreMeta>;

const NANOS_PER_MS = 1_000_000n;

function epochText(meta: RegionMeta): string {
  return `{conf_ver: ${meta.regionEpoch.confVer}, version: ${meta.regionEpoch.version}}`;
}

/** A store meta's `last_heartbeat` (nanoseconds) in milliseconds. */
function heartbeatMsOf(meta: StoreMeta): number {
  return Number(meta.lastHeartbeat / NANOS_PER_MS);
}

/** Whether two region metas differ in what is stored (range, epoch, peers). */
function metaChanged(a: RegionMeta, b: RegionMeta): boolean {
  return encodeRegion(a) !== encodeRegion(b);
}

/** The cluster's metadata and the rules that change it. */
export class PdCluster {
  readonly storage: PdStorage;
  readonly clock: Clock;
  readonly config: ScheduleConfig;
  readonly ids: IdAllocator;
  readonly regions = new RegionTree();
  /** Regions PD saw split lately, for `split-merge-interval` (`split_records.ts`). */
  readonly recentSplits = new SplitRecords();
  /** The checkers' patrol cursor and the regions heartbeats marked for a check (`region_patrol.ts`). */
  readonly patrol = new RegionPatrol();
  /** The clock's reading when this cluster was opened: no merge in the first split-merge-interval. */
  readonly openedAtMs: number;
  readonly #stores = new Map<bigint, StoreInfo>();
  /** Per store, the heartbeat time its saved meta holds (`PD_STORE_HEARTBEAT_PERSIST_MS`). */
  readonly #heartbeatSavedMs = new Map<bigint, number>();
  readonly #maxStores: number;
  readonly #maxRegions: number;
  #bootstrapped: boolean;
  /** Set once at open; changed only by `adopt` (see `adoption.ts`), before any bootstrap. */
  #clusterId: bigint;

  private constructor(options: PdClusterOptions, clusterId: bigint, bootstrapped: boolean) {
    this.storage = options.storage;
    this.clock = options.clock;
    this.config = scheduleConfig(options.config);
    this.openedAtMs = options.clock.nowMs();
    this.#clusterId = clusterId;
    this.#bootstrapped = bootstrapped;
    this.#maxStores = options.maxStores ?? PD_STORES_MAX;
    this.#maxRegions = options.maxRegions ?? PD_REGIONS_MAX;
    this.ids = IdAllocator.open({
      storage: options.storage,
      reservedThrough: options.reservedIdsThrough,
    });
  }

  /**
   * Loads the cluster from storage, or makes a new cluster id as PD does (`initOrGetClusterID`:
   * creation time in Unix seconds above 32 random bits). A store loaded was last heard from
   * when its meta was last saved (at most `PD_STORE_HEARTBEAT_PERSIST_MS` before it went
   * silent; never later than now), so a store lost before a failover is called Down on time
   * after it — but not within `PD_STORE_DOWN_GRACE_AFTER_LOAD_MS` of the load (`liveness`).
   */
  static open(options: PdClusterOptions): PdCluster {
    const { storage, clock } = options;
    let clusterId = loadU64(storage, PD_KEYS.clusterId);
    if (clusterId === null) {
      const seconds = BigInt(Math.floor(clock.nowMs() / 1000));
      assert(seconds > 0n && seconds < 1n << 32n, `clock reads ${clock.nowMs()}`);
      clusterId = (seconds << 32n) + BigInt(options.random.nextUint32() >>> 0);
      storage.write([putU64(PD_KEYS.clusterId, clusterId)]);
    }
    const cluster = new PdCluster(options, clusterId, storage.get(PD_KEYS.cluster) !== null);
    const nowMs = clock.nowMs();
    for (const [key, text] of storage.scan(PD_KEYS.storePrefix)) {
      const meta = decodeStore(key, text);
      const savedMs = heartbeatMsOf(meta);
      cluster.#stores.set(meta.id, {
        meta,
        stats: null,
        lastHeartbeatMs: Math.min(nowMs, savedMs),
      });
      cluster.#heartbeatSavedMs.set(meta.id, savedMs);
    }
    for (const [key, text] of storage.scan(PD_KEYS.regionPrefix)) {
      cluster.regions.put(emptyInfo(decodeRegion(key, text)));
    }
    return cluster;
  }

  /** The cluster id every request must name. */
  get clusterId(): bigint {
    return this.#clusterId;
  }

  /** `null` when `clusterId` is this cluster's; else the refusal PD gives. */
  checkClusterId(clusterId: bigint): PdError | null {
    if (clusterId === this.clusterId) return null;
    return new PdError(
      "ClusterIdMismatch",
      `mismatch cluster id, need ${this.clusterId} but got ${clusterId}`,
    );
  }

  get isBootstrapped(): boolean {
    return this.#bootstrapped;
  }

  /** `null` when bootstrapped; else the NOT_BOOTSTRAPPED answer. */
  requireBootstrapped(): PdError | null {
    if (this.#bootstrapped) return null;
    return new PdError("NotBootstrapped", `cluster ${this.clusterId} is not bootstrapped`);
  }

  /**
   * PD's Bootstrap: the first store and the first region (all keys, one peer on that store),
   * written with the cluster meta in one batch. The request checks are PD's
   * (`checkBootstrapRequest`).
   */
  bootstrap(request: { store: StorePut | null; region: RegionMeta | null }): PdError | null {
    if (this.#bootstrapped) {
      return new PdError(
        "AlreadyBootstrapped",
        `cluster ${this.clusterId} is already bootstrapped`,
      );
    }
    const { store, region } = request;
    const invalid = (message: string) => new PdError("InvalidRequest", message);
    if (store === null) return invalid("missing store meta for bootstrap");
    if (region === null) return invalid("missing region meta for bootstrap");
    if (store.id === 0n) return invalid("invalid zero store id");
    if (region.id === 0n) return invalid("invalid zero region id");
    if (region.startKey.length > 0 || region.endKey.length > 0) {
      return invalid("invalid first region key range, must all be empty for bootstrap");
    }
    const [peer, ...more] = region.peers;
    if (peer === undefined || more.length > 0) {
      return invalid(`invalid first region peer count ${region.peers.length}, must be 1`);
    }
    if (peer.storeId !== store.id) {
      return invalid(`invalid peer store id ${peer.storeId} != ${store.id} for bootstrap`);
    }
    if (peer.id === 0n) return invalid("invalid zero peer id");
    this.#bootstrapWith({ store, region, extra: [] });
    return null;
  }

  /**
   * Bootstraps the cluster as the standalone store's cluster it adopts (`adoption.ts`, which
   * checked the request and that this PD is neither bootstrapped nor has handed out ids): the
   * cluster id becomes `clusterId` and the id allocator continues above `idBound`, written in
   * the bootstrap's one batch, so a crash leaves either the fresh PD or the adopted cluster.
   * `region` is one of the store's regions (any range); the others come by heartbeats.
   */
  adopt(
    request: { clusterId: bigint; store: StorePut; region: RegionMeta; idBound: bigint },
  ): void {
    assert(!this.#bootstrapped && !this.ids.issuedAny, "only a fresh PD adopts a cluster", {
      clusterId: this.#clusterId,
    });
    const end = request.idBound > this.ids.lastId ? request.idBound : this.ids.lastId;
    this.#bootstrapWith({
      store: request.store,
      region: request.region,
      extra: [putU64(PD_KEYS.clusterId, request.clusterId), putU64(PD_KEYS.allocId, end)],
      clusterId: request.clusterId,
    });
    this.#clusterId = request.clusterId;
    this.ids.resumeAbove(end);
  }

  /** Writes the cluster meta, the first store and region (and `extra`) as one batch. */
  #bootstrapWith(
    parts: { store: StorePut; region: RegionMeta; extra: PdWrite[]; clusterId?: bigint },
  ): void {
    const { store, region } = parts;
    const meta = newStoreMeta(store, this.clock.nowMs());
    const clusterMeta = JSON.stringify({
      id: (parts.clusterId ?? this.#clusterId).toString(),
      maxPeerCount: this.config.maxReplicas,
    });
    this.storage.write([
      ...parts.extra,
      { kind: "put", key: PD_KEYS.cluster, value: clusterMeta },
      { kind: "put", key: storeKey(meta.id), value: encodeStore(meta) },
      { kind: "put", key: regionKey(region.id), value: encodeRegion(region) },
    ]);
    this.#bootstrapped = true;
    this.#stores.set(meta.id, { meta, stats: null, lastHeartbeatMs: this.clock.nowMs() });
    this.#heartbeatSavedMs.set(meta.id, heartbeatMsOf(meta));
    this.regions.put(emptyInfo(region));
  }

  // ---------------------------------------------------------------------------------------
  // Stores.

  /** A store, or StoreNotFound with PD's message. */
  getStore(storeId: bigint): StoreInfo | PdError {
    const store = this.#stores.get(storeId);
    if (store !== undefined) return store;
    return new PdError("StoreNotFound", `invalid store ID ${storeId}, not found`);
  }

  /** Every store in id order, Tombstones too unless excluded. */
  stores(options: { excludeTombstone?: boolean } = {}): StoreInfo[] {
    return [...this.#stores.values()]
      .filter((store) => !options.excludeTombstone || store.meta.state !== "Tombstone")
      .sort((a, b) => (a.meta.id < b.meta.id ? -1 : 1));
  }

  /**
   * PD's PutStore: a new store joins Up and Serving; a known one updates what it says of
   * itself (address, labels, version…) and keeps its state. A Tombstone store, an address
   * another live store has, or too many stores are refused.
   */
  putStore(store: StorePut): PdError | null {
    if (store.id === 0n) return new PdError("InvalidRequest", "invalid zero store id");
    if ((store.labels?.length ?? 0) > PD_STORE_MAX_LABELS) {
      return new PdError(
        "LimitExceeded",
        `store ${store.id} has more than ${PD_STORE_MAX_LABELS} labels`,
      );
    }
    const known = this.#stores.get(store.id);
    if (known?.meta.state === "Tombstone") {
      return new PdError("StoreTombstone", `store ${store.id} has been removed (Tombstone)`);
    }
    for (const other of this.#stores.values()) {
      if (
        other.meta.id !== store.id && other.meta.state !== "Tombstone" &&
        other.meta.address === store.address
      ) {
        return new PdError(
          "DuplicatedStoreAddress",
          `duplicated store address: store ${store.id} and store ${other.meta.id} both at ${store.address}`,
        );
      }
    }
    if (known === undefined && this.#stores.size >= this.#maxStores) {
      return new PdError(
        "LimitExceeded",
        `at most ${this.#maxStores} stores; store ${store.id} is one more`,
      );
    }
    const nowMs = this.clock.nowMs();
    const meta: StoreMeta = known === undefined ? newStoreMeta(store, nowMs) : {
      ...known.meta,
      ...withoutUndefined(store),
      state: known.meta.state,
      nodeState: known.meta.nodeState,
    };
    this.#saveStore(meta);
    this.#stores.set(meta.id, {
      meta,
      stats: known?.stats ?? null,
      lastHeartbeatMs: known?.lastHeartbeatMs ?? nowMs,
    });
    return null;
  }

  /** PD's StoreHeartbeat: records the stats and the time; answers the store's node state. */
  storeHeartbeat(storeId: bigint, stats: StoreStats): StoreInfo | PdError {
    const store = this.getStore(storeId);
    if (store instanceof PdError) return store;
    if (store.meta.state === "Tombstone") {
      return new PdError("StoreTombstone", `store ${storeId} is tombstone`);
    }
    const nowMs = this.clock.nowMs();
    store.stats = { ...stats };
    store.lastHeartbeatMs = nowMs;
    store.meta = { ...store.meta, lastHeartbeat: BigInt(nowMs) * NANOS_PER_MS };
    const everyMs = Math.min(PD_STORE_HEARTBEAT_PERSIST_MS, this.config.maxStoreDownTimeMs / 4);
    if (nowMs - (this.#heartbeatSavedMs.get(storeId) ?? -Infinity) >= everyMs) {
      this.#saveStore(store.meta);
    }
    return store;
  }

  /** Whether PD hears from the store now (see `Liveness`, and `open` for the grace). */
  liveness(store: StoreInfo, nowMs: number): Liveness {
    const silentMs = nowMs - store.lastHeartbeatMs;
    const graceOver = nowMs - this.openedAtMs >= PD_STORE_DOWN_GRACE_AFTER_LOAD_MS;
    if (silentMs >= this.config.maxStoreDownTimeMs && graceOver) return "Down";
    if (silentMs >= PD_STORE_DISCONNECTED_MS) return "Disconnected";
    return "Up";
  }

  /**
   * `ctl store delete ID` (PD's RemoveStore): the store turns Offline (node state Removing) and
   * the replica checker moves its replicas away; once it holds none it becomes Tombstone.
   * Refused when the Up stores left (Down ones not counted) could not hold `maxReplicas`
   * replicas.
   */
  deleteStore(storeId: bigint): PdError | null {
    const store = this.getStore(storeId);
    if (store instanceof PdError) return store;
    if (store.meta.state === "Tombstone") {
      return new PdError("StoreTombstone", `store ${storeId} is already tombstone`);
    }
    if (store.meta.state === "Offline") return null;
    const nowMs = this.clock.nowMs();
    const upStores =
      this.stores().filter((s) => s.meta.state === "Up" && this.liveness(s, nowMs) !== "Down")
        .length;
    if (upStores - 1 < this.config.maxReplicas) {
      return new PdError(
        "NotEnoughStores",
        `store ${storeId} can not be removed: ${upStores} stores are up and max-replicas is ` +
          `${this.config.maxReplicas}`,
      );
    }
    this.#setStoreState(store, "Offline");
    return null;
  }

  /** Offline → Tombstone, once the store holds no replica (PD's BuryStore). */
  buryStore(storeId: bigint): PdError | null {
    const store = this.getStore(storeId);
    if (store instanceof PdError) return store;
    if (store.meta.state !== "Offline") {
      return new PdError("InvalidRequest", `store ${storeId} is ${store.meta.state}, not Offline`);
    }
    const held = this.regionCountOn(storeId);
    if (held > 0) {
      return new PdError("InvalidRequest", `store ${storeId} still holds ${held} replicas`);
    }
    this.#setStoreState(store, "Tombstone");
    return null;
  }

  /** Replicas (peers of any role) the region tree places on `storeId`. */
  regionCountOn(storeId: bigint): number {
    return this.regions.byStore.regionCount(storeId);
  }

  #setStoreState(store: StoreInfo, state: "Offline" | "Tombstone"): void {
    const nodeState = state === "Offline" ? "Removing" : "Removed";
    const meta: StoreMeta = { ...store.meta, state, nodeState };
    this.#saveStore(meta);
    store.meta = meta;
  }

  #saveStore(meta: StoreMeta): void {
    this.storage.write([{ kind: "put", key: storeKey(meta.id), value: encodeStore(meta) }]);
    this.#heartbeatSavedMs.set(meta.id, heartbeatMsOf(meta));
  }

  // ---------------------------------------------------------------------------------------
  // Regions.

  /**
   * PD's region heartbeat handling: refuses a malformed one, ignores a stale one (invariant
   * 1, answered as StaleRegion), else keeps it, replacing the regions it overlaps.
   */
  regionHeartbeat(heartbeat: RegionHeartbeat): RegionInfo | PdError {
    const meta = heartbeat.region;
    if (meta.id === 0n) {
      return new PdError("InvalidRequest", "invalid request region, region id is 0");
    }
    if (heartbeat.leader === null || heartbeat.leader.id === 0n) {
      return new PdError(
        "InvalidRequest",
        `invalid request, the leader of region ${meta.id} is nil`,
      );
    }
    if (meta.peers.length > PD_REGION_MAX_PEERS) {
      return new PdError(
        "LimitExceeded",
        `region ${meta.id} has more than ${PD_REGION_MAX_PEERS} peers`,
      );
    }
    const stale = this.#staleness(meta, heartbeat.term);
    if (stale !== null) return stale;
    const origin = this.regions.getById(meta.id);
    if (origin === null && this.regions.size >= this.#maxRegions) {
      return new PdError(
        "LimitExceeded",
        `at most ${this.#maxRegions} regions; region ${meta.id} is one more`,
      );
    }
    const info: RegionInfo = {
      meta,
      leader: heartbeat.leader,
      term: heartbeat.term,
      downPeers: heartbeat.downPeers ?? [],
      pendingPeers: heartbeat.pendingPeers ?? [],
      approximateSizeBytes: heartbeat.approximateSize ?? 0n,
      approximateKeys: heartbeat.approximateKeys ?? 0n,
    };
    const metaNew = origin === null || metaChanged(origin.meta, meta);
    this.#putRegion(info, metaNew);
    if (metaNew || this.#checkersCare(origin!, info)) this.patrol.markSuspect(meta.id);
    return info;
  }

  /**
   * Whether a heartbeat that kept the region's meta changed what the replica or merge checker
   * weighs: its leader, its down or pending peers, or it became small enough to merge.
   */
  #checkersCare(before: RegionInfo, after: RegionInfo): boolean {
    const small = (region: RegionInfo) =>
      regionSizeMb(region) <= this.config.maxMergeRegionSizeMb &&
      region.approximateKeys <= BigInt(this.config.maxMergeRegionKeys);
    return before.leader?.storeId !== after.leader?.storeId ||
      before.downPeers.length !== after.downPeers.length ||
      before.pendingPeers.length !== after.pendingPeers.length ||
      (small(after) && !small(before));
  }

  /** StaleRegion when `meta` (at `term`) is older than what PD knows; else `null`. */
  #staleness(meta: RegionMeta, term: bigint): PdError | null {
    const version = meta.regionEpoch.version;
    for (const other of this.regions.overlaps(meta)) {
      if (version < other.meta.regionEpoch.version) {
        return new PdError(
          "StaleRegion",
          `region ${meta.id} epoch ${epochText(meta)} is stale: it overlaps region ` +
            `${other.meta.id} at ${epochText(other.meta)}`,
        );
      }
    }
    const origin = this.regions.getById(meta.id);
    if (origin === null) return null;
    const old = origin.meta.regionEpoch;
    const termBehind = term > 0n && term < origin.term;
    if (termBehind || version < old.version || meta.regionEpoch.confVer < old.confVer) {
      return new PdError(
        "StaleRegion",
        `region ${meta.id} epoch ${epochText(meta)} term ${term} is stale: PD has ` +
          `${epochText(origin.meta)} term ${origin.term}`,
      );
    }
    return null;
  }

  /** Puts a region that is not stale; writes its meta (and the overlapped ones' removal). */
  #putRegion(info: RegionInfo, metaNew: boolean): void {
    const overlapped = this.regions.overlaps(info.meta);
    if (metaNew || overlapped.length > 0) {
      const batch: PdWrite[] = overlapped.map((other) => ({
        kind: "delete",
        key: regionKey(other.meta.id),
      }));
      batch.push({ kind: "put", key: regionKey(info.meta.id), value: encodeRegion(info.meta) });
      this.storage.write(batch);
    }
    this.regions.put(info);
  }

  /**
   * PD's AskBatchSplit: ids for `splitCount` new regions, one peer id per peer of the region.
   * The region must be known (by its start key) and the request's epoch not behind PD's.
   */
  askBatchSplit(request: { region: RegionMeta; splitCount: number }): SplitId[] | PdError {
    const { region, splitCount } = request;
    if (!Number.isSafeInteger(splitCount) || splitCount < 1 || splitCount > PD_SPLIT_MAX_COUNT) {
      return new PdError(
        "InvalidRequest",
        `split count must be in [1, ${PD_SPLIT_MAX_COUNT}]: ${splitCount}`,
      );
    }
    if (region.peers.length > PD_REGION_MAX_PEERS) {
      return new PdError(
        "LimitExceeded",
        `region ${region.id} has more than ${PD_REGION_MAX_PEERS} peers`,
      );
    }
    const current = this.regions.getByKey(region.startKey);
    if (current === null) {
      return new PdError("RegionNotFound", `region not found, request region: ${region.id}`);
    }
    const asked = region.regionEpoch;
    const known = current.meta.regionEpoch;
    if (asked.version < known.version || asked.confVer < known.confVer) {
      return new PdError(
        "StaleEpoch",
        `invalid region epoch, request: ${epochText(region)}, current: ${epochText(current.meta)}`,
      );
    }
    const perRegion = region.peers.length + 1;
    const last = this.ids.alloc(splitCount * perRegion);
    if (last instanceof PdError) return last;
    let next = last - BigInt(splitCount * perRegion) + 1n;
    const out: SplitId[] = [];
    for (let i = 0; i < splitCount; i++) {
      const newRegionId = next++;
      out.push({ newRegionId, newPeerIds: region.peers.map(() => next++) });
    }
    assert(next === last + 1n, `split ids ${next - 1n} and ${last} disagree`);
    this.#recordSplit([region.id, ...out.map((split) => split.newRegionId)]);
    return out;
  }

  /**
   * PD's ReportBatchSplit: checks that the reported regions are adjacent, in order. Like PD it
   * changes no region: their own heartbeats bring their new shapes. It records the split, so
   * that none of them merges within `split-merge-interval`.
   */
  reportBatchSplit(regions: readonly RegionMeta[]): PdError | null {
    if (regions.length < 2) {
      return new PdError("InvalidRequest", "invalid split: fewer than two regions");
    }
    for (let i = 1; i < regions.length; i++) {
      const left = regions[i - 1]!;
      const right = regions[i]!;
      if (left.endKey.length === 0 || !sameBytes(left.endKey, right.startKey)) {
        return new PdError(
          "InvalidRequest",
          `invalid split: region ${left.id} does not end where region ${right.id} starts`,
        );
      }
    }
    this.#recordSplit(regions.map((region) => region.id));
    return null;
  }

  #recordSplit(regionIds: bigint[]): void {
    const at = { nowMs: this.clock.nowMs(), intervalMs: this.config.splitMergeIntervalMs };
    this.recentSplits.record(regionIds, at);
  }
}

/** A region known from storage only: no leader, no sizes until its next heartbeat. */
export function emptyInfo(meta: RegionMeta): RegionInfo {
  return {
    meta,
    leader: null,
    term: 0n,
    downPeers: [],
    pendingPeers: [],
    approximateSizeBytes: 0n,
    approximateKeys: 0n,
  };
}

function withoutUndefined(store: StorePut): Partial<StoreMeta> {
  return Object.fromEntries(Object.entries(store).filter(([, v]) => v !== undefined));
}

function newStoreMeta(store: StorePut, nowMs: number): StoreMeta {
  return {
    labels: [],
    version: "",
    peerAddress: "",
    statusAddress: "",
    gitHash: "",
    startTimestamp: 0n,
    deployPath: "",
    physicallyDestroyed: false,
    ...withoutUndefined(store),
    id: store.id,
    address: store.address,
    state: "Up",
    nodeState: "Serving",
    lastHeartbeat: BigInt(nowMs) * NANOS_PER_MS,
  };
}
