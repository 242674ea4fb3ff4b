/**
 * `TxnKV` against a real store: the transaction API (get, batchGet, scan with the buffer laid
 * over the snapshot, set, delete, insert, lockKeys), commit modes, typed errors, `withRetry`.
 */
import assert from "node:assert/strict";
import {
  KeyAlreadyExistsError,
  type Transaction,
  TxnKV,
  TxnStateError,
  WriteConflictError,
} from "../../src/client/txn/mod.ts";
import type { KvPair } from "../../src/client/raw.ts";
import { fromUtf8 } from "../../src/util/bytes.ts";
import { withServer } from "./lib.ts";

const E2E = { sanitizeOps: false, sanitizeResources: false };

const text = (bytes: Uint8Array | null) => bytes === null ? null : fromUtf8(bytes);
const show = (pairs: KvPair[]) => pairs.map((p) => `${fromUtf8(p.key)}=${fromUtf8(p.value)}`);

async function committed(client: TxnKV, fill: (txn: Transaction) => void): Promise<bigint> {
  const txn = await client.begin();
  fill(txn);
  return (await txn.commit()).commitTs;
}

Deno.test({
  name: "TxnKV: reads, buffer, scan merge, insert, delete, lockKeys, state errors",
  ...E2E,
  fn: () =>
    withServer(async (server) => {
      const client = await TxnKV.connect({ host: server.grpcAddr });
      try {
        const first = await committed(client, (txn) => {
          for (const key of ["a", "b", "c", "d", "e"]) txn.set(key, `${key}0`);
        });
        assert.ok(first > 0n);

        const txn = await client.begin();
        assert.ok(txn.startTs > first, "start ts after the last commit ts");
        assert.equal(text(await txn.get("c")), "c0");
        assert.equal(await txn.get("zz"), null);
        txn.set("c", "c1");
        txn.delete("d");
        txn.set("bb", "bb1");
        txn.insert("f", "f1");
        assert.equal(text(await txn.get("c")), "c1", "read-your-writes");
        assert.equal(await txn.get("d"), null, "own delete is read back");
        assert.deepEqual(show(await txn.batchGet(["a", "d", "f", "bb", "a", "nope"])), [
          "a=a0",
          "f=f1",
          "bb=bb1",
        ]);
        assert.deepEqual(show(await txn.scan("a", null)), [
          "a=a0",
          "b=b0",
          "bb=bb1",
          "c=c1",
          "e=e0",
          "f=f1",
        ]);
        assert.deepEqual(show(await txn.scan("b", "e", { limit: 2 })), ["b=b0", "bb=bb1"]);
        assert.deepEqual(show(await txn.scan("a", "f", { limit: 4 })), [
          "a=a0",
          "b=b0",
          "bb=bb1",
          "c=c1",
        ]);
        assert.throws(() => txn.insert("c", "again"), KeyAlreadyExistsError);
        const result = await txn.commit();
        assert.equal(result.mode, "2pc");
        assert.ok(result.commitTs > txn.startTs);
        await assert.rejects(txn.get("a"), TxnStateError);
        assert.throws(() => txn.set("a", "x"), TxnStateError);

        const reader = await client.begin();
        assert.deepEqual(show(await reader.scan("", null)), [
          "a=a0",
          "b=b0",
          "bb=bb1",
          "c=c1",
          "e=e0",
          "f=f1",
        ]);
        await reader.rollback();

        // insert of a key that exists in the store fails at commit, with nothing written.
        const inserter = await client.begin();
        inserter.insert("a", "new");
        inserter.set("g", "g1");
        await assert.rejects(inserter.commit(), KeyAlreadyExistsError);
        assert.equal(inserter.state, "rolledBack");
        assert.equal(await (await client.begin()).get("g"), null, "no partial insert");

        // An empty transaction commits without a commit ts.
        assert.deepEqual(await (await client.begin()).commit(), { commitTs: 0n, mode: "empty" });
      } finally {
        await client.close();
      }
    }),
});

Deno.test({
  name: "TxnKV: write conflicts are typed; lockKeys conflicts too; withRetry reruns the work",
  ...E2E,
  fn: () =>
    withServer(async (server) => {
      const client = await TxnKV.connect({ host: server.grpcAddr });
      try {
        await committed(client, (txn) => txn.set("n", "0"));
        const slow = await client.begin();
        assert.equal(text(await slow.get("n")), "0");
        await committed(client, (txn) => txn.set("n", "1"));
        slow.set("n", "from-slow");
        const conflict = await slow.commit().catch((error) => error);
        assert.ok(conflict instanceof WriteConflictError, `got ${conflict}`);
        assert.equal(fromUtf8(conflict.details.key), "n");
        assert.equal(conflict.retriable, true);

        // Optimistic lockKeys: a key only read, then written by someone else, fails the commit.
        const locker = await client.begin();
        await locker.lockKeys("guard");
        locker.set("other", "x");
        await committed(client, (txn) => txn.set("guard", "changed"));
        await assert.rejects(locker.commit(), WriteConflictError);
        assert.equal(await (await client.begin()).get("other"), null);

        // withRetry: a conflict forced on the first attempt; the second attempt commits.
        let attempts = 0;
        const seen = await client.withRetry(async (txn) => {
          attempts++;
          const value = Number(text(await txn.get("n")));
          if (attempts === 1) await committed(client, (other) => other.set("n", "10"));
          txn.set("n", String(value + 1));
          return value;
        });
        assert.equal(attempts, 2);
        assert.equal(seen, 10);
        assert.equal(text(await (await client.begin()).get("n")), "11");
      } finally {
        await client.close();
      }
    }),
});

Deno.test({
  name: "TxnKV through PD: routing and timestamps from the store's pdpb.PD face",
  ...E2E,
  fn: () =>
    withServer(async (server) => {
      const client = await TxnKV.connect({ pd: [server.grpcAddr] });
      try {
        const written = await committed(client, (txn) => txn.set("via-pd", "yes"));
        const txn = await client.begin({ asyncCommit: true });
        assert.ok(txn.startTs > written);
        assert.equal(text(await txn.get("via-pd")), "yes");
        txn.set("via-pd", "again");
        assert.equal((await txn.commit()).mode, "async");
        await client.flush(); // the secondaries' commit runs in the background
        const found = await client.mvccGetByStartTs(txn.startTs);
        assert.equal(found === null ? null : fromUtf8(found.key), "via-pd");
      } finally {
        await client.close();
      }
    }),
});
