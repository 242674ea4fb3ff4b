/**
 * Three PD members and three stores (tests/e2e/cluster.ts with `pd: 3`): kill -9 of PD's leader
 * while clients write through the cluster. The stores find the new PD leader through
 * GetMembers (heartbeats, TSO for max-ts sync, store addresses), the clients too: transactions
 * keep committing, the new leader hears the region from its leader, and every acknowledged
 * transaction reads back.
 */
import assert from "node:assert/strict";
import { PdClient } from "../../src/client/pd_client.ts";
import { TxnKV } from "../../src/client/txn/mod.ts";
import { fromUtf8 } from "../../src/util/bytes.ts";
import { startCluster, waitFor } from "./cluster.ts";

const E2E = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name:
    "PD HA with stores: kill -9 of PD's leader under transactional writes — stores and clients follow the new leader, nothing acknowledged is lost",
  ...E2E,
  fn: async () => {
    const cluster = await startCluster({ stores: 3, pd: 3 });
    const endpoints = cluster.pds.map((pd) => pd.clientAddr);
    const pd = await PdClient.connect(endpoints);
    let client: TxnKV | null = null;
    let failed = true;
    try {
      await waitFor("PD to bring the first region to three voters", async () => {
        const region = await pd.getRegion(new Uint8Array(0));
        return (region?.region.peers ?? []).filter((p) => (p.role ?? 0) === 0).length === 3;
      }, 30_000);
      client = await TxnKV.connect({ pd: endpoints, timeoutMs: 30_000 });
      const acknowledged: string[] = [];
      let running = true;
      // A failed write ends the writer; the waits below name its error.
      let writerError: unknown = undefined;
      const written = (count: number) => {
        if (writerError !== undefined) throw writerError;
        return acknowledged.length >= count;
      };
      const writer = (async () => {
        for (let i = 0; running && i < 100_000; i++) {
          const key = `pdha-${i}`;
          const txn = await client!.begin();
          txn.set(key, key);
          await txn.commit();
          acknowledged.push(key);
        }
      })().catch((error) => (writerError = error));
      await waitFor("writes before the kill", () => written(20));
      const leaderName = (await pd.getMembers()).leader?.name ?? "";
      const index = ["pd1", "pd2", "pd3"].indexOf(leaderName);
      assert.ok(index >= 0, `PD's leader is one of the three: ${leaderName}`);
      await cluster.killPd(index);
      const before = acknowledged.length;
      await waitFor(
        "transactional writes to resume under a new PD leader",
        () => written(before + 20),
        20_000,
      );
      running = false;
      await writer;
      if (writerError !== undefined) throw writerError;
      // The stores heartbeat to the new leader: it knows the region's leader and three voters.
      await waitFor("a region heartbeat at the new PD leader", async () => {
        const region = await pd.getRegion(new Uint8Array(0));
        return (region?.leader?.storeId ?? 0n) !== 0n && (region?.region.peers ?? []).length === 3;
      }, 20_000);
      const check = await client.begin();
      const got = await check.batchGet(acknowledged);
      await check.rollback();
      assert.equal(got.length, acknowledged.length);
      for (const pair of got) assert.equal(fromUtf8(pair.value), fromUtf8(pair.key));
      console.log(
        `PD HA with stores: killed ${leaderName}; ${acknowledged.length} acknowledged ` +
          `transactions read back`,
      );
      failed = false;
    } finally {
      await client?.close();
      pd.close();
      await cluster.stop({ keepLogs: failed });
    }
  },
});
