/**
 * A store's peers driven in rounds: the heart of a region-group worker, with no Worker API, so
 * that a test harness or the simulator runs it directly (DESIGN.md §4.1).
 *
 * Inputs — Raft messages from other stores, proposals, reads, leadership transfers — gather in
 * an inbox (bounded by RAFTSTORE_MAX_INBOX) and ticks come from whoever drives the store. A
 * round does, in src/raft/raw_node.ts's order:
 *
 *  0. Take the inbox: route each message to its peer (creating or refusing peers, see
 *     `route`), hand each proposal and read to its peer; the writes a peer took reach its Raft
 *     as one batch (`Peer.flushProposals`: one MsgPropose, one append) when the inbox is taken.
 *  1. Collect every peer's Ready and persist all of them in one WriteBatch with one synced write
 *     (`log_writer.ts`); the inbox keeps gathering while the write runs.
 *  2. Send every Ready's messages.
 *  3. Apply the committed entries of all peers with each peer's RaftApplyState (`apply.ts`):
 *     into step 1's WriteBatch, after the log (one atomic write), unless a Ready installs a
 *     snapshot — then into a WriteBatch of its own, written after the snapshot's files.
 *  4. Answer proposals and reads, then `advance` each peer. Peers that applied their own
 *     removal are destroyed (one synced write). (Without a pipelined log, the writes applied
 *     from entries durable before the round are answered between step 1's write and its fsync:
 *     log_writer.ts.)
 *
 * Invariants: rounds never overlap (asserted); nothing here reads a clock or sleeps — time is
 * `tick()`, I/O is the engine and the transport handed in.
 *
 * Pipelined log (`PeerConfig.pipelineLog`, a standalone store's: for a clustered one it
 * measured slower, see peer_config.ts): step 1's write returns before its fsync, which runs
 * while later rounds go on (at most RAFTSTORE_SYNCS_IN_FLIGHT_MAX at once). Until it ends, the
 * round's messages and those of every later round wait (they may promise what it holds: a
 * vote, a follower's answer), except a leader's appends, which leave at once either way; when
 * it ends, each peer's Raft hears its entries are durable (`RawNode.onPersisted`). Only then
 * does a leader count its own copy toward a quorum, and only then are the entries applied
 * (`asyncPersist`: apply never runs ahead of the replica's own durable log, so whatever a read
 * sees is durable), in a later round. A failed fsync fails the next round (a bug: the worker is
 * rebuilt from disk).
 *
 * Message checks (TiKV's store worker, simplified):
 * - a message for a region this store does not host creates an uninitialized replica, if it
 *   comes from a leader (MsgAppend, MsgHeartbeat, MsgSnapshot) or a candidate (MsgRequestVote,
 *   MsgRequestPreVote), the region is not Tombstone here with an epoch at least as new as the
 *   message's, and no initialized replica here holds keys of the message's range (that region
 *   is one a split here will make: a vote request waits for the split);
 * - a message for a newer peer id than the local replica's means the local one was removed
 *   and the region re-added here: the local replica is destroyed and the new one created;
 * - a vote request from a peer that is not in the local region and carries an older conf_ver
 *   is from a removed replica: it is answered with a tombstone envelope, which makes that
 *   replica destroy itself (so a removed voter that never learnt of its removal goes away; a
 *   removed learner never campaigns, and is told only by the leader that applied its removal);
 * - a tombstone envelope destroys the local replica when it is for that replica and carries a
 *   newer conf_ver;
 * - a leader's message whose range initialized replicas here overlap makes those older than it
 *   ask their region's other stores whether they were removed (a stale check: `checkStale`,
 *   kvproto's MsgCheckStalePeer); a store whose replica or Tombstone of the region shows the
 *   asker was removed answers as it answers a removed replica's campaign (below);
 * - a vote request from a member of a region that merged away here (its Tombstone keeps the
 *   merge state) is answered with a tombstone envelope naming the merge's target; the replica
 *   left behind by the merge goes once its own store's replica of the target is past the merge
 *   (`mergedSourceGone`), else it stays for that replica's CommitMerge to catch it up — or, if
 *   this store has no replica of the target, until a message of the target from past the merge
 *   comes to make one (it will take a snapshot): then it goes (`destroySourcesMergedInto`).
 *
 * Uninitialized replicas (created by a message, no snapshot yet) vote, as TiKV's do: a region
 * made by a split may have a voter on a store that never applied the split (it got the parent
 * by a snapshot from after it), and without that vote, the loss of one more store would leave
 * the region without a leader for good (sim --cluster --pd real --pd-members 3 seeds 68, 370).
 * So their vote is kept: a restart does not open them, but leaves their records, and the next
 * message for the region opens them again with the term and vote they had (`maybeCreatePeer`;
 * they carry the epoch of the Tombstone they replaced, if any, and the same epoch check holds);
 * a split keeps them too (`writeSplitPeerState`); a destroyed one's Tombstone names its peer,
 * so that it is never made again without its vote (peer.ts `destroy`).
 *
 * @module
 */

import {
  RAFTSTORE_MAX_INBOX,
  RAFTSTORE_SPLIT_PENDING_MAX,
  RAFTSTORE_STALE_CHECK_INTERVAL_TICKS,
  RAFTSTORE_SYNCS_IN_FLIGHT_MAX,
} from "../constants.ts";
import type { KvEngine } from "../engine/types.ts";
import {
  assert,
  type Message,
  MessageType,
  newMessage,
  type RandomSource,
  type Ready,
  SnapshotStatus,
} from "../raft/mod.ts";
import type { ApplyNeighbours, ApplyOutcome } from "./apply.ts";
import { commitMergeCommand, type RaftCmd, rollbackMergeCommand } from "./command.ts";
import type { RegionError } from "./errors.ts";
import { metapb, raft_cmdpb } from "../../proto/mod.ts";
import { type PeerMeta, PeerState, type RegionLocalState, type RegionMeta } from "./local_state.ts";
import type { SnapshotManager } from "./snapshot/sst_snapshot.ts";
import { persistReadies } from "./log_writer.ts";
import { type HibernationStats, isAcknowledgement, PeerRegistry } from "./hibernate.ts";
import { Peer, type ProposalCallback, type ReadCallback } from "./peer.ts";
import { type PeerConfig, peerConfig } from "./peer_config.ts";
import { writeInitialPeerState } from "./peer_storage.ts";
import { readRegionState, scanRegionStates, writeRegionState } from "./region_state.ts";
import type { RaftEnvelope, Transport } from "./transport.ts";
import { compareBytes } from "../util/bytes.ts";

type InboxItem =
  | { kind: "message"; envelope: RaftEnvelope }
  | {
    kind: "propose";
    regionId: bigint;
    cmd: RaftCmd;
    cb: ProposalCallback;
    encoded: Uint8Array | undefined;
  }
  | { kind: "read"; regionId: bigint; cb: ReadCallback }
  | { kind: "transferLeader"; regionId: bigint; peerId: bigint };

/** A write-ahead-log fsync under way, and what waits for it (`Store.round`). */
interface PendingSync {
  /** Settles when the fsync ends (a failure is kept in `#syncFailure`). */
  done: Promise<void>;
  /** Set once this fsync, or a later one (which covers it), has ended. */
  ended: boolean;
  /** Entries it makes durable, per peer: reported to Raft when it ends. */
  persisted: { peer: Peer; at: { index: bigint; term: bigint } }[];
  /** Messages that may promise what it holds, in the order they were made. */
  messages: { peer: Peer; envelope: RaftEnvelope }[];
}

/** Counters of a store, for tests and metrics. */
export interface StoreStats {
  rounds: number;
  syncedWrites: number;
  messagesDropped: number;
  peersCreated: number;
  peersDestroyed: number;
  /** Rounds that left Readies for the next round (`roundMaxReadyBytes`). */
  roundsCut: number;
}

/** What a store is made of. */
export interface StoreOptions {
  storeId: bigint;
  engine: KvEngine;
  transport: Transport;
  random: RandomSource;
  config?: Partial<PeerConfig>;
  /**
   * The regions this store runs, when it runs only some of the engine's (a region-group worker
   * runs the regions its routing table names); every region recorded when absent.
   */
  regionIds?: ReadonlySet<bigint>;
  /**
   * Where region snapshots are generated as SST files and installed from (the store's
   * `<data-dir>/snap/`); inline snapshots (one message) when absent.
   */
  snapshots?: SnapshotManager;
  /**
   * A CommitMerge here waits for the replica of region `regionId`, which another group of this
   * store runs: asks for it to be moved into this one (called again every tick until it is).
   */
  needRegion?: (regionId: bigint) => void;
}

/** One store's peers, driven in rounds. */
export class Store {
  readonly storeId: bigint;
  readonly engine: KvEngine;
  readonly #transport: Transport;
  readonly #random: RandomSource;
  readonly #config: PeerConfig;
  /** Every peer, and which are awake (hibernate.ts): ticks and rounds visit only those. */
  readonly #peers: PeerRegistry;
  #inbox: InboxItem[] = [];
  /** Vote requests for regions a split here has not made yet (at most RAFTSTORE_SPLIT_PENDING_MAX). */
  #splitPending: RaftEnvelope[] = [];
  /**
   * Source replicas here that a GC message said merged away, kept for their target's replica
   * here to catch up (`mergedSourceGone`): the target as the merge recorded it, by source region
   * id (TiKV's `targets_map`; `destroySourcesMergedInto`).
   */
  readonly #mergedInto = new Map<bigint, RegionMeta>();
  /** Ticks since the store started (`tick`). */
  #ticks = 0;
  /** When each replica here last asked whether it is stale (`checkStaleOverlaps`), by region. */
  readonly #staleChecks = new Map<bigint, number>();
  /** Peers whose Ready the last round left for want of room (`roundMaxReadyBytes`): first next. */
  #deferred: Peer[] = [];
  #inRound = false;
  #stopped = false;
  /** Fsyncs under way, oldest first (at most RAFTSTORE_SYNCS_IN_FLIGHT_MAX). */
  #syncs: PendingSync[] = [];
  /** Why an fsync failed: the next round throws it (a bug: the worker is rebuilt from disk). */
  #syncFailure: unknown = undefined;
  /** Called when an fsync ended (outside a round): what waited for it may make a Ready. */
  syncListener: (() => void) | undefined = undefined;
  readonly stats: StoreStats = {
    rounds: 0,
    syncedWrites: 0,
    messagesDropped: 0,
    peersCreated: 0,
    peersDestroyed: 0,
    roundsCut: 0,
  };

  private constructor(options: StoreOptions) {
    this.storeId = options.storeId;
    this.engine = options.engine;
    this.#transport = options.transport;
    this.#random = options.random;
    this.#config = peerConfig(options.config);
    this.#peers = new PeerRegistry(this.#config);
    this.#snapshots = options.snapshots;
    this.#needRegion = options.needRegion;
  }

  readonly #needRegion: ((regionId: bigint) => void) | undefined;

  readonly #snapshots: SnapshotManager | undefined;
  /** Whether the installs a crash left half done were finished (the first round does it). */
  #resumedInstalls = false;

  /**
   * Step 2 of installing SST snapshots (ingesting the files, then Normal): for `peers` whose
   * step 1 is durable — in the round's synced write, or before a crash (module header).
   */
  private async finishInstalls(peers: Iterable<Peer>): Promise<void> {
    for (const peer of peers) {
      if (peer.storage.pendingSnapshotInstall() !== null) {
        await peer.storage.finishSnapshotInstall(this.engine);
      }
    }
  }

  /**
   * Starts a store over `options.engine`: every initialized, non-Tombstone replica recorded
   * there is rebuilt and replays its log from its applied index; uninitialized ones wait for a
   * message (module header).
   */
  static start(options: StoreOptions): Store {
    const store = new Store(options);
    for (const state of scanRegionStates(store.engine)) {
      if (state.state === PeerState.Tombstone) continue;
      // Another group's region.
      if (options.regionIds !== undefined && !options.regionIds.has(state.region.id)) continue;
      // Uninitialized: its records (and vote) stay until a message opens it (`maybeCreatePeer`).
      if (state.region.peers.length === 0) continue;
      const peer = Peer.open(store.peerOptions(state.region.id), store.#random);
      store.#peers.set(peer.regionId, peer);
      if (peer.isMerging()) store.#merging.add(peer.regionId);
    }
    return store;
  }

  private peerOptions(regionId: bigint, peerId?: bigint) {
    return {
      engine: this.engine,
      storeId: this.storeId,
      regionId,
      peerId,
      config: this.#config,
      snapshots: this.#snapshots,
    };
  }

  /**
   * Creates this store's replica of a new region that knows its peers (bootstrap): its records
   * at TiKV's initial log position, written durably, and its peer.
   */
  async bootstrapRegion(region: RegionMeta): Promise<void> {
    assert(!this.#peers.has(region.id), `store ${this.storeId}: region ${region.id} exists`);
    assert(
      region.peers.some((p) => p.storeId === this.storeId),
      `store ${this.storeId}: region ${region.id} has no peer here`,
    );
    const batch = this.engine.newWriteBatch();
    writeInitialPeerState(batch, { state: PeerState.Normal, region });
    await this.engine.writeDurable(batch);
    batch.destroy();
    this.#peers.set(region.id, Peer.open(this.peerOptions(region.id), this.#random));
  }

  /**
   * Runs the replica of `regionId` recorded in the engine (a region handed to this store's
   * group by another): rebuilt from disk like at start. Returns false when the engine holds no
   * live, initialized replica of it.
   */
  openPeer(regionId: bigint): boolean {
    assert(!this.#inRound, `store ${this.storeId}: a peer is opened between rounds`);
    assert(!this.#peers.has(regionId), `store ${this.storeId}: region ${regionId} is open`);
    const state = readRegionState(this.engine, regionId);
    if (state === null || state.state === PeerState.Tombstone || state.region.peers.length === 0) {
      return false;
    }
    this.#peers.set(regionId, Peer.open(this.peerOptions(regionId), this.#random));
    return true;
  }

  /**
   * Stops running the replica of `regionId` here without touching its records (it moves to
   * another group, which opens it from disk): its waiting proposals and reads are answered
   * `StaleCommand`/`NotLeader`-like errors. Only between rounds.
   */
  closePeer(regionId: bigint): void {
    assert(!this.#inRound, `store ${this.storeId}: a peer is closed between rounds`);
    const peer = this.#peers.get(regionId);
    if (peer === undefined) return;
    const error: RegionError = { code: "RegionNotFound", regionId };
    peer.failAll({ proposals: error, reads: error });
    this.#peers.delete(regionId);
  }

  /**
   * Starts an election in every region whose only voter is on this store (a standalone store's
   * regions): it need not wait an election timeout to serve after a restart.
   */
  campaignLoneVoters(): void {
    for (const peer of this.#peers.values()) {
      const voters = peer.region().peers.filter((p) => p.role !== metapb.PeerRole.Learner);
      if (voters.length === 1 && voters[0]!.id === peer.meta.id && !peer.isLeader()) {
        this.#peers.wake(peer);
        peer.campaign();
      }
    }
  }

  /** Whether a round has work: inputs waiting, or an awake peer with a Ready. */
  hasWork(): boolean {
    if (this.#inbox.length > 0) return true;
    for (const peer of this.#peers.awake) {
      if (this.applyWaits(peer)) continue;
      if (peer.raw.hasReady()) return true;
    }
    return false;
  }

  /**
   * Whether `peer`'s apply waits for a merge source's replica that does not run here yet (its
   * Ready is not collected meanwhile); clears the wait once the replica runs here.
   */
  private applyWaits(peer: Peer): boolean {
    const source = peer.applyBlockedOn;
    if (source === undefined) return false;
    if (this.#peers.get(source)?.isInitialized() === true) {
      peer.unblockApply();
      return false;
    }
    return true;
  }

  /** Whether a round runs now. */
  get inRound(): boolean {
    return this.#inRound;
  }

  /** The replica of `regionId` here, if any. */
  peer(regionId: bigint): Peer | undefined {
    return this.#peers.get(regionId);
  }

  /** Every live replica here. */
  peers(): Peer[] {
    return [...this.#peers.values()];
  }

  // -------------------------------------------------------------------------------------------
  // Inputs.

  /** One tick for every awake peer; quiet ones go to sleep (hibernate.ts). */
  tick(): void {
    if (this.#stopped) return;
    this.#ticks++;
    this.#peers.tick();
    // Merges under way are pushed on every tick (a CommitMerge refused or lost is proposed
    // again, a merge whose target moved on is rolled back).
    for (const regionId of this.#merging) this.advanceMerge(regionId);
    for (const peer of this.#peers.awake) {
      if (this.applyWaits(peer)) this.#needRegion?.(peer.applyBlockedOn!);
    }
  }

  /** Hibernation counters, and how many peers are awake and asleep now. */
  hibernation(): HibernationStats & { awake: number; asleep: number } {
    return { ...this.#peers.stats, awake: this.#peers.awake.size, asleep: this.#peers.asleepCount };
  }

  /**
   * The peers that got an input, a Ready or joined, and the regions whose peer left, since the
   * last call: what a mirror of the peers' state needs to look at after a round.
   */
  takeTouched(): { peers: Peer[]; droppedRegionIds: bigint[] } {
    return this.#peers.takeTouched();
  }

  /** A Raft envelope from another store (the transport calls this). */
  receive(envelope: RaftEnvelope): void {
    if (this.#stopped || this.#inbox.length >= RAFTSTORE_MAX_INBOX) {
      this.stats.messagesDropped++;
      return;
    }
    this.#inbox.push({ kind: "message", envelope });
  }

  /**
   * Proposes `cmd` to region `regionId`; `cb` is called once, with the result. `encoded`: the
   * command's bytes from a caller that checked its write requests against the region at the
   * header's epoch (the write path, which encodes them at once so that it need not copy them).
   */
  propose(regionId: bigint, cmd: RaftCmd, cb: ProposalCallback, encoded?: Uint8Array): void {
    const refused = this.refuse(regionId);
    if (refused !== null) return cb({ ok: false, error: refused });
    this.#inbox.push({ kind: "propose", regionId, cmd, cb, encoded });
  }

  /** A linearizable read of region `regionId`; `cb` is called once. */
  read(regionId: bigint, cb: ReadCallback): void {
    const refused = this.refuse(regionId);
    if (refused !== null) return cb({ ok: false, error: refused });
    this.#inbox.push({ kind: "read", regionId, cb });
  }

  /** Asks region `regionId`'s leader here to hand leadership to `peerId`. */
  transferLeader(regionId: bigint, peerId: bigint): void {
    if (this.refuse(regionId) === null) {
      this.#inbox.push({ kind: "transferLeader", regionId, peerId });
    }
  }

  private refuse(regionId: bigint): RegionError | null {
    if (this.#stopped) return { code: "StoreStopped", regionId, storeId: this.storeId };
    if (this.#inbox.length >= RAFTSTORE_MAX_INBOX) {
      return { code: "ServerIsBusy", regionId, reason: `store ${this.storeId}'s inbox is full` };
    }
    return null;
  }

  /**
   * Stops the store: every waiting proposal is answered StoreStopped (outcome unknown), every
   * waiting read too; later inputs are refused.
   */
  stop(): void {
    this.#stopped = true;
    for (const peer of this.#peers.values()) {
      const error: RegionError = {
        code: "StoreStopped",
        regionId: peer.regionId,
        storeId: this.storeId,
      };
      peer.failAll({ proposals: error, reads: error });
    }
    // Held messages are dropped (a crash loses them too); what is written stays written.
    this.#syncs = [];
    const inbox = this.#inbox;
    this.#inbox = [];
    for (const item of inbox) {
      if (item.kind !== "propose" && item.kind !== "read") continue;
      item.cb({
        ok: false,
        error: { code: "StoreStopped", regionId: item.regionId, storeId: this.storeId },
      });
    }
  }

  // -------------------------------------------------------------------------------------------
  // The round.

  /** One round (module header). Returns true if any peer had a Ready. */
  async round(): Promise<boolean> {
    assert(!this.#inRound, `store ${this.storeId}: rounds overlap`);
    if (this.#stopped) return false;
    this.#inRound = true;
    try {
      this.#throwIfSyncFailed();
      this.#landSyncs();
      if (!this.#resumedInstalls) {
        this.#resumedInstalls = true;
        await this.finishInstalls(this.#peers.values());
      }
      // At most RAFTSTORE_SYNCS_IN_FLIGHT_MAX fsyncs under way: else the oldest ends first.
      while (this.#syncs.length >= RAFTSTORE_SYNCS_IN_FLIGHT_MAX) {
        await this.#syncs[0]!.done;
        this.#throwIfSyncFailed();
        this.#landSyncs();
      }
      await this.takeInbox();
      const readies = this.collectReadies();
      if (readies.length === 0) return false;
      this.#peers.inFlight = new Set(readies.map((r) => r.peer));
      this.stats.rounds++;
      // Duty 1, and duty 3 in the same atomic write unless a snapshot is installed (its files
      // are ingested between the two): see log_writer.ts.
      const installs = readies.some((r) => r.ready.snapshot !== undefined);
      // A leader's appends leave before its own log write (Raft thesis §10.2.1): the leader
      // counts an entry of its own only once it is durable here (a follower's answer is handled
      // in a later round, after this round's write), so replication overlaps the local fsync
      // instead of following it. Only appends, and only from a leader whose Ready changes no
      // term or vote: votes, their answers and anything else wait for the write, as Raft says.
      const early = this.sendAppendsEarly(readies);
      const written = await persistReadies(
        this.engine,
        readies,
        installs
          ? undefined
          : (batch) => readies.map(({ peer, ready }) => peer.apply(batch, ready, this.#neighbours)),
        this.#config.pipelineLog,
        // Not pipelined: what the round applied is answered while its fsync runs.
        (outcomes) =>
          readies.forEach(({ peer, ready }, i) => peer.answerDurable(ready, outcomes[i]!)),
      );
      if (this.#stopped) return true; // Stopped (a crash) while the write ran: nothing more.
      // The round's fsync starts now, after its write (log_writer.ts); until it ends, its
      // messages wait, and so do those of any later round (they may promise what it holds).
      const sync = written.mustSync ? this.#startSync() : this.#syncs.at(-1);
      if (written.mustSync || written.durable) this.stats.syncedWrites++;
      // An SST snapshot's step 1 (range cleared, Applying) is durable now: ingest its files.
      await this.finishInstalls(
        readies.filter((r) => r.ready.snapshot !== undefined).map((r) => r.peer),
      );
      // Duty 2 (held back while a sync is under way), and what this round made durable.
      for (const { peer, ready } of readies) {
        const persisted = this.#config.pipelineLog ? persistedBy(ready) : undefined;
        if (persisted !== undefined) {
          if (sync === undefined || written.durable) peer.raw.onPersisted(persisted);
          else sync.persisted.push({ peer, at: persisted });
        }
        for (const envelope of peer.envelopes(ready)) {
          if (early.has(envelope.message)) continue;
          if (sync === undefined) this.sendEnvelope(peer, envelope);
          else sync.messages.push({ peer, envelope });
        }
      }
      // Duty 3 (done already in the log's write, unless a snapshot was installed).
      const outcomes = written.applied ?? this.applyAll(readies);
      // Answers, duty 4, and removals.
      const removed: Peer[] = [];
      const merged: bigint[] = [];
      readies.forEach(({ peer, ready }, i) => {
        const outcome = outcomes[i]!;
        peer.finishReady(ready, outcome);
        this.tellRemoved(peer, outcome);
        if (outcome.removedSelf) removed.push(peer);
        if (outcome.splitRegions.length > 0) this.openSplitPeers(peer, outcome.splitRegions);
        merged.push(...outcome.mergedSources);
        if (outcome.blocked !== undefined) this.#needRegion?.(outcome.blocked.sourceRegionId);
        if (outcome.mergeStarted !== undefined) this.#merging.add(peer.regionId);
        if (outcome.mergeRolledBack === true) this.#merging.delete(peer.regionId);
      });
      // Sources a CommitMerge here merged: their records went in the batch; their peers go.
      for (const regionId of merged) this.dropMergedSource(regionId);
      for (const regionId of this.#merging) this.advanceMerge(regionId);
      if (removed.length > 0) await this.destroyPeers(removed);
      return true;
    } finally {
      this.#peers.inFlight = new Set();
      this.#inRound = false;
      if (!this.#stopped && this.#syncFailure === undefined) this.#landSyncs();
    }
  }

  /** Starts the fsync of everything written so far (module header, step 1). */
  #startSync(): PendingSync {
    const sync: PendingSync = {
      done: Promise.resolve(),
      ended: false,
      persisted: [],
      messages: [],
    };
    sync.done = this.engine.syncWal().then(() => {
      // An fsync covers every write before it: the ones started earlier are done too.
      const at = this.#syncs.indexOf(sync);
      for (let i = 0; i <= at; i++) this.#syncs[i]!.ended = true;
      if (this.#inRound || this.#stopped) return; // The round lands it when it ends.
      this.#landSyncs();
      this.syncListener?.();
    }, (error: unknown) => {
      this.#syncFailure ??= error ?? new Error("the write-ahead log's fsync failed");
      this.syncListener?.();
    });
    this.#syncs.push(sync);
    return sync;
  }

  /** The ended fsyncs, oldest first: their entries are durable, their messages may go. */
  #landSyncs(): void {
    while (this.#syncs[0]?.ended === true) {
      const sync = this.#syncs.shift()!;
      for (const { peer, at } of sync.persisted) {
        if (this.#peers.get(peer.regionId) === peer) peer.raw.onPersisted(at);
      }
      for (const { peer, envelope } of sync.messages) this.sendEnvelope(peer, envelope);
    }
  }

  #throwIfSyncFailed(): void {
    if (this.#syncFailure !== undefined) throw this.#syncFailure;
  }

  /** How many fsyncs are under way. */
  get syncsInFlight(): number {
    return this.#syncs.length;
  }

  /**
   * Waits until every write made so far is durable and what waited for it is done (between
   * rounds: before a peer's records are handed to another group, which reads them as durable).
   */
  async settleSyncs(): Promise<void> {
    assert(!this.#inRound, `store ${this.storeId}: syncs are settled between rounds`);
    const last = this.#syncs.at(-1);
    if (last !== undefined) await last.done;
    this.#throwIfSyncFailed();
    if (!this.#stopped) this.#landSyncs();
  }

  /** Sends one of a Ready's envelopes; a snapshot is reported sent (see `round`). */
  private sendEnvelope(peer: Peer, envelope: RaftEnvelope): void {
    this.#transport.send(envelope);
    // The snapshot left in one message: report it sent, so that the leader probes the follower
    // again and sends another if this one was lost (TiKV reports when a snapshot stream ends).
    if (envelope.message.msgType === MessageType.MsgSnapshot) {
      peer.raw.reportSnapshot(envelope.toPeer.id, SnapshotStatus.Finish);
    }
  }

  /** Sends the MsgAppends of leaders' Readies now (see `round`); answers the messages sent. */
  private sendAppendsEarly(readies: { peer: Peer; ready: Ready }[]): Set<Message> {
    const sent = new Set<Message>();
    for (const { peer, ready } of readies) {
      if (!peer.isLeader() || ready.snapshot !== undefined) continue;
      const durable = peer.storage.raftState().hardState;
      const hs = ready.hardState;
      if (hs !== undefined && (hs.term !== durable.term || hs.vote !== durable.vote)) continue;
      for (const envelope of peer.envelopes(ready, MessageType.MsgAppend)) {
        sent.add(envelope.message);
        this.#transport.send(envelope);
      }
    }
    return sent;
  }

  /**
   * The round's Readies: the peers the last round deferred first, then every awake peer, until
   * their entry bytes reach `roundMaxReadyBytes` (at least one Ready is taken); the peers with a
   * Ready left over are deferred to the next round, which `hasWork` then asks for.
   */
  private collectReadies(): { peer: Peer; ready: Ready }[] {
    const readies: { peer: Peer; ready: Ready }[] = [];
    const budget = this.#config.roundMaxReadyBytes;
    let bytes = 0;
    const deferred = this.#deferred;
    this.#deferred = [];
    const visited = deferred.length === 0 ? null : new Set<Peer>();
    const visit = (peer: Peer) => {
      if (visited !== null) {
        if (visited.has(peer)) return;
        visited.add(peer);
      }
      if (this.applyWaits(peer)) return;
      if (bytes >= budget && readies.length > 0) {
        if (peer.raw.hasReady()) this.#deferred.push(peer);
        return;
      }
      const ready = peer.takeReady();
      if (ready === undefined) return;
      readies.push({ peer, ready });
      this.#peers.noteReady(peer, ready);
      bytes += readyEntryBytes(ready);
    };
    for (const peer of deferred) {
      if (this.#peers.get(peer.regionId) === peer && this.#peers.awake.has(peer)) visit(peer);
    }
    for (const peer of this.#peers.awake) visit(peer);
    if (this.#deferred.length > 0) this.stats.roundsCut++;
    return readies;
  }

  private applyAll(readies: { peer: Peer; ready: Ready }[]): ApplyOutcome[] {
    const batch = this.engine.newWriteBatch();
    try {
      const outcomes = readies.map(({ peer, ready }) => peer.apply(batch, ready, this.#neighbours));
      if (batch.count > 0) this.engine.write(batch);
      return outcomes;
    } finally {
      batch.destroy();
    }
  }

  /** A leader that removed peers tells them (best effort; see the module header). */
  private tellRemoved(peer: Peer, outcome: ApplyOutcome): void {
    if (!peer.isLeader()) return;
    for (const gone of outcome.removedPeers) {
      const heartbeat = newMessage({
        msgType: MessageType.MsgHeartbeat,
        to: gone.id,
        from: peer.meta.id,
      });
      this.#transport.send(peer.envelope(gone, heartbeat, true));
    }
  }

  /**
   * Runs this store's replicas of the new regions a split of `parent` made (their records are
   * in the batch just written). An uninitialized replica of one, made by a message, gives way:
   * its records were replaced by the split's. The parent's leader's replicas campaign at once,
   * so that the new regions have leaders without an election timeout; the others wait for
   * theirs — a replica whose parent applied the split ahead of the parent's leader must not
   * start a rival election for keys the leader may still serve under its lease (TiKV does the
   * same).
   */
  private openSplitPeers(parent: Peer, regions: readonly RegionMeta[]): void {
    for (const region of regions) {
      const existing = this.#peers.get(region.id);
      if (existing !== undefined) {
        assert(!existing.isInitialized(), `region ${region.id}: split over an initialized replica`);
        existing.failAll({
          proposals: { code: "RegionNotFound", regionId: region.id },
          reads: { code: "RegionNotFound", regionId: region.id },
        });
        this.#peers.delete(region.id);
      }
      const peer = Peer.open({ ...this.peerOptions(region.id), newGroup: true }, this.#random);
      this.#peers.set(region.id, peer);
      this.stats.peersCreated++;
      if (parent.isLeader()) peer.campaign();
      // Vote requests that came before the split (see `maybeCreatePeer`).
      const waiting = this.#splitPending.filter((e) => e.regionId === region.id);
      if (waiting.length === 0) continue;
      this.#splitPending = this.#splitPending.filter((e) => e.regionId !== region.id);
      for (const envelope of waiting) {
        if (envelope.toPeer.id === peer.meta.id) peer.step(envelope);
      }
    }
  }

  /** Apply's view of the other replicas here (the source of a CommitMerge). */
  readonly #neighbours: ApplyNeighbours = {
    replicaOf: (regionId) => {
      const peer = this.#peers.get(regionId);
      return peer === undefined ? undefined : { storage: peer.storage, selfPeerId: peer.meta.id };
    },
  };

  /** Source regions here that are Merging (PrepareMerge applied), by id. */
  readonly #merging = new Set<bigint>();
  /** Merges whose CommitMerge this store proposed and awaits, by source region id. */
  readonly #commitsInFlight = new Set<bigint>();

  /**
   * Moves a merge on, from this store's side (TiKV's `on_check_merge`): if the target's replica
   * here leads, it proposes CommitMerge under the target's epoch the merge began with, carrying
   * the source's entries after the merge's min index; if this store's source replica leads and
   * the target here has moved on past the merge's target (`mergeCanNeverCommit`), the source
   * proposes RollbackMerge. A target here that is behind the merge's target waits: its group may
   * be committing the merge elsewhere.
   */
  private advanceMerge(regionId: bigint): void {
    const source = this.#peers.get(regionId);
    const merge = source?.mergeState();
    if (source === undefined || merge === undefined) {
      this.#merging.delete(regionId);
      return;
    }
    const target = this.#peers.get(merge.target.id);
    // The target's replica here may be gone: a Tombstone (removed, or merged into another
    // region) past the merge's target epoch can never take the source either (TiKV rolls back
    // then too); one not past it, or none at all, is waited for.
    const targetRegion = target?.isInitialized() === true
      ? target.region()
      : this.tombstoneOf(merge.target.id);
    if (targetRegion === undefined) return;
    const now = targetRegion.regionEpoch;
    const expected = merge.target.regionEpoch;
    if (now.version < expected.version || now.confVer < expected.confVer) return; // Behind.
    if (now.version !== expected.version || now.confVer !== expected.confVer) {
      if (!mergeCanNeverCommit(targetRegion, source.region())) return;
      if (source.isLeader() && !this.#commitsInFlight.has(regionId)) {
        this.#commitsInFlight.add(regionId);
        this.propose(regionId, rollbackMergeCommand(source, merge.commit), () => {
          this.#commitsInFlight.delete(regionId);
        });
      }
      return;
    }
    if (target === undefined || !target.isLeader() || this.#commitsInFlight.has(regionId)) return;
    let entries;
    try {
      entries = source.storage.entries({ lo: merge.minIndex + 1n, hi: merge.commit + 1n });
    } catch {
      return; // Compacted here: another store's target leader (or a rollback) ends it.
    }
    const through = { region: () => merge.target, meta: target.meta };
    const cmd = commitMergeCommand(through, {
      source: source.region(),
      commit: merge.commit,
      entries,
    });
    this.#commitsInFlight.add(regionId);
    this.propose(target.regionId, cmd, () => this.#commitsInFlight.delete(regionId));
  }

  /**
   * A GC message (a tombstone envelope with `region`'s epoch) to the sender of `envelope`; with
   * `mergeTarget` when `region` merged away (see `mergedSourceGone`).
   */
  private tellStale(envelope: RaftEnvelope, region: RegionMeta, mergeTarget?: RegionMeta): void {
    const self = region.peers.find((p) => p.storeId === this.storeId) ?? envelope.toPeer;
    this.#transport.send({
      ...(mergeTarget === undefined ? {} : { mergeTarget }),
      regionId: envelope.regionId,
      fromPeer: self,
      toPeer: envelope.fromPeer,
      regionEpoch: { ...region.regionEpoch },
      startKey: region.startKey,
      endKey: region.endKey,
      message: newMessage({
        msgType: MessageType.MsgHeartbeat,
        to: envelope.fromPeer.id,
        from: self.id,
      }),
      isTombstone: true,
    });
  }

  /**
   * Why a PrepareMerge may not be proposed against its target as this store holds it: the
   * target's replica here is missing or merging itself. A merging target refuses every proposal
   * but its own rollback, so it could never take this merge's CommitMerge, and once it merged
   * away nothing would end this one (sim --cluster seed 364). Null for other commands.
   */
  private mergeTargetProblem(cmd: RaftCmd): RegionError | null {
    const admin = cmd.adminRequest;
    if (admin?.cmdType !== raft_cmdpb.AdminCmdType.PrepareMerge) return null;
    const targetId = admin.prepareMerge?.target?.id ?? 0n;
    const target = this.#peers.get(targetId);
    const regionId = cmd.header?.regionId ?? 0n;
    if (target === undefined || !target.isInitialized()) {
      return {
        code: "InvalidCommand",
        regionId,
        reason: `the merge's target region ${targetId} has no replica on store ${this.storeId}`,
      };
    }
    if (target.isMerging()) {
      return { code: "ServerIsBusy", regionId, reason: `target region ${targetId} is merging` };
    }
    return null;
  }

  /** The region a Tombstone of this store records for `regionId`, if it is one. */
  private tombstoneOf(regionId: bigint): RegionMeta | undefined {
    return this.tombstoneStateOf(regionId)?.region;
  }

  /** The Tombstone this store records for `regionId` (its merge state if it merged away). */
  private tombstoneStateOf(regionId: bigint): RegionLocalState | undefined {
    const state = readRegionState(this.engine, regionId);
    return state?.state === PeerState.Tombstone ? state : undefined;
  }

  /**
   * Whether a source replica here that a merge into `mergeTarget` left behind may go (TiKV's
   * `need_gc_merge`): only when no replica of the target here can still apply the CommitMerge,
   * which catches the source replica up from its own log. That is so when this store's replica
   * of the target is past the merge's target version (it applied the CommitMerge, or took a
   * snapshot from after it), or is a Tombstone past it, or a Tombstone of the very replica the
   * merge counted on here or a later one (destroyed before it applied the CommitMerge; a new
   * replica of the target here is added after the merge, and its snapshot comes from after
   * it). A target replica here at the merge's version, or none yet, makes the source stay.
   */
  private mergedSourceGone(mergeTarget: RegionMeta): boolean {
    const past = (region: RegionMeta) =>
      region.regionEpoch.version > mergeTarget.regionEpoch.version;
    const target = this.#peers.get(mergeTarget.id);
    if (target?.isInitialized() === true) return past(target.region());
    const tombstone = this.tombstoneOf(mergeTarget.id);
    if (tombstone === undefined) return false;
    const mine = (region: RegionMeta) => region.peers.find((p) => p.storeId === this.storeId);
    const counted = mine(mergeTarget);
    const destroyed = mine(tombstone);
    return past(tombstone) ||
      (counted !== undefined && destroyed !== undefined && destroyed.id >= counted.id);
  }

  /**
   * Destroys a source replica a merge left behind (`mergedSourceGone`). Its keys are the
   * target's now: if a replica here holds some of them (the target, grown by a snapshot over
   * the source's range), the data stays.
   */
  private async destroyMergedSource(peer: Peer): Promise<void> {
    this.forgetReplica(peer.regionId);
    const region = peer.region();
    const shared = [...this.#peers.values()].some((other) =>
      other !== peer && other.isInitialized() &&
      rangesOverlap(other.region(), region)
    );
    const batch = this.engine.newWriteBatch();
    peer.destroy(batch, { keepData: shared });
    this.#peers.delete(peer.regionId);
    this.#merging.delete(peer.regionId);
    this.stats.peersDestroyed++;
    await this.engine.writeDurable(batch);
    batch.destroy();
  }

  /**
   * Destroys the sources a merge into `envelope`'s region left behind here (`#mergedInto`) when
   * this store has no replica of that region and the message comes from past the merge (a higher
   * version than the merge's target): the replica it makes here takes a snapshot holding their
   * keys, and while they stay, their ranges keep it from being made, and with it every region
   * split from it since (TiKV's `maybe_destroy_source`; sim --cluster seed 712).
   */
  private async destroySourcesMergedInto(envelope: RaftEnvelope): Promise<void> {
    for (const [sourceId, target] of this.#mergedInto) {
      if (target.id !== envelope.regionId) continue;
      if (envelope.regionEpoch.version <= target.regionEpoch.version) continue;
      const source = this.#peers.get(sourceId);
      if (source?.isInitialized() === true) await this.destroyMergedSource(source);
      else this.forgetReplica(sourceId);
    }
  }

  /** Drops what the store kept about its replica of `regionId`, which goes. */
  private forgetReplica(regionId: bigint): void {
    this.#mergedInto.delete(regionId);
    this.#staleChecks.delete(regionId);
  }

  /** A source region merged here (its records are Tombstone in the batch just written). */
  private dropMergedSource(regionId: bigint): void {
    this.#merging.delete(regionId);
    this.forgetReplica(regionId);
    const peer = this.#peers.get(regionId);
    if (peer === undefined) return;
    peer.failAll({
      proposals: { code: "RegionNotFound", regionId },
      reads: { code: "RegionNotFound", regionId },
    });
    this.#peers.delete(regionId);
    this.stats.peersDestroyed++;
  }

  /**
   * Whether an initialized replica here holds keys of [startKey, endKey): a message for a region
   * this store does not host, whose range overlaps one it does, is for a region that a split of
   * the local one will make here (or that a stale local replica still covers) — never a reason
   * to create a replica (TiKV's overlap check).
   */
  private overlapsLocalRegion(startKey: Uint8Array, endKey: Uint8Array): boolean {
    for (const peer of this.#peers.values()) {
      if (peer.isInitialized() && rangesOverlap(peer.region(), { startKey, endKey })) return true;
    }
    return false;
  }

  private async destroyPeers(peers: Peer[]): Promise<void> {
    const batch = this.engine.newWriteBatch();
    for (const peer of peers) {
      this.forgetReplica(peer.regionId);
      peer.destroy(batch);
      this.#peers.delete(peer.regionId);
      this.stats.peersDestroyed++;
    }
    await this.engine.writeDurable(batch);
    batch.destroy();
  }

  private async takeInbox(): Promise<void> {
    const inbox = this.#inbox;
    this.#inbox = [];
    // Peers that took writes: each hands them to Raft as one batch once the inbox is taken.
    const proposed = new Set<Peer>();
    for (const item of inbox) {
      if (item.kind === "message") {
        await this.route(item.envelope);
        continue;
      }
      const peer = this.#peers.get(item.regionId);
      if (peer !== undefined) this.#peers.wake(peer);
      if (item.kind === "transferLeader") {
        peer?.transferLeader(item.peerId);
      } else if (peer === undefined) {
        item.cb({ ok: false, error: { code: "RegionNotFound", regionId: item.regionId } });
      } else if (item.kind === "propose") {
        const busy = this.mergeTargetProblem(item.cmd);
        if (busy !== null) item.cb({ ok: false, error: busy });
        else {
          peer.propose(item.cmd, item.cb, item.encoded);
          proposed.add(peer);
        }
      } else {
        peer.read(item.cb);
      }
    }
    for (const peer of proposed) peer.flushProposals();
  }

  /** Routes one envelope to its peer (module header's message checks). */
  private async route(envelope: RaftEnvelope): Promise<void> {
    const { regionId, toPeer } = envelope;
    if (toPeer.storeId !== this.storeId) return this.drop();
    if (envelope.checkStale === true) return this.answerStaleCheck(envelope);
    let peer = this.#peers.get(regionId);
    if (peer !== undefined && toPeer.id !== peer.meta.id) {
      if (toPeer.id < peer.meta.id || envelope.isTombstone) return this.drop();
      // The local replica was removed and the region re-added here under a newer peer id.
      await this.destroyPeers([peer]);
      peer = undefined;
    }
    if (peer === undefined) {
      await this.destroySourcesMergedInto(envelope);
      peer = this.maybeCreatePeer(envelope);
      if (peer === undefined) return this.drop();
    }
    const local = peer.region();
    if (envelope.isTombstone && envelope.mergeTarget !== undefined && peer.isInitialized()) {
      // The sender's replica merged away: this one goes only once the target here is past the
      // merge (sim --cluster seed 207).
      if (this.mergedSourceGone(envelope.mergeTarget)) await this.destroyMergedSource(peer);
      else this.#mergedInto.set(peer.regionId, envelope.mergeTarget);
      return;
    }
    if (envelope.isTombstone) {
      const newer = envelope.regionEpoch.confVer > local.regionEpoch.confVer;
      if (newer || !peer.isInitialized()) await this.destroyPeers([peer]);
      return;
    }
    const t = envelope.message.msgType;
    const isVote = t === MessageType.MsgRequestVote || t === MessageType.MsgRequestPreVote;
    // Only a campaign is answered so: a response may come from a replica this peer's leader
    // just added (its epoch is older until it gets a snapshot), and must not destroy it.
    if (isVote && this.removedFrom(peer, envelope)) {
      // From a removed replica: tell it to go.
      this.sendGc(peer, envelope.fromPeer);
      return;
    }
    if (peer.asleep && peer.isLeader() && isAcknowledgement(envelope)) {
      // A late answer to a heartbeat or append sent before the leader slept: stepped, it
      // changes nothing but the follower's progress, unless the follower needs more (a Ready).
      // Waking the leader for it would let its next tick heartbeat every follower, waking them
      // and their answers waking it again (hibernate.ts, 3).
      peer.step(envelope);
      if (peer.raw.hasReady()) this.#peers.wake(peer, false);
      return;
    }
    this.#peers.wake(peer, !isAcknowledgement(envelope));
    peer.step(envelope);
  }

  private drop(): void {
    this.stats.messagesDropped++;
  }

  /** Whether `envelope` comes from a replica that `peer`'s region shows was removed. */
  private removedFrom(peer: Peer, envelope: RaftEnvelope): boolean {
    const local = peer.region();
    return peer.isInitialized() && !local.peers.some((p) => p.id === envelope.fromPeer.id) &&
      envelope.regionEpoch.confVer < local.regionEpoch.confVer;
  }

  /** A GC message (a tombstone envelope with `peer`'s epoch) from `peer` to `to`. */
  private sendGc(peer: Peer, to: PeerMeta): void {
    const gc = newMessage({ msgType: MessageType.MsgHeartbeat, to: to.id, from: peer.meta.id });
    this.#transport.send(peer.envelope(to, gc, true));
  }

  /**
   * A replica elsewhere asks whether it was removed (`checkStaleOverlaps`): answered with a GC
   * message if this store's replica of the region, or its Tombstone, shows it was; else nothing.
   * Never creates a replica, never reaches Raft.
   */
  private answerStaleCheck(envelope: RaftEnvelope): void {
    const peer = this.#peers.get(envelope.regionId);
    if (peer !== undefined) {
      if (this.removedFrom(peer, envelope)) this.sendGc(peer, envelope.fromPeer);
      return;
    }
    this.answeredFromTombstone(envelope);
  }

  /**
   * Answers a campaign or a stale check of a replica this store's Tombstone of the region shows
   * is gone (TiKV answers from the tombstone state the same way); true if it did.
   */
  private answeredFromTombstone(envelope: RaftEnvelope): boolean {
    const tombstone = this.tombstoneStateOf(envelope.regionId);
    const gone = tombstone?.region;
    if (gone === undefined) return false;
    const member = gone.peers.some((p) => p.storeId === envelope.fromPeer.storeId);
    if (member && tombstone?.mergeState !== undefined) {
      // A replica of a region that merged away here: one left behind by the merge (Merging for
      // ever, its target here a newer replica made by a snapshot; or one that never applied the
      // PrepareMerge), which would campaign for ever and keep its keys from the region that
      // took them. It is told where the range went, and goes once its store's replica of the
      // target is past the merge (TiKV answers a member of a merged region's Tombstone with its
      // merge_target whatever the epochs; sim --cluster seed 207).
      this.tellStale(envelope, gone, tombstone.mergeState.target);
      return true;
    }
    // A replica this store's Tombstone shows was removed (its store is not among the region's
    // peers as last seen here, and its epoch is older): told to go, or it would campaign for
    // ever, and its range would keep a new replica of the keys from being made on its store. A
    // replica whose store the region still lists may be a lagging member and is left alone.
    if (!member && epochIsStale(envelope.regionEpoch, gone.regionEpoch)) {
      this.tellStale(envelope, gone);
      return true;
    }
    return false;
  }

  /**
   * A leader's message for a region this store cannot make a replica of, because initialized
   * replicas here hold keys of its range: those that are older than it (a lower version) ask
   * their region's other stores whether they were removed (TiKV's MsgCheckStalePeer, sent on
   * RegionOverlapped), at most once per RAFTSTORE_STALE_CHECK_INTERVAL_TICKS each. Most often
   * the overlap is a parent that has not applied a split yet, and nobody answers; but a replica
   * removed while its store was down (a learner never campaigns, and the leader's one GC message
   * was lost) would otherwise keep its range, and keep every new replica of those keys from
   * being made on this store, for good (sim --cluster --pd real --pd-members 3 seed 729).
   */
  private checkStaleOverlaps(envelope: RaftEnvelope): void {
    for (const peer of this.#peers.values()) {
      if (!peer.isInitialized() || peer.isLeader()) continue;
      const region = peer.region();
      if (!rangesOverlap(region, envelope)) continue;
      if (region.regionEpoch.version >= envelope.regionEpoch.version) continue;
      const last = this.#staleChecks.get(peer.regionId);
      if (last !== undefined && this.#ticks - last < RAFTSTORE_STALE_CHECK_INTERVAL_TICKS) continue;
      this.#staleChecks.set(peer.regionId, this.#ticks);
      for (const other of region.peers) {
        if (other.storeId === this.storeId) continue;
        const check = newMessage({
          msgType: MessageType.MsgHeartbeat,
          to: other.id,
          from: peer.meta.id,
        });
        this.#transport.send({ ...peer.envelope(other, check, false), checkStale: true });
      }
    }
  }

  /**
   * An uninitialized replica for a message from a leader or a candidate, when allowed (module
   * header).
   */
  private maybeCreatePeer(envelope: RaftEnvelope): Peer | undefined {
    const t = envelope.message.msgType;
    if (envelope.isTombstone) return undefined;
    const isVote = t === MessageType.MsgRequestVote || t === MessageType.MsgRequestPreVote;
    const fromLeader = t === MessageType.MsgAppend || t === MessageType.MsgHeartbeat ||
      t === MessageType.MsgSnapshot;
    if (isVote && this.answeredFromTombstone(envelope)) return undefined;
    if (this.overlapsLocalRegion(envelope.startKey, envelope.endKey)) {
      // Most likely the new region of a split not applied here yet, whose leader-to-be
      // campaigns at once: its vote requests wait for the split (`openSplitPeers`), so that the
      // region need not wait an election timeout for its first leader. A leader's message asks
      // the older replicas in the way whether they are stale.
      if (isVote) {
        if (this.#splitPending.length >= RAFTSTORE_SPLIT_PENDING_MAX) this.#splitPending.shift();
        this.#splitPending.push(envelope);
      } else if (fromLeader) {
        this.checkStaleOverlaps(envelope);
      }
      return undefined;
    }
    if (!fromLeader && !isVote) return undefined;
    const existing = readRegionState(this.engine, envelope.regionId);
    // Besides a Tombstone, the engine may hold an uninitialized replica's records that no peer
    // runs (after a restart, or a worker's replacement: see `start`). It is opened again with
    // its raft state, so that it keeps the vote it cast (module header); its region state is
    // written anew below, at the epoch it carried.
    if (existing !== null) {
      assert(
        existing.state === PeerState.Tombstone || existing.region.peers.length === 0,
        `region ${envelope.regionId}: an initialized replica's records without its peer`,
      );
      // A leftover carries the epoch of the Tombstone it replaced (or 0), which the message
      // that made it was newer than: the same check refuses only what that Tombstone refused.
      if (envelope.regionEpoch.confVer <= existing.region.regionEpoch.confVer) return undefined;
      // A message to the removed replica itself, or to an older one of this store, is stale even
      // when its epoch is newer than the Tombstone's: a replica removed before it applied its
      // own addition records the epoch before it (TiKV drops these the same way). Recreated, it
      // would take the leader's commit index of the replica that was (sim --cluster seed 52),
      // or, uninitialized, vote again in a term it voted in.
      const removed = existing.region.peers.find((p) => p.storeId === this.storeId);
      if (removed !== undefined && envelope.toPeer.id <= removed.id) return undefined;
    }
    const batch = this.engine.newWriteBatch();
    writeRegionState(batch, {
      state: PeerState.Normal,
      region: {
        id: envelope.regionId,
        startKey: envelope.startKey,
        endKey: envelope.endKey,
        // A Tombstone's epoch is kept (see `start`); a region never seen here starts at 0.
        regionEpoch: existing?.region.regionEpoch ?? { confVer: 0n, version: 0n },
        peers: [],
      },
    });
    this.engine.write(batch);
    batch.destroy();
    const peer = Peer.open(this.peerOptions(envelope.regionId, envelope.toPeer.id), this.#random);
    this.#peers.set(peer.regionId, peer);
    this.stats.peersCreated++;
    return peer;
  }
}

/**
 * Whether a merge can never commit, judged by the target's replica on the source leader's store
 * (`target`, whose epoch is past the merge's target): RollbackMerge is safe only then (TiKV
 * rolls back only when the target's epoch is newer than the merge's, never when it is older).
 * The target's group applies every CommitMerge of the merge under the merge's target epoch, so
 * an entry that moved the target past that epoch and was applied here before any CommitMerge
 * makes every CommitMerge after it fail the epoch check on every replica; a CommitMerge before
 * it would have merged the source here first (its replica would be gone). The one other way
 * past the epoch is a snapshot of the target taken after the merge: that target holds the
 * source's keys, and the merge committed — never roll back then. Not caught: a snapshot taken
 * after the merge and a later split that gave the source's keys to another region (TiKV also
 * waits until a majority of the source's replicas want the rollback; not done here yet).
 */
function mergeCanNeverCommit(target: RegionMeta, source: RegionMeta): boolean {
  const startsBeforeEnd = target.endKey.length === 0 ||
    compareBytes(source.startKey, target.endKey) < 0;
  const endsAfterStart = source.endKey.length === 0 ||
    compareBytes(target.startKey, source.endKey) < 0;
  return !(startsBeforeEnd && endsAfterStart);
}

/** Whether two key ranges [startKey, endKey) share a key (an empty end is +infinity). */
function rangesOverlap(
  a: { startKey: Uint8Array; endKey: Uint8Array },
  b: { startKey: Uint8Array; endKey: Uint8Array },
): boolean {
  const aStartsBeforeBEnds = b.endKey.length === 0 || compareBytes(a.startKey, b.endKey) < 0;
  const bStartsBeforeAEnds = a.endKey.length === 0 || compareBytes(b.startKey, a.endKey) < 0;
  return aStartsBeforeBEnds && bStartsBeforeAEnds;
}

/** The data bytes of a Ready's entries: those to persist and those to apply. */
function readyEntryBytes(ready: Ready): number {
  let bytes = 0;
  for (const e of ready.entries) bytes += e.data.length;
  for (const e of ready.committedEntries) bytes += e.data.length;
  return bytes;
}

/** Whether epoch `a` is older than `b` in version or conf_ver (TiKV's `is_epoch_stale`). */
function epochIsStale(
  a: { version: bigint; confVer: bigint },
  b: { version: bigint; confVer: bigint },
): boolean {
  return a.version < b.version || a.confVer < b.confVer;
}

/** The last entry a Ready persists (or its snapshot, without entries), if any. */
function persistedBy(ready: Ready): { index: bigint; term: bigint } | undefined {
  const last = ready.entries[ready.entries.length - 1];
  if (last !== undefined) return { index: last.index, term: last.term };
  const snapshot = ready.snapshot?.metadata;
  return snapshot === undefined ? undefined : { index: snapshot.index, term: snapshot.term };
}
