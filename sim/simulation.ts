/**
 * The deterministic cluster simulator (after FoundationDB's simulation and TigerBeetle's VOPR).
 *
 * Several Raft stores and clients run in one isolate on a simulated clock. A seeded PRNG
 * decides everything: election timeouts, message loss/duplication/delay, partitions, crashes,
 * membership changes, leadership transfers and the client workload. The run is a pure function
 * of its seed: the same seed gives the same history, byte for byte (`Trace.digest()`).
 *
 * A run has a fault phase (`steps` events with faults injected), then faults stop: links heal,
 * crashed stores restart, the network calms down, and liveness must follow within a bound (a
 * leader, and a new client write committed). Checkers: Raft safety after every step, the
 * linearizability of the client history at the end, liveness after the faults.
 *
 * @module
 */

import {
  ConfChangeType,
  decodeConfChange,
  describeMessage,
  type Entry,
  EntryType,
  MemoryStorage,
  type Message,
  MessageType,
  RaftAssertionError,
  type RaftTestingBugs,
  SnapshotStatus,
  StateRole,
} from "../src/raft/mod.ts";
import { EventQueue } from "./event_queue.ts";
import { encodeCommand } from "./kv_state_machine.ts";
import { checkLinearizable, type KvOperation } from "./linearizability.ts";
import { CALM_NETWORK, SimNetwork } from "./network.ts";
import { Prng } from "./prng.ts";
import { SafetyChecker } from "./safety_checker.ts";
import { bootstrapDisk, type NodeHooks, type NodeSettings, SimNode } from "./sim_node.ts";
import { Trace } from "./trace.ts";

/** Options of one run. */
export interface SimOptions {
  seed: number;
  /** Events processed in the fault phase. */
  steps: number;
  /** Deliberate Raft bugs (test-only). */
  bugs?: RaftTestingBugs;
  /** Keep every trace line (for the determinism test) instead of the last few hundred. */
  keepFullTrace?: boolean;
  /** Disable fault injection (benchmarks of the simulator itself). */
  noFaults?: boolean;
}

/** Which checker failed. */
export type FailureKind = "safety" | "linearizability" | "liveness" | "assertion";

/** The outcome of one run. */
export interface SimResult {
  seed: number;
  /** The `--steps` the run was asked for (the fault phase). */
  requestedSteps: number;
  ok: boolean;
  failure?: { kind: FailureKind; message: string };
  faults: string[];
  settings: string;
  steps: number;
  simTimeMs: number;
  digest: string;
  trace: string[];
  stats: { writes: number; reads: number; leaders: number; messages: number; ops: number };
}

const TICK_MS = 10;
const CLIENTS = 5;
const KEYS = ["a", "b"];
const CLIENT_RETRY_MS = 300;
const CLIENT_GIVE_UP_MS = 3000;
const LIVENESS_BOUND_MS = 10_000;
const MAX_MEMBERS = 6;

type SimEvent =
  | { kind: "tick"; node: bigint }
  | { kind: "ready"; node: bigint }
  | { kind: "deliver"; msg: Message }
  | { kind: "snapStatus"; from: bigint; to: bigint; ok: boolean }
  | { kind: "unreachable"; from: bigint; to: bigint }
  | { kind: "client"; client: number; opSerial: number }
  | { kind: "fault" }
  | { kind: "restart"; node: bigint }
  | { kind: "heal"; links: [bigint, bigint][]; what: string }
  | { kind: "flap"; from: bigint; to: bigint; untilMs: number; cut: boolean };

interface ClientOp {
  serial: number;
  opId: string;
  kind: "put" | "get";
  key: string;
  value: string | undefined;
  call: number;
  startedMs: number;
  target: bigint;
}

interface Client {
  id: number;
  serial: number;
  op: ClientOp | undefined;
  target: bigint;
}

/** One simulation run. Create, then `run()`. */
export class Simulation {
  private readonly prng: Prng;
  private readonly queue = new EventQueue<SimEvent>();
  private readonly network: SimNetwork;
  private readonly nodes = new Map<bigint, SimNode>();
  private readonly checker = new SafetyChecker();
  private readonly trace: Trace;
  private readonly settings: NodeSettings;
  private readonly clients: Client[] = [];
  private readonly history: KvOperation[] = [];
  private readonly faults: string[] = [];
  private nowMs = 0;
  private logicalClock = 0;
  private faultsActive = true;
  private nextNodeId = 1n;
  private initialVoters = 0;
  /** Range of the gap between two faults; some seeds get a storm of faults. */
  private faultGapMs: [number, number] = [50, 400];
  private livenessFromMs: number | undefined;
  private livenessMet = false;
  private readonly stats = { writes: 0, reads: 0, leaders: 0, messages: 0, ops: 0 };
  private readonly hooks: NodeHooks;
  private readonly lastRole = new Map<bigint, string>();

  /** Prepares a run for `options.seed`. */
  constructor(private readonly options: SimOptions) {
    this.prng = new Prng(options.seed);
    this.network = new SimNetwork(this.prng.fork());
    this.trace = new Trace(300, options.keepFullTrace ?? false);
    const checkQuorum = this.prng.chance(0.7);
    this.settings = {
      electionTimeoutTicks: 10,
      heartbeatIntervalTicks: 2,
      preVote: this.prng.chance(0.6),
      checkQuorum,
      leaseReads: checkQuorum && this.prng.chance(0.5),
      maxInflightMsgs: this.prng.pick([1, 4, 64]),
      maxSizePerMsgBytes: this.prng.pick([1, 100, 400, 1 << 20]),
      compactEveryEntries: this.prng.pick([8, 32, 1000]),
      bugs: options.bugs ?? {},
    };
    if (this.prng.chance(0.3)) this.faultGapMs = [10, 100];
    this.hooks = {
      send: (m) => this.send(m),
      persisted: (opts) => this.checker.persisted(opts),
      applied: (opts) => this.onApplied(opts),
      readReady: (opts) => this.onReadReady(opts),
    };
    this.bootstrap();
  }

  private describeSettings(): string {
    const s = this.settings;
    return `voters=${this.initialVoters} preVote=${s.preVote} checkQuorum=${s.checkQuorum} ` +
      `reads=${s.leaseReads ? "lease" : "readIndex"} inflight=${s.maxInflightMsgs} ` +
      `maxMsgBytes=${s.maxSizePerMsgBytes} compactEvery=${s.compactEveryEntries} ` +
      `faultGapMs=${this.faultGapMs[0]}..${this.faultGapMs[1]}`;
  }

  private bootstrap(): void {
    const voterCount = this.prng.pick([3, 3, 5]);
    this.initialVoters = voterCount;
    const voters: bigint[] = [];
    for (let i = 0; i < voterCount; i++) voters.push(this.nextNodeId++);
    for (const id of voters) this.addNode(id, bootstrapDisk(voters));
    for (let c = 0; c < CLIENTS; c++) {
      this.clients.push({ id: c, serial: 0, op: undefined, target: this.prng.pick(voters) });
      this.queue.push(this.prng.between(0, 50), { kind: "client", client: c, opSerial: 0 });
    }
    if (!this.options.noFaults) this.queue.push(this.prng.between(100, 400), { kind: "fault" });
  }

  private addNode(id: bigint, disk: MemoryStorage): SimNode {
    const n = new SimNode(id, disk, this.settings, this.prng.fork());
    this.nodes.set(id, n);
    this.queue.push(this.nowMs + this.prng.between(1, TICK_MS), { kind: "tick", node: id });
    return n;
  }

  private log(line: string): void {
    this.trace.add(`t=${this.nowMs} ${line}`);
  }

  // ---------------------------------------------------------------------------------------
  // Main loop

  /** Runs the fault phase, then the liveness phase, then the checkers. */
  run(): SimResult {
    let failure: SimResult["failure"];
    let steps = 0;
    try {
      for (; steps < this.options.steps && failure === undefined; steps++) {
        failure = this.step();
      }
      if (failure === undefined) failure = this.settle(() => steps++);
    } catch (e) {
      if (!(e instanceof RaftAssertionError)) throw e;
      failure = { kind: "assertion", message: `${e.message}\n${e.stack ?? ""}` };
    }
    if (failure === undefined) failure = this.checkHistory();
    if (failure !== undefined) {
      this.log(`FAILED (${failure.kind}): ${failure.message.split("\n")[0]}`);
    }
    this.stats.leaders = this.checker.leaders();
    return {
      seed: this.options.seed,
      requestedSteps: this.options.steps,
      ok: failure === undefined,
      failure,
      faults: this.faults,
      settings: this.describeSettings(),
      steps,
      simTimeMs: this.nowMs,
      digest: this.trace.digest(),
      trace: this.trace.tail(),
      stats: this.stats,
    };
  }

  /** Processes one event and checks Raft safety. */
  private step(): SimResult["failure"] {
    const next = this.queue.pop();
    if (next === undefined) return { kind: "liveness", message: "event queue ran dry" };
    this.nowMs = next.time;
    this.dispatch(next.event);
    for (const n of this.nodes.values()) {
      if (n.node === undefined) continue;
      const r = n.node.raft;
      this.checker.observe(r);
      const role = `${r.state}@${r.term}`;
      if (this.lastRole.get(n.id) !== role) {
        this.lastRole.set(n.id, role);
        this.log(`node ${n.id} is ${r.state} at term ${r.term}`);
      }
    }
    const v = this.checker.violation;
    return v === undefined ? undefined : { kind: "safety", message: v };
  }

  /** Stops the faults and waits for liveness within the bound. */
  private settle(countStep: () => void): SimResult["failure"] {
    this.stopFaults();
    this.livenessFromMs = this.nowMs;
    const deadline = this.nowMs + LIVENESS_BOUND_MS;
    while (!this.livenessMet) {
      const failure = this.step();
      countStep();
      if (failure !== undefined) return failure;
      if (this.nowMs > deadline) {
        return {
          kind: "liveness",
          message: `no client write committed within ${LIVENESS_BOUND_MS}ms after faults stopped ` +
            `(leaders: ${this.leaderSummary()})`,
        };
      }
    }
    this.log(
      `liveness: write committed ${this.nowMs - this.livenessFromMs}ms after faults stopped`,
    );
    return undefined;
  }

  private leaderSummary(): string {
    const parts: string[] = [];
    for (const n of this.nodes.values()) {
      const r = n.node?.raft;
      if (r !== undefined) parts.push(`${n.id}:${r.state}@${r.term}`);
    }
    return parts.join(" ");
  }

  private stopFaults(): void {
    this.faultsActive = false;
    this.network.healAll();
    this.network.conditions = { ...CALM_NETWORK };
    for (const n of this.nodes.values()) {
      if (!n.up && !n.tombstoned) this.restartNode(n);
    }
    this.log("faults stopped: links healed, network calm, stores restarted");
  }

  private dispatch(ev: SimEvent): void {
    switch (ev.kind) {
      case "tick":
        return this.onTick(ev.node);
      case "ready":
        return this.onReady(ev.node);
      case "deliver":
        return this.deliver(ev.msg);
      case "snapStatus":
        return this.withNode(
          ev.from,
          (n) =>
            n.node!.reportSnapshot(ev.to, ev.ok ? SnapshotStatus.Finish : SnapshotStatus.Failure),
        );
      case "unreachable":
        return this.withNode(ev.from, (n) => n.node!.reportUnreachable(ev.to));
      case "client":
        return this.onClient(ev.client, ev.opSerial);
      case "fault":
        return this.onFault();
      case "restart":
        return this.onRestart(ev.node);
      case "heal":
        return this.onHeal(ev.links, ev.what);
      case "flap":
        return this.onFlap(ev);
    }
  }

  private withNode(id: bigint, f: (n: SimNode) => void): void {
    const n = this.nodes.get(id);
    if (n === undefined || n.node === undefined) return;
    f(n);
    this.kick(n);
  }

  /** Schedules Ready handling after a short simulated disk latency. */
  private kick(n: SimNode): void {
    if (n.node === undefined || n.readyScheduled || !n.node.hasReady()) return;
    n.readyScheduled = true;
    this.queue.push(this.nowMs + this.prng.between(0, 2), { kind: "ready", node: n.id });
  }

  private onTick(id: bigint): void {
    const n = this.nodes.get(id);
    if (n === undefined || n.tombstoned) return;
    this.queue.push(this.nowMs + TICK_MS, { kind: "tick", node: id });
    if (n.node === undefined) return;
    n.node.tick();
    this.kick(n);
  }

  private onReady(id: bigint): void {
    const n = this.nodes.get(id);
    if (n === undefined || n.node === undefined) return;
    n.readyScheduled = false;
    n.handleReady(this.hooks);
    if (n.node !== undefined) this.kick(n);
  }

  // ---------------------------------------------------------------------------------------
  // Network

  private send(m: Message): void {
    this.stats.messages++;
    const fate = this.network.fate(m.from, m.to);
    if (fate.delaysMs.length === 0) {
      this.log(`lost (${fate.reason}) ${describeMessage(m)}`);
      if (m.msgType === MessageType.MsgSnapshot) {
        this.queue.push(this.nowMs + 50, { kind: "snapStatus", from: m.from, to: m.to, ok: false });
      }
      if (fate.reason === "cut") {
        this.queue.push(this.nowMs + 1, { kind: "unreachable", from: m.from, to: m.to });
      }
      return;
    }
    for (const d of fate.delaysMs) this.queue.push(this.nowMs + d, { kind: "deliver", msg: m });
  }

  private deliver(m: Message): void {
    const n = this.nodes.get(m.to);
    if (n === undefined || n.node === undefined) {
      this.log(`lost (down) ${describeMessage(m)}`);
      return;
    }
    this.log(describeMessage(m));
    n.node.step(m);
    if (m.msgType === MessageType.MsgSnapshot) {
      this.queue.push(this.nowMs + 1, { kind: "snapStatus", from: m.from, to: m.to, ok: true });
    }
    this.kick(n);
  }

  // ---------------------------------------------------------------------------------------
  // Applying and reading

  private onApplied(opts: { node: bigint; entry: Entry; opId: string | undefined }): void {
    const { node, entry: e, opId } = opts;
    this.checker.applied(node, e);
    if (e.entryType === EntryType.EntryConfChange) this.onConfChangeApplied(e);
    if (opId === undefined) return;
    for (const c of this.clients) {
      const op = c.op;
      if (op === undefined || op.kind !== "put" || op.opId !== opId || op.target !== node) continue;
      this.finishOp(c, op.value);
      this.stats.writes++;
      if (this.livenessFromMs !== undefined && op.startedMs >= this.livenessFromMs) {
        this.livenessMet = true;
      }
    }
  }

  private onReadReady(opts: { node: bigint; ctx: string }): void {
    const { node, ctx } = opts;
    for (const c of this.clients) {
      const op = c.op;
      if (op === undefined || op.kind !== "get" || op.opId !== ctx || op.target !== node) continue;
      const value = this.nodes.get(node)!.sm.get(op.key);
      this.finishOp(c, value);
      this.stats.reads++;
    }
  }

  private onConfChangeApplied(e: Entry): void {
    const cc = decodeConfChange(e.data);
    if (cc.changeType !== ConfChangeType.RemoveNode) return;
    const n = this.nodes.get(cc.nodeId);
    if (n === undefined || n.tombstoned) return;
    // A removed store is shut down for good (as a store destroys a removed peer); a later
    // addition always uses a fresh id, so a wiped node never votes twice in a term.
    n.crash();
    n.tombstoned = true;
    this.log(`node ${cc.nodeId} removed and shut down`);
  }

  // ---------------------------------------------------------------------------------------
  // Clients

  private onClient(clientId: number, opSerial: number): void {
    const c = this.clients[clientId]!;
    if (c.op === undefined) {
      if (opSerial === c.serial) this.startOp(c);
      return;
    }
    if (c.op.serial !== opSerial) return; // A stale timer of a finished operation.
    if (this.nowMs - c.op.startedMs >= CLIENT_GIVE_UP_MS) {
      this.abandonOp(c);
      return;
    }
    // Retry at the leader the old target believes in, or anywhere.
    c.target = this.guessLeader(c.op.target);
    this.submit(c, c.op);
  }

  private startOp(c: Client): void {
    const serial = ++c.serial;
    const isPut = this.prng.chance(0.5);
    const key = this.prng.pick(KEYS);
    const opId = `c${c.id}-${serial}`;
    const op: ClientOp = {
      serial,
      opId,
      kind: isPut ? "put" : "get",
      key,
      value: isPut ? opId : undefined,
      call: ++this.logicalClock,
      startedMs: this.nowMs,
      target: c.target,
    };
    c.op = op;
    this.stats.ops++;
    this.log(
      `client ${c.id} invokes ${op.kind} ${key}${isPut ? `=${op.value}` : ""} at node ${op.target}`,
    );
    this.submit(c, op);
  }

  private submit(c: Client, op: ClientOp): void {
    op.target = c.target;
    this.queue.push(this.nowMs + CLIENT_RETRY_MS, {
      kind: "client",
      client: c.id,
      opSerial: op.serial,
    });
    const n = this.nodes.get(op.target);
    if (n === undefined || n.node === undefined) return;
    if (op.kind === "put") {
      const err = n.node.propose(encodeCommand({ opId: op.opId, key: op.key, value: op.value! }));
      if (err !== undefined) c.target = this.guessLeader(op.target);
    } else {
      n.node.readIndex(new TextEncoder().encode(op.opId));
    }
    this.kick(n);
  }

  private guessLeader(from: bigint): bigint {
    const lead = this.nodes.get(from)?.node?.raft.lead;
    const live = [...this.nodes.values()].filter((n) => n.up && !n.tombstoned).map((n) => n.id);
    if (lead !== undefined && lead !== 0n && live.includes(lead)) return lead;
    return live.length > 0 ? this.prng.pick(live) : from;
  }

  private finishOp(c: Client, value: string | undefined): void {
    const op = c.op!;
    const ret = ++this.logicalClock;
    this.history.push({ clientId: c.id, kind: op.kind, key: op.key, value, call: op.call, ret });
    this.log(
      `client ${c.id} ${op.kind} ${op.key} returns ${value ?? "<absent>"} (node ${op.target})`,
    );
    c.op = undefined;
    this.queue.push(this.nowMs + this.prng.between(0, 20), {
      kind: "client",
      client: c.id,
      opSerial: c.serial,
    });
  }

  private abandonOp(c: Client): void {
    const op = c.op!;
    // A write whose outcome is unknown may still take effect at any later time.
    if (op.kind === "put") {
      this.history.push({
        clientId: c.id,
        kind: "put",
        key: op.key,
        value: op.value,
        call: op.call,
        ret: Infinity,
      });
    }
    this.log(`client ${c.id} gives up on ${op.kind} ${op.key}`);
    c.op = undefined;
    c.target = this.guessLeader(op.target);
    this.queue.push(this.nowMs + 1, { kind: "client", client: c.id, opSerial: c.serial });
  }

  private checkHistory(): SimResult["failure"] {
    const history = [...this.history];
    for (const c of this.clients) {
      const op = c.op;
      if (op !== undefined && op.kind === "put") {
        history.push({
          clientId: c.id,
          kind: "put",
          key: op.key,
          value: op.value,
          call: op.call,
          ret: Infinity,
        });
      }
    }
    const r = checkLinearizable(history);
    if (r.ok) return undefined;
    return {
      kind: "linearizability",
      message: `history of key ${r.key} is not linearizable:\n${r.explanation}`,
    };
  }

  // ---------------------------------------------------------------------------------------
  // Faults

  private liveNodes(): SimNode[] {
    return [...this.nodes.values()].filter((n) => !n.tombstoned);
  }

  private fault(desc: string): void {
    this.faults.push(`t=${this.nowMs} ${desc}`);
    this.log(`fault: ${desc}`);
  }

  private onFault(): void {
    if (!this.faultsActive) return;
    this.queue.push(this.nowMs + this.prng.between(50, 400), { kind: "fault" });
    const kinds = [
      "crash",
      "partition",
      "asymmetric",
      "isolate",
      "flap",
      "network",
      "transfer",
      "membership",
    ];
    const kind = this.prng.pick(kinds);
    switch (kind) {
      case "crash":
        return this.faultCrash(this.prng.pick(this.liveNodes().filter((n) => n.up)));
      case "crash-leader":
        return this.faultCrash(this.currentLeader());
      case "partition":
        return this.faultPartition();
      case "asymmetric":
        return this.faultAsymmetric();
      case "isolate":
        return this.faultIsolate();
      case "flap":
        return this.faultFlap();
      case "network":
        return this.faultNetwork();
      case "transfer":
        return this.adminTransfer();
      case "membership":
        return this.adminMembership();
    }
  }

  /** Crashes `n` (a random store, or the leader: leaders dying mid-replication make Figure 8). */
  private faultCrash(n: SimNode | undefined): void {
    const down = this.liveNodes().filter((x) => !x.up).length;
    if (n === undefined || !n.up || down >= 2) return;
    n.crash();
    const after = this.prng.chance(0.5) ? this.prng.between(20, 200) : this.prng.between(200, 1500);
    this.fault(`crash node ${n.id} (restart in ${after}ms)`);
    this.queue.push(this.nowMs + after, { kind: "restart", node: n.id });
  }

  private onRestart(id: bigint): void {
    const n = this.nodes.get(id);
    if (n === undefined || n.up || n.tombstoned) return;
    this.restartNode(n);
  }

  private restartNode(n: SimNode): void {
    n.restart();
    this.log(
      `node ${n.id} restarted from disk (term ${n.node!.raft.term}, commit ${
        n.node!.raft.log.committed
      })`,
    );
  }

  private cutBetween(opts: { a: bigint[]; b: bigint[]; bothWays: boolean }): [bigint, bigint][] {
    const { a, b, bothWays } = opts;
    const links: [bigint, bigint][] = [];
    for (const x of a) {
      for (const y of b) {
        links.push([x, y]);
        if (bothWays) links.push([y, x]);
      }
    }
    for (const [x, y] of links) this.network.cutLink(x, y);
    return links;
  }

  private scheduleHeal(links: [bigint, bigint][], what: string): void {
    this.queue.push(this.nowMs + this.prng.between(100, 2000), { kind: "heal", links, what });
  }

  private onHeal(links: [bigint, bigint][], what: string): void {
    if (!this.faultsActive) return; // Already healed wholesale.
    for (const [x, y] of links) this.network.restoreLink(x, y);
    this.log(`healed: ${what}`);
  }

  private faultPartition(): void {
    const ids = this.liveNodes().map((n) => n.id);
    const left = ids.filter(() => this.prng.chance(0.5));
    const right = ids.filter((id) => !left.includes(id));
    if (left.length === 0 || right.length === 0) return;
    const what = `partition {${left.join(",")}} | {${right.join(",")}}`;
    this.fault(what);
    this.scheduleHeal(this.cutBetween({ a: left, b: right, bothWays: true }), what);
  }

  private faultAsymmetric(): void {
    const ids = this.liveNodes().map((n) => n.id);
    const a = this.prng.pick(ids);
    const others = ids.filter((id) => id !== a);
    const outbound = this.prng.chance(0.5);
    const what = outbound ? `node ${a} cannot send to others` : `node ${a} cannot hear from others`;
    this.fault(`asymmetric: ${what}`);
    const links = outbound
      ? this.cutBetween({ a: [a], b: others, bothWays: false })
      : this.cutBetween({ a: others, b: [a], bothWays: false });
    this.scheduleHeal(links, what);
  }

  private faultIsolate(): void {
    const ids = this.liveNodes().map((n) => n.id);
    const a = this.guessLeader(this.prng.pick(ids));
    const what = `isolate node ${a}`;
    this.fault(what);
    this.scheduleHeal(
      this.cutBetween({ a: [a], b: ids.filter((id) => id !== a), bothWays: true }),
      what,
    );
  }

  private faultFlap(): void {
    const ids = this.liveNodes().map((n) => n.id);
    if (ids.length < 2) return;
    const from = this.prng.pick(ids);
    const to = this.prng.pick(ids.filter((id) => id !== from));
    const untilMs = this.nowMs + this.prng.between(300, 2000);
    this.fault(`flapping link ${from}<->${to} until t=${untilMs}`);
    this.onFlap({ kind: "flap", from, to, untilMs, cut: true });
  }

  private onFlap(ev: Extract<SimEvent, { kind: "flap" }>): void {
    if (!this.faultsActive) return;
    if (ev.cut) {
      this.network.cutLink(ev.from, ev.to);
      this.network.cutLink(ev.to, ev.from);
    } else {
      this.network.restoreLink(ev.from, ev.to);
      this.network.restoreLink(ev.to, ev.from);
    }
    if (!ev.cut && this.nowMs >= ev.untilMs) return;
    this.queue.push(this.nowMs + this.prng.between(20, 150), { ...ev, cut: !ev.cut });
  }

  private faultNetwork(): void {
    const c = {
      dropRate: this.prng.pick([0, 0.01, 0.05, 0.2]),
      duplicateRate: this.prng.pick([0, 0.02, 0.1]),
      minDelayMs: 1,
      maxDelayMs: this.prng.pick([5, 20, 80]),
    };
    this.network.conditions = c;
    this.fault(
      `network: drop ${c.dropRate}, duplicate ${c.duplicateRate}, delay 1..${c.maxDelayMs}ms`,
    );
  }

  private currentLeader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.nodes.values()) {
      const r = n.node?.raft;
      if (r === undefined || r.state !== StateRole.Leader) continue;
      if (best === undefined || r.term > best.node!.raft.term) best = n;
    }
    return best;
  }

  private adminTransfer(): void {
    const leader = this.currentLeader();
    if (leader === undefined) return;
    const voters = [...leader.node!.raft.tracker.voters].filter((id) => id !== leader.id);
    if (voters.length === 0) return;
    const to = this.prng.pick(voters);
    this.fault(`transfer leadership ${leader.id} -> ${to}`);
    leader.node!.transferLeader(to);
    this.kick(leader);
  }

  private adminMembership(): void {
    const leader = this.currentLeader();
    if (leader === undefined) return;
    const cfg = leader.node!.raft.currentConfig();
    const change = this.pickMembershipChange({
      leader: leader.id,
      voters: cfg.voters,
      learners: cfg.learners,
    });
    if (change === undefined) return;
    let fresh: SimNode | undefined;
    if (change.type === ConfChangeType.AddLearnerNode && !this.nodes.has(change.node)) {
      fresh = this.addNode(change.node, new MemoryStorage());
    }
    const err = leader.node!.proposeConfChange({
      id: 0n,
      changeType: change.type,
      nodeId: change.node,
      context: new Uint8Array(0),
    });
    const what = `${ConfChangeType[change.type]} ${change.node} via leader ${leader.id}`;
    if (err !== undefined) {
      if (fresh !== undefined) this.nodes.delete(fresh.id);
      this.log(`membership change refused: ${what}`);
      return;
    }
    this.fault(`membership: ${what}`);
    this.kick(leader);
  }

  private pickMembershipChange(
    opts: { leader: bigint; voters: bigint[]; learners: bigint[] },
  ): { type: ConfChangeType; node: bigint } | undefined {
    const { leader, voters, learners } = opts;
    const learner = learners[0];
    if (learner !== undefined && voters.length < 5) {
      return { type: ConfChangeType.AddNode, node: learner };
    }
    const members = voters.length + learners.length;
    if (learner === undefined && members < MAX_MEMBERS && this.prng.chance(0.5)) {
      return { type: ConfChangeType.AddLearnerNode, node: this.nextNodeId++ };
    }
    if (voters.length > 3) {
      // Removing the leader itself is allowed: it steps down once the change commits.
      const victim = this.prng.chance(0.2) ? leader : this.prng.pick(voters);
      return { type: ConfChangeType.RemoveNode, node: victim };
    }
    return undefined;
  }
}

/** Runs one seed. */
export function runSimulation(options: SimOptions): SimResult {
  return new Simulation(options).run();
}

/** Renders a result for humans: seed, settings, faults, outcome, and on failure the trace. */
export function formatResult(r: SimResult, opts: { verbose?: boolean } = {}): string {
  const lines = [
    `seed ${r.seed}: ${r.ok ? "ok" : `FAILED (${r.failure!.kind})`} — ${r.steps} steps, ` +
    `${r.simTimeMs}ms simulated, ${r.stats.ops} ops (${r.stats.writes} writes, ${r.stats.reads} reads), ` +
    `${r.stats.leaders} leader terms, ${r.stats.messages} messages, history ${r.digest}`,
    `  settings: ${r.settings}`,
    `  faults injected (${r.faults.length}):`,
    ...(opts.verbose || !r.ok
      ? r.faults.map((f) => `    ${f}`)
      : r.faults.length > 0
      ? [`    ${r.faults.slice(0, 5).join("; ")}${r.faults.length > 5 ? "; …" : ""}`]
      : []),
  ];
  if (!r.ok) {
    lines.push(`  failure: ${r.failure!.message}`);
    lines.push(`  last ${r.trace.length} trace lines:`);
    lines.push(...r.trace.map((l) => `    ${l}`));
    lines.push(`  reproduce: deno task sim --seed ${r.seed} --steps ${r.requestedSteps}`);
  }
  return lines.join("\n");
}
