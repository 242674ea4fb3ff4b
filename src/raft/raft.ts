/**
 * The Raft consensus algorithm as a pure state machine (etcd/raft style).
 *
 * Nothing here reads a clock, a random source, a disk or a network: time arrives as `tick()`,
 * randomness through the injected `RandomSource`, messages through `step()`, and everything the
 * node wants done (persist, send, apply) is queued for the application to drain through
 * `RawNode.ready()`.
 *
 * Invariants kept (and asserted where cheap):
 * - Election Safety (§5.2): a node votes at most once per term (`vote` is durable with `term`).
 * - Log Matching (§5.3): a follower appends only after checking the entry before the new ones.
 * - Leader Completeness (§5.4): votes go only to candidates whose log is at least as up to date,
 *   and a leader commits by counting replicas only entries of its own term (§5.4.2).
 * - Membership (thesis §4.1): a node uses the latest configuration in its log, committed or
 *   not; a leader starts a change only when the previous one is committed and it has committed
 *   an entry of its own term (the fix for the single-server change bug of 2015).
 * - Lease reads (thesis §6.4.1): a leader answers reads locally only while a quorum has
 *   acknowledged a heartbeat sent less than `electionTimeoutTicks - leaseMarginTicks` ago, and
 *   followers with check-quorum refuse to vote while they heard from a leader within an
 *   election timeout (including the first election timeout after a restart).
 * - Flow control of proposals (etcd/raft's `MaxUncommittedEntriesSize`): a leader drops a
 *   proposal that would take the data bytes of its uncommitted, unapplied entries above
 *   `maxUncommittedSizeBytes`, unless nothing is outstanding (so one large proposal always
 *   gets through) or the proposal carries no data (the empty entry of a new term).
 *
 * Wire conventions beyond eraftpb: MsgHeartbeat carries the leader's tick count in `index`,
 * echoed by MsgHeartbeatResponse, so the leader knows when an acknowledged heartbeat was sent.
 *
 * @module
 */

import {
  DEFAULT_LEASE_MARGIN_TICKS,
  DEFAULT_MAX_COMMITTED_SIZE_PER_READY_BYTES,
  DEFAULT_MAX_INFLIGHT_MSGS,
  DEFAULT_MAX_SIZE_PER_MSG_BYTES,
  DEFAULT_MAX_UNCOMMITTED_SIZE_BYTES,
  MAX_QUEUED_READ_INDEX_BEFORE_COMMIT,
} from "./constants.ts";
import { ProgressState } from "./progress.ts";
import { RaftLog } from "./raft_log.ts";
import { ReadOnly, type ReadState } from "./read_only.ts";
import { StorageError } from "./storage.ts";
import type { Storage } from "./storage.ts";
import { applyConfChangeToConfState, compareBig, ProgressTracker, VoteResult } from "./tracker.ts";
import {
  assert,
  type ConfState,
  decodeConfChange,
  type Entry,
  EntryType,
  type HardState,
  type Message,
  MessageType,
  minBig,
  newMessage,
  NONE,
  type Snapshot,
  voteResponseType,
} from "./types.ts";

/** The role a node plays in its current term. */
export enum StateRole {
  Follower = "Follower",
  Candidate = "Candidate",
  Leader = "Leader",
  PreCandidate = "PreCandidate",
}

/** How reads are confirmed: a heartbeat round per batch (Safe) or the leader's lease. */
export enum ReadOnlyOption {
  Safe = "Safe",
  LeaseBased = "LeaseBased",
}

/** Injected randomness: uniform integers in [0, n). */
export interface RandomSource {
  /** A uniform integer in [0, n). */
  nextInt(n: number): number;
}

/**
 * Deliberate bugs for proving that the simulator's checkers catch them. Test-only: nothing
 * outside tests and `sim/` may set them.
 */
export interface RaftTestingBugs {
  /** Grant a vote even after voting for someone else in the same term (breaks §5.2). */
  doubleVote?: boolean;
  /** Commit entries of previous terms by counting replicas (breaks §5.4.2, Figure 8). */
  commitPreviousTermByCount?: boolean;
  /** Serve lease reads without checking the lease is still valid (breaks linearizability). */
  leaseReadWithoutCheck?: boolean;
  /** Answer ReadIndex without the heartbeat round that confirms leadership (stale reads). */
  readIndexWithoutHeartbeat?: boolean;
  /** Never clear a lost probe on heartbeat responses: replication to that peer stalls. */
  probeNeverResumes?: boolean;
}

/** Configuration of one Raft node. */
export interface RaftConfig {
  /** This node's id (non-zero). */
  id: bigint;
  /** Base election timeout; the actual one is random in [this, 2 × this). */
  electionTimeoutTicks: number;
  /** Ticks between leader heartbeats; must be below the election timeout. */
  heartbeatIntervalTicks: number;
  /** The durable log. */
  storage: Storage;
  /** Randomness for election timeouts. */
  random: RandomSource;
  /** Index already applied by the state machine (on restart). Defaults to the snapshot index. */
  applied?: bigint;
  /** Bytes of entries per MsgAppend. */
  maxSizePerMsgBytes?: number;
  /** Unacknowledged MsgAppend per follower. */
  maxInflightMsgs?: number;
  /** Bytes of committed entries handed out per Ready. */
  maxCommittedSizePerReadyBytes?: number;
  /**
   * Data bytes of proposed entries a leader holds not yet applied before it drops proposals
   * ("ProposalDropped"); see `increaseUncommittedSize`.
   */
  maxUncommittedSizeBytes?: number;
  /** Leader steps down without a quorum of recent contact; followers refuse votes in lease. */
  checkQuorum?: boolean;
  /** Run a pre-vote round (thesis §9.6) before bumping the term. */
  preVote?: boolean;
  /**
   * The group is new (a region a split just made): no leader of it can have been heard, so the
   * node starts out of any leader's lease and grants votes at once (a restarted node, by
   * default, refuses them for one election timeout; see the constructor).
   */
  newGroup?: boolean;
  /** Safe (heartbeat round) or LeaseBased reads. LeaseBased requires checkQuorum. */
  readOnlyOption?: ReadOnlyOption;
  /** Safety margin of the leader lease, in ticks. */
  leaseMarginTicks?: number;
  /** Followers drop proposals instead of forwarding them to the leader. */
  disableProposalForwarding?: boolean;
  /**
   * The application persists a Ready's entries after `advance` and reports it with
   * `RawNode.onPersisted`; committed entries are applied only once durable here (raft_log.ts).
   */
  asyncPersist?: boolean;
  /**
   * A leader whose commit index an answer advanced does not send every follower an append to
   * say so: they learn it from the next append or heartbeat (raft-rs's `skip_bcast_commit`,
   * which TiKV turns on). Still sent while a membership change is in the log and not applied.
   * Changeable on the node (`Raft.skipBcastCommit`).
   */
  skipBcastCommit?: boolean;
  /** Test-only bugs. */
  testingBugs?: RaftTestingBugs;
}

/** Expected failures of `step`, as stable codes. */
export type StepError = "ProposalDropped";

/** The campaign a MsgHup or MsgTimeoutNow starts. */
export enum CampaignType {
  PreElection = "CampaignPreElection",
  Election = "CampaignElection",
  Transfer = "CampaignTransfer",
}

const CAMPAIGN_TRANSFER_CONTEXT = new TextEncoder().encode(CampaignType.Transfer);

function isTransferContext(ctx: Uint8Array): boolean {
  if (ctx.length !== CAMPAIGN_TRANSFER_CONTEXT.length) return false;
  return ctx.every((b, i) => b === CAMPAIGN_TRANSFER_CONTEXT[i]);
}

/** One configuration taking effect at `index` (the conf-change entry, or the snapshot). */
interface ConfigAt {
  index: bigint;
  confState: ConfState;
}

/** The Raft state machine of one node. Drive it through `RawNode`. */
export class Raft {
  readonly id: bigint;
  term = 0n;
  vote = NONE;
  state: StateRole = StateRole.Follower;
  lead = NONE;
  leadTransferee = NONE;
  /**
   * The kind of the last campaign this node started as a candidate (not a pre-candidate):
   * `Election` once a pre-vote was won (or without pre-vote), `Transfer` for a leadership
   * transfer. What the store's hibernation reads to tell a leader found silent from a handover.
   */
  lastCampaign: CampaignType | undefined = undefined;
  readonly log: RaftLog;
  readonly tracker: ProgressTracker;
  /** Messages to send, drained by `RawNode.ready()`. */
  msgs: Message[] = [];
  /** Answered reads, drained by `RawNode.ready()`. */
  readStates: ReadState[] = [];
  private readOnly = new ReadOnly();
  private queuedReadIndex: Message[] = [];
  /** Configurations in the log, oldest first; the last one is in force. */
  private configs: ConfigAt[] = [];
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  /** Ticks since this node last heard from a leader (or restarted): the vote-refusal lease. */
  private leaderContactElapsed: number;
  private randomizedElectionTimeout = 0;
  /** Ticks since the node started; the leader's lease clock. */
  private tickCount = 0;
  /** Proposals appended since the last broadcast; flushed by `flushAppends()` (batching). */
  appendsPending = false;
  /** Set once this leader sent MsgTimeoutNow: its lease can no longer be trusted this term. */
  private leaseDisabled = false;
  /**
   * Data bytes of the entries this leader accepted and has not yet handed out for apply (an
   * estimate: entries of earlier terms were never counted). Only a leader counts; reset on
   * every role change.
   */
  private uncommittedSizeBytes = 0;
  private readonly cfg: Required<
    Omit<RaftConfig, "applied" | "testingBugs" | "skipBcastCommit">
  >;
  private readonly bugs: RaftTestingBugs;
  /** `RaftConfig.skipBcastCommit`, as the application sets it now. */
  skipBcastCommit: boolean;

  /** A node recovering from `config.storage` (a fresh node if the storage is empty). */
  constructor(config: RaftConfig) {
    assert(config.id !== NONE, "raft: id must be non-zero");
    assert(
      config.heartbeatIntervalTicks > 0 &&
        config.electionTimeoutTicks > config.heartbeatIntervalTicks,
      "raft: need 0 < heartbeatIntervalTicks < electionTimeoutTicks",
    );
    this.cfg = {
      maxSizePerMsgBytes: DEFAULT_MAX_SIZE_PER_MSG_BYTES,
      maxInflightMsgs: DEFAULT_MAX_INFLIGHT_MSGS,
      maxCommittedSizePerReadyBytes: DEFAULT_MAX_COMMITTED_SIZE_PER_READY_BYTES,
      maxUncommittedSizeBytes: DEFAULT_MAX_UNCOMMITTED_SIZE_BYTES,
      checkQuorum: false,
      preVote: false,
      readOnlyOption: ReadOnlyOption.Safe,
      leaseMarginTicks: DEFAULT_LEASE_MARGIN_TICKS,
      disableProposalForwarding: false,
      newGroup: false,
      asyncPersist: false,
      ...config,
    };
    assert(
      this.cfg.readOnlyOption === ReadOnlyOption.Safe || this.cfg.checkQuorum,
      "raft: LeaseBased reads need checkQuorum",
    );
    assert(this.cfg.maxUncommittedSizeBytes > 0, "raft: maxUncommittedSizeBytes must be positive");
    this.bugs = config.testingBugs ?? {};
    this.skipBcastCommit = config.skipBcastCommit ?? false;
    this.id = config.id;
    this.log = new RaftLog(
      config.storage,
      this.cfg.maxCommittedSizePerReadyBytes,
      this.cfg.asyncPersist,
    );
    this.tracker = new ProgressTracker(this.cfg.maxInflightMsgs);
    const { hardState, confState } = config.storage.initialState();
    this.loadConfigs(confState);
    if (hardState.term !== 0n || hardState.vote !== NONE || hardState.commit !== 0n) {
      this.loadHardState(hardState);
    }
    // A restarted node may have acknowledged a leader's heartbeat just before crashing; it must
    // keep refusing votes for one election timeout, or that leader's lease would be unsound.
    this.leaderContactElapsed = this.term > 0n && config.newGroup !== true
      ? 0
      : this.cfg.electionTimeoutTicks;
    if (config.applied !== undefined && config.applied > 0n) this.log.appliedTo(config.applied);
    this.becomeFollower(this.term, NONE);
  }

  private loadHardState(hs: HardState): void {
    assert(
      hs.commit <= this.log.lastIndex(),
      `hard state commit ${hs.commit} beyond last index ${this.log.lastIndex()}`,
    );
    this.term = hs.term;
    this.vote = hs.vote;
    this.log.commitTo(hs.commit);
  }

  /** Rebuilds the configuration history from the snapshot's ConfState and the log. */
  private loadConfigs(base: ConfState): void {
    this.configs = [{ index: this.log.firstIndex() - 1n, confState: base }];
    const last = this.log.lastIndex();
    for (let lo = this.log.firstIndex(); lo <= last;) {
      const ents = this.log.slice({
        lo,
        hi: last + 1n,
        maxSizeBytes: this.cfg.maxCommittedSizePerReadyBytes,
      });
      this.noteAppended(ents, false);
      lo += BigInt(ents.length);
    }
    this.log.onAppend = (ents) => this.noteAppended(ents, true);
    this.tracker.setConfig(this.currentConfig(), this.log.lastIndex() + 1n);
  }

  /** The configuration in force: the latest in the log. */
  currentConfig(): ConfState {
    return this.configs[this.configs.length - 1]!.confState;
  }

  /** Index of the entry that set the configuration in force. */
  private lastConfigIndex(): bigint {
    return this.configs[this.configs.length - 1]!.index;
  }

  /**
   * Keeps the configuration history in step with the log: entries at or after the first
   * appended index replace what was there, conf-change entries among them take effect now.
   */
  private noteAppended(ents: Entry[], apply: boolean): void {
    if (ents.length === 0) return;
    const from = ents[0]!.index;
    const before = this.configs.length;
    while (this.configs.length > 1 && this.configs[this.configs.length - 1]!.index >= from) {
      this.configs.pop();
    }
    let changed = this.configs.length !== before;
    for (const e of ents) {
      if (e.entryType === EntryType.EntryConfChange) {
        const cs = applyConfChangeToConfState(this.currentConfig(), decodeConfChange(e.data));
        this.configs.push({ index: e.index, confState: cs });
        changed = true;
      }
      assert(e.entryType !== EntryType.EntryConfChangeV2, "raft: ConfChangeV2 is not supported");
    }
    if (changed && apply) this.applyConfig();
  }

  /** Puts the configuration in force into the tracker. */
  private applyConfig(): void {
    this.tracker.setConfig(this.currentConfig(), this.log.lastIndex() + 1n);
    if (this.state === StateRole.Leader) {
      this.tracker.progress.get(this.id)?.maybeUpdate(this.durableIndex());
      // A smaller quorum may commit more now.
      if (this.maybeCommit()) this.bcastAppend();
    }
  }

  /** Drops configurations that can never again be in force (older than the committed one). */
  private pruneConfigs(): void {
    let keep = 0;
    for (let i = 0; i < this.configs.length; i++) {
      if (this.configs[i]!.index <= this.log.committed) keep = i;
    }
    if (keep > 0) this.configs = this.configs.slice(keep);
  }

  /** True if this node may campaign: it is a voter in the configuration in force. */
  promotable(): boolean {
    return this.tracker.isVoter(this.id);
  }

  /** The durable part of the state. */
  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  /** The node's lease clock, for tests and status. */
  ticks(): number {
    return this.tickCount;
  }

  // ---------------------------------------------------------------------------------------
  // Role changes

  private reset(term: bigint): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.leadTransferee = NONE;
    this.leaseDisabled = false;
    this.tracker.resetVotes();
    const last = this.log.lastIndex();
    const durable = this.durableIndex();
    for (const [id, pr] of this.tracker.progress) {
      pr.becomeProbe();
      pr.match = id === this.id ? durable : 0n;
      pr.next = last + 1n;
      pr.recentActive = id === this.id;
      pr.ackedHeartbeatSentTick = -1;
    }
    this.readOnly = new ReadOnly();
    this.queuedReadIndex = [];
    this.uncommittedSizeBytes = 0;
  }

  private resetRandomizedElectionTimeout(): void {
    const et = this.cfg.electionTimeoutTicks;
    this.randomizedElectionTimeout = et + this.cfg.random.nextInt(et);
  }

  /** Becomes a follower of `lead` (or of nobody) in `term`. */
  becomeFollower(term: bigint, lead: bigint): void {
    this.reset(term);
    this.lead = lead;
    this.state = StateRole.Follower;
  }

  private becomeCandidate(): void {
    assert(this.state !== StateRole.Leader, "raft: leader cannot become candidate");
    this.reset(this.term + 1n);
    this.vote = this.id;
    this.state = StateRole.Candidate;
  }

  private becomePreCandidate(): void {
    assert(this.state !== StateRole.Leader, "raft: leader cannot become pre-candidate");
    // Pre-vote changes neither term nor vote (thesis §9.6): a partitioned node that keeps
    // pre-campaigning never disrupts the cluster when it rejoins.
    this.tracker.resetVotes();
    this.state = StateRole.PreCandidate;
    this.lead = NONE;
  }

  private becomeLeader(): void {
    assert(this.state === StateRole.Candidate, `raft: ${this.state} cannot become leader`);
    this.reset(this.term);
    this.lead = this.id;
    this.state = StateRole.Leader;
    this.leaderContactElapsed = 0; // A leader is in contact with itself: it refuses votes.
    this.tracker.progress.get(this.id)?.becomeReplicate();
    // §5.4.2 / §8: an empty entry of the new term lets the leader learn what is committed and
    // makes ReadIndex and conf changes possible as soon as it commits.
    this.appendEntries([{
      entryType: EntryType.EntryNormal,
      term: 0n,
      index: 0n,
      data: new Uint8Array(0),
      context: new Uint8Array(0),
    }]);
  }

  // ---------------------------------------------------------------------------------------
  // Time

  /** Advances the logical clock by one tick. */
  tick(): void {
    this.tickCount++;
    if (this.state === StateRole.Leader) this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    this.leaderContactElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.step(newMessage({ msgType: MessageType.MsgHup, from: this.id }));
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    this.leaderContactElapsed = 0;
    if (this.electionElapsed >= this.cfg.electionTimeoutTicks) {
      this.electionElapsed = 0;
      if (this.cfg.checkQuorum) {
        this.step(newMessage({ msgType: MessageType.MsgCheckQuorum, from: this.id }));
      }
      // A transfer that did not finish within an election timeout is abandoned.
      if (this.state === StateRole.Leader) this.leadTransferee = NONE;
    }
    if (this.state !== StateRole.Leader) return;
    if (this.heartbeatElapsed >= this.cfg.heartbeatIntervalTicks) {
      this.heartbeatElapsed = 0;
      this.step(newMessage({ msgType: MessageType.MsgBeat, from: this.id }));
    }
  }

  // ---------------------------------------------------------------------------------------
  // Sending

  private send(m: Message): void {
    assert(m.to !== NONE, `raft: message ${MessageType[m.msgType]} without recipient`);
    m.from = this.id;
    const t = m.msgType;
    if (
      t === MessageType.MsgRequestVote || t === MessageType.MsgRequestPreVote ||
      t === MessageType.MsgRequestVoteResponse || t === MessageType.MsgRequestPreVoteResponse
    ) {
      // Vote traffic carries the term it is about, which for pre-votes is a future term.
      assert(m.term !== 0n, `raft: ${MessageType[t]} must carry a term`);
    } else if (t !== MessageType.MsgPropose && t !== MessageType.MsgReadIndex) {
      // Forwarded proposals and reads are local to the leader and carry no term.
      m.term = this.term;
    }
    this.msgs.push(m);
  }

  /** Sends entries (or a snapshot) to `to` if its flow control allows. Returns true if sent. */
  private maybeSendAppend(to: bigint, sendIfEmpty: boolean): boolean {
    const pr = this.tracker.progress.get(to);
    if (this.state !== StateRole.Leader || pr === undefined || pr.isPaused()) return false;
    const prevTerm = this.log.term(pr.next - 1n);
    const ents = this.log.entriesFrom(pr.next, this.cfg.maxSizePerMsgBytes);
    if (ents !== undefined && ents.length === 0 && !sendIfEmpty) return false;
    if (prevTerm === undefined || ents === undefined) return this.maybeSendSnapshot(to);
    this.send(newMessage({
      msgType: MessageType.MsgAppend,
      to,
      index: pr.next - 1n,
      logTerm: prevTerm,
      entries: ents,
      commit: this.log.committed,
    }));
    const last = ents[ents.length - 1];
    if (pr.state === ProgressState.Replicate) {
      if (last !== undefined) {
        pr.optimisticUpdate(last.index);
        pr.inflights.add(last.index);
      }
    } else if (pr.state === ProgressState.Probe) {
      pr.probeSent = true;
    }
    return true;
  }

  private maybeSendSnapshot(to: bigint): boolean {
    const pr = this.tracker.progress.get(to)!;
    if (!pr.recentActive) return false; // Do not push a snapshot at a peer that may be down.
    let snap: Snapshot;
    try {
      snap = this.log.snapshot();
    } catch (e) {
      if (e instanceof StorageError && e.code === "SnapshotTemporarilyUnavailable") return false;
      throw e;
    }
    assert(snap.metadata.index > 0n, "raft: need a non-empty snapshot for a compacted log");
    this.send(newMessage({ msgType: MessageType.MsgSnapshot, to, snapshot: snap }));
    pr.becomeSnapshot(snap.metadata.index);
    return true;
  }

  private sendAppend(to: bigint): void {
    this.maybeSendAppend(to, true);
  }

  private bcastAppend(): void {
    if (this.state !== StateRole.Leader) return;
    for (const id of this.tracker.progress.keys()) {
      if (id !== this.id) this.sendAppend(id);
    }
  }

  private sendHeartbeat(to: bigint, ctx: Uint8Array): void {
    const pr = this.tracker.progress.get(to)!;
    // Never tell a follower to commit beyond what it is known to hold.
    const commit = minBig(pr.match, this.log.committed);
    this.send(newMessage({
      msgType: MessageType.MsgHeartbeat,
      to,
      commit,
      context: ctx,
      index: BigInt(this.tickCount),
    }));
  }

  private bcastHeartbeat(ctx: Uint8Array = new Uint8Array(0)): void {
    for (const id of this.tracker.progress.keys()) {
      if (id !== this.id) this.sendHeartbeat(id, ctx);
    }
  }

  /** Sends the appends that proposals deferred. `RawNode` calls it before building a Ready. */
  flushAppends(): void {
    if (!this.appendsPending) return;
    this.appendsPending = false;
    if (this.state !== StateRole.Leader) return;
    for (const id of this.tracker.progress.keys()) {
      if (id === this.id) continue;
      // Stream as much as the follower's flow control allows.
      while (this.maybeSendAppend(id, false)) { /* fill the window */ }
    }
  }

  // ---------------------------------------------------------------------------------------
  // Log

  /** Leader: stamps entries with the term and next indexes and appends them. */
  private appendEntries(es: Entry[]): void {
    let index = this.log.lastIndex();
    for (const e of es) {
      index++;
      e.term = this.term;
      e.index = index;
    }
    this.log.append(es);
    this.tracker.progress.get(this.id)?.maybeUpdate(this.durableIndex());
    this.maybeCommit();
  }

  /**
   * The last index of this node's log it may count as its own copy toward a quorum: the last
   * entry, or with asynchronous persistence the last one reported durable. A leader that
   * counted an entry it has not made durable could commit it on one other copy — a follower
   * might apply it — and lose it in a power loss with the third replica never having it.
   */
  private durableIndex(): bigint {
    return this.log.durableThrough(this.log.lastIndex());
  }

  /**
   * With asynchronous persistence: the entries up to `at.index`, written with term `at.term`,
   * are durable here (`RawNode.onPersisted`). A leader counts them toward a quorum now, and
   * tells the followers what that commits.
   */
  onPersisted(at: { index: bigint; term: bigint }): void {
    this.log.persistedTo(at);
    if (this.state !== StateRole.Leader) return;
    this.tracker.progress.get(this.id)?.maybeUpdate(this.durableIndex());
    if (this.maybeCommit() && this.shouldBcastCommit()) this.bcastAppend();
  }

  /** Whether a commit index that moved is sent to every follower now (`skipBcastCommit`). */
  private shouldBcastCommit(): boolean {
    return !this.skipBcastCommit || this.lastConfigIndex() > this.log.applied;
  }

  /** Leader: advances commit to what a quorum holds (§5.3, §5.4.2). */
  private maybeCommit(): boolean {
    const index = this.tracker.committedIndex();
    const committed = this.log.maybeCommit({
      index,
      term: this.term,
      countPreviousTerms: this.bugs.commitPreviousTermByCount,
    });
    if (committed) this.afterCommitAdvanced();
    return committed;
  }

  private afterCommitAdvanced(): void {
    this.pruneConfigs();
    if (this.state !== StateRole.Leader) return;
    if (this.committedEntryInCurrentTerm() && this.queuedReadIndex.length > 0) {
      const queued = this.queuedReadIndex;
      this.queuedReadIndex = [];
      for (const m of queued) this.handleReadIndex(m);
    }
    // A leader removed from the voters hands over once its removal is committed (thesis §4.2.2).
    if (!this.promotable() && this.lastConfigIndex() <= this.log.committed) {
      this.becomeFollower(this.term, NONE);
    }
  }

  /** True once this leader's log has committed an entry of its own term. */
  committedEntryInCurrentTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  // ---------------------------------------------------------------------------------------
  // Step

  /** Feeds one message to the state machine. Returns an error code for dropped proposals. */
  step(m: Message): StepError | undefined {
    if (m.term === 0n) {
      // Local message (or a forwarded proposal / read); no term logic.
    } else if (m.term > this.term) {
      if (!this.stepHigherTerm(m)) return undefined;
    } else if (m.term < this.term) {
      this.stepLowerTerm(m);
      return undefined;
    }
    switch (m.msgType) {
      case MessageType.MsgHup:
        this.hup(CampaignType.PreElection);
        return undefined;
      case MessageType.MsgRequestVote:
      case MessageType.MsgRequestPreVote:
        this.handleVoteRequest(m);
        return undefined;
      default:
        return this.stepByRole(m);
    }
  }

  /** A message from a higher term. Returns false if it must be ignored. */
  private stepHigherTerm(m: Message): boolean {
    const t = m.msgType;
    if (t === MessageType.MsgRequestVote || t === MessageType.MsgRequestPreVote) {
      const force = isTransferContext(m.context);
      const inLease = this.cfg.checkQuorum &&
        this.leaderContactElapsed < this.cfg.electionTimeoutTicks;
      // Check-quorum (thesis §6.2 / §4.2.3): while we heard from a leader recently, a vote
      // request is from a disruptive node; ignore it without bumping our term.
      if (!force && inLease) return false;
    }
    if (t === MessageType.MsgRequestPreVote) return true; // Pre-votes never change our term.
    if (t === MessageType.MsgRequestPreVoteResponse && !m.reject) return true;
    const fromLeader = t === MessageType.MsgAppend || t === MessageType.MsgHeartbeat ||
      t === MessageType.MsgSnapshot;
    this.becomeFollower(m.term, fromLeader ? m.from : NONE);
    return true;
  }

  private stepLowerTerm(m: Message): void {
    const t = m.msgType;
    if (
      (this.cfg.checkQuorum || this.cfg.preVote) &&
      (t === MessageType.MsgHeartbeat || t === MessageType.MsgAppend)
    ) {
      // With check-quorum or pre-vote, a stale leader may never see a vote request of the new
      // term (they are ignored or never sent); answer it so that it learns the term and steps
      // down instead of lingering.
      this.send(newMessage({ msgType: MessageType.MsgAppendResponse, to: m.from }));
    } else if (t === MessageType.MsgRequestPreVote) {
      this.send(newMessage({
        msgType: MessageType.MsgRequestPreVoteResponse,
        to: m.from,
        term: this.term,
        reject: true,
      }));
    }
    // Everything else from an old term is ignored.
  }

  private handleVoteRequest(m: Message): void {
    const isPreVote = m.msgType === MessageType.MsgRequestPreVote;
    // §5.2: one vote per term; a repeat request from the same candidate gets the same answer.
    const canVote = this.vote === m.from ||
      (this.vote === NONE && this.lead === NONE) ||
      (isPreVote && m.term > this.term) ||
      (this.bugs.doubleVote === true && m.term === this.term && this.state === StateRole.Follower);
    const respType = voteResponseType(m.msgType);
    if (canVote && this.log.isUpToDate({ lastIndex: m.index, lastTerm: m.logTerm })) {
      // Pre-vote grants answer in the proposed term, so the candidate can count them.
      this.send(newMessage({ msgType: respType, to: m.from, term: m.term }));
      if (!isPreVote) {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send(newMessage({ msgType: respType, to: m.from, term: this.term, reject: true }));
    }
  }

  private stepByRole(m: Message): StepError | undefined {
    switch (this.state) {
      case StateRole.Leader:
        return this.stepLeader(m);
      case StateRole.Candidate:
      case StateRole.PreCandidate:
        return this.stepCandidate(m);
      case StateRole.Follower:
        return this.stepFollower(m);
    }
  }

  // ---------------------------------------------------------------------------------------
  // Elections

  /** Starts an election if this node may (`MsgHup`, `MsgTimeoutNow`). */
  hup(type: CampaignType): void {
    if (this.state === StateRole.Leader || !this.promotable()) return;
    if (type === CampaignType.PreElection && !this.cfg.preVote) type = CampaignType.Election;
    this.campaign(type);
  }

  private campaign(type: CampaignType): void {
    let voteMsg: MessageType;
    let term: bigint;
    if (type === CampaignType.PreElection) {
      this.becomePreCandidate();
      voteMsg = MessageType.MsgRequestPreVote;
      term = this.term + 1n;
    } else {
      this.becomeCandidate();
      this.lastCampaign = type;
      voteMsg = MessageType.MsgRequestVote;
      term = this.term;
    }
    if (this.poll(this.id, true) === VoteResult.Won) {
      // A single-voter group wins at once.
      if (type === CampaignType.PreElection) this.campaign(CampaignType.Election);
      else this.becomeLeader();
      return;
    }
    const context = type === CampaignType.Transfer ? CAMPAIGN_TRANSFER_CONTEXT : new Uint8Array(0);
    for (const id of [...this.tracker.voters].sort(compareBig)) {
      if (id === this.id) continue;
      this.send(newMessage({
        msgType: voteMsg,
        to: id,
        term,
        index: this.log.lastIndex(),
        logTerm: this.log.lastTerm(),
        context,
      }));
    }
  }

  private poll(from: bigint, granted: boolean): VoteResult {
    this.tracker.recordVote(from, granted);
    return this.tracker.tallyVotes().result;
  }

  private stepCandidate(m: Message): StepError | undefined {
    const myVoteResp = this.state === StateRole.PreCandidate
      ? MessageType.MsgRequestPreVoteResponse
      : MessageType.MsgRequestVoteResponse;
    switch (m.msgType) {
      case MessageType.MsgPropose:
        return "ProposalDropped";
      case MessageType.MsgAppend:
        this.becomeFollower(m.term, m.from);
        this.handleAppendEntries(m);
        return undefined;
      case MessageType.MsgHeartbeat:
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return undefined;
      case MessageType.MsgSnapshot:
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return undefined;
      case MessageType.MsgTimeoutNow:
        return undefined; // Already campaigning.
      default:
        break;
    }
    if (m.msgType !== myVoteResp) return undefined;
    const result = this.poll(m.from, !m.reject);
    if (result === VoteResult.Won) {
      if (this.state === StateRole.PreCandidate) {
        this.campaign(CampaignType.Election);
      } else {
        this.becomeLeader();
        this.bcastAppend();
      }
    } else if (result === VoteResult.Lost) {
      // A pre-candidate that lost keeps its term; a candidate stays in the new term.
      this.becomeFollower(this.term, NONE);
    }
    return undefined;
  }

  // ---------------------------------------------------------------------------------------
  // Follower

  private stepFollower(m: Message): StepError | undefined {
    switch (m.msgType) {
      case MessageType.MsgPropose:
        if (this.lead === NONE || this.cfg.disableProposalForwarding) return "ProposalDropped";
        this.send({ ...m, to: this.lead });
        return undefined;
      case MessageType.MsgAppend:
        this.heardFromLeader(m.from);
        this.handleAppendEntries(m);
        return undefined;
      case MessageType.MsgHeartbeat:
        this.heardFromLeader(m.from);
        this.handleHeartbeat(m);
        return undefined;
      case MessageType.MsgSnapshot:
        this.heardFromLeader(m.from);
        this.handleSnapshot(m);
        return undefined;
      case MessageType.MsgTransferLeader:
      case MessageType.MsgReadIndex:
        if (this.lead === NONE) return undefined; // Dropped; the caller retries.
        this.send({ ...m, to: this.lead });
        return undefined;
      case MessageType.MsgTimeoutNow:
        // Thesis §3.10: the leader asks us to start an election at once, skipping pre-vote.
        this.hup(CampaignType.Transfer);
        return undefined;
      case MessageType.MsgReadIndexResp:
        assert(m.entries.length === 1, "raft: MsgReadIndexResp must carry one context entry");
        this.readStates.push({ index: m.index, requestCtx: m.entries[0]!.data });
        return undefined;
      default:
        return undefined;
    }
  }

  private heardFromLeader(from: bigint): void {
    this.electionElapsed = 0;
    this.leaderContactElapsed = 0;
    this.lead = from;
  }

  private handleAppendEntries(m: Message): void {
    if (m.index < this.log.committed) {
      this.send(
        newMessage({
          msgType: MessageType.MsgAppendResponse,
          to: m.from,
          index: this.log.committed,
        }),
      );
      return;
    }
    const lastNew = this.log.maybeAppend({
      index: m.index,
      logTerm: m.logTerm,
      committed: m.commit,
      entries: m.entries,
    });
    if (lastNew !== undefined) {
      this.afterCommitAdvanced();
      this.send(newMessage({ msgType: MessageType.MsgAppendResponse, to: m.from, index: lastNew }));
      return;
    }
    // §5.3: reject, with a hint that lets the leader skip a whole term of mismatches.
    const hintIndex = this.log.findConflictByTerm({
      index: minBig(m.index, this.log.lastIndex()),
      term: m.logTerm,
    });
    this.send(newMessage({
      msgType: MessageType.MsgAppendResponse,
      to: m.from,
      index: m.index,
      reject: true,
      rejectHint: hintIndex,
      logTerm: this.log.term(hintIndex) ?? 0n,
    }));
  }

  private handleHeartbeat(m: Message): void {
    this.log.commitTo(m.commit);
    this.afterCommitAdvanced();
    this.send(newMessage({
      msgType: MessageType.MsgHeartbeatResponse,
      to: m.from,
      context: m.context,
      index: m.index,
    }));
  }

  private handleSnapshot(m: Message): void {
    const snap = m.snapshot;
    assert(snap !== undefined, "raft: MsgSnapshot without snapshot");
    const index = this.restore(snap) ? this.log.lastIndex() : this.log.committed;
    this.send(newMessage({ msgType: MessageType.MsgAppendResponse, to: m.from, index }));
  }

  /** Installs a snapshot if it is newer than what we have. Returns true if installed. */
  private restore(snap: Snapshot): boolean {
    const { index, term } = snap.metadata;
    if (index <= this.log.committed) return false;
    assert(this.state === StateRole.Follower, `raft: ${this.state} cannot restore a snapshot`);
    if (this.log.matchTerm({ index, term })) {
      // We already have the entry: just fast-forward the commit (the log beyond stays).
      this.log.commitTo(index);
      this.afterCommitAdvanced();
      return false;
    }
    this.log.restore(snap);
    this.configs = [{ index, confState: snap.metadata.confState }];
    this.applyConfig();
    return true;
  }

  // ---------------------------------------------------------------------------------------
  // Leader

  private stepLeader(m: Message): StepError | undefined {
    switch (m.msgType) {
      case MessageType.MsgBeat:
        this.bcastHeartbeat();
        return undefined;
      case MessageType.MsgCheckQuorum:
        this.checkQuorum();
        return undefined;
      case MessageType.MsgPropose:
        return this.handlePropose(m);
      case MessageType.MsgReadIndex:
        this.stepLeaderReadIndex(m);
        return undefined;
      default:
        break;
    }
    const pr = this.tracker.progress.get(m.from);
    if (pr === undefined) return undefined;
    if (
      m.msgType === MessageType.MsgAppendResponse || m.msgType === MessageType.MsgHeartbeatResponse
    ) {
      pr.recentActive = true;
    }
    switch (m.msgType) {
      case MessageType.MsgAppendResponse:
        this.handleAppendResponse(m);
        break;
      case MessageType.MsgHeartbeatResponse:
        this.handleHeartbeatResponse(m);
        break;
      case MessageType.MsgSnapStatus:
        this.handleSnapStatus(m);
        break;
      case MessageType.MsgUnreachable:
        // The transport could not deliver: stop streaming optimistically.
        if (pr.state === ProgressState.Replicate) pr.becomeProbe();
        break;
      case MessageType.MsgTransferLeader:
        this.handleTransferLeader(m);
        break;
    }
    return undefined;
  }

  private checkQuorum(): void {
    // Thesis §6.2: a leader that has not heard from a quorum within an election timeout
    // steps down, so clients stop waiting on it.
    if (!this.tracker.quorumActive(this.id)) this.becomeFollower(this.term, NONE);
    for (const [id, pr] of this.tracker.progress) pr.recentActive = id === this.id;
  }

  private handlePropose(m: Message): StepError | undefined {
    assert(m.entries.length > 0, "raft: MsgPropose without entries");
    // A leader already removed from the configuration takes no new work.
    if (!this.tracker.progress.has(this.id)) return "ProposalDropped";
    if (this.leadTransferee !== NONE) return "ProposalDropped"; // Thesis §3.10.
    for (const e of m.entries) {
      if (e.entryType === EntryType.EntryConfChangeV2) return "ProposalDropped";
      if (e.entryType !== EntryType.EntryConfChange) continue;
      // Single-step membership: one change at a time, and only after this leader committed
      // an entry of its term (otherwise two leaders' changes can build disjoint majorities).
      if (this.lastConfigIndex() > this.log.committed || !this.committedEntryInCurrentTerm()) {
        return "ProposalDropped";
      }
      if (!this.confChangeKeepsAVoter(e)) return "ProposalDropped";
    }
    if (!this.increaseUncommittedSize(m.entries)) return "ProposalDropped";
    const ents = m.entries.map((e) => ({ ...e }));
    this.appendEntries(ents);
    // Batching: proposals arriving before the next Ready share one MsgAppend per follower.
    this.appendsPending = true;
    return undefined;
  }

  /**
   * Counts `ents` against the uncommitted budget, or refuses them (etcd/raft's
   * `increaseUncommittedSize`). Any proposal is accepted when nothing is outstanding, so that
   * one entry larger than the budget is not refused forever; a proposal without data is always
   * accepted, so that an empty entry can always be appended.
   */
  private increaseUncommittedSize(ents: Entry[]): boolean {
    const size = payloadSizeBytes(ents);
    if (
      this.uncommittedSizeBytes > 0 && size > 0 &&
      this.uncommittedSizeBytes + size > this.cfg.maxUncommittedSizeBytes
    ) {
      return false;
    }
    this.uncommittedSizeBytes += size;
    return true;
  }

  /**
   * Gives back the budget of entries handed out for apply (`RawNode.advance` calls it with a
   * Ready's committed entries). The count may underestimate what is outstanding — entries of
   * earlier terms were never counted — so it stops at zero (etcd/raft's
   * `reduceUncommittedSize`).
   */
  reduceUncommittedSize(ents: Entry[]): void {
    if (this.uncommittedSizeBytes === 0) return; // Followers never count.
    const size = payloadSizeBytes(ents);
    this.uncommittedSizeBytes = Math.max(0, this.uncommittedSizeBytes - size);
  }

  /** The uncommitted budget in use, for tests and status. */
  uncommittedSize(): number {
    return this.uncommittedSizeBytes;
  }

  private confChangeKeepsAVoter(e: Entry): boolean {
    const next = applyConfChangeToConfState(this.currentConfig(), decodeConfChange(e.data));
    return next.voters.length > 0;
  }

  private handleAppendResponse(m: Message): void {
    const pr = this.tracker.progress.get(m.from)!;
    if (m.reject) {
      let nextProbe = m.rejectHint;
      // The follower told us its term at the hint; skip all our entries of later terms.
      if (m.logTerm > 0n) {
        nextProbe = this.log.findConflictByTerm({ index: m.rejectHint, term: m.logTerm });
      }
      if (pr.maybeDecreaseTo({ rejected: m.index, matchHint: nextProbe })) {
        if (pr.state === ProgressState.Replicate) pr.becomeProbe();
        this.sendAppend(m.from);
      }
      return;
    }
    const oldPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index)) return;
    if (pr.state === ProgressState.Probe) {
      pr.becomeReplicate();
    } else if (pr.state === ProgressState.Snapshot && pr.match >= pr.pendingSnapshot) {
      pr.becomeProbe();
      pr.becomeReplicate();
    } else if (pr.state === ProgressState.Replicate) {
      pr.inflights.freeTo(m.index);
    }
    const committed = this.maybeCommit();
    if (committed && this.state !== StateRole.Leader) return;
    if (committed && this.shouldBcastCommit()) this.bcastAppend();
    else if (oldPaused) this.sendAppend(m.from);
    // Fill the in-flight window (batching of appends).
    while (this.maybeSendAppend(m.from, false)) { /* keep sending */ }
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
      this.sendTimeoutNow(m.from);
    }
  }

  private handleHeartbeatResponse(m: Message): void {
    const pr = this.tracker.progress.get(m.from)!;
    if (this.bugs.probeNeverResumes !== true) pr.probeSent = false;
    const sentTick = Number(m.index);
    if (sentTick > pr.ackedHeartbeatSentTick) pr.ackedHeartbeatSentTick = sentTick;
    if (pr.state === ProgressState.Replicate && pr.inflights.full()) pr.inflights.freeFirstOne();
    if (pr.match < this.log.lastIndex()) this.sendAppend(m.from);
    if (this.cfg.readOnlyOption !== ReadOnlyOption.Safe || m.context.length === 0) return;
    const acks = this.readOnly.recvAck(m.from, m.context);
    if (acks === undefined) return;
    let voterAcks = 0;
    for (const id of acks) if (this.tracker.isVoter(id)) voterAcks++;
    if (voterAcks < this.tracker.quorum()) return;
    for (const rs of this.readOnly.advance(m.context)) {
      this.respondToReadIndex(rs.request, rs.index);
    }
  }

  private handleSnapStatus(m: Message): void {
    const pr = this.tracker.progress.get(m.from)!;
    if (pr.state !== ProgressState.Snapshot) return;
    if (m.reject) pr.pendingSnapshot = 0n;
    pr.becomeProbe();
    // Wait for the follower's MsgAppendResponse (or the next heartbeat) before probing again.
    pr.probeSent = true;
  }

  // ---------------------------------------------------------------------------------------
  // Reads

  private stepLeaderReadIndex(m: Message): void {
    if (this.tracker.voters.size === 1 && this.tracker.isVoter(this.id)) {
      this.respondToReadIndex(m, this.log.committed);
      return;
    }
    // Thesis §6.4 step 1: the commit index is only current once an entry of this term committed.
    if (!this.committedEntryInCurrentTerm()) {
      if (this.queuedReadIndex.length < MAX_QUEUED_READ_INDEX_BEFORE_COMMIT) {
        this.queuedReadIndex.push(m);
      }
      return;
    }
    this.handleReadIndex(m);
  }

  private handleReadIndex(m: Message): void {
    assert(m.entries.length === 1, "raft: MsgReadIndex must carry one context entry");
    if (this.cfg.readOnlyOption === ReadOnlyOption.LeaseBased) {
      if (this.leaseValid()) this.respondToReadIndex(m, this.log.committed);
      return; // Outside the lease the read is dropped; the client retries.
    }
    if (this.bugs.readIndexWithoutHeartbeat === true) {
      this.respondToReadIndex(m, this.log.committed);
      return;
    }
    const ctx = m.entries[0]!.data;
    if (!this.readOnly.addRequest(this.log.committed, m, ctx)) return;
    this.readOnly.recvAck(this.id, ctx);
    this.bcastHeartbeat(ctx);
  }

  /** True while a quorum acknowledged a heartbeat recent enough that no other leader exists. */
  leaseValid(): boolean {
    if (this.state !== StateRole.Leader || !this.cfg.checkQuorum) return false;
    if (this.leaseDisabled || this.leadTransferee !== NONE) return false;
    if (!this.committedEntryInCurrentTerm()) return false;
    if (this.bugs.leaseReadWithoutCheck === true) return true;
    const base = this.tracker.quorumAckedHeartbeatTick(this.id, this.tickCount);
    if (base < 0) return false;
    return this.tickCount < base + this.cfg.electionTimeoutTicks - this.cfg.leaseMarginTicks;
  }

  private respondToReadIndex(m: Message, index: bigint): void {
    if (m.from === NONE || m.from === this.id) {
      this.readStates.push({ index, requestCtx: m.entries[0]!.data });
      return;
    }
    this.send(newMessage({
      msgType: MessageType.MsgReadIndexResp,
      to: m.from,
      index,
      entries: m.entries,
    }));
  }

  // ---------------------------------------------------------------------------------------
  // Leadership transfer (thesis §3.10)

  private handleTransferLeader(m: Message): void {
    const transferee = m.from;
    const pr = this.tracker.progress.get(transferee)!;
    if (pr.isLearner || transferee === this.id) return;
    if (this.leadTransferee === transferee) return; // Already under way.
    this.leadTransferee = transferee;
    // The transfer must finish within an election timeout, or it is abandoned.
    this.electionElapsed = 0;
    if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(transferee);
    else this.sendAppend(transferee);
  }

  private sendTimeoutNow(to: bigint): void {
    // The transferee will win an election without waiting for our lease to run out.
    this.leaseDisabled = true;
    this.send(newMessage({ msgType: MessageType.MsgTimeoutNow, to }));
  }
}

/** Data bytes of `ents`, the size etcd/raft's uncommitted budget counts (`PayloadSize`). */
function payloadSizeBytes(ents: Entry[]): number {
  let size = 0;
  for (const e of ents) size += e.data.length;
  return size;
}
