/**
 * The transactional client's region batching (`TxnRpc.forEachRegionBatch`) over the fake
 * multi-region cluster: each request carries only keys of one region, a split between grouping
 * and sending is regrouped, and context extras reach the store. (The fake answers raw
 * commands, which exercise the same grouping the transactional commands use.)
 */
import assert from "node:assert/strict";
import { fromUtf8, utf8 } from "../../util/bytes.ts";
import { PdResolver } from "../pd_resolver.ts";
import { FakeCluster } from "../testing/fake_cluster.ts";
import { chunkBySize, RETRY, TxnConnectionPool, TxnRpc, withContextExtras } from "./rpc.ts";

const TEST = { sanitizeOps: false, sanitizeResources: false };
const letters = "abcdefghijklmnopqrstuvwxyz".split("");

async function withRpc(body: (cluster: FakeCluster, rpc: TxnRpc) => Promise<void>) {
  const cluster = await FakeCluster.start({ stores: 2, splitKeys: ["g", "p"] });
  const resolver = await PdResolver.connect([cluster.pdAddress]);
  const pool = new TxnConnectionPool();
  try {
    await body(cluster, new TxnRpc(resolver, pool));
  } finally {
    pool.close();
    resolver.close();
    await cluster.stop();
  }
}

Deno.test({
  name: "TxnRpc: batches per region and chunk; a split after grouping is regrouped",
  ...TEST,
  fn: () =>
    withRpc(async (cluster, rpc) => {
      const backoffer = rpc.backoffer(5_000);
      const sent: string[][] = [];
      let splitDone = false;
      await rpc.forEachRegionBatch(letters.map(utf8), {
        keyOf: (key) => key,
        chunk: (keys) => chunkBySize(keys, { maxItems: 5, maxBytes: Infinity, sizeOf: () => 0 }),
        backoffer,
        concurrency: 4,
        send: async (region, keys) => {
          if (!splitDone) {
            // The cache still has the old regions; the store now has [p, t) and [t, ).
            cluster.split("t");
            splitDone = true;
          }
          const response = await rpc.sendToRegion("RawBatchPut", region, {
            pairs: keys.map((key) => ({ key, value: key })),
          }, { backoffer, idempotent: true });
          if (response === RETRY) return RETRY;
          sent.push(keys.map(fromUtf8));
        },
      });
      assert.deepEqual(cluster.keys(), letters, "every key written once the retries settle");
      assert.deepEqual(sent.flat().sort(), letters, "each key in exactly one successful batch");
      for (const batch of sent) {
        assert.ok(batch.length <= 5, `chunk of ${batch.length}`);
        const regions = new Set(batch.map((key) => cluster.regionOf(utf8(key)).id));
        assert.equal(regions.size, 1, `batch ${batch} spans regions`);
      }
      assert.ok(
        cluster.served.some((r) => r.cmd === "RawBatchPut" && fromUtf8(r.keys[0]!) >= "t"),
        "the new region [t, ) was written after the split",
      );
    }),
});

Deno.test({
  name:
    "TxnRpc: sendToKey follows a leader move; a request carrying context extras is sent as usual",
  ...TEST,
  fn: () =>
    withRpc(async (cluster, rpc) => {
      const backoffer = rpc.backoffer(5_000);
      await rpc.sendToKey("RawPut", utf8("m"), () => ({ key: utf8("m"), value: utf8("1") }), {
        backoffer,
        idempotent: true,
      });
      cluster.transferLeader(cluster.regionOf(utf8("m")).id, 2n);
      const response = await rpc.sendToKey(
        "RawGet",
        utf8("m"),
        () => withContextExtras({ key: utf8("m") }, { resolvedLocks: [5n] }),
        { backoffer, idempotent: true },
      );
      assert.equal(fromUtf8(response.value), "1");
      const last = cluster.served[cluster.served.length - 1]!;
      assert.equal(last.storeId, 2n, "answered by the new leader");
    }),
});
