/**
 * Replicated regions with real processes: 1 PD + 3 stores on loopback (`cluster.ts`), every
 * store-to-store link through a proxy the test can cut.
 *
 * - PD's replica checker brings the first region from one replica to three (add learner →
 *   promote), each step a ChangePeer through the region's log.
 * - Under a write load, kill -9 of the leader's store loses no acknowledged write, and writes
 *   succeed again within a few seconds (a new leader among the two left).
 * - The killed store restarted rejoins the region.
 * - Stores added after the data was written get it by SST snapshot.
 */
import assert from "node:assert/strict";
import { PdClient } from "../../src/client/pd_client.ts";
import { PdResolver } from "../../src/client/pd_resolver.ts";
import { RawKV } from "../../src/client/raw.ts";
import { fromUtf8 } from "../../src/util/bytes.ts";
import { startCluster, waitFor } from "./cluster.ts";
import {
  E2E,
  indexOf,
  regionView,
  REPLICATION_FAILOVER_MS,
  withReplicatedCluster,
} from "./replication_lib.ts";

/** How long writes may fail after the leader's store is killed. */
const FAILOVER_MS = REPLICATION_FAILOVER_MS;

Deno.test({
  name:
    "replication: three voters; kill -9 of the leader's store under writes loses no acknowledged write, and writes resume",
  ...E2E,
  fn: () =>
    withReplicatedCluster({}, async ({ cluster, pd, client }) => {
      const acknowledged: string[] = [];
      let running = true;
      let failures = 0;
      let lastError = "";
      const writer = async (id: number) => {
        for (let i = 0; running && i < 100_000; i++) {
          const key = `w${id}-${i}`;
          try {
            await client.put(key, key);
            acknowledged.push(key);
          } catch (error) {
            failures++;
            lastError = (error as Error).message;
          }
        }
      };
      const writers = [0, 1, 2, 3].map(writer);
      await waitFor("writes before the kill", () => acknowledged.length >= 200, 15_000);
      const { leaderStore } = await regionView(pd);
      const victim = indexOf(cluster, leaderStore);
      await cluster.kill(victim);
      const killedAt = Date.now();
      const before = acknowledged.length;
      await waitFor(
        `writes to resume after killing store ${leaderStore} (${failures} failed, last: ${lastError})`,
        () => acknowledged.length >= before + 100,
        FAILOVER_MS,
      );
      const resumedMs = Date.now() - killedAt;
      running = false;
      await Promise.all(writers);
      // Every acknowledged write reads back from the new leader.
      const missing: string[] = [];
      for (const key of acknowledged) {
        const value = await client.get(key);
        if (value === null || fromUtf8(value) !== key) missing.push(key);
      }
      console.log(
        `replication: ${acknowledged.length} acknowledged writes checked after killing the ` +
          `leader's store; writes resumed ${resumedMs} ms after the kill`,
      );
      assert.deepEqual(missing.slice(0, 5), [], `${missing.length} acknowledged writes lost`);
      // The killed store comes back and catches up: once it leads again, it serves them all.
      await cluster.restart(victim);
      await waitFor("the restarted store to rejoin region 1", async () => {
        return (await regionView(pd)).voters.includes(leaderStore);
      });
    }),
});

Deno.test({
  name:
    "replication: stores added to a region that holds data get it by SST snapshot, and serve it alone once the first store is gone",
  ...E2E,
  fn: async () => {
    const cluster = await startCluster({ stores: 1 });
    let pd: PdClient | null = null;
    let client: RawKV | null = null;
    let failed = true;
    try {
      pd = await PdClient.connect([cluster.pdAddr]);
      const resolver = await PdResolver.connect([cluster.pdAddr]);
      client = new RawKV(resolver);
      // Written while the region has one replica: the new ones can only get it by snapshot.
      const keys = Array.from({ length: 2000 }, (_, i) => `s${String(i).padStart(5, "0")}`);
      for (let i = 0; i < keys.length; i += 100) {
        await client.batchPut(keys.slice(i, i + 100).map((k) => ({ key: k, value: `v-${k}` })));
      }
      const first = cluster.storeId(0);
      await cluster.addStore();
      await cluster.addStore();
      await waitFor("PD to bring region 1 to three voters", async () => {
        return (await regionView(pd!)).voters.length === 3;
      }, 30_000);
      // The first store goes for good; the two new replicas elect a leader and serve every key.
      await cluster.kill(0);
      await waitFor("a leader on a new store", async () => {
        const { leaderStore } = await regionView(pd!);
        return leaderStore !== 0n && leaderStore !== first;
      }, 30_000);
      const got = await client.batchGet(keys);
      assert.equal(got.length, keys.length, "every key written before the replicas existed");
      for (const pair of got) assert.equal(fromUtf8(pair.value), `v-${fromUtf8(pair.key)}`);
      // The first store's log says it streamed them SST snapshots (not inline ones).
      const firstLog = await Deno.readTextFile(cluster.logPath(0));
      const sent = firstLog.match(/region snapshot sent as SST files/g)?.length ?? 0;
      assert.ok(sent >= 2, `SST snapshots sent by the first store: ${sent}`);
      console.log(
        `replication: ${keys.length} keys read from the two replicas added after they were ` +
          `written (${sent} SST snapshots sent)`,
      );
      failed = false;
    } finally {
      client?.close();
      pd?.close();
      await cluster.stop({ keepLogs: failed });
    }
  },
});
