import assert from "node:assert/strict";
import { encodeKey } from "../codec/key.ts";
import { U64_MAX } from "../codec/number.ts";
import { utf8 } from "../util/bytes.ts";
import { ConcurrencyManager, MemoryLockTableFullError } from "./concurrency_manager.ts";
import { AssertionError } from "../util/assert.ts";

interface TestLock {
  readonly ts: bigint;
  readonly primary: string;
}

function manager(latestTs = 10n): ConcurrencyManager<TestLock> {
  return new ConcurrencyManager<TestLock>({ latestTs, lockStartTs: (lock) => lock.ts });
}

function key(text: string): Uint8Array {
  return encodeKey(utf8(text));
}

/** The check a snapshot read at `readTs` makes: a lock with ts <= readTs blocks it. */
function blocksReadAt(readTs: bigint) {
  return (lock: TestLock) => (lock.ts <= readTs ? lock : undefined);
}

Deno.test("updateMaxTs only raises max_ts and ignores U64_MAX", () => {
  const cm = manager(10n);
  assert.equal(cm.maxTs(), 10n);
  cm.updateMaxTs(5n);
  assert.equal(cm.maxTs(), 10n);
  cm.updateMaxTs(42n);
  assert.equal(cm.maxTs(), 42n);
  cm.updateMaxTs(U64_MAX);
  assert.equal(cm.maxTs(), 42n);
  assert.throws(() => cm.updateMaxTs(-1n), AssertionError);
});

Deno.test("a memory lock is visible to readKeyCheck only while its guard is held", async () => {
  const cm = manager();
  const k = key("k");
  assert.equal(cm.readKeyCheck(k, blocksReadAt(100n)), undefined);

  const guard = await cm.lockKey(k);
  // Held but no lock published yet: readers pass.
  assert.equal(cm.readKeyCheck(k, blocksReadAt(100n)), undefined);
  const lock = { ts: 20n, primary: "k" };
  guard.setLock(lock);
  assert.equal(cm.readKeyCheck(k, blocksReadAt(100n)), lock);
  // A read below the lock's ts is not blocked by it.
  assert.equal(cm.readKeyCheck(k, blocksReadAt(19n)), undefined);
  // Another key is unaffected.
  assert.equal(cm.readKeyCheck(key("k2"), blocksReadAt(100n)), undefined);

  guard.release();
  assert.equal(cm.readKeyCheck(k, blocksReadAt(100n)), undefined);
  assert.equal(cm.size(), 0);
  assert.throws(() => guard.release(), /a guard is released once/);
  assert.throws(() => guard.setLock(lock), /publishes a lock only while held/);
});

Deno.test("lockKey serialises holders of one key in FIFO order", async () => {
  const cm = manager();
  const k = key("k");
  const first = await cm.lockKey(k);
  const order: string[] = [];
  const second = cm.lockKey(k).then((guard) => {
    order.push("second");
    return guard;
  });
  const third = cm.lockKey(k).then((guard) => {
    order.push("third");
    return guard;
  });
  // Let the microtask queue drain: nobody else may acquire while `first` holds the key.
  await Promise.resolve();
  await Promise.resolve();
  assert.deepEqual(order, []);

  first.setLock({ ts: 1n, primary: "k" });
  first.release();
  const secondGuard = await second;
  assert.deepEqual(order, ["second"]);
  // The first guard's lock is gone with it.
  assert.equal(secondGuard.lock(), undefined);
  assert.equal(cm.readKeyCheck(k, blocksReadAt(100n)), undefined);
  secondGuard.release();
  (await third).release();
  assert.deepEqual(order, ["second", "third"]);
  assert.equal(cm.size(), 0);
});

Deno.test("lockKeys returns guards in argument order and takes keys in sorted order", async () => {
  const cm = manager();
  const keys = [key("c"), key("a"), key("b")];
  const guards = await cm.lockKeys(keys);
  assert.deepEqual(guards.map((g) => g.key), keys);
  // Two overlapping lockKeys calls with opposite orders must both finish (no deadlock).
  const pending = cm.lockKeys([key("b"), key("a")]);
  for (const guard of guards) guard.release();
  const later = await pending;
  assert.deepEqual(later.map((g) => g.key), [key("b"), key("a")]);
  for (const guard of later) guard.release();
  assert.equal(cm.size(), 0);
});

Deno.test("readRangeCheck sees memory locks in [start, end) in key order", async () => {
  const cm = manager();
  const guards = await cm.lockKeys([key("a"), key("b"), key("c"), key("d")]);
  guards[0]!.setLock({ ts: 50n, primary: "a" });
  // "b" is held without a lock: invisible to readers.
  guards[2]!.setLock({ ts: 30n, primary: "a" });
  guards[3]!.setLock({ ts: 10n, primary: "a" });

  const seen: string[] = [];
  const none = cm.readRangeCheck({ startKey: key("b"), endKey: key("d") }, (_k, lock) => {
    seen.push(`${lock.ts}`);
    return undefined;
  });
  assert.equal(none, undefined);
  assert.deepEqual(seen, ["30"]);

  // The first blocking lock in key order wins.
  const blocker = cm.readRangeCheck({}, (_k, lock) => (lock.ts <= 40n ? lock.ts : undefined));
  assert.equal(blocker, 30n);
  // Unbounded start, bounded end excludes "d".
  assert.equal(
    cm.readRangeCheck({ endKey: key("d") }, (_k, lock) => (lock.ts === 10n ? 1 : undefined)),
    undefined,
  );
  // A start key between stored keys starts at the next one.
  const fromBetween: Uint8Array[] = [];
  cm.readRangeCheck({ startKey: key("bb") }, (k) => {
    fromBetween.push(k);
    return undefined;
  });
  assert.deepEqual(fromBetween, [key("c"), key("d")]);
  for (const guard of guards) guard.release();
});

Deno.test("globalMinLock reports the smallest start ts among memory locks", async () => {
  const cm = manager();
  assert.equal(cm.globalMinLock(), undefined);
  const [a, b, c] = await cm.lockKeys([key("a"), key("b"), key("c")]);
  a!.setLock({ ts: 40n, primary: "a" });
  b!.setLock({ ts: 15n, primary: "a" });
  // c holds no lock and does not count.
  assert.deepEqual(cm.globalMinLock(), { ts: 15n, key: key("b") });
  b!.release();
  assert.deepEqual(cm.globalMinLock(), { ts: 40n, key: key("a") });
  a!.release();
  c!.release();
  assert.equal(cm.globalMinLock(), undefined);
});

Deno.test("async commit: a reader either pushes max_ts first or sees the memory lock", async () => {
  // The scheduler's order for an async-commit prewrite: lock the key, read max_ts, compute
  // min_commit_ts, publish the lock. A reader announces its ts and then checks.
  const cm = manager(10n);
  const k = key("k");
  const guard = await cm.lockKey(k);

  // Reader at ts 30 arrives before the prewrite reads max_ts.
  cm.updateMaxTs(30n);
  const minCommitTs = cm.maxTs() + 1n;
  assert.equal(minCommitTs, 31n);
  guard.setLock({ ts: 20n, primary: "k" });
  // A second reader at 40 arrives after the lock is published: it sees it.
  cm.updateMaxTs(40n);
  assert.deepEqual(cm.readKeyCheck(k, blocksReadAt(40n)), { ts: 20n, primary: "k" });
  guard.release();
});

Deno.test("a full memory lock table refuses a new key with MemoryLockTableFullError, and takes it once a key leaves", async () => {
  const cm = new ConcurrencyManager<{ ts: bigint }>({
    latestTs: 1n,
    lockStartTs: (lock) => lock.ts,
    maxKeys: 2,
  });
  const first = await cm.lockKey(key("a"));
  await cm.lockKey(key("b"));
  assert.throws(() => cm.lockKey(key("c")), MemoryLockTableFullError);
  // A key already in the table is still granted (to wait for it costs no new slot).
  const waiting = cm.lockKey(key("a"));
  first.release();
  (await waiting).release();
  assert.equal(cm.size(), 1);
  (await cm.lockKey(key("c"))).release();
  assert.throws(
    () => new ConcurrencyManager({ latestTs: 1n, lockStartTs: () => 0n, maxKeys: 0 }),
    AssertionError,
  );
});
