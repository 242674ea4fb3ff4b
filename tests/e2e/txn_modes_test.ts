/**
 * Commit modes and pessimistic locking through a real store: async commit (and its recovery by
 * CheckSecondaryLocks, both ways), 1PC (and the fall back when a transaction does not fit one
 * request), pessimistic lock waits, wait timeouts and a deadlock between two transactions.
 */
import assert from "node:assert/strict";
import { kvrpcpb } from "../../proto/mod.ts";
import { contextOf } from "../../src/client/region.ts";
import { standaloneRegion } from "../../src/client/standalone_resolver.ts";
import { StoreConnection } from "../../src/client/transport.ts";
import { composeTimestamp, physicalOf } from "../../src/client/tso.ts";
import {
  DeadlockError,
  LockWaitTimeoutError,
  type Transaction,
  TxnKV,
} from "../../src/client/txn/mod.ts";
import { fromUtf8, utf8 } from "../../src/util/bytes.ts";
import { withServer } from "./lib.ts";

const E2E = { sanitizeOps: false, sanitizeResources: false };

const text = (bytes: Uint8Array | null) => bytes === null ? null : fromUtf8(bytes);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function readAll(client: TxnKV, keys: string[]): Promise<(string | null)[]> {
  const txn = await client.begin();
  const pairs = await txn.batchGet(keys);
  await txn.rollback();
  const byKey = new Map(pairs.map((pair) => [fromUtf8(pair.key), fromUtf8(pair.value)]));
  return keys.map((key) => byKey.get(key) ?? null);
}

Deno.test({
  name: "async commit: commits without a commit-ts round trip; recovery decides from secondaries",
  ...E2E,
  fn: () =>
    withServer(async (server) => {
      const client = await TxnKV.connect({ host: server.grpcAddr });
      try {
        const txn = await client.begin({ asyncCommit: true, awaitSecondaries: true });
        for (const key of ["a1", "a2", "a3"]) txn.set(key, "v1");
        const result = await txn.commit();
        assert.equal(result.mode, "async");
        assert.ok(result.commitTs > txn.startTs);
        assert.deepEqual(await readAll(client, ["a1", "a2", "a3"]), ["v1", "v1", "v1"]);
        const record = await client.mvccGetByKey("a2");
        assert.equal(record.lock ?? null, null);
        assert.ok((record.writes ?? []).some((w) => w.commitTs === result.commitTs));

        // Every key prewritten, then the client died: the transaction IS committed, and a
        // reader finds that out once the primary's TTL is over (CheckSecondaryLocks).
        const dead = await client.begin({ asyncCommit: true, lockTtlMs: 200 });
        for (const key of ["a1", "a2", "a3"]) dead.set(key, "v2");
        const abandoned = await dead.commit({
          hooks: { afterPrewrite: () => Promise.resolve("abandon" as const) },
        });
        assert.equal(abandoned.abandonedAfter, "prewrite");
        const lock = (await client.mvccGetByKey("a1")).lock;
        assert.ok(lock?.useAsyncCommit, "the primary is an async-commit lock");
        assert.equal(lock?.secondaries?.length, 2, "the primary names both secondaries");
        await sleep(250);
        assert.deepEqual(await readAll(client, ["a3", "a1", "a2"]), ["v2", "v2", "v2"]);
        assert.ok(client.lockResolver.stats.checkSecondaryLocks >= 1);
        for (const key of ["a1", "a2", "a3"]) {
          assert.equal((await client.mvccGetByKey(key)).lock ?? null, null, `${key} resolved`);
        }
      } finally {
        await client.close();
      }
    }),
});

Deno.test({
  name: "async commit recovery: a secondary never prewritten means the transaction rolled back",
  ...E2E,
  fn: () =>
    withServer(async (server) => {
      const client = await TxnKV.connect({ host: server.grpcAddr });
      const connection = new StoreConnection(server.grpcAddr);
      try {
        // A client that prewrote its primary (naming secondary "b2") and died before "b2".
        const startTs = await client.currentTimestamp();
        const response = await connection.send("Prewrite", {
          context: contextOf(standaloneRegion()),
          mutations: [{ op: kvrpcpb.Op.Put, key: utf8("b1"), value: utf8("never") }],
          primaryLock: utf8("b1"),
          startVersion: startTs,
          lockTtl: 100n,
          minCommitTs: startTs + 1n,
          useAsyncCommit: true,
          secondaries: [utf8("b2")],
          maxCommitTs: composeTimestamp(physicalOf(startTs) + 10_000),
        });
        assert.deepEqual(response.errors, []);
        assert.ok(response.minCommitTs > startTs, "an async-commit prewrite answers min_commit_ts");
        await sleep(150);
        assert.deepEqual(await readAll(client, ["b1", "b2"]), [null, null]);
        const b1 = await client.mvccGetByKey("b1");
        assert.equal(b1.lock ?? null, null, "the primary was rolled back");
        const b2 = await client.mvccGetByKey("b2");
        assert.ok(
          (b2.writes ?? []).some((w) => w.type === kvrpcpb.Op.Rollback && w.startTs === startTs),
          "CheckSecondaryLocks left a rollback on the missing secondary",
        );
      } finally {
        connection.close();
        await client.close();
      }
    }),
});

Deno.test({
  name: "1PC: a transaction of one request commits in the prewrite; bigger ones fall back",
  ...E2E,
  fn: () =>
    withServer(async (server) => {
      const client = await TxnKV.connect({ host: server.grpcAddr });
      try {
        const txn = await client.begin({ onePc: true });
        txn.set("o1", "x");
        txn.set("o2", "y");
        const result = await txn.commit();
        assert.equal(result.mode, "1pc");
        assert.ok(result.commitTs > txn.startTs);
        const record = await client.mvccGetByKey("o1");
        assert.equal(record.lock ?? null, null, "1PC leaves no lock");
        assert.ok((record.writes ?? []).some((w) => w.commitTs === result.commitTs));
        assert.deepEqual(await readAll(client, ["o1", "o2"]), ["x", "y"]);

        // Two 10 KB values do not fit one 16 KB request: two-phase commit instead.
        const big = await client.begin({ onePc: true });
        big.set("big1", "z".repeat(10_000));
        big.set("big2", "z".repeat(10_000));
        assert.equal((await big.commit()).mode, "2pc");
        const values = await readAll(client, ["big1", "big2"]);
        assert.equal(values[0]?.length, 10_000);
        assert.equal(values[1]?.length, 10_000);
      } finally {
        await client.close();
      }
    }),
});

Deno.test({
  name: "pessimistic: a lock waits for its holder, times out, and reads the newest value",
  ...E2E,
  fn: () =>
    withServer(async (server) => {
      const client = await TxnKV.connect({ host: server.grpcAddr });
      try {
        const setup = await client.begin();
        setup.set("p", "0");
        await setup.commit();

        const holder = await client.begin({ pessimistic: true });
        assert.equal(text(await holder.getForUpdate("p")), "0");

        const impatient = await client.begin({ pessimistic: true, lockWaitTimeoutMs: 300 });
        const started = Date.now();
        const timedOut = await impatient.getForUpdate("p").catch((error) => error);
        assert.ok(timedOut instanceof LockWaitTimeoutError, String(timedOut));
        assert.ok(Date.now() - started >= 250, "it waited for the lock");
        await impatient.rollback();

        // A patient waiter is granted the lock when the holder commits, and reads its value.
        const waiter = await client.begin({ pessimistic: true, lockWaitTimeoutMs: 10_000 });
        const waiting = waiter.getForUpdate("p");
        await sleep(200);
        holder.set("p", "1");
        await holder.commit();
        assert.equal(text(await waiting), "1", "the lock is taken at a newer for_update_ts");
        waiter.set("p", "2");
        await waiter.commit();
        assert.deepEqual(await readAll(client, ["p"]), ["2"]);

        // Rollback releases pessimistic locks at once.
        const quitter = await client.begin({ pessimistic: true });
        await quitter.lockKeys("p", "q");
        await quitter.rollback();
        const next = await client.begin({ pessimistic: true, lockWaitTimeoutMs: 0 });
        await next.lockKeys("p", "q");
        await next.rollback();
      } finally {
        await client.close();
      }
    }),
});

Deno.test({
  name: "pessimistic: a deadlock between two transactions is detected and reported to one",
  ...E2E,
  fn: () =>
    withServer(async (server) => {
      const client = await TxnKV.connect({ host: server.grpcAddr });
      try {
        const options = { pessimistic: true, lockWaitTimeoutMs: 10_000 };
        const t1 = await client.begin(options);
        const t2 = await client.begin(options);
        await t1.lockKeys("left");
        await t2.lockKeys("right");
        const step = async (txn: Transaction, key: string) => {
          try {
            await txn.lockKeys(key);
            return "locked";
          } catch (error) {
            await txn.rollback();
            return error;
          }
        };
        const first = step(t1, "right"); // waits for t2
        await sleep(100);
        const second = step(t2, "left"); // closes the cycle
        const outcomes = await Promise.all([first, second]);
        const deadlocks = outcomes.filter((outcome) => outcome instanceof DeadlockError);
        assert.equal(deadlocks.length, 1, `outcomes: ${outcomes.map(String).join(", ")}`);
        assert.equal(outcomes.filter((outcome) => outcome === "locked").length, 1);
        assert.equal(deadlocks[0]!.retriable, true);
        const survivor = outcomes[0] === "locked" ? t1 : t2;
        survivor.set("left", "survivor");
        survivor.set("right", "survivor");
        await survivor.commit();
        assert.deepEqual(await readAll(client, ["left", "right"]), ["survivor", "survivor"]);
      } finally {
        await client.close();
      }
    }),
});
