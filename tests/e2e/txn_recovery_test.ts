/**
 * Recovery through a real store: a client that dies between prewrite and commit (its locks are
 * resolved by the next reader, after the lock TTL), a client that dies after committing the
 * primary (readers commit the secondaries through it), a store SIGKILLed mid-commit and
 * restarted, and heartbeats keeping a slow transaction's locks alive.
 * (Percolator §2.2: "secondary lock resolved by primary"; TiKV's lock resolver.)
 */
import assert from "node:assert/strict";
import { kvrpcpb } from "../../proto/mod.ts";
import {
  type CommitHooks,
  LockWaitTimeoutError,
  TxnKV,
  WriteConflictError,
} from "../../src/client/txn/mod.ts";
import { fromUtf8 } from "../../src/util/bytes.ts";
import { withServer } from "./lib.ts";

const E2E = { sanitizeOps: false, sanitizeResources: false };

const text = (bytes: Uint8Array | null) => bytes === null ? null : fromUtf8(bytes);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const abandonAfter = (phase: "prewrite" | "primaryCommit"): CommitHooks =>
  phase === "prewrite"
    ? { afterPrewrite: () => Promise.resolve("abandon" as const) }
    : { afterPrimaryCommit: () => Promise.resolve("abandon" as const) };

async function readAll(client: TxnKV, keys: string[]): Promise<(string | null)[]> {
  const txn = await client.begin();
  const values = [];
  for (const key of keys) values.push(text(await txn.get(key)));
  await txn.rollback();
  return values;
}

async function put(client: TxnKV, pairs: Record<string, string>): Promise<bigint> {
  const txn = await client.begin();
  for (const [key, value] of Object.entries(pairs)) txn.set(key, value);
  return (await txn.commit({})).commitTs;
}

Deno.test({
  name: "recovery: a client dead after prewrite — the next reader rolls it back after the TTL",
  ...E2E,
  fn: () =>
    withServer(async (server) => {
      const client = await TxnKV.connect({ host: server.grpcAddr });
      try {
        await put(client, { k1: "old1", k2: "old2", k3: "old3" });
        const dead = await client.begin({ lockTtlMs: 300 });
        dead.set("k1", "new1");
        dead.set("k2", "new2");
        dead.delete("k3");
        const outcome = await dead.commit({ hooks: abandonAfter("prewrite") });
        assert.equal(outcome.abandonedAfter, "prewrite");
        assert.ok((await client.mvccGetByKey("k2")).lock != null, "the secondary is locked");

        // A reader at once: it pushes the live-looking transaction's commit ts past its own
        // start ts and reads the old values without waiting.
        const started = Date.now();
        assert.deepEqual(await readAll(client, ["k2", "k1", "k3"]), ["old2", "old1", "old3"]);
        assert.ok(Date.now() - started < 250, "the first reader did not wait for the TTL");
        assert.ok((await client.mvccGetByKey("k2")).lock != null, "still locked");

        // After the TTL, the next reader rolls the transaction back (and, knowing that, reads
        // past its other locks); readers that meet the remaining locks later remove them.
        await sleep(350);
        assert.deepEqual(await readAll(client, ["k2", "k1", "k3"]), ["old2", "old1", "old3"]);
        for (const key of ["k1", "k2", "k3"]) await readAll(client, [key]);
        const stats = client.lockResolver.stats;
        assert.ok(stats.checkTxnStatus >= 2 && stats.resolveLock >= 2, JSON.stringify(stats));
        for (const key of ["k1", "k2", "k3"]) {
          assert.equal((await client.mvccGetByKey(key)).lock ?? null, null, `${key} unlocked`);
        }

        // The primary has a rollback record, so a late commit of the dead client would fail.
        const primary = await client.mvccGetByKey("k1");
        assert.equal(primary.lock ?? null, null);
        assert.ok(
          (primary.writes ?? []).some((w) =>
            w.type === kvrpcpb.Op.Rollback && w.startTs === dead.startTs
          ),
          "a rollback record at the dead transaction's start ts",
        );
        // Writers go through too (the prewrite meets no lock).
        await put(client, { k2: "after" });
        assert.deepEqual(await readAll(client, ["k2"]), ["after"]);
      } finally {
        await client.close();
      }
    }),
});

Deno.test({
  name: "recovery: a client dead after the primary's commit — readers see it committed at once",
  ...E2E,
  fn: () =>
    withServer(async (server) => {
      const client = await TxnKV.connect({ host: server.grpcAddr });
      try {
        await put(client, { p: "0", s1: "0", s2: "0" });
        // A long TTL: the reader must not need it to expire (the primary decides).
        const txn = await client.begin({ lockTtlMs: 60_000 });
        for (const key of ["p", "s1", "s2"]) txn.set(key, "1");
        const { commitTs, abandonedAfter } = await txn.commit({
          hooks: abandonAfter("primaryCommit"),
        });
        assert.equal(abandonedAfter, "primaryCommit");
        assert.ok(commitTs > txn.startTs);
        assert.ok((await client.mvccGetByKey("s2")).lock != null, "secondaries still locked");
        const started = Date.now();
        assert.deepEqual(await readAll(client, ["s2", "s1", "p"]), ["1", "1", "1"]);
        assert.ok(Date.now() - started < 2_000, "resolved through the primary, not by TTL");
        const s2 = await client.mvccGetByKey("s2");
        assert.equal(s2.lock ?? null, null);
        assert.ok((s2.writes ?? []).some((w) => w.commitTs === commitTs));
      } finally {
        await client.close();
      }
    }),
});

Deno.test({
  name: "recovery: store SIGKILLed after the primary's commit restarts; readers see the commit",
  ...E2E,
  fn: () =>
    withServer(async (server) => {
      let client = await TxnKV.connect({ host: server.grpcAddr });
      const keys = ["acct/0", "acct/1", "acct/2", "acct/3"];
      try {
        await put(client, Object.fromEntries(keys.map((key) => [key, "100"])));
        const txn = await client.begin();
        for (const key of keys) txn.set(key, "250");
        const { commitTs } = await txn.commit({
          hooks: {
            afterPrimaryCommit: async () => {
              await server.kill();
              return "abandon";
            },
          },
        });
        await client.close();
        await server.restart();
        client = await TxnKV.connect({ host: server.grpcAddr });
        const locked = await client.mvccGetByKey("acct/3");
        assert.ok(locked.lock != null, "the secondary's lock survived the crash");
        assert.deepEqual(await readAll(client, [...keys].reverse()), ["250", "250", "250", "250"]);
        const resolved = await client.mvccGetByKey("acct/3");
        assert.equal(resolved.lock ?? null, null);
        assert.ok((resolved.writes ?? []).some((w) => w.commitTs === commitTs));

        // Killed after prewrite (before any commit): after restart, the transaction is gone.
        const doomed = await client.begin({ lockTtlMs: 200 });
        for (const key of keys) doomed.set(key, "999");
        await doomed.commit({
          hooks: {
            afterPrewrite: async () => {
              await server.kill();
              return "abandon";
            },
          },
        });
        await client.close();
        await server.restart();
        client = await TxnKV.connect({ host: server.grpcAddr });
        assert.deepEqual(await readAll(client, keys), ["250", "250", "250", "250"]);
      } finally {
        await client.close();
      }
    }),
});

Deno.test({
  name: "recovery: heartbeats keep a slow pessimistic transaction's locks alive past their TTL",
  ...E2E,
  fn: () =>
    withServer(async (server) => {
      const client = await TxnKV.connect({ host: server.grpcAddr });
      try {
        await put(client, { hb: "0" });
        const slow = await client.begin({ pessimistic: true, managedLockTtlMs: 200 });
        assert.equal(text(await slow.getForUpdate("hb")), "0");
        await sleep(1_200); // six TTLs
        assert.ok(slow.heartbeats >= 3, `only ${slow.heartbeats} heartbeats`);
        // Another transaction cannot take the lock: it is alive, so nobody rolls it back.
        const other = await client.begin({ pessimistic: true, lockWaitTimeoutMs: 500 });
        await assert.rejects(other.getForUpdate("hb"), LockWaitTimeoutError);
        await other.rollback();
        // An optimistic writer started now conflicts once the slow one commits.
        const late = await client.begin();
        late.set("hb", "late");
        slow.set("hb", "1");
        await slow.commit();
        await assert.rejects(late.commit(), WriteConflictError);
        assert.deepEqual(await readAll(client, ["hb"]), ["1"]);
      } finally {
        await client.close();
      }
    }),
});
