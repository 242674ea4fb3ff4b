/**
 * Three replicated PD members (src/pd's `PdMember`, pure) inside the cluster simulator: each
 * over its own crashable memory engine, on the simulated clock plus an offset of its own, its
 * Raft messages carried by a simulated network of the members' own, and its faults drawn from a
 * source of its own.
 *
 * - **Ticks**: one Raft tick per simulated tick (`TICK_MS` = `PD_RAFT_TICK_INTERVAL_MS`).
 * - **Network**: a message sent in one round is delivered at the end of that round or, while
 *   the seed's weather is rough, up to `maxDelayRounds` later (reordering) or lost at the
 *   seed's loss rate — the weather of the store links, so a rough seed is rough for PD too. The
 *   cuts are PD's own (a member partitioned away from the others), drawn apart from the stores'
 *   cuts: PD members run on hosts of their own, and a source of their own keeps a seed's store
 *   faults the same whatever PD does. Messages to or from a member down are lost.
 * - **Faults** (`injectFaults`, once a tick of the fault phase): a crash of the leader (more
 *   often) or of any member — kill -9, where the engine keeps every write, or a power loss,
 *   where only synced writes survive (`CrashableMemoryEngine`) — and its restart from what its
 *   engine kept, `PD_MEMBER_DOWN_TICKS` later; a member (the leader, more often) partitioned
 *   away from the other members; a member's clock stepping forward or back.
 *
 * A member's asynchronous Ready rounds are awaited (`settle`) after every tick and delivery, so
 * the members are quiet whenever the stores and clients act, and the order of everything stays
 * a pure function of the seed.
 *
 * @module
 */

import { MemoryEngine } from "../../src/engine/memory_engine.ts";
import { PdMember, type PdMemberOptions } from "../../src/pd/pd_member.ts";
import type { Message } from "../../src/raft/mod.ts";
import { CrashableMemoryEngine } from "../../src/raftstore/testing/crash_engine.ts";
import { assert } from "../../src/util/assert.ts";
import { SeededRandom } from "../../src/util/random.ts";

/** PD members in a replicated seed (the members of `--initial-cluster`). */
export const SIM_PD_MEMBER_COUNT = 3;
/** Chance per tick of the fault phase, with no member down, that a member crashes. */
export const PD_MEMBER_CRASH_PER_TICK = 0.01;
/** Chance per tick of the fault phase, with no member cut off, that one is partitioned away. */
export const PD_MEMBER_CUT_PER_TICK = 0.008;
/**
 * The share of its usual chance that a crash or a cut keeps while the other kind of fault is
 * under way: two of three members unreachable leave PD without a quorum (no leader) a while.
 */
export const DOUBLE_FAULT_SHARE = 0.2;
/** Chance per tick of the fault phase that one member's clock steps. */
export const PD_MEMBER_CLOCK_STEP_PER_TICK = 0.006;
/** Ticks a crashed member stays down, and a cut lasts: from this … */
export const PD_MEMBER_FAULT_MIN_TICKS = 5;
/** … to this many more. */
export const PD_MEMBER_FAULT_SPREAD_TICKS = 60;
/**
 * Steps of a member's clock, ms: forward from a hiccup to more than `max-store-down-time`, and
 * back (an NTP step), never further back than a TSO save window so a new leader's loaded bound
 * is what keeps its timestamps above the old ones.
 */
export const PD_MEMBER_CLOCK_STEPS_MS = [300, 2_000, 5_000, 25_000, -300, -1_500] as const;
/** Most messages held back by delay (more are lost; a harness bound). */
export const PD_MEMBER_MAX_DELAYED_MESSAGES = 10_000;

/** What the members' network and faults did. */
export interface SimPdMemberStats {
  messages: number;
  dropped: number;
  crashes: number;
  restarts: number;
  cuts: number;
  clockSteps: number;
  /** Times a member began to serve (the first leader included). */
  leaderships: number;
}

/** How the members are set up. */
export interface SimPdMembersOptions {
  /** The simulated clock's reading, ms (each member adds its own offset). */
  simNowMs: () => number;
  /** Raft's randomness, the network's and the faults' (the members' own source). */
  random: SeededRandom;
  /** Options of the core a leader runs. */
  driver: NonNullable<PdMemberOptions["driver"]>;
  trace: (line: string) => void;
}

/** One run of a member's process: gone for good at its crash. */
interface Incarnation {
  member: PdMember;
  alive: boolean;
  /** Resolves when this incarnation crashes (its callers' connections reset). */
  crashed: Promise<void>;
  crash(): void;
}

/** Three PD members, their network and their faults (module header). */
export class SimPdMembers {
  readonly ids: readonly bigint[];
  readonly stats: SimPdMemberStats = {
    messages: 0,
    dropped: 0,
    crashes: 0,
    restarts: 0,
    cuts: 0,
    clockSteps: 0,
    leaderships: 0,
  };
  /** Loss and delay of members' messages (the seed's weather while faults last; calm after). */
  weather = { dropRate: 0, maxDelayRounds: 0 };
  readonly #options: SimPdMembersOptions;
  readonly #random: SeededRandom;
  readonly #engines = new Map<bigint, CrashableMemoryEngine>();
  readonly #up = new Map<bigint, Incarnation>();
  readonly #offsetsMs = new Map<bigint, number>();
  #queue: { dueRound: number; message: Message }[] = [];
  #round = 0;
  #isolated: bigint | undefined;
  #down: { id: bigint; untilTick: number } | undefined;
  #cut: { id: bigint; untilTick: number } | undefined;
  /** The members serving at the last look, for the trace. */
  #serving = new Set<bigint>();

  constructor(options: SimPdMembersOptions) {
    this.#options = options;
    this.#random = options.random;
    this.ids = Array.from({ length: SIM_PD_MEMBER_COUNT }, (_, i) => BigInt(i + 1));
    for (const id of this.ids) {
      this.#engines.set(id, new CrashableMemoryEngine(new MemoryEngine()));
      this.#offsetsMs.set(id, 0);
      this.#open(id);
    }
  }

  /** Member `id`'s clock: the simulated one plus its steps so far. */
  nowMs(id: bigint): number {
    return this.#options.simNowMs() + this.#offsetsMs.get(id)!;
  }

  /** Member `id` while its process runs; `undefined` while it is down. */
  member(id: bigint): PdMember | undefined {
    return this.#up.get(id)?.member;
  }

  /**
   * Resolves when `member`'s process crashes: a call waiting for its answer then fails, as a
   * connection reset does (never, for a member that no longer runs: it crashed already).
   */
  crashed(member: PdMember): Promise<void> {
    return this.#up.get(member.id)?.member === member
      ? this.#up.get(member.id)!.crashed
      : Promise.resolve();
  }

  /** The members that serve now, by id (two at once while a deposed leader has not noticed). */
  serving(): PdMember[] {
    return this.ids.map((id) => this.member(id)).filter((m): m is PdMember =>
      m !== undefined && m.driver !== null
    );
  }

  /** Whether a fault of the members is still under way (a member down or cut off). */
  get faulty(): boolean {
    return this.#down !== undefined || this.#cut !== undefined;
  }

  /** One Raft tick of every member up, then their rounds. */
  async tick(): Promise<void> {
    for (const id of this.ids) this.member(id)?.tick();
    await this.settle();
  }

  /** The end of a round: messages due reach the members up; their rounds run. */
  async deliver(): Promise<void> {
    this.#round++;
    const due = this.#queue.filter((q) => q.dueRound <= this.#round);
    if (due.length === 0) return;
    this.#queue = this.#queue.filter((q) => q.dueRound > this.#round);
    for (const { message } of due) {
      const member = this.member(message.to);
      if (member === undefined || this.#cutOff(message)) {
        this.stats.dropped++;
        continue;
      }
      member.step(message);
    }
    await this.settle();
  }

  /** Waits until no member's Ready round runs; traces who began or stopped serving. */
  async settle(): Promise<void> {
    for (let i = 0; i < 8; i++) {
      await Promise.all([...this.#up.values()].map((inc) => inc.member.settled()));
    }
    const now = new Set(this.serving().map((m) => m.id));
    for (const id of now) {
      if (this.#serving.has(id)) continue;
      this.stats.leaderships++;
      this.#options.trace(`pd: member ${id} serves (term ${this.member(id)!.status().term})`);
    }
    for (const id of this.#serving) {
      if (!now.has(id)) this.#options.trace(`pd: member ${id} stops serving`);
    }
    this.#serving = now;
  }

  /**
   * The members' faults for tick `tick` of the fault phase (module header); returns what was
   * injected, for the run's fault list.
   */
  injectFaults(tick: number): string[] {
    const random = this.#random;
    const done: string[] = [];
    if (this.#down !== undefined && tick >= this.#down.untilTick) {
      done.push(this.restart(this.#down.id));
      this.#down = undefined;
    }
    if (this.#cut !== undefined && tick >= this.#cut.untilTick) {
      done.push(this.heal());
      this.#cut = undefined;
    }
    const leader = this.serving()[0]?.id;
    const pick = () =>
      leader !== undefined && random.chance(0.6) ? leader : random.pick([...this.ids]);
    // A second fault while one is under way (no quorum for a while) is rarer.
    const crashChance = PD_MEMBER_CRASH_PER_TICK *
      (this.#cut === undefined ? 1 : DOUBLE_FAULT_SHARE);
    const cutChance = PD_MEMBER_CUT_PER_TICK * (this.#down === undefined ? 1 : DOUBLE_FAULT_SHARE);
    if (this.#down === undefined && random.chance(crashChance)) {
      const id = pick();
      if (this.member(id) !== undefined && id !== this.#cut?.id) {
        done.push(this.crash(id, { powerLoss: random.chance(0.5) }));
        this.#down = { id, untilTick: tick + this.#faultTicks() };
      }
    }
    if (this.#cut === undefined && random.chance(cutChance)) {
      const id = pick();
      if (id !== this.#down?.id) {
        done.push(this.isolate(id));
        this.#cut = { id, untilTick: tick + this.#faultTicks() };
      }
    }
    if (random.chance(PD_MEMBER_CLOCK_STEP_PER_TICK)) {
      done.push(this.stepClock(pick(), random.pick(PD_MEMBER_CLOCK_STEPS_MS)));
    }
    return done;
  }

  /** Faults stop: the member down restarts, the cut heals, the network calms. */
  stopFaults(): string[] {
    const done: string[] = [];
    if (this.#down !== undefined) done.push(this.restart(this.#down.id));
    if (this.#cut !== undefined) done.push(this.heal());
    this.#down = undefined;
    this.#cut = undefined;
    this.weather = { dropRate: 0, maxDelayRounds: 0 };
    return done;
  }

  /** Member `id`'s process dies; with `powerLoss` its unsynced writes are lost too. */
  crash(id: bigint, opts: { powerLoss: boolean }): string {
    const incarnation = this.#up.get(id);
    assert(incarnation !== undefined, "a member crashes while up", { id });
    incarnation.alive = false;
    incarnation.crash();
    this.#up.delete(id);
    const engine = this.#engines.get(id)!;
    this.#engines.set(id, opts.powerLoss ? engine.powerLoss() : engine.processCrash());
    this.stats.crashes++;
    const what = `PD member ${id} crashes (${opts.powerLoss ? "power loss" : "kill -9"})`;
    this.#options.trace(`FAULT ${what}`);
    return what;
  }

  /** Member `id`'s process starts again over what its engine kept. */
  restart(id: bigint): string {
    assert(!this.#up.has(id), "a member restarts while down", { id });
    this.#open(id);
    this.stats.restarts++;
    const what = `PD member ${id} restarts`;
    this.#options.trace(`FAULT ${what}`);
    return what;
  }

  /** Member `id` is cut off from the other members (the stores still reach it). */
  isolate(id: bigint): string {
    this.#isolated = id;
    this.stats.cuts++;
    const what = `PD member ${id} partitioned away from the other members`;
    this.#options.trace(`FAULT ${what}`);
    return what;
  }

  heal(): string {
    const what = `PD member ${this.#isolated} rejoins the other members`;
    this.#isolated = undefined;
    this.#options.trace(`FAULT ${what}`);
    return what;
  }

  /** Member `id`'s clock steps by `ms` (either way). */
  stepClock(id: bigint, ms: number): string {
    const offset = this.#offsetsMs.get(id)! + ms;
    this.#offsetsMs.set(id, offset);
    this.stats.clockSteps++;
    const what = `PD member ${id}'s clock steps ${ms} ms (offset now ${offset} ms)`;
    this.#options.trace(`FAULT ${what}`);
    return what;
  }

  #faultTicks(): number {
    return PD_MEMBER_FAULT_MIN_TICKS + this.#random.int(PD_MEMBER_FAULT_SPREAD_TICKS);
  }

  #open(id: bigint): void {
    let crash!: () => void;
    const crashed = new Promise<void>((resolve) => crash = resolve);
    const incarnation: Incarnation = { member: undefined!, alive: true, crashed, crash };
    incarnation.member = PdMember.open({
      id,
      voters: this.ids,
      engine: this.#engines.get(id)!,
      clock: { nowMs: () => this.nowMs(id) },
      random: new SeededRandom(this.#random.nextUint32()),
      transport: { send: (messages) => this.#send(incarnation, messages) },
      driver: this.#options.driver,
    });
    this.#up.set(id, incarnation);
  }

  #send(from: Incarnation, messages: readonly Message[]): void {
    if (!from.alive) return; // a dead process's last round sends nothing
    for (const message of messages) {
      this.stats.messages++;
      const { dropRate, maxDelayRounds } = this.weather;
      if (this.#cutOff(message) || (dropRate > 0 && this.#random.chance(dropRate))) {
        this.stats.dropped++;
        continue;
      }
      if (this.#queue.length >= PD_MEMBER_MAX_DELAYED_MESSAGES) {
        this.stats.dropped++;
        continue;
      }
      const delay = maxDelayRounds > 0 ? this.#random.int(maxDelayRounds + 1) : 0;
      // A copy, as the wire makes one: the receiver must not share the sender's objects.
      this.#queue.push({ dueRound: this.#round + 1 + delay, message: structuredClone(message) });
    }
  }

  #cutOff(message: Message): boolean {
    return this.#isolated !== undefined &&
      (message.from === this.#isolated || message.to === this.#isolated);
  }
}
