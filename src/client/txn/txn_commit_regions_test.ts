/**
 * TxnKV's commit and lock resolution across regions, against the fake cluster (whose store
 * keeps TiKV's rules for 1PC, async commit and CheckTxnStatus, `testing/fake_txn.ts`):
 *
 * - Percolator: every region prewritten, the primary committed first, secondaries after.
 * - 1PC only when one request to one region carries every mutation — also when a split made
 *   the one region two after the client grouped the keys (client-go unsets 1PC then).
 * - Async commit across regions: the primary's request lists every secondary.
 * - Lock resolution across regions ("Percolator: secondary lock resolved by primary"): a
 *   reader meeting a lock in one region asks the primary in another, then resolves the lock
 *   where it is — also after a split moved it to a region the writer never knew.
 */
import assert from "node:assert/strict";
import { kvrpcpb } from "../../../proto/mod.ts";
import { encodeKey } from "../../codec/key.ts";
import { fromUtf8, utf8 } from "../../util/bytes.ts";
import { PdResolver } from "../pd_resolver.ts";
import { FakeCluster, FakeTso } from "../testing/fake_cluster.ts";
import { TxnKV } from "./txn_kv.ts";

const TEST = { sanitizeOps: false, sanitizeResources: false };
/** A commit hook that stops the client there, as a crash would. */
const abandon = () => Promise.resolve("abandon" as const);
const text = (bytes: Uint8Array | null) => bytes === null ? null : fromUtf8(bytes);

/** Regions [, m) on store 1 and [m, ) on store 2 (bounds are encoded user keys), and a TxnKV. */
async function withTxnCluster(
  body: (cluster: FakeCluster, client: TxnKV) => Promise<void>,
): Promise<void> {
  const cluster = await FakeCluster.start({ stores: 2, splitKeys: [encodeKey(utf8("m"))] });
  cluster.transferLeader(2n, 2n);
  const resolver = await PdResolver.connect([cluster.pdAddress]);
  const client = new TxnKV(resolver, new FakeTso(), { timeoutMs: 5000 });
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

Deno.test({
  name: "2PC over two regions: prewrites to both, the primary committed before any secondary",
  ...TEST,
  fn: () =>
    withTxnCluster(async (cluster, client) => {
      const txn = await client.begin({ awaitSecondaries: true });
      for (const key of ["a", "b", "x", "y"]) txn.set(key, key);
      const result = await txn.commit();
      assert.equal(result.mode, "2pc");
      assert.deepEqual(
        new Set(served(cluster, "Prewrite").map((r) => r.regionId)),
        new Set([1n, 2n]),
      );
      const commits = served(cluster, "Commit");
      assert.deepEqual(commits[0]!.keys.map(fromUtf8), ["a"], "the primary alone, first");
      assert.equal(commits[0]!.request.commitRole, kvrpcpb.CommitRole.Primary);
      assert.deepEqual(
        commits.slice(1).flatMap((r) => r.keys.map(fromUtf8)).sort(),
        ["b", "x", "y"],
      );
      assert.equal(cluster.txn.locks.size, 0);
    }),
});

Deno.test({
  name: "1PC: asked of one region, one Prewrite with try_one_pc commits; over two, it is 2PC",
  ...TEST,
  fn: () =>
    withTxnCluster(async (cluster, client) => {
      const one = await client.begin({ onePc: true });
      one.set("a", "1");
      one.set("b", "2");
      const first = await one.commit();
      assert.equal(first.mode, "1pc");
      const prewrites = served(cluster, "Prewrite");
      assert.equal(prewrites.length, 1);
      assert.equal(prewrites[0]!.request.tryOnePc, true);
      assert.equal(served(cluster, "Commit").length, 0, "no commit phase");

      cluster.served.length = 0;
      const two = await client.begin({ onePc: true, awaitSecondaries: true });
      two.set("a", "3");
      two.set("x", "4");
      const second = await two.commit();
      assert.equal(second.mode, "2pc");
      assert.ok(served(cluster, "Prewrite").every((r) => !r.request.tryOnePc));
      const reader = await client.begin();
      assert.deepEqual([text(await reader.get("a")), text(await reader.get("x"))], ["3", "4"]);
    }),
});

Deno.test({
  name: "1PC: a split after the keys were grouped drops try_one_pc; the commit is atomic 2PC",
  ...TEST,
  fn: () =>
    withTxnCluster(async (cluster, client) => {
      const warm = await client.begin();
      await warm.get("c"); // caches [, m)
      cluster.split(encodeKey(utf8("f"))); // [, f) [f, m), unknown to the client
      const txn = await client.begin({ onePc: true, awaitSecondaries: true });
      txn.set("c", "1");
      txn.set("h", "2");
      const result = await txn.commit();
      assert.equal(result.mode, "2pc", "fell back: the keys are in two regions now");
      const prewrites = served(cluster, "Prewrite");
      const withOnePc = prewrites.filter((r) => r.request.tryOnePc);
      assert.ok(withOnePc.every((r) => r.keys.length === 2), "try_one_pc only with every key");
      assert.ok(prewrites.some((r) => !r.request.tryOnePc), "the regrouped prewrites");
      assert.ok(served(cluster, "Commit").length >= 2, "committed by KvCommit");
      const reader = await client.begin();
      assert.deepEqual([text(await reader.get("c")), text(await reader.get("h"))], ["1", "2"]);
    }),
});

Deno.test({
  name: "async commit over two regions: the primary's prewrite lists every secondary",
  ...TEST,
  fn: () =>
    withTxnCluster(async (cluster, client) => {
      const txn = await client.begin({ asyncCommit: true, awaitSecondaries: true });
      for (const key of ["a", "b", "x"]) txn.set(key, key);
      const result = await txn.commit();
      assert.equal(result.mode, "async");
      const prewrites = served(cluster, "Prewrite");
      assert.ok(prewrites.every((r) => r.request.useAsyncCommit));
      const primary = prewrites.find((r) => r.keys.some((k) => fromUtf8(k) === "a"))!;
      assert.deepEqual(primary.request.secondaries.map(fromUtf8).sort(), ["b", "x"]);
      assert.equal(served(cluster, "Commit").length, 2, "no primary-first round: one per region");
      assert.equal(cluster.txn.locks.size, 0);
    }),
});

Deno.test({
  name: "lock resolution across regions: a secondary left locked is committed by its primary",
  ...TEST,
  fn: () =>
    withTxnCluster(async (cluster, client) => {
      const txn = await client.begin();
      txn.set("a", "primary"); // region 1
      txn.set("x", "secondary"); // region 2
      const result = await txn.commit({ hooks: { afterPrimaryCommit: abandon } });
      assert.equal(result.abandonedAfter, "primaryCommit");
      assert.ok(cluster.txn.locks.has("x"), "the secondary is still locked");
      cluster.served.length = 0;
      const reader = await client.begin();
      assert.equal(text(await reader.get("x")), "secondary");
      const check = served(cluster, "CheckTxnStatus");
      assert.equal(check.length, 1);
      assert.equal(check[0]!.regionId, 1n, "asked of the primary's region");
      const resolve = served(cluster, "ResolveLock");
      assert.ok(resolve.length >= 1 && resolve.every((r) => r.regionId === 2n));
      assert.equal(cluster.txn.locks.size, 0);
    }),
});

Deno.test({
  name: "lock resolution across regions: an expired transaction is rolled back after a split",
  ...TEST,
  fn: () =>
    withTxnCluster(async (cluster, client) => {
      const txn = await client.begin({ lockTtlMs: 100 });
      txn.set("a", "never");
      txn.set("x", "never");
      const result = await txn.commit({ hooks: { afterPrewrite: abandon } });
      assert.equal(result.abandonedAfter, "prewrite");
      cluster.split(encodeKey(utf8("w"))); // the locks now sit in regions the writer never saw
      cluster.split(encodeKey(utf8("b")));
      await new Promise((resolve) => setTimeout(resolve, 150));
      const reader = await client.begin();
      assert.equal(await reader.get("x"), null);
      assert.equal(await reader.get("a"), null);
      assert.equal(cluster.txn.locks.size, 0, "both locks rolled back");
      assert.ok(served(cluster, "CheckTxnStatus").length >= 1);
    }),
});

Deno.test({
  name: "async-commit recovery across regions: CheckSecondaryLocks in every region decides it",
  ...TEST,
  fn: () =>
    withTxnCluster(async (cluster, client) => {
      const txn = await client.begin({ asyncCommit: true, lockTtlMs: 100 });
      for (const key of ["a", "b", "x", "y"]) txn.set(key, key.toUpperCase());
      const result = await txn.commit({ hooks: { afterPrewrite: abandon } });
      assert.equal(result.abandonedAfter, "prewrite");
      await new Promise((resolve) => setTimeout(resolve, 150));
      const reader = await client.begin();
      assert.equal(text(await reader.get("y")), "Y", "every prewrite succeeded: committed");
      const checks = served(cluster, "CheckSecondaryLocks");
      assert.deepEqual(new Set(checks.map((r) => r.regionId)), new Set([1n, 2n]));
      assert.equal(cluster.txn.locks.size, 0);
      assert.deepEqual(
        (await reader.scan("", null)).map((pair) => text(pair.value)),
        ["A", "B", "X", "Y"],
      );
    }),
});
