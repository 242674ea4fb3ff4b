import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import { kvrpcpb } from "../../proto/mod.ts";
import { utf8 } from "../util/bytes.ts";
import { decodeLock, newLock } from "../txn_types/lock.ts";
import { newWrite } from "../txn_types/write.ts";
import { describeMvccError, type MvccError, mvccErrorToKeyError } from "./errors.ts";
import { lockKeyHash, MvccTxn } from "./txn.ts";
import { key, MvccFixture } from "./test_support.ts";

Deno.test("MvccTxn buffers modifications and applies them as one batch, in order", () => {
  const fx = new MvccFixture();
  const txn = new MvccTxn(10n);
  const lock = newLock({ lockType: "Put", primary: utf8("k"), startTs: 10n, ttlMs: 5n });
  txn.putLock(key("k"), lock, true);
  txn.putValue(key("k"), 10n, utf8("long"));
  assertEquals(fx.lock("k"), null, "nothing is written before applyTo");
  fx.write(txn);
  assertEquals(fx.lock("k"), lock);
  assertEquals(fx.value("k", 10n), utf8("long"));
  assertEquals(txn.newLocks.map((info) => info.lockVersion), [10n]);
  assert(txn.writeSizeBytes > 0);

  const commit = new MvccTxn(10n);
  commit.putWrite(key("k"), 12n, newWrite({ writeType: "Put", startTs: 10n }));
  const released = commit.unlockKey(key("k"), false, 12n);
  assertEquals(commit.pendingLock(key("k")), "deleted");
  assertEquals(commit.pendingLock(key("j")), null);
  fx.write(commit);
  assertEquals(fx.lock("k"), null);
  assertEquals(fx.get("k", 12n), "long");
  assertEquals(released, { key: key("k"), startTs: 10n, commitTs: 12n, pessimistic: false });
  assertEquals(commit.releasedLocks, [released]);
});

Deno.test("MvccTxn refuses to apply while 1PC locks wait for their commit ts", () => {
  const txn = new MvccTxn(10n);
  txn.putLockForOnePc(
    key("k"),
    newLock({ lockType: "Put", primary: utf8("k"), startTs: 10n }),
    false,
  );
  assert(!txn.isEmpty());
  const fx = new MvccFixture();
  throws(() => fx.write(txn), /1PC locks not yet committed/);
});

Deno.test("markRollbackOnMismatchingLock records a protected rollback on an async-commit lock only", () => {
  const other = newLock({
    lockType: "Put",
    primary: utf8("p"),
    startTs: 5n,
    minCommitTs: 8n,
    useAsyncCommit: true,
  });
  const txn = new MvccTxn(10n);
  txn.markRollbackOnMismatchingLock(key("k"), other, true);
  const first = txn.modifications[0];
  assert(first?.type === "put" && first.cf === "lock");
  assertEquals(txn.newLocks, [], "not a new lock");
  txn.markRollbackOnMismatchingLock(key("k"), other, false);
  txn.markRollbackOnMismatchingLock(key("k"), { ...other, useAsyncCommit: false }, true);
  new MvccTxn(7n).markRollbackOnMismatchingLock(key("k"), other, true);
  assertEquals(txn.modifications.length, 1);
  const fx = new MvccFixture();
  fx.write(txn);
  assertEquals(fx.lock("k")?.rollbackTs, [10n]);
  throws(() => new MvccTxn(5n).markRollbackOnMismatchingLock(key("k"), other, true));
});

Deno.test("MvccError converts to kvproto KeyError in TiKV's shapes", () => {
  const cases: [MvccError, (e: kvrpcpb.KeyError) => boolean][] = [
    [
      {
        kind: "WriteConflict",
        startTs: 1n,
        conflictStartTs: 2n,
        conflictCommitTs: 3n,
        key: utf8("k"),
        primary: utf8("p"),
        reason: "SelfRolledBack",
      },
      (e) =>
        e.conflict?.conflictTs === 2n && e.conflict.conflictCommitTs === 3n &&
        e.conflict.reason === kvrpcpb.WriteConflict.Reason.SelfRolledBack && e.retryable !== "",
    ],
    [
      { kind: "AlreadyExist", key: utf8("k"), existingStartTs: 1n },
      (e) => e.alreadyExist !== null && e.alreadyExist !== undefined,
    ],
    [
      { kind: "TxnLockNotFound", startTs: 1n, commitTs: 2n, key: utf8("k") },
      (e) => e.txnLockNotFound?.key?.length === 1 && e.retryable.includes("lock not found"),
    ],
    [{ kind: "TxnNotFound", startTs: 4n, key: utf8("p") }, (e) => e.txnNotFound?.startTs === 4n],
    [
      {
        kind: "CommitTsExpired",
        startTs: 1n,
        attemptedCommitTs: 2n,
        key: utf8("k"),
        minCommitTs: 3n,
      },
      (e) => e.commitTsExpired?.attemptedCommitTs === 2n && e.commitTsExpired.minCommitTs === 3n,
    ],
    [
      {
        kind: "AssertionFailed",
        startTs: 1n,
        key: utf8("k"),
        assertion: "NotExist",
        existingStartTs: 2n,
        existingCommitTs: 3n,
      },
      (e) => e.assertionFailed?.assertion === kvrpcpb.Assertion.NotExist,
    ],
    [
      {
        kind: "Deadlock",
        startTs: 1n,
        lockTs: 2n,
        lockKey: utf8("k"),
        deadlockKeyHash: 9n,
        deadlockKey: utf8("d"),
      },
      (e) => e.deadlock?.deadlockKeyHash === 9n,
    ],
    [
      { kind: "Committed", startTs: 1n, commitTs: 2n, key: utf8("k") },
      (e) => e.abort.includes("already committed"),
    ],
  ];
  for (const [error, check] of cases) {
    const decoded = kvrpcpb.KeyError.decode(
      kvrpcpb.KeyError.encode(mvccErrorToKeyError(error)).finish(),
    );
    assert(
      check(decoded),
      `${error.kind}: ${JSON.stringify(decoded, (_k, v) => typeof v === "bigint" ? `${v}` : v)}`,
    );
    assert(describeMvccError(error).length > 0);
  }
  assertEquals(
    describeMvccError({ kind: "TxnLockNotFound", startTs: 10n, commitTs: 20n, key: utf8("k1") }),
    'Cannot commit key "k1" of txn 10 at 20: lock not found',
  );
});

Deno.test("pendingLock sees each key's latest lock write, also for keys whose hashes collide", () => {
  // Two distinct keys with one 32-bit hash, found by a birthday search over "c0", "c1", ….
  const [first, second] = ["c88690", "c135692"];
  assertEquals(lockKeyHash(key(first).encoded), lockKeyHash(key(second).encoded));
  const txn = new MvccTxn(10n);
  const lock = newLock({ lockType: "Put", primary: utf8("p"), startTs: 10n, ttlMs: 5n });
  txn.putLock(key(first), lock, true);
  assertEquals(txn.pendingLock(key(second)), null, "a colliding key is not the same key");
  txn.putLock(key(second), { ...lock, ttlMs: 7n }, true);
  txn.unlockKey(key(first), false, 0n);
  assertEquals(txn.pendingLock(key(first)), "deleted");
  const pending = txn.pendingLock(key(second));
  assert(pending instanceof Uint8Array);
  assertEquals(decodeLock(pending).ttlMs, 7n);
  txn.putLock(key(first), { ...lock, ttlMs: 9n }, false);
  const again = txn.pendingLock(key(first));
  assert(again instanceof Uint8Array);
  assertEquals(decodeLock(again).ttlMs, 9n, "the latest write of a key wins");
  txn.clear();
  assertEquals(txn.pendingLock(key(first)), null, "clear() forgets pending locks");
  assertEquals(txn.pendingLock(key(second)), null);
});
