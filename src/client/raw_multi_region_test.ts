/**
 * RawKV over several regions and stores (the in-process fake cluster, routed through its PD):
 * batch calls grouped by region, scans and range calls walking regions, and the region-error
 * recoveries TiKV's clients make — a split (EpochNotMatch), a leader move (NotLeader), a busy
 * store (ServerIsBusy) — plus the rule that compare-and-swap is never repeated after an
 * outcome it cannot know.
 */
import assert from "node:assert/strict";
import { fromUtf8, utf8 } from "../util/bytes.ts";
import { RegionError, UnavailableError } from "./errors.ts";
import { PdResolver } from "./pd_resolver.ts";
import { RawKV } from "./raw.ts";
import { FakeCluster, fakePairChecksum } from "./testing/fake_cluster.ts";

const TEST = { sanitizeOps: false, sanitizeResources: false };
const text = (bytes: Uint8Array | null) => bytes === null ? null : fromUtf8(bytes);
const keysOf = (pairs: { key: Uint8Array }[]) => pairs.map((pair) => fromUtf8(pair.key));

/** A cluster with regions [, g) [g, p) [p, ) on `stores` stores, and a client through its PD. */
async function withCluster(
  options: { stores: number; scanPageSize?: number },
  body: (cluster: FakeCluster, client: RawKV, resolver: PdResolver) => Promise<void>,
): Promise<void> {
  const cluster = await FakeCluster.start({ stores: options.stores, splitKeys: ["g", "p"] });
  const resolver = await PdResolver.connect([cluster.pdAddress]);
  const client = new RawKV(resolver, { timeoutMs: 5000, scanPageSize: options.scanPageSize });
  try {
    await body(cluster, client, resolver);
  } finally {
    client.close();
    await cluster.stop();
  }
}

const letters = "abcdefghijklmnopqrstuvwxyz".split("");

Deno.test({
  name: "multi-region: batch calls send one request per region, each with only its keys",
  ...TEST,
  fn: () =>
    withCluster({ stores: 1 }, async (cluster, client) => {
      await client.batchPut(letters.map((k) => ({ key: k, value: `v${k}` })));
      const puts = cluster.served.filter((r) => r.cmd === "RawBatchPut");
      assert.equal(puts.length, 3);
      for (const put of puts) {
        const region = cluster.regions.get(put.regionId)!;
        for (const key of put.keys) assert.equal(cluster.regionOf(key).id, region.id);
      }
      assert.deepEqual(cluster.keys(), letters);
      const got = await client.batchGet(["z", "a", "m", "nope"]);
      assert.deepEqual(keysOf(got), ["z", "a", "m"]);
      assert.equal(cluster.served.filter((r) => r.cmd === "RawBatchGet").length, 3);
      await client.batchDelete(["a", "h", "q"]);
      assert.equal(cluster.served.filter((r) => r.cmd === "RawBatchDelete").length, 3);
      assert.equal(cluster.keys().length, 23);
    }),
});

Deno.test({
  name: "multi-region: scans, reverse scans, delete range and checksum walk the regions in order",
  ...TEST,
  fn: () =>
    withCluster({ stores: 1, scanPageSize: 4 }, async (cluster, client) => {
      await client.batchPut(letters.map((k) => ({ key: k, value: `v${k}` })));
      assert.deepEqual(keysOf(await client.scan("")), letters);
      assert.deepEqual(keysOf(await client.scan("e", "r")), letters.slice(4, 17));
      assert.deepEqual(keysOf(await client.scan("e", null, { limit: 5 })), [
        "e",
        "f",
        "g",
        "h",
        "i",
      ]);
      assert.deepEqual(keysOf(await client.reverseScan("")), [...letters].reverse());
      assert.deepEqual(keysOf(await client.reverseScan("e", "r")), letters.slice(4, 17).reverse());
      assert.deepEqual(keysOf(await client.reverseScan("", "q", { limit: 3 })), ["p", "o", "n"]);
      assert.deepEqual(keysOf(await client.reverseScan("", "g")), ["f", "e", "d", "c", "b", "a"]);

      const sum = await client.checksum("c", "t");
      const expected = letters.slice(2, 19).reduce(
        (x, k) => x ^ fakePairChecksum(utf8(k), utf8(`v${k}`)),
        0n,
      );
      assert.deepEqual(sum, { checksum: expected, totalKvs: 17n, totalBytes: 51n });
      assert.equal(cluster.served.filter((r) => r.cmd === "RawChecksum").length, 3);

      await client.deleteRange("e", "r");
      assert.deepEqual(cluster.keys(), [
        "a",
        "b",
        "c",
        "d",
        "r",
        "s",
        "t",
        "u",
        "v",
        "w",
        "x",
        "y",
        "z",
      ]);
      await client.deleteRange("b", "");
      assert.deepEqual(cluster.keys(), ["a"]);
    }),
});

Deno.test({
  name:
    "multi-region: after a split, EpochNotMatch's current regions reroute single and batch calls",
  ...TEST,
  fn: () =>
    withCluster({ stores: 1 }, async (cluster, client, resolver) => {
      await client.batchPut(letters.map((k) => ({ key: k, value: `v${k}` })));
      const right = cluster.split("k"); // [g, p) becomes [g, k) and [k, p)
      const before = cluster.served.length;
      assert.equal(text(await client.get("m")), "vm");
      const attempts = cluster.served.slice(before);
      assert.deepEqual(
        attempts.map((r) => r.regionId),
        [2n, right.id],
        "stale region, then the new one",
      );
      assert.equal(resolver.cache.locate(utf8("m"))?.id, right.id);

      cluster.split("t");
      await client.batchPut([{ key: "h", value: "1" }, { key: "l", value: "2" }, {
        key: "u",
        value: "3",
      }]);
      assert.deepEqual(keysOf(await client.batchGet(["h", "l", "u"])), ["h", "l", "u"]);
      assert.equal(text(await client.get("u")), "3");
      assert.deepEqual(keysOf(await client.scan("")), letters);
    }),
});

Deno.test({
  name: "multi-region: NotLeader naming the new leader sends the retry to that store",
  ...TEST,
  fn: () =>
    withCluster({ stores: 2 }, async (cluster, client, resolver) => {
      await client.put("m", "1");
      cluster.transferLeader(2n, 2n);
      const before = cluster.served.length;
      assert.equal(text(await client.get("m")), "1");
      assert.deepEqual(cluster.served.slice(before).map((r) => r.storeId), [1n, 2n]);
      assert.equal(resolver.cache.locate(utf8("m"))?.leader.storeId, 2n);
      // Later calls go straight to store 2.
      const next = cluster.served.length;
      await client.put("n", "2");
      assert.deepEqual(cluster.served.slice(next).map((r) => r.storeId), [2n]);
    }),
});

Deno.test({
  name: "multi-region: ServerIsBusy backs off for the store's hint, then succeeds",
  ...TEST,
  fn: () =>
    withCluster({ stores: 1 }, async (cluster, client) => {
      cluster.faults.push({
        cmd: "RawPut",
        times: 2,
        regionError: { message: "busy", serverIsBusy: { reason: "test", backoffMs: 100n } },
      });
      const startMs = Date.now();
      await client.put("k", "v");
      assert.ok(Date.now() - startMs >= 100, "slept at least half of two hinted back-offs");
      assert.equal(cluster.served.filter((r) => r.cmd === "RawPut").length, 3);
      assert.equal(text(await client.get("k")), "v");
    }),
});

Deno.test({
  name: "multi-region: an untyped region error is surfaced at once, not retried",
  ...TEST,
  fn: () =>
    withCluster({ stores: 1 }, async (cluster, client) => {
      cluster.faults.push({ cmd: "RawGet", times: 5, regionError: { message: "not supported" } });
      await assert.rejects(client.get("k"), (error) => {
        assert.ok(error instanceof RegionError, String(error));
        assert.match(error.message, /not supported/);
        return true;
      });
      assert.equal(cluster.served.filter((r) => r.cmd === "RawGet").length, 1);
    }),
});

Deno.test({
  name:
    "multi-region: a broken call is retried for put, but compare-and-swap reports it undetermined",
  ...TEST,
  fn: () =>
    withCluster({ stores: 1 }, async (cluster, client) => {
      // RawCompareAndSwap and RawGetKeyTTL are unary; a mid-call UNAVAILABLE may follow a write.
      cluster.faults.push({ cmd: "RawGetKeyTTL", times: 1, grpcStatus: 14 });
      await client.put("k", "v", { ttlSeconds: 30 });
      assert.equal(await client.getKeyTTL("k"), 30);
      cluster.faults.push({ cmd: "RawCompareAndSwap", times: 1, grpcStatus: 14 });
      await assert.rejects(client.compareAndSwap("k", "v", "w"), (error) => {
        assert.ok(error instanceof UnavailableError, String(error));
        assert.equal(error.sent, true);
        return true;
      });
      assert.equal(text(await client.get("k")), "v", "the fake failed before applying it");
      const swapped = await client.compareAndSwap("k", "v", "w");
      assert.equal(swapped.succeeded, true);
    }),
});

Deno.test({
  name: "PD resolver: regions by key, by end key (+inf via ScanRegions), by id; store addresses",
  ...TEST,
  fn: () =>
    withCluster({ stores: 2 }, async (cluster, _client, resolver) => {
      const deadline = { deadlineMs: Date.now() + 5000 };
      assert.equal((await resolver.locateKey(utf8("h"), deadline)).id, 2n);
      assert.equal((await resolver.locateEndKey(utf8(""), deadline)).id, 3n);
      resolver.cache.clear();
      assert.equal((await resolver.locateEndKey(utf8("g"), deadline)).id, 1n, "keys below g");
      assert.equal((await resolver.locateEndKey(utf8("h"), deadline)).id, 2n);
      assert.equal((await resolver.regionById(3n, deadline))?.startKey.length, 1);
      assert.equal(await resolver.regionById(99n, deadline), null);
      assert.equal(await resolver.storeAddress(2n, deadline), cluster.addresses.get(2n));
      await assert.rejects(resolver.storeAddress(9n, deadline), /PD error UNKNOWN: no store/);
      assert.equal(resolver.pd.clusterId, 4242n);
    }),
});
