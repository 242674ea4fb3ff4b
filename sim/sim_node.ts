/**
 * One simulated store: a RawNode, its durable disk and its volatile state machine.
 *
 * The disk is a MemoryStorage that survives crashes; everything else (the Raft state machine's
 * memory, including unpersisted entries and unsent messages, the KV state and pending reads)
 * is lost by `crash()`. `restart()` recovers from the disk alone: the KV state from the last
 * snapshot, then the committed log replayed by Raft. Persisting a Ready is atomic (one
 * WriteBatch, one fsync, as the store's raft log writer will do), so a crash either loses a
 * whole Ready or none of it.
 *
 * @module
 */

import {
  ConfChangeType,
  type ConfState,
  encodeConfChange,
  type Entry,
  EntryType,
  MemoryStorage,
  type Message,
  newConfState,
  newEntry,
  type RaftConfig,
  type RaftTestingBugs,
  RawNode,
  ReadOnlyOption,
  type Ready,
} from "../src/raft/mod.ts";
import { KvStateMachine } from "./kv_state_machine.ts";
import type { Prng } from "./prng.ts";

/** Raft settings shared by every node of a simulation. */
export interface NodeSettings {
  electionTimeoutTicks: number;
  heartbeatIntervalTicks: number;
  preVote: boolean;
  checkQuorum: boolean;
  leaseReads: boolean;
  maxInflightMsgs: number;
  maxSizePerMsgBytes: number;
  compactEveryEntries: number;
  bugs: RaftTestingBugs;
}

/** What a node hands back to the simulation while handling a Ready. */
export interface NodeHooks {
  send(m: Message): void;
  persisted(opts: { node: bigint; entries: Entry[]; prevTerm: bigint | undefined }): void;
  applied(opts: { node: bigint; entry: Entry; opId: string | undefined }): void;
  readReady(opts: { node: bigint; ctx: string; index: bigint }): void;
}

/**
 * A disk bootstrapped the way etcd bootstraps: the initial voters are conf-change entries
 * 1..n of term 1, committed, so that a brand-new member replicates its way to the same
 * membership history.
 */
export function bootstrapDisk(voters: bigint[]): MemoryStorage {
  const disk = new MemoryStorage();
  const entries = voters.map((id, i) =>
    newEntry({
      term: 1n,
      index: BigInt(i + 1),
      entryType: EntryType.EntryConfChange,
      data: encodeConfChange({
        id: 0n,
        changeType: ConfChangeType.AddNode,
        nodeId: id,
        context: new Uint8Array(0),
      }),
    })
  );
  disk.append(entries);
  disk.setHardState({ term: 1n, vote: 0n, commit: BigInt(voters.length) });
  return disk;
}

/** A store in the simulation. */
export class SimNode {
  node: RawNode | undefined;
  sm: KvStateMachine = new KvStateMachine(newConfState());
  /** Reads whose ReadState arrived but whose index is not applied yet: ctx → index. */
  private waitingReads = new Map<string, bigint>();
  /** True once removed from the group and shut down for good. */
  tombstoned = false;
  readyScheduled = false;

  /** A node `id` over `disk`, started. */
  constructor(
    readonly id: bigint,
    readonly disk: MemoryStorage,
    private readonly settings: NodeSettings,
    private readonly prng: Prng,
  ) {
    this.restart();
  }

  /** True if the node is running. */
  get up(): boolean {
    return this.node !== undefined;
  }

  /** Loses all volatile state. */
  crash(): void {
    this.node = undefined;
    this.waitingReads = new Map();
    this.readyScheduled = false;
  }

  /** Recovers from the disk. */
  restart(): void {
    const s = this.settings;
    const snap = this.disk.snapshot();
    this.sm = new KvStateMachine(newConfState());
    if (snap.metadata.index > 0n) {
      this.sm.restore({
        data: snap.data,
        index: snap.metadata.index,
        confState: snap.metadata.confState,
      });
    }
    const config: RaftConfig = {
      id: this.id,
      storage: this.disk,
      electionTimeoutTicks: s.electionTimeoutTicks,
      heartbeatIntervalTicks: s.heartbeatIntervalTicks,
      random: this.prng,
      preVote: s.preVote,
      checkQuorum: s.checkQuorum,
      readOnlyOption: s.leaseReads ? ReadOnlyOption.LeaseBased : ReadOnlyOption.Safe,
      maxInflightMsgs: s.maxInflightMsgs,
      maxSizePerMsgBytes: s.maxSizePerMsgBytes,
      applied: snap.metadata.index,
      testingBugs: s.bugs,
    };
    this.node = new RawNode(config);
  }

  /** Carries out one Ready, following the contract in `src/raft/raw_node.ts`. */
  handleReady(hooks: NodeHooks): void {
    const node = this.node;
    if (node === undefined || !node.hasReady()) return;
    const rd = node.ready();
    this.persist(rd, hooks);
    for (const m of rd.messages) hooks.send(m);
    this.apply(rd, hooks);
    node.advance(rd);
    this.maybeCompact();
  }

  /** Duty 1: snapshot, entries, hard state — one atomic write. */
  private persist(rd: Ready, hooks: NodeHooks): void {
    if (rd.snapshot !== undefined) this.disk.applySnapshot(rd.snapshot);
    if (rd.entries.length > 0) {
      this.disk.append(rd.entries);
      const first = rd.entries[0]!.index;
      let prevTerm: bigint | undefined;
      try {
        prevTerm = this.disk.term(first - 1n);
      } catch {
        prevTerm = undefined; // Compacted: nothing to compare against.
      }
      hooks.persisted({ node: this.id, entries: rd.entries, prevTerm });
    }
    if (rd.hardState !== undefined) this.disk.setHardState(rd.hardState);
  }

  /** Duty 3: install the snapshot, apply entries, serve reads that are now applied. */
  private apply(rd: Ready, hooks: NodeHooks): void {
    if (rd.snapshot !== undefined) {
      const md = rd.snapshot.metadata;
      this.sm.restore({ data: rd.snapshot.data, index: md.index, confState: md.confState });
    }
    for (const e of rd.committedEntries) {
      if (e.index <= this.sm.appliedIndex) continue; // Covered by the snapshot just installed.
      const opId = this.sm.apply(e);
      hooks.applied({ node: this.id, entry: e, opId });
    }
    for (const rs of rd.readStates) {
      this.waitingReads.set(new TextDecoder().decode(rs.requestCtx), rs.index);
    }
    for (const [ctx, index] of this.waitingReads) {
      if (index <= this.sm.appliedIndex) {
        this.waitingReads.delete(ctx);
        hooks.readReady({ node: this.id, ctx, index });
      }
    }
  }

  /** Log compaction (Raft §7): snapshot the applied state and drop the log before it. */
  private maybeCompact(): void {
    const applied = this.sm.appliedIndex;
    if (applied - this.disk.firstIndex() < BigInt(this.settings.compactEveryEntries)) return;
    this.disk.createSnapshot({
      index: applied,
      confState: this.sm.confState,
      data: this.sm.snapshot(),
    });
    this.disk.compact(applied);
  }

  /** The membership this node has applied. */
  appliedConfState(): ConfState {
    return this.sm.confState;
  }
}
