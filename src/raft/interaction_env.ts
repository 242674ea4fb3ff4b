/**
 * The environment behind the datadriven interaction tests (`testdata/*.txt`): a few RawNodes
 * over MemoryStorage, a message queue per node, and commands that drive them by hand.
 *
 * Every step is explicit (nothing happens unless a command says so), so an interaction file
 * reads as a precise script of who sent what to whom. Ready handling follows the Ready
 * contract in `raw_node.ts` exactly: persist, send, apply, advance.
 *
 * @module
 */

import type { CommandArg, TestCase } from "./datadriven.ts";
import { describeEntry, describeHardState, describeMessage } from "./describe.ts";
import { MemoryStorage } from "./memory_storage.ts";
import { ReadOnlyOption, StateRole } from "./raft.ts";
import { RawNode, type Ready, SnapshotStatus } from "./raw_node.ts";
import { applyConfChangeToConfState } from "./tracker.ts";
import {
  ConfChangeType,
  type ConfState,
  decodeConfChange,
  EntryType,
  type Message,
} from "./types.ts";

const ELECTION_TICKS = 10;
const HEARTBEAT_TICKS = 1;

interface EnvNode {
  id: bigint;
  node: RawNode;
  storage: MemoryStorage;
  options: NodeOptions;
  /** The membership as of the applied index (what the state machine knows). */
  appliedConfState: ConfState;
  applied: string[];
}

interface NodeOptions {
  preVote: boolean;
  checkQuorum: boolean;
  lease: boolean;
  maxInflightMsgs: number;
}

/** Hand-driven nodes for interaction tests. */
export class InteractionEnv {
  private readonly nodes = new Map<bigint, EnvNode>();
  private inbox = new Map<bigint, Message[]>();
  private readonly cut = new Set<string>();
  private out: string[] = [];

  /** Runs one datadriven case and returns its output. */
  handle(c: TestCase): string {
    this.out = [];
    const handler = this.commands()[c.command];
    if (handler === undefined) throw new Error(`unknown command ${c.command} (line ${c.line})`);
    handler(c.args);
    return collapseRepeats(this.out).join("\n");
  }

  private commands(): Record<string, (args: CommandArg[]) => void> {
    return {
      "add-nodes": (a) => this.addNodes(a),
      "campaign": (a) => this.node(a).node.campaign(),
      "tick": (a) => this.tick(a),
      "propose": (a) => this.propose(a),
      "propose-conf-change": (a) => this.proposeConfChange(a),
      "read-index": (a) => this.node(a).node.readIndex(new TextEncoder().encode(word(a, 1))),
      "transfer-leadership": (a) => this.node(a).node.transferLeader(BigInt(word(a, 1))),
      "stabilize": () => this.stabilize(),
      "process-ready": (a) => this.processReady(this.node(a)),
      "deliver-msgs": (a) => this.deliverAll(a.length === 0 ? undefined : this.node(a).id),
      "drop-msgs": (a) => this.dropMsgs(a),
      "partition": (a) => this.partition(a),
      "heal": () => this.cut.clear(),
      "raft-state": () => this.raftState(),
      "raft-log": (a) => this.raftLog(this.node(a)),
      "status": (a) => this.status(this.node(a)),
      "compact": (a) => this.compact(a),
      "restart": (a) => this.restart(this.node(a)),
      "report-snapshot": (a) => this.reportSnapshot(a),
    };
  }

  private node(args: CommandArg[]): EnvNode {
    const n = this.nodes.get(BigInt(word(args, 0)));
    if (n === undefined) throw new Error(`no node ${word(args, 0)}`);
    return n;
  }

  private addNodes(args: CommandArg[]): void {
    const count = Number(word(args, 0));
    const voters = (arg(args, "voters") ?? []).map(BigInt);
    const learners = (arg(args, "learners") ?? []).map(BigInt);
    const options: NodeOptions = {
      preVote: flag(args, "prevote"),
      checkQuorum: flag(args, "checkquorum") || flag(args, "lease"),
      lease: flag(args, "lease"),
      maxInflightMsgs: Number(arg(args, "inflight")?.[0] ?? "256"),
    };
    for (let k = 0; k < count; k++) {
      const id = BigInt(this.nodes.size + 1);
      const storage = MemoryStorage.withVoters(voters, learners);
      const n: EnvNode = {
        id,
        storage,
        options,
        node: this.newRawNode(id, storage, options),
        appliedConfState: storage.initialState().confState,
        applied: [],
      };
      this.nodes.set(id, n);
      this.inbox.set(id, []);
    }
  }

  private newRawNode(id: bigint, storage: MemoryStorage, o: NodeOptions): RawNode {
    return new RawNode({
      id,
      storage,
      electionTimeoutTicks: ELECTION_TICKS,
      heartbeatIntervalTicks: HEARTBEAT_TICKS,
      random: { nextInt: () => 0 },
      preVote: o.preVote,
      checkQuorum: o.checkQuorum,
      readOnlyOption: o.lease ? ReadOnlyOption.LeaseBased : ReadOnlyOption.Safe,
      maxInflightMsgs: o.maxInflightMsgs,
      maxSizePerMsgBytes: 64,
    });
  }

  private tick(args: CommandArg[]): void {
    const n = this.node(args);
    const count = Number(word(args, 1) || "1");
    for (let k = 0; k < count; k++) n.node.tick();
  }

  private propose(args: CommandArg[]): void {
    const n = this.node(args);
    const err = n.node.propose(new TextEncoder().encode(word(args, 1)));
    if (err !== undefined) this.out.push(`error: ${err}`);
  }

  private proposeConfChange(args: CommandArg[]): void {
    const n = this.node(args);
    const kinds: Record<string, ConfChangeType> = {
      add: ConfChangeType.AddNode,
      remove: ConfChangeType.RemoveNode,
      learner: ConfChangeType.AddLearnerNode,
    };
    const changeType = kinds[word(args, 1)];
    if (changeType === undefined) throw new Error(`unknown conf change ${word(args, 1)}`);
    const err = n.node.proposeConfChange({
      id: 0n,
      changeType,
      nodeId: BigInt(word(args, 2)),
      context: new Uint8Array(0),
    });
    if (err !== undefined) this.out.push(`error: ${err}`);
  }

  /** Processes Readies and delivers messages until nothing moves. */
  private stabilize(): void {
    for (let round = 0; round < 100; round++) {
      let moved = false;
      for (const n of this.nodes.values()) {
        if (n.node.hasReady()) {
          this.processReady(n);
          moved = true;
        }
      }
      for (const id of this.nodes.keys()) {
        if ((this.inbox.get(id) ?? []).length > 0) {
          this.deliverAll(id);
          moved = true;
        }
      }
      if (!moved) return;
    }
    throw new Error("stabilize: did not settle in 100 rounds");
  }

  /** Carries out the Ready contract for one node, printing what it did. */
  private processReady(n: EnvNode): void {
    if (!n.node.hasReady()) return;
    const rd = n.node.ready();
    const p = `> ${n.id}`;
    if (rd.softState !== undefined) {
      const r = n.node.raft;
      this.out.push(
        `${p} is ${rd.softState.raftState} at term ${r.term} (lead ${rd.softState.lead})`,
      );
    }
    // Duty 1: persist snapshot, entries, hard state.
    if (rd.snapshot !== undefined) {
      n.storage.applySnapshot(rd.snapshot);
      this.out.push(`${p} persists snapshot at ${rd.snapshot.metadata.index}`);
    }
    n.storage.append(rd.entries);
    if (rd.entries.length > 0) {
      this.out.push(`${p} persists ${rd.entries.map(describeEntry).join(", ")}`);
    }
    if (rd.hardState !== undefined) {
      n.storage.setHardState(rd.hardState);
      this.out.push(`${p} persists HardState ${describeHardState(rd.hardState)}`);
    }
    // Duty 2: send.
    for (const m of rd.messages) this.send(m);
    // Duty 3: apply.
    this.apply(n, rd);
    // Duty 4.
    n.node.advance(rd);
  }

  private apply(n: EnvNode, rd: Ready): void {
    if (rd.snapshot !== undefined) {
      n.appliedConfState = rd.snapshot.metadata.confState;
      n.applied = [`snapshot@${rd.snapshot.metadata.index}`];
    }
    for (const e of rd.committedEntries) {
      if (e.entryType === EntryType.EntryConfChange) {
        n.appliedConfState = applyConfChangeToConfState(
          n.appliedConfState,
          decodeConfChange(e.data),
        );
      }
      n.applied.push(describeEntry(e));
    }
    if (rd.committedEntries.length > 0) {
      this.out.push(`> ${n.id} applies ${rd.committedEntries.map(describeEntry).join(", ")}`);
    }
    for (const rs of rd.readStates) {
      this.out.push(
        `> ${n.id} read ${new TextDecoder().decode(rs.requestCtx)} at index ${rs.index}`,
      );
    }
  }

  private send(m: Message): void {
    const inbox = this.inbox.get(m.to);
    if (inbox === undefined) {
      this.out.push(`  ${describeMessage(m)} (no such node, dropped)`);
      return;
    }
    inbox.push(m);
  }

  private deliverAll(to: bigint | undefined): void {
    const ids = to === undefined ? [...this.nodes.keys()] : [to];
    for (const id of ids) {
      const msgs = this.inbox.get(id) ?? [];
      this.inbox.set(id, []);
      const n = this.nodes.get(id)!;
      for (const m of msgs) {
        if (this.cut.has(`${m.from}-${m.to}`)) {
          this.out.push(`  ${describeMessage(m)} (partitioned, dropped)`);
          continue;
        }
        this.out.push(`  ${describeMessage(m)}`);
        const err = n.node.step(m);
        if (err !== undefined) this.out.push(`  error: ${err}`);
      }
    }
  }

  private dropMsgs(args: CommandArg[]): void {
    const n = this.node(args);
    for (const m of this.inbox.get(n.id) ?? []) this.out.push(`  dropped: ${describeMessage(m)}`);
    this.inbox.set(n.id, []);
  }

  /** `partition 1 2 | 3`: cuts every link between the two groups, both ways. */
  private partition(args: CommandArg[]): void {
    const words = args.map((a) => a.key);
    const bar = words.indexOf("|");
    const left = bar < 0 ? words : words.slice(0, bar);
    const right = bar < 0
      ? [...this.nodes.keys()].map(String).filter((x) => !left.includes(x))
      : words.slice(bar + 1);
    for (const a of left) {
      for (const b of right) {
        this.cut.add(`${a}-${b}`);
        this.cut.add(`${b}-${a}`);
      }
    }
  }

  private raftState(): void {
    for (const n of this.nodes.values()) {
      const r = n.node.raft;
      const role = r.tracker.isVoter(n.id)
        ? "Voter"
        : r.tracker.learners.has(n.id)
        ? "Learner"
        : "None";
      this.out.push(`${n.id}: ${r.state} (${role}) Term:${r.term} Lead:${r.lead}`);
    }
  }

  private raftLog(n: EnvNode): void {
    const log = n.node.raft.log;
    const first = log.firstIndex();
    if (first > 1n) this.out.push(`(compacted through ${first - 1n})`);
    for (const e of log.slice({ lo: first, hi: log.lastIndex() + 1n })) {
      this.out.push(describeEntry(e));
    }
    if (log.lastIndex() < first) this.out.push("log is empty");
  }

  private status(n: EnvNode): void {
    const r = n.node.raft;
    this.out.push(
      `${n.id}: ${r.state} term=${r.term} commit=${r.log.committed} applied=${r.log.applied}`,
    );
    if (r.state !== StateRole.Leader) return;
    for (const [id, pr] of [...r.tracker.progress].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      this.out.push(`  ${id}: ${pr.toString()}`);
    }
  }

  /** `compact <id> <index>`: snapshot the state machine at `index` and drop the log before it. */
  private compact(args: CommandArg[]): void {
    const n = this.node(args);
    const index = BigInt(word(args, 1));
    n.storage.createSnapshot({ index, confState: n.appliedConfState, data: new Uint8Array(0) });
    n.storage.compact(index);
    this.out.push(`> ${n.id} compacted through ${index}`);
  }

  /** `restart <id>`: the node loses everything not persisted and recovers from storage. */
  private restart(n: EnvNode): void {
    this.inbox.set(n.id, []);
    const applied = n.storage.snapshot().metadata.index;
    n.node = this.newRawNode(n.id, n.storage, n.options);
    n.appliedConfState = n.storage.initialState().confState;
    n.applied = [];
    this.out.push(`> ${n.id} restarted (applied ${applied})`);
  }

  private reportSnapshot(args: CommandArg[]): void {
    const n = this.node(args);
    const ok = word(args, 2) !== "failure";
    n.node.reportSnapshot(
      BigInt(word(args, 1)),
      ok ? SnapshotStatus.Finish : SnapshotStatus.Failure,
    );
  }

  /** Messages waiting for `id` (for code tests). */
  pending(id: bigint): readonly Message[] {
    return this.inbox.get(id) ?? [];
  }
}

/** Folds runs of identical lines into one line marked `(×N)`, so heartbeat storms stay short. */
function collapseRepeats(lines: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < lines.length;) {
    let j = i;
    while (j < lines.length && lines[j] === lines[i]) j++;
    out.push(j - i > 1 ? `${lines[i]} (×${j - i})` : lines[i]!);
    i = j;
  }
  return out;
}

function word(args: CommandArg[], i: number): string {
  return args[i]?.key ?? "";
}

function arg(args: CommandArg[], key: string): string[] | undefined {
  return args.find((a) => a.key === key)?.values;
}

function flag(args: CommandArg[], key: string): boolean {
  return args.some((a) => a.key === key);
}
