import assert from "node:assert/strict";
import { utf8 } from "../../util/bytes.ts";
import { DEFAULT_WAIT_FOR_LOCK_TIMEOUT_MS } from "./constants.ts";
import { DeadlockDetector } from "./deadlock.ts";
import { keyHash } from "./key_hash.ts";
import {
  type LockWaiter,
  type LockWaitOutcome,
  LockWaitQueue,
  type LockWaitRequest,
  normalizeWaitTimeoutMs,
} from "./lock_wait_queue.ts";
import { ManualTimer } from "./timer.ts";
import { AssertionError } from "../../util/assert.ts";

/** Stands in for the `KeyIsLocked` error the action returned. */
interface Locked {
  readonly key: string;
  readonly lockTs: bigint;
}

function setUp(wakeUpDelayMs = 20) {
  const timer = new ManualTimer(1000);
  const detector = new DeadlockDetector({ edgeTtlMs: 10_000 });
  const queue = new LockWaitQueue<Locked>({ timer, detector, wakeUpDelayMs });
  return { timer, detector, queue };
}

function request(
  startTs: bigint,
  key: string,
  lockTs: bigint,
  options: { timeoutMs?: number; isFirstLock?: boolean } = {},
): LockWaitRequest<Locked> {
  return {
    startTs,
    key: utf8(key),
    lockTs,
    error: { key, lockTs },
    timeoutMs: options.timeoutMs ?? 1000,
    isFirstLock: options.isFirstLock ?? false,
  };
}

/** Records each waiter's outcome as it settles, so tests can check what settled when. */
function track(waiter: LockWaiter<Locked>): { outcome?: LockWaitOutcome<Locked> } {
  const box: { outcome?: LockWaitOutcome<Locked> } = {};
  waiter.outcome.then((outcome) => (box.outcome = outcome));
  return box;
}

/** Lets settled promises run their `then` callbacks. */
async function flush(): Promise<void> {
  for (let i = 0; i < 3; i++) await Promise.resolve();
}

Deno.test("a waiter is woken with the commit ts when the lock on its key is released", async () => {
  const { queue, detector, timer } = setUp();
  const waiter = queue.wait(request(20n, "k", 10n));
  assert.equal(queue.waiterCount(), 1);
  assert.equal(detector.edgeCount(), 1);
  // Another key's release does not wake it.
  queue.wakeUp({ lockTs: 10n, keys: [utf8("other")], commitTs: 15n });
  assert.equal(queue.waiterCount(), 1);
  queue.wakeUp({ lockTs: 10n, keys: [utf8("k")], commitTs: 15n });
  assert.deepEqual(await waiter.outcome, { kind: "woken", commitTs: 15n });
  assert.equal(queue.hasWaiters(), false);
  // The woken waiter's edge and timeout timer are gone.
  assert.equal(detector.edgeCount(), 0);
  assert.equal(timer.pendingCount(), 0);
});

Deno.test("wake-up is FIFO: the oldest waiter now, earlier ones after the delay", async () => {
  const { queue, timer } = setUp(20);
  const first = track(queue.wait(request(30n, "k", 10n)));
  const second = track(queue.wait(request(20n, "k", 10n)));
  const third = track(queue.wait(request(40n, "k", 10n)));
  queue.wakeUp({ lockTs: 10n, keys: [utf8("k")], commitTs: 0n });
  await flush();
  assert.deepEqual(first.outcome, { kind: "woken", commitTs: 0n });
  assert.equal(second.outcome, undefined);
  assert.equal(third.outcome, undefined);

  // The first waiter retried and locked the key; a newcomer now waits on it (txn 30).
  const newcomer = track(queue.wait(request(50n, "k", 30n)));
  timer.advance(19);
  await flush();
  assert.equal(second.outcome, undefined);
  timer.advance(1);
  await flush();
  // The earlier waiters retry; the newcomer keeps waiting for txn 30.
  assert.deepEqual(second.outcome, { kind: "woken", commitTs: 0n });
  assert.deepEqual(third.outcome, { kind: "woken", commitTs: 0n });
  assert.equal(newcomer.outcome, undefined);
  assert.equal(queue.waiterCount(), 1);
});

Deno.test("a second wake-up of the key restarts the delay", async () => {
  const { queue, timer } = setUp(20);
  const a = track(queue.wait(request(21n, "k", 10n)));
  const b = track(queue.wait(request(22n, "k", 10n)));
  const c = track(queue.wait(request(23n, "k", 10n)));
  queue.wakeUp({ lockTs: 10n, keys: [utf8("k")], commitTs: 11n });
  timer.advance(15);
  queue.wakeUp({ lockTs: 10n, keys: [utf8("k")], commitTs: 12n });
  await flush();
  assert.deepEqual(a.outcome, { kind: "woken", commitTs: 11n });
  assert.deepEqual(b.outcome, { kind: "woken", commitTs: 12n });
  timer.advance(15);
  await flush();
  assert.equal(c.outcome, undefined);
  timer.advance(5);
  await flush();
  assert.deepEqual(c.outcome, { kind: "woken", commitTs: 12n });
  assert.equal(timer.pendingCount(), 0);
});

Deno.test("a waiter that times out gets the original KeyIsLocked back", async () => {
  const { queue, detector, timer } = setUp();
  const waiter = track(queue.wait(request(20n, "k", 10n, { timeoutMs: 300 })));
  timer.advance(299);
  await flush();
  assert.equal(waiter.outcome, undefined);
  timer.advance(1);
  await flush();
  assert.deepEqual(waiter.outcome, { kind: "timeout", error: { key: "k", lockTs: 10n } });
  assert.equal(queue.waiterCount(), 0);
  assert.equal(detector.edgeCount(), 0);
  // A late release finds nobody and does nothing.
  queue.wakeUp({ lockTs: 10n, keys: [utf8("k")], commitTs: 1n });
  assert.equal(timer.pendingCount(), 0);
});

Deno.test("deadlock: T1 waits for T2 on k2, then T2 waiting for T1 on k1 is refused", async () => {
  const { queue, detector } = setUp();
  const t1 = track(queue.wait(request(1n, "k2", 2n)));
  const t2 = queue.wait(request(2n, "k1", 1n));
  const outcome = await t2.outcome;
  assert.equal(outcome.kind, "deadlock");
  if (outcome.kind !== "deadlock") return;
  assert.equal(outcome.deadlock.lockTs, 1n);
  assert.deepEqual(outcome.deadlock.lockKey, utf8("k1"));
  assert.equal(outcome.deadlock.deadlockKeyHash, keyHash(utf8("k2")));
  assert.deepEqual(
    outcome.deadlock.waitChain.map((e) => [e.txn, e.waitForTxn, e.key]),
    [[1n, 2n, utf8("k2")], [2n, 1n, utf8("k1")]],
  );
  // T2 was not queued; T1 still waits and still has its edge.
  await flush();
  assert.equal(t1.outcome, undefined);
  assert.equal(queue.waiterCount(), 1);
  assert.equal(detector.edgeCount(), 1);
});

Deno.test("a transaction's first lock skips deadlock detection", async () => {
  const { queue, detector } = setUp();
  queue.wait(request(1n, "k2", 2n, { isFirstLock: true }));
  assert.equal(detector.edgeCount(), 0);
  // Without the edge 1 → 2 the reverse wait is allowed.
  const t2 = track(queue.wait(request(2n, "k1", 1n)));
  await flush();
  assert.equal(t2.outcome, undefined);
  assert.equal(queue.waiterCount(), 2);
});

Deno.test("after T1 finishes, cleanUpTxn removes its edges and T2 may wait on T1", async () => {
  const { queue, detector } = setUp();
  const t1 = queue.wait(request(1n, "k2", 2n));
  queue.cancel(t1.token, "region moved");
  assert.deepEqual(await t1.outcome, { kind: "cancelled", reason: "region moved" });
  assert.equal(detector.edgeCount(), 0);
  detector.detect({ txnTs: 1n, lockTs: 2n, keyHash: 7n, key: utf8("x"), nowMs: 1000 });
  queue.cleanUpTxn(1n);
  const t2 = track(queue.wait(request(2n, "k1", 1n)));
  await flush();
  assert.equal(t2.outcome, undefined);
  // Cancelling twice, or an unknown token, is harmless.
  queue.cancel(t1.token, "again");
  queue.cancel(999, "unknown");
});

Deno.test("waitForEntries lists the current waits", () => {
  const { queue } = setUp();
  queue.wait(request(20n, "a", 10n));
  queue.wait(request(30n, "a", 10n));
  queue.wait(request(40n, "b", 20n, { isFirstLock: true }));
  assert.deepEqual(
    queue.waitForEntries().map((e) => [e.txn, e.waitForTxn, e.keyHash === keyHash(e.key)]),
    [[20n, 10n, true], [30n, 10n, true], [40n, 20n, true]],
  );
});

Deno.test("waiting for one's own lock is a bug", () => {
  const { queue } = setUp();
  assert.throws(() => queue.wait(request(5n, "k", 5n)), /its own lock/);
});

Deno.test("normalizeWaitTimeoutMs: 0 is the default, negative is no wait, large is capped", () => {
  assert.equal(normalizeWaitTimeoutMs(0n), DEFAULT_WAIT_FOR_LOCK_TIMEOUT_MS);
  assert.equal(normalizeWaitTimeoutMs(-1n), undefined);
  assert.equal(normalizeWaitTimeoutMs(250n), 250);
  assert.equal(normalizeWaitTimeoutMs(10n ** 12n), DEFAULT_WAIT_FOR_LOCK_TIMEOUT_MS);
  assert.equal(normalizeWaitTimeoutMs(5000n, 3000), 3000);
});

Deno.test("ManualTimer fires due callbacks in due order, ties in scheduling order", () => {
  const timer = new ManualTimer(0);
  const fired: string[] = [];
  timer.schedule(10, () => fired.push("b"));
  timer.schedule(5, () => {
    fired.push("a");
    // Scheduled from a callback at t=5 for t=10: after "b", which was scheduled earlier.
    timer.schedule(5, () => fired.push("c"));
  });
  const cancel = timer.schedule(7, () => fired.push("cancelled"));
  cancel();
  cancel();
  timer.advance(10);
  assert.deepEqual(fired, ["a", "b", "c"]);
  assert.equal(timer.nowMs(), 10);
  assert.throws(() => timer.advance(-1), AssertionError);
});

Deno.test("past maxWaiters a request is refused at once with its KeyIsLocked", async () => {
  const timer = new ManualTimer();
  const queue = new LockWaitQueue<Locked>({
    timer,
    detector: new DeadlockDetector(),
    maxWaiters: 2,
  });
  queue.wait(request(20n, "a", 10n));
  queue.wait(request(21n, "b", 10n));
  const third = queue.wait(request(22n, "c", 10n));
  assert.deepEqual(await third.outcome, { kind: "queue_full", error: { key: "c", lockTs: 10n } });
  assert.equal(queue.waiterCount(), 2);
  assert.equal(timer.pendingCount(), 2);
});
