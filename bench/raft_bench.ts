/**
 * Raft core throughput, with no I/O: committed proposals per second for 3- and 5-node groups
 * whose messages are delivered in memory at once and whose "disk" is MemoryStorage, with and
 * without batching, plus the simulator's own speed in simulated steps per second.
 *
 * "No batching" proposes one entry and runs the group until it is committed everywhere before
 * proposing the next (one round trip per entry). "Batching" proposes `batch` entries (each its
 * own `propose` call, as independent clients would) before running the group, so they travel
 * in one Ready, one MsgAppend per follower and one acknowledgement. The target is ≥ 200k
 * committed entries/s for 3 nodes with batching: the core must never be the store's bottleneck.
 *
 * Run alone: `deno run -A bench/raft_bench.ts`.
 *
 * @module
 */

import { MemoryStorage, type Message, newEntry, RawNode, StateRole } from "../src/raft/mod.ts";
import { testNode } from "../src/raft/testing.ts";
import { runSimulation } from "../sim/simulation.ts";

interface BenchNode {
  raw: RawNode;
  storage: MemoryStorage;
  applied: bigint;
}

/** A group whose network and disk are instantaneous and in memory. */
class InstantGroup {
  readonly nodes = new Map<bigint, BenchNode>();
  private inbox: Message[] = [];
  committedOnLeader = 0;

  constructor(size: number) {
    const voters = Array.from({ length: size }, (_, i) => BigInt(i + 1));
    for (const id of voters) {
      const { node: raw, storage } = testNode(id, voters, { maxInflightMsgs: 256 });
      this.nodes.set(id, { raw, storage, applied: 0n });
    }
    this.nodes.get(1n)!.raw.campaign();
    this.pump();
    if (this.nodes.get(1n)!.raw.raft.state !== StateRole.Leader) {
      throw new Error("bench: no leader");
    }
  }

  /** Handles Readies and delivers messages until the group is quiet. */
  pump(): void {
    for (;;) {
      let moved = false;
      for (const n of this.nodes.values()) {
        if (!n.raw.hasReady()) continue;
        moved = true;
        const rd = n.raw.ready();
        if (rd.snapshot !== undefined) n.storage.applySnapshot(rd.snapshot);
        n.storage.append(rd.entries);
        if (rd.hardState !== undefined) n.storage.setHardState(rd.hardState);
        for (const m of rd.messages) this.inbox.push(m);
        const last = rd.committedEntries[rd.committedEntries.length - 1];
        if (last !== undefined) {
          if (n.raw.raft.id === 1n) this.committedOnLeader += rd.committedEntries.length;
          n.applied = last.index;
        }
        n.raw.advance(rd);
      }
      if (this.inbox.length > 0) {
        moved = true;
        const msgs = this.inbox;
        this.inbox = [];
        for (const m of msgs) this.nodes.get(m.to)!.raw.step(m);
      }
      if (!moved) return;
    }
  }

  /** Drops log entries every node has applied, keeping memory flat during long runs. */
  compact(): void {
    let min: bigint | undefined;
    for (const n of this.nodes.values()) if (min === undefined || n.applied < min) min = n.applied;
    if (min === undefined || min < 1000n) return;
    for (const n of this.nodes.values()) n.storage.compact(min - 100n);
  }
}

interface Row {
  group: string;
  mode: string;
  entries: number;
  seconds: number;
  perSecond: number;
}

function measure(
  opts: { size: number; batch: number; durationMs: number; separateCalls?: boolean },
): Row {
  const g = new InstantGroup(opts.size);
  const leader = g.nodes.get(1n)!.raw;
  const payload = new Uint8Array(16).fill(7);
  const before = g.committedOnLeader;
  const start = performance.now();
  let rounds = 0;
  while (performance.now() - start < opts.durationMs) {
    if (opts.batch === 1 || opts.separateCalls === true) {
      for (let i = 0; i < opts.batch; i++) {
        if (leader.propose(payload) !== undefined) throw new Error("bench: proposal dropped");
      }
    } else {
      const entries = [];
      for (let i = 0; i < opts.batch; i++) {
        entries.push(newEntry({ term: 0n, index: 0n, data: payload }));
      }
      if (leader.proposeEntries(entries) !== undefined) throw new Error("bench: proposal dropped");
    }
    g.pump();
    if (++rounds % 64 === 0) g.compact();
  }
  const seconds = (performance.now() - start) / 1000;
  const entries = g.committedOnLeader - before;
  return {
    group: `${opts.size} nodes`,
    mode: opts.batch === 1
      ? "no batching (1 entry per round trip)"
      : opts.separateCalls === true
      ? `${opts.batch} propose() calls per round`
      : `batching (${opts.batch} entries per MsgPropose)`,
    entries,
    seconds,
    perSecond: entries / seconds,
  };
}

function measureSimulator(opts: { faults: boolean; seeds: number; steps: number }): Row {
  const start = performance.now();
  let steps = 0;
  for (let seed = 1; seed <= opts.seeds; seed++) {
    steps += runSimulation({ seed, steps: opts.steps, noFaults: !opts.faults }).steps;
  }
  const seconds = (performance.now() - start) / 1000;
  return {
    group: "simulator",
    mode: opts.faults ? "with faults + checkers" : "no faults + checkers",
    entries: steps,
    seconds,
    perSecond: steps / seconds,
  };
}

/** Runs the Raft benchmarks and prints a table. */
export async function benchRaft(): Promise<void> {
  const rows: Row[] = [];
  // Warm the JIT so the first measured row is not penalised.
  measure({ size: 3, batch: 256, durationMs: 300, separateCalls: true });
  measure({ size: 3, batch: 1, durationMs: 300 });
  for (const size of [3, 5]) {
    rows.push(measure({ size, batch: 1, durationMs: 1000 }));
    rows.push(measure({ size, batch: 256, durationMs: 1000, separateCalls: true }));
    rows.push(measure({ size, batch: 256, durationMs: 1000 }));
  }
  rows.push(measureSimulator({ faults: true, seeds: 5, steps: 20000 }));
  rows.push(measureSimulator({ faults: false, seeds: 3, steps: 20000 }));
  await Promise.resolve();
  console.log("Raft core (in-memory, no I/O): committed entries/s; simulator: steps/s");
  console.log("| group | mode | count | seconds | per second |");
  console.log("| --- | --- | ---: | ---: | ---: |");
  for (const r of rows) {
    const per = Math.round(r.perSecond).toLocaleString("en-US");
    console.log(`| ${r.group} | ${r.mode} | ${r.entries} | ${r.seconds.toFixed(2)} | ${per} |`);
  }
  const target = rows.find((r) => r.group === "3 nodes" && r.mode.startsWith("batching"))!;
  const verdict = target.perSecond >= 200_000 ? "meets" : "MISSES";
  console.log(
    `3 nodes with batching: ${Math.round(target.perSecond)} entries/s ${verdict} the 200k/s target`,
  );
}

if (import.meta.main) await benchRaft();
