/**
 * `splitRegions` (tikvpb.Tikv/SplitRegion, kvproto's SplitRegionRequest) against the fake
 * cluster: keys grouped by region, one request per region to its leader, raw keys with
 * `is_raw_kv` and transactional user keys without it (the store encodes them), keys that
 * already start a region left out, and region errors met on the way retried.
 */
import assert from "node:assert/strict";
import { encodeKey } from "../codec/key.ts";
import { fromUtf8, toHex, utf8 } from "../util/bytes.ts";
import { SPLIT_REGION_MAX_KEYS } from "./constants.ts";
import { InvalidArgumentError } from "./errors.ts";
import { PdResolver } from "./pd_resolver.ts";
import { RawKV } from "./raw.ts";
import type { RegionInfo } from "./region.ts";
import { FakeCluster, FakeTso } from "./testing/fake_cluster.ts";
import { TxnKV } from "./txn/txn_kv.ts";

const TEST = { sanitizeOps: false, sanitizeResources: false };
const bounds = (regions: RegionInfo[]) =>
  regions.map((r) => [fromUtf8(r.startKey), fromUtf8(r.endKey)]);
const fakeBounds = (cluster: FakeCluster) =>
  [...cluster.regions.values()].map((r) => fromUtf8(r.startKey)).sort();

async function withRaw(
  body: (cluster: FakeCluster, client: RawKV) => Promise<void>,
): Promise<void> {
  const cluster = await FakeCluster.start({ stores: 2, splitKeys: ["g", "p"] });
  const client = new RawKV(await PdResolver.connect([cluster.pdAddress]), { timeoutMs: 5000 });
  try {
    await body(cluster, client);
  } finally {
    client.close();
    await cluster.stop();
  }
}

Deno.test({
  name: "splitRegions (raw): one SplitRegion per region with its keys; the new regions returned",
  ...TEST,
  fn: () =>
    withRaw(async (cluster, client) => {
      await client.batchPut(["a", "d", "h", "m", "q", "z"].map((key) => ({ key, value: key })));
      const made = await client.splitRegions(["x", "c", "k", "k"]);
      assert.deepEqual(bounds(made), [["", "c"], ["c", "g"], ["g", "k"], ["k", "p"], [
        "p",
        "x",
      ], ["x", ""]]);
      const requests = cluster.served.filter((r) => r.cmd === "SplitRegion");
      assert.equal(requests.length, 3, "one request per region");
      for (const request of requests) {
        assert.equal(request.request.isRawKv, true);
        assert.equal(request.via, "unary");
      }
      assert.deepEqual(
        requests.map((r) => r.keys.map(fromUtf8)).sort(),
        [["c"], ["k"], ["x"]],
      );
      assert.deepEqual(fakeBounds(cluster), ["", "c", "g", "k", "p", "x"]);
      // Every version moved: the client's next calls meet EpochNotMatch and follow it.
      const pairs = await client.scan("");
      assert.deepEqual(pairs.map((p) => fromUtf8(p.key)), ["a", "d", "h", "m", "q", "z"]);
      assert.equal(fromUtf8((await client.get("m"))!), "m");
    }),
});

Deno.test({
  name: "splitRegions: keys that already start a region are left out (nothing sent for them)",
  ...TEST,
  fn: () =>
    withRaw(async (cluster, client) => {
      assert.deepEqual(await client.splitRegions(["g", "p"]), []);
      assert.equal(cluster.served.filter((r) => r.cmd === "SplitRegion").length, 0);
      const made = await client.splitRegions(["g", "h"]);
      assert.deepEqual(bounds(made), [["g", "h"], ["h", "p"]]);
      await assert.rejects(client.splitRegions([""]), InvalidArgumentError);
    }),
});

Deno.test({
  name: "splitRegions: a stale cache (EpochNotMatch) and a moved leader (NotLeader) are retried",
  ...TEST,
  fn: () =>
    withRaw(async (cluster, client) => {
      await client.put("m", "1"); // caches [g, p)
      cluster.split("k"); // behind the client's back: [g, k) [k, p)
      cluster.transferLeader(cluster.regionOf(utf8("m")).id, 2n);
      const made = await client.splitRegions(["m"]);
      assert.deepEqual(bounds(made), [["k", "m"], ["m", "p"]]);
      const requests = cluster.served.filter((r) => r.cmd === "SplitRegion");
      assert.ok(requests.length >= 2, "the first attempt was refused");
      assert.equal(requests[requests.length - 1]!.storeId, 2n, "sent to the new leader");
      assert.equal(made[1]!.leader.storeId, 2n, "the new region's leader is the split one's");
      assert.equal(fromUtf8((await client.get("m"))!), "1");
    }),
});

Deno.test({
  name: "splitRegions (txn): user keys go without is_raw_kv; the region bound is their encoding",
  ...TEST,
  fn: async () => {
    const cluster = await FakeCluster.start({ stores: 1, splitKeys: [] });
    const resolver = await PdResolver.connect([cluster.pdAddress]);
    const client = new TxnKV(resolver, new FakeTso(), { timeoutMs: 5000 });
    try {
      const made = await client.splitRegions(["m", "d"]);
      assert.deepEqual(made.map((r) => toHex(r.startKey)), [
        "",
        toHex(encodeKey(utf8("d"))),
        toHex(encodeKey(utf8("m"))),
      ]);
      const request = cluster.served.find((r) => r.cmd === "SplitRegion")!;
      assert.equal(request.request.isRawKv, false);
      assert.deepEqual(request.keys.map(fromUtf8), ["d", "m"], "user keys, sorted by encoding");
      // A transaction over the new regions, and the encoded bound is a region start now.
      const txn = await client.begin({ awaitSecondaries: true });
      for (const key of ["a", "l", "m", "z"]) txn.set(key, key);
      await txn.commit();
      const prewrites = cluster.served.filter((r) => r.cmd === "Prewrite");
      assert.equal(new Set(prewrites.map((r) => r.regionId)).size, 3);
      assert.deepEqual(await client.splitRegions(["m"]), [], "m already starts a region");
      const reader = await client.begin();
      const all = await reader.scan("", null);
      assert.deepEqual(all.map((pair) => fromUtf8(pair.key)), ["a", "l", "m", "z"]);
    } finally {
      await client.close();
      await cluster.stop();
    }
  },
});

Deno.test({
  name: "splitRegions: at most SPLIT_REGION_MAX_KEYS keys per request; a region's rest follows",
  ...TEST,
  fn: () =>
    withRaw(async (cluster, client) => {
      const count = SPLIT_REGION_MAX_KEYS + 76;
      const keys = Array.from({ length: count }, (_, i) => `a${String(i).padStart(5, "0")}`);
      const made = await client.splitRegions(keys);
      const requests = cluster.served.filter((r) => r.cmd === "SplitRegion");
      assert.ok(requests.every((r) => r.keys.length <= SPLIT_REGION_MAX_KEYS));
      assert.equal(requests[0]!.keys.length, SPLIT_REGION_MAX_KEYS);
      assert.equal(cluster.regions.size, 3 + count, "every key became a region start");
      for (const key of keys) assert.equal(fromUtf8(cluster.regionOf(utf8(key)).startKey), key);
      assert.ok(made.length >= count);
    }),
});
