/**
 * Lost answers to the requests that decide a transaction (client-go's `undeterminedErr`),
 * against the fake cluster, whose store can apply a request and end the stream before
 * answering it (`Fault.loseAnswer`):
 *
 * - Async commit: every prewrite in means committed (a reader's CheckSecondaryLocks decides);
 *   1PC: the prewrite commits. A prewrite sent with no answer back may have done so, so when
 *   the commit then fails it is `CommitUndeterminedError`, and no rollback is sent (it could
 *   undo a committed transaction).
 * - 2PC: the primary's commit decides; the same holds for it. A 2PC prewrite decides nothing:
 *   its lost answer still ends in a rollback.
 * - What stays safe: a repeat of the same prewrite (it says `is_retry_request`), and a retry
 *   after a region error (which says that attempt was not applied).
 */
import assert from "node:assert/strict";
import { encodeKey } from "../../codec/key.ts";
import { fromUtf8, utf8 } from "../../util/bytes.ts";
import { PdResolver } from "../pd_resolver.ts";
import { FakeCluster, FakeTso } from "../testing/fake_cluster.ts";
import { CommitUndeterminedError } from "./errors.ts";
import { TxnKV } from "./txn_kv.ts";

const TEST = { sanitizeOps: false, sanitizeResources: false };
/** Short, so a commit whose every answer is lost gives up soon. */
const CLIENT_TIMEOUT_MS = 1500;
/** Faults that hit every request of the test (far more than the client can send in time). */
const ALWAYS = 10_000;
const text = (bytes: Uint8Array | null) => bytes === null ? null : fromUtf8(bytes);

/** Regions [, m) on store 1 and [m, ) on store 2 (bounds are encoded user keys), and a TxnKV. */
async function withTxnCluster(
  body: (cluster: FakeCluster, client: TxnKV) => Promise<void>,
): Promise<void> {
  const cluster = await FakeCluster.start({ stores: 2, splitKeys: [encodeKey(utf8("m"))] });
  cluster.transferLeader(2n, 2n);
  const resolver = await PdResolver.connect([cluster.pdAddress]);
  const client = new TxnKV(resolver, new FakeTso(), { timeoutMs: CLIENT_TIMEOUT_MS });
  try {
    await body(cluster, client);
  } finally {
    await client.close();
    await cluster.stop();
  }
}

function served(cluster: FakeCluster, cmd: string) {
  return cluster.served.filter((request) => request.cmd === cmd);
}

/** The values of `keys` as a new transaction reads them (resolving the locks it meets). */
async function readAll(client: TxnKV, keys: string[]): Promise<(string | null)[]> {
  const reader = await client.begin();
  const values = [];
  for (const key of keys) values.push(text(await reader.get(key)));
  return values;
}

Deno.test({
  name: "async commit: prewrites applied but never answered → CommitUndeterminedError, no " +
    "rollback; a reader commits it through CheckSecondaryLocks",
  ...TEST,
  fn: () =>
    withTxnCluster(async (cluster, client) => {
      cluster.faults.push({ cmd: "Prewrite", times: ALWAYS, loseAnswer: true });
      const txn = await client.begin({ asyncCommit: true, lockTtlMs: 100 });
      for (const key of ["a", "b", "x"]) txn.set(key, key.toUpperCase());
      const error = await txn.commit().then(() => null, (failure) => failure);
      assert.ok(error instanceof CommitUndeterminedError, `undetermined, got ${error}`);
      assert.equal(error.phase, "prewrite");
      assert.match(error.message, /may or may not have committed: an async-commit prewrite/);
      assert.equal(served(cluster, "BatchRollback").length, 0, "no rollback sent");
      assert.ok(served(cluster, "Prewrite").length > 2, "the lost prewrites were repeated");
      assert.equal(cluster.txn.locks.size, 3, "every key locked: the transaction is committed");

      cluster.faults.length = 0;
      assert.deepEqual(await readAll(client, ["x", "a", "b"]), ["X", "A", "B"]);
      assert.ok(served(cluster, "CheckSecondaryLocks").length >= 1, "decided by its locks");
      assert.equal(cluster.txn.locks.size, 0);
    }),
});

Deno.test({
  name: "1PC: a prewrite applied but never answered → CommitUndeterminedError, no rollback; " +
    "the values are committed",
  ...TEST,
  fn: () =>
    withTxnCluster(async (cluster, client) => {
      cluster.faults.push({ cmd: "Prewrite", times: ALWAYS, loseAnswer: true });
      const txn = await client.begin({ onePc: true });
      txn.set("a", "1");
      txn.set("b", "2");
      const error = await txn.commit().then(() => null, (failure) => failure);
      assert.ok(error instanceof CommitUndeterminedError, `undetermined, got ${error}`);
      assert.match(error.message, /a 1PC prewrite was sent and its answer lost/);
      assert.ok(served(cluster, "Prewrite").every((r) => r.request.tryOnePc), "always 1PC");
      assert.equal(served(cluster, "BatchRollback").length, 0, "no rollback sent");
      assert.equal(served(cluster, "Commit").length, 0, "no fallback to 2PC");

      cluster.faults.length = 0;
      assert.deepEqual(await readAll(client, ["a", "b"]), ["1", "2"]);
    }),
});

Deno.test({
  name: "1PC: a lost answer, then a split → undetermined, not a 2PC fallback at another ts",
  ...TEST,
  fn: () =>
    withTxnCluster(async (cluster, client) => {
      const warm = await client.begin();
      await warm.get("c"); // caches [, m)
      cluster.faults.push({
        cmd: "Prewrite",
        times: 1,
        loseAnswer: true,
        onAnswerLost: () => cluster.split(encodeKey(utf8("f"))), // [, f) [f, m)
      });
      const txn = await client.begin({ onePc: true });
      txn.set("c", "1");
      txn.set("h", "2");
      const error = await txn.commit().then(() => null, (failure) => failure);
      assert.ok(error instanceof CommitUndeterminedError, `undetermined, got ${error}`);
      assert.match(error.message, /its keys are now in several regions/);
      assert.equal(served(cluster, "Prewrite").length, 1, "no prewrite of a part without 1PC");
      assert.equal(served(cluster, "Commit").length, 0);
      assert.equal(served(cluster, "BatchRollback").length, 0, "no rollback sent");
      assert.deepEqual(await readAll(client, ["c", "h"]), ["1", "2"], "the 1PC commit stands");
    }),
});

Deno.test({
  name: "2PC: the primary's commit applied but never answered → CommitUndeterminedError, no " +
    "rollback; a reader resolves the secondary as committed",
  ...TEST,
  fn: () =>
    withTxnCluster(async (cluster, client) => {
      cluster.faults.push({ cmd: "Commit", times: ALWAYS, loseAnswer: true });
      const txn = await client.begin();
      txn.set("a", "primary"); // region 1
      txn.set("x", "secondary"); // region 2
      const error = await txn.commit().then(() => null, (failure) => failure);
      assert.ok(error instanceof CommitUndeterminedError, `undetermined, got ${error}`);
      assert.equal(error.phase, "primaryCommit");
      assert.equal(served(cluster, "BatchRollback").length, 0, "no rollback sent");
      assert.ok(!cluster.txn.locks.has("a"), "the primary is committed");
      assert.ok(cluster.txn.locks.has("x"), "the secondary was never committed by the writer");

      cluster.faults.length = 0;
      assert.deepEqual(await readAll(client, ["x", "a"]), ["secondary", "primary"]);
      assert.equal(cluster.txn.locks.size, 0);
    }),
});

Deno.test({
  name: "2PC: a prewrite never answered decides nothing → the keys are rolled back",
  ...TEST,
  fn: () =>
    withTxnCluster(async (cluster, client) => {
      cluster.faults.push({ cmd: "Prewrite", times: ALWAYS, loseAnswer: true });
      const txn = await client.begin();
      txn.set("a", "1");
      txn.set("x", "2");
      const error = await txn.commit().then(() => null, (failure) => failure);
      assert.ok(error !== null && !(error instanceof CommitUndeterminedError), `got ${error}`);
      cluster.faults.length = 0;
      assert.ok(served(cluster, "BatchRollback").length >= 1, "rolled back");
      assert.equal(cluster.txn.locks.size, 0);
      assert.deepEqual(await readAll(client, ["a", "x"]), [null, null]);
    }),
});

Deno.test({
  name: "async commit: a region error on a prewrite is retried and the commit goes on",
  ...TEST,
  fn: () =>
    withTxnCluster(async (cluster, client) => {
      cluster.faults.push({
        cmd: "Prewrite",
        times: 1,
        regionError: { message: "busy", serverIsBusy: { reason: "injected", backoffMs: 1n } },
      });
      const txn = await client.begin({ asyncCommit: true, awaitSecondaries: true });
      for (const key of ["a", "b", "x"]) txn.set(key, key.toUpperCase());
      const result = await txn.commit();
      assert.equal(result.mode, "async");
      const prewrites = served(cluster, "Prewrite");
      assert.equal(prewrites.filter((r) => r.refusedWith === "serverIsBusy").length, 1);
      assert.equal(prewrites.length, 3, "two regions, one of them twice");
      assert.equal(served(cluster, "BatchRollback").length, 0);
      assert.deepEqual(await readAll(client, ["a", "b", "x"]), ["A", "B", "X"]);
    }),
});

Deno.test({
  name: "async commit: one lost answer, the repeat (is_retry_request) is answered → committed",
  ...TEST,
  fn: () =>
    withTxnCluster(async (cluster, client) => {
      cluster.faults.push({ cmd: "Prewrite", times: 1, loseAnswer: true });
      const txn = await client.begin({ asyncCommit: true, awaitSecondaries: true });
      for (const key of ["a", "b", "x"]) txn.set(key, key.toUpperCase());
      const result = await txn.commit();
      assert.equal(result.mode, "async");
      const prewrites = served(cluster, "Prewrite");
      assert.equal(prewrites.length, 3, "two regions, the lost one sent again");
      const [first, ...others] = prewrites;
      const repeat = others.find((r) => r.regionId === first!.regionId)!;
      assert.ok(repeat !== undefined, "the lost request was repeated");
      assert.equal(first!.request.context?.isRetryRequest ?? false, false);
      assert.equal(repeat.request.context?.isRetryRequest, true, "the repeat says it is one");
      assert.deepEqual(repeat.keys.map(fromUtf8), first!.keys.map(fromUtf8), "the same keys");
      assert.equal(repeat.request.useAsyncCommit, true);
      assert.equal(served(cluster, "BatchRollback").length, 0);
      assert.deepEqual(await readAll(client, ["a", "b", "x"]), ["A", "B", "X"]);
    }),
});
