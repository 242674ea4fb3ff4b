import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { utf8 } from "../../util/bytes.ts";
import { newMutation } from "../../txn_types/mutation.ts";
import { kvrpcpb } from "../../../proto/mod.ts";
import { commit } from "./commit.ts";
import { pessimisticActionFromProto, prewrite } from "./prewrite.ts";
import { cleanup } from "./cleanup.ts";
import { MvccReader } from "../../mvcc/reader.ts";
import { MvccTxn } from "../../mvcc/txn.ts";
import {
  key,
  kindOf,
  MvccFixture,
  prewriteKey,
  prewriteRequest,
  puts,
  read,
  request,
  run,
} from "./test_support.ts";

const commitKey = (fx: MvccFixture, rawKey: string, ts: { startTs: bigint; commitTs: bigint }) =>
  run(
    fx,
    ts.startTs,
    (txn, reader) => commit(txn, reader, { key: key(rawKey), commitTs: ts.commitTs }),
  )
    .result;

// ---------------------------------------------------------------------------------------------
// Optimistic prewrite.

Deno.test("prewrite() locks the key: short values inline, long values in the default CF at start ts", () => {
  const fx = new MvccFixture();
  assertEquals(prewriteKey(fx, "s", { value: "short", startTs: 5n }).result, {
    ok: true,
    value: 0n,
  });
  const lock = fx.lock("s")!;
  assertEquals([lock.lockType, lock.startTs, lock.shortValue], ["Put", 5n, utf8("short")]);
  assertEquals(lock.ttlMs, 3000n);
  const max = "m".repeat(255);
  assert(prewriteKey(fx, "edge", { value: max, startTs: 5n }).result.ok);
  assertEquals(fx.lock("edge")?.shortValue, utf8(max), "255 bytes is still short");
  const long = "l".repeat(256);
  assert(prewriteKey(fx, "l", { value: long, startTs: 5n }).result.ok);
  assertEquals(fx.lock("l")?.shortValue, null);
  assertEquals(fx.value("l", 5n), utf8(long));
  assert(prewriteKey(fx, "d", { type: "Delete", startTs: 5n }).result.ok);
  assertEquals(fx.lock("d")?.lockType, "Delete");
  assert(prewriteKey(fx, "x", { type: "Lock", startTs: 5n }).result.ok);
  assertEquals(fx.lock("x")?.lockType, "Lock");
});

Deno.test("prewrite() is idempotent: a retried prewrite changes nothing", () => {
  const fx = new MvccFixture();
  assert(prewriteKey(fx, "k", { value: "v", startTs: 5n }).result.ok);
  const before = fx.lock("k");
  const again = prewriteKey(fx, "k", { value: "v", startTs: 5n });
  assertEquals(again.result, { ok: true, value: 0n });
  assertEquals(again.txn.modifications, []);
  assertEquals(fx.lock("k"), before);
});

Deno.test("prewrite() after a newer commit fails with WriteConflict(Optimistic)", () => {
  const fx = new MvccFixture();
  fx.commitPut("k", "other", { startTs: 6n, commitTs: 8n });
  const result = prewriteKey(fx, "k", { value: "v", startTs: 5n, primary: "pk" }).result;
  assert(!result.ok && result.error.kind === "WriteConflict");
  assertEquals(
    [
      result.error.startTs,
      result.error.conflictStartTs,
      result.error.conflictCommitTs,
      result.error.reason,
    ],
    [5n, 6n, 8n, "Optimistic"],
  );
  assertEquals(result.error.primary, utf8("pk"));
  assertEquals(fx.lock("k"), null);
  assert(prewriteKey(fx, "k", { value: "v", startTs: 9n }).result.ok, "a later txn may write");
});

Deno.test("prewrite() meets another transaction's lock with KeyIsLocked (TTL 0 in pessimistic txns)", () => {
  const fx = new MvccFixture();
  assert(prewriteKey(fx, "k", { value: "a", startTs: 5n, ttlMs: 77n }).result.ok);
  const result = prewriteKey(fx, "k", { value: "b", startTs: 6n }).result;
  assert(!result.ok && result.error.kind === "KeyIsLocked");
  assertEquals([result.error.lockInfo.lockVersion, result.error.lockInfo.lockTtl], [5n, 77n]);
  const pessimistic = prewriteKey(fx, "k", {
    value: "b",
    startTs: 6n,
    forUpdateTs: 6n,
    pessimisticAction: "SkipPessimisticCheck",
  }).result;
  assert(!pessimistic.ok && pessimistic.error.kind === "KeyIsLocked");
  assertEquals(pessimistic.error.lockInfo.lockTtl, 0n);
});

Deno.test("prewrite() of Insert fails with AlreadyExist when the key holds a value", () => {
  const fx = new MvccFixture();
  fx.commitPut("k", "v", { startTs: 1n, commitTs: 2n });
  const exists = prewriteKey(fx, "k", { type: "Insert", value: "v2", startTs: 5n });
  assert(!exists.result.ok && exists.result.error.kind === "AlreadyExist");
  assertEquals(exists.result.error.existingStartTs, 1n);
  assertEquals(exists.txn.observedReadTs, 5n, "a uniqueness check is a read at start ts");
  // A Lock record over the Put hides nothing: still there.
  fx.putWrite("k", 4n, { writeType: "Lock", startTs: 3n });
  assertEquals(
    kindOf(prewriteKey(fx, "k", { type: "Insert", value: "v2", startTs: 5n }).result),
    "AlreadyExist",
  );
  // After a Delete the key is free.
  fx.commitDelete("gone", { startTs: 1n, commitTs: 2n });
  assert(prewriteKey(fx, "gone", { type: "Insert", value: "v", startTs: 5n }).result.ok);
  assertEquals(fx.lock("gone")?.lockType, "Put");
  assert(prewriteKey(fx, "new", { type: "Insert", value: "v", startTs: 5n }).result.ok);
});

Deno.test("prewrite() of CheckNotExists checks but writes nothing", () => {
  const fx = new MvccFixture();
  fx.commitPut("k", "v", { startTs: 1n, commitTs: 2n });
  assertEquals(
    kindOf(prewriteKey(fx, "k", { type: "CheckNotExists", startTs: 5n }).result),
    "AlreadyExist",
  );
  const free = prewriteKey(fx, "free", { type: "CheckNotExists", startTs: 5n });
  assertEquals(free.result, { ok: true, value: 0n });
  assertEquals(free.txn.modifications, []);
  assertEquals(free.txn.observedReadTs, 5n);
  const pessimistic = prewriteKey(fx, "free", {
    type: "CheckNotExists",
    startTs: 5n,
    forUpdateTs: 5n,
  });
  assertEquals(kindOf(pessimistic.result), "InvalidRequest");
});

Deno.test("prewrite() checks assertions at the requested level", () => {
  const fx = new MvccFixture();
  fx.commitPut("k", "v", { startTs: 1n, commitTs: 2n });
  fx.commitDelete("gone", { startTs: 1n, commitTs: 3n });
  const notExist = prewriteKey(fx, "k", {
    value: "x",
    startTs: 5n,
    assertion: "NotExist",
    assertionLevel: "Fast",
  });
  assert(!notExist.result.ok && notExist.result.error.kind === "AssertionFailed");
  assertEquals([notExist.result.error.existingStartTs, notExist.result.error.existingCommitTs], [
    1n,
    2n,
  ]);
  const absent = prewriteKey(fx, "none", {
    value: "x",
    startTs: 5n,
    assertion: "Exist",
    assertionLevel: "Fast",
  });
  assert(!absent.result.ok && absent.result.error.kind === "AssertionFailed");
  assertEquals(absent.result.error.existingCommitTs, 0n);
  assertEquals(
    kindOf(
      prewriteKey(fx, "gone", {
        value: "x",
        startTs: 5n,
        assertion: "Exist",
        assertionLevel: "Fast",
      }).result,
    ),
    "AssertionFailed",
  );
  assert(
    prewriteKey(fx, "k", { value: "x", startTs: 5n, assertion: "Exist", assertionLevel: "Fast" })
      .result.ok,
  );
  // Off ignores assertions; Fast skips them when the constraint check is skipped; Strict does not.
  assert(
    prewriteKey(fx, "none", { value: "x", startTs: 6n, assertion: "Exist", assertionLevel: "Off" })
      .result.ok,
  );
  const fast = {
    value: "x",
    startTs: 6n,
    assertion: "NotExist" as const,
    skipConstraintCheck: true,
  };
  const j = new MvccFixture();
  j.commitPut("k", "v", { startTs: 1n, commitTs: 2n });
  assert(prewriteKey(j, "k", { ...fast, assertionLevel: "Fast" }).result.ok);
  const strict = new MvccFixture();
  strict.commitPut("k", "v", { startTs: 1n, commitTs: 2n });
  assertEquals(
    kindOf(prewriteKey(strict, "k", { ...fast, assertionLevel: "Strict" }).result),
    "AssertionFailed",
  );
});

Deno.test("an assertion failure caused by a rollback reports the rollback first", () => {
  const fx = new MvccFixture();
  fx.commitPut("k", "v", { startTs: 1n, commitTs: 2n });
  fx.putWrite("k", 5n, { writeType: "Rollback", startTs: 5n });
  const result = prewriteKey(fx, "k", {
    value: "x",
    startTs: 5n,
    assertion: "NotExist",
    assertionLevel: "Strict",
    skipConstraintCheck: true,
  }).result;
  assert(!result.ok && result.error.kind === "WriteConflict");
  assertEquals(result.error.reason, "SelfRolledBack");
});

// ---------------------------------------------------------------------------------------------
// Pessimistic prewrite.

Deno.test("pessimistic prewrite replaces this transaction's pessimistic lock, keeping its pushed TTL", () => {
  const fx = new MvccFixture();
  fx.commitPut("k", "old", { startTs: 1n, commitTs: 2n });
  fx.putLock("k", { lockType: "Pessimistic", startTs: 5n, forUpdateTs: 8n, ttlMs: 9000n });
  const result = prewriteKey(fx, "k", { value: "new", startTs: 5n, forUpdateTs: 7n, ttlMs: 10n });
  assertEquals(result.result, { ok: true, value: 0n });
  const lock = fx.lock("k")!;
  assertEquals([lock.lockType, lock.forUpdateTs, lock.ttlMs], ["Put", 8n, 9000n]);
  assertEquals(result.txn.newLocks, [], "not a new lock: the pessimistic one was there");
  assert(commitKey(fx, "k", { startTs: 5n, commitTs: 10n }).ok);
  assertEquals(read(fx, "k", { readTs: 10n }), "new");
});

Deno.test("pessimistic prewrite with a missing lock amends it only if the key did not change", () => {
  const fx = new MvccFixture();
  fx.commitPut("k", "old", { startTs: 1n, commitTs: 2n });
  const amended = prewriteKey(fx, "k", { value: "v", startTs: 5n, forUpdateTs: 5n });
  assert(amended.result.ok);
  assertEquals(fx.lock("k")?.forUpdateTs, 5n);
  assertEquals(amended.txn.newLocks.length, 1, "an amended lock is new");
  fx.commitPut("j", "newer", { startTs: 6n, commitTs: 7n });
  const lost = prewriteKey(fx, "j", { value: "v", startTs: 5n, forUpdateTs: 8n }).result;
  assert(!lost.ok && lost.error.kind === "PessimisticLockNotFound");
  assertEquals(lost.error.reason, "LockMissingAmendFail");
});

Deno.test("pessimistic prewrite fails when the lock belongs to another txn or has another for_update_ts", () => {
  const fx = new MvccFixture();
  fx.putLock("k", { lockType: "Pessimistic", startTs: 4n, forUpdateTs: 4n });
  const other = prewriteKey(fx, "k", { value: "v", startTs: 5n, forUpdateTs: 5n }).result;
  assert(!other.ok && other.error.kind === "PessimisticLockNotFound");
  assertEquals(other.error.reason, "LockTsMismatch");
  fx.putLock("j", { lockType: "Pessimistic", startTs: 5n, forUpdateTs: 9n });
  const stale =
    prewriteKey(fx, "j", { value: "v", startTs: 5n, forUpdateTs: 9n, expectedForUpdateTs: 8n })
      .result;
  assert(!stale.ok && stale.error.kind === "PessimisticLockNotFound");
  assertEquals(stale.error.reason, "LockForUpdateTsMismatch");
  assertEquals(
    kindOf(prewriteKey(fx, "j", { value: "v", startTs: 5n }).result),
    "LockTypeNotMatch",
    "an optimistic prewrite over a pessimistic lock",
  );
});

Deno.test("pessimistic prewrite of an unlocked key: a commit after for_update_ts means a lost lock", () => {
  const fx = new MvccFixture();
  fx.commitPut("k", "newer", { startTs: 6n, commitTs: 9n });
  const base = {
    value: "v",
    startTs: 5n,
    forUpdateTs: 8n,
    pessimisticAction: "SkipPessimisticCheck" as const,
  };
  const result = prewriteKey(fx, "k", { ...base, isRetryRequest: true }).result;
  assert(!result.ok && result.error.kind === "PessimisticLockNotFound");
  assertEquals(result.error.reason, "NonLockKeyConflict");
  // A newer Rollback record is no conflict.
  fx.putWrite("r", 9n, { writeType: "Rollback", startTs: 9n });
  assert(prewriteKey(fx, "r", { ...base, isRetryRequest: true }).result.ok);
  // Lazy uniqueness check: a commit after start ts is a conflict even below for_update_ts.
  fx.commitPut("u", "x", { startTs: 6n, commitTs: 7n });
  const lazy = prewriteKey(fx, "u", { ...base, pessimisticAction: "DoConstraintCheck" }).result;
  assert(!lazy.ok && lazy.error.kind === "WriteConflict");
  assertEquals(lazy.error.reason, "LazyUniquenessCheck");
});

// ---------------------------------------------------------------------------------------------
// Async commit and 1PC.

Deno.test("async commit: min_commit_ts = max(max_ts, start_ts, for_update_ts) + 1, secondaries on the primary", () => {
  const fx = new MvccFixture();
  const primary = prewriteKey(fx, "p", {
    value: "v",
    startTs: 10n,
    secondaries: ["s"],
    maxTs: 30n,
  });
  assertEquals(primary.result, { ok: true, value: 31n });
  const lock = fx.lock("p")!;
  assert(lock.useAsyncCommit);
  assertEquals(lock.secondaries, [utf8("s")]);
  assertEquals(lock.minCommitTs, 31n);
  assertEquals(primary.txn.guardedLocks.map((g) => g.lock.minCommitTs), [31n], "held in memory");
  const secondary = prewriteKey(fx, "s", {
    value: "v",
    primary: "p",
    startTs: 10n,
    secondaries: [],
    maxTs: 5n,
  });
  assertEquals(secondary.result, { ok: true, value: 11n }, "start_ts + 1 when max_ts is older");
  assertEquals(fx.lock("s")?.secondaries, []);
  const pessimistic = prewriteKey(fx, "q", {
    value: "v",
    startTs: 10n,
    forUpdateTs: 40n,
    secondaries: [],
    maxTs: 30n,
  });
  assertEquals(pessimistic.result, { ok: true, value: 41n });
  const floor = prewriteKey(fx, "f", {
    value: "v",
    startTs: 10n,
    secondaries: [],
    maxTs: 5n,
    minCommitTs: 50n,
  });
  assertEquals(floor.result, { ok: true, value: 50n }, "never below the client's min_commit_ts");
  // A retried prewrite answers the same min_commit_ts.
  assertEquals(
    prewriteKey(fx, "p", { value: "v", startTs: 10n, secondaries: ["s"], maxTs: 99n }).result,
    {
      ok: true,
      value: 31n,
    },
  );
});

Deno.test("readers see async-commit locks only at or above min_commit_ts", () => {
  const fx = new MvccFixture();
  fx.commitPut("k", "old", { startTs: 1n, commitTs: 2n });
  assert(
    prewriteKey(fx, "k", { value: "new", startTs: 10n, secondaries: [], maxTs: 20n }).result.ok,
  );
  assertEquals(
    read(fx, "k", { readTs: 20n }),
    "old",
    "min_commit_ts 21 > read ts: cannot commit below",
  );
  assertEquals(read(fx, "k", { readTs: 21n }), "locked@10");
});

Deno.test("async commit above max_commit_ts falls back to 2PC for the whole request", () => {
  const fx = new MvccFixture();
  const result = prewriteRequest(
    fx,
    request({
      startTs: 10n,
      primary: utf8("a"),
      mutations: puts(["a", "1"], ["b", "2"]),
      secondaryKeys: [utf8("b")],
      maxCommitTs: 25n,
      maxTs: 30n,
    }),
  ).result;
  assertEquals(result, { ok: true, value: { locks: [], minCommitTs: 0n, onePcCommitTs: 0n } });
  for (const k of ["a", "b"]) {
    const lock = fx.lock(k)!;
    assertEquals([lock.useAsyncCommit, lock.secondaries], [false, []], k);
  }
});

Deno.test("1PC writes commit records at the largest min_commit_ts and leaves no lock", () => {
  const fx = new MvccFixture();
  fx.putLock("b", { lockType: "Pessimistic", startTs: 10n, forUpdateTs: 12n, primary: "a" });
  const long = "z".repeat(300);
  const mutations = [
    ...puts(["a", "1"]),
    {
      mutation: newMutation("Put", key("b"), { value: utf8(long) }),
      pessimisticAction: "DoPessimisticCheck" as const,
      expectedForUpdateTs: null,
    },
  ];
  mutations[0]!.pessimisticAction = "DoPessimisticCheck";
  const { result, txn } = prewriteRequest(
    fx,
    request({
      startTs: 10n,
      primary: utf8("a"),
      mutations,
      kind: { type: "Pessimistic", forUpdateTs: 12n },
      tryOnePc: true,
      maxTs: 15n,
    }),
  );
  assertEquals(result, { ok: true, value: { locks: [], minCommitTs: 0n, onePcCommitTs: 16n } });
  assertEquals([fx.lock("a"), fx.lock("b")], [null, null]);
  assertEquals(fx.writes("a").map((w) => [w.commitTs, w.write.startTs]), [[16n, 10n]]);
  assertEquals(read(fx, "a", { readTs: 16n }), "1");
  assertEquals(read(fx, "b", { readTs: 16n }), long);
  assertEquals(read(fx, "b", { readTs: 15n }), null);
  assertEquals(txn.releasedLocks.map((r) => [r.key.toString(), r.commitTs]), [['"b"', 16n]]);
  assertEquals(txn.guardedLocks.length, 2, "1PC locks are held in memory until applied");
});

Deno.test("1PC above max_commit_ts falls back to ordinary locks", () => {
  const fx = new MvccFixture();
  const { result } = prewriteRequest(
    fx,
    request({
      startTs: 10n,
      primary: utf8("a"),
      mutations: puts(["a", "1"], ["b", "2"]),
      tryOnePc: true,
      maxCommitTs: 12n,
      maxTs: 20n,
    }),
  );
  assertEquals(result, { ok: true, value: { locks: [], minCommitTs: 0n, onePcCommitTs: 0n } });
  assertEquals([fx.lock("a")?.useOnePc, fx.lock("b")?.lockType], [false, "Put"]);
  assertEquals(fx.writes("a"), []);
});

// ---------------------------------------------------------------------------------------------
// Whole requests.

Deno.test("prewriteMutations() collects every KeyIsLocked and then writes nothing", () => {
  const fx = new MvccFixture();
  assert(prewriteKey(fx, "b", { value: "x", startTs: 3n }).result.ok);
  assert(prewriteKey(fx, "d", { value: "x", startTs: 4n }).result.ok);
  const { result, txn } = prewriteRequest(
    fx,
    request({
      startTs: 10n,
      primary: utf8("a"),
      mutations: puts(["a", "1"], ["b", "2"], ["c", "3"], ["d", "4"]),
    }),
  );
  assert(result.ok);
  assertEquals(
    result.value.locks.map((e) => e.kind === "KeyIsLocked" ? e.lockInfo.lockVersion : e.kind),
    [3n, 4n],
  );
  assertEquals(txn.modifications, []);
  assertEquals([fx.lock("a"), fx.lock("c")], [null, null]);
});

Deno.test("prewriteMutations() retried after the transaction committed succeeds with its commit ts", () => {
  const fx = new MvccFixture();
  const args = request({ startTs: 10n, primary: utf8("a"), mutations: puts(["a", "1"]) });
  assert(prewriteRequest(fx, args).result.ok);
  assert(commitKey(fx, "a", { startTs: 10n, commitTs: 15n }).ok);
  fx.commitPut("a", "later", { startTs: 16n, commitTs: 17n });
  const retried = prewriteRequest(fx, { ...args, secondaryKeys: [], tryOnePc: false });
  assertEquals(retried.result, {
    ok: true,
    value: { locks: [], minCommitTs: 15n, onePcCommitTs: 0n },
  });
  assertEquals(retried.txn.modifications, []);
  assertEquals(fx.lock("a"), null, "no lock left behind");
});

Deno.test("prewriteMutations() returns the first assertion failure only after checking every key", () => {
  const fx = new MvccFixture();
  fx.commitPut("a", "v", { startTs: 1n, commitTs: 2n });
  fx.commitPut("b", "v", { startTs: 6n, commitTs: 12n });
  const mutations = [
    {
      mutation: newMutation("Put", key("a"), { value: utf8("1"), assertion: "NotExist" }),
      pessimisticAction: "SkipPessimisticCheck" as const,
      expectedForUpdateTs: null,
    },
    ...puts(["b", "2"]),
  ];
  const result = prewriteRequest(
    fx,
    request({ startTs: 10n, primary: utf8("a"), mutations, assertionLevel: "Fast" }),
  ).result;
  assertEquals(kindOf(result), "WriteConflict", "other errors win over assertion failures");
  const only = prewriteRequest(
    fx,
    request({
      startTs: 10n,
      primary: utf8("a"),
      mutations: mutations.slice(0, 1),
      assertionLevel: "Fast",
    }),
  ).result;
  assertEquals(kindOf(only), "AssertionFailed");
});

Deno.test("readers under SI stop at a prewrite lock; under RC they read the last commit", () => {
  const fx = new MvccFixture();
  fx.commitPut("k", "v1", { startTs: 1n, commitTs: 2n });
  assert(prewriteKey(fx, "k", { value: "v2", startTs: 5n }).result.ok);
  assertEquals(read(fx, "k", { readTs: 4n }), "v1");
  assertEquals(read(fx, "k", { readTs: 6n }), "locked@5");
  assertEquals(read(fx, "k", { readTs: 6n, isolationLevel: "RC" }), "v1");
  assert(commitKey(fx, "k", { startTs: 5n, commitTs: 7n }).ok);
  assertEquals(read(fx, "k", { readTs: 6n }), "v1");
  assertEquals(read(fx, "k", { readTs: 7n }), "v2");
});

Deno.test("pessimisticActionFromProto maps kvproto's enum", () => {
  const Action = kvrpcpb.PrewriteRequest.PessimisticAction;
  assertEquals(pessimisticActionFromProto(Action.SKIP_PESSIMISTIC_CHECK), "SkipPessimisticCheck");
  assertEquals(pessimisticActionFromProto(Action.DO_PESSIMISTIC_CHECK), "DoPessimisticCheck");
  assertEquals(pessimisticActionFromProto(Action.DO_CONSTRAINT_CHECK), "DoConstraintCheck");
  assertEquals(pessimisticActionFromProto(undefined), "SkipPessimisticCheck");
});

/** Rolls back txn `startTs` over the commit record at the same ts, as TiKV's test does. */
function cleanupWithGcFence(
  fx: MvccFixture,
  rawKey: string,
  options: { startTs: bigint; gcFence: bigint; withoutTargetWrite: boolean },
): void {
  const { startTs, gcFence, withoutTargetWrite } = options;
  if (gcFence !== 0n && withoutTargetWrite) {
    // A version at the fence, removed afterwards as if GC had taken it.
    assert(prewriteKey(fx, rawKey, { value: "dummy", startTs: gcFence - 1n }).result.ok);
    assert(commitKey(fx, rawKey, { startTs: gcFence - 1n, commitTs: gcFence }).ok);
  }
  const result = run(
    fx,
    startTs,
    (txn, reader) =>
      cleanup(txn, reader, { key: key(rawKey), currentTs: 0n, protectRollback: true }),
  ).result;
  assert(result.ok);
  const record = fx.writes(rawKey).find((w) => w.commitTs === startTs)!.write;
  assert(record.startTs !== startTs && record.hasOverlappedRollback);
  assertEquals(record.gcFence, gcFence);
  if (gcFence !== 0n && withoutTargetWrite) {
    fx.engine.delete("write", key(rawKey).appendTs(gcFence));
  }
}

Deno.test("uniqueness checks treat a version whose GC fence points at a GC-ed version as gone", () => {
  const fx = new MvccFixture();
  const put = (k: string, ts: { startTs: bigint; commitTs: bigint }) => {
    assert(prewriteKey(fx, k, { value: `${k}@${ts.commitTs}`, startTs: ts.startTs }).result.ok);
    assert(commitKey(fx, k, ts).ok);
  };
  const lock = (k: string, ts: { startTs: bigint; commitTs: bigint }) => {
    assert(prewriteKey(fx, k, { type: "Lock", startTs: ts.startTs }).result.ok);
    assert(commitKey(fx, k, ts).ok);
  };
  // k1: PUT@30 fenced at 40, and 40 is gone.
  put("k1", { startTs: 10n, commitTs: 30n });
  cleanupWithGcFence(fx, "k1", { startTs: 30n, gcFence: 40n, withoutTargetWrite: true });
  // k2: PUT@30 with fence 0: no newer version, still valid.
  put("k2", { startTs: 11n, commitTs: 30n });
  cleanupWithGcFence(fx, "k2", { startTs: 30n, gcFence: 0n, withoutTargetWrite: true });
  // k3: PUT@30 fenced at 40 (gone), LOCK@38 and LOCK@43 above it.
  put("k3", { startTs: 12n, commitTs: 30n });
  lock("k3", { startTs: 37n, commitTs: 38n });
  cleanupWithGcFence(fx, "k3", { startTs: 30n, gcFence: 40n, withoutTargetWrite: true });
  lock("k3", { startTs: 42n, commitTs: 43n });
  // k4: the same with fence 0.
  put("k4", { startTs: 13n, commitTs: 30n });
  lock("k4", { startTs: 37n, commitTs: 38n });
  lock("k4", { startTs: 42n, commitTs: 43n });
  cleanupWithGcFence(fx, "k4", { startTs: 30n, gcFence: 0n, withoutTargetWrite: true });
  // k5: PUT@20 fenced at 30 (present), PUT@30 fenced at 40 (gone).
  put("k5", { startTs: 14n, commitTs: 20n });
  put("k5", { startTs: 21n, commitTs: 30n });
  cleanupWithGcFence(fx, "k5", { startTs: 20n, gcFence: 30n, withoutTargetWrite: false });
  cleanupWithGcFence(fx, "k5", { startTs: 30n, gcFence: 40n, withoutTargetWrite: true });
  // k6: the same with the newest fence 0.
  put("k6", { startTs: 15n, commitTs: 20n });
  put("k6", { startTs: 22n, commitTs: 30n });
  cleanupWithGcFence(fx, "k6", { startTs: 20n, gcFence: 30n, withoutTargetWrite: false });
  cleanupWithGcFence(fx, "k6", { startTs: 30n, gcFence: 0n, withoutTargetWrite: true });
  // k7: PUT@30 fenced at 40 (gone) under LOCK@38.
  put("k7", { startTs: 16n, commitTs: 30n });
  lock("k7", { startTs: 37n, commitTs: 38n });
  cleanupWithGcFence(fx, "k7", { startTs: 30n, gcFence: 40n, withoutTargetWrite: true });

  const absent = { k1: true, k2: false, k3: true, k4: false, k5: true, k6: false, k7: true };
  for (const [k, isAbsent] of Object.entries(absent)) {
    for (const type of ["CheckNotExists", "Insert"] as const) {
      using snapshot = fx.snapshot();
      using reader = new MvccReader(snapshot);
      const result = prewrite(new MvccTxn(50n), reader, {
        props: {
          startTs: 50n,
          kind: { type: "Optimistic", skipConstraintCheck: false },
          commitKind: { type: "TwoPc" },
          primary: utf8("k1"),
          txnSize: 7n,
          lockTtlMs: 2000n,
          minCommitTs: 51n,
          isRetryRequest: false,
          assertionLevel: "Off",
          txnSource: 0n,
          maxTs: 0n,
        },
        mutation: newMutation(type, key(k), type === "Insert" ? { value: utf8("value") } : {}),
        secondaryKeys: null,
        pessimisticAction: "SkipPessimisticCheck",
        expectedForUpdateTs: null,
      });
      assertEquals(kindOf(result), isAbsent ? "ok" : "AlreadyExist", `${type} ${k}`);
    }
    assertEquals(read(fx, k, { readTs: 50n }) === null, isAbsent, `read ${k}`);
  }
});

Deno.test("a resent pessimistic prewrite of an unlocked key after commit succeeds without a new lock (TiKV #11187)", () => {
  const fx = new MvccFixture();
  const args = request({
    startTs: 10n,
    primary: utf8("k"),
    mutations: puts(["k", "v"]),
    kind: { type: "Pessimistic", forUpdateTs: 12n },
  });
  assert(prewriteRequest(fx, args).result.ok);
  assert(commitKey(fx, "k", { startTs: 10n, commitTs: 20n }).ok);
  fx.commitPut("k", "later", { startTs: 25n, commitTs: 30n });
  const resent = prewriteRequest(fx, { ...args, isRetryRequest: true });
  assertEquals(resent.result, {
    ok: true,
    value: { locks: [], minCommitTs: 0n, onePcCommitTs: 0n },
  });
  assertEquals(fx.lock("k"), null);
  assertEquals(read(fx, "k", { readTs: 40n }), "later");
});
