/**
 * A peer: one replica of one region on this store — a `RawNode` over its `PeerStorage`, the
 * region's metadata and epoch, the proposals and reads waiting for an answer, and the admin
 * operations a leader starts (log compaction, membership change, leadership transfer).
 *
 * The store (`store.ts`) drives it in rounds and owns the WriteBatches; a peer never writes the
 * engine and never reads a clock: time is `tick()`.
 *
 * Invariants:
 * - A proposal is answered exactly once: at apply of its entry (the command's result, or
 *   EpochNotMatch if the epoch changed first); StaleCommand when the entry at its index turns
 *   out to be another (overwritten by a new leader) or the peer is destroyed first; StoreStopped
 *   when the store stops.
 * - Reads (issue #10 item 4) never return data older than a write acknowledged before the read
 *   began. A write is acknowledged when the leader applied it. A lease read is served at once
 *   only when `raft.leaseValid()` (a quorum acknowledged a recent heartbeat, an entry of this
 *   term is committed, no transfer under way) and this peer has applied everything committed;
 *   otherwise the read goes through ReadIndex and waits until the applied index reaches the
 *   read index. A follower answers NotLeader with the leader it knows.
 * - Membership (single step, src/raft/README.md): a ChangePeer is proposed only under the applied
 *   epoch and only when every earlier conf change is applied (`pendingConfIndex`), so it always
 *   applies (apply.ts asserts it). The leader never removes itself: transfer leadership first.
 * - Log compaction stays at or below the slowest tracked peer's match index, so a peer that is
 *   merely behind can still be sent entries, except for a peer more than half the count limit
 *   behind (its store down): the log stays bounded by the limit, and that peer, like a replica
 *   with no log at all (a new one), needs a snapshot.
 * - A peer becomes a voter only once it holds the log up to the truncated index, i.e. it is not
 *   waiting for a snapshot (`unsafeVoterProblem`); until then its ChangePeer is held.
 *
 * @module
 */

import { metapb, raft_cmdpb } from "../../proto/mod.ts";
import { RAFT_WRITE_MERGE_MAX_BYTES } from "../constants.ts";
import type { KvEngine, Snapshot as EngineSnapshot, WriteBatch } from "../engine/types.ts";
import {
  assert,
  ConfChangeType,
  decodeConfChange,
  type Entry,
  EntryType,
  type Message,
  MessageType,
  newEntry,
  NONE,
  ProgressState,
  type RandomSource,
  RawNode,
  ReadOnlyOption,
  type Ready,
  StateRole,
} from "../raft/mod.ts";
import {
  type AppliedEntry,
  applyEntries,
  type ApplyNeighbours,
  type ApplyOutcome,
  type CmdResult,
  splitSpecsOf,
} from "./apply.ts";
import {
  adjacent,
  checkEpoch,
  checkWriteRequests,
  commandHeader,
  decodeCommand,
  encodeCommand,
  type RaftCmd,
  regionsAfterSplit,
  sameStores,
} from "./command.ts";
import { mergeWriteCommands, sameWriteHeader } from "./cmd_codec.ts";
import type { RegionError } from "./errors.ts";
import {
  type MergeState,
  type PeerMeta,
  PeerState,
  regionFromProto,
  type RegionMeta,
} from "./local_state.ts";
import type { PeerConfig } from "./peer_config.ts";
import { followerQuietTicks, leaderQuietTicks } from "./hibernate.ts";
import { deleteRaftRecords, PeerStorage } from "./peer_storage.ts";
import type { SnapshotManager } from "./snapshot/sst_snapshot.ts";
import { clearRegionData } from "./snapshot.ts";
import type { RaftEnvelope } from "./transport.ts";

/** Called once with a command's result. */
export type ProposalCallback = (result: CmdResult) => void;

/** What a read is handed: an engine snapshot at or after the read's linearization point. */
export type ReadResult =
  | {
    ok: true;
    /** The caller reads from it and releases it. */
    snapshot: EngineSnapshot;
    region: RegionMeta;
    /** The applied index the snapshot reflects. */
    appliedIndex: bigint;
    /** True for a lease read, false for a ReadIndex read. */
    viaLease: boolean;
  }
  | { ok: false; error: RegionError };

/** Called once with a read's permission or error. */
export type ReadCallback = (result: ReadResult) => void;

interface Proposal {
  index: bigint;
  term: bigint;
  cb: ProposalCallback;
}

interface PendingRead {
  /** Set when the ReadIndex answer arrived. */
  readIndex: bigint | undefined;
  askedAtTick: number;
  cb: ReadCallback;
}

/** One replica of one region. */
export class Peer {
  readonly regionId: bigint;
  readonly meta: PeerMeta;
  readonly storage: PeerStorage;
  readonly raw: RawNode;
  readonly #engine: KvEngine;
  readonly #config: PeerConfig;
  readonly #peerCache = new Map<bigint, PeerMeta>();
  #proposals: Proposal[] = [];
  /**
   * Plain writes proposed since the last flush: handed to Raft as one batch (one MsgPropose,
   * one append) by `flushProposals`, before anything else reaches Raft.
   */
  #batched: { data: Uint8Array; cb: ProposalCallback }[] = [];
  readonly #reads = new Map<string, PendingRead>();
  #readSeq = 0;
  #ticks = 0;
  /** Index of the last conf change this leader may not yet have applied. */
  #pendingConfIndex = 0n;
  /**
   * Index of the last entry this leader proposed that may change the region (a conf change,
   * a split, a merge step): lease reads wait for its apply (`leaseReadable`).
   */
  #regionChangeIndex = 0n;
  /** Term of the entry at the applied index. */
  #appliedTerm: bigint;
  /** The compact index of the CompactLog in flight, or 0. */
  #compactInFlight = 0n;
  /** A ChangePeer making a peer a voter, held until that peer has caught up (one at a time). */
  #waitingVoter: { cmd: RaftCmd; cb: ProposalCallback; peer: PeerMeta; untilTick: number } | null =
    null;
  /** Data bytes appended since the log's first index was `#logSizeSince` (an estimate). */
  #logSizeBytes = 0;
  #logSizeSince = 0n;
  #destroyed = false;
  // Hibernation (hibernate.ts): whether the store stopped ticking this peer, and what decides it.
  #asleep = false;
  #quietTicks = 0;
  #quietSinceTick = 0;
  #quietLastIndex = -1n;
  #heardLeaderSinceWake = false;
  #probedSinceWake = false;
  #leaderStoreId: bigint | undefined = undefined;
  /** The lease counts only heartbeats sent after this Raft tick (the peer slept then), or -1. */
  #leaseFloorTick = -1;

  private constructor(
    opts: {
      engine: KvEngine;
      storage: PeerStorage;
      meta: PeerMeta;
      config: PeerConfig;
      newGroup?: boolean;
    },
    random: RandomSource,
  ) {
    this.#engine = opts.engine;
    this.storage = opts.storage;
    this.regionId = opts.storage.regionId;
    this.meta = opts.meta;
    this.#config = opts.config;
    this.raw = new RawNode({
      id: opts.meta.id,
      storage: opts.storage,
      electionTimeoutTicks: opts.config.electionTimeoutTicks,
      heartbeatIntervalTicks: opts.config.heartbeatIntervalTicks,
      random,
      applied: opts.storage.appliedIndex(),
      checkQuorum: true,
      preVote: true,
      newGroup: opts.newGroup,
      // ReadIndex confirms leadership with a heartbeat round; lease reads are the peer's own
      // decision (`raft.leaseValid()`), taken before asking for a ReadIndex.
      readOnlyOption: ReadOnlyOption.Safe,
      // With a pipelined log the store writes a round's entries, advances, and reports them
      // durable when the round's fsync ends (store.ts): apply never runs ahead of this
      // replica's own durable log.
      asyncPersist: opts.config.pipelineLog,
      // An answer that moves the commit index sends no append of its own: the followers learn
      // it from the next append or heartbeat (TiKV's skip_bcast_commit), except while the
      // region merges (`step`). Hibernation waits for heartbeats that carry it (hibernate.ts).
      skipBcastCommit: true,
      testingBugs: opts.config.testingBugs?.raft,
    });
    this.#appliedTerm = opts.storage.term(opts.storage.appliedIndex());
    this.refreshPeerCache();
  }

  /**
   * Opens the replica of `regionId` on store `storeId` from the engine. An initialized replica
   * finds its own peer in the region; an uninitialized one (created by a message, no peers
   * known yet) is told its id.
   */
  static open(
    opts: {
      engine: KvEngine;
      storeId: bigint;
      regionId: bigint;
      peerId?: bigint;
      config: PeerConfig;
      /** Where SST snapshots are made and installed from; inline snapshots when absent. */
      snapshots?: SnapshotManager;
      /** A region a split just made here: no leader of it was heard (src/raft's `newGroup`). */
      newGroup?: boolean;
    },
    random: RandomSource,
  ): Peer {
    const storage = PeerStorage.load(opts.engine, opts.regionId, {
      snapshotMaxBytes: opts.config.snapshotMaxBytes,
      snapshots: opts.snapshots,
    });
    const region = storage.regionState().region;
    const own = region.peers.find((p) => p.storeId === opts.storeId);
    const meta = own ?? {
      id: opts.peerId ?? 0n,
      storeId: opts.storeId,
      role: metapb.PeerRole.Learner,
    };
    assert(meta.id !== 0n, `region ${opts.regionId}: no peer on store ${opts.storeId}`);
    assert(
      opts.peerId === undefined || opts.peerId === meta.id,
      `region ${opts.regionId}: store ${opts.storeId} holds peer ${meta.id}, not ${opts.peerId}`,
    );
    return new Peer(
      { engine: opts.engine, storage, meta, config: opts.config, newGroup: opts.newGroup },
      random,
    );
  }

  // -------------------------------------------------------------------------------------------
  // What the peer knows.

  /** The region as applied. */
  region(): RegionMeta {
    return this.storage.regionState().region;
  }

  /** True once the replica knows its region's peers (bootstrap, or a snapshot installed). */
  isInitialized(): boolean {
    return this.region().peers.length > 0;
  }

  /** True if this replica is the leader of its term. */
  isLeader(): boolean {
    return this.raw.raft.state === StateRole.Leader;
  }

  /** The leader this replica knows, if any. */
  leader(): PeerMeta | undefined {
    const lead = this.raw.raft.lead;
    return lead === NONE ? undefined : this.#peerCache.get(lead);
  }

  /**
   * Leader: the region's other peers that cannot yet be sent entries — they match below the
   * log's first index (a new replica, or one behind the compacted log) and need a snapshot
   * (TiKV's pending peers, which PD waits on before it promotes a learner). Empty elsewhere.
   */
  pendingPeers(): PeerMeta[] {
    if (!this.isLeader()) return [];
    const truncated = this.storage.firstIndex() - 1n;
    return this.region().peers.filter((p) => {
      if (p.id === this.meta.id) return false;
      const progress = this.raw.raft.tracker.progress.get(p.id);
      return progress === undefined || progress.match < truncated;
    });
  }

  /** The applied index. */
  appliedIndex(): bigint {
    return this.storage.appliedIndex();
  }

  /** Proposals and reads waiting, for tests and metrics. */
  pendingCounts(): { proposals: number; reads: number } {
    return { proposals: this.#proposals.length, reads: this.#reads.size };
  }

  /** True once destroyed (removed from the region). */
  get destroyed(): boolean {
    return this.#destroyed;
  }

  private notLeader(): RegionError {
    return { code: "NotLeader", regionId: this.regionId, leader: this.leader() };
  }

  private refreshPeerCache(): void {
    for (const p of this.region().peers) this.#peerCache.set(p.id, p);
    this.#peerCache.set(this.meta.id, this.meta);
  }

  // -------------------------------------------------------------------------------------------
  // Inputs: ticks, messages, proposals, reads.

  /** One tick of the logical clock: Raft's timers, read expiry, the log-compaction check. */
  tick(): void {
    this.flushProposals();
    this.raw.tick();
    this.#ticks++;
    for (const [ctx, read] of this.#reads) {
      if (read.readIndex !== undefined) continue;
      if (this.#ticks - read.askedAtTick < this.#config.readIndexTimeoutTicks) continue;
      this.#reads.delete(ctx);
      read.cb({
        ok: false,
        error: {
          code: "ReadIndexTimeout",
          regionId: this.regionId,
          ticks: this.#ticks - read.askedAtTick,
        },
      });
    }
    if (this.#ticks % this.#config.raftLogGcCheckTicks === 0) this.maybeCompactLog();
    this.retryWaitingVoter();
  }

  // -------------------------------------------------------------------------------------------
  // Hibernation: the protocol and its safety argument are in hibernate.ts's header.

  /** True while the store does not tick this peer. */
  get asleep(): boolean {
    return this.#asleep;
  }

  /** The store of the leader this peer last followed (what the store's leader check probes). */
  lastLeaderStoreId(): bigint | undefined {
    return this.#leaderStoreId;
  }

  /**
   * An input reached the peer. `resetsQuiet`: false for a follower's acknowledgement, which
   * does not keep a leader awake. Returns true if the peer was asleep; a follower that wakes
   * gets a fresh election timer (time asleep counts for nothing) and must hear from its leader
   * again before it sleeps (`quietAfterTick` asks the leader to speak).
   */
  wake(resetsQuiet: boolean): boolean {
    const wasAsleep = this.#asleep;
    this.#asleep = false;
    if (resetsQuiet || !this.isLeader()) this.#quietTicks = 0;
    if (!wasAsleep) return false;
    this.#heardLeaderSinceWake = false;
    this.#probedSinceWake = false;
    const raft = this.raw.raft;
    if (raft.state === StateRole.Follower) raft.becomeFollower(raft.term, raft.lead);
    return true;
  }

  /**
   * After a tick: true once the peer has been quiet long enough to sleep. A woken follower that
   * has not heard from its leader asks it for a ReadIndex once, which wakes the leader, whose
   * answer is a heartbeat round.
   */
  quietAfterTick(): boolean {
    if (!this.#config.hibernateRegions || this.#destroyed || !this.isInitialized()) return false;
    const raft = this.raw.raft;
    const leader = this.leader();
    if (raft.state === StateRole.Follower && leader !== undefined) {
      this.#leaderStoreId = leader.storeId;
      if (!this.#heardLeaderSinceWake && !this.#probedSinceWake) {
        this.#probedSinceWake = true;
        this.raw.readIndex(new TextEncoder().encode(`wake:${this.meta.id}:${++this.#readSeq}`));
      }
    }
    const leading = this.isLeader();
    if (!(leading ? this.leaderQuiet() : this.followerQuiet())) {
      this.#quietTicks = 0;
      return false;
    }
    if (this.#quietTicks === 0) this.#quietSinceTick = raft.ticks();
    this.#quietTicks++;
    if (!leading) return this.#quietTicks >= followerQuietTicks(this.#config);
    return this.#quietTicks >= leaderQuietTicks(this.#config) &&
      this.followersAckedSince(this.#quietSinceTick);
  }

  /** Stops the peer's clock (the store stops ticking it); its lease is void from now on. */
  sleep(): void {
    assert(!this.#asleep, `peer ${this.meta.id}: asleep twice`);
    assert(!this.raw.hasReady(), `peer ${this.meta.id}: sleeps with a Ready`);
    this.#asleep = true;
    this.#leaseFloorTick = this.raw.raft.ticks();
  }

  /** A follower with nothing to do that heard from its leader since it woke. */
  private followerQuiet(): boolean {
    const raft = this.raw.raft;
    const log = raft.log;
    return raft.state === StateRole.Follower && this.#leaderStoreId !== undefined &&
      raft.lead !== NONE && this.#heardLeaderSinceWake && log.lastTerm() === raft.term &&
      log.committed === log.lastIndex() && this.storage.appliedIndex() === log.committed &&
      this.#proposals.length === 0 && this.#reads.size === 0;
  }

  /**
   * A leader with nothing in flight: its log unchanged since the last tick, all of it of its
   * term, committed and applied, every other peer matched to its end with no snapshot or
   * transfer under way, no proposal, read, held ChangePeer, CompactLog or conf change waiting.
   */
  private leaderQuiet(): boolean {
    const raft = this.raw.raft;
    const log = raft.log;
    const last = log.lastIndex();
    if (last !== this.#quietLastIndex) {
      this.#quietLastIndex = last;
      return false;
    }
    if (
      raft.leadTransferee !== NONE || this.#proposals.length > 0 || this.#reads.size > 0 ||
      this.#waitingVoter !== null || this.#compactInFlight !== 0n ||
      this.#pendingConfIndex > log.applied
    ) return false;
    if (log.committed !== last || this.storage.appliedIndex() !== last) return false;
    if (log.lastTerm() !== raft.term) return false;
    for (const [id, pr] of raft.tracker.progress) {
      if (id === this.meta.id) continue;
      if (pr.match !== last || pr.state !== ProgressState.Replicate || pr.pendingSnapshot !== 0n) {
        return false;
      }
    }
    return true;
  }

  /** Every other peer acknowledged a heartbeat sent at or after Raft tick `tick`. */
  private followersAckedSince(tick: number): boolean {
    for (const [id, pr] of this.raw.raft.tracker.progress) {
      if (id !== this.meta.id && pr.ackedHeartbeatSentTick < tick) return false;
    }
    return true;
  }

  /**
   * A leader's clock stands still while it sleeps, so a heartbeat acknowledged before it slept
   * proves nothing about now: the lease counts only heartbeats sent after it woke (one tick
   * after, since the clock did not move while it slept).
   */
  private leaseOutlivesSleep(): boolean {
    if (this.#config.testingBugs?.leaseSurvivesSleep === true) return true;
    if (this.#asleep) return false;
    if (this.#leaseFloorTick < 0) return true;
    const raft = this.raw.raft;
    return raft.tracker.quorumAckedHeartbeatTick(this.meta.id, raft.ticks()) > this.#leaseFloorTick;
  }

  /** A message from another peer of the region. */
  step(envelope: RaftEnvelope): void {
    assert(
      envelope.toPeer.id === this.meta.id,
      `peer ${this.meta.id}: message for ${envelope.toPeer.id}`,
    );
    this.#peerCache.set(envelope.fromPeer.id, envelope.fromPeer);
    const t = envelope.message.msgType;
    if (t === MessageType.MsgSnapshot && !this.snapshotIncludesSelf(envelope.message)) return;
    this.flushProposals();
    // A source's followers learn its commit index at once from its PrepareMerge's proposal on
    // (TiKV does the same): its leader may merge away and go before a heartbeat would tell them.
    this.raw.raft.skipBcastCommit = !this.isMerging() && !this.prepareMergeFenced();
    this.raw.step(envelope.message);
    const fromLeader = t === MessageType.MsgAppend || t === MessageType.MsgHeartbeat ||
      t === MessageType.MsgSnapshot;
    if (fromLeader && this.raw.raft.lead === envelope.fromPeer.id) {
      this.#heardLeaderSinceWake = true;
    }
  }

  /**
   * A snapshot taken before the leader applied this replica's addition does not name it: such
   * a replica would restart with a region it is not in. It is dropped; the leader sends a newer
   * one (TiKV's `check_snapshot` does the same).
   */
  private snapshotIncludesSelf(m: Message): boolean {
    const cs = m.snapshot?.metadata.confState;
    return cs !== undefined &&
      (cs.voters.includes(this.meta.id) || cs.learners.includes(this.meta.id));
  }

  /**
   * Proposes a command: checked here (leader, region, epoch, requests), answered at apply.
   * Admin TransferLeader is not an entry: it starts the transfer and is answered at once.
   */
  propose(cmd: RaftCmd, cb: ProposalCallback, encoded?: Uint8Array): void {
    const error = this.checkProposal(cmd);
    if (error !== null) return cb({ ok: false, error });
    const admin = cmd.adminRequest;
    // A write the write path checked and encoded waits for the batch (`flushProposals`); any
    // other command goes to Raft at once, after the writes proposed before it.
    const plainWrite = (admin === null || admin === undefined) && encoded !== undefined;
    if (plainWrite && !this.isMerging() && !this.prepareMergeFenced()) {
      this.#batched.push({ data: encoded, cb });
      return;
    }
    this.flushProposals();
    if (this.isMerging() && admin?.cmdType !== raft_cmdpb.AdminCmdType.RollbackMerge) {
      return cb({ ok: false, error: this.merging() });
    }
    if (this.prepareMergeFenced()) return cb({ ok: false, error: this.merging() });
    if (admin?.cmdType === raft_cmdpb.AdminCmdType.PrepareMerge) {
      const problem = this.prepareMergeProblem(cmd);
      if (problem !== null) return cb({ ok: false, error: this.invalid(problem) });
    }
    if (admin?.cmdType === raft_cmdpb.AdminCmdType.ChangePeer) {
      return this.proposeChangePeer(cmd, cb);
    }
    if (admin?.cmdType === raft_cmdpb.AdminCmdType.TransferLeader) {
      this.transferLeader(admin.transferLeader?.peer?.id ?? 0n);
      return cb({
        ok: true,
        index: 0n,
        responses: [],
        adminResponse: { cmdType: raft_cmdpb.AdminCmdType.TransferLeader, transferLeader: {} },
      });
    }
    const merge = admin?.cmdType === raft_cmdpb.AdminCmdType.PrepareMerge ||
      admin?.cmdType === raft_cmdpb.AdminCmdType.CommitMerge ||
      admin?.cmdType === raft_cmdpb.AdminCmdType.RollbackMerge;
    if (merge) {
      // Checked above (PrepareMerge) or by the epoch (CommitMerge, RollbackMerge).
    } else if (admin?.cmdType === raft_cmdpb.AdminCmdType.BatchSplit) {
      const { splits, rightDerive } = splitSpecsOf(cmd);
      const made = regionsAfterSplit(this.region(), splits, rightDerive);
      if ("problem" in made) return cb({ ok: false, error: this.invalid(made.problem) });
    } else if (
      admin !== null && admin !== undefined && admin.cmdType !== raft_cmdpb.AdminCmdType.CompactLog
    ) {
      const name = raft_cmdpb.AdminCmdType[admin.cmdType ?? 0];
      return cb({ ok: false, error: this.invalid(`admin command ${name} is not supported yet`) });
    }
    // `encoded`: the write path's bytes of a write it checked against the region at the header's
    // epoch (checked above), so its requests need no second look (nor may they be read: their
    // buffers are the caller's).
    if ((admin === null || admin === undefined) && encoded === undefined) {
      const problem = checkWriteRequests(cmd, this.region());
      if (problem !== null) return cb({ ok: false, error: problem });
    }
    if (this.raw.propose(encoded ?? encodeCommand(cmd)) !== undefined) {
      return cb({
        ok: false,
        error: this.dropped("Raft refused it (a transfer under way, or too much uncommitted)"),
      });
    }
    if (admin?.cmdType === raft_cmdpb.AdminCmdType.PrepareMerge) {
      this.#prepareMergeFence = this.raw.raft.log.lastIndex();
    }
    if (
      admin !== null && admin !== undefined && admin.cmdType !== raft_cmdpb.AdminCmdType.CompactLog
    ) {
      this.#regionChangeIndex = this.raw.raft.log.lastIndex();
    }
    this.trackProposal(cb);
  }

  /**
   * Whether a PrepareMerge this leader proposed is not applied yet (TiKV's prepare-merge fence):
   * nothing more is proposed until it is — the entries after the merge's min index are what
   * CommitMerge carries, and a CompactLog behind the PrepareMerge would truncate them on every
   * replica, leaving the merge unable to commit or roll back (sim --cluster seed 3).
   */
  prepareMergeFenced(): boolean {
    return this.#prepareMergeFence > this.raw.raft.log.applied;
  }

  /** The index of the PrepareMerge this leader proposed last (0: none since it led). */
  #prepareMergeFence = 0n;

  /**
   * The source region whose replica a CommitMerge waits for (`ApplyOutcome.blocked`), or
   * undefined: while set, the store collects no Ready of this peer until that replica runs.
   */
  get applyBlockedOn(): bigint | undefined {
    return this.#applyBlockedOn;
  }

  /** The awaited source replica runs in this store now: apply goes on. */
  unblockApply(): void {
    this.#applyBlockedOn = undefined;
  }

  #applyBlockedOn: bigint | undefined = undefined;

  /** Whether this region is between PrepareMerge and CommitMerge or RollbackMerge. */
  isMerging(): boolean {
    return this.storage.regionState().state === PeerState.Merging;
  }

  /** The merge this region is in, if it is merging. */
  mergeState(): MergeState | undefined {
    const state = this.storage.regionState();
    return state.state === PeerState.Merging ? state.mergeState : undefined;
  }

  private merging(): RegionError {
    return { code: "ServerIsBusy", regionId: this.regionId, reason: "the region is merging" };
  }

  /**
   * Why this leader may not propose PrepareMerge now (TiKV's `pre_propose_prepare_merge`), or
   * null: everything in its log applied (no conf change or CompactLog can land after it), no
   * conf change pending, every peer's log known to hold the entries up to the merge's min
   * index — which this leader's log still holds after it (else a lagging replica could not be
   * caught up) — and a target next to this region whose peers are on this region's stores.
   */
  private prepareMergeProblem(cmd: RaftCmd): string | null {
    const req = cmd.adminRequest!.prepareMerge;
    if (req?.target == null) return "PrepareMerge names no target";
    const target = regionFromProto(req.target);
    const region = this.region();
    if (!adjacent(region, target) && !adjacent(target, region)) {
      return `region ${target.id} is not next to region ${region.id}`;
    }
    if (!sameStores(region, target)) {
      return `regions ${region.id} and ${target.id} are not on the same stores`;
    }
    const log = this.raw.raft.log;
    if (log.applied < log.lastIndex()) return "entries are not applied yet";
    if (this.#pendingConfIndex > log.applied) return "a membership change is pending";
    if (this.pendingPeers().length > 0) return "a peer is waiting for a snapshot";
    const min = this.mergeMinIndex();
    if (min !== (req.minIndex ?? 0n)) return `the min index is ${min}, not ${req.minIndex}`;
    if (min + 1n < this.storage.firstIndex()) {
      return `a peer is behind the log's first index ${this.storage.firstIndex()}`;
    }
    return mergeGapProblem(log.slice({ lo: min + 1n, hi: log.lastIndex() + 1n }));
  }

  /** The lowest index every peer's log is known to hold (the leader's progress of each). */
  mergeMinIndex(): bigint {
    let min = this.raw.raft.log.lastIndex();
    for (const [id, pr] of this.raw.raft.tracker.progress) {
      if (id !== this.meta.id && pr.match < min) min = pr.match;
    }
    return min;
  }

  private invalid(reason: string): RegionError {
    return { code: "InvalidCommand", regionId: this.regionId, reason };
  }

  private dropped(reason: string): RegionError {
    return { code: "ProposalDropped", regionId: this.regionId, reason };
  }

  private checkProposal(cmd: RaftCmd): RegionError | null {
    if (this.#destroyed) return { code: "RegionNotFound", regionId: this.regionId };
    if ((cmd.header?.regionId ?? 0n) !== this.regionId) {
      return this.invalid(`the header names region ${cmd.header?.regionId ?? 0n}`);
    }
    if (!this.isLeader()) return this.notLeader();
    const waiting = this.#proposals.length + this.#batched.length;
    if (waiting >= this.#config.maxPendingProposals) {
      return {
        code: "ServerIsBusy",
        regionId: this.regionId,
        reason:
          `${waiting} proposals are waiting (the most is ${this.#config.maxPendingProposals})`,
      };
    }
    return checkEpoch(cmd, this.region(), false);
  }

  /**
   * Hands the batched writes to Raft as one MsgPropose (one append, one commit check). Writes
   * in a row that carry the same header (region, peer, epoch) are merged into one command, one
   * entry, up to RAFT_WRITE_MERGE_MAX_BYTES (TiKV's `cmd-batch`): a log entry, its key in CF
   * `raft`, its encoding, replication and apply are paid once per merged entry instead of once
   * per write. A merged entry is checked and applied as one, all its writes or none (they share
   * the epoch check, and their keys were checked against the region at that epoch), and every
   * write of it is answered with its result. Each write is tracked at its entry's index; if
   * Raft refuses the batch, every write of it is answered ProposalDropped. The store calls it
   * after taking its inbox; the peer before anything else reaches Raft (a message, a tick,
   * another proposal, a read), so the log keeps their order.
   */
  flushProposals(): void {
    const batch = this.#batched;
    if (batch.length === 0) return;
    this.#batched = [];
    const raft = this.raw.raft;
    const before = raft.log.lastIndex();
    // The writes of each entry, as a range of `batch`.
    const groups: { start: number; end: number }[] = [];
    for (let start = 0; start < batch.length;) {
      const first = batch[start]!.data;
      let end = start + 1;
      let bytes = first.length;
      while (end < batch.length) {
        const next = batch[end]!.data;
        if (bytes + next.length > RAFT_WRITE_MERGE_MAX_BYTES || !sameWriteHeader(first, next)) {
          break;
        }
        bytes += next.length;
        end++;
      }
      groups.push({ start, end });
      start = end;
    }
    const entries = groups.map(({ start, end }) =>
      newEntry({
        term: 0n,
        index: 0n,
        data: end - start === 1
          ? batch[start]!.data
          : mergeWriteCommands(batch.slice(start, end).map((p) => p.data)),
      })
    );
    const refused = !this.isLeader() || this.raw.proposeEntries(entries) !== undefined;
    const last = raft.log.lastIndex();
    if (refused || last - before !== BigInt(entries.length)) {
      const error = this.dropped("Raft refused it (a transfer under way, or too much uncommitted)");
      for (const p of batch) p.cb({ ok: false, error });
      return;
    }
    let index = before;
    for (const { start, end } of groups) {
      index++;
      for (let i = start; i < end; i++) {
        this.#proposals.push({ index, term: raft.term, cb: batch[i]!.cb });
      }
    }
  }

  private trackProposal(cb: ProposalCallback): void {
    const log = this.raw.raft.log;
    this.#proposals.push({ index: log.lastIndex(), term: this.raw.raft.term, cb });
  }

  private proposeChangePeer(cmd: RaftCmd, cb: ProposalCallback): void {
    const req = cmd.adminRequest!.changePeer;
    const target = req?.peer;
    if (target === null || target === undefined || (target.id ?? 0n) === 0n) {
      return cb({ ok: false, error: this.invalid("ChangePeer without a peer") });
    }
    const peer: PeerMeta = {
      id: target.id ?? 0n,
      storeId: target.storeId ?? 0n,
      role: target.role ?? metapb.PeerRole.Voter,
    };
    const changeType = (req?.changeType ?? 0) as number as ConfChangeType;
    const problem = this.changePeerProblem(changeType, peer);
    if (problem !== null) return cb({ ok: false, error: problem });
    if (changeType === ConfChangeType.AddNode && this.unsafeVoterProblem(peer) !== null) {
      return this.holdVoter({ cmd, cb, peer });
    }
    const err = this.raw.proposeConfChange({
      id: 0n,
      changeType,
      nodeId: peer.id,
      context: encodeCommand(cmd),
    });
    if (err !== undefined) {
      return cb({
        ok: false,
        error: this.dropped("Raft refused the conf change (one is pending)"),
      });
    }
    this.#pendingConfIndex = this.raw.raft.log.lastIndex();
    this.#regionChangeIndex = this.#pendingConfIndex;
    this.#peerCache.set(peer.id, peer);
    this.trackProposal(cb);
  }

  /** Why a single-step change may not be proposed now, or null. */
  private changePeerProblem(changeType: ConfChangeType, peer: PeerMeta): RegionError | null {
    if (this.raw.raft.log.applied < this.#pendingConfIndex) {
      return {
        code: "ServerIsBusy",
        regionId: this.regionId,
        reason: `conf change at ${this.#pendingConfIndex} is not applied yet`,
      };
    }
    const region = this.region();
    const existing = region.peers.find((p) => p.id === peer.id);
    const onStore = region.peers.find((p) => p.storeId === peer.storeId);
    switch (changeType) {
      case ConfChangeType.AddLearnerNode:
        if (existing !== undefined || onStore !== undefined) {
          return this.invalid(`store ${peer.storeId} already holds a peer of the region`);
        }
        return null;
      case ConfChangeType.AddNode:
        if (existing === undefined && onStore !== undefined) {
          return this.invalid(`store ${peer.storeId} already holds a peer of the region`);
        }
        if (existing?.role === metapb.PeerRole.Voter) {
          return this.invalid(`peer ${peer.id} is a voter already`);
        }
        return null;
      case ConfChangeType.RemoveNode:
        if (existing === undefined) return this.invalid(`peer ${peer.id} is not in the region`);
        if (peer.id === this.meta.id) {
          return this.invalid(
            `peer ${peer.id} is the leader: transfer leadership before removing it`,
          );
        }
        return null;
      default:
        return this.invalid(`unknown change type ${changeType}`);
    }
  }

  /**
   * Holds a ChangePeer that makes `peer` a voter until `peer` has caught up, then proposes it
   * (`retryWaitingVoter`, every tick); one at a time, for `voterCatchUpWaitTicks` at most.
   */
  private holdVoter(change: { cmd: RaftCmd; cb: ProposalCallback; peer: PeerMeta }): void {
    if (this.#waitingVoter !== null) {
      return change.cb({
        ok: false,
        error: {
          code: "ServerIsBusy",
          regionId: this.regionId,
          reason: `peer ${this.#waitingVoter.peer.id} is waiting to catch up to become a voter`,
        },
      });
    }
    this.#waitingVoter = { ...change, untilTick: this.#ticks + this.#config.voterCatchUpWaitTicks };
  }

  /**
   * Proposes the held ChangePeer once its peer has caught up (or this peer no longer leads:
   * `propose` then answers why); refuses it with the reason once it has waited too long.
   */
  private retryWaitingVoter(): void {
    const waiting = this.#waitingVoter;
    if (waiting === null) return;
    const problem = this.isLeader() ? this.unsafeVoterProblem(waiting.peer) : null;
    if (problem !== null && this.#ticks < waiting.untilTick) return;
    this.#waitingVoter = null;
    if (problem !== null) return waiting.cb({ ok: false, error: problem });
    this.propose(waiting.cmd, waiting.cb);
  }

  /**
   * Why making `peer` a voter now could leave the region without a leader for good, or null.
   * A peer whose match index is below the log's truncated index is pending (TiKV's name): it
   * needs a snapshot, and until it has installed one it acknowledges no entry. A pending
   * voter counts toward the quorum without helping anything commit: promoted in a one-voter
   * region, it keeps the promotion from committing and check quorum deposes the leader; in a
   * larger one, the loss of one more voter leaves a quorum that commits nothing. Either way the
   * region makes no progress until the pending voter gets a snapshot, which only a leader
   * sends. So only a peer that is not pending becomes a voter (TiKV's PD waits for the same
   * before it promotes a learner); the change is held until then (`holdVoter`).
   */
  private unsafeVoterProblem(peer: PeerMeta): RegionError | null {
    const match = this.raw.raft.tracker.progress.get(peer.id)?.match ?? 0n;
    const truncated = this.storage.firstIndex() - 1n;
    if (match >= truncated) return null;
    return {
      code: "ServerIsBusy",
      regionId: this.regionId,
      reason: `peer ${peer.id} on store ${peer.storeId} cannot become a voter yet: it holds ` +
        `the log only to ${match}, below the truncated index ${truncated} (it needs a ` +
        `snapshot first)`,
    };
  }

  /**
   * A read of the region at a point no older than any write acknowledged before this call.
   * Served at once under the lease, else after a ReadIndex round and apply.
   */
  read(cb: ReadCallback): void {
    this.flushProposals();
    if (this.#destroyed) {
      return cb({ ok: false, error: { code: "RegionNotFound", regionId: this.regionId } });
    }
    // A merging source serves nothing: once the target took its range, a read here could miss
    // writes the target accepted.
    if (this.isMerging()) return cb({ ok: false, error: this.merging() });
    const bugs = this.#config.testingBugs ?? {};
    if (!this.isLeader()) {
      if (bugs.serveReadsOnFollowers === true) return cb(this.readPermission(true));
      return cb({ ok: false, error: this.notLeader() });
    }
    if (this.leaseReadable() || bugs.readWithoutLease === true) {
      return cb(this.readPermission(true));
    }
    if (this.#reads.size >= this.#config.maxPendingReads) {
      return cb({
        ok: false,
        error: {
          code: "ServerIsBusy",
          regionId: this.regionId,
          reason: `${this.#reads.size} reads are waiting`,
        },
      });
    }
    const ctx = `${this.meta.id}:${++this.#readSeq}`;
    this.#reads.set(ctx, { readIndex: undefined, askedAtTick: this.#ticks, cb });
    this.raw.readIndex(new TextEncoder().encode(ctx));
  }

  /**
   * True when a read may be served at once from the engine (the test of `read`'s lease path):
   * this replica leads under its lease, and has applied every write acknowledged before now —
   * everything committed, or (TiKV's test) an entry of its own term, which orders every entry
   * of earlier terms before it: what it committed since and has not applied yet it proposed
   * itself and has acknowledged to no one. Unless one of those may change the region (a conf
   * change, a split, a merge step: another region may serve some of these keys once applied).
   * Never while merging (as `read` refuses): the target may have taken the range and accepted
   * writes this replica will never see.
   */
  leaseReadable(): boolean {
    if (this.#destroyed || !this.isLeader() || this.isMerging()) return false;
    const raft = this.raw.raft;
    if (!raft.leaseValid() || !this.leaseOutlivesSleep()) return false;
    const applied = this.storage.appliedIndex();
    if (applied >= raft.log.committed) return true;
    // With a pipelined log, what this leader committed waits for its fsync before it applies.
    return this.#config.pipelineLog && this.#appliedTerm === raft.term &&
      this.#regionChangeIndex <= applied;
  }

  private readPermission(viaLease: boolean): ReadResult {
    return {
      ok: true,
      snapshot: this.#engine.snapshot(),
      region: this.region(),
      appliedIndex: this.storage.appliedIndex(),
      viaLease,
    };
  }

  /** Asks the leader (this peer) to hand leadership to `peerId` (a Raft message, no entry). */
  transferLeader(peerId: bigint): void {
    this.flushProposals();
    if (this.isLeader() && peerId !== this.meta.id && this.#peerCache.has(peerId)) {
      this.raw.transferLeader(peerId);
    }
  }

  /** Starts an election now (tests and bootstrap). */
  campaign(): void {
    this.raw.campaign();
  }

  /**
   * Leader: proposes CompactLog when the log holds more than the count or size threshold of
   * applied entries, up to the slowest tracked peer's match index but no further than half the
   * count limit below the applied index (module header).
   */
  private maybeCompactLog(): void {
    // A merging source keeps its log: CommitMerge carries entries after the merge's min index.
    if (!this.isLeader() || this.isMerging() || this.prepareMergeFenced()) return;
    const raft = this.raw.raft;
    const first = this.storage.firstIndex();
    const applied = raft.log.applied;
    if (applied < first) return;
    const count = applied - first + 1n;
    const config = this.#config;
    if (
      count < BigInt(config.raftLogGcCountLimit) &&
      this.#logSizeBytes < config.raftLogGcSizeLimitBytes
    ) {
      return;
    }
    let compactIndex = applied;
    for (const pr of raft.tracker.progress.values()) {
      if (pr.match < compactIndex) compactIndex = pr.match;
    }
    // A peer more than half the count limit behind (its store down, or far too slow) holds
    // compaction back no further: the log stays within the limit, and that peer is sent a
    // snapshot when it answers again (TiKV too compacts past it at its count limit). A peer
    // merely behind, within half the limit, still catches up by log.
    const lagFloor = applied - BigInt(Math.floor(config.raftLogGcCountLimit / 2));
    if (compactIndex < lagFloor) compactIndex = lagFloor;
    if (compactIndex < first || compactIndex <= this.#compactInFlight) return;
    const cmd: RaftCmd = {
      header: commandHeader(this.region(), this.meta),
      adminRequest: {
        cmdType: raft_cmdpb.AdminCmdType.CompactLog,
        compactLog: { compactIndex, compactTerm: this.storage.term(compactIndex) },
      },
    };
    if (this.raw.propose(encodeCommand(cmd)) === undefined) {
      this.#compactInFlight = compactIndex;
      this.trackProposal(() => (this.#compactInFlight = 0n));
    }
  }

  // -------------------------------------------------------------------------------------------
  // The round: Ready duties, in src/raft/raw_node.ts's order (store.ts calls these).

  /** The peer's Ready, or undefined when it has nothing to do. */
  takeReady(): Ready | undefined {
    this.flushProposals();
    if (this.#destroyed || !this.raw.hasReady()) return undefined;
    const rd = this.raw.ready();
    if (rd.softState !== undefined) this.onRoleChange(rd.softState.raftState);
    return rd;
  }

  private onRoleChange(role: StateRole): void {
    if (role === StateRole.Leader) {
      // Entries of earlier terms may hold conf changes this peer has not applied.
      this.#pendingConfIndex = this.raw.raft.log.lastIndex();
      this.#compactInFlight = 0n;
      // …and a PrepareMerge of an earlier leader: fenced as if proposed here.
      this.#prepareMergeFence = unappliedPrepareMerge(this.raw.raft.log);
      return;
    }
    this.#prepareMergeFence = 0n;
    // Reads still waiting for their ReadIndex are lost with the leadership (Raft forgets them);
    // reads that have one stay valid and are served once applied.
    for (const [ctx, read] of this.#reads) {
      if (read.readIndex !== undefined) continue;
      this.#reads.delete(ctx);
      read.cb({ ok: false, error: this.notLeader() });
    }
  }

  /** Duty 1: the snapshot, entries and hard state into the round's synced batch. */
  persist(batch: WriteBatch, rd: Ready): void {
    if (rd.snapshot !== undefined) {
      this.storage.applySnapshot(batch, rd.snapshot);
      this.refreshPeerCache();
    }
    this.storage.append(batch, rd.entries);
    for (const e of rd.entries) {
      this.#logSizeBytes += e.data.length;
      this.notePeersOf(e);
    }
    if (rd.hardState !== undefined) this.storage.setHardState(batch, rd.hardState);
  }

  /** Peers named by a conf-change entry join the cache, so Raft's messages to them can go. */
  private notePeersOf(e: Entry): void {
    if (e.entryType !== EntryType.EntryConfChange) return;
    const peer = decodeCommand(decodeConfChange(e.data).context).adminRequest?.changePeer?.peer;
    if (peer?.id == null || peer.storeId == null) return;
    this.#peerCache.set(peer.id, {
      id: peer.id,
      storeId: peer.storeId,
      role: peer.role ?? metapb.PeerRole.Voter,
    });
  }

  /**
   * Duty 2: the Ready's messages (those of type `only`, if given) as envelopes (to peers whose
   * store is known).
   */
  envelopes(rd: Ready, only?: MessageType): RaftEnvelope[] {
    const out: RaftEnvelope[] = [];
    for (const m of rd.messages) {
      if (only !== undefined && m.msgType !== only) continue;
      const to = this.#peerCache.get(m.to);
      if (to !== undefined) out.push(this.envelope(to, m, false));
    }
    return out;
  }

  /** An envelope from this peer to `to`. */
  envelope(to: PeerMeta, message: Message, isTombstone: boolean): RaftEnvelope {
    const region = this.region();
    return {
      regionId: this.regionId,
      fromPeer: this.meta,
      toPeer: to,
      regionEpoch: { ...region.regionEpoch },
      startKey: region.startKey,
      endKey: region.endKey,
      message,
      isTombstone,
    };
  }

  /** Duty 3: the committed entries into the round's apply batch. */
  apply(batch: WriteBatch, rd: Ready, neighbours?: ApplyNeighbours): ApplyOutcome {
    const outcome = applyEntries(
      {
        storage: this.storage,
        batch,
        selfPeerId: this.meta.id,
        neighbours,
        testingBugs: this.#config.testingBugs,
      },
      rd.committedEntries,
    );
    if (outcome.blocked !== undefined) {
      // Raft hears of the entries applied only (`advance`); the rest come again once unblocked.
      const at = outcome.blocked.index;
      rd.committedEntries = rd.committedEntries.filter((e) => e.index < at);
      this.#applyBlockedOn = outcome.blocked.sourceRegionId;
    }
    if (outcome.regionChanged) this.refreshPeerCache();
    return outcome;
  }

  /**
   * After the apply batch is written: answers proposals and reads, then duty 4 (`advance`).
   */
  finishReady(rd: Ready, outcome: ApplyOutcome): void {
    if (rd.snapshot !== undefined) this.#appliedTerm = rd.snapshot.metadata.term;
    const lastApplied = rd.committedEntries[rd.committedEntries.length - 1];
    if (lastApplied !== undefined) this.#appliedTerm = lastApplied.term;
    this.answerProposals(rd.committedEntries, outcome.applied);
    for (const rs of rd.readStates) {
      const ctx = new TextDecoder().decode(rs.requestCtx);
      const read = this.#reads.get(ctx);
      if (read !== undefined) read.readIndex = rs.index;
    }
    this.raw.advance(rd);
    const applied = this.storage.appliedIndex();
    if (this.storage.firstIndex() !== this.#logSizeSince) {
      // Compacted: restart the estimate (the entries kept are not counted; it is an estimate).
      this.#logSizeSince = this.storage.firstIndex();
      this.#logSizeBytes = 0;
    }
    for (const [ctx, read] of this.#reads) {
      if (read.readIndex === undefined || read.readIndex > applied) continue;
      this.#reads.delete(ctx);
      read.cb(this.readPermission(false));
    }
  }

  /**
   * Answers the writes `rd` applied (into `outcome`) whose entries were durable before this
   * round — all but those `rd` itself persists (a lone voter commits its entries as it appends
   * them) — while the round's fsync runs (log_writer.ts); `finishReady` answers the rest. Not
   * when the round changed the region (a conf change, a split, a merge step): those answers
   * wait for the store to act on the change (open or drop replicas) at the round's end.
   */
  answerDurable(rd: Ready, outcome: ApplyOutcome): void {
    // Every region change sets `regionChanged` (apply.ts); a blocked CommitMerge waits too.
    if (outcome.regionChanged || outcome.removedSelf || outcome.blocked !== undefined) return;
    const firstNew = rd.entries[0]?.index;
    this.answerProposals(rd.committedEntries, outcome.applied, firstNew);
  }

  /** Answers the proposals of `committed` entries applied, up to (not including) `before`. */
  private answerProposals(
    committed: readonly Entry[],
    applied: readonly AppliedEntry[],
    before?: bigint,
  ): void {
    if (this.#proposals.length === 0) return;
    const results = new Map<bigint, AppliedEntry>();
    for (const a of applied) results.set(a.index, a);
    const lastApplied = this.storage.appliedIndex();
    for (const e of committed) {
      if (e.index > lastApplied || (before !== undefined && e.index >= before)) break;
      while (this.#proposals.length > 0 && this.#proposals[0]!.index <= e.index) {
        const p = this.#proposals.shift()!;
        const result = results.get(p.index);
        const sameTerm = p.term === e.term ||
          this.#config.testingBugs?.ackOverwrittenProposals === true;
        if (p.index === e.index && sameTerm && result !== undefined) {
          p.cb(result.result);
        } else {
          p.cb({
            ok: false,
            error: this.stale(`entry ${p.index} of term ${p.term} was overwritten`),
          });
        }
      }
    }
  }

  private stale(reason: string): RegionError {
    return { code: "StaleCommand", regionId: this.regionId, reason };
  }

  /**
   * Removes this replica: its log, raft and apply state, and its region's data (unless
   * `keepData`: another replica here holds those keys now), into `batch`, with
   * RegionLocalState Tombstone kept so that it never comes back. Waiting proposals are
   * answered StaleCommand (their outcome is unknown), reads RegionNotFound.
   */
  destroy(batch: WriteBatch, opts: { keepData?: boolean } = {}): void {
    assert(!this.#destroyed, `peer ${this.meta.id}: destroyed twice`);
    this.#destroyed = true;
    const region = this.region();
    if (this.isInitialized() && opts.keepData !== true) {
      clearRegionData(this.#engine, batch, region);
    }
    deleteRaftRecords(batch, this.regionId);
    // An uninitialized replica may have voted (store.ts): its Tombstone names it, so that no
    // message brings it back without the vote it cast.
    const tombstone = this.isInitialized() ? region : { ...region, peers: [this.meta] };
    this.storage.setRegionState(batch, { state: PeerState.Tombstone, region: tombstone });
    this.failAll({
      proposals: this.stale("the peer was removed"),
      reads: { code: "RegionNotFound", regionId: this.regionId },
    });
  }

  /** Answers everything waiting with `errors` (the store stopping, or the peer destroyed). */
  failAll(errors: { proposals: RegionError; reads: RegionError }): void {
    const proposals = [...this.#proposals, ...this.#batched];
    this.#proposals = [];
    this.#batched = [];
    for (const p of proposals) p.cb({ ok: false, error: errors.proposals });
    const waiting = this.#waitingVoter;
    this.#waitingVoter = null;
    waiting?.cb({ ok: false, error: errors.proposals });
    const reads = [...this.#reads.values()];
    this.#reads.clear();
    for (const r of reads) r.cb({ ok: false, error: errors.reads });
  }
}

/**
 * Why the entries a CommitMerge would carry to the source's lagging replicas (those after the
 * merge's min index) cannot be carried, or null. A replica caught up by a CommitMerge applies
 * them in the target's apply, where only plain writes may be replayed: a split there would make
 * regions no peer of that store runs, a membership change or a log compaction would change the
 * source replica under the merge (TiKV refuses such a gap the same way, "log gap contains admin
 * request"). Leadership transfers and a new leader's empty entry are harmless.
 */
function mergeGapProblem(entries: readonly Entry[]): string | null {
  for (const e of entries) {
    if (e.entryType === EntryType.EntryConfChange || e.entryType === EntryType.EntryConfChangeV2) {
      return `the log after the merge's min index holds a membership change (index ${e.index})`;
    }
    if (e.data.length === 0) continue;
    const admin = decodeCommand(e.data).adminRequest;
    if (admin === null || admin === undefined) continue;
    if (admin.cmdType === raft_cmdpb.AdminCmdType.TransferLeader) continue;
    const name = raft_cmdpb.AdminCmdType[admin.cmdType ?? 0];
    return `the log after the merge's min index holds an admin command ${name} (index ${e.index})`;
  }
  return null;
}

/** The index of the last PrepareMerge among the log's unapplied entries, or 0. */
function unappliedPrepareMerge(
  log: { applied: bigint; lastIndex(): bigint; slice(r: { lo: bigint; hi: bigint }): Entry[] },
): bigint {
  let found = 0n;
  if (log.lastIndex() <= log.applied) return found;
  for (const e of log.slice({ lo: log.applied + 1n, hi: log.lastIndex() + 1n })) {
    if (e.entryType !== EntryType.EntryNormal || e.data.length === 0) continue;
    const admin = decodeCommand(e.data).adminRequest;
    if (admin?.cmdType === raft_cmdpb.AdminCmdType.PrepareMerge) found = e.index;
  }
  return found;
}
