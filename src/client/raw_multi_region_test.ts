/**
 * RawKV over several regions and stores (the in-process fake cluster, routed through its PD):
 * batch calls grouped by region, scans and range calls walking regions, and the region-error
 * recoveries TiKV's clients make — a split (EpochNotMatch), a leader move (NotLeader), a busy
 * store (ServerIsBusy) — plus the rule that compare-and-swap is never repeated after an
 * outcome it cannot know.
 */
import assert from "node:assert/strict";
import { fromUtf8, utf8 } from "../util/bytes.ts";
import { MAX_ATTEMPTS_PER_REQUEST } from "./constants.ts";
import { RegionError, UnavailableError } from "./errors.ts";
import { PdClient } from "./pd_client.ts";
import { PdResolver } from "./pd_resolver.ts";
import { RawKV } from "./raw.ts";
import { RegionCache } from "./region_cache.ts";
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

Deno.test({
  name: "multi-region: RegionNotFound drops the region and reloads it from PD, then succeeds",
  ...TEST,
  fn: () =>
    withCluster({ stores: 1 }, async (cluster, client) => {
      await client.put("m", "1");
      cluster.faults.push({
        cmd: "RawGet",
        times: 1,
        regionError: { message: "region not found", regionNotFound: { regionId: 2n } },
      });
      const pdBefore = cluster.pdServed.filter((name) => name === "GetRegion").length;
      assert.equal(text(await client.get("m")), "1");
      assert.equal(cluster.served.filter((r) => r.cmd === "RawGet").length, 2);
      const pdAfter = cluster.pdServed.filter((name) => name === "GetRegion").length;
      assert.equal(pdAfter, pdBefore + 1, "the region was asked of PD again");
    }),
});

Deno.test({
  name: "multi-region: StoreNotMatch reloads the store's address and the region from PD",
  ...TEST,
  fn: () =>
    withCluster({ stores: 1 }, async (cluster, client) => {
      await client.put("m", "1");
      cluster.faults.push({
        cmd: "RawGet",
        times: 1,
        regionError: {
          message: "store not match",
          storeNotMatch: { requestStoreId: 1n, actualStoreId: 7n },
        },
      });
      const count = (name: string) => cluster.pdServed.filter((n) => n === name).length;
      const before = { region: count("GetRegion"), store: count("GetStore") };
      assert.equal(text(await client.get("m")), "1");
      assert.equal(count("GetRegion"), before.region + 1);
      assert.equal(count("GetStore"), before.store + 1);
    }),
});

Deno.test({
  name:
    "multi-region: EpochNotMatch from a store behind the client is not adopted; PD is asked again",
  ...TEST,
  fn: () =>
    withCluster({ stores: 1 }, async (cluster, client, resolver) => {
      cluster.split("k"); // region 2 is [g, k) at version 2
      await client.put("h", "1");
      const cached = resolver.cache.locate(utf8("h"))!;
      assert.equal(cached.epoch.version, 2n);
      // A store that has not applied the split yet reports region 2 as it was (version 1).
      const old = { ...cluster.regionProto(cluster.regions.get(2n)!) };
      old.regionEpoch = { confVer: 1n, version: 1n };
      old.endKey = utf8("p");
      cluster.faults.push({
        cmd: "RawGet",
        times: 1,
        regionError: { message: "epoch not match", epochNotMatch: { currentRegions: [old] } },
      });
      const before = cluster.served.length;
      const pdBefore = cluster.pdServed.filter((name) => name === "GetRegion").length;
      assert.equal(text(await client.get("h")), "1");
      assert.equal(cluster.pdServed.filter((name) => name === "GetRegion").length, pdBefore + 1);
      const versions = cluster.served.slice(before).map((r) =>
        r.request.context.regionEpoch.version
      );
      assert.deepEqual(versions, [2n, 2n], "the retry went with the newer epoch, not the store's");
      assert.equal(resolver.cache.locate(utf8("h"))?.epoch.version, 2n, "not replaced by older");
      assert.equal(fromUtf8(resolver.cache.locate(utf8("h"))!.endKey), "k");
    }),
});

Deno.test({
  name: "multi-region: requests to several regions of one store share BatchCommands messages",
  ...TEST,
  fn: () =>
    withCluster({ stores: 1 }, async (cluster, client) => {
      await client.batchPut(letters.map((k) => ({ key: k, value: k })));
      const stats = client.connections.get(cluster.addresses.get(1n)!).stats();
      const before = { ...stats };
      const values = await Promise.all(letters.map((k) => client.get(k)));
      assert.deepEqual(values.map(text), letters);
      const after = client.connections.get(cluster.addresses.get(1n)!).stats();
      const requests = after.batchedRequestsSent - before.batchedRequestsSent;
      const messages = after.messagesSent - before.messagesSent;
      assert.equal(requests, letters.length, "every get rode a stream");
      assert.ok(messages < requests, `${requests} gets of 3 regions in ${messages} messages`);
      const regions = new Set(
        cluster.served.filter((r) => r.cmd === "RawGet").map((r) => r.regionId),
      );
      assert.equal(regions.size, 3);
    }),
});

Deno.test({
  name: "multi-region: each region request has its own attempt budget (more regions than attempts)",
  ...TEST,
  fn: async () => {
    // 2 × MAX_ATTEMPTS_PER_REQUEST regions, each of whose leaders moves: a call over all of
    // them meets one NotLeader per region, more than one request's budget, and succeeds.
    const count = 2 * MAX_ATTEMPTS_PER_REQUEST;
    const keys = Array.from({ length: count }, (_, i) => `k${String(i).padStart(4, "0")}`);
    const cluster = await FakeCluster.start({ stores: 2, splitKeys: keys });
    const client = new RawKV(await PdResolver.connect([cluster.pdAddress]), { timeoutMs: 10_000 });
    const moveEveryLeader = () => {
      for (const region of cluster.regions.values()) {
        cluster.transferLeader(region.id, region.leaderStoreId === 1n ? 2n : 1n);
      }
    };
    try {
      await client.batchPut(keys.map((key) => ({ key, value: key })));
      moveEveryLeader();
      assert.equal((await client.scan("k", "l", { limit: 10_000 })).length, count);
      moveEveryLeader();
      assert.equal((await client.batchGet(keys)).length, count);
      moveEveryLeader();
      assert.equal((await client.reverseScan("k", "l", { limit: 10_000 })).length, count);
      moveEveryLeader();
      assert.equal((await client.checksum("k", "l")).totalKvs, BigInt(count));
      const notLeader = cluster.served.filter((r) => r.refusedWith === "notLeader").length;
      assert.ok(notLeader >= 4 * count, `${notLeader} NotLeader answers`);
    } finally {
      client.close();
      await cluster.stop();
    }
  },
});

Deno.test({
  name: "multi-region: a cached region unused for the cache's TTL is loaded from PD again",
  ...TEST,
  fn: async () => {
    const cluster = await FakeCluster.start({ stores: 1, splitKeys: ["g", "p"] });
    let nowMs = 0;
    const cache = new RegionCache({ ttl: { ttlMs: 1_000, nowMs: () => nowMs } });
    const resolver = new PdResolver(await PdClient.connect([cluster.pdAddress]), { cache });
    const client = new RawKV(resolver, { timeoutMs: 5000 });
    const regionLookups = () => cluster.pdServed.filter((name) => name === "GetRegion").length;
    try {
      await client.put("m", "1");
      assert.equal(regionLookups(), 1);
      nowMs += 1_000;
      assert.equal(text(await client.get("m")), "1");
      assert.equal(regionLookups(), 1, "within the TTL: from the cache (and the TTL restarts)");
      nowMs += 1_001;
      assert.equal(text(await client.get("m")), "1");
      assert.equal(regionLookups(), 2, "past the TTL: asked of PD again");
    } finally {
      client.close();
      await cluster.stop();
    }
  },
});
