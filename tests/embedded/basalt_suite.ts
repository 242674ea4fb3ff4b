/**
 * The key-value API's behaviour as cases over an open `Basalt`: run in-process
 * (`basalt_test.ts`, `Basalt.open`) and against a 3-store cluster (`basalt_cluster_test.ts`,
 * `Basalt.connect`). Each case uses keys of its own prefix.
 */
import assert from "node:assert/strict";
import { Basalt, BasaltError } from "../../mod.ts";

const text = (bytes: Uint8Array | null) => bytes === null ? null : new TextDecoder().decode(bytes);

/** One case. */
export interface BasaltCase {
  name: string;
  run(db: Basalt): Promise<void>;
}

export const BASALT_CASES: BasaltCase[] = [
  {
    name: "put, get and delete; an absent key reads null",
    async run(db) {
      await db.put("crud:a", "1");
      assert.equal(text(await db.get("crud:a")), "1");
      await db.put("crud:a", new Uint8Array([0, 255]));
      assert.deepEqual(await db.get("crud:a"), new Uint8Array([0, 255]));
      await db.delete("crud:a");
      assert.equal(await db.get("crud:a"), null);
      await db.delete("crud:never"); // absent: nothing to do, no error
    },
  },
  {
    name: "put with ttlSeconds: readable with its expiry, absent once it passed",
    async run(db) {
      const before = Date.now();
      await db.put("ttl:a", "x", { ttlSeconds: 1 });
      const entry = await db.getEntry("ttl:a");
      assert.ok(entry !== null && entry.expireAtMs >= before + 1000);
      await new Promise((resolve) => setTimeout(resolve, 1_300));
      assert.equal(await db.get("ttl:a"), null);
      assert.deepEqual((await db.scan({ prefix: "ttl:" })).entries, []);
    },
  },
  {
    name: "scan pages forward and in reverse with cursors",
    async run(db) {
      const keys = Array.from({ length: 9 }, (_, i) => `scan:${i}`);
      await db.transaction((txn) => {
        for (const key of keys) txn.put(key, key);
      });
      const walk = async (reverse: boolean) => {
        const seen: string[] = [];
        let page = await db.scan({ prefix: "scan:", limit: 4, reverse });
        for (let pages = 0;; pages++) {
          assert.ok(pages < 10, "paging ends");
          seen.push(...page.entries.map((entry) => text(entry.key)!));
          if (page.cursor === null) return seen;
          page = await db.scan({ prefix: "scan:", limit: 4, reverse, cursor: page.cursor });
        }
      };
      assert.deepEqual(await walk(false), keys);
      assert.deepEqual(await walk(true), [...keys].reverse());
      const bounded = await db.scan({ start: "scan:3", end: "scan:6" });
      assert.deepEqual(bounded.entries.map((entry) => text(entry.key)), [
        "scan:3",
        "scan:4",
        "scan:5",
      ]);
    },
  },
  {
    name: "transaction: all or nothing; an exception rolls it back and is rethrown as it is",
    async run(db) {
      await db.transaction(async (txn) => {
        txn.put("atomic:a", "1");
        txn.put("atomic:b", "2");
        assert.equal(text(await txn.get("atomic:a")), "1", "own writes are visible");
        assert.equal((await txn.scan({ prefix: "atomic:" })).entries.length, 2);
      });
      class Oops extends Error {}
      await assert.rejects(
        db.transaction(async (txn) => {
          txn.put("atomic:a", "changed");
          await Promise.resolve();
          throw new Oops("no");
        }),
        Oops,
      );
      assert.equal(text(await db.get("atomic:a")), "1");
    },
  },
  {
    name: "transaction retries on conflict: concurrent increments all count",
    async run(db) {
      await db.put("counter:n", "0");
      const increments = 6;
      let runs = 0;
      await Promise.all(Array.from({ length: increments }, () =>
        db.transaction(async (txn) => {
          runs++;
          const n = Number(text(await txn.get("counter:n")));
          await new Promise((resolve) => setTimeout(resolve, 20));
          txn.put("counter:n", String(n + 1));
        }, { attempts: 20 })));
      assert.equal(text(await db.get("counter:n")), String(increments));
      assert.ok(runs > increments, `conflicts were retried (${runs} runs)`);
    },
  },
  {
    name: "typed errors: empty key, key and value over their limits, bad TTL and limit",
    async run(db) {
      const code = async (promise: Promise<unknown>, expected: string) => {
        await assert.rejects(promise, (error: unknown) => {
          assert.ok(error instanceof BasaltError, String(error));
          assert.equal(error.code, expected);
          return true;
        });
      };
      await code(db.put("", "v"), "InvalidArgument");
      await code(db.put("k".repeat(4 * 1024 + 1), "v"), "KeyTooLarge");
      await code(db.put("limits:v", new Uint8Array(4 * 1024 * 1024 + 1)), "ValueTooLarge");
      await code(db.put("limits:t", "v", { ttlSeconds: 1.5 }), "InvalidArgument");
      await code(db.scan({ limit: 1001 }), "InvalidArgument");
      await db.put("k".repeat(4 * 1024), "at the key limit");
      await db.delete("k".repeat(4 * 1024));
    },
  },
];
