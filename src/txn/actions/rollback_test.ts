import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { isProtectedRollback, newRollback } from "../../txn_types/write.ts";
import { utf8 } from "../../util/bytes.ts";
import { cleanup } from "./cleanup.ts";
import { commit } from "./commit.ts";
import { batchRollback, rollback } from "./rollback.ts";
import { key, kindOf, MvccFixture, prewriteKey, read, run } from "./test_support.ts";

const rollbackKey = (fx: MvccFixture, rawKey: string, startTs: bigint) =>
  run(fx, startTs, (txn, reader) => rollback(txn, reader, key(rawKey))).result;

const cleanupKey = (
  fx: MvccFixture,
  rawKey: string,
  args: { startTs: bigint; currentTs: bigint; protectRollback?: boolean },
) =>
  run(fx, args.startTs, (txn, reader) =>
    cleanup(txn, reader, {
      key: key(rawKey),
      currentTs: args.currentTs,
      protectRollback: args.protectRollback ?? true,
    })).result;

/** Write records of a key as `commitTs:Type[:p]` (p = protected, R = overlapped rollback). */
function writes(fx: MvccFixture, rawKey: string): string[] {
  return fx.writes(rawKey).map(({ commitTs, write }) =>
    `${commitTs}:${write.writeType}` + (isProtectedRollback(write) ? ":p" : "") +
    (write.hasOverlappedRollback ? ":R" : "")
  );
}

Deno.test("rollback() removes lock and value and leaves a protected record on the primary only", () => {
  const fx = new MvccFixture();
  const long = "v".repeat(300);
  assert(prewriteKey(fx, "p", { value: long, startTs: 5n }).result.ok);
  assert(prewriteKey(fx, "s", { value: "short", primary: "p", startTs: 5n }).result.ok);
  assert(fx.value("p", 5n) !== null);
  const released = rollbackKey(fx, "p", 5n);
  assert(released.ok && released.value !== null);
  assert(rollbackKey(fx, "s", 5n).ok);
  assertEquals([fx.lock("p"), fx.lock("s")], [null, null]);
  assertEquals(fx.value("p", 5n), null, "the long value is deleted with the lock");
  assertEquals(writes(fx, "p"), ["5:Rollback:p"]);
  assertEquals(writes(fx, "s"), ["5:Rollback"]);
});

Deno.test("rollback() is idempotent", () => {
  const fx = new MvccFixture();
  assert(prewriteKey(fx, "k", { value: "v", startTs: 5n }).result.ok);
  assert(rollbackKey(fx, "k", 5n).ok);
  assertEquals(rollbackKey(fx, "k", 5n), { ok: true, value: null });
  assertEquals(writes(fx, "k"), ["5:Rollback:p"]);
});

Deno.test("rollback() of a committed transaction is refused with Committed", () => {
  const fx = new MvccFixture();
  assert(prewriteKey(fx, "k", { value: "v", startTs: 5n }).result.ok);
  assert(
    run(fx, 5n, (txn, reader) => commit(txn, reader, { key: key("k"), commitTs: 10n })).result.ok,
  );
  const result = rollbackKey(fx, "k", 5n);
  assert(!result.ok && result.error.kind === "Committed");
  assertEquals(result.error.commitTs, 10n);
  assertEquals(read(fx, "k", { readTs: 10n }), "v");
});

Deno.test("a prewrite after its rollback fails with WriteConflict(SelfRolledBack) (rollback protection)", () => {
  const fx = new MvccFixture();
  // The rollback arrives before the prewrite (e.g. resolve-lock after a lost request).
  assert(rollbackKey(fx, "k", 5n).ok);
  const late = prewriteKey(fx, "k", { value: "v", startTs: 5n }).result;
  assert(!late.ok && late.error.kind === "WriteConflict");
  assertEquals(late.error.reason, "SelfRolledBack");
  assertEquals(fx.lock("k"), null);
  // Protected on the primary: a later rollback of another txn does not collapse it.
  assert(cleanupKey(fx, "p", { startTs: 5n, currentTs: 0n, protectRollback: true }).ok);
  assert(rollbackKey(fx, "p", 6n).ok);
  assertEquals(writes(fx, "p"), ["6:Rollback", "5:Rollback:p"]);
  assertEquals(kindOf(prewriteKey(fx, "p", { value: "v", startTs: 5n }).result), "WriteConflict");
});

Deno.test("rollback() collapses an older unprotected rollback of the key", () => {
  const fx = new MvccFixture();
  assert(rollbackKey(fx, "k", 5n).ok);
  assert(rollbackKey(fx, "k", 7n).ok);
  assertEquals(writes(fx, "k"), ["7:Rollback"], "the rollback at 5 is collapsed");
});

Deno.test("a protected rollback over another txn's commit at the same ts marks it overlapped", () => {
  const fx = new MvccFixture();
  // Txn A (start 5) committed k at 10; txn B started at 10 and is rolled back on k.
  fx.commitPut("k", "a", { startTs: 5n, commitTs: 10n });
  fx.commitDelete("k", { startTs: 12n, commitTs: 15n });
  assert(cleanupKey(fx, "k", { startTs: 10n, currentTs: 0n, protectRollback: true }).ok);
  const record = fx.writes("k").find((w) => w.commitTs === 10n)!.write;
  assertEquals([record.writeType, record.startTs, record.hasOverlappedRollback], ["Put", 5n, true]);
  assertEquals(record.gcFence, 15n, "fence: the next version's commit ts");
  assertEquals(read(fx, "k", { readTs: 12n }), "a", "the commit still reads");
  assertEquals(kindOf(prewriteKey(fx, "k", { value: "b", startTs: 10n }).result), "WriteConflict");
  // Unprotected: nothing is written over the commit record.
  const other = new MvccFixture();
  other.commitPut("k", "a", { startTs: 5n, commitTs: 10n });
  assert(rollbackKey(other, "k", 10n).ok);
  assertEquals(writes(other, "k"), ["10:Put"]);
});

Deno.test("rolling back the lock of a txn whose start ts equals another's commit ts keeps that record", () => {
  const fx = new MvccFixture();
  fx.commitPut("p", "a", { startTs: 5n, commitTs: 10n });
  fx.putLock("p", { lockType: "Put", startTs: 10n, shortValue: utf8("b") });
  assert(rollbackKey(fx, "p", 10n).ok);
  assertEquals(writes(fx, "p"), ["10:Put:R"]);
  assertEquals(read(fx, "p", { readTs: 20n }), "a");
});

Deno.test("cleanup() rolls back only an expired lock, or any lock at current_ts 0", () => {
  const fx = new MvccFixture();
  const physical = 1000n;
  const startTs = physical << 18n;
  assert(prewriteKey(fx, "k", { value: "v", startTs, ttlMs: 100n }).result.ok);
  const alive = cleanupKey(fx, "k", { startTs, currentTs: (physical + 100n) << 18n });
  assert(!alive.ok && alive.error.kind === "KeyIsLocked");
  assertEquals(alive.error.lockInfo.lockTtl, 100n);
  assert(cleanupKey(fx, "k", { startTs, currentTs: (physical + 101n) << 18n }).ok);
  assertEquals(fx.lock("k"), null);
  assertEquals(writes(fx, "k"), [`${startTs}:Rollback:p`]);
  assert(prewriteKey(fx, "j", { value: "v", startTs, ttlMs: 100_000n }).result.ok);
  assert(cleanupKey(fx, "j", { startTs, currentTs: 0n }).ok);
  assertEquals(fx.lock("j"), null);
});

Deno.test("cleanup() of a committed transaction reports its commit ts", () => {
  const fx = new MvccFixture();
  fx.commitPut("k", "v", { startTs: 5n, commitTs: 10n });
  const result = cleanupKey(fx, "k", { startTs: 5n, currentTs: 0n });
  assert(!result.ok && result.error.kind === "Committed");
  assertEquals(result.error.commitTs, 10n);
});

Deno.test("cleanup() over another txn's async-commit lock records the protected rollback on it", () => {
  const fx = new MvccFixture();
  fx.putLock("k", {
    lockType: "Put",
    startTs: 3n,
    minCommitTs: 4n,
    useAsyncCommit: true,
    primary: "k",
  });
  assert(cleanupKey(fx, "k", { startTs: 5n, currentTs: 0n, protectRollback: true }).ok);
  assertEquals(fx.lock("k")?.rollbackTs, [5n]);
  assertEquals(writes(fx, "k"), ["5:Rollback:p"]);
  // When that transaction commits at 5, its record carries the rollback instead of replacing it.
  assert(
    run(fx, 3n, (txn, reader) => commit(txn, reader, { key: key("k"), commitTs: 5n })).result.ok,
  );
  assertEquals(writes(fx, "k"), ["5:Put:R"]);
});

Deno.test("batchRollback() rolls back every key and stops at the first error", () => {
  const fx = new MvccFixture();
  for (const k of ["a", "b"]) {
    assert(prewriteKey(fx, k, { value: "v", primary: "a", startTs: 5n }).result.ok);
  }
  const result =
    run(fx, 5n, (txn, reader) => batchRollback(txn, reader, [key("a"), key("b"), key("c")])).result;
  assert(result.ok);
  assertEquals(result.value.length, 2);
  assertEquals(writes(fx, "c"), ["5:Rollback"]);
  fx.putWrite("d", 8n, newRollback(8n, false));
  fx.commitPut("e", "v", { startTs: 8n, commitTs: 9n });
  const failed = run(fx, 8n, (txn, reader) => batchRollback(txn, reader, [key("d"), key("e")]));
  assertEquals(kindOf(failed.result), "Committed");
});
