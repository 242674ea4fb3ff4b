/**
 * Pessimistic locking as the scheduler drives it: the action answers KeyIsLocked, the request
 * waits in the lock manager's queue, the holder's commit or rollback wakes it, it retries.
 * Deadlocks between waiting transactions are refused with kvproto's Deadlock error.
 */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { type MvccError, mvccErrorToKeyError, type MvccResult } from "../../mvcc/errors.ts";
import type { ReleasedLock } from "../../mvcc/txn.ts";
import { utf8 } from "../../util/bytes.ts";
import { DeadlockDetector } from "../lock_manager/deadlock.ts";
import { deadlockError } from "../lock_manager/deadlock_error.ts";
import { keyHash } from "../lock_manager/key_hash.ts";
import { type LockWaitOutcome, LockWaitQueue } from "../lock_manager/lock_wait_queue.ts";
import { ManualTimer } from "../lock_manager/timer.ts";
import {
  acquirePessimisticLock,
  acquirePessimisticLocks,
  type PessimisticLockKeyResult,
} from "./acquire_pessimistic_lock.ts";
import { commit } from "./commit.ts";
import { rollback } from "./rollback.ts";
import { key, kindOf, MvccFixture, prewriteKey, run } from "./test_support.ts";

function lockKeys(
  fx: MvccFixture,
  keys: string[],
  ts: { startTs: bigint; forUpdateTs: bigint },
): MvccResult<PessimisticLockKeyResult[]> {
  return run(fx, ts.startTs, (txn, reader) =>
    acquirePessimisticLocks(txn, reader, {
      keys: keys.map((k) => ({ key: key(k), shouldNotExist: false })),
      primary: utf8(keys[0]!),
      lockTtlMs: 3000n,
      forUpdateTs: ts.forUpdateTs,
      needValue: false,
      needCheckExistence: false,
      minCommitTs: 0n,
      lockOnlyIfExists: false,
      allowLockWithConflict: false,
    })).result;
}

function setUp() {
  const timer = new ManualTimer(0);
  const queue = new LockWaitQueue<MvccError>({ timer, detector: new DeadlockDetector() });
  return { fx: new MvccFixture(), timer, queue };
}

/** What the scheduler does after applying a command that released locks. */
function wakeWaiters(queue: LockWaitQueue<MvccError>, released: readonly ReleasedLock[]): void {
  for (const lock of released) {
    queue.wakeUp({ lockTs: lock.startTs, keys: [lock.key.encoded], commitTs: lock.commitTs });
  }
}

/** Starts waiting on the KeyIsLocked of `result`, as the scheduler does. */
function waitOn(
  queue: LockWaitQueue<MvccError>,
  result: MvccResult<unknown>,
  options: { startTs: bigint; isFirstLock: boolean; timeoutMs?: number },
): Promise<LockWaitOutcome<MvccError>> {
  assert(!result.ok && result.error.kind === "KeyIsLocked", "expected KeyIsLocked");
  const info = result.error.lockInfo;
  return queue.wait({
    startTs: options.startTs,
    key: key(new TextDecoder().decode(info.key!)).encoded,
    rawKey: info.key!,
    lockTs: info.lockVersion!,
    error: result.error,
    timeoutMs: options.timeoutMs ?? 1000,
    isFirstLock: options.isFirstLock,
  }).outcome;
}

Deno.test("a waiter woken by the holder's commit retries and meets a WriteConflict, then locks at the new for_update_ts", async () => {
  const { fx, queue } = setUp();
  fx.commitPut("k", "v0", { startTs: 1n, commitTs: 2n });
  assert(lockKeys(fx, ["k"], { startTs: 10n, forUpdateTs: 10n }).ok);

  const blocked = lockKeys(fx, ["k"], { startTs: 20n, forUpdateTs: 20n });
  const outcome = waitOn(queue, blocked, { startTs: 20n, isFirstLock: true });

  // T10 prewrites and commits at 30: its lock is released.
  assert(prewriteKey(fx, "k", { value: "v10", startTs: 10n, forUpdateTs: 10n }).result.ok);
  const committed = run(fx, 10n, (txn, r) => commit(txn, r, { key: key("k"), commitTs: 30n }));
  assert(committed.result.ok);
  wakeWaiters(queue, committed.txn.releasedLocks);
  assertEquals(await outcome, { kind: "woken", commitTs: 30n });

  // The retry at the old for_update_ts conflicts with the new version (Percolator:
  // pessimistic transactions read at for_update_ts, so the statement must re-read).
  const retry = lockKeys(fx, ["k"], { startTs: 20n, forUpdateTs: 20n });
  assert(!retry.ok && retry.error.kind === "WriteConflict");
  assertEquals([retry.error.conflictStartTs, retry.error.conflictCommitTs], [10n, 30n]);
  assert(lockKeys(fx, ["k"], { startTs: 20n, forUpdateTs: 31n }).ok);
  assertEquals(fx.lock("k")?.forUpdateTs, 31n);
});

Deno.test("a waiter woken by the holder's rollback retries and takes the lock", async () => {
  const { fx, queue } = setUp();
  assert(lockKeys(fx, ["k"], { startTs: 10n, forUpdateTs: 10n }).ok);
  const outcome = waitOn(queue, lockKeys(fx, ["k"], { startTs: 20n, forUpdateTs: 20n }), {
    startTs: 20n,
    isFirstLock: true,
  });
  const rolledBack = run(fx, 10n, (txn, r) => rollback(txn, r, key("k")));
  assert(rolledBack.result.ok);
  wakeWaiters(queue, rolledBack.txn.releasedLocks);
  assertEquals(await outcome, { kind: "woken", commitTs: 0n });
  assert(lockKeys(fx, ["k"], { startTs: 20n, forUpdateTs: 20n }).ok);
  assertEquals(fx.lock("k")?.startTs, 20n);
});

Deno.test("a waiter that times out answers the original KeyIsLocked", async () => {
  const { fx, queue, timer } = setUp();
  assert(lockKeys(fx, ["k"], { startTs: 10n, forUpdateTs: 10n }).ok);
  const blocked = lockKeys(fx, ["k"], { startTs: 20n, forUpdateTs: 20n });
  const outcome = waitOn(queue, blocked, { startTs: 20n, isFirstLock: true, timeoutMs: 50 });
  timer.advance(50);
  const result = await outcome;
  assert(result.kind === "timeout");
  assertEquals(result.error, !blocked.ok ? blocked.error : null);
  assertEquals(mvccErrorToKeyError(result.error).locked?.lockVersion, 10n);
});

Deno.test("deadlock: T1 holds k1 and waits for k2, T2 holds k2 and asks for k1: refused with Deadlock", async () => {
  const { fx, queue } = setUp();
  assert(lockKeys(fx, ["k1"], { startTs: 1n, forUpdateTs: 1n }).ok);
  assert(lockKeys(fx, ["k2"], { startTs: 2n, forUpdateTs: 2n }).ok);
  const t1 = waitOn(queue, lockKeys(fx, ["k2"], { startTs: 1n, forUpdateTs: 1n }), {
    startTs: 1n,
    isFirstLock: false,
  });
  const t2 = await waitOn(queue, lockKeys(fx, ["k1"], { startTs: 2n, forUpdateTs: 2n }), {
    startTs: 2n,
    isFirstLock: false,
  });
  assert(t2.kind === "deadlock");
  const { error, waitChain } = deadlockError(2n, t2.deadlock);
  const keyError = mvccErrorToKeyError(error);
  assertEquals(keyError.deadlock?.lockTs, 1n);
  assertEquals(keyError.deadlock?.lockKey, utf8("k1"));
  assertEquals(keyError.deadlock?.deadlockKeyHash, keyHash(key("k2").encoded));
  assertEquals(keyError.deadlock?.deadlockKey, utf8("k2"));
  assertEquals(waitChain.map((e) => [e.txn, e.waitForTxn]), [[1n, 2n], [2n, 1n]]);

  // T2 gives up (rolls back); T1 is woken and gets k2.
  const rolledBack = run(fx, 2n, (txn, r) => rollback(txn, r, key("k2")));
  assert(rolledBack.result.ok);
  wakeWaiters(queue, rolledBack.txn.releasedLocks);
  queue.cleanUpTxn(2n);
  assertEquals((await t1).kind, "woken");
  // T2's rollback record at 2 is newer than T1's for_update_ts 1: as in TiKV, any newer
  // record is a conflict, and T1 retries at a fresh for_update_ts.
  assertEquals(kindOf(lockKeys(fx, ["k2"], { startTs: 1n, forUpdateTs: 1n })), "WriteConflict");
  assert(lockKeys(fx, ["k2"], { startTs: 1n, forUpdateTs: 3n }).ok);
});

Deno.test("acquirePessimisticLock() with allowLockWithConflict on a newer own lock reports the lock's version", () => {
  const fx = new MvccFixture();
  fx.commitPut("k", "v", { startTs: 1n, commitTs: 2n });
  assert(lockKeys(fx, ["k"], { startTs: 10n, forUpdateTs: 15n }).ok);
  // A stale request of the same transaction at for_update_ts 12 (e.g. a delayed retry).
  const { result } = run(fx, 10n, (txn, reader) =>
    acquirePessimisticLock(txn, reader, {
      key: key("k"),
      shouldNotExist: false,
      primary: utf8("k"),
      lockTtlMs: 3000n,
      forUpdateTs: 12n,
      needValue: false,
      needCheckExistence: false,
      minCommitTs: 0n,
      lockOnlyIfExists: false,
      allowLockWithConflict: true,
    }));
  assertEquals(result, {
    ok: true,
    value: { kind: "LockedWithConflict", value: utf8("v"), conflictTs: 15n },
  });
  assertEquals(fx.lock("k")?.forUpdateTs, 15n, "the lock is not moved back");
});

Deno.test("acquirePessimisticLocks() refuses lock-with-conflict over several keys", () => {
  const fx = new MvccFixture();
  const { result } = run(fx, 10n, (txn, reader) =>
    acquirePessimisticLocks(txn, reader, {
      keys: [{ key: key("a"), shouldNotExist: false }, { key: key("b"), shouldNotExist: false }],
      primary: utf8("a"),
      lockTtlMs: 3000n,
      forUpdateTs: 10n,
      needValue: false,
      needCheckExistence: false,
      minCommitTs: 0n,
      lockOnlyIfExists: false,
      allowLockWithConflict: true,
    }));
  assert(!result.ok && result.error.kind === "InvalidRequest");
  assertEquals(fx.lock("a"), null);
});
