/**
 * MVCC GC across a replicated cluster: the stores read PD's GC safe point (`[gc]
 * poll-safe-point-interval`) and collect garbage below it in the regions they lead, through the
 * region's log — so every replica drops the old versions, not only the leader's. Checked on the
 * leader (MvccGetByKey), then on another store made leader.
 */
import assert from "node:assert/strict";
import { pdpb } from "../../proto/mod.ts";
import { PdClient } from "../../src/client/pd_client.ts";
import { TxnKV } from "../../src/client/txn/mod.ts";
import { startCluster, waitFor } from "./cluster.ts";
import { PdRpc } from "./pd_lib.ts";

const E2E = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name: "cluster GC: PD's safe point reaches every store; old versions go from every replica",
  ...E2E,
  fn: async () => {
    const config = await Deno.makeTempFile({ suffix: ".toml" });
    await Deno.writeTextFile(config, '[gc]\npoll-safe-point-interval = "500ms"\n');
    const cluster = await startCluster({ stores: 3, storeArgs: ["--config", config] });
    const pd = await PdClient.connect([cluster.pdAddr]);
    const rpc = await new PdRpc(cluster.pdAddr).connect();
    let client: TxnKV | null = null;
    let failed = true;
    try {
      await waitFor("three voters", async () => {
        const region = await pd.getRegion(new Uint8Array(0));
        return (region?.region.peers ?? []).filter((p) => (p.role ?? 0) === 0).length === 3;
      }, 30_000);
      client = await TxnKV.connect({ pd: [cluster.pdAddr], timeoutMs: 30_000 });
      const commitTs: bigint[] = [];
      for (const value of ["v1", "v2", "v3"]) {
        const txn = await client.begin();
        txn.set("gc-key", value);
        await txn.commit();
        commitTs.push(await client.currentTimestamp());
      }
      // The safe point lies between v2's and v3's commits: v1 goes, v2 (newest at it) stays.
      const safePoint = commitTs[1]!;
      await rpc.call("UpdateGCSafePoint", {
        request: pdpb.UpdateGCSafePointRequest as never,
        response: pdpb.UpdateGCSafePointResponse,
      }, { safePoint });
      const versions = async () => (await client!.mvccGetByKey("gc-key")).writes?.length ?? 0;
      await waitFor("GC on the leader to leave two versions", async () => await versions() === 2);
      // Another replica, made leader, shows the same: the GC went through the log.
      const leader = (await pd.getRegion(new Uint8Array(0)))?.leader?.storeId ?? 0n;
      await cluster.kill([0, 1, 2].find((i) => cluster.storeId(i) === leader)!);
      let newLeader = 0n;
      await waitFor("a new leader", async () => {
        newLeader = (await pd.getRegion(new Uint8Array(0)))?.leader?.storeId ?? 0n;
        return newLeader !== 0n && newLeader !== leader;
      }, 30_000);
      assert.equal(await versions(), 2, "the new leader's replica was collected too");
      console.log(
        `cluster GC: v1 collected on store ${leader} (leader) and on store ${newLeader} (led next)`,
      );
      failed = false;
    } finally {
      await client?.close();
      rpc.close();
      pd.close();
      await cluster.stop({ keepLogs: failed });
      await Deno.remove(config);
    }
  },
});
