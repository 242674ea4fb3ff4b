/**
 * Drives a `Store` in real time: ticks every `tickMs`, and runs a round whenever inputs are
 * waiting — the loop a region-group worker runs (DESIGN.md §4.1). The store itself reads no
 * clock; the test harness and the simulator drive it by hand instead of with this.
 *
 * Invariants:
 * - Rounds never overlap: one loop runs them, one after the other, while the store has work. An
 *   input that arrives during a round (a clustered store's round awaits its synced write) is
 *   taken by the next one, so the inputs of one fsync gather for the next (the group commit of
 *   the log). A pipelined log's round does not wait for its fsync (store.ts): the store calls
 *   back when one ends, and the driver runs a round then for what waited on it (entries now
 *   durable to apply, held messages sent).
 * - Work between rounds (peers opened or closed) runs once every fsync under way has ended: a
 *   peer handed to another group is read from disk there as durable.
 * - A round that throws is a bug (the engine failed a write, or an assertion): the driver stops
 *   ticking and hands the error to `onBug`, which ends the worker.
 * - `stop()` stops the ticks, waits for the round in flight, then stops the store (which fails
 *   what it still owes); nothing runs after it resolves.
 *
 * With stage clocks on (`stage_clock.ts`, for bench/put_breakdown.ts) it also times how long a
 * kick waits for its round and how long rounds take; off, that is one test of a constant.
 *
 * @module
 */

import { assert } from "../../util/assert.ts";
import type { Store } from "../store.ts";
import { stageClock, stageNow, stagesOn } from "./stage_clock.ts";

/** Stage names of the driver (stage_clock.ts). */
export const DRIVER_STAGES = {
  /** A kick finding no round running → the round loop starts. */
  kickToRound: "driver.kickToRound",
  /** One round that did work, start to end (its synced write included). */
  round: "driver.round",
  /** A kick during a round → the next round of the loop starts (the input waited for it). */
  kickDuringRoundToRound: "driver.kickDuringRoundToRound",
} as const;

/** What the driver needs of its surroundings. */
export interface DriverOptions {
  /** Milliseconds per Raft tick. */
  tickMs: number;
  /** A round (or a tick) threw: a bug. */
  onBug: (error: unknown) => void;
  /** Called after every round that did work (the caller refreshes what it mirrors). */
  afterRound?: () => void;
}

/** Runs a store's rounds and ticks. */
export class StoreDriver {
  readonly store: Store;
  readonly #options: DriverOptions;
  #timer: ReturnType<typeof setInterval> | undefined;
  #running: Promise<void> | null = null;
  #scheduled = false;
  #stopped = false;
  /** Work to do between rounds (opening and closing peers), run before the next round. */
  #between: (() => void)[] = [];
  /** When the first kick since the loop last ended came (stage clocks only). */
  #kickedAt = -1;
  /** When the first kick during the round in flight came (stage clocks only). */
  #kickedInRoundAt = -1;

  constructor(store: Store, options: DriverOptions) {
    assert(options.tickMs > 0, "a driver ticks at a positive interval", { tickMs: options.tickMs });
    this.store = store;
    this.#options = options;
    store.syncListener = () => this.kick();
    this.#timer = setInterval(() => this.#tick(), options.tickMs);
  }

  /** Runs a round soon: call after handing the store an input. */
  kick(): void {
    if (stagesOn && this.#running !== null && this.#kickedInRoundAt < 0) {
      this.#kickedInRoundAt = stageNow();
    }
    if (this.#stopped || this.#scheduled) return;
    this.#scheduled = true;
    if (stagesOn && this.#running === null && this.#kickedAt < 0) this.#kickedAt = stageNow();
    // A microtask: the inputs of one wave of messages (a BatchCommands message) join one round.
    queueMicrotask(() => {
      this.#scheduled = false;
      if (this.#running !== null) return; // the loop in flight takes the new inputs
      if (stagesOn && this.#kickedAt >= 0) {
        stageClock.record(DRIVER_STAGES.kickToRound, stageNow() - this.#kickedAt);
      }
      this.#kickedAt = -1;
      // Set before the loop runs: a loop with nothing to do ends synchronously, and its
      // `finally` must see (and clear) this promise, not be overwritten by it afterwards.
      let done!: () => void;
      this.#running = new Promise<void>((resolve) => done = resolve);
      this.#loop().finally(done);
    });
  }

  /** Runs `work` between two rounds (at once when none runs), then a round. */
  betweenRounds(work: () => void): void {
    this.#between.push(work);
    this.kick();
  }

  #tick(): void {
    if (this.#stopped) return;
    try {
      this.store.tick();
    } catch (error) {
      return this.#fail(error);
    }
    this.kick();
  }

  async #loop(): Promise<void> {
    try {
      for (;;) {
        if (this.#stopped) return;
        if (this.#between.length > 0) await this.store.settleSyncs();
        if (this.#stopped) return;
        const between = this.#between;
        this.#between = [];
        for (const work of between) work();
        if (!this.store.hasWork()) return;
        const start = stagesOn ? stageNow() : 0;
        if (stagesOn && this.#kickedInRoundAt >= 0) {
          stageClock.record(DRIVER_STAGES.kickDuringRoundToRound, start - this.#kickedInRoundAt);
          this.#kickedInRoundAt = -1;
        }
        const worked = await this.store.round();
        if (worked && stagesOn) stageClock.record(DRIVER_STAGES.round, stageNow() - start);
        if (worked) this.#options.afterRound?.();
      }
    } catch (error) {
      this.#fail(error);
    } finally {
      this.#running = null;
      this.#kickedInRoundAt = -1;
    }
    // Inputs that came after the last `hasWork` check found the loop still running: run again.
    if (!this.#stopped && this.store.hasWork()) this.kick();
  }

  #fail(error: unknown): void {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#options.onBug(error);
  }

  /** Stops ticking, waits for the round in flight, and stops the store. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#running;
    this.store.stop();
  }
}
