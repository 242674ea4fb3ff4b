/**
 * The real Placement Driver (src/pd's `PlacementDriver`, pure) inside the cluster simulator, in
 * place of the oracle's repair and balancing (scheduler.ts) and of sim_pd.ts's TSO and region
 * picture:
 *
 * - **Clock**: the simulated clock (`TICK_MS` a tick, `ROUND_MS` a round) plus an offset that
 *   only grows: PD's clock alone jumps forward now and then (`jump`), so stores look silent,
 *   operators run over their time and the TSO leaps, as on a PD host whose clock steps.
 * - **Stores → PD**, as a real store does (src/server/cluster_join.ts): every live store sends a
 *   store heartbeat every `PD_STORE_HEARTBEAT_TICKS` (its replica count); every replica that
 *   leads its region sends a region heartbeat (the region as applied, the leader, the term, the
 *   pending peers) when any of those changed since its last one, and every
 *   `PD_REGION_HEARTBEAT_TICKS` anyway. PD's links are not cut by the simulated network faults:
 *   a store is silent to PD only while it is down.
 * - **PD → stores**: the answer to a region heartbeat (PD's operator step) goes through the
 *   wire as a real one does — `instructionToProto`, encoded and decoded as a
 *   `pdpb.RegionHeartbeatResponse` — and is carried out on the leader's store as
 *   src/server/worker_raftstore.ts's `operator` does: a ChangePeer or PrepareMerge proposed
 *   through the leader, or a leadership transfer. Nothing else moves replicas: PD's replica
 *   checker repairs (a store lost for good is Down after `SIM_PD_MAX_STORE_DOWN_TIME_MS`),
 *   balance-region and balance-leader spread, the merge checker merges (when the seed sets a
 *   short split-merge-interval).
 * - **Scheduling**: `scheduleRound` every `PD_SCHEDULE_TICKS`; the TSO's tick every tick.
 * - **PD → client**: timestamps (`timestamp`) and region lookups (`client()`, the methods of
 *   src/client's `PdClient` that its `PdRegionSource` calls, answered from PD's region tree as
 *   PD's GetRegion family does).
 *
 * Everything is drawn from seeded sources and walks stores and regions in a fixed order, so a
 * run stays a pure function of its seed.
 *
 * @module
 */

import { metapb, pdpb } from "../../proto/mod.ts";
import { ConfChangeType } from "../../src/raft/mod.ts";
import type { PdRegion } from "../../src/client/pd_client.ts";
import { MemoryEngine } from "../../src/engine/memory_engine.ts";
import { EngineStorage } from "../../src/pd/engine_storage.ts";
import { PdError } from "../../src/pd/errors.ts";
import {
  describeOperator,
  type HeartbeatInstruction,
  type Operator,
} from "../../src/pd/operator.ts";
import { type AdminOperatorRequest, PlacementDriver } from "../../src/pd/placement_driver.ts";
import {
  instructionToProto,
  regionFromProto as pdRegionFromProto,
  regionRoute,
  storeToProto,
} from "../../src/pd/server/convert.ts";
import type { Liveness, RegionInfo as PdRegionInfo } from "../../src/pd/types.ts";
import { changePeerCommand, prepareMergeCommand } from "../../src/raftstore/command.ts";
import type { CmdResult } from "../../src/raftstore/apply.ts";
import { describeRegionError } from "../../src/raftstore/errors.ts";
import type { RegionMeta } from "../../src/raftstore/local_state.ts";
import type { Peer } from "../../src/raftstore/peer.ts";
import type { Cluster } from "../../src/raftstore/testing/cluster.ts";
import { operatorOf } from "../../src/server/pd_operator.ts";
import type { RegionOperator } from "../../src/server/worker_raftstore.ts";
import { assert } from "../../src/util/assert.ts";
import type { SeededRandom } from "../../src/util/random.ts";
import { storeAddress } from "./sim_pd.ts";

/** Ticks between two store heartbeats of a store (STORE_HEARTBEAT_INTERVAL_MS, scaled down). */
export const PD_STORE_HEARTBEAT_TICKS = 10;
/** Ticks between two region heartbeats of an unchanged region's leader. */
export const PD_REGION_HEARTBEAT_TICKS = 20;
/** Ticks between two scheduling rounds. */
export const PD_SCHEDULE_TICKS = 5;
/**
 * PD's `max-store-down-time` in the simulator, ms of PD's clock (210 ticks): as small as PD
 * allows — it must exceed PD_STORE_DISCONNECTED_MS (20 s).
 */
export const SIM_PD_MAX_STORE_DOWN_TIME_MS = 21_000;
/** `split-merge-interval` of seeds whose merge checker runs (100 ticks). */
export const SIM_PD_SPLIT_MERGE_INTERVAL_MS = 10_000;
/**
 * PD's ids start above this: the harness hands out ids from 1000 (`Cluster.allocPeerId`) for the
 * oracle's scheduler, and the two must never meet.
 */
export const SIM_PD_RESERVED_IDS_THROUGH = 1_000_000n;
/** Forward jumps of PD's clock, ms: from a hiccup to more than `max-store-down-time`. */
export const PD_CLOCK_JUMPS_MS = [300, 2_000, 5_000, 12_000, 25_000] as const;
/** Chance per tick of the fault phase that PD's clock jumps. */
export const PD_CLOCK_JUMP_PER_TICK = 0.004;
/** Most proposals of PD's operators awaiting an answer (then older ones are forgotten). */
const MAX_TRACKED_OUTCOMES = 256;

/** What PD's operators made the stores do, counted when the stores answered. */
export interface SimPdStats {
  regionHeartbeats: number;
  refusedHeartbeats: number;
  operatorsAdded: number;
  operatorsTimedOut: number;
  /** Conf changes PD asked for that applied. */
  confChanges: number;
  /** Leadership transfers PD asked for (started). */
  transfers: number;
  /** PrepareMerges PD asked for that applied. */
  merges: number;
  /** Proposals of PD's steps the stores refused. */
  refusedSteps: number;
  clockJumps: number;
  timestamps: number;
}

/** How the simulated PD is set up. */
export interface SimPdOptions {
  c: Cluster;
  random: SeededRandom;
  /** Voters every region should have (`max-replicas`). */
  voters: number;
  /** The simulated clock's reading, ms (PD adds its own jumps). */
  simNowMs: () => number;
  /** Let PD's merge checker merge small regions (a short split-merge-interval). */
  mergeChecker: boolean;
  trace: (line: string) => void;
}

/** The real PD, fed and obeyed by the harness's stores (module header). */
export class SimPlacementDriver {
  readonly pd: PlacementDriver;
  readonly stats: SimPdStats = {
    regionHeartbeats: 0,
    refusedHeartbeats: 0,
    operatorsAdded: 0,
    operatorsTimedOut: 0,
    confChanges: 0,
    transfers: 0,
    merges: 0,
    refusedSteps: 0,
    clockJumps: 0,
    timestamps: 0,
  };
  readonly #c: Cluster;
  readonly #trace: (line: string) => void;
  readonly #simNowMs: () => number;
  #offsetMs = 0;
  /** Per region: what its last heartbeat told, and when (a tick). */
  readonly #sent = new Map<bigint, { signature: string; tick: number }>();
  /** Store liveness as PD last judged it, for the trace. */
  readonly #liveness = new Map<bigint, Liveness>();
  #outstanding = 0;
  #lastTimestamp = 0n;
  /** Set when PD's TSO handed out a timestamp not above the one before (a checker failure). */
  tsoViolation: string | undefined;

  constructor(options: SimPdOptions) {
    this.#c = options.c;
    this.#trace = options.trace;
    this.#simNowMs = options.simNowMs;
    this.pd = PlacementDriver.open({
      storage: new EngineStorage({ engine: new MemoryEngine() }),
      clock: { nowMs: () => this.nowMs() },
      random: options.random,
      reservedIdsThrough: SIM_PD_RESERVED_IDS_THROUGH,
      config: {
        maxReplicas: options.voters,
        maxStoreDownTimeMs: SIM_PD_MAX_STORE_DOWN_TIME_MS,
        ...(options.mergeChecker ? { splitMergeIntervalMs: SIM_PD_SPLIT_MERGE_INTERVAL_MS } : {}),
      },
    });
    this.#bootstrap();
  }

  /** PD's clock: the simulated one plus every jump so far. */
  nowMs(): number {
    return this.#simNowMs() + this.#offsetMs;
  }

  /** PD's clock steps forward by `ms` (PD only: stores and clients keep the simulated time). */
  jump(ms: number): void {
    assert(ms > 0, "PD's clock jumps forward only", { ms });
    this.#offsetMs += ms;
    this.stats.clockJumps++;
    this.#trace(`pd: clock jumps ${ms} ms forward (offset now ${this.#offsetMs} ms)`);
  }

  /**
   * Bootstraps as the first store does (itself and region 1 with its one peer), then every
   * other store joins (PutStore); region 1's first heartbeat brings its real peers.
   */
  #bootstrap(): void {
    const c = this.#c;
    const first = c.storeIds[0]!;
    const region = c.initialRegion();
    const own = region.peers.find((p) => p.storeId === first);
    assert(own !== undefined, "the first store holds region 1");
    const refused = this.pd.bootstrap({
      store: { id: first, address: storeAddress(first) },
      region: pdRegionFromProto({ ...region, peers: [own] }),
    });
    assert(refused === null, `PD refused the bootstrap: ${refused?.message}`);
    for (const id of c.storeIds.slice(1)) {
      const no = this.pd.putStore({ id, address: storeAddress(id) });
      assert(no === null, `PD refused store ${id}: ${no?.message}`);
    }
    this.step();
  }

  /** Once per tick, after the stores ticked: heartbeats, their answers, TSO and scheduling. */
  step(): void {
    const c = this.#c;
    this.pd.tsoTick();
    for (const [i, id] of c.storeIds.entries()) {
      if (c.isUp(id) && (c.ticks + i) % PD_STORE_HEARTBEAT_TICKS === 0) this.#storeHeartbeat(id);
    }
    for (const id of c.storeIds) {
      if (!c.isUp(id)) continue;
      for (const peer of c.store(id).peers()) {
        if (peer.isLeader() && peer.isInitialized() && !peer.destroyed) this.#maybeHeartbeat(peer);
      }
    }
    if (c.ticks % PD_SCHEDULE_TICKS === 0) this.#schedule();
  }

  #storeHeartbeat(storeId: bigint): void {
    const regionCount = this.#c.store(storeId).peers().filter((p) => !p.destroyed).length;
    const answer = this.pd.storeHeartbeat(storeId, {
      capacity: 1n << 40n,
      available: 1n << 39n,
      usedSize: 0n,
      regionCount,
      sendingSnapCount: 0,
      receivingSnapCount: 0,
      isBusy: false,
    });
    assert(!(answer instanceof PdError), `PD refused store ${storeId}'s heartbeat`, {
      message: answer instanceof PdError ? answer.message : "",
    });
  }

  /** A region heartbeat from `peer` (a leader) if its region changed or it is due. */
  #maybeHeartbeat(peer: Peer): void {
    const region = peer.region();
    const pending = peer.pendingPeers().map((p) => p.id);
    const epoch = region.regionEpoch;
    const signature = `${peer.meta.id}/${peer.raw.raft.term}/${epoch.version}/${epoch.confVer}/` +
      pending.join(",");
    const last = this.#sent.get(region.id);
    const due = last === undefined || last.signature !== signature ||
      this.#c.ticks - last.tick >= PD_REGION_HEARTBEAT_TICKS;
    if (!due) return;
    this.#sent.set(region.id, { signature, tick: this.#c.ticks });
    const meta = pdRegionFromProto(region);
    const leader = meta.peers.find((p) => p.id === peer.meta.id);
    assert(leader !== undefined, "a leader is among its region's peers", { regionId: region.id });
    this.stats.regionHeartbeats++;
    const op = this.pd.controller.get(region.id, this.nowMs());
    const running = op?.status === "RUNNING" ? op : null;
    const answer = this.pd.regionHeartbeat({
      region: meta,
      leader,
      term: peer.raw.raft.term,
      pendingPeers: meta.peers.filter((p) => pending.includes(p.id)),
    });
    this.#traceEnded(running);
    if (answer instanceof PdError) {
      this.stats.refusedHeartbeats++;
      this.#trace(
        `pd: refused region ${region.id}'s heartbeat from store ` +
          `${peer.meta.storeId}: ${answer.code}`,
      );
      return;
    }
    if (answer !== null) this.#carryOut(peer, answer);
  }

  /**
   * Traces how the operator that was running before a heartbeat ended, if the heartbeat ended
   * it (success, or a cancel: a stale epoch, a step that can no longer be done), so a trace
   * shows why a region's repair stopped.
   */
  #traceEnded(op: Operator | null): void {
    if (op === null || op.status === "RUNNING") return;
    this.#trace(`pd: operator ended: ${describeOperator(op)}`);
  }

  /**
   * PD's answer, through the wire as a store receives it, carried out as the store's worker
   * does (`WorkerRaftstore.operator`).
   */
  #carryOut(peer: Peer, instruction: HeartbeatInstruction): void {
    const bytes = pdpb.RegionHeartbeatResponse.encode(instructionToProto(instruction)).finish();
    const op = operatorOf(pdpb.RegionHeartbeatResponse.decode(bytes));
    const storeId = peer.meta.storeId;
    const regionId = peer.regionId;
    if (op === null) return;
    const what = `region ${regionId} ${describeRegionOperator(op)} via store ${storeId}`;
    this.#trace(`pd: ${what}`);
    const store = this.#c.store(storeId);
    if (!peer.isLeader()) return this.#trace(`pd: ${what}: not the leader here`);
    if (op.transferLeader !== undefined) {
      store.transferLeader(regionId, op.transferLeader.peerId);
      this.stats.transfers++;
      return;
    }
    const cmd = op.merge !== undefined
      ? prepareMergeCommand(peer, { minIndex: peer.mergeMinIndex(), target: op.merge.target })
      : changePeerCommand(peer, op.changePeer!);
    if (this.#outstanding >= MAX_TRACKED_OUTCOMES) return;
    this.#outstanding++;
    store.propose(regionId, cmd, (result) => {
      this.#outstanding--;
      this.#settled(what, op, result);
    });
  }

  #settled(what: string, op: RegionOperator, result: CmdResult): void {
    if (!result.ok) {
      this.stats.refusedSteps++;
      this.#trace(`pd: ${what}: ${describeRegionError(result.error)}`);
      return;
    }
    if (op.merge !== undefined) this.stats.merges++;
    else this.stats.confChanges++;
    this.#trace(`pd: ${what}: ${op.merge !== undefined ? "merge prepared" : "applied"}`);
  }

  #schedule(): void {
    const nowMs = this.nowMs();
    for (const store of this.pd.cluster.stores({ excludeTombstone: true })) {
      const liveness = this.pd.cluster.liveness(store, nowMs);
      const before = this.#liveness.get(store.meta.id) ?? "Up";
      if (liveness !== before) this.#trace(`pd: store ${store.meta.id} is ${liveness}`);
      this.#liveness.set(store.meta.id, liveness);
    }
    const round = this.pd.scheduleRound();
    for (const op of round.added) this.#trace(`pd: operator ${describeOperator(op)}`);
    for (const op of round.timedOut) this.#trace(`pd: timed out: ${describeOperator(op)}`);
    this.stats.operatorsAdded += round.added.length;
    this.stats.operatorsTimedOut += round.timedOut.length;
  }

  // --- Admin requests (the scheduler's random actions) -------------------------------------

  /** `ctl operator add …`; the trace tells what PD made of it. */
  addOperator(request: AdminOperatorRequest): boolean {
    const op = this.pd.addOperator(request);
    const asked = JSON.stringify(request, (_k, v) => typeof v === "bigint" ? String(v) : v);
    if (op instanceof PdError) {
      this.#trace(`admin pd operator ${asked}: refused (${op.code})`);
      return false;
    }
    this.stats.operatorsAdded++;
    this.#trace(`admin pd operator: ${describeOperator(op)}`);
    return true;
  }

  /** AskBatchSplit for one split of `region` (as its leader holds it). */
  askSplitIds(region: RegionMeta): { newRegionId: bigint; newPeerIds: bigint[] } | string {
    const ids = this.pd.askBatchSplit({ region: pdRegionFromProto(region), splitCount: 1 });
    if (ids instanceof PdError) return `${ids.code}: ${ids.message}`;
    return ids[0]!;
  }

  /** ReportBatchSplit of a split's answer (the regions it made, in key order). */
  reportSplit(regions: readonly RegionMeta[]): void {
    const refused = this.pd.reportBatchSplit(regions.map((r) => pdRegionFromProto(r)));
    if (refused !== null) this.#trace(`pd: split report refused: ${refused.message}`);
  }

  // --- PD → client ---------------------------------------------------------------------------

  /** One timestamp from PD's TSO (a checker records one that does not increase). */
  timestamp(): bigint {
    const batch = this.pd.tso(1);
    assert(!(batch instanceof PdError), "PD's TSO answers", {
      message: batch instanceof PdError ? batch.message : "",
    });
    this.stats.timestamps++;
    if (batch.last <= this.#lastTimestamp && this.tsoViolation === undefined) {
      this.tsoViolation = `PD's TSO went back: ${batch.last} after ${this.#lastTimestamp}`;
    }
    if (batch.last > this.#lastTimestamp) this.#lastTimestamp = batch.last;
    return batch.last;
  }

  /**
   * The calls src/client's `PdRegionSource` makes of its `PdClient`, answered from PD's region
   * tree as PD's gRPC service answers them.
   */
  client(): SimPdClient {
    const pd = this.pd;
    const route = (info: PdRegionInfo | null | PdError): PdRegion | null => {
      if (info instanceof PdError) throw new Error(`PD: ${info.message}`);
      return info === null ? null : regionRoute(info);
    };
    return {
      getRegion: (key) => Promise.resolve(route(pd.getRegion(key))),
      getPrevRegion: (key) => Promise.resolve(route(pd.getPrevRegion(key))),
      getRegionById: (id) => Promise.resolve(route(pd.getRegionById(id))),
      scanRegions: (range) => {
        const found = pd.scanRegions(range);
        if (found instanceof PdError) throw new Error(`PD: ${found.message}`);
        return Promise.resolve(found.map((info) => regionRoute(info)));
      },
      getStore: (storeId) => {
        const store = pd.getStore(storeId);
        if (store instanceof PdError) return Promise.reject(new Error(`PD: ${store.message}`));
        return Promise.resolve(metapb.Store.create(storeToProto(store.meta)));
      },
      close: () => {},
    };
  }
}

/** The part of src/client's `PdClient` its `PdRegionSource` uses. */
export interface SimPdClient {
  getRegion(key: Uint8Array): Promise<PdRegion | null>;
  getPrevRegion(key: Uint8Array): Promise<PdRegion | null>;
  getRegionById(regionId: bigint): Promise<PdRegion | null>;
  scanRegions(
    range: { startKey: Uint8Array; endKey: Uint8Array; limit: number },
  ): Promise<PdRegion[]>;
  getStore(storeId: bigint): Promise<metapb.Store>;
  close(): void;
}

function describeRegionOperator(op: RegionOperator): string {
  if (op.transferLeader !== undefined) return `transfer leader to peer ${op.transferLeader.peerId}`;
  if (op.merge !== undefined) return `merge into region ${op.merge.target.id}`;
  const change = op.changePeer!;
  return `${
    ConfChangeType[change.changeType]
  } peer ${change.peer.id} on store ${change.peer.storeId}`;
}
