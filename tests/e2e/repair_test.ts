/**
 * Replica repair end to end: 1 PD and 4 stores, the first region on three of them. One of its
 * stores is killed for good (its data directory removed); once PD counts it Down (`[schedule] max-store-down-time`, the
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
import { ctl } from "./ctl.ts";
import { metapb } from "../../proto/mod.ts";

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
      // For good: its data is gone too.
      await Deno.remove(cluster.dataDir(victim), { recursive: true });
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
      const regionId = (await pd.getRegion(new Uint8Array(0)))?.region.id ?? 0n;
      console.log(
        `repair: region ${regionId}'s replica on store ${dead} replaced on store ${spare} ${repairedMs} ms after the kill ` +
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

Deno.test({
  name:
    "drain: ctl store delete takes a store Offline, its replica moves to another store, and it ends Tombstone",
  ...E2E,
  fn: async () => {
    const cluster = await startCluster({ stores: 4 });
    const pd = await PdClient.connect([cluster.pdAddr]);
    let client: RawKV | null = null;
    let failed = true;
    try {
      await waitFor("three voters", async () => (await voterStores(pd)).length === 3, 30_000);
      client = new RawKV(await PdResolver.connect([cluster.pdAddr]));
      const keys = Array.from({ length: 200 }, (_, i) => `drain-${i}`);
      for (const key of keys) await client.put(key, key);
      const voters = await voterStores(pd);
      const drained = voters[voters.length - 1]!;
      const run = await ctl(["--pd", cluster.pdAddr, "store", "delete", String(drained)]);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /Offline/);
      await waitFor(`store ${drained}'s replica to move away`, async () => {
        const now = await voterStores(pd);
        return now.length === 3 && !now.includes(drained);
      }, 60_000);
      await waitFor(`store ${drained} to be Tombstone`, async () => {
        const store = await pd.getStore(drained);
        return store.state === metapb.StoreState.Tombstone;
      }, 60_000);
      const got = await client.batchGet(keys);
      assert.equal(got.length, keys.length);
      console.log(
        `drain: store ${drained} drained and tombstoned; ${keys.length} writes read back`,
      );
      failed = false;
    } finally {
      client?.close();
      pd.close();
      await cluster.stop({ keepLogs: failed });
    }
  },
});
