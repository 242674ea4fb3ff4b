/**
 * The whole-cluster simulator (issue #13 items 1–2, first slice): the real raftstore — `Store`s
 * over crashable memory engines, joined by the harness's memory transport
 * (src/raftstore/testing/cluster.ts) — with a fault schedule, admin actions and a register
 * workload, all in one isolate on the harness's logical clock (ticks, and rounds within them),
 * every choice drawn from one seeded random source. A run is a pure function of its seed: the
 * same seed gives the same history, byte for byte (`Trace.digest()` covers every line).
 *
 * A run:
 *  1. Settings from the seed (settings.ts); a cluster of `voters` stores plus an empty spare,
 *     the first region on the voters.
 *  2. Fault phase (FAULT_PHASE_TICKS): a rough network (loss, duplication, delay/reordering);
 *     cuts (partitions, an isolated store, one-way cuts, flapping links); crashes (kill -9 or
 *     power loss) and restarts; maybe one store lost for good; admin actions and repair
 *     (scheduler.ts); the register workload (register_workload.ts).
 *  3. Faults stop: links heal, crashed stores restart. Liveness: a put of every register key
 *     (retried) must be acknowledged within LIVENESS_BOUND_TICKS, while repair goes on.
 *  4. Drain: no new operations; every waiting one answered or given up.
 *  5. Checks: Raft safety per region after every round of the run (raft_safety.ts), replica
 *     consistency once replicas caught up, linearizability of the history.
 *
 * With the real PD (the seed's `realPd`, or `pd: "real"`), src/pd's `PlacementDriver` runs on the
 * simulated clock (sim_placement_driver.ts): the stores heartbeat it and carry out its operators,
 * it alone repairs and balances (the oracle scheduler only splits and asks PD for admin
 * operators), its clock jumps forward now and then, and it serves the bank's client timestamps
 * and regions. Then liveness also asks that every region be back at its voter count, on stores
 * still alive, within REPAIR_BOUND_TICKS after faults stop (a store lost for good is repaired
 * by PD's replica checker alone), and PD's TSO must never go back.
 *
 * With three PD members (the seed's `pdMembers`, with the real PD), PD is replicated
 * (sim_pd_members.ts): its members' leader crashes (kill -9 or power loss) and restarts, a
 * member is partitioned away, members' clocks step; stores, client and administrator follow
 * the leader. Checked besides: every timestamp handed out is above every one handed out before
 * it was asked for, no id is handed out twice, and after faults stop a member serves within
 * PD_LEADER_BOUND_TICKS (then the repair bound above holds as with one PD).
 *
 * With `bank`, the real transactional client runs too (bank_workload.ts): its accounts are set
 * up before the fault phase, its transfers and snapshot reads run through it, and after the
 * drain its final read, the transfer records and the lock CF of every replica are checked
 * (snapshot isolation, no lost update, no lock left). Its clock (sim_clock.ts) is the harness's:
 * `TICK_MS` a tick, `ROUND_MS` a round. It draws from a random source of its own, so the faults
 * and admin actions of a seed are the same with and without it.
 *
 * A store's failed assertion (an exception out of a round) ends the run as a failure, with the
 * seed and the trace.
 *
 * @module
 */

import type { PeerTestingBugs } from "../../src/raftstore/peer_config.ts";
import { Cluster } from "../../src/raftstore/testing/cluster.ts";
import type { Filter } from "../../src/raftstore/testing/memory_transport.ts";
import { SeededRandom } from "../../src/util/random.ts";
import { Trace } from "../trace.ts";
import { randomCut, roughNetwork } from "./network_faults.ts";
import { checkReplicaConsistency, RegionSafetyChecker } from "./raft_safety.ts";
import { describeRange, regionMap } from "./region_map.ts";
import { keyInRegion } from "../../src/raftstore/command.ts";
import { utf8 } from "../../src/util/bytes.ts";
import { metapb } from "../../proto/mod.ts";
import { RegisterWorkload, type WorkloadStats } from "./register_workload.ts";
import { Scheduler, type SchedulerStats } from "./scheduler.ts";
import { type BankStats, BankWorkload, lockedKeys } from "./bank_workload.ts";
import { SimClock } from "./sim_clock.ts";
import { SimLinks } from "./sim_link.ts";
import { SimPdView, SimTso } from "./sim_pd.ts";
import { SimPdMembers, type SimPdMemberStats } from "./sim_pd_members.ts";
import {
  driverOptions,
  PD_CLOCK_JUMP_PER_TICK,
  PD_CLOCK_JUMPS_MS,
  type SimPdBugs,
  type SimPdStats,
  SimPlacementDriver,
} from "./sim_placement_driver.ts";
import type { RegionSource } from "../../src/client/cached_resolver.ts";
import type { PdClient } from "../../src/client/pd_client.ts";
import { PdRegionSource } from "../../src/client/pd_resolver.ts";
import { ROUND_MS, SIM_EPOCH_MS, TICK_MS } from "./sim_clock.ts";
import type { StoreGlueBugs } from "./sim_store_services.ts";
import {
  chooseSettings,
  type ClusterSimSettings,
  describeSettings,
  FAULT_PHASE_TICKS,
} from "./settings.ts";

/** Ticks after faults stop within which a put of every key must be acknowledged. */
export const LIVENESS_BOUND_TICKS = 400;
/**
 * With the real PD: ticks after faults stop within which every region must be back at its voter
 * count on live stores — the lost store's silence reaching max-store-down-time (210 ticks, from
 * at most 100 ticks before faults stop), then the repairs, a few regions at a time.
 */
export const REPAIR_BOUND_TICKS = 800;
/** With several PD members: ticks after faults stop within which one must serve. */
export const PD_LEADER_BOUND_TICKS = 100;
/** Ticks the drain waits for answers before giving up on the rest. */
const DRAIN_TICKS = 2 * 25;
/** Ticks given to lagging replicas to catch up before the consistency check. */
const CATCH_UP_TICKS = 60;
/** Most rounds per tick (clients act between rounds); at least one. */
const MAX_ROUNDS_PER_TICK = 4;
/** Trace lines kept for a failure report. */
const TRACE_TAIL_LINES = 300;
/** Ticks the bank's set-up, its drain and its final read may each take. */
const BANK_PHASE_MAX_TICKS = 400;
/** Microtask turns given to the clients between two steps of a round (they run on promises). */
const CLIENT_TURNS = 64;

/** Deliberate bugs of the simulated PD and store glue that the bank must catch (test-only). */
export interface BankBugs extends StoreGlueBugs {
  /** The TSO now and then hands out a timestamp from the past (sim_pd.ts). */
  tsoGoesBack?: boolean;
}

/** Options of one run. */
export interface ClusterSimOptions {
  seed: number;
  /** Ticks of the fault phase (default FAULT_PHASE_TICKS). */
  faultTicks?: number;
  /** Deliberate store bugs (test-only). */
  bugs?: PeerTestingBugs;
  /** Keep every trace line (the determinism test) instead of the last few hundred. */
  keepFullTrace?: boolean;
  /** Run the bank through the real transactional client too (module header). */
  bank?: boolean;
  /** Deliberate bugs for the bank to catch (test-only; implies `bank`). */
  bankBugs?: BankBugs;
  /** Who repairs and balances: the real PD or the oracle (default: the seed's `realPd`). */
  pd?: "real" | "oracle";
  /** With the real PD: one core or three replicated members (default: the seed's choice). */
  pdMembers?: 1 | 3;
  /** Deliberate bugs of PD's edge (test-only; they matter with several members). */
  pdBugs?: SimPdBugs;
  /** With the bank: run its hot-key probe (default: the seed's choice). */
  hotKeyProbe?: boolean;
}

/** Which checker failed. */
export type ClusterFailureKind =
  | "raft safety"
  | "replica consistency"
  | "linearizability"
  | "liveness"
  | "snapshot isolation"
  | "lock left"
  | "client bug"
  | "tso"
  | "pd ids"
  | "assertion";

/** The outcome of one run. */
export interface ClusterSimResult {
  seed: number;
  ok: boolean;
  failure?: { kind: ClusterFailureKind; message: string };
  settings: ClusterSimSettings;
  faults: string[];
  digest: string;
  trace: string[];
  ticks: number;
  stats: WorkloadStats & SchedulerStats & {
    regionsAtEnd: number;
    leaderTerms: number;
    entriesCompared: number;
    messages: { sent: number; dropped: number; duplicated: number; delayed: number };
    bank?: BankStats;
    pd?: SimPdStats;
    pdMembers?: SimPdMemberStats;
  };
}

class Failure extends Error {
  constructor(readonly kind: ClusterFailureKind, message: string) {
    super(message);
  }
}

/** Runs one seed (module header). */
export async function runClusterSimulation(options: ClusterSimOptions): Promise<ClusterSimResult> {
  const run = new Run(options);
  let failure: ClusterSimResult["failure"];
  try {
    await run.execute();
  } catch (error) {
    failure = error instanceof Failure
      ? { kind: error.kind, message: error.message }
      : { kind: "assertion", message: describeThrown(error) };
    run.trace.add(`FAILED (${failure.kind}): ${failure.message}`);
  }
  return run.result(failure);
}

class Run {
  readonly trace: Trace;
  readonly faults: string[] = [];
  readonly safety = new RegionSafetyChecker();
  readonly settings: ClusterSimSettings;
  readonly faultTicks: number;
  // Set up by `execute` (the cluster's first region needs an async bootstrap).
  c!: Cluster;
  workload!: RegisterWorkload;
  scheduler!: Scheduler;
  #down: { id: bigint; until: number } | undefined;
  #cut: { filter: Filter; until: number } | undefined;
  #rough: Filter | undefined;
  bank:
    | { workload: BankWorkload; clock: SimClock; view: SimPdView | undefined; links: SimLinks }
    | undefined;
  /** The real PD, when this run has it. */
  pd: SimPlacementDriver | undefined;
  /** Draws PD's clock jumps (its own source: the fault schedule stays the oracle run's). */
  readonly #pdJumps: SeededRandom;
  /** Picks where the hot-key probe's region leader moves (its own source, as above). */
  readonly #probeMoves: SeededRandom;
  /** Whether the fault phase is under way. */
  #faultPhase = false;
  #roundInTick = 0;

  constructor(readonly options: ClusterSimOptions) {
    this.trace = new Trace(TRACE_TAIL_LINES, options.keepFullTrace === true);
    this.faultTicks = options.faultTicks ?? FAULT_PHASE_TICKS;
    // The settings come from a source of their own, so that a setting's range can change
    // without moving every other choice of the run.
    this.settings = chooseSettings(new SeededRandom(options.seed ^ 0x5e771));
    if (options.pd !== undefined) this.settings.realPd = options.pd === "real";
    if (options.pdMembers !== undefined) this.settings.pdMembers = options.pdMembers;
    if (options.hotKeyProbe !== undefined) this.settings.hotKeyProbe = options.hotKeyProbe;
    this.#pdJumps = new SeededRandom(options.seed ^ 0x9d01);
    this.#probeMoves = new SeededRandom(options.seed ^ 0x9b0f);
  }

  private log(line: string): void {
    this.trace.add(`t${this.c?.ticks ?? 0}.${this.c?.rounds ?? 0} ${line}`);
  }

  private fault(line: string): void {
    this.faults.push(`t${this.c.ticks} ${line}`);
    this.log(`FAULT ${line}`);
  }

  async execute(): Promise<void> {
    const s = this.settings;
    this.trace.add(`seed ${this.options.seed}: ${describeSettings(s)}`);
    this.c = await Cluster.start({
      storeCount: s.voters + 1,
      seed: this.options.seed,
      initialStores: Array.from({ length: s.voters }, (_, i) => BigInt(i + 1)),
      config: {
        raftLogGcCountLimit: s.raftLogGcCountLimit,
        raftLogGcCheckTicks: 3,
        hibernateRegions: s.hibernateRegions,
        testingBugs: this.options.bugs,
      },
    });
    const log = (line: string) => this.log(line);
    if (s.realPd) {
      const simNowMs = () => SIM_EPOCH_MS + this.c.ticks * TICK_MS + this.#roundInTick * ROUND_MS;
      const members = s.pdMembers === 1 ? undefined : new SimPdMembers({
        simNowMs,
        random: new SeededRandom(this.options.seed ^ 0x9d03),
        driver: driverOptions({ voters: s.voters, mergeChecker: s.pdMergeChecker }),
        trace: log,
      });
      this.pd = await SimPlacementDriver.open({
        c: this.c,
        random: new SeededRandom(this.options.seed ^ 0x9d00),
        voters: s.voters,
        simNowMs,
        mergeChecker: s.pdMergeChecker,
        trace: log,
        members,
        bugs: this.options.pdBugs,
      });
    }
    this.workload = new RegisterWorkload(this.c, this.c.random, log);
    this.scheduler = new Scheduler(this.c, this.c.random, {
      voters: s.voters,
      trace: log,
      pd: this.pd,
    });
    if (this.options.bank === true || this.options.bankBugs !== undefined) await this.setUpBank();
    if (s.dropRate > 0 || s.duplicateRate > 0 || s.maxDelayRounds > 0) {
      this.#rough = this.c.transport.addFilter(roughNetwork(this.c.random, s));
      if (this.pd?.members !== undefined) {
        this.pd.members.weather = { dropRate: s.dropRate, maxDelayRounds: s.maxDelayRounds };
      }
      this.fault(this.#rough.name);
      if (this.bank !== undefined) {
        // A lost answer costs the client its whole call (it waits to the deadline): rarer.
        this.bank.links.weather = {
          answerLossRate: s.dropRate / 5,
          maxDelayRounds: s.maxDelayRounds,
        };
      }
    }
    this.bank?.workload.start();
    this.#faultPhase = true;
    for (let t = 0; t < this.faultTicks; t++) {
      this.injectFaults();
      this.scheduler.step({ chance: s.adminPerTick });
      await this.tick();
    }
    this.stopFaults();
    await this.liveness();
    await this.drain();
    await this.finishBank();
    this.checkConsistency();
    const verdict = this.workload.check();
    if (!verdict.ok) {
      throw new Failure(
        "linearizability",
        `key ${verdict.key} not linearizable\n${verdict.explanation}`,
      );
    }
  }

  /** One tick of every store, then 1..MAX_ROUNDS_PER_TICK rounds with the clients between. */
  private async tick(opts: { clients: boolean } = { clients: true }): Promise<void> {
    this.c.tickStores();
    this.#roundInTick = 0;
    const pdStepped = this.pd?.step();
    if (pdStepped !== undefined) await pdStepped;
    const rounds = 1 + this.c.random.int(MAX_ROUNDS_PER_TICK);
    for (let r = 0; r < rounds; r++) {
      this.#roundInTick = r;
      await this.bankStep(r);
      if (opts.clients) this.workload.step();
      await this.c.round();
      const delivered = this.pd?.afterRound();
      if (delivered !== undefined) await delivered;
      this.bank?.links.afterRound();
      for (const line of this.safety.observe(this.c)) this.log(line);
      if (this.safety.violation !== undefined) {
        throw new Failure("raft safety", this.safety.violation);
      }
      if (this.pd?.tsoViolation !== undefined) throw new Failure("tso", this.pd.tsoViolation);
      if (this.pd?.idViolation !== undefined) throw new Failure("pd ids", this.pd.idViolation);
    }
  }

  /**
   * The real client's turn before a round: the clock moves to this round (timers fire), the
   * clients run, PD's picture refreshes, and the requests sent reach their stores.
   */
  private async bankStep(roundInTick: number): Promise<void> {
    const bank = this.bank;
    if (bank === undefined) return;
    bank.clock.advanceTo({ tick: this.c.ticks, round: roundInTick });
    for (let i = 0; i < CLIENT_TURNS; i++) await null;
    if (bank.links.bug !== undefined) {
      throw new Failure("assertion", `a store command threw: ${describeThrown(bank.links.bug)}`);
    }
    if (bank.workload.violation !== undefined) {
      throw new Failure("snapshot isolation", bank.workload.violation);
    }
    if (bank.workload.clientBug !== undefined) {
      throw new Failure("client bug", bank.workload.clientBug);
    }
    bank.view?.refresh();
    bank.links.deliver();
  }

  /** Sets up the bank's client and accounts (before the faults). */
  private async setUpBank(): Promise<void> {
    const seed = this.options.seed;
    const clock = new SimClock(new SeededRandom(seed ^ 0xba4c));
    clock.advanceTo({ tick: this.c.ticks, round: 0 });
    const bugs = this.options.bankBugs;
    const pdCore = this.pd;
    const tso = new SimTso(
      clock,
      bugs?.tsoGoesBack === true
        ? { goesBack: true, random: new SeededRandom(seed ^ 0x75b0) }
        : undefined,
      pdCore === undefined || pdCore.members !== undefined ? undefined : () => pdCore.timestamp(),
      pdCore?.members === undefined ? undefined : (caller) => pdCore.timestampFromLeader(caller),
    );
    // The real PD answers through src/client's own PdRegionSource, over the calls it makes of
    // a PdClient (sim_placement_driver.ts); otherwise the picture of sim_pd.ts.
    const view = pdCore === undefined ? new SimPdView(this.c) : undefined;
    const pd: RegionSource = view ??
      new PdRegionSource(pdCore!.client((ms) => clock.sleep(ms)) as unknown as PdClient);
    const links = new SimLinks(this.c, {
      clock,
      tso,
      random: new SeededRandom(seed ^ 0x1197),
      bugs,
    });
    const workload = new BankWorkload({
      c: this.c,
      clock,
      links,
      pd,
      tso,
      random: clock.source,
      trace: (line) => this.log(line),
      hotKeyProbe: this.settings.hotKeyProbe
        ? {
          random: new SeededRandom(seed ^ 0x9b0e),
          afterRead: (key) => this.moveLeaderAfterRead(key),
        }
        : undefined,
    });
    this.bank = { workload, clock, view, links };
    if (this.settings.hotKeyProbe) this.log("bank: with the hot-key probe");
    await this.until("the bank's accounts set up", workload.setUp());
  }

  /**
   * The fault schedule's answer to the hot-key probe's read of `key` (while faults last): the
   * key's region leader moves to another voter on a live store, right away.
   */
  private moveLeaderAfterRead(key: string): void {
    if (!this.#faultPhase) return;
    const c = this.c;
    const region = regionMap(c).find((r) => keyInRegion(utf8(key), r));
    const leader = region === undefined ? undefined : c.leader(region.id);
    if (leader === undefined) return;
    const view = leader.region();
    const voters = view.peers.filter((p) =>
      p.id !== leader.meta.id && p.role === metapb.PeerRole.Voter && c.isUp(p.storeId)
    );
    if (voters.length === 0) return;
    const to = this.#probeMoves.pick(voters);
    c.store(leader.meta.storeId).transferLeader(view.id, to.id);
    this.fault(
      `transfer leader of region ${view.id} from store ${leader.meta.storeId} to store ` +
        `${to.storeId} right after a read of ${key}`,
    );
  }

  /** Ticks (clients on) until `work` settles; a liveness failure after BANK_PHASE_MAX_TICKS. */
  private async until<T>(what: string, work: Promise<T>): Promise<T> {
    let outcome: { value: T } | { error: unknown } | undefined;
    work.then((value) => (outcome = { value }), (error) => (outcome = { error }));
    const start = this.c.ticks;
    while (outcome === undefined) {
      if (this.c.ticks - start > BANK_PHASE_MAX_TICKS) {
        throw new Failure("liveness", `${what}: not done within ${BANK_PHASE_MAX_TICKS} ticks`);
      }
      this.scheduler.step(undefined);
      await this.tick({ clients: false });
    }
    if ("error" in outcome) throw outcome.error;
    return outcome.value;
  }

  /** The bank's drain, final read and checks, then the lock CF of every replica. */
  private async finishBank(): Promise<void> {
    const bank = this.bank;
    if (bank === undefined) return;
    bank.workload.stopIssuing();
    bank.links.weather = { answerLossRate: 0, maxDelayRounds: 0 };
    const drained = new Promise<void>((resolve) => {
      const poll = () => bank.workload.idle() ? resolve() : void bank.clock.setTimer(poll, 10);
      poll();
    });
    await this.until("the bank's transfers finished", drained);
    const problem = await this.until("the bank's final read", bank.workload.finalCheck());
    if (problem !== undefined) throw new Failure("snapshot isolation", problem);
    const swept = await this.until("the bank's lock sweep", bank.workload.sweepLocks());
    if (swept !== undefined) throw new Failure("lock left", swept);
    for (let t = 0; t < CATCH_UP_TICKS; t++) await this.tick({ clients: false });
    const locks = lockedKeys(this.c);
    if (locks.length > 0) {
      throw new Failure(
        "lock left",
        `${locks.length} locks left after recovery: ${locks.slice(0, 5).join("; ")}`,
      );
    }
    this.log(`bank: no lock left; ${bank.links.inFlight} requests in flight`);
  }

  private injectFaults(): void {
    const { c, settings: s } = this;
    const random = c.random;
    if (this.pd?.members !== undefined) {
      for (const f of this.pd.members.injectFaults(c.ticks)) this.faults.push(`t${c.ticks} ${f}`);
    } else if (this.pd !== undefined && this.#pdJumps.chance(PD_CLOCK_JUMP_PER_TICK)) {
      const ms = this.#pdJumps.pick(PD_CLOCK_JUMPS_MS);
      this.pd.jump(ms);
      this.faults.push(`t${c.ticks} PD clock jumps ${ms} ms`);
    }
    if (this.#down !== undefined && c.ticks >= this.#down.until) {
      c.restart(this.#down.id);
      this.fault(`restart store ${this.#down.id}`);
      this.#down = undefined;
    }
    if (this.#cut !== undefined && c.ticks >= this.#cut.until) {
      c.transport.removeFilter(this.#cut.filter);
      this.fault(`heal ${this.#cut.filter.name}`);
      this.#cut = undefined;
    }
    if (s.loseStoreAtTick === c.ticks && this.scheduler.lostStore === undefined) {
      const candidates = c.storeIds.filter((id) => id !== this.#down?.id && c.isUp(id));
      const id = random.pick(candidates);
      c.crash(id, { powerLoss: true });
      this.scheduler.lostStore = id;
      this.fault(`store ${id} lost for good (repair must follow)`);
    }
    if (this.#down === undefined && random.chance(s.crashPerTick)) {
      const up = c.storeIds.filter((id) => c.isUp(id));
      const leaders = regionMap(c).map((r) => c.leader(r.id)?.meta.storeId).filter((id) =>
        id !== undefined
      );
      const id = leaders.length > 0 && random.chance(0.5) ? random.pick(leaders) : random.pick(up);
      const powerLoss = random.chance(s.powerLossShare);
      c.crash(id, { powerLoss });
      this.#down = { id, until: c.ticks + 5 + random.int(40) };
      this.fault(`crash store ${id} (${powerLoss ? "power loss" : "process crash"})`);
    }
    if (this.#cut === undefined && random.chance(s.cutPerTick)) {
      const leaderStore = c.leader(random.pick(regionMap(c)).id)?.meta.storeId;
      const filter = randomCut(random, {
        storeIds: c.storeIds,
        leaderStore,
        round: () => c.rounds,
      });
      c.transport.addFilter(filter);
      this.#cut = { filter, until: c.ticks + 5 + random.int(60) };
      this.fault(filter.name);
    }
  }

  private stopFaults(): void {
    const c = this.c;
    this.#faultPhase = false;
    if (this.bank !== undefined) this.bank.links.weather = { answerLossRate: 0, maxDelayRounds: 0 };
    c.transport.clearFilters();
    this.#cut = undefined;
    this.#rough = undefined;
    if (this.#down !== undefined) {
      c.restart(this.#down.id);
      this.#down = undefined;
    }
    for (const f of this.pd?.members?.stopFaults() ?? []) this.faults.push(`t${c.ticks} ${f}`);
    this.fault("faults stop: links healed, network calm, crashed stores restarted");
  }

  private async liveness(): Promise<void> {
    this.workload.startProbes();
    const start = this.c.ticks;
    await this.pdLeaderLiveness(start);
    while (!this.workload.probesDone()) {
      if (this.c.ticks - start > LIVENESS_BOUND_TICKS) {
        throw new Failure(
          "liveness",
          `no put of every key acknowledged within ${LIVENESS_BOUND_TICKS} ticks after faults stopped`,
        );
      }
      this.scheduler.step(undefined);
      await this.tick();
    }
    this.log(`liveness: every key written ${this.c.ticks - start} ticks after faults stopped`);
    if (this.pd === undefined) return;
    for (let missing = this.unrepaired(); missing !== undefined; missing = this.unrepaired()) {
      if (this.c.ticks - start > REPAIR_BOUND_TICKS) {
        throw new Failure(
          "liveness",
          `PD did not repair every region within ${REPAIR_BOUND_TICKS} ticks after faults ` +
            `stopped: ${missing}`,
        );
      }
      this.scheduler.step(undefined);
      await this.tick();
    }
    this.log(
      `liveness: every region at ${this.settings.voters} voters on live stores ` +
        `${this.c.ticks - start} ticks after faults stopped`,
    );
  }

  /** With several PD members: one serves within PD_LEADER_BOUND_TICKS after faults stop. */
  private async pdLeaderLiveness(start: number): Promise<void> {
    const members = this.pd?.members;
    if (members === undefined) return;
    while (members.serving().length !== 1) {
      if (this.c.ticks - start > PD_LEADER_BOUND_TICKS) {
        throw new Failure(
          "liveness",
          `no single PD member serves ${PD_LEADER_BOUND_TICKS} ticks after faults stopped ` +
            `(${members.serving().length} serve)`,
        );
      }
      this.scheduler.step(undefined);
      await this.tick();
    }
    this.log(`liveness: PD member ${members.serving()[0]!.id} serves`);
  }

  /**
   * The first region (as the stores hold it) not at its voter count on live stores — a learner,
   * a voter missing or too many, one on a store down or lost — or `undefined` when none.
   */
  private unrepaired(): string | undefined {
    for (const region of regionMap(this.c)) {
      const voters = region.peers.filter((p) => p.role === metapb.PeerRole.Voter);
      const dead = region.peers.filter((p) => !this.c.isUp(p.storeId));
      if (
        voters.length === this.settings.voters && region.peers.length === voters.length &&
        dead.length === 0
      ) continue;
      const peers = region.peers.map((p) =>
        `${p.id}@${p.storeId}${p.role === metapb.PeerRole.Voter ? "" : "(learner)"}`
      );
      return `region ${region.id} ${describeRange(region)} has peers ${peers.join(", ")}` +
        (dead.length > 0 ? ` (stores ${dead.map((p) => p.storeId).join(", ")} down)` : "");
    }
    return undefined;
  }

  private async drain(): Promise<void> {
    this.workload.stopIssuing();
    for (let t = 0; t < DRAIN_TICKS && this.workload.pendingCount() > 0; t++) {
      this.scheduler.step(undefined);
      await this.tick();
    }
    this.workload.giveUpAll();
    for (let t = 0; t < CATCH_UP_TICKS; t++) {
      this.scheduler.step(undefined);
      await this.tick({ clients: false });
    }
  }

  private checkConsistency(): void {
    const problem = checkReplicaConsistency(this.c);
    if (problem !== undefined) throw new Failure("replica consistency", problem);
  }

  result(failure: ClusterSimResult["failure"]): ClusterSimResult {
    const c = this.c as Cluster | undefined;
    const w = this.workload?.stats;
    const sch = this.scheduler?.stats;
    const t = c?.transport.stats;
    return {
      seed: this.options.seed,
      ok: failure === undefined,
      failure,
      settings: this.settings,
      faults: this.faults,
      digest: this.trace.digest(),
      trace: this.trace.tail(),
      ticks: c?.ticks ?? 0,
      stats: {
        calls: w?.calls ?? 0,
        acknowledgedWrites: w?.acknowledgedWrites ?? 0,
        reads: w?.reads ?? 0,
        casSwapped: w?.casSwapped ?? 0,
        casRefused: w?.casRefused ?? 0,
        unknown: w?.unknown ?? 0,
        splits: sch?.splits ?? 0,
        merges: (sch?.merges ?? 0) + (this.pd?.stats.merges ?? 0),
        confChanges: (sch?.confChanges ?? 0) + (this.pd?.stats.confChanges ?? 0),
        transfers: (sch?.transfers ?? 0) + (this.pd?.stats.transfers ?? 0),
        refused: sch?.refused ?? 0,
        regionsAtEnd: c === undefined ? 0 : regionMap(c).length,
        leaderTerms: this.safety.stats.leaderTerms,
        entriesCompared: this.safety.stats.entriesCompared,
        messages: {
          sent: t?.sent ?? 0,
          dropped: t?.dropped ?? 0,
          duplicated: c?.transport.duplicatedCount ?? 0,
          delayed: t?.delayed ?? 0,
        },
        bank: this.bank === undefined ? undefined : { ...this.bank.workload.stats },
        pd: this.pd === undefined ? undefined : { ...this.pd.stats },
        pdMembers: this.pd?.members === undefined ? undefined : { ...this.pd.members.stats },
      },
    };
  }
}

/** A thrown error with the top of its stack (where in the store it fired). */
function describeThrown(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const frames = (error.stack ?? "").split("\n").filter((l) => l.trim().startsWith("at ")).slice(
    0,
    8,
  );
  return [error.message, ...frames.map((f) => `    ${f.trim()}`)].join("\n");
}

/** A one-paragraph report of a run; on failure the fault list, the trace tail and the command. */
export function formatClusterResult(r: ClusterSimResult, opts: { verbose?: boolean } = {}): string {
  const s = r.stats;
  const lines = [
    `cluster seed ${r.seed}: ${r.ok ? "ok" : `FAILED (${r.failure!.kind})`} — ${r.ticks} ticks, ` +
    `${s.calls} ops (${s.acknowledgedWrites} writes acked, ${s.reads} reads, cas ${s.casSwapped} swapped/` +
    `${s.casRefused} refused, ${s.unknown} unknown), ${s.splits} splits, ${s.merges} merges, ` +
    `${s.confChanges} conf changes, ${s.transfers} transfers, ${s.regionsAtEnd} regions at end, ` +
    `${s.leaderTerms} leader terms, ${s.entriesCompared} applied entries compared, ` +
    `${s.messages.sent} messages (${s.messages.dropped} dropped, ${s.messages.duplicated} duplicated, ` +
    `${s.messages.delayed} delayed), history ${r.digest}`,
    ...(s.pd === undefined ? [] : [
      `  pd: ${s.pd.regionHeartbeats} region heartbeats (${s.pd.refusedHeartbeats} refused), ` +
      `${s.pd.operatorsAdded} operators (${s.pd.operatorsTimedOut} timed out), ` +
      `${s.pd.refusedSteps} steps refused by stores, ${s.pd.clockJumps} clock jumps, ` +
      `${s.pd.timestamps} timestamps`,
    ]),
    ...(s.pdMembers === undefined ? [] : [
      `  pd members: ${s.pdMembers.leaderships} leaderships, ${s.pdMembers.crashes} crashes, ` +
      `${s.pdMembers.cuts} cuts, ${s.pdMembers.clockSteps} clock steps, ` +
      `${s.pdMembers.messages} messages (${s.pdMembers.dropped} dropped), ` +
      `${s.pd!.notLeader} calls refused (not leader or down), ${s.pd!.lostAnswers} answers lost`,
    ]),
    ...(s.bank === undefined ? [] : [
      `  bank: ${s.bank.transfers} transfers (${s.bank.committed} committed ${
        JSON.stringify(s.bank.modes)
      }, ${s.bank.failed} failed, ${s.bank.undetermined} undetermined), ` +
      `${s.bank.snapshotsChecked} snapshots summed, ${s.bank.readsFailed} reads failed`,
    ]),
    `  settings: ${describeSettings(r.settings)}`,
    `  faults injected (${r.faults.length}):`,
    ...(opts.verbose || !r.ok
      ? r.faults.map((f) => `    ${f}`)
      : [`    ${r.faults.slice(0, 4).join("; ")}${r.faults.length > 4 ? "; …" : ""}`]),
  ];
  if (!r.ok) {
    lines.push(`  failure: ${r.failure!.message}`);
    lines.push(`  last ${r.trace.length} trace lines:`, ...r.trace.map((l) => `    ${l}`));
    lines.push(`  reproduce: deno task sim --cluster --seed ${r.seed}`);
  }
  return lines.join("\n");
}
