/**
 * A replicated PD member: one of the members of `--initial-cluster`, which replicate PD's state
 * through a Raft group of their own (src/raft), as PD's members do through etcd. Pure: the
 * engine, clock, random source and transport are arguments; the process (src/pd/server/main.ts)
 * ticks it and carries its messages, the tests do the same with a simulated network.
 *
 * Design (the choices, and why):
 * 1. **What is replicated is PD's writes**, not its requests. The core (`PlacementDriver`)
 *    already sends every change of its state through `PdStorage.write` and reads its storage
 *    only when it opens (it keeps the rest in memory). So the leader runs the core over a
 *    storage whose writes become Raft proposals (one entry per flushed batch of writes), and
 *    every member applies committed entries to its copy of PD's state in its engine (keys
 *    `pd/…`, the single member's layout). A leader's in-memory core runs ahead of the log;
 *    an answer leaves only after the writes it depends on committed (`barrier()`, awaited by
 *    the edge as the single member awaits its fsync) — PD answers once etcd has committed.
 * 2. **Only the leader serves**, and only once it is safe: a new leader first applies every
 *    entry up to its own term's first entry (so its state holds everything any earlier leader
 *    committed), then opens the core over that state — which saves a fresh TSO window above the
 *    saved one (src/tso: a new oracle begins above the saved bound) — and serves only when that
 *    window's entry has committed. Every timestamp an earlier leader handed out lay below a
 *    bound that committed before it was handed out, hence below the bound the new leader
 *    loads: no timestamp repeats across a failover. Ids work the same way (`alloc_id` window).
 * 3. **Followers answer no PD request but GetMembers**; the edge refuses the others with
 *    UNAVAILABLE "not leader", naming the leader. PD does the same (`ErrNotLeader`), and TiKV's
 *    clients (and Basalt's, src/client/pd_client.ts) answer it by calling GetMembers and moving
 *    to the leader. Forwarding would add a hop and a second failure mode for no gain: every
 *    client already has the members' list.
 * 4. **Losing leadership drops the core**: its memory may hold writes that never commit. Every
 *    answer still waiting for a commit gets `NotLeader`. A leader that is deposed without
 *    knowing it (a partition) cannot commit, so it cannot hand out a timestamp under a new
 *    window; check-quorum makes it step down within an election timeout.
 * 5. **Catch-up**: a member behind gets the log from the leader; one behind the compacted log
 *    (`PD_RAFT_LOG_COMPACT_ENTRIES` or `_BYTES`) gets a snapshot of PD's whole state (`raft_records.ts`).
 *    Membership is fixed by `--initial-cluster` (no member add or remove yet).
 * 6. **Region writes are soft** (`isSoftBatch`, `storage.ts`): what a region heartbeat writes
 *    is buffered and proposed in batches — when `PD_REGION_WRITES_BATCH_MAX` writes wait, and
 *    at the latest `PD_REGION_WRITES_FLUSH_TICKS` ticks after the first — and `barrier()` does
 *    not wait for them. Measured before (issue 11): one entry per new-region heartbeat cost the
 *    leader ≈3.4 ms of CPU each, a burst of them starved its Raft ticks, and the followers
 *    elected another leader. Any hard write flushes everything buffered before it into the same
 *    entry, so the log keeps the core's write order and a write batch is never split (each
 *    prefix of the log is a state the core was in: regions never overlap in it). A new leader
 *    may miss the last batches: it then knows an older view of a region, or none, without a
 *    leader (`emptyInfo`), which no checker or scheduler acts on until a heartbeat brings the
 *    region's leader and current epoch (and an operator is bound to the epoch it was made at).
 *    Soft writes must not outrun the log: past `PD_RAFT_UNCOMMITTED_MAX_ENTRIES` proposals
 *    waiting for their commit, `barrier()` waits for all of them (back-pressure on the
 *    heartbeat streams, which handle a message after the previous one was answered).
 *
 * 7. **Timestamps leave under the leader lease** (`leaseLapsed`), as PD's leader serves TSO only
 *    while its etcd lease holds. A leader partitioned away keeps its core until check-quorum
 *    deposes it, and the others may elect a leader before that (their election timeouts run
 *    from the last message they had, its check from its last quorum): that leader's window
 *    lies above the old one, so the old leader's timestamps, handed out after the new leader's,
 *    would go back. Raft's lease (ticks since a quorum answered a heartbeat, less a margin, never
 *    a clock that steps) ends before any member may vote for another. Ids need no lease: they
 *    are only unique, and a new leader's id window starts above the old one's.
 *
 * The Ready duties (src/raft/raw_node.ts) are done in `#round`, in order: 1. persist the
 * snapshot, entries and hard state (`MemberLog.persist`, synced when the Ready must); 2. send
 * the messages; 3. install the snapshot into PD's state, apply the committed entries;
 * 4. `advance`. Rounds never overlap (`#pump`).
 *
 * @module
 */
import {
  PD_RAFT_APPLY_MAX_BYTES_PER_READY,
  PD_RAFT_ELECTION_TIMEOUT_TICKS,
  PD_RAFT_HEARTBEAT_INTERVAL_TICKS,
  PD_RAFT_LOG_COMPACT_BYTES,
  PD_RAFT_LOG_COMPACT_ENTRIES,
  PD_RAFT_LOG_KEEP_ENTRIES,
  PD_RAFT_PROPOSAL_MAX_WRITES,
  PD_RAFT_UNCOMMITTED_MAX_ENTRIES,
  PD_REGION_WRITES_BATCH_MAX,
  PD_REGION_WRITES_FLUSH_TICKS,
} from "../constants.ts";
import type { KvEngine } from "../engine/types.ts";
import {
  type Entry,
  EntryType,
  type Message,
  newConfState,
  RawNode,
  type Ready,
  StateRole,
} from "../raft/mod.ts";
import { assert } from "../util/assert.ts";
import { EngineStorage } from "./engine_storage.ts";
import { PdError } from "./errors.ts";
import { MemberLog } from "./member_log.ts";
import { PlacementDriver, type PlacementDriverOptions } from "./placement_driver.ts";
import {
  decodeCommand,
  decodeStateSnapshot,
  encodeCommand,
  encodeStateSnapshot,
} from "./raft_records.ts";
import { isSoftBatch, loadU64, PD_KEYS, type PdStorage, type PdWrite } from "./storage.ts";
import type { Clock, RandomSource } from "./types.ts";

/** Carries a member's Raft messages to the other members; never blocks, may drop. */
export interface MemberTransport {
  send(messages: readonly Message[]): void;
}

/** Where a member logs its role changes. */
export interface MemberLogger {
  info(message: string, fields?: Record<string, unknown>): void;
}

/** How a member is opened. */
export interface PdMemberOptions {
  /** This member's Raft id (non-zero). */
  id: bigint;
  /** Every member's id, this one's included (the group's fixed membership). */
  voters: readonly bigint[];
  /** Holds the Raft log (CF `raft`) and PD's state (CF `default`, keys `pd/…`). */
  engine: KvEngine;
  clock: Clock;
  random: RandomSource;
  transport: MemberTransport;
  /** Options of the core the leader runs. */
  driver?: Omit<PlacementDriverOptions, "storage" | "clock" | "random" | "tsoStore">;
  electionTimeoutTicks?: number;
  heartbeatIntervalTicks?: number;
  /** Log entries past which a snapshot is taken and the log compacted. */
  logCompactEntries?: number;
  /** Bytes of entries appended past which a snapshot is taken and the log compacted. */
  logCompactBytes?: number;
  /** Entries kept behind the snapshot at compaction. */
  logKeepEntries?: number;
  logger?: MemberLogger;
}

/** Where this member stands; only `serving` answers PD requests. */
type Leadership =
  | { kind: "follower" }
  /** Elected: applying everything through its term's first entry before opening the core. */
  | { kind: "catching-up"; term: bigint; untilIndex: bigint }
  /** The core is open; its first writes (the TSO window) must commit before it serves. */
  | { kind: "opening"; term: bigint; driver: PlacementDriver; untilIndex: bigint }
  | { kind: "serving"; term: bigint; driver: PlacementDriver };

interface Waiter {
  term: bigint;
  promise: Promise<PdError | null>;
  resolve(outcome: PdError | null): void;
}

/** A read-only view of a member, for metrics, logs and tests. */
export interface MemberStatus {
  id: bigint;
  role: StateRole;
  term: bigint;
  leaderId: bigint;
  serving: boolean;
  applied: bigint;
  firstIndex: bigint;
  lastIndex: bigint;
  /** Writes the leader's core made that wait to be proposed (soft ones, between flushes). */
  bufferedWrites: number;
}

/** One member of a replicated PD. */
export class PdMember {
  readonly id: bigint;
  readonly voters: readonly bigint[];
  /** PD's state as applied from the log (what a new leader opens the core over). */
  readonly state: EngineStorage;
  readonly #options: PdMemberOptions;
  readonly #log: MemberLog;
  readonly #node: RawNode;
  readonly #proposing: PdStorage;
  #leadership: Leadership = { kind: "follower" };
  #pending: PdWrite[] = [];
  /** Whether `#pending` holds a hard write (one an answer waits for). */
  #pendingHard = false;
  /** Ticks since `#pending` was last empty. */
  #pendingTicks = 0;
  /** Whether the core may read its storage now: only while it opens. */
  #opening = false;
  readonly #waiters = new Map<bigint, Waiter>();
  #lastProposed = 0n;
  /** The index of the last proposal holding a hard write: what `barrier()` waits for. */
  #lastHardProposed = 0n;
  /**
   * Bytes of entry data applied since the last compaction: with batched region writes (design
   * 6) an entry may hold hundreds of KiB, and the log is held in memory, so it is compacted by
   * bytes as well as by entries.
   */
  #appliedBytes = 0;
  #pumping = false;
  #again = false;
  #idle: Array<() => void> = [];

  private constructor(options: PdMemberOptions) {
    assert(options.id !== 0n && options.voters.includes(options.id), "a member is a voter", {
      id: options.id,
    });
    this.id = options.id;
    this.voters = [...options.voters];
    this.#options = options;
    this.state = new EngineStorage({ engine: options.engine });
    this.#log = MemberLog.open({ engine: options.engine, voters: options.voters });
    this.#node = new RawNode({
      id: options.id,
      storage: this.#log,
      electionTimeoutTicks: options.electionTimeoutTicks ?? PD_RAFT_ELECTION_TIMEOUT_TICKS,
      heartbeatIntervalTicks: options.heartbeatIntervalTicks ?? PD_RAFT_HEARTBEAT_INTERVAL_TICKS,
      random: { nextInt: (n) => options.random.int(n) },
      applied: this.#log.applied,
      checkQuorum: true,
      preVote: true,
      // A proposal on a follower is dropped, never forwarded: it was made by a core that no
      // longer leads, whose memory the real leader does not share (design 4).
      disableProposalForwarding: true,
      maxCommittedSizePerReadyBytes: PD_RAFT_APPLY_MAX_BYTES_PER_READY,
    });
    this.#proposing = {
      get: (key) => {
        assert(this.#opening, "PD's core reads its storage only while it opens", { key });
        return this.state.get(key);
      },
      scan: (prefix) => {
        assert(this.#opening, "PD's core reads its storage only while it opens", { prefix });
        return this.state.scan(prefix);
      },
      write: (batch) => this.#buffer(batch),
    };
  }

  /**
   * Opens the member over its engine (a restart replays what the log holds beyond `applied`).
   * Throws, naming the reason, for an engine that holds a single PD's state and no member log:
   * that state is not the group's, and the group would not agree on it.
   */
  static open(options: PdMemberOptions): PdMember {
    const member = new PdMember(options);
    const status = member.status();
    if (status.lastIndex === 0n && status.term === 0n && member.state.scan("").length > 0) {
      throw new Error(
        "the data directory holds the state of a single PD member; a member of several starts " +
          "from an empty data directory and receives the group's state",
      );
    }
    if (options.voters.length === 1) member.#node.campaign();
    member.#kick();
    return member;
  }

  /** The core, while this member serves; `null` otherwise. */
  get driver(): PlacementDriver | null {
    return this.#leadership.kind === "serving" ? this.#leadership.driver : null;
  }

  /** The leader this member knows of (0 for none). */
  get leaderId(): bigint {
    return this.#node.raft.lead;
  }

  /** The cluster id, once the first leader's write of it reached this member; else 0. */
  get clusterId(): bigint {
    const served = this.driver?.clusterId;
    if (served !== undefined) return served;
    return loadU64(this.state, PD_KEYS.clusterId) ?? 0n;
  }

  status(): MemberStatus {
    const raft = this.#node.raft;
    return {
      id: this.id,
      role: raft.state,
      term: raft.term,
      leaderId: raft.lead,
      serving: this.#leadership.kind === "serving",
      applied: this.#log.applied,
      firstIndex: this.#log.firstIndex(),
      lastIndex: this.#log.lastIndex(),
      bufferedWrites: this.#pending.length,
    };
  }

  /** `null` while serving; else the NotLeader refusal, naming the leader's id when known. */
  notServing(): PdError | null {
    if (this.#leadership.kind === "serving") return null;
    const lead = this.#node.raft.lead;
    const why = this.#leadership.kind === "follower"
      ? lead === 0n ? "no leader is known yet" : `the leader is member ${lead}`
      : "this member was just elected and is catching up";
    return new PdError("NotLeader", `not leader: ${why}`);
  }

  /**
   * `null` while this member serves under its leader lease (src/raft's `leaseValid`: a quorum
   * answered a heartbeat it sent less than an election timeout, less a margin, ago), else the
   * NotLeader refusal. A timestamp leaves only then (design 7): a leader cut off from the others
   * keeps serving until check-quorum deposes it, which may be after they elected another, and
   * its window's timestamps lie below the new leader's.
   */
  leaseLapsed(): PdError | null {
    const refused = this.notServing();
    if (refused !== null) return refused;
    if (this.#node.raft.leaseValid()) return null;
    return new PdError(
      "NotLeader",
      "not leader: this member's leader lease lapsed (a quorum has not answered it lately)",
    );
  }

  /** One Raft tick (every `PD_RAFT_TICK_INTERVAL_MS`); proposes region writes due (design 6). */
  tick(): void {
    this.#node.tick();
    if (this.#pending.length > 0 && ++this.#pendingTicks >= PD_REGION_WRITES_FLUSH_TICKS) {
      this.#flush();
    }
    this.#kick();
  }

  /** A message from another member (the edge checked it is addressed to this one). */
  step(message: Message): void {
    assert(message.to === this.id, "a message reaches its addressee", { to: message.to });
    if (!this.voters.includes(message.from)) return; // not of this group: dropped
    this.#node.step(message);
    this.#kick();
  }

  /**
   * Proposes the writes the core made so far when one of them is hard, and answers a promise
   * that settles once every hard write made so far has committed and been applied here:
   * `null`, or `NotLeader` when this member lost leadership first (the writes may or may not
   * have committed). `null` instead of a promise when nothing is outstanding. Soft writes
   * (design 6) are not waited for, unless more than `PD_RAFT_UNCOMMITTED_MAX_ENTRIES`
   * proposals wait for their commit: then the promise waits for every proposal.
   */
  barrier(): Promise<PdError | null> | null {
    if (this.#pendingHard) this.#flush();
    assert(this.#lastHardProposed <= this.#lastProposed, "a hard proposal is a proposal", {
      lastHardProposed: this.#lastHardProposed,
      lastProposed: this.#lastProposed,
    });
    const applied = this.#log.applied;
    const behind = this.#lastProposed - applied > BigInt(PD_RAFT_UNCOMMITTED_MAX_ENTRIES);
    const until = behind ? this.#lastProposed : this.#lastHardProposed;
    if (until <= applied) return null;
    const waiter = this.#waiters.get(until);
    return waiter?.promise ?? Promise.resolve(this.notServing() ?? lostLeadership());
  }

  /** Resolves once no round is running or due (tests and shutdown). */
  settled(): Promise<void> {
    if (!this.#pumping) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  // --- Proposals ---------------------------------------------------------------------------

  #buffer(batch: readonly PdWrite[]): void {
    assert(this.#leadership.kind !== "follower", "only a leader's core writes", {
      leadership: this.#leadership.kind,
    });
    this.#pending.push(...batch);
    if (!isSoftBatch(batch)) this.#pendingHard = true;
    const limit = this.#pendingHard ? PD_RAFT_PROPOSAL_MAX_WRITES : PD_REGION_WRITES_BATCH_MAX;
    if (this.#pending.length >= limit) this.#flush();
  }

  /** Proposes the buffered writes as one entry; a dropped proposal costs the leadership. */
  #flush(): void {
    if (this.#pending.length === 0) return;
    const writes = this.#pending;
    const hard = this.#pendingHard;
    this.#pending = [];
    this.#pendingHard = false;
    this.#pendingTicks = 0;
    const leadership = this.#leadership;
    const raft = this.#node.raft;
    if (leadership.kind === "follower" || raft.state !== StateRole.Leader) {
      return this.#stepDown("its Raft node no longer leads");
    }
    if (this.#node.propose(encodeCommand(writes)) !== undefined) {
      return this.#stepDown("the Raft group dropped its proposal");
    }
    const index = raft.log.lastIndex();
    assert(raft.log.term(index) === leadership.term, "a proposal lands in the leader's term", {
      index,
      term: leadership.term,
    });
    this.#lastProposed = index;
    if (hard) this.#lastHardProposed = index;
    let resolve!: (outcome: PdError | null) => void;
    const promise = new Promise<PdError | null>((done) => resolve = done);
    this.#waiters.set(index, { term: leadership.term, promise, resolve });
    this.#kick();
  }

  /** Drops the core and fails every answer waiting for a commit (design 4). */
  #stepDown(reason: string): void {
    if (this.#leadership.kind !== "follower") {
      this.#options.logger?.info("PD member stops leading", { id: this.id, reason });
    }
    this.#leadership = { kind: "follower" };
    this.#pending = [];
    this.#pendingHard = false;
    this.#pendingTicks = 0;
    this.#lastProposed = 0n;
    this.#lastHardProposed = 0n;
    for (const waiter of this.#waiters.values()) waiter.resolve(lostLeadership());
    this.#waiters.clear();
  }

  // --- The Ready loop ----------------------------------------------------------------------

  #kick(): void {
    if (this.#pumping) {
      this.#again = true;
      return;
    }
    this.#pumping = true;
    // A failure here (the engine, a broken invariant) is not caught: it ends the process.
    void this.#pump();
  }

  async #pump(): Promise<void> {
    try {
      do {
        this.#again = false;
        this.#followRole();
        while (this.#node.hasReady()) {
          await this.#round(this.#node.ready());
          this.#followRole();
        }
        await this.#advanceLeadership();
      } while (this.#again || this.#node.hasReady());
    } finally {
      this.#pumping = false;
      for (const resolve of this.#idle.splice(0)) resolve();
    }
  }

  async #round(ready: Ready): Promise<void> {
    await this.#log.persist(ready); // 1
    if (ready.messages.length > 0) this.#options.transport.send(ready.messages); // 2
    if (ready.snapshot !== undefined) this.#installSnapshot(ready.snapshot.data); // 3
    this.#apply(ready.committedEntries);
    this.#node.advance(ready); // 4
  }

  /** Notices an election won or lost since the last look. */
  #followRole(): void {
    const raft = this.#node.raft;
    const leadership = this.#leadership;
    if (raft.state !== StateRole.Leader) {
      if (leadership.kind !== "follower") this.#stepDown(`it is now ${raft.state}`);
      return;
    }
    if (leadership.kind !== "follower" && leadership.term === raft.term) return;
    if (leadership.kind !== "follower") this.#stepDown(`a new term ${raft.term} began`);
    // The empty entry of the new term is the last one: once applied, so is every entry an
    // earlier leader committed (Raft §5.4, Leader Completeness).
    this.#leadership = { kind: "catching-up", term: raft.term, untilIndex: raft.log.lastIndex() };
    this.#options.logger?.info("PD member elected", { id: this.id, term: raft.term });
  }

  /** Opens the core once caught up; serves once its first writes committed (design 2). */
  async #advanceLeadership(): Promise<void> {
    const leadership = this.#leadership;
    if (leadership.kind === "catching-up" && this.#log.applied >= leadership.untilIndex) {
      this.#opening = true;
      let driver: PlacementDriver;
      try {
        driver = PlacementDriver.open({
          ...this.#options.driver,
          storage: this.#proposing,
          clock: this.#options.clock,
          random: this.#options.random,
        });
      } finally {
        this.#opening = false;
      }
      this.#flush(); // the new TSO window (and the cluster id, the first time)
      if (this.#leadership !== leadership) return; // the proposal was dropped
      assert(
        this.#lastHardProposed > leadership.untilIndex,
        "opening PD's core saves a TSO window",
        { lastProposed: this.#lastHardProposed, untilIndex: leadership.untilIndex },
      );
      this.#leadership = {
        kind: "opening",
        term: leadership.term,
        driver,
        untilIndex: this.#lastProposed,
      };
    } else if (leadership.kind === "opening" && this.#log.applied >= leadership.untilIndex) {
      this.#leadership = { kind: "serving", term: leadership.term, driver: leadership.driver };
      this.#options.logger?.info("PD member serves", {
        id: this.id,
        term: leadership.term,
        clusterId: leadership.driver.clusterId,
      });
    }
    await this.#compactIfLong();
  }

  /** Ready duty 3: the committed entries' writes into PD's state, then the applied index. */
  #apply(entries: readonly Entry[]): void {
    const last = entries[entries.length - 1];
    if (last === undefined) return;
    const writes: PdWrite[] = [];
    for (const entry of entries) {
      if (entry.entryType === EntryType.EntryNormal && entry.data.length > 0) {
        writes.push(...decodeCommand(entry.data));
        this.#appliedBytes += entry.data.length;
      }
    }
    this.state.write(writes);
    this.#log.setApplied(last.index);
    for (const entry of entries) {
      const waiter = this.#waiters.get(entry.index);
      if (waiter === undefined) continue;
      this.#waiters.delete(entry.index);
      // Another term's entry at the index means the proposal was overwritten.
      waiter.resolve(waiter.term === entry.term ? null : lostLeadership());
    }
  }

  /** Replaces PD's state by a snapshot's (a member far behind). */
  #installSnapshot(data: Uint8Array): void {
    const pairs = decodeStateSnapshot(data);
    const keep = new Set(pairs.map(([key]) => key));
    const writes: PdWrite[] = this.state.scan("")
      .filter(([key]) => !keep.has(key))
      .map(([key]) => ({ kind: "delete", key }));
    for (const [key, value] of pairs) writes.push({ kind: "put", key, value });
    this.state.write(writes);
    for (const waiter of this.#waiters.values()) waiter.resolve(lostLeadership());
    this.#waiters.clear();
  }

  async #compactIfLong(): Promise<void> {
    const limit = this.#options.logCompactEntries ?? PD_RAFT_LOG_COMPACT_ENTRIES;
    const bytesLimit = this.#options.logCompactBytes ?? PD_RAFT_LOG_COMPACT_BYTES;
    const long = this.#log.applied - this.#log.firstIndex() + 1n > BigInt(limit);
    if (!long && this.#appliedBytes <= bytesLimit) return;
    this.#appliedBytes = 0;
    await this.#log.compact({
      data: encodeStateSnapshot(this.state.scan("")),
      confState: newConfState({ voters: [...this.voters] }),
      keepEntries: this.#options.logKeepEntries ?? PD_RAFT_LOG_KEEP_ENTRIES,
    });
  }
}

function lostLeadership(): PdError {
  return new PdError(
    "NotLeader",
    "not leader: this member lost leadership before the write committed",
  );
}
