/**
 * The bank workload (bank_test.ts) against a replicated cluster — 1 PD and 3 stores on loopback
 * (tests/e2e/cluster.ts), clients routed through PD — with the region leader's store killed
 * (-9) halfway: every commit mode, aborts and crashed clients, across a leader change (a new
 * leader syncs max_ts with PD before async commit and 1PC). Every snapshot must still sum to
 * the total, and no lock may be left.
 */
import { PdClient } from "../../src/client/pd_client.ts";
import { TxnKV } from "../../src/client/txn/mod.ts";
import { seedFromEnv } from "../../src/util/random.ts";
import { startCluster, waitFor } from "../e2e/cluster.ts";
import { runBank } from "./bank.ts";

Deno.test({
  name: "bank on a 3-store cluster: the total holds (SI) across a kill -9 of the leader's store",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const seed = seedFromEnv();
    const cluster = await startCluster({ stores: 3 });
    const pd = await PdClient.connect([cluster.pdAddr]);
    let failed = true;
    try {
      await waitFor("three voters", async () => {
        const region = await pd.getRegion(new Uint8Array(0));
        return (region?.region.peers ?? []).filter((p) => (p.role ?? 0) === 0).length === 3;
      }, 30_000);
      let killed = "";
      const tally = await runBank({
        connect: () => TxnKV.connect({ pd: [cluster.pdAddr], timeoutMs: 30_000 }),
        midway: async () => {
          const leader = (await pd.getRegion(new Uint8Array(0)))?.leader?.storeId ?? 0n;
          for (let i = 0; i < cluster.storeCount; i++) {
            if (cluster.storeId(i) !== leader) continue;
            await cluster.kill(i);
            killed = `store ${leader}`;
          }
        },
      }, seed);
      console.log(`bank (cluster) SEED=${seed} killed ${killed} ${JSON.stringify(tally)}`);
      failed = false;
    } catch (error) {
      console.error(`bank (cluster) failed with SEED=${seed}`);
      throw error;
    } finally {
      pd.close();
      await cluster.stop({ keepLogs: failed });
    }
  },
});
