/**
 * The application's handle on a Raft node, and the Ready contract.
 *
 * The core never performs I/O. Instead, whenever `hasReady()` is true the application calls
 * `ready()` and must carry out these duties, in this order, before calling `advance(ready)`:
 *
 *  1. Persist: write `ready.snapshot` (if any), then append `ready.entries` (overwriting any
 *     conflicting suffix), then `ready.hardState` (if any) — atomically, as one durable write
 *     (one WriteBatch and one fsync in the store). A crash after this point must find all of
 *     it; a crash before it may find none of it.
 *  2. Send `ready.messages`. Only after step 1: a message may promise (a vote, an appended
 *     entry) what step 1 made durable. Messages may be dropped, delayed or reordered.
 *  3. Apply: install `ready.snapshot` into the state machine if present, then apply
 *     `ready.committedEntries` in order (conf-change entries included: the core already uses
 *     the new membership; the application records it for its snapshots). Serve the reads of
 *     `ready.readStates` once the applied index reaches each one's `index`.
 *  4. Call `advance(ready)`. Until then, no other `ready()`.
 *
 * With `asyncPersist` (RaftConfig), duty 1 may still be under way at `advance` — the entries
 * written but not yet durable — and the application reports durability with `onPersisted`;
 * then duty 2 holds back the Ready's messages until it is durable (they may promise what it
 * holds), while committed entries are handed out for duty 3 only once durable here, so that
 * applying them never runs ahead of this node's own log.
 *
 * Invariants (asserted): `ready()` is not called again before `advance()`; a Ready's
 * committed entries never go beyond what duty 1 makes durable on this node or a quorum.
 *
 * @module
 */

import { Raft, type RaftConfig, StateRole } from "./raft.ts";
import type { StepError } from "./raft.ts";
import type { ReadState } from "./read_only.ts";
import {
  assert,
  type ConfChange,
  encodeConfChange,
  type Entry,
  EntryType,
  type HardState,
  isLocalMessage,
  type Message,
  MessageType,
  newEntry,
  newMessage,
  type Snapshot,
} from "./types.ts";

/** Volatile state worth reporting when it changes. */
export interface SoftState {
  lead: bigint;
  raftState: StateRole;
}

/** Everything the application must do for the node; see the module header for the order. */
export interface Ready {
  softState: SoftState | undefined;
  hardState: HardState | undefined;
  readStates: ReadState[];
  entries: Entry[];
  snapshot: Snapshot | undefined;
  committedEntries: Entry[];
  messages: Message[];
  /** True if duty 1 must fsync (entries, a vote or a term changed). */
  mustSync: boolean;
}

/** Whether a snapshot sent by the application reached the follower. */
export enum SnapshotStatus {
  Finish = "Finish",
  Failure = "Failure",
}

/** A read-only view of a node, for logs, tests and checkers. */
export interface Status {
  id: bigint;
  hardState: HardState;
  softState: SoftState;
  applied: bigint;
  lastIndex: bigint;
  firstIndex: bigint;
}

function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

/** A Raft node driven by the application: inputs in, Ready out. */
export class RawNode {
  /** The state machine (exposed for tests and checkers; mutate it only through this class). */
  readonly raft: Raft;
  private prevHardState: HardState;
  private prevSoftState: SoftState;
  private pendingReady = false;

  /** A node over `config.storage`. */
  constructor(config: RaftConfig) {
    this.raft = new Raft(config);
    this.prevHardState = this.raft.hardState();
    this.prevSoftState = this.softState();
  }

  private softState(): SoftState {
    return { lead: this.raft.lead, raftState: this.raft.state };
  }

  /** Advances the logical clock by one tick. */
  tick(): void {
    this.raft.tick();
  }

  /** Starts an election now (pre-vote first if configured). */
  campaign(): void {
    this.raft.step(newMessage({ msgType: MessageType.MsgHup, from: this.raft.id }));
  }

  /** Proposes `data` for the log. Returns "ProposalDropped" if this node cannot take it. */
  propose(data: Uint8Array, context: Uint8Array = new Uint8Array(0)): StepError | undefined {
    return this.proposeEntries([newEntry({ term: 0n, index: 0n, data, context })]);
  }

  /** Proposes several entries in one message (one append, one broadcast): batching. */
  proposeEntries(entries: Entry[]): StepError | undefined {
    return this.raft.step(
      newMessage({ msgType: MessageType.MsgPropose, from: this.raft.id, entries }),
    );
  }

  /** Proposes a single-step membership change. */
  proposeConfChange(cc: ConfChange): StepError | undefined {
    const e = newEntry({
      term: 0n,
      index: 0n,
      entryType: EntryType.EntryConfChange,
      data: encodeConfChange(cc),
    });
    return this.proposeEntries([e]);
  }

  /** Feeds a message from a peer. Local message types are refused (they are not for peers). */
  step(m: Message): StepError | undefined {
    assert(!isLocalMessage(m.msgType), `RawNode.step: local message ${MessageType[m.msgType]}`);
    if (m.msgType !== MessageType.MsgPropose && !this.raft.tracker.progress.has(m.from)) {
      // Responses from peers we no longer track are harmless to drop; requests still matter
      // (a node not yet in our config may be the new leader), so only drop responses.
      if (
        m.msgType === MessageType.MsgAppendResponse ||
        m.msgType === MessageType.MsgHeartbeatResponse
      ) {
        return undefined;
      }
    }
    return this.raft.step(m);
  }

  /** Asks for a linearizable read; the answer arrives as a `ReadState` carrying `context`. */
  readIndex(context: Uint8Array): void {
    this.raft.step(newMessage({
      msgType: MessageType.MsgReadIndex,
      entries: [newEntry({ term: 0n, index: 0n, data: context })],
    }));
  }

  /** Asks the leader to hand leadership to `transferee` (thesis §3.10). */
  transferLeader(transferee: bigint): void {
    this.raft.step(newMessage({ msgType: MessageType.MsgTransferLeader, from: transferee }));
  }

  /** The transport could not reach `id`. */
  reportUnreachable(id: bigint): void {
    this.raft.step(newMessage({ msgType: MessageType.MsgUnreachable, from: id }));
  }

  /** The snapshot sent to `id` arrived (Finish) or was lost (Failure). */
  reportSnapshot(id: bigint, status: SnapshotStatus): void {
    this.raft.step(newMessage({
      msgType: MessageType.MsgSnapStatus,
      from: id,
      reject: status === SnapshotStatus.Failure,
    }));
  }

  /** True if `ready()` has anything to do. */
  hasReady(): boolean {
    const r = this.raft;
    r.flushAppends();
    const ss = this.softState();
    return ss.lead !== this.prevSoftState.lead || ss.raftState !== this.prevSoftState.raftState ||
      !hardStateEqual(r.hardState(), this.prevHardState) ||
      r.log.unstable.snapshot !== undefined || r.log.unstableEntries().length > 0 ||
      r.log.hasNextCommittedEntries() || r.msgs.length > 0 || r.readStates.length > 0;
  }

  /** Collects the work for the application. Call `advance(ready)` when it is done. */
  ready(): Ready {
    assert(!this.pendingReady, "RawNode.ready: previous Ready not advanced");
    this.pendingReady = true;
    const r = this.raft;
    r.flushAppends();
    const ss = this.softState();
    const hs = r.hardState();
    const softChanged = ss.lead !== this.prevSoftState.lead ||
      ss.raftState !== this.prevSoftState.raftState;
    const hardChanged = !hardStateEqual(hs, this.prevHardState);
    const entries = r.log.unstableEntries().slice();
    const rd: Ready = {
      softState: softChanged ? ss : undefined,
      hardState: hardChanged ? hs : undefined,
      readStates: r.readStates,
      entries,
      snapshot: r.log.unstable.snapshot,
      committedEntries: r.log.nextCommittedEntries(),
      messages: r.msgs,
      mustSync: entries.length > 0 || hs.term !== this.prevHardState.term ||
        hs.vote !== this.prevHardState.vote,
    };
    r.msgs = [];
    r.readStates = [];
    return rd;
  }

  /** The application finished duties 1–3 for `rd`. */
  advance(rd: Ready): void {
    assert(this.pendingReady, "RawNode.advance without ready");
    this.pendingReady = false;
    const log = this.raft.log;
    if (rd.softState !== undefined) this.prevSoftState = rd.softState;
    if (rd.hardState !== undefined) this.prevHardState = rd.hardState;
    const last = rd.entries[rd.entries.length - 1];
    if (last !== undefined) log.stableTo(last);
    if (rd.snapshot !== undefined) {
      log.stableSnapTo(rd.snapshot.metadata.index);
      if (rd.snapshot.metadata.index > log.applied) log.applied = rd.snapshot.metadata.index;
    }
    const lastApplied = rd.committedEntries[rd.committedEntries.length - 1];
    if (lastApplied !== undefined) log.appliedTo(lastApplied.index);
    this.raft.reduceUncommittedSize(rd.committedEntries);
  }

  /**
   * With `asyncPersist`: the entries up to `at.index`, written with term `at.term` (the last
   * entry of a Ready, or its snapshot), are durable now.
   */
  onPersisted(at: { index: bigint; term: bigint }): void {
    assert(this.raft.log.asyncPersist, "RawNode.onPersisted without asyncPersist");
    this.raft.onPersisted(at);
  }

  /** A snapshot of the node's state. */
  status(): Status {
    const r = this.raft;
    return {
      id: r.id,
      hardState: r.hardState(),
      softState: this.softState(),
      applied: r.log.applied,
      lastIndex: r.log.lastIndex(),
      firstIndex: r.log.firstIndex(),
    };
  }
}
