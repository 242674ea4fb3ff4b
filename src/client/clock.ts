/**
 * The client's one view of time and chance: the wall clock (deadlines, a timestamp's physical
 * part), sleeps and timers (back-off, heartbeats, close's bounded wait) and the jitter of
 * back-off. Every request loop of the client takes them from a `Clock`, so a simulator can run
 * the real client on its simulated clock with a seeded random source (sim/cluster/), and a run
 * is a pure function of its seed. `REAL_CLOCK` — `Date.now`, `setTimeout`, `Math.random` — is
 * the default everywhere; passing nothing changes nothing.
 *
 * Not on this seam (they speak to sockets, which only exist in real time): the gRPC transport's
 * deadline timers and batching (`transport.ts`, `batch_stream.ts`), the PD client and its TSO
 * stream (`pd_client.ts`, `tso.ts`).
 *
 * This module imports nothing of the client.
 */

/** Cancels a timer set by `Clock.setTimer` (no effect once it fired). */
export type CancelTimer = () => void;

/** Time, timers and chance, as the client uses them. */
export interface Clock {
  /** Milliseconds since the Unix epoch (as `Date.now()`): deadlines, a timestamp's physical part. */
  nowMs(): number;
  /** Resolves after `ms`. */
  sleep(ms: number): Promise<void>;
  /** Calls `callback` once after `ms`; the returned function cancels it. */
  setTimer(callback: () => void, ms: number): CancelTimer;
  /** Uniform in [0, 1): back-off jitter. */
  random(): number;
}

/** The real clock: `Date.now`, `setTimeout` and `Math.random`. */
export const REAL_CLOCK: Clock = {
  nowMs: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  setTimer: (callback, ms) => {
    const id = setTimeout(callback, ms);
    return () => clearTimeout(id);
  },
  random: () => Math.random(),
};
