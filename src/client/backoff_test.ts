/** Backoffer: TiKV-style doubling with equal jitter, per-kind schedules, one deadline, one budget. */
import assert from "node:assert/strict";
import { type BackoffEnvironment, Backoffer } from "./backoff.ts";
import { BACKOFF_SCHEDULES } from "./constants.ts";
import { DeadlineExceededError, UnavailableError } from "./errors.ts";

/** A fake clock that advances only by sleeping; jitter fixed at `random`. */
function fakeEnvironment(random: number): BackoffEnvironment & { slept: number[] } {
  let nowMs = 0;
  const slept: number[] = [];
  return {
    slept,
    nowMs: () => nowMs,
    sleep: (ms) => {
      slept.push(ms);
      nowMs += ms;
      return Promise.resolve();
    },
    random: () => random,
  };
}

const cause = () => new UnavailableError("store down", { sent: false });

Deno.test("backoff sleeps double per attempt of a kind, up to the cap, with equal jitter", async () => {
  const environment = fakeEnvironment(1 - Number.EPSILON); // jitter at its top: the full sleep
  const backoffer = new Backoffer(1_000_000, { environment });
  for (let i = 0; i < 8; i++) await backoffer.backoff("storeUnavailable", cause());
  const { baseMs, capMs } = BACKOFF_SCHEDULES.storeUnavailable;
  assert.deepEqual(
    environment.slept,
    [0, 1, 2, 3, 4, 5, 6, 7].map((n) => Math.min(capMs, baseMs * 2 ** n)),
  );
  // Jitter at its bottom: half of the exponential sleep.
  const low = fakeEnvironment(0);
  const lowBackoffer = new Backoffer(1_000_000, { environment: low });
  await lowBackoffer.backoff("storeUnavailable", cause());
  assert.deepEqual(low.slept, [baseMs / 2]);
});

Deno.test("backoff schedules are per kind, and a server's hint replaces the first sleep", async () => {
  const environment = fakeEnvironment(1 - Number.EPSILON);
  const backoffer = new Backoffer(1_000_000, { environment });
  await backoffer.backoff("regionMiss", cause());
  await backoffer.backoff("regionMiss", cause());
  await backoffer.backoff("serverBusy", cause(), 300);
  await backoffer.backoff("serverBusy", cause(), 300);
  assert.deepEqual(environment.slept, [2, 4, 300, 600]);
  assert.equal(backoffer.attempts, 4);
});

Deno.test("backoff shortens the last sleep to the deadline, then gives up with DeadlineExceeded", async () => {
  const environment = fakeEnvironment(1 - Number.EPSILON);
  const backoffer = new Backoffer(120, { environment });
  await backoffer.backoff("storeUnavailable", cause()); // 50
  await backoffer.backoff("storeUnavailable", cause()); // 100 cut to 68: 2 ms left to try
  assert.deepEqual(environment.slept, [50, 68]);
  await assert.rejects(backoffer.backoff("storeUnavailable", cause()), (error) => {
    assert.ok(error instanceof DeadlineExceededError);
    assert.match(error.message, /after 3 attempts; last error: store down/);
    return true;
  });
  await assert.rejects(backoffer.retryNow(cause()), DeadlineExceededError);
});

Deno.test("the attempt budget surfaces the last error itself", async () => {
  const environment = fakeEnvironment(0);
  const backoffer = new Backoffer(1_000_000, { environment, maxAttempts: 3 });
  await backoffer.retryNow(cause());
  await backoffer.backoff("regionMiss", cause());
  const last = cause();
  await assert.rejects(backoffer.backoff("regionMiss", last), (error) => error === last);
});

Deno.test("fork: a request's own attempt budget, from its parent's count, with the call's deadline", async () => {
  const environment = fakeEnvironment(0);
  const call = new Backoffer(1_000_000, { environment, maxAttempts: 3 });
  const first = call.fork();
  const second = call.fork();
  await first.retryNow(cause());
  await first.retryNow(cause());
  await assert.rejects(first.retryNow(cause()), /store down/, "the third attempt is over budget");
  await second.retryNow(cause()); // unaffected by its sibling
  assert.equal(call.attempts, 0);
  assert.equal(second.deadlineMs, call.deadlineMs);
  // A regrouped part carries its parent's count on.
  const part = second.fork();
  assert.equal(part.attempts, 1);
  await part.retryNow(cause());
  await assert.rejects(part.retryNow(cause()), /store down/);
});

Deno.test("fork: a regrouped part carries on its parent's back-off schedule (sleeps keep doubling)", async () => {
  const environment = fakeEnvironment(1 - Number.EPSILON);
  const call = new Backoffer(1_000_000, { environment });
  // A request to a dead store, regrouped (forked from the last part) after every attempt.
  let part = call.fork();
  for (let i = 0; i < 5; i++) {
    await part.backoff("storeUnavailable", cause());
    part = part.fork();
  }
  const { baseMs, capMs } = BACKOFF_SCHEDULES.storeUnavailable;
  assert.deepEqual(environment.slept, [0, 1, 2, 3, 4].map((n) => Math.min(capMs, baseMs * 2 ** n)));
  // A sibling request of the call starts its schedule afresh.
  await call.fork().backoff("storeUnavailable", cause());
  assert.equal(environment.slept.at(-1), baseMs);
});
