/**
 * Back-off between retries, as TiKV's `Backoffer`: each kind of trouble has its own schedule
 * (first sleep, cap), sleeps double per attempt of that kind with "equal jitter" (half fixed,
 * half random), and the whole call shares one deadline; each request of it has an attempt
 * budget (`fork`). A sleep that
 * would cross the deadline is shortened to leave room for a last attempt; when no time is left,
 * or the budget is spent, `backoff` throws the error that caused it (wrapped as
 * `DeadlineExceededError` when time ran out) instead of sleeping.
 */
import {
  BACKOFF_MIN_ATTEMPT_MS,
  BACKOFF_SCHEDULES,
  MAX_ATTEMPTS_PER_REQUEST,
} from "./constants.ts";
import { type Clock, REAL_CLOCK } from "./clock.ts";
import { type ClientError, DeadlineExceededError } from "./errors.ts";

/** A kind of trouble with its own schedule. */
export type BackoffKind = keyof typeof BACKOFF_SCHEDULES;

/** What a backoffer needs from the outside world: a part of the client's `Clock`. */
export type BackoffEnvironment = Pick<Clock, "nowMs" | "sleep" | "random">;

/** The real clock, timers and `Math.random`. */
export const REAL_ENVIRONMENT: BackoffEnvironment = REAL_CLOCK;

/** The back-off state of one client call. */
export class Backoffer {
  readonly deadlineMs: number;
  readonly #environment: BackoffEnvironment;
  readonly #attemptsByKind = new Map<BackoffKind, number>();
  readonly #maxAttempts: number;
  #attempts = 0;
  #totalSleepMs = 0;

  constructor(
    deadlineMs: number,
    options: { environment?: BackoffEnvironment; maxAttempts?: number } = {},
  ) {
    this.deadlineMs = deadlineMs;
    this.#environment = options.environment ?? REAL_ENVIRONMENT;
    this.#maxAttempts = options.maxAttempts ?? MAX_ATTEMPTS_PER_REQUEST;
  }

  /**
   * A backoffer for one request of this call (one region's part of a batch, one page of a
   * scan): the same deadline and clock, starting from this one's attempts, then counting its
   * own. A call over many regions gives each request its own attempt budget — a scan over 500
   * regions whose leaders all moved meets 500 NotLeaders, none of them a reason to give up —
   * while a request regrouped after a region error carries on from its parent's count — and
   * from its parent's place in each kind's schedule: a request sent again to a dead leader's
   * store is regrouped after every attempt, and with its sleeps starting over at the base each
   * time it would spend its whole budget in a few seconds, before a new leader is elected.
   */
  fork(): Backoffer {
    const child = new Backoffer(this.deadlineMs, {
      environment: this.#environment,
      maxAttempts: this.#maxAttempts,
    });
    child.#attempts = this.#attempts;
    for (const [kind, count] of this.#attemptsByKind) child.#attemptsByKind.set(kind, count);
    return child;
  }

  /** The clock and random source this backoffer sleeps by (a lock back-off sleeps by it too). */
  get environment(): BackoffEnvironment {
    return this.#environment;
  }

  /** Retries so far. */
  get attempts(): number {
    return this.#attempts;
  }

  /** Total time slept, ms. */
  get totalSleepMs(): number {
    return this.#totalSleepMs;
  }

  /** Whether the deadline has passed. */
  expired(): boolean {
    return this.#environment.nowMs() >= this.deadlineMs;
  }

  /**
   * Counts an attempt that needs no sleep (the error said where to go instead), or throws
   * when the budget or the deadline is spent.
   */
  retryNow(cause: ClientError): Promise<void> {
    this.#attempts++;
    if (this.#attempts >= this.#maxAttempts) return Promise.reject(cause);
    if (this.deadlineMs - this.#environment.nowMs() <= BACKOFF_MIN_ATTEMPT_MS) {
      return Promise.reject(
        new DeadlineExceededError(
          `deadline exceeded after ${this.#attempts} attempts; last error: ${cause.message}`,
          { cause },
        ),
      );
    }
    return Promise.resolve();
  }

  /**
   * Sleeps before the next attempt after `cause`, or throws when no attempt is left in time.
   * `hintMs` (e.g. ServerIsBusy's backoff_ms) replaces the schedule's first sleep.
   */
  async backoff(kind: BackoffKind, cause: ClientError, hintMs?: number): Promise<void> {
    this.#attempts++;
    // The budget is spent: the caller sees the error it could not get past.
    if (this.#attempts >= this.#maxAttempts) throw cause;
    // A sleep that would cross the deadline is cut short so one last attempt fits before it;
    // with no time left for an attempt, the call gives up.
    const remainingMs = this.deadlineMs - this.#environment.nowMs();
    if (remainingMs <= BACKOFF_MIN_ATTEMPT_MS) {
      throw new DeadlineExceededError(
        `deadline exceeded after ${this.#attempts} attempts; last error: ${cause.message}`,
        { cause },
      );
    }
    const sleepMs = Math.min(
      this.#nextSleepMs(kind, hintMs),
      remainingMs - BACKOFF_MIN_ATTEMPT_MS,
    );
    this.#totalSleepMs += sleepMs;
    await this.#environment.sleep(sleepMs);
  }

  #nextSleepMs(kind: BackoffKind, hintMs: number | undefined): number {
    const schedule = BACKOFF_SCHEDULES[kind];
    const n = this.#attemptsByKind.get(kind) ?? 0;
    this.#attemptsByKind.set(kind, n + 1);
    const baseMs = hintMs !== undefined && hintMs > 0 ? hintMs : schedule.baseMs;
    const capMs = Math.max(schedule.capMs, baseMs);
    const exponentialMs = Math.min(capMs, baseMs * 2 ** Math.min(n, 30));
    const half = exponentialMs / 2;
    return Math.round(half + this.#environment.random() * half);
  }
}
