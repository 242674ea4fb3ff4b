/**
 * Back-off while a lock is in the way (client-go's `txnLock` / `txnLockFast` back-off): sleeps
 * double per round with equal jitter, never longer than the lock has left to live (waiting
 * past its expiry is wasted: the resolver can roll it back then), and never past the call's
 * deadline, after which it throws `DeadlineExceededError` naming the lock it waited for.
 */
import type { Backoffer } from "../backoff.ts";
import { DeadlineExceededError } from "../errors.ts";

/** The lock back-off of one call. */
export class LockBackoff {
  #rounds = 0;
  #sleptMs = 0;

  constructor(
    readonly backoffer: Backoffer,
    readonly schedule: { baseMs: number; capMs: number },
  ) {}

  /** Total time slept, ms. */
  get sleptMs(): number {
    return this.#sleptMs;
  }

  /**
   * Sleeps before the next attempt; `msBeforeExpired` (> 0) bounds the sleep. `what` names
   * the lock for the error thrown when the deadline leaves no room for another attempt.
   */
  async wait(msBeforeExpired: number, what: string): Promise<void> {
    const clock = this.backoffer.environment;
    const remainingMs = this.backoffer.deadlineMs - clock.nowMs();
    if (remainingMs <= 1) {
      throw new DeadlineExceededError(
        `deadline exceeded after waiting ${this.#sleptMs} ms for ${what}`,
      );
    }
    const exponentialMs = Math.min(
      this.schedule.capMs,
      this.schedule.baseMs * 2 ** Math.min(this.#rounds, 20),
    );
    this.#rounds++;
    const jitteredMs = exponentialMs / 2 + clock.random() * exponentialMs / 2;
    const sleepMs = Math.max(
      1,
      Math.round(Math.min(jitteredMs, Math.max(1, msBeforeExpired), remainingMs - 1)),
    );
    this.#sleptMs += sleepMs;
    await clock.sleep(sleepMs);
  }
}
