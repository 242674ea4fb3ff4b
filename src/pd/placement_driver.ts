/**
 * The Placement Driver as pure logic: every `pdpb.PD` call a TiKV store or client makes, as a
 * method taking and returning plain values (`PdError` for an expected failure), over
 * `PdStorage`, an injected clock and an injected random source. The gRPC edge decodes a
 * request, checks its cluster id (`checkClusterId`), calls one method, encodes the answer; the
 * process around it ticks the TSO every `TSO_TICK_INTERVAL_MS` and runs `scheduleRound` on an
 * interval. The standalone store's in-process PD and the PD process are both this class.
 *
 * Which calls need a bootstrapped cluster follows PD: GetMembers, GetClusterInfo, Tso,
 * Bootstrap, IsBootstrapped and AllocID do not (a store allocates its id before it
 * bootstraps); every other one answers NOT_BOOTSTRAPPED until Bootstrap.
 *
 * @module
 */
import { PD_SCAN_REGIONS_MAX_LIMIT, PD_SCATTER_MAX_REGIONS } from "../constants.ts";
import {
  TimestampOracle,
  type TsoBatch,
  TsoError,
  type ValueStore,
  type WarnLog,
} from "../tso/mod.ts";
import { adoptStandalone, type StandaloneAdoption } from "./adoption.ts";
import { PdCluster, type RegionHeartbeat, type SplitId, type StorePut } from "./cluster.ts";
import type { ScheduleConfig } from "./config.ts";
import { type RoundParts, type RoundResult, runScheduleRound } from "./coordinator.ts";
import { PdError } from "./errors.ts";
import {
  addVoterSteps,
  type HeartbeatInstruction,
  type Operator,
  type OperatorKind,
  type OpStep,
  removePeerSteps,
} from "./operator.ts";
import { adminMerge } from "./merge_checker.ts";
import { OperatorController } from "./operator_controller.ts";
import { scheduleContext } from "./schedule_context.ts";
import { type MinServiceSafePoint, SafePoints } from "./safe_point.ts";
import { PD_KEYS, type PdStorage } from "./storage.ts";
import type {
  Clock,
  NodeState,
  Peer,
  RandomSource,
  RegionInfo,
  RegionMeta,
  StoreInfo,
  StoreStats,
} from "./types.ts";
import { storageCell } from "./value_cell.ts";

/** What `ctl operator add` asks for. */
export type AdminOperatorRequest =
  | { action: "transfer-leader" | "add-peer" | "remove-peer"; regionId: bigint; storeId: bigint }
  /** Merges region `regionId` into its neighbour `targetRegionId` (PD's `merge-region`). */
  | { action: "merge-region"; regionId: bigint; targetRegionId: bigint };

/** The parts of a scheduling round (`coordinator.ts`), by PD's scheduler and checker names. */
const SCHEDULER_NAMES = [
  "replica-checker",
  "merge-checker",
  "balance-leader-scheduler",
  "balance-region-scheduler",
] as const;

/** How a Placement Driver is opened. */
export interface PlacementDriverOptions {
  storage: PdStorage;
  clock: Clock;
  random: RandomSource;
  config?: Partial<ScheduleConfig>;
  /** Ids up to this one are never allocated (a standalone store's fixed ids). */
  reservedIdsThrough?: bigint;
  /**
   * Where the TSO keeps its window instead of key `tso` of `storage` (a standalone store's
   * `pd/tso` file, kept as it always was).
   */
  tsoStore?: ValueStore;
  /** The TSO's save window; default `TSO_SAVE_WINDOW_MS`. */
  tsoSaveWindowMs?: number;
  log?: WarnLog;
  /** Bounds, for tests. */
  maxStores?: number;
  maxRegions?: number;
}

/** PD's state and the rules of every call. */
export class PlacementDriver {
  readonly cluster: PdCluster;
  readonly controller: OperatorController;
  readonly safePoints: SafePoints;
  readonly oracle: TimestampOracle;
  readonly #clock: Clock;
  readonly #random: RandomSource;

  private constructor(options: PlacementDriverOptions, cluster: PdCluster) {
    this.cluster = cluster;
    this.#clock = options.clock;
    this.#random = options.random;
    this.controller = new OperatorController(cluster.config);
    this.safePoints = SafePoints.open(options.storage);
    // The TSO is src/tso's oracle, its window saved at key `tso` beside the rest of PD's state.
    this.oracle = TimestampOracle.open({
      clock: options.clock,
      store: options.tsoStore ?? storageCell(options.storage, PD_KEYS.tso),
      saveWindowMs: options.tsoSaveWindowMs,
      log: options.log,
    });
  }

  /** Loads PD's state from `storage` (or starts a new cluster id); throws on corrupt state. */
  static open(options: PlacementDriverOptions): PlacementDriver {
    return new PlacementDriver(options, PdCluster.open(options));
  }

  get clusterId(): bigint {
    return this.cluster.clusterId;
  }

  /** `null` for this cluster's id; ClusterIdMismatch otherwise (FAILED_PRECONDITION at the edge). */
  checkClusterId(clusterId: bigint): PdError | null {
    return this.cluster.checkClusterId(clusterId);
  }

  // --- TSO -------------------------------------------------------------------------------

  /** `count` timestamps; `last` is what PD's TsoResponse carries. */
  tso(count: number): TsoBatch | PdError {
    try {
      return this.oracle.next(count);
    } catch (error) {
      if (error instanceof TsoError) return new PdError("InvalidRequest", error.message);
      throw error;
    }
  }

  /** The periodic TSO update (every `TSO_TICK_INTERVAL_MS`). */
  tsoTick(): void {
    this.oracle.tick();
  }

  // --- Bootstrap and ids -----------------------------------------------------------------

  bootstrap(request: { store: StorePut | null; region: RegionMeta | null }): PdError | null {
    return this.cluster.bootstrap(request);
  }

  /**
   * Basalt's AdoptStandalone: a fresh PD becomes a standalone store's cluster (its id, store,
   * a region, TSO and id bounds; `adoption.ts`). `null` when adopted, now or before.
   */
  adoptStandalone(request: StandaloneAdoption): PdError | null {
    return adoptStandalone(this, request);
  }

  isBootstrapped(): boolean {
    return this.cluster.isBootstrapped;
  }

  /** `count` new ids; answers the last (PD's AllocID). A count of 0 means 1, as in PD. */
  allocId(count: number): bigint | PdError {
    return this.cluster.ids.alloc(count === 0 ? 1 : count);
  }

  // --- Stores ----------------------------------------------------------------------------

  putStore(store: StorePut): PdError | null {
    return this.cluster.requireBootstrapped() ?? this.cluster.putStore(store);
  }

  getStore(storeId: bigint): StoreInfo | PdError {
    return this.cluster.requireBootstrapped() ?? this.cluster.getStore(storeId);
  }

  getAllStores(options: { excludeTombstone: boolean }): StoreInfo[] | PdError {
    return this.cluster.requireBootstrapped() ?? this.cluster.stores(options);
  }

  /** PD's StoreHeartbeat; answers the store's node state (Removing tells it it is leaving). */
  storeHeartbeat(storeId: bigint, stats: StoreStats): { nodeState: NodeState } | PdError {
    const refused = this.cluster.requireBootstrapped();
    if (refused !== null) return refused;
    const store = this.cluster.storeHeartbeat(storeId, stats);
    return store instanceof PdError ? store : { nodeState: store.meta.nodeState };
  }

  /** `ctl store delete ID`: the store turns Offline and is drained. */
  deleteStore(storeId: bigint): PdError | null {
    return this.cluster.requireBootstrapped() ?? this.cluster.deleteStore(storeId);
  }

  // --- Regions ---------------------------------------------------------------------------

  /**
   * PD's region heartbeat: a stale one is refused (StaleRegion; PD answers it with an error on
   * the stream and keeps the stream), a fresh one is kept and answered with the step of the
   * region's operator, if one is running.
   */
  regionHeartbeat(heartbeat: RegionHeartbeat): HeartbeatInstruction | null | PdError {
    const refused = this.cluster.requireBootstrapped();
    if (refused !== null) return refused;
    const region = this.cluster.regionHeartbeat(heartbeat);
    if (region instanceof PdError) return region;
    return this.controller.dispatch(region, this.#clock.nowMs());
  }

  /**
   * What the leader of `regionId` should be told now, as its next heartbeat would be answered
   * (the edge pushes it when an operator was just added); `null` when nothing or no leader.
   */
  instructionFor(regionId: bigint): HeartbeatInstruction | null {
    const region = this.cluster.regions.getById(regionId);
    if (region === null || region.leader === null) return null;
    return this.controller.dispatch(region, this.#clock.nowMs());
  }

  getRegion(key: Uint8Array): RegionInfo | null | PdError {
    return this.cluster.requireBootstrapped() ?? this.cluster.regions.getByKey(key);
  }

  getPrevRegion(key: Uint8Array): RegionInfo | null | PdError {
    return this.cluster.requireBootstrapped() ?? this.cluster.regions.getPrev(key);
  }

  getRegionById(regionId: bigint): RegionInfo | null | PdError {
    return this.cluster.requireBootstrapped() ?? this.cluster.regions.getById(regionId);
  }

  /** Regions meeting [startKey, endKey), at most `limit` (<= 0: `PD_SCAN_REGIONS_MAX_LIMIT`). */
  scanRegions(
    range: { startKey: Uint8Array; endKey: Uint8Array; limit: number },
  ): RegionInfo[] | PdError {
    const refused = this.cluster.requireBootstrapped();
    if (refused !== null) return refused;
    const limit = range.limit <= 0 || range.limit > PD_SCAN_REGIONS_MAX_LIMIT
      ? PD_SCAN_REGIONS_MAX_LIMIT
      : range.limit;
    return this.cluster.regions.scan({ ...range, limit });
  }

  askBatchSplit(request: { region: RegionMeta; splitCount: number }): SplitId[] | PdError {
    return this.cluster.requireBootstrapped() ?? this.cluster.askBatchSplit(request);
  }

  reportBatchSplit(regions: readonly RegionMeta[]): PdError | null {
    return this.cluster.requireBootstrapped() ?? this.cluster.reportBatchSplit(regions);
  }

  // --- GC safe points --------------------------------------------------------------------

  getGcSafePoint(): bigint | PdError {
    return this.cluster.requireBootstrapped() ?? this.safePoints.gcSafePoint;
  }

  /** Moves the GC safe point forward, bounded by the service safe points; answers it. */
  updateGcSafePoint(safePoint: bigint): bigint | PdError {
    return this.cluster.requireBootstrapped() ??
      this.safePoints.updateGcSafePoint(safePoint, this.#nowSec());
  }

  updateServiceGcSafePoint(
    request: { serviceId: string; ttlSec: number; safePoint: bigint },
  ): MinServiceSafePoint | PdError {
    return this.cluster.requireBootstrapped() ??
      this.safePoints.updateServiceSafePoint({ ...request, nowSec: this.#nowSec() });
  }

  #nowSec(): number {
    return Math.floor(this.#clock.nowMs() / 1000);
  }

  // --- Operators and scheduling ----------------------------------------------------------

  /** PD's GetOperator: the region's running operator, or its latest finished one. */
  getOperator(regionId: bigint): Operator | PdError {
    const refused = this.cluster.requireBootstrapped();
    if (refused !== null) return refused;
    const op = this.controller.get(regionId, this.#clock.nowMs());
    return op ?? new PdError("RegionNotFound", `no operator for region ${regionId}`);
  }

  /** Every running operator, by region id (`ctl operator list`). */
  operators(): Operator[] {
    return this.controller.running();
  }

  /**
   * An operator an administrator asks for (`ctl operator add …`, PD's `/operators` API): hand
   * the region's leadership to its voter on `storeId`, add a voter there (a learner, then
   * promoted), or remove the peer there (leadership moved away first). Refused when the region
   * or store is unknown, the request makes no sense for the region as PD knows it, or the
   * region already runs an operator.
   */
  addOperator(request: AdminOperatorRequest): Operator | PdError {
    const refused = this.cluster.requireBootstrapped();
    if (refused !== null) return refused;
    const region = this.cluster.regions.getById(request.regionId);
    if (region === null) {
      return new PdError("RegionNotFound", `region ${request.regionId} not found`);
    }
    if (request.action === "merge-region") return this.#adminMerge(region, request.targetRegionId);
    const store = this.cluster.getStore(request.storeId);
    if (store instanceof PdError) return store;
    if (store.meta.state !== "Up") {
      return new PdError("InvalidRequest", `store ${request.storeId} is ${store.meta.state}`);
    }
    const planned = this.#adminSteps(region, request);
    if (planned instanceof PdError) return planned;
    const op = this.controller.add({
      region,
      desc: `admin-${request.action}`,
      kind: planned.kind,
      steps: planned.steps,
    }, this.#clock.nowMs());
    return typeof op === "string" ? new PdError("InvalidRequest", op) : op;
  }

  /** Both halves of a merge asked for by hand; answers the source's. */
  #adminMerge(source: RegionInfo, targetId: bigint): Operator | PdError {
    const target = this.cluster.regions.getById(targetId);
    if (target === null) return new PdError("RegionNotFound", `region ${targetId} not found`);
    const nowMs = this.#clock.nowMs();
    const ctx = scheduleContext(this, { nowMs, random: this.#random });
    const request = adminMerge(ctx, source, target);
    const invalid = (why: string) =>
      new PdError("InvalidRequest", `merge of region ${source.meta.id}: ${why}`);
    if (typeof request === "string") return invalid(request);
    const ops = this.controller.addMerge(request, nowMs);
    return typeof ops === "string" ? invalid(ops) : ops[0];
  }

  #adminSteps(
    region: RegionInfo,
    request: Extract<AdminOperatorRequest, { storeId: bigint }>,
  ): { kind: OperatorKind; steps: OpStep[] } | PdError {
    const { regionId, storeId, action } = request;
    const peer = region.meta.peers.find((p) => p.storeId === storeId);
    const invalid = (why: string) => new PdError("InvalidRequest", `region ${regionId}: ${why}`);
    if (action === "transfer-leader") {
      if (peer === undefined || peer.role !== "Voter") {
        return invalid(`no voter on store ${storeId}`);
      }
      if (region.leader === null) return invalid("no leader known yet (no heartbeat)");
      if (region.leader.storeId === storeId) return invalid(`its leader is on store ${storeId}`);
      const step: OpStep = {
        type: "TransferLeader",
        fromStoreId: region.leader.storeId,
        toStoreId: storeId,
      };
      return { kind: "leader", steps: [step] };
    }
    if (action === "add-peer") {
      if (peer !== undefined) return invalid(`it already has peer ${peer.id} on store ${storeId}`);
      const peerId = this.cluster.ids.alloc(1);
      if (peerId instanceof PdError) return peerId;
      return { kind: "region", steps: addVoterSteps(storeId, peerId) };
    }
    if (peer === undefined) return invalid(`no peer on store ${storeId}`);
    if (region.meta.peers.length === 1) return invalid("cannot remove its only peer");
    const steps = removePeerSteps(region, storeId);
    if (steps === null) return invalid(`no voter to take leadership from store ${storeId}`);
    return { kind: "region", steps };
  }

  /** The schedulers each round runs, by PD's names (`ctl scheduler list`). */
  schedulers(): string[] {
    return [...SCHEDULER_NAMES];
  }

  /**
   * PD's ScatterRegion, reduced: each region must be known (by id; a region the request itself
   * describes counts as known, as PD uses it when it has not heard of it yet, without keeping
   * it). Basalt makes no scatter operator of its own: balance-region spreads regions on its
   * next rounds; the answer is the share of regions found and names the ones not found.
   */
  scatterRegion(
    request: { regionIds: bigint[]; region: RegionMeta | null; leader: Peer | null },
  ): { finishedPercentage: number; failedRegionIds: bigint[] } | PdError {
    const refused = this.cluster.requireBootstrapped();
    if (refused !== null) return refused;
    const ids = [...request.regionIds];
    if (ids.length === 0 && request.region !== null) ids.push(request.region.id);
    if (ids.length === 0) return new PdError("InvalidRequest", "scatter names no region");
    if (ids.length > PD_SCATTER_MAX_REGIONS) {
      return new PdError(
        "LimitExceeded",
        `at most ${PD_SCATTER_MAX_REGIONS} regions per scatter: ${ids.length}`,
      );
    }
    const described = request.leader === null ? null : request.region?.id ?? null;
    const failed = ids.filter((id) =>
      id !== described && this.cluster.regions.getById(id) === null
    );
    if (failed.length === ids.length && ids.length === 1) {
      return new PdError("RegionNotFound", `region ${ids[0]} not found`);
    }
    const done = ids.length - failed.length;
    return { finishedPercentage: Math.floor((done * 100) / ids.length), failedRegionIds: failed };
  }

  /** One scheduling round at the clock's time (see `coordinator.ts`). */
  scheduleRound(parts?: RoundParts): RoundResult {
    if (!this.cluster.isBootstrapped) return { added: [], timedOut: [], cancelled: [], buried: [] };
    return runScheduleRound(this, { nowMs: this.#clock.nowMs(), random: this.#random, parts });
  }
}
