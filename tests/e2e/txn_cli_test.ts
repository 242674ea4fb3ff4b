/** `basalt-ctl txn …` and `mvcc KEY` as child processes against a real store. */
import assert from "node:assert/strict";
import { TxnKV } from "../../src/client/txn/mod.ts";
import { ctl, ok } from "./ctl.ts";
import { withServer } from "./lib.ts";

const E2E = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name: "ctl txn: put, get, scan, delete as one-shot transactions; mvcc shows versions and locks",
  ...E2E,
  fn: () =>
    withServer(async (server) => {
      const host = ["--host", server.grpcAddr];
      const put = await ok([...host, "txn", "put", "apple", "red"]);
      assert.match(put[0]!, /^OK \(committed at \d+ \(\d{4}-\d\d-\d\dT.*Z\)\)$/);
      await ok([...host, "txn", "put", "banana", "yellow"]);
      await ok([...host, "txn", "put", "apple", "green"]);
      assert.deepEqual(await ok([...host, "txn", "get", "apple"]), ["green"]);
      assert.deepEqual(await ok([...host, "txn", "get", "cherry"]), ["(not found)"]);
      assert.deepEqual(await ok([...host, "txn", "scan"]), ["apple => green", "banana => yellow"]);
      assert.deepEqual(await ok([...host, "txn", "scan", "b", "--key-only"]), ["banana"]);
      const json = JSON.parse((await ok([...host, "txn", "get", "apple", "--json"]))[0]!);
      assert.equal(json.value, "green");
      assert.ok(BigInt(json.readTs) > 0n);

      await ok([...host, "txn", "delete", "banana"]);
      assert.deepEqual(await ok([...host, "txn", "scan"]), ["apple => green"]);

      // mvcc: two Put versions of apple, newest first; then a lock left by a dead client.
      const lines = await ok([...host, "mvcc", "apple"]);
      assert.equal(lines[0], 'key "apple"');
      assert.equal(lines[1], "lock: none");
      assert.equal(lines.filter((line) => /^\s+Put\s+commit \d+/.test(line)).length, 2);
      assert.ok(lines.some((line) => line.includes('value "green"')));

      const client = await TxnKV.connect({ host: server.grpcAddr });
      const dead = await client.begin({ lockTtlMs: 60_000 });
      dead.set("apple", "blue");
      dead.set("zebra", "striped");
      await dead.commit({ hooks: { afterPrewrite: () => Promise.resolve("abandon" as const) } });
      await client.close();
      const locked = await ok([...host, "mvcc", "zebra"]);
      assert.match(locked[1]!, new RegExp(`^lock: Put by txn ${dead.startTs} `));
      assert.match(locked[2]!, /primary "apple", ttl 60000 ms/);
      const record = JSON.parse((await ok([...host, "mvcc", "apple", "--json"]))[0]!);
      assert.equal(record.lock.startTs, String(dead.startTs));
      assert.equal(record.writes.length, 2);
      assert.deepEqual(record.writes.map((w: { type: string }) => w.type), ["Put", "Put"]);
      assert.ok(BigInt(record.writes[0].commitTs) > BigInt(record.writes[1].commitTs));

      const bad = await ctl([...host, "txn", "frobnicate"]);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /unknown txn command "frobnicate"/);
      const refused = await ctl(["--host", "127.0.0.1:1", "txn", "get", "k", "--timeout", "2000"]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /cannot reach 127\.0\.0\.1:1/);
    }),
});
