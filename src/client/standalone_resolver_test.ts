/**
 * StandaloneResolver: a standalone store's regions come from the PD it embeds (so a client
 * finds the regions a split made without a round of EpochNotMatch, and a key the store's
 * EpochNotMatch did not mention is still found); a store serving no PD is taken to hold its
 * bootstrapped region, and region errors correct that.
 */
import assert from "node:assert/strict";
import { fromUtf8, utf8 } from "../util/bytes.ts";
import { RawKV } from "./raw.ts";
import { StandaloneResolver } from "./standalone_resolver.ts";
import { FakeCluster } from "./testing/fake_cluster.ts";

const TEST = { sanitizeOps: false, sanitizeResources: false };

/**
 * One fake store whose region 1 was split at g (so region 1 is [, g) at version 2, as a split
 * leaves it), with or without a PD service.
 */
async function withStore(
  pd: boolean,
  body: (cluster: FakeCluster, client: RawKV, resolver: StandaloneResolver) => Promise<void>,
): Promise<void> {
  const cluster = await FakeCluster.start({ stores: 1, splitKeys: [], pd });
  cluster.split("g");
  const resolver = new StandaloneResolver(cluster.addresses.get(1n)!, { timeoutMs: 2000 });
  const client = new RawKV(resolver, { timeoutMs: 5000 });
  try {
    await body(cluster, client, resolver);
  } finally {
    client.close();
    await cluster.stop();
  }
}

Deno.test({
  name: "standalone resolver: regions from the store's embedded PD, no stale first attempt",
  ...TEST,
  fn: () =>
    withStore(true, async (cluster, client, resolver) => {
      await client.batchPut([{ key: "a", value: "1" }, { key: "z", value: "2" }]);
      assert.equal(cluster.served.filter((r) => r.refusedWith !== null).length, 0);
      assert.deepEqual(resolver.cache.regions().map((r) => fromUtf8(r.startKey)), ["", "g"]);
      assert.ok(cluster.pdServed.includes("GetRegion"));
      assert.deepEqual((await client.reverseScan("")).map((p) => fromUtf8(p.key)), ["z", "a"]);
    }),
});

Deno.test({
  name: "standalone resolver: a store without PD is taken as its bootstrapped region, then fixed",
  ...TEST,
  fn: () =>
    withStore(false, async (cluster, client, resolver) => {
      await client.put("z", "2");
      const refused = cluster.served.filter((r) => r.refusedWith === "epochNotMatch");
      assert.equal(refused.length, 1, "region 1 at version 1 met the split once");
      assert.equal(fromUtf8(resolver.cache.locate(utf8("z"))!.startKey), "g", "then the current");
      assert.equal(fromUtf8((await client.get("z"))!), "2");
      assert.equal(cluster.pdServed.length, 0);
    }),
});
