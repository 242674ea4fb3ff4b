/** `RawKV` against real store processes: every method, TTL, CAS races, typed errors. */
import assert from "node:assert/strict";
import { ClientError, InvalidArgumentError, ServerError } from "../../src/client/errors.ts";
import { type KvPair, RawKV } from "../../src/client/raw.ts";
import { StandaloneResolver } from "../../src/client/standalone_resolver.ts";
import { crc64 } from "../../src/server/raw/crc64.ts";
import { fromUtf8, utf8 } from "../../src/util/bytes.ts";
import { withServer } from "./lib.ts";

const E2E = { sanitizeOps: false, sanitizeResources: false };

const text = (bytes: Uint8Array | null) => bytes === null ? null : fromUtf8(bytes);
const keys = (pairs: KvPair[]) => pairs.map((pair) => fromUtf8(pair.key));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test({
  name: "RawKV: get, put, delete and their batch forms; column families; typed errors",
  ...E2E,
  fn: () =>
    withServer(async (server) => {
      const client = await RawKV.connect({ host: server.grpcAddr, cf: "default" });
      try {
        assert.equal(await client.get("k"), null);
        await client.put("k", "v1");
        assert.equal(text(await client.get("k")), "v1");
        await client.put(utf8("k"), new Uint8Array([0, 255]));
        assert.deepEqual(await client.get("k"), new Uint8Array([0, 255]));
        await client.delete("k");
        assert.equal(await client.get("k"), null);
        await client.delete("never-written");

        // 5000 pairs: more than one RawBatchPut per region (4096 keys at most each).
        const pairs = Array.from({ length: 5000 }, (_, i) => ({
          key: `b${String(i).padStart(5, "0")}`,
          value: `value-${i}`,
        }));
        await client.batchPut(pairs);
        const got = await client.batchGet(["b00007", "missing", "b04999", "b00007", "b04100"]);
        assert.deepEqual(keys(got), ["b00007", "b04999", "b04100"]);
        assert.deepEqual(got.map((pair) => fromUtf8(pair.value)), [
          "value-7",
          "value-4999",
          "value-4100",
        ]);
        await client.batchDelete(pairs.slice(0, 4500).map((pair) => pair.key));
        assert.equal((await client.scan("b", "c", { limit: 10_000 })).length, 500);
        assert.deepEqual(await client.batchGet([]), []);
        await client.batchPut([]);
        await client.batchDelete([]);

        await client.put("same", "in-write", { cf: "write" });
        assert.equal(text(await client.get("same", { cf: "write" })), "in-write");
        assert.equal(await client.get("same"), null);
        const lockCf = new RawKV(new StandaloneResolver(server.grpcAddr), { cf: "lock" });
        await lockCf.put("same", "in-lock");
        assert.equal(text(await lockCf.get("same")), "in-lock");
        assert.equal(text(await client.get("same", { cf: "lock" })), "in-lock");
        lockCf.close();

        // The store's refusals arrive as ServerError with its message; nothing is retried.
        const huge = new Uint8Array(9000).fill(97);
        await assert.rejects(client.put(huge, "v"), (error) => {
          assert.ok(error instanceof ServerError, String(error));
          assert.match(error.message, /key is too large: 9000 bytes, limit 8192/);
          return true;
        });
        await assert.rejects(client.get(huge), /key is too large/);
        await assert.rejects(client.batchGet(["a", huge]), /key is too large/);
        await assert.rejects(client.get("k", { cf: "raft" }), /invalid column family "raft"/);
        await assert.rejects(client.put("", "v"), InvalidArgumentError);
        await assert.rejects(client.put("k", "v", { ttlSeconds: -1 }), InvalidArgumentError);
        await assert.rejects(
          client.deleteRange("z", "a"),
          (error) => error instanceof ClientError && error.code === "InvalidArgument",
        );
      } finally {
        client.close();
      }
    }),
});

Deno.test({
  name: "RawKV: scan and reverse scan (bounds, limits, key-only, paging), delete range, checksum",
  ...E2E,
  fn: () =>
    withServer(async (server) => {
      // A page size of 3 makes every scan longer than 3 continue within the region.
      const client = await RawKV.connect({ host: server.grpcAddr, scanPageSize: 3 });
      try {
        const letters = ["a", "b", "c", "d", "e", "f", "g", "h"];
        await client.batchPut(letters.map((k) => ({ key: k, value: `v${k}` })));
        assert.deepEqual(keys(await client.scan("")), letters);
        assert.deepEqual(keys(await client.scan("b", "f")), ["b", "c", "d", "e"]);
        assert.deepEqual(keys(await client.scan("b", null, { limit: 5 })), [
          "b",
          "c",
          "d",
          "e",
          "f",
        ]);
        assert.deepEqual(await client.scan("b", "b"), []);
        assert.deepEqual(await client.scan("a", "z", { limit: 0 }), []);
        const keyOnly = await client.scan("a", "c", { keyOnly: true });
        assert.deepEqual(keyOnly.map((pair) => pair.value.length), [0, 0]);
        assert.equal(fromUtf8((await client.scan("c", "d"))[0]!.value), "vc");

        assert.deepEqual(keys(await client.reverseScan("")), [...letters].reverse());
        assert.deepEqual(keys(await client.reverseScan("b", "f")), ["e", "d", "c", "b"]);
        assert.deepEqual(keys(await client.reverseScan("", "g", { limit: 4 })), [
          "f",
          "e",
          "d",
          "c",
        ]);
        assert.deepEqual(keys(await client.reverseScan("c", "c")), []);

        const all = await client.checksum();
        const expected = letters.reduce((sum, k) => sum ^ crc64(utf8(k), utf8(`v${k}`)), 0n);
        assert.deepEqual(all, { checksum: expected, totalKvs: 8n, totalBytes: 24n });
        const part = await client.checksum("b", "d");
        assert.equal(part.checksum, crc64(utf8("b"), utf8("vb")) ^ crc64(utf8("c"), utf8("vc")));
        assert.equal(part.totalKvs, 2n);

        await client.deleteRange("b", "e");
        assert.deepEqual(keys(await client.scan("")), ["a", "e", "f", "g", "h"]);
        await client.deleteRange("f", "");
        assert.deepEqual(keys(await client.scan("")), ["a", "e"]);
        assert.equal((await client.checksum()).totalKvs, 2n);
      } finally {
        client.close();
      }
    }),
});

Deno.test({
  name: "RawKV: TTL — getKeyTTL counts down, expired keys vanish from get, scan and batchGet",
  ...E2E,
  fn: () =>
    withServer(async (server) => {
      const client = await RawKV.connect({ host: server.grpcAddr });
      try {
        // The short TTLs are 3 s, read back at once, so a loaded machine cannot expire them
        // before the first read; the wait for their expiry is measured from the writes.
        await client.put("short", "v", { ttlSeconds: 3 });
        assert.equal(text(await client.get("short")), "v");
        await client.put("long", "v", { ttlSeconds: 100 });
        await client.put("forever", "v");
        await client.batchPut([
          { key: "batch-short", value: "v", ttlSeconds: 3 },
          { key: "batch-long", value: "v" },
        ], { ttlSeconds: 100 });
        const shortWrittenMs = Date.now(); // after the last short write was acknowledged
        const ttl = await client.getKeyTTL("long");
        assert.ok(ttl !== null && ttl > 90 && ttl <= 100, `ttl ${ttl}`);
        assert.equal(await client.getKeyTTL("forever"), 0);
        assert.equal(await client.getKeyTTL("missing"), null);
        const batchTtl = await client.getKeyTTL("batch-long");
        assert.ok(batchTtl !== null && batchTtl > 90, `batch ttl ${batchTtl}`);
        await sleep(Math.max(0, shortWrittenMs + 4100 - Date.now()));
        assert.equal(await client.get("short"), null);
        assert.equal(await client.getKeyTTL("short"), null);
        assert.deepEqual(keys(await client.batchGet(["batch-short", "batch-long"])), [
          "batch-long",
        ]);
        assert.deepEqual(keys(await client.scan("")), ["batch-long", "forever", "long"]);
      } finally {
        client.close();
      }
    }),
});

Deno.test({
  name: "RawKV: compareAndSwap — absent/present/delete, and in concurrent races exactly one wins",
  ...E2E,
  fn: () =>
    withServer(async (server) => {
      const client = await RawKV.connect({ host: server.grpcAddr });
      try {
        assert.deepEqual(await client.compareAndSwap("n", null, "0"), {
          succeeded: true,
          previous: null,
        });
        const lost = await client.compareAndSwap("n", null, "x");
        assert.deepEqual([lost.succeeded, text(lost.previous)], [false, "0"]);
        const wrong = await client.compareAndSwap("n", "7", "x");
        assert.deepEqual([wrong.succeeded, text(wrong.previous)], [false, "0"]);

        // 16 racers all expect "0": one swap wins, every loser sees the winner's value.
        const racers = await Promise.all(
          Array.from({ length: 16 }, (_, i) => client.compareAndSwap("n", "0", `winner-${i}`)),
        );
        const winners = racers.flatMap((r, i) => r.succeeded ? [i] : []);
        assert.equal(winners.length, 1);
        const final = text(await client.get("n"));
        assert.equal(final, `winner-${winners[0]}`);
        for (const racer of racers.filter((r) => !r.succeeded)) {
          assert.ok(["0", final].includes(text(racer.previous)!));
        }

        // A counter incremented by 4 workers through CAS loops loses no increment.
        await client.put("counter", "0");
        const incrementsPerWorker = 15;
        await Promise.all(Array.from({ length: 4 }, async () => {
          for (let done = 0; done < incrementsPerWorker;) {
            const current = text(await client.get("counter"))!;
            const swapped = await client.compareAndSwap(
              "counter",
              current,
              String(Number(current) + 1),
            );
            if (swapped.succeeded) done++;
          }
        }));
        assert.equal(text(await client.get("counter")), String(4 * incrementsPerWorker));

        const deleted = await client.compareAndSwap("counter", "60", null);
        assert.equal(deleted.succeeded, true);
        assert.equal(await client.get("counter"), null);
        await client.compareAndSwap("ttl", null, "v", { ttlSeconds: 50 });
        const ttl = await client.getKeyTTL("ttl");
        assert.ok(ttl !== null && ttl > 48, `ttl ${ttl}`);
      } finally {
        client.close();
      }
    }),
});
