/**
 * The clock and one-shot timers the lock manager runs on. The lock manager never reads a
 * clock or calls `setTimeout` itself: the store's worker glue passes a timer backed by the real
 * clock, and tests and the simulator pass `ManualTimer`, which fires only when told to.
 *
 * @module
 */
import { assert } from "../../util/assert.ts";

/** A clock plus one-shot callbacks. */
export interface LockWaitTimer {
  /** Milliseconds on a monotonic clock. */
  nowMs(): number;
  /** Calls `callback` once after `delayMs`; the returned function cancels it (idempotent). */
  schedule(delayMs: number, callback: () => void): () => void;
}

interface Scheduled {
  readonly dueMs: number;
  readonly sequence: number;
  readonly callback: () => void;
}

/**
 * A deterministic `LockWaitTimer`: time moves only in `advance`, and callbacks due at the same
 * time run in the order they were scheduled.
 *
 * @example
 * ```ts
 * import { ManualTimer } from "./timer.ts";
 * const timer = new ManualTimer();
 * let fired = false;
 * timer.schedule(10, () => (fired = true));
 * timer.advance(9); // fired === false
 * timer.advance(1); // fired === true
 * ```
 */
export class ManualTimer implements LockWaitTimer {
  #nowMs: number;
  #sequence = 0;
  #pending: Scheduled[] = [];

  constructor(startMs = 0) {
    this.#nowMs = startMs;
  }

  nowMs(): number {
    return this.#nowMs;
  }

  schedule(delayMs: number, callback: () => void): () => void {
    assert(delayMs >= 0, "ManualTimer.schedule: the delay is not negative", { delayMs });
    const entry = { dueMs: this.#nowMs + delayMs, sequence: this.#sequence++, callback };
    this.#pending.push(entry);
    return () => {
      this.#pending = this.#pending.filter((other) => other !== entry);
    };
  }

  /** Moves time forward by `ms`, running every callback that falls due, in due order. */
  advance(ms: number): void {
    assert(ms >= 0, "ManualTimer.advance: the step is not negative", { ms });
    const targetMs = this.#nowMs + ms;
    for (;;) {
      const next = this.#earliest();
      if (next === undefined || next.dueMs > targetMs) break;
      this.#pending = this.#pending.filter((other) => other !== next);
      this.#nowMs = next.dueMs;
      next.callback();
    }
    this.#nowMs = targetMs;
  }

  /** Number of callbacks not yet fired or cancelled. */
  pendingCount(): number {
    return this.#pending.length;
  }

  #earliest(): Scheduled | undefined {
    let best: Scheduled | undefined;
    for (const entry of this.#pending) {
      if (
        best === undefined || entry.dueMs < best.dueMs ||
        (entry.dueMs === best.dueMs && entry.sequence < best.sequence)
      ) best = entry;
    }
    return best;
  }
}
