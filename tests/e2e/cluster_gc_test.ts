/**
 * MVCC GC across a replicated cluster: the stores read PD's GC safe point (`[gc]
 * poll-safe-point-interval`) and collect garbage below it in the regions they lead, through the
 * region's log — so every replica drops the old versions, not only the leader's. Checked on the
 * leader (MvccGetByKey), then on another store once it leads.
 */
import assert from "node:assert/strict";
import { pdpb } from "../../proto/mod.ts";
import { TxnKV } from "../../src/client/txn/mod.ts";
import { waitFor } from "./cluster.ts";
import {
  E2E,
  indexOf,
  regionView,
  REPLICATION_LEADER_MOVE_TIMEOUT_MS,
  withReplicatedCluster,
} from "./replication_lib.ts";

Deno.test({
  name: "cluster GC: PD's safe point reaches every store; old versions go from every replica",
  ...E2E,
  fn: () =>
    withReplicatedCluster(
      { config: '[gc]\npoll-safe-point-interval = "500ms"\n' },
      async ({ cluster, pd, admin }) => {
        const client = await TxnKV.connect({ pd: [cluster.pdAddr], timeoutMs: 30_000 });
        try {
          const commitTs: bigint[] = [];
          for (const value of ["v1", "v2", "v3"]) {
            const txn = await client.begin();
            txn.set("gc-key", value);
            await txn.commit();
            commitTs.push(await client.currentTimestamp());
          }
          // The safe point lies between v2's and v3's commits: v1 goes, v2 (newest at it) stays.
          await admin.connect();
          await admin.call("UpdateGCSafePoint", {
            request: pdpb.UpdateGCSafePointRequest as never,
            response: pdpb.UpdateGCSafePointResponse,
          }, { safePoint: commitTs[1]! });
          const versions = async () => (await client.mvccGetByKey("gc-key")).writes?.length ?? 0;
          await waitFor(
            "GC on the leader to leave two versions",
            async () => await versions() === 2,
          );
          // Another replica, once it leads, shows the same: the GC went through the log.
          const leader = (await regionView(pd)).leaderStore;
          await cluster.kill(indexOf(cluster, leader));
          let next = 0n;
          await waitFor("a new leader", async () => {
            next = (await regionView(pd)).leaderStore;
            return next !== 0n && next !== leader;
          }, REPLICATION_LEADER_MOVE_TIMEOUT_MS);
          assert.equal(await versions(), 2, "the new leader's replica was collected too");
          console.log(
            `cluster GC: v1 collected on store ${leader} (leader) and store ${next} (next)`,
          );
        } finally {
          await client.close();
        }
      },
    ),
});
