/**
 * Region merge end to end (issue #12 item 2): a 3-store cluster whose PD merges small adjacent
 * regions (`split-merge-interval` short). Split by hand into three regions, PD merges them back
 * into one through PrepareMerge → CommitMerge on the stores, while a client keeps writing: no
 * write fails, every key reads back, and the merged region takes new writes.
 */
import assert from "node:assert/strict";
import { fromUtf8, utf8 } from "../../src/util/bytes.ts";
import { waitFor } from "./cluster.ts";
import {
  E2E,
  REPLICATION_THREE_VOTERS_TIMEOUT_MS,
  startWriters,
  withReplicatedCluster,
} from "./replication_lib.ts";

const MERGE_TIMEOUT_MS = 60_000;
const text = (bytes: Uint8Array) => fromUtf8(bytes);

Deno.test({
  name:
    "cluster merge: PD merges three small regions back into one under live writes; no write fails and every key reads back",
  ...E2E,
  fn: () =>
    withReplicatedCluster({
      pdConfig: '[schedule]\nsplit-merge-interval = "3s"\n',
    }, async ({ pd, client }) => {
      const keys = Array.from({ length: 30 }, (_, i) => `k${String(i).padStart(2, "0")}`);
      for (const key of keys) await client.put(key, `v-${key}`);
      const made = await client.splitRegions([utf8("k10"), utf8("k20")]);
      assert.ok(made.length >= 2, `split made ${made.length} regions`);
      const empty = new Uint8Array(0);
      const count = async () =>
        (await pd.scanRegions({ startKey: empty, endKey: empty, limit: 100 })).length;
      await waitFor("PD to know the three regions", async () =>
        await count() === 3, REPLICATION_THREE_VOTERS_TIMEOUT_MS);
      const writers = startWriters(client, { prefix: "live-", count: 2 });
      try {
        await waitFor("PD to merge the regions back into one", async () =>
          await count() === 1, MERGE_TIMEOUT_MS);
      } finally {
        await writers.stop();
      }
      assert.equal(writers.failures(), 0, `a write failed: ${writers.lastError()}`);
      const [only] = await pd.scanRegions({ startKey: empty, endKey: empty, limit: 100 });
      assert.equal(only!.region.startKey?.length ?? 0, 0);
      assert.equal(only!.region.endKey?.length ?? 0, 0);
      const pairs = await client.scan("k", "l", { limit: 1000 });
      assert.deepEqual(
        pairs.map((p) =>
          text(p.key)
        ),
        keys,
      );
      const live = new Set(
        (await client.scan("live-", "live.", { limit: 100_000 })).map((p) =>
          text(p.key)
        ),
      );
      const missing = writers.acknowledged.filter((key) =>
        !live.has(key)
      );
      assert.deepEqual(missing.slice(0, 5), [], `${missing.length} acknowledged keys missing`);
      await client.put("k15", "after-merge");
      assert.equal(text((await client.get("k15"))!), "after-merge");
    }),
});
