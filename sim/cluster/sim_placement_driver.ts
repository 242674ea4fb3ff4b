/**
 * The real Placement Driver (src/pd's `PlacementDriver`, pure) inside the cluster simulator, in
 * place of the oracle's repair and balancing (scheduler.ts) and of sim_pd.ts's TSO and region
 * picture:
 *
 * - **Clock**: the simulated clock (`TICK_MS` a tick, `ROUND_MS` a round) plus an offset that
 *   only grows: PD's clock alone jumps forward now and then (`jump`), so stores look silent,
 *   operators run over their time and the TSO leaps, as on a PD host whose clock steps.
 * - **Stores → PD**, as a real store does (src/server/cluster_join.ts): every live store sends a
 *   store heartbeat every `PD_STORE_HEARTBEAT_TICKS` (its replica count); every replica that
 *   leads its region sends a region heartbeat (the region as applied, the leader, the term, the
 *   pending peers) when any of those changed since its last one, and every
 *   `PD_REGION_HEARTBEAT_TICKS` anyway. PD's links are not cut by the simulated network faults:
 *   a store is silent to PD only while it is down.
 * - **PD → stores**: the answer to a region heartbeat (PD's operator step) goes through the
 *   wire as a real one does — `instructionToProto`, encoded and decoded as a
 *   `pdpb.RegionHeartbeatResponse` — and is carried out on the leader's store as
 *   src/server/worker_raftstore.ts's `operator` does: a ChangePeer or PrepareMerge proposed
 *   through the leader, or a leadership transfer. Nothing else moves replicas: PD's replica
 *   checker repairs (a store lost for good is Down after `SIM_PD_MAX_STORE_DOWN_TIME_MS`),
 *   balance-region and balance-leader spread, the merge checker merges (when the seed sets a
 *   short split-merge-interval).
 * - **Scheduling**: `scheduleRound` every `PD_SCHEDULE_TICKS`; the TSO's tick every tick.
 * - **PD → client**: timestamps (`timestamp`) and region lookups (`client()`, the methods of
 *   src/client's `PdClient` that its `PdRegionSource` calls, answered from PD's region tree as
 *   PD's GetRegion family does).
 *
 * - **Several members** (`members`, sim_pd_members.ts): in a replicated seed the core is not
 *   one `PlacementDriver` but the one of whichever `PdMember` serves. Every caller (each
 *   store, the administrator, the client) talks to the member it believes leads, as
 *   src/client's PdClient does: a member down refuses, a member that does not serve answers
 *   NotLeader naming the leader it knows (`PdMember.notServing`, what the edge of
 *   src/pd/server/replicated.ts answers), and the caller moves there (or to the next member)
 *   for its next call. A call that wrote PD's state is answered only once the writes
 *   committed (`PdMember.barrier`, the edge's `persisted`), and not at all if the member lost
 *   its leadership or crashed first. Each member that serves runs its TSO tick and
 *   scheduling rounds, as its process's timers do (src/pd/server/main.ts) — a deposed leader
 *   that has not noticed yet included. Every store up also asks a timestamp every tick.
 * - **Checked** here: every timestamp handed out (to the client, to the stores) is above every
 *   one handed out before it was asked for — the TSO's promise across failovers, with several
 *   members (with one, above the one before); and, in both kinds of seed, no id PD hands out
 *   (AskBatchSplit's region and peer ids, an operator's new peer) ever means two things.
 *
 * Everything is drawn from seeded sources and walks stores and regions in a fixed order, so a
 * run stays a pure function of its seed.
 *
 * @module
 */

import { metapb, pdpb } from "../../proto/mod.ts";
import { ConfChangeType } from "../../src/raft/mod.ts";
import type { PdRegion } from "../../src/client/pd_client.ts";
import { MemoryEngine } from "../../src/engine/memory_engine.ts";
import { EngineStorage } from "../../src/pd/engine_storage.ts";
import { PdError } from "../../src/pd/errors.ts";
import { simStoreStats } from "../../src/pd/sim_cluster.ts";
import {
  describeOperator,
  type HeartbeatInstruction,
  type Operator,
} from "../../src/pd/operator.ts";
import { type AdminOperatorRequest, PlacementDriver } from "../../src/pd/placement_driver.ts";
import type { ScheduleConfig } from "../../src/pd/config.ts";
import {
  instructionToProto,
  regionFromProto as pdRegionFromProto,
  regionRoute,
  storeToProto,
} from "../../src/pd/server/convert.ts";
import type { Liveness, RegionInfo as PdRegionInfo } from "../../src/pd/types.ts";
import { changePeerCommand, prepareMergeCommand } from "../../src/raftstore/command.ts";
import type { CmdResult } from "../../src/raftstore/apply.ts";
import { describeRegionError } from "../../src/raftstore/errors.ts";
import type { RegionMeta } from "../../src/raftstore/local_state.ts";
import type { Peer } from "../../src/raftstore/peer.ts";
import type { Cluster } from "../../src/raftstore/testing/cluster.ts";
import { operatorOf } from "../../src/server/pd_operator.ts";
import type { RegionOperator } from "../../src/server/worker_raftstore.ts";
import { assert } from "../../src/util/assert.ts";
import type { SeededRandom } from "../../src/util/random.ts";
import { storeAddress } from "./sim_pd.ts";
import type { SimPdMembers } from "./sim_pd_members.ts";
import type { PdMember } from "../../src/pd/pd_member.ts";
import { UnavailableError } from "../../src/client/errors.ts";

/** Ticks between two store heartbeats of a store (STORE_HEARTBEAT_INTERVAL_MS, scaled down). */
export const PD_STORE_HEARTBEAT_TICKS = 10;
/** Ticks between two region heartbeats of an unchanged region's leader. */
export const PD_REGION_HEARTBEAT_TICKS = 20;
/** Ticks between two scheduling rounds. */
export const PD_SCHEDULE_TICKS = 5;
/**
 * PD's `max-store-down-time` in the simulator, ms of PD's clock (210 ticks): as small as PD
 * allows — it must exceed PD_STORE_DISCONNECTED_MS (20 s).
 */
export const SIM_PD_MAX_STORE_DOWN_TIME_MS = 21_000;
/** `split-merge-interval` of seeds whose merge checker runs (100 ticks). */
export const SIM_PD_SPLIT_MERGE_INTERVAL_MS = 10_000;
/**
 * PD's ids start above this: the harness hands out ids from 1000 (`Cluster.allocPeerId`) for the
 * oracle's scheduler, and the two must never meet.
 */
export const SIM_PD_RESERVED_IDS_THROUGH = 1_000_000n;
/** Forward jumps of PD's clock, ms: from a hiccup to more than `max-store-down-time`. */
export const PD_CLOCK_JUMPS_MS = [300, 2_000, 5_000, 12_000, 25_000] as const;
/** Chance per tick of the fault phase that PD's clock jumps. */
export const PD_CLOCK_JUMP_PER_TICK = 0.004;
/** Most proposals of PD's operators awaiting an answer (then older ones are forgotten). */
const MAX_TRACKED_OUTCOMES = 256;
/** With several members: ticks until a first member serves, before the run gives up. */
export const PD_FIRST_LEADER_MAX_TICKS = 200;
/** With several members: attempts of a client's region call before it fails Unavailable. */
export const PD_CLIENT_CALL_ATTEMPTS = 25;
/** With several members: ms between two attempts of a client's region call. */
export const PD_CLIENT_RETRY_MS = 200;
/** Most distinct ids the id checker remembers (a run hands out a few thousand). */
const MAX_CHECKED_IDS = 1_000_000;

/** A caller of PD: each keeps the member it believes leads (`store 2`, `admin`, `client`, …). */
type Caller = string;

/** The core a call reaches, and the member it runs on (none with a single PD). */
interface Reached {
  driver: PlacementDriver;
  member: PdMember | undefined;
  /** The clock of the core reached. */
  nowMs(): number;
}

/** What PD's operators made the stores do, counted when the stores answered. */
export interface SimPdStats {
  regionHeartbeats: number;
  refusedHeartbeats: number;
  operatorsAdded: number;
  operatorsTimedOut: number;
  /** Conf changes PD asked for that applied. */
  confChanges: number;
  /** Leadership transfers PD asked for (started). */
  transfers: number;
  /** PrepareMerges PD asked for that applied. */
  merges: number;
  /** Proposals of PD's steps the stores refused. */
  refusedSteps: number;
  clockJumps: number;
  timestamps: number;
  /** Calls a member refused (down, or not the leader): the caller moved on. */
  notLeader: number;
  /** Answers a member held back and then dropped, having lost its leadership first. */
  lostAnswers: number;
}

/** How the simulated PD is set up. */
export interface SimPdOptions {
  c: Cluster;
  random: SeededRandom;
  /** Voters every region should have (`max-replicas`). */
  voters: number;
  /** The simulated clock's reading, ms (PD adds its own jumps). */
  simNowMs: () => number;
  /** Let PD's merge checker merge small regions (a short split-merge-interval). */
  mergeChecker: boolean;
  trace: (line: string) => void;
  /** Several replicated members in place of one core (sim_pd_members.ts). */
  members?: SimPdMembers;
  /** Deliberate bugs of the edge (test-only). */
  bugs?: SimPdBugs;
}

/** Deliberate bugs of PD's edge, for the checkers to catch (test-only). */
export interface SimPdBugs {
  /**
   * A member answers before the writes the answer depends on committed (the edge skips
   * `persisted`): a timestamp from a TSO window, or ids from an id window, that a crash may
   * undo, so that the next leader hands them out again.
   */
  answerBeforeCommit?: boolean;
  /**
   * A member hands out timestamps whether or not its leader lease holds (the edge skips
   * `leaseLapsed`): one partitioned away, deposed without knowing it, may hand out a timestamp
   * below one the new leader already handed out.
   */
  tsoWithoutLease?: boolean;
}

/** The real PD, fed and obeyed by the harness's stores (module header). */
export class SimPlacementDriver {
  readonly stats: SimPdStats = {
    regionHeartbeats: 0,
    refusedHeartbeats: 0,
    operatorsAdded: 0,
    operatorsTimedOut: 0,
    confChanges: 0,
    transfers: 0,
    merges: 0,
    refusedSteps: 0,
    clockJumps: 0,
    timestamps: 0,
    notLeader: 0,
    lostAnswers: 0,
  };
  /** The one core of a seed with a single PD. */
  readonly #single: PlacementDriver | undefined;
  readonly members: SimPdMembers | undefined;
  readonly #c: Cluster;
  readonly #trace: (line: string) => void;
  readonly #simNowMs: () => number;
  #offsetMs = 0;
  /** Per region: what its last heartbeat told, and when (a tick). */
  readonly #sent = new Map<bigint, { signature: string; tick: number }>();
  /** Store liveness as PD last judged it, for the trace. */
  readonly #liveness = new Map<bigint, Liveness>();
  #outstanding = 0;
  #lastTimestamp = 0n;
  /** Set when PD's TSO handed out a timestamp not above the one before (a checker failure). */
  tsoViolation: string | undefined;
  /** Set when PD handed out an id it had handed out before for something else. */
  idViolation: string | undefined;
  /** With several members: the highest timestamp handed out so far. */
  #highestHandedOut = 0n;
  /** Every id PD handed out, with what it named. */
  readonly #ids = new Map<bigint, string>();
  /** Per caller, the member it believes leads. */
  readonly #routes = new Map<Caller, bigint>();
  readonly #bugs: SimPdBugs;

  private constructor(options: SimPdOptions) {
    this.#c = options.c;
    this.#trace = options.trace;
    this.#simNowMs = options.simNowMs;
    this.members = options.members;
    this.#bugs = options.bugs ?? {};
    if (options.members !== undefined) return;
    this.#single = PlacementDriver.open({
      storage: new EngineStorage({ engine: new MemoryEngine() }),
      clock: { nowMs: () => this.nowMs() },
      random: options.random,
      ...driverOptions(options),
    });
    this.#bootstrap(this.#single);
  }

  /**
   * PD, bootstrapped by the first store and joined by the others. With several members: once
   * a first member serves (no faults yet), through it, its writes committed.
   */
  static async open(options: SimPdOptions): Promise<SimPlacementDriver> {
    const pd = new SimPlacementDriver(options);
    const members = options.members;
    if (members === undefined) return pd;
    for (let t = 0; members.serving().length === 0; t++) {
      assert(t < PD_FIRST_LEADER_MAX_TICKS, "a first PD member serves", { ticks: t });
      await members.tick();
      await members.deliver();
    }
    const leader = members.serving()[0]!;
    pd.#bootstrap(leader.driver!);
    let outcome: PdError | null | undefined;
    leader.barrier()?.then((refused) => outcome = refused);
    for (let t = 0; outcome === undefined && leader.barrier() !== null; t++) {
      assert(t < PD_FIRST_LEADER_MAX_TICKS, "PD's bootstrap commits", { ticks: t });
      await members.tick();
      await members.deliver();
    }
    assert(!(outcome instanceof PdError), "PD's bootstrap commits with no fault");
    return pd;
  }

  /** PD's clock: the simulated one plus every jump so far. */
  nowMs(): number {
    return this.#simNowMs() + this.#offsetMs;
  }

  /** PD's clock steps forward by `ms` (PD only: stores and clients keep the simulated time). */
  jump(ms: number): void {
    assert(ms > 0, "PD's clock jumps forward only", { ms });
    this.#offsetMs += ms;
    this.stats.clockJumps++;
    this.#trace(`pd: clock jumps ${ms} ms forward (offset now ${this.#offsetMs} ms)`);
  }

  /**
   * Bootstraps as the first store does (itself and region 1 with its one peer), then every
   * other store joins (PutStore); region 1's first heartbeat brings its real peers.
   */
  #bootstrap(driver: PlacementDriver): void {
    const c = this.#c;
    const first = c.storeIds[0]!;
    const region = c.initialRegion();
    const own = region.peers.find((p) => p.storeId === first);
    assert(own !== undefined, "the first store holds region 1");
    const refused = driver.bootstrap({
      store: { id: first, address: storeAddress(first) },
      region: pdRegionFromProto({ ...region, peers: [own] }),
    });
    assert(refused === null, `PD refused the bootstrap: ${refused?.message}`);
    for (const id of c.storeIds.slice(1)) {
      const no = driver.putStore({ id, address: storeAddress(id) });
      assert(no === null, `PD refused store ${id}: ${no?.message}`);
    }
    if (this.#single !== undefined) this.step();
  }

  /**
   * The core `caller` reaches now: the single one, or the one of the member it believes leads
   * — or why not (that member is down, or does not serve: the caller moves to the leader the
   * member names, else to the next member, for its next call).
   */
  #reach(caller: Caller): Reached | string {
    if (this.#single !== undefined) {
      return { driver: this.#single, member: undefined, nowMs: () => this.nowMs() };
    }
    const members = this.members!;
    const target = this.#routes.get(caller) ?? members.ids[0]!;
    const next = members.ids[(members.ids.indexOf(target) + 1) % members.ids.length]!;
    const member = members.member(target);
    if (member === undefined) {
      this.#routes.set(caller, next);
      this.stats.notLeader++;
      return `PD member ${target} is down`;
    }
    const refused = member.notServing();
    if (refused === null) {
      return { driver: member.driver!, member, nowMs: () => members.nowMs(target) };
    }
    const lead = member.leaderId;
    this.#routes.set(caller, lead !== 0n && lead !== target ? lead : next);
    this.stats.notLeader++;
    return `PD member ${target}: ${refused.message}`;
  }

  /**
   * Answers a call whose core work is done, as the edge does: at once when nothing it wrote
   * waits for a commit, else once it committed — and never if the member lost its leadership
   * first or crashed (`lost` is told why: the caller's connection reset).
   */
  #answer(
    reached: Reached,
    answer: () => void,
    lost: (why: string) => void = () => {},
  ): void {
    const member = reached.member;
    const barrier = member?.barrier() ?? null;
    if (barrier === null || this.#bugs.answerBeforeCommit === true) return answer();
    const reset = this.members!.crashed(member!).then(() => new PdError("NotLeader", "crashed"));
    Promise.race([barrier, reset]).then((refused) => {
      if (refused === null) return answer();
      this.stats.lostAnswers++;
      lost(`PD member ${member!.id}: ${refused.message}`);
    });
  }

  /**
   * Once per tick, after the stores ticked: heartbeats, their answers, TSO and scheduling. With
   * several members, their Raft tick first (a promise: their rounds run).
   */
  step(): Promise<void> | undefined {
    if (this.members !== undefined) return this.#stepMembers();
    this.#single!.tsoTick();
    this.#heartbeats();
    if (this.#c.ticks % PD_SCHEDULE_TICKS === 0) this.#schedule(this.#single!, this.nowMs());
  }

  /** The end of a round: the members' messages are delivered (several members only). */
  afterRound(): Promise<void> | undefined {
    return this.members?.deliver();
  }

  async #stepMembers(): Promise<void> {
    const members = this.members!;
    await members.tick();
    // Each member that serves runs its process's TSO timer (src/pd/server/main.ts).
    for (const member of members.serving()) {
      member.driver!.tsoTick();
      void member.barrier();
    }
    this.#heartbeats();
    // Every store up asks a timestamp every tick, through its own route to the leader (as a
    // store's PD client does for its TSO needs), so that the check that timestamps never go
    // back across failovers has work in seeds without the bank — and callers that follow
    // different members while two serve at once (a deposed leader that has not noticed).
    for (const id of this.#c.storeIds) {
      if (this.#c.isUp(id)) void this.timestampFromLeader(`store ${id}`);
    }
    if (this.#c.ticks % PD_SCHEDULE_TICKS === 0) {
      for (const member of members.serving()) {
        this.#schedule(member.driver!, members.nowMs(member.id));
        void member.barrier();
      }
    }
    await members.settle();
  }

  #heartbeats(): void {
    const c = this.#c;
    for (const [i, id] of c.storeIds.entries()) {
      if (c.isUp(id) && (c.ticks + i) % PD_STORE_HEARTBEAT_TICKS === 0) this.#storeHeartbeat(id);
    }
    for (const id of c.storeIds) {
      if (!c.isUp(id)) continue;
      for (const peer of c.store(id).peers()) {
        if (peer.isLeader() && peer.isInitialized() && !peer.destroyed) this.#maybeHeartbeat(peer);
      }
    }
  }

  #storeHeartbeat(storeId: bigint): void {
    const regionCount = this.#c.store(storeId).peers().filter((p) => !p.destroyed).length;
    const reached = this.#reach(`store ${storeId}`);
    if (typeof reached === "string") return; // the next one goes to the leader
    const answer = reached.driver.storeHeartbeat(storeId, simStoreStats(regionCount));
    assert(!(answer instanceof PdError), `PD refused store ${storeId}'s heartbeat`, {
      message: answer instanceof PdError ? answer.message : "",
    });
    if (reached.member !== undefined) void reached.member.barrier();
  }

  /** A region heartbeat from `peer` (a leader) if its region changed or it is due. */
  #maybeHeartbeat(peer: Peer): void {
    const region = peer.region();
    const pending = peer.pendingPeers().map((p) => p.id);
    const epoch = region.regionEpoch;
    const signature = `${peer.meta.id}/${peer.raw.raft.term}/${epoch.version}/${epoch.confVer}/` +
      pending.join(",");
    const last = this.#sent.get(region.id);
    const due = last === undefined || last.signature !== signature ||
      this.#c.ticks - last.tick >= PD_REGION_HEARTBEAT_TICKS;
    if (!due) return;
    const reached = this.#reach(`store ${peer.meta.storeId}`);
    if (typeof reached === "string") return; // sent again next tick, to the leader
    this.#sent.set(region.id, { signature, tick: this.#c.ticks });
    const meta = pdRegionFromProto(region);
    const leader = meta.peers.find((p) => p.id === peer.meta.id);
    assert(leader !== undefined, "a leader is among its region's peers", { regionId: region.id });
    this.stats.regionHeartbeats++;
    const pd = reached.driver;
    const op = pd.controller.get(region.id, reached.nowMs());
    const running = op?.status === "RUNNING" ? op : null;
    const answer = pd.regionHeartbeat({
      region: meta,
      leader,
      term: peer.raw.raft.term,
      pendingPeers: meta.peers.filter((p) => pending.includes(p.id)),
    });
    this.#traceEnded(running);
    if (answer instanceof PdError) {
      this.stats.refusedHeartbeats++;
      this.#trace(
        `pd: refused region ${region.id}'s heartbeat from store ` +
          `${peer.meta.storeId}: ${answer.code}`,
      );
      return;
    }
    if (answer === null) return;
    this.#answer(reached, () => this.#carryOut(peer, answer));
  }

  /**
   * Traces how the operator that was running before a heartbeat ended, if the heartbeat ended
   * it (success, or a cancel: a stale epoch, a step that can no longer be done), so a trace
   * shows why a region's repair stopped.
   */
  #traceEnded(op: Operator | null): void {
    if (op === null || op.status === "RUNNING") return;
    this.#trace(`pd: operator ended: ${describeOperator(op)}`);
  }

  /**
   * PD's answer, through the wire as a store receives it, carried out as the store's worker
   * does (`WorkerRaftstore.operator`).
   */
  #carryOut(peer: Peer, instruction: HeartbeatInstruction): void {
    const bytes = pdpb.RegionHeartbeatResponse.encode(instructionToProto(instruction)).finish();
    const op = operatorOf(pdpb.RegionHeartbeatResponse.decode(bytes));
    const storeId = peer.meta.storeId;
    const regionId = peer.regionId;
    if (op === null) return;
    const what = `region ${regionId} ${describeRegionOperator(op)} via store ${storeId}`;
    this.#trace(`pd: ${what}`);
    if (op.changePeer !== undefined && op.changePeer.changeType !== ConfChangeType.RemoveNode) {
      this.#checkId(op.changePeer.peer.id, `a peer of region ${regionId}`);
    }
    if (peer.destroyed) return this.#trace(`pd: ${what}: the replica is gone`);
    const store = this.#c.store(storeId);
    if (!peer.isLeader()) return this.#trace(`pd: ${what}: not the leader here`);
    if (op.transferLeader !== undefined) {
      store.transferLeader(regionId, op.transferLeader.peerId);
      this.stats.transfers++;
      return;
    }
    const cmd = op.merge !== undefined
      ? prepareMergeCommand(peer, { minIndex: peer.mergeMinIndex(), target: op.merge.target })
      : changePeerCommand(peer, op.changePeer!);
    if (this.#outstanding >= MAX_TRACKED_OUTCOMES) return;
    this.#outstanding++;
    store.propose(regionId, cmd, (result) => {
      this.#outstanding--;
      this.#settled(what, op, result);
    });
  }

  #settled(what: string, op: RegionOperator, result: CmdResult): void {
    if (!result.ok) {
      this.stats.refusedSteps++;
      this.#trace(`pd: ${what}: ${describeRegionError(result.error)}`);
      return;
    }
    if (op.merge !== undefined) this.stats.merges++;
    else this.stats.confChanges++;
    this.#trace(`pd: ${what}: ${op.merge !== undefined ? "merge prepared" : "applied"}`);
  }

  #schedule(pd: PlacementDriver, nowMs: number): void {
    for (const store of pd.cluster.stores({ excludeTombstone: true })) {
      const liveness = pd.cluster.liveness(store, nowMs);
      const before = this.#liveness.get(store.meta.id) ?? "Up";
      if (liveness !== before) this.#trace(`pd: store ${store.meta.id} is ${liveness}`);
      this.#liveness.set(store.meta.id, liveness);
    }
    const round = pd.scheduleRound();
    for (const op of round.added) this.#trace(`pd: operator ${describeOperator(op)}`);
    for (const op of round.timedOut) this.#trace(`pd: timed out: ${describeOperator(op)}`);
    for (const op of round.cancelled) {
      this.#trace(`pd: cancelled: ${describeOperator(op)} (${op.reason})`);
    }
    this.stats.operatorsAdded += round.added.length;
    this.stats.operatorsTimedOut += round.timedOut.length;
  }

  // --- Admin requests (the scheduler's random actions) -------------------------------------

  /** `ctl operator add …`; the trace tells what PD made of it. */
  addOperator(request: AdminOperatorRequest): boolean {
    const asked = JSON.stringify(request, (_k, v) => typeof v === "bigint" ? String(v) : v);
    const reached = this.#reach("admin");
    if (typeof reached === "string") {
      this.#trace(`admin pd operator ${asked}: refused (${reached})`);
      return false;
    }
    const op = reached.driver.addOperator(request);
    if (reached.member !== undefined) void reached.member.barrier();
    if (op instanceof PdError) {
      this.#trace(`admin pd operator ${asked}: refused (${op.code})`);
      return false;
    }
    this.stats.operatorsAdded++;
    this.#trace(`admin pd operator: ${describeOperator(op)}`);
    return true;
  }

  /**
   * AskBatchSplit for one split of `region` (as its leader holds it): the ids, or why not. With
   * several members the answer may wait for the commit of a new id window (a promise).
   */
  askSplitIds(region: RegionMeta): SplitIds | string | Promise<SplitIds | string> {
    const reached = this.#reach(`store ${this.#c.leader(region.id)?.meta.storeId ?? "?"}`);
    if (typeof reached === "string") return reached;
    const ids = reached.driver.askBatchSplit({
      region: pdRegionFromProto(region),
      splitCount: 1,
    });
    if (ids instanceof PdError) return `${ids.code}: ${ids.message}`;
    const handOut = (): SplitIds => {
      const split = ids[0]!;
      this.#checkId(split.newRegionId, `region ${split.newRegionId} (split from ${region.id})`);
      // A split's learner keeps its id when PD promotes it: the meaning names no store.
      for (const id of split.newPeerIds) this.#checkId(id, `a peer of region ${split.newRegionId}`);
      return split;
    };
    if (reached.member === undefined) return handOut();
    return new Promise((resolve) => {
      this.#answer(reached, () => resolve(handOut()), (why) => resolve(why));
    });
  }

  /** ReportBatchSplit of a split's answer (the regions it made, in key order). */
  reportSplit(regions: readonly RegionMeta[], storeId: bigint): void {
    const reached = this.#reach(`store ${storeId}`);
    if (typeof reached === "string") return this.#trace(`pd: split report refused: ${reached}`);
    const refused = reached.driver.reportBatchSplit(regions.map((r) => pdRegionFromProto(r)));
    if (refused !== null) this.#trace(`pd: split report refused: ${refused.message}`);
    if (reached.member !== undefined) void reached.member.barrier();
  }

  /**
   * Records that PD handed out `id` as `what`; the same id naming something else is a bug (a
   * new region's id is handed out once; a peer's again only for the same region's operators).
   */
  #checkId(id: bigint, what: string): void {
    const before = this.#ids.get(id);
    if (before === undefined) {
      if (this.#ids.size < MAX_CHECKED_IDS) this.#ids.set(id, what);
      return;
    }
    if (before === what || this.idViolation !== undefined) return;
    this.idViolation = `PD handed out id ${id} twice: as ${before}, then as ${what}`;
  }

  // --- PD → client ---------------------------------------------------------------------------

  /**
   * One timestamp, for `caller`, from the TSO of the member it believes leads: `null` when that
   * member does not serve or loses its leadership before its window committed (the caller
   * retries). A checker records one not above every timestamp handed out before it was asked.
   */
  timestampFromLeader(caller: Caller): Promise<bigint | null> {
    const floor = this.#highestHandedOut;
    const reached = this.#reach(caller);
    if (typeof reached === "string") return Promise.resolve(null);
    const batch = reached.driver.tso(1);
    if (batch instanceof PdError) return Promise.resolve(null);
    return new Promise((resolve) => {
      const handOut = () => {
        // As the edge: a timestamp leaves only under the leader lease (`PdMember.leaseLapsed`).
        if (reached.member !== undefined && this.#bugs.tsoWithoutLease !== true) {
          const lapsed = reached.member.leaseLapsed();
          if (lapsed !== null) {
            this.stats.lostAnswers++;
            return resolve(null);
          }
        }
        this.stats.timestamps++;
        if (batch.last <= floor && this.tsoViolation === undefined) {
          this.tsoViolation = `PD's TSO went back: member ${reached.member?.id} handed ` +
            `${caller} ${batch.last}, not above ${floor} handed out before it was asked`;
        }
        if (batch.last > this.#highestHandedOut) this.#highestHandedOut = batch.last;
        resolve(batch.last);
      };
      this.#answer(reached, handOut, () => resolve(null));
    });
  }

  /** One timestamp from PD's TSO (a checker records one that does not increase). */
  timestamp(): bigint {
    const pd = this.#single;
    assert(pd !== undefined, "a timestamp at once only from a single PD");
    const batch = pd.tso(1);
    assert(!(batch instanceof PdError), "PD's TSO answers", {
      message: batch instanceof PdError ? batch.message : "",
    });
    this.stats.timestamps++;
    if (batch.last <= this.#lastTimestamp && this.tsoViolation === undefined) {
      this.tsoViolation = `PD's TSO went back: ${batch.last} after ${this.#lastTimestamp}`;
    }
    if (batch.last > this.#lastTimestamp) this.#lastTimestamp = batch.last;
    return batch.last;
  }

  /**
   * The calls src/client's `PdRegionSource` makes of its `PdClient`, answered from PD's region
   * tree as PD's gRPC service answers them.
   */
  client(sleep: (ms: number) => Promise<void>): SimPdClient {
    if (this.#single === undefined) return this.#replicatedClient(sleep);
    const pd = this.#single;
    const route = (info: PdRegionInfo | null | PdError): PdRegion | null => {
      if (info instanceof PdError) throw new Error(`PD: ${info.message}`);
      return info === null ? null : regionRoute(info);
    };
    return {
      getRegion: (key) => Promise.resolve(route(pd.getRegion(key))),
      getPrevRegion: (key) => Promise.resolve(route(pd.getPrevRegion(key))),
      getRegionById: (id) => Promise.resolve(route(pd.getRegionById(id))),
      scanRegions: (range) => {
        const found = pd.scanRegions(range);
        if (found instanceof PdError) throw new Error(`PD: ${found.message}`);
        return Promise.resolve(found.map((info) => regionRoute(info)));
      },
      getStore: (storeId) => {
        const store = pd.getStore(storeId);
        if (store instanceof PdError) return Promise.reject(new Error(`PD: ${store.message}`));
        return Promise.resolve(metapb.Store.create(storeToProto(store.meta)));
      },
      close: () => {},
    };
  }

  /**
   * The client's calls with several members: each goes to the member the client believes
   * leads; refused, it waits `PD_CLIENT_RETRY_MS` and tries where the refusal pointed, up to
   * `PD_CLIENT_CALL_ATTEMPTS` times, then fails Unavailable (a client error) — PdClient's
   * leader-following retry loop. Reads write nothing, so they answer at once.
   */
  #replicatedClient(sleep: (ms: number) => Promise<void>): SimPdClient {
    const call = async <T>(what: string, work: (pd: PlacementDriver) => T): Promise<T> => {
      let why = "";
      for (let attempt = 0; attempt < PD_CLIENT_CALL_ATTEMPTS; attempt++) {
        const reached = this.#reach("client");
        if (typeof reached !== "string") return work(reached.driver);
        why = reached;
        await sleep(PD_CLIENT_RETRY_MS);
      }
      throw new UnavailableError(`PD ${what}: ${why}`, { sent: false });
    };
    const route = (info: PdRegionInfo | null | PdError): PdRegion | null => {
      if (info instanceof PdError) throw new Error(`PD: ${info.message}`);
      return info === null ? null : regionRoute(info);
    };
    return {
      getRegion: (key) => call("GetRegion", (pd) => route(pd.getRegion(key))),
      getPrevRegion: (key) => call("GetPrevRegion", (pd) => route(pd.getPrevRegion(key))),
      getRegionById: (id) => call("GetRegionByID", (pd) => route(pd.getRegionById(id))),
      scanRegions: (range) =>
        call("ScanRegions", (pd) => {
          const found = pd.scanRegions(range);
          if (found instanceof PdError) throw new Error(`PD: ${found.message}`);
          return found.map((info) => regionRoute(info));
        }),
      getStore: (storeId) =>
        call("GetStore", (pd) => {
          const store = pd.getStore(storeId);
          if (store instanceof PdError) throw new Error(`PD: ${store.message}`);
          return metapb.Store.create(storeToProto(store.meta));
        }),
      close: () => {},
    };
  }
}

/** AskBatchSplit's ids for one split. */
export interface SplitIds {
  newRegionId: bigint;
  newPeerIds: bigint[];
}

/** The options every core of a seed is opened with (a single PD's, or each member's). */
export function driverOptions(
  options: Pick<SimPdOptions, "voters" | "mergeChecker">,
): { reservedIdsThrough: bigint; config: Partial<ScheduleConfig> } {
  return {
    reservedIdsThrough: SIM_PD_RESERVED_IDS_THROUGH,
    config: {
      maxReplicas: options.voters,
      maxStoreDownTimeMs: SIM_PD_MAX_STORE_DOWN_TIME_MS,
      ...(options.mergeChecker ? { splitMergeIntervalMs: SIM_PD_SPLIT_MERGE_INTERVAL_MS } : {}),
    },
  };
}

/** The part of src/client's `PdClient` its `PdRegionSource` uses. */
export interface SimPdClient {
  getRegion(key: Uint8Array): Promise<PdRegion | null>;
  getPrevRegion(key: Uint8Array): Promise<PdRegion | null>;
  getRegionById(regionId: bigint): Promise<PdRegion | null>;
  scanRegions(
    range: { startKey: Uint8Array; endKey: Uint8Array; limit: number },
  ): Promise<PdRegion[]>;
  getStore(storeId: bigint): Promise<metapb.Store>;
  close(): void;
}

function describeRegionOperator(op: RegionOperator): string {
  if (op.transferLeader !== undefined) return `transfer leader to peer ${op.transferLeader.peerId}`;
  if (op.merge !== undefined) return `merge into region ${op.merge.target.id}`;
  const change = op.changePeer!;
  return `${
    ConfChangeType[change.changeType]
  } peer ${change.peer.id} on store ${change.peer.storeId}`;
}
