/**
 * The raftstore inside a region-group worker (DESIGN.md §4.1): the worker's regions run as
 * peers of one `Store` over the shared engine, driven in real time (`StoreDriver`), and every
 * write of the worker's commands leaves through the log (`RaftWritePath`). Raft messages for
 * other stores go to the main thread, which carries them (`BatchRaft`); messages from other
 * stores come back the same way, routed to the worker by region.
 *
 * What a command sees of it:
 * - `regions`: the worker's regions as `Region`s (this store's peer of each initialized replica),
 *   refreshed after every round that changed one (a conf change, a new replica);
 * - `gate`: a request runs at once on the leader under its lease; otherwise after a ReadIndex
 *   round, or it is refused (`NotLeader` with the leader this replica knows);
 * - `writes`: the write path through the log.
 *
 * @module
 */

import type { KvEngine } from "../engine/types.ts";
import {
  DEFAULT_HIBERNATE_REGIONS,
  DEFAULT_REGION_MAX_KEYS,
  DEFAULT_REGION_MAX_SIZE_BYTES,
  DEFAULT_REGION_SPLIT_KEYS,
  DEFAULT_REGION_SPLIT_SIZE_BYTES,
  DEFAULT_SPLIT_REGION_CHECK_INTERVAL_MS,
  RAFTSTORE_TICK_MS,
  SPLIT_CHECK_SLICE_ENTRIES,
  SPLIT_IDS_RETRY_MS,
} from "../constants.ts";
import { type SplitCheckResult, SplitCheckScan } from "../raftstore/split_check.ts";
import type { SplitThresholds } from "./config.ts";
import { StoreDriver } from "../raftstore/worker/driver.ts";
import {
  stageClock,
  stageNow,
  stagesOn,
  startStageDump,
  timedEngine,
} from "../raftstore/worker/stage_clock.ts";
import { MessageType } from "../raft/mod.ts";
import type { Peer } from "../raftstore/peer.ts";
import type { RegionMeta } from "../raftstore/local_state.ts";
import { Store } from "../raftstore/store.ts";
import type { RaftEnvelope, Transport } from "../raftstore/transport.ts";
import { RaftWritePath } from "../raftstore/write_path.ts";
import {
  batchSplitCommand,
  changePeerCommand,
  prepareMergeCommand,
  regionsAfterSplit,
} from "../raftstore/command.ts";
import type { CmdResult } from "../raftstore/apply.ts";
import { regionFromProto } from "../raftstore/local_state.ts";
import { describeRegionError } from "../raftstore/errors.ts";
import type { ConfChangeType } from "../raft/mod.ts";
import type { metapb } from "../../proto/mod.ts";
import type { WritePath } from "../storage/write_path.ts";
import type { SnapshotManager } from "../raftstore/snapshot/sst_snapshot.ts";
import { type Failure, failureOfRegionError } from "./failure.ts";
import { MaxTsSync } from "./max_ts_sync.ts";
import type { Region } from "./region.ts";

/** A PD operator for one region (pdpb.RegionHeartbeatResponse's, as a value). */
export interface RegionOperator {
  changePeer?: {
    changeType: ConfChangeType;
    peer: { id: bigint; storeId: bigint; role: metapb.PeerRole };
  };
  transferLeader?: { peerId: bigint };
  /** `pdpb.Merge`: merge this region into `target` (PrepareMerge; the target as PD knows it). */
  merge?: { target: RegionMeta };
}

/** `[raftstore]` settings a worker's peers and driver take. */
export interface RaftstoreSettings {
  tickMs: number;
  heartbeatTicks: number;
  electionTimeoutTicks: number;
  raftLogGcCountLimit: number;
  raftLogGcSizeLimitBytes: number;
  /** `split-region-check-tick-interval`: how often led regions are checked; 0: never. */
  splitCheckIntervalMs?: number;
  /** `[coprocessor]` split thresholds (`splitThresholds`); TiKV's defaults when absent. */
  split?: SplitThresholds;
  /** `hibernate-regions`: quiet regions stop ticking (src/raftstore/hibernate.ts); default on. */
  hibernateRegions?: boolean;
}

/** What the worker hands the raftstore. */
export interface WorkerRaftstoreOptions {
  storeId: bigint;
  settings?: RaftstoreSettings;
  /** Where region snapshots are made as SST files; inline snapshots when absent. */
  snapshots?: SnapshotManager;
  engine: KvEngine;
  /** The regions the routing table gives this worker. */
  regionIds: ReadonlySet<bigint>;
  /** Envelopes for other stores, in the order sent (posted to the main thread). */
  send: (envelopes: RaftEnvelope[]) => void;
  /** Why the engine takes no writes now (a full disk's fence), or null. */
  refusal?: () => Error | null;
  /** A round threw: a bug, the worker ends. */
  onBug: (error: unknown) => void;
  /**
   * Clustered: asks for a PD timestamp for a region whose peer here became leader in `term`
   * (`maxTsFetched` answers); until it comes, the region's max_ts is not synced. Absent
   * (standalone: max_ts was seeded from the store's own oracle at start): always synced.
   */
  requestMaxTs?: (regionId: bigint, term: bigint) => void;
  /**
   * The store's regions have their only voter here (a standalone store): its log's fsyncs are
   * pipelined (store.ts, "Pipelined log").
   */
  pipelineLog?: boolean;
  /** A region appeared, changed or went (after a round, or an open or close). */
  onRegionsChanged?: (changed: Region[], removed: bigint[]) => void;
  /** A merge here waits for region `regionId`, which another worker runs: move it here. */
  needRegion?: (regionId: bigint) => void;
  /**
   * Ids for `count` new regions of a split of `region` (PD's AskBatchSplit, or the embedded
   * PD's); splits are refused when absent.
   */
  askSplitIds?: (region: RegionMeta, count: number) => Promise<SplitSpecIds[]>;
  /** A split this store's leader proposed applied: the regions it made (PD's ReportBatchSplit). */
  onSplit?: (regions: RegionMeta[]) => void;
  /** TiKV's `right-derive-when-split`: the parent keeps the rightmost part (default true). */
  rightDeriveWhenSplit?: boolean;
  /** Where the raftstore says what it did that an operator may want to know. */
  log?: (message: string, fields: Record<string, string>) => void;
}

/** TiKV's default split thresholds (`[coprocessor]`). */
const DEFAULT_SPLIT_THRESHOLDS: SplitThresholds = {
  regionSplitSizeBytes: DEFAULT_REGION_SPLIT_SIZE_BYTES,
  regionMaxSizeBytes: DEFAULT_REGION_MAX_SIZE_BYTES,
  regionSplitKeys: DEFAULT_REGION_SPLIT_KEYS,
  regionMaxKeys: DEFAULT_REGION_MAX_KEYS,
};

/** The ids of one new region of a split (pdpb.SplitID). */
export interface SplitSpecIds {
  newRegionId: bigint;
  newPeerIds: bigint[];
}

/** What a split answers: the regions it made, in key order, or why it was not made. */
export type SplitOutcome = { regions: RegionMeta[] } | { failure: Failure };

/** The `Region` a command checks requests against, for this store's peer of `region`. */
export function regionOfPeer(region: RegionMeta, peer: { id: bigint; storeId: bigint }): Region {
  return {
    id: region.id,
    startKey: region.startKey,
    endKey: region.endKey,
    confVer: region.regionEpoch.confVer,
    version: region.regionEpoch.version,
    peerId: peer.id,
    storeId: peer.storeId,
    peers: region.peers,
  };
}

/** Stage names of a worker's raftstore (stage_clock.ts). */
export const WORKER_STAGES = {
  /** A write handed to the write path → settled (applied here, or failed). */
  write: "worker.write",
  /** Leader: an append with entries sent → its acknowledgement received (replication RTT). */
  appendRtt: "leader.appendRtt",
  /** Leader: the last acknowledgement received → a write settles (commit, apply, answer). */
  ackToSettle: "leader.ackToSettle",
  /** Follower: an append with entries received → its acknowledgement sent (incl. its fsync). */
  appendToAck: "follower.appendToAck",
} as const;

/** The key matching an append (with entries up to `index`) with its acknowledgement. */
function appendKey(side: "sent" | "received", envelope: RaftEnvelope, index: bigint): string {
  const other = side === "sent" ? envelope.toPeer.id : envelope.fromPeer.id;
  return `${side}/${envelope.regionId}/${other}/${index}`;
}

/** Last index of an append with entries, or -1n. */
function appendedIndex(envelope: RaftEnvelope): bigint {
  const message = envelope.message;
  if (message.msgType !== MessageType.MsgAppend || message.entries.length === 0) return -1n;
  return message.entries[message.entries.length - 1]!.index;
}

/** The index an acknowledgement of an append covers, or -1n. */
function acknowledgedIndex(envelope: RaftEnvelope): bigint {
  const message = envelope.message;
  if (message.msgType !== MessageType.MsgAppendResponse || message.reject) return -1n;
  return message.index;
}

/** State of the worker's stage clock (module-wide: one raftstore per worker). */
const stageMarks = { lastAckAt: -1 };

/** Stage clock hook for an envelope leaving this worker. */
function timeSent(envelope: RaftEnvelope): void {
  const now = stageNow();
  const appended = appendedIndex(envelope);
  if (appended >= 0n) stageClock.mark(appendKey("sent", envelope, appended), now);
  const acknowledged = acknowledgedIndex(envelope);
  if (acknowledged >= 0n) {
    // Keyed by the peer it answers: the append it acknowledges came from that peer.
    const key = `received/${envelope.regionId}/${envelope.toPeer.id}/${acknowledged}`;
    stageClock.end(key, WORKER_STAGES.appendToAck, now);
  }
}

/** Stage clock hook for an envelope reaching this worker. */
function timeReceived(envelope: RaftEnvelope): void {
  const now = stageNow();
  const appended = appendedIndex(envelope);
  if (appended >= 0n) stageClock.mark(appendKey("received", envelope, appended), now);
  const acknowledged = acknowledgedIndex(envelope);
  if (acknowledged >= 0n) {
    const key = `sent/${envelope.regionId}/${envelope.fromPeer.id}/${acknowledged}`;
    if (stageClock.end(key, WORKER_STAGES.appendRtt, now)) stageMarks.lastAckAt = now;
  }
}

/** `writes` with each write timed (stage clocks only). */
function timedWritePath(writes: WritePath): WritePath {
  return {
    write(region, modifications, options) {
      const start = stageNow();
      stageClock.proposed(start);
      const settled = () => {
        const now = stageNow();
        stageClock.record(WORKER_STAGES.write, now - start);
        if (stageMarks.lastAckAt >= start) {
          stageClock.record(WORKER_STAGES.ackToSettle, now - stageMarks.lastAckAt);
        }
      };
      const written = writes.write(region, modifications, options);
      written.then(settled, settled);
      return written;
    },
  };
}

/** Envelopes of one wave of microtasks, posted together. */
class PostingTransport implements Transport {
  #queued: RaftEnvelope[] = [];
  constructor(readonly post: (envelopes: RaftEnvelope[]) => void) {}

  send(envelope: RaftEnvelope): void {
    if (stagesOn) timeSent(envelope);
    if (this.#queued.length === 0) queueMicrotask(this.#flush);
    this.#queued.push(envelope);
  }

  readonly #flush = (): void => {
    const envelopes = this.#queued;
    this.#queued = [];
    if (envelopes.length > 0) this.post(envelopes);
  };
}

/** The raftstore of one worker (see the module header). */
export class WorkerRaftstore {
  readonly store: Store;
  readonly driver: StoreDriver;
  readonly writes: WritePath;
  /** The initialized regions served here, by id (what `StoreServices.regions` reads). */
  readonly regions = new Map<bigint, Region>();
  /** Per region, what its `Region` was made from (to see a change cheaply). */
  readonly #seen = new Map<
    bigint,
    { meta: RegionMeta; leading: boolean; term: bigint; pending: string }
  >();
  /** Regions being closed: not mirrored into `regions` again. */
  readonly #closing = new Set<bigint>();
  readonly #onRegionsChanged: WorkerRaftstoreOptions["onRegionsChanged"];
  readonly #requestMaxTs: WorkerRaftstoreOptions["requestMaxTs"];
  /** Regions led here whose max_ts awaits a PD timestamp (led anew, or grown by a merge). */
  readonly #maxTsSync = new MaxTsSync();

  readonly #splitThresholds: SplitThresholds;
  #splitTimer: ReturnType<typeof setInterval> | undefined;
  #checkingSplits = false;
  #stopped = false;
  /** Per region, the applied index its last split check saw (unchanged: not checked again). */
  readonly #checkedAt = new Map<bigint, bigint>();
  readonly #sizes = new Map<bigint, { sizeBytes: number; keys: number }>();
  readonly #log: WorkerRaftstoreOptions["log"];
  readonly #askSplitIds: WorkerRaftstoreOptions["askSplitIds"];
  readonly #onSplit: WorkerRaftstoreOptions["onSplit"];
  readonly #rightDerive: boolean;
  readonly #stopStageDump: () => void;

  constructor(options: WorkerRaftstoreOptions) {
    this.#onRegionsChanged = options.onRegionsChanged;
    this.#askSplitIds = options.askSplitIds;
    this.#onSplit = options.onSplit;
    this.#rightDerive = options.rightDeriveWhenSplit ?? true;
    this.#log = options.log;
    this.#splitThresholds = options.settings?.split ?? DEFAULT_SPLIT_THRESHOLDS;
    const splitCheckMs = options.settings?.splitCheckIntervalMs ??
      DEFAULT_SPLIT_REGION_CHECK_INTERVAL_MS;
    if (splitCheckMs > 0 && this.#askSplitIds !== undefined) {
      this.#splitTimer = setInterval(() => {
        this.checkSplits().catch((error) => options.onBug(error));
      }, splitCheckMs);
    }
    this.#requestMaxTs = options.requestMaxTs;
    const settings = options.settings;
    this.store = Store.start({
      storeId: options.storeId,
      engine: stagesOn ? timedEngine(options.engine) : options.engine,
      transport: new PostingTransport(options.send),
      random: { nextInt: (n) => Math.floor(Math.random() * n) },
      regionIds: options.regionIds,
      snapshots: options.snapshots,
      needRegion: options.needRegion,
      config: {
        pipelineLog: options.pipelineLog ?? false,
        ...(settings === undefined ? {} : {
          heartbeatIntervalTicks: settings.heartbeatTicks,
          electionTimeoutTicks: settings.electionTimeoutTicks,
          raftLogGcCountLimit: settings.raftLogGcCountLimit,
          raftLogGcSizeLimitBytes: settings.raftLogGcSizeLimitBytes,
          // A ReadIndex waits at least one election timeout (the rule peer_config checks).
          readIndexTimeoutTicks: 2 * settings.electionTimeoutTicks,
          raftLogGcCheckTicks: settings.electionTimeoutTicks,
          hibernateRegions: settings.hibernateRegions ?? DEFAULT_HIBERNATE_REGIONS,
        }),
      },
    });
    this.driver = new StoreDriver(this.store, {
      tickMs: settings?.tickMs ?? RAFTSTORE_TICK_MS,
      onBug: options.onBug,
      afterRound: () => this.#mirror(this.store.takeTouched()),
    });
    const writes = new RaftWritePath(this.store, () => this.driver.kick(), options.refusal);
    this.writes = stagesOn ? timedWritePath(writes) : writes;
    this.#stopStageDump = startStageDump(
      (message, fields) => this.#log?.(message, fields),
      `worker of store ${options.storeId}`,
    );
    // A lone voter (a standalone store's region) need not wait an election timeout.
    this.store.campaignLoneVoters();
    this.#mirror();
    this.driver.kick();
  }

  /** See `StoreServices.gate`. */
  readonly gate = (region: Region): Promise<Failure | null> | null =>
    readGate(this.store, region.id, () => this.driver.kick());

  /** Envelopes from other stores, for this worker's regions (or new ones it is to create). */
  receive(envelopes: readonly RaftEnvelope[]): void {
    if (stagesOn) { for (const envelope of envelopes) timeReceived(envelope); }
    for (const envelope of envelopes) this.store.receive(envelope);
    this.driver.kick();
  }

  /** Runs region `regionId` from its records (given to this worker); then calls `done`. */
  open(regionId: bigint, done: (opened: boolean) => void): void {
    this.#closing.delete(regionId);
    this.driver.betweenRounds(() => {
      const opened = this.store.peer(regionId) !== undefined || this.store.openPeer(regionId);
      this.store.campaignLoneVoters();
      this.#mirror();
      done(opened);
    });
  }

  /** Stops answering for region `regionId` (its requests get RegionNotFound) before `close`. */
  hide(regionId: bigint): void {
    this.#closing.add(regionId);
    this.#forget(regionId);
  }

  /** Stops running region `regionId` here (its records stay); then calls `done`. */
  close(regionId: bigint, done: () => void): void {
    this.hide(regionId);
    this.driver.betweenRounds(() => {
      this.store.closePeer(regionId);
      done();
    });
  }

  /**
   * Carries out a PD operator on region `regionId` if this store's peer leads it: a ChangePeer
   * proposed through the log, or a leadership transfer. `done` hears the outcome (a sentence).
   */
  operator(regionId: bigint, op: RegionOperator, done: (outcome: string) => void): void {
    const peer = this.store.peer(regionId);
    if (peer === undefined || !peer.isLeader()) return done("not the leader here");
    if (op.transferLeader !== undefined) {
      this.store.transferLeader(regionId, op.transferLeader.peerId);
      this.driver.kick();
      return done("transfer started");
    }
    if (op.merge !== undefined) {
      const cmd = prepareMergeCommand(peer, {
        minIndex: peer.mergeMinIndex(),
        target: op.merge.target,
      });
      this.store.propose(regionId, cmd, (result) => {
        done(result.ok ? "merge prepared" : describeRegionError(result.error));
      });
      this.driver.kick();
      return;
    }
    if (op.changePeer === undefined) return done("no operator step");
    const change = op.changePeer!;
    const cmd = changePeerCommand(peer, {
      changeType: change.changeType,
      peer: { id: change.peer.id, storeId: change.peer.storeId, role: change.peer.role },
    });
    this.store.propose(regionId, cmd, (result) => {
      done(result.ok ? "applied" : describeRegionError(result.error));
    });
    this.driver.kick();
  }

  /**
   * Splits region `region.id` at `splitKeys` (data keys, ascending) if this store's peer leads
   * it under `region`'s epoch: ids from `askSplitIds`, then a BatchSplit through the log.
   * The keys are checked before ids are asked for, and again by the leader and at apply.
   */
  async split(region: Region, splitKeys: readonly Uint8Array[]): Promise<SplitOutcome> {
    const ask = this.#askSplitIds;
    if (ask === undefined) {
      return { failure: { code: "InvalidArgument", message: "this store cannot split regions" } };
    }
    const check = (): { failure: Failure } | { peer: Peer; meta: RegionMeta } => {
      const peer = this.store.peer(region.id);
      if (peer === undefined) {
        return { failure: failureOfRegionError({ code: "RegionNotFound", regionId: region.id }) };
      }
      if (!peer.isLeader()) {
        return {
          failure: failureOfRegionError({
            code: "NotLeader",
            regionId: region.id,
            leader: peer.leader(),
          }),
        };
      }
      const meta = peer.region();
      if (
        meta.regionEpoch.version !== region.version || meta.regionEpoch.confVer !== region.confVer
      ) {
        return {
          failure: failureOfRegionError({
            code: "EpochNotMatch",
            regionId: region.id,
            currentRegion: meta,
            atApply: false,
          }),
        };
      }
      return { peer, meta };
    };
    const first = check();
    if ("failure" in first) return first;
    // Distinct placeholder ids: only the keys are checked here.
    let placeholder = 1n << 62n;
    const trial = splitKeys.map((splitKey) => ({
      splitKey,
      newRegionId: placeholder++,
      newPeerIds: first.meta.peers.map(() => placeholder++),
    }));
    const problem = regionsAfterSplit(first.meta, trial, false);
    if ("problem" in problem) {
      return { failure: { code: "InvalidArgument", message: `split: ${problem.problem}` } };
    }
    let ids: SplitSpecIds[];
    try {
      ids = await ask(first.meta, splitKeys.length);
    } catch (error) {
      const reason = `no ids for the split from PD: ${(error as Error).message}`;
      return { failure: { code: "ServerIsBusy", reason, backoffMs: SPLIT_IDS_RETRY_MS } };
    }
    const again = check();
    if ("failure" in again) return again;
    const splits = splitKeys.map((splitKey, i) => ({ splitKey, ...ids[i]! }));
    const cmd = batchSplitCommand(again.peer, splits, this.#rightDerive);
    const result = await new Promise<CmdResult>((resolve) => {
      this.store.propose(region.id, cmd, resolve);
      this.driver.kick();
    });
    if (!result.ok) return { failure: failureOfRegionError(result.error) };
    const regions = (result.adminResponse?.splits?.regions ?? []).map(regionFromProto);
    this.#onSplit?.(regions);
    return { regions };
  }

  /**
   * One split check (`split_check.ts`) of every region led here whose applied index moved since
   * its last check: each scan runs in slices between rounds, and a region past its maximum size
   * or key count is split where the check says. The sizes seen are kept for PD's heartbeats.
   */
  async checkSplits(): Promise<void> {
    if (this.#checkingSplits) return;
    this.#checkingSplits = true;
    try {
      for (const region of [...this.regions.values()]) {
        const peer = this.store.peer(region.id);
        if (peer === undefined || !peer.isLeader()) continue;
        const applied = peer.appliedIndex();
        if (this.#checkedAt.get(region.id) === applied) continue;
        this.#checkedAt.set(region.id, applied);
        const result = await this.#scanForSplit(region);
        if (result === null) continue;
        const size = { sizeBytes: result.approximateSizeBytes, keys: result.approximateKeys };
        this.#sizes.set(region.id, size);
        const served = this.regions.get(region.id);
        if (served !== undefined) {
          const sized = {
            ...served,
            approximateSizeBytes: size.sizeBytes,
            approximateKeys: size.keys,
          };
          this.regions.set(region.id, sized);
          this.#onRegionsChanged?.([sized], []);
        }
        if (result.splitKeys.length === 0) continue;
        const outcome = await this.split(region, result.splitKeys);
        if ("failure" in outcome) {
          this.#log?.("split check: the split was not made", {
            region: String(region.id),
            failure: outcome.failure.code,
          });
        }
      }
    } finally {
      this.#checkingSplits = false;
    }
  }

  /** The approximate size and key count the last split check saw of `regionId`, if any. */
  approximateSize(regionId: bigint): { sizeBytes: number; keys: number } | undefined {
    return this.#sizes.get(regionId);
  }

  async #scanForSplit(region: Region): Promise<SplitCheckResult | null> {
    const t = this.#splitThresholds;
    const snapshot = this.store.engine.snapshot();
    try {
      using scan = new SplitCheckScan(snapshot, region, {
        splitSizeBytes: t.regionSplitSizeBytes,
        maxSizeBytes: t.regionMaxSizeBytes,
        splitKeys: t.regionSplitKeys,
        maxKeys: t.regionMaxKeys,
      });
      for (;;) {
        const result = scan.run(SPLIT_CHECK_SLICE_ENTRIES);
        if (result !== null) return result;
        // Between slices the worker serves its requests and rounds.
        await new Promise((resolve) => setTimeout(resolve, 0));
        if (this.#stopped || !this.regions.has(region.id)) return null;
      }
    } finally {
      snapshot.release();
    }
  }

  /** See `StoreServices.maxTsSynced`. */
  readonly maxTsSynced = (regionId: bigint): boolean => this.#maxTsSync.synced(regionId);

  /**
   * A PD timestamp fetched for `regionId` led in `term` (the caller raised max_ts to it first):
   * the region is synced once every timestamp asked for it in `term` has come (`MaxTsSync`).
   */
  maxTsFetched(regionId: bigint, term: bigint): void {
    this.#maxTsSync.fetched(regionId, term);
  }

  /** Asks a PD timestamp for the leader of `peer`'s region when `MaxTsSync` says it needs one. */
  #observeLeader(peer: Peer, meta: RegionMeta, leading: boolean): void {
    if (this.#requestMaxTs === undefined) return; // standalone: always synced
    const term = peer.raw.raft.term;
    const view = { leading, term, startKey: meta.startKey, endKey: meta.endKey };
    if (this.#maxTsSync.observe(peer.regionId, view)) this.#requestMaxTs(peer.regionId, term);
  }

  /** Stops ticking, waits for the round in flight, fails what is owed. */
  stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#splitTimer);
    this.#stopStageDump();
    return this.driver.stop();
  }

  /** Takes a region out of `regions` for a move (not reported: the region lives on). */
  #forget(regionId: bigint): void {
    this.regions.delete(regionId);
    this.#seen.delete(regionId);
    this.#maxTsSync.forget(regionId);
  }

  /**
   * Mirrors the store's peers into `regions` (module header): after a round, only the peers
   * the store says were touched and the regions it dropped (`Store.takeTouched`), so that the
   * work follows the awake peers, not all of them; every peer when `touched` is absent.
   */
  #mirror(touched?: { peers: Peer[]; droppedRegionIds: bigint[] }): void {
    const changed: Region[] = [];
    const removed: bigint[] = [];
    const live = new Set<bigint>();
    for (const peer of touched?.peers ?? this.store.peers()) {
      if (this.store.peer(peer.regionId) !== peer) continue; // replaced or gone: see below
      if (this.#closing.has(peer.regionId) || !peer.isInitialized()) {
        if (touched !== undefined) this.#unmirror(peer.regionId, removed);
        continue;
      }
      live.add(peer.regionId);
      const region = this.#mirrorPeer(peer);
      if (region !== null) changed.push(region);
    }
    if (touched === undefined) {
      for (const id of [...this.regions.keys()]) if (!live.has(id)) this.#unmirror(id, removed);
    } else {
      for (const id of touched.droppedRegionIds) {
        const peer = this.store.peer(id);
        if (peer === undefined || !peer.isInitialized()) this.#unmirror(id, removed);
      }
    }
    if (changed.length > 0 || removed.length > 0) this.#onRegionsChanged?.(changed, removed);
  }

  #unmirror(regionId: bigint, removed: bigint[]): void {
    if (!this.regions.delete(regionId)) return;
    this.#seen.delete(regionId);
    this.#maxTsSync.forget(regionId);
    removed.push(regionId);
  }

  /** `peer`'s `Region`, refreshed in `regions` if it changed (else null). */
  #mirrorPeer(peer: Peer): Region | null {
    const meta = peer.region();
    const leading = peer.isLeader();
    const term = peer.raw.raft.term;
    const pendingPeerIds = leading ? peer.pendingPeers().map((p) => p.id) : [];
    const pending = pendingPeerIds.join(",");
    const seen = this.#seen.get(peer.regionId);
    if (
      seen?.meta === meta && seen.leading === leading && seen.term === term &&
      seen.pending === pending
    ) return null;
    this.#observeLeader(peer, meta, leading);
    this.#seen.set(peer.regionId, { meta, leading, term, pending });
    const size = this.#sizes.get(peer.regionId);
    const region = {
      ...regionOfPeer(meta, ownPeer(peer)),
      leading,
      term,
      pendingPeerIds,
      approximateSizeBytes: size?.sizeBytes,
      approximateKeys: size?.keys,
    };
    this.regions.set(peer.regionId, region);
    return region;
  }
}

/** The peer's own entry as the region lists it (its role may have changed since it opened). */
function ownPeer(peer: Peer): { id: bigint; storeId: bigint } {
  return peer.region().peers.find((p) => p.id === peer.meta.id) ?? peer.meta;
}

/**
 * The gate of a region's command (`StoreServices.gate`): null at once when the region's peer
 * here holds its lease, else a ReadIndex round through the store (`started` runs once it is
 * asked for, e.g. to start a round), resolving to null or the region error as a failure.
 */
export function readGate(
  store: Store,
  regionId: bigint,
  started: () => void = () => {},
): Promise<Failure | null> | null {
  const peer = store.peer(regionId);
  if (peer !== undefined && peer.leaseReadable()) return null;
  return new Promise((resolve) => {
    store.read(regionId, (result) => {
      if (!result.ok) return resolve(failureOfRegionError(result.error));
      result.snapshot.release();
      resolve(null);
    });
    started();
  });
}
