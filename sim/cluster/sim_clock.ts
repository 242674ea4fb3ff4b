/**
 * The simulated wall clock the real client runs on in the cluster simulator (src/client's
 * `Clock` seam): time moves only when the run says so — `TICK_MS` per harness tick and
 * `ROUND_MS` per round within a tick — and sleeps and timers fire, in due order (ties in the
 * order they were set), when time reaches them. Jitter comes from a seeded source. So a client's
 * back-off, heartbeats, deadlines and lock TTLs happen at the same simulated instants on every
 * run of a seed.
 *
 * Invariant: `nowMs()` never goes back (`advanceTo` asserts it).
 *
 * @module
 */

import type { Clock } from "../../src/client/clock.ts";
import { ManualTimer } from "../../src/txn/lock_manager/timer.ts";
import type { LockWaitTimer } from "../../src/txn/lock_manager/mod.ts";
import { assert } from "../../src/util/assert.ts";
import type { SeededRandom } from "../../src/util/random.ts";

/** Simulated ms per harness tick (a store's raft-base-tick-interval, RAFTSTORE_TICK_MS). */
export const TICK_MS = 100;
/** Simulated ms per round within a tick (at most 4 rounds a tick: they stay inside it). */
export const ROUND_MS = 20;
/** The simulated clock's start: a fixed instant, so timestamps look like real ones. */
export const SIM_EPOCH_MS = 1_700_000_000_000;

/** A `Clock` (and a lock-wait timer for the stores) on simulated time (module header). */
export class SimClock implements Clock {
  readonly #timer = new ManualTimer(SIM_EPOCH_MS);

  constructor(readonly source: SeededRandom) {}

  nowMs(): number {
    return this.#timer.nowMs();
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.#timer.schedule(Math.max(0, ms), resolve));
  }

  setTimer(callback: () => void, ms: number): () => void {
    return this.#timer.schedule(Math.max(0, ms), callback);
  }

  random(): number {
    return this.source.next();
  }

  /** Moves time to `tick` ticks and `round` rounds past the epoch, firing what falls due. */
  advanceTo(position: { tick: number; round: number }): void {
    const targetMs = SIM_EPOCH_MS + position.tick * TICK_MS + position.round * ROUND_MS;
    const nowMs = this.#timer.nowMs();
    assert(targetMs >= nowMs, "the simulated clock never goes back", { targetMs, nowMs });
    this.#timer.advance(targetMs - nowMs);
  }

  /** Timers and sleeps not yet fired. */
  pendingTimers(): number {
    return this.#timer.pendingCount();
  }

  /** The stores' lock-wait timer on the same time. */
  lockWaitTimer(): LockWaitTimer {
    return {
      nowMs: () => this.#timer.nowMs(),
      schedule: (delayMs, callback) => this.#timer.schedule(Math.max(0, delayMs), callback),
    };
  }
}
