import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { utf8 } from "../../util/bytes.ts";
import { commit } from "./commit.ts";
import { rollback } from "./rollback.ts";
import { key, kindOf, MvccFixture, prewriteKey, read, run } from "./test_support.ts";

const commitKey = (fx: MvccFixture, rawKey: string, ts: { startTs: bigint; commitTs: bigint }) =>
  run(
    fx,
    ts.startTs,
    (txn, reader) => commit(txn, reader, { key: key(rawKey), commitTs: ts.commitTs }),
  )
    .result;

Deno.test("commit() turns the lock into a write record and is idempotent (Percolator: second phase)", () => {
  const fx = new MvccFixture();
  assert(prewriteKey(fx, "k", { value: "v", startTs: 5n }).result.ok);
  const first = commitKey(fx, "k", { startTs: 5n, commitTs: 10n });
  assert(first.ok && first.value !== null);
  assertEquals(first.value.commitTs, 10n);
  assertEquals(fx.lock("k"), null);
  assertEquals(fx.writes("k").map((w) => [w.commitTs, w.write.writeType, w.write.startTs]), [[
    10n,
    "Put",
    5n,
  ]]);
  assertEquals(read(fx, "k", { readTs: 10n }), "v");
  assertEquals(read(fx, "k", { readTs: 9n }), null);
  const again = commitKey(fx, "k", { startTs: 5n, commitTs: 10n });
  assertEquals(again, { ok: true, value: null }, "a retried commit succeeds doing nothing");
  assertEquals(fx.writes("k").length, 1);
});

Deno.test("commit() keeps a long value in the default CF and writes no short value", () => {
  const fx = new MvccFixture();
  const long = "x".repeat(256);
  assert(prewriteKey(fx, "k", { value: long, startTs: 5n }).result.ok);
  assertEquals(fx.lock("k")?.shortValue, null);
  assert(commitKey(fx, "k", { startTs: 5n, commitTs: 10n }).ok);
  assertEquals(fx.writes("k")[0]?.write.shortValue, null);
  assertEquals(fx.value("k", 5n), utf8(long));
  assertEquals(read(fx, "k", { readTs: 11n }), long);
});

Deno.test("commit() after rollback is refused with TxnLockNotFound", () => {
  const fx = new MvccFixture();
  assert(prewriteKey(fx, "k", { value: "v", startTs: 5n }).result.ok);
  assert(run(fx, 5n, (txn, reader) => rollback(txn, reader, key("k"))).result.ok);
  const result = commitKey(fx, "k", { startTs: 5n, commitTs: 10n });
  assert(!result.ok && result.error.kind === "TxnLockNotFound");
  assertEquals(result.error.commitTs, 10n);
  assertEquals(kindOf(commitKey(fx, "never", { startTs: 5n, commitTs: 10n })), "TxnLockNotFound");
});

Deno.test("commit() below the lock's min_commit_ts fails with CommitTsExpired", () => {
  const fx = new MvccFixture();
  assert(prewriteKey(fx, "k", { value: "v", startTs: 5n, secondaries: [], maxTs: 20n }).result.ok);
  assertEquals(fx.lock("k")?.minCommitTs, 21n);
  const result = commitKey(fx, "k", { startTs: 5n, commitTs: 15n });
  assert(!result.ok && result.error.kind === "CommitTsExpired");
  assertEquals([result.error.attemptedCommitTs, result.error.minCommitTs], [15n, 21n]);
  assert(fx.lock("k") !== null, "the lock stays");
  assert(commitKey(fx, "k", { startTs: 5n, commitTs: 21n }).ok);
});

Deno.test("commit() removes a stale pessimistic lock without writing a version", () => {
  const fx = new MvccFixture();
  fx.putLock("k", { lockType: "Pessimistic", startTs: 5n, forUpdateTs: 6n });
  const result = commitKey(fx, "k", { startTs: 5n, commitTs: 10n });
  assert(result.ok && result.value !== null && result.value.pessimistic);
  assertEquals(fx.lock("k"), null);
  assertEquals(fx.writes("k"), []);
});

Deno.test("commit() at a ts recorded in rollbackTs marks the record as an overlapped rollback", () => {
  const fx = new MvccFixture();
  fx.putLock("k", { lockType: "Put", startTs: 5n, shortValue: utf8("v"), rollbackTs: [10n] });
  assert(commitKey(fx, "k", { startTs: 5n, commitTs: 10n }).ok);
  assertEquals(fx.writes("k")[0]?.write.hasOverlappedRollback, true);
});

Deno.test("commit() of another transaction's lock is TxnLockNotFound; a ts not above start is refused", () => {
  const fx = new MvccFixture();
  assert(prewriteKey(fx, "k", { value: "v", startTs: 7n }).result.ok);
  assertEquals(kindOf(commitKey(fx, "k", { startTs: 5n, commitTs: 10n })), "TxnLockNotFound");
  assertEquals(kindOf(commitKey(fx, "k", { startTs: 7n, commitTs: 7n })), "InvalidRequest");
  assert(fx.lock("k") !== null);
});
