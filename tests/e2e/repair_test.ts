/**
 * Replica repair end to end: 1 PD and 4 stores, the first region on three of them. One of its
 * stores is killed for good; once PD counts it Down (`[schedule] max-store-down-time`, the
 * shortest PD accepts here), its replica checker adds a replica on the fourth store (add learner,
 * which gets the region by snapshot, then promote) and removes the dead one. The region is whole
 * again — three voters, none on the dead store — and every acknowledged write reads back.
 */
import assert from "node:assert/strict";
import { PdClient } from "../../src/client/pd_client.ts";
import { RawKV } from "../../src/client/raw.ts";
import { PdResolver } from "../../src/client/pd_resolver.ts";
import { fromUtf8 } from "../../src/util/bytes.ts";
import { PD_STORE_DISCONNECTED_MS } from "../../src/constants.ts";
import { startCluster, waitFor } from "./cluster.ts";

const E2E = { sanitizeOps: false, sanitizeResources: false };
/** Just past the Disconnected threshold: the shortest Down time PD takes. */
const DOWN_AFTER_MS = PD_STORE_DISCONNECTED_MS + 1_000;

async function voterStores(pd: PdClient): Promise<bigint[]> {
  const region = await pd.getRegion(new Uint8Array(0));
  return (region?.region.peers ?? []).filter((p) => (p.role ?? 0) === 0).map((p) =>
    p.storeId ?? 0n
  );
}

Deno.test({
  name:
    "repair: a store lost for good is replaced — PD adds a replica on a live store and removes the dead one",
  ...E2E,
  fn: async () => {
    const cluster = await startCluster({
      stores: 3,
      pdConfig: `[schedule]\nmax-store-down-time = "${DOWN_AFTER_MS}ms"\n`,
    });
    const pd = await PdClient.connect([cluster.pdAddr]);
    let client: RawKV | null = null;
    let failed = true;
    try {
      await waitFor("three voters", async () => (await voterStores(pd)).length === 3, 30_000);
      await cluster.addStore(); // a fourth store, holding nothing yet
      const spare = cluster.storeId(3);
      client = new RawKV(await PdResolver.connect([cluster.pdAddr]));
      const keys = Array.from({ length: 300 }, (_, i) => `repair-${i}`);
      for (const key of keys) await client.put(key, key);
      // Lose a follower's store for good (the leader's would work too; a follower keeps the
      // writes below flowing while PD waits out the down time).
      const leader = (await pd.getRegion(new Uint8Array(0)))?.leader?.storeId ?? 0n;
      const victims = [0, 1, 2].filter((i) => cluster.storeId(i) !== leader);
      const victim = victims[0]!;
      const dead = cluster.storeId(victim);
      await cluster.kill(victim);
      const started = Date.now();
      await waitFor(
        `PD to replace store ${dead} with store ${spare}`,
        async () => {
          const voters = await voterStores(pd);
          return voters.length === 3 && !voters.includes(dead) && voters.includes(spare);
        },
        DOWN_AFTER_MS + 60_000,
      );
      const repairedMs = Date.now() - started;
      const got = await client.batchGet(keys);
      assert.equal(got.length, keys.length);
      for (const pair of got) assert.equal(fromUtf8(pair.value), fromUtf8(pair.key));
      console.log(
        `repair: store ${dead} replaced by store ${spare} ${repairedMs} ms after the kill ` +
          `(down after ${DOWN_AFTER_MS} ms); ${keys.length} writes read back`,
      );
      failed = false;
    } finally {
      client?.close();
      pd.close();
      await cluster.stop({ keepLogs: failed });
    }
  },
});
