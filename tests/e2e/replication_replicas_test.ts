/**
 * Every replica holds every write, and survives a crash of the whole cluster (issue #10 item 10:
 * "replication to all three", "a restart of all three stores finds every write").
 *
 * A follower serves no reads (no follower read), so a replica's data is shown by making it the
 * leader — PD's transfer-leader operator — and scanning the region at that store alone
 * (`scanAt`: its own peer in the context, never retried elsewhere).
 */
import assert from "node:assert/strict";
import {
  E2E,
  leadAndScan,
  missingFrom,
  putKeys,
  regionView,
  startWriters,
  withReplicatedCluster,
} from "./replication_lib.ts";
import { waitFor } from "./cluster.ts";

/** Keys written before the replicas are read. */
const KEYS = 300;
/** Acknowledged writes to have before the whole cluster is killed. */
const WRITES_BEFORE_CRASH = 300;

Deno.test({
  name: "replication: each of the three stores, made leader in turn, serves every write",
  ...E2E,
  fn: () =>
    withReplicatedCluster({}, async (rc) => {
      const keys = await putKeys(rc.client, { prefix: "all-", count: KEYS });
      for (let index = 0; index < 3; index++) {
        const pairs = await leadAndScan(rc, index);
        const missing = missingFrom(pairs, keys);
        assert.deepEqual(
          missing.slice(0, 5),
          [],
          `store ${rc.cluster.storeId(index)} lacks ${missing.length} of ${keys.length} keys`,
        );
      }
      console.log(`replication: ${keys.length} keys read from each of 3 stores as leader`);
      // Each store sent Raft messages to the others (it led), and says so in /metrics.
      for (let index = 0; index < 3; index++) {
        const metrics = await (await fetch(`http://${rc.cluster.statusAddr(index)}/metrics`))
          .text();
        const sent = Number(/basalt_raft_client_envelopes_sent_total (\d+)/.exec(metrics)?.[1]);
        assert.ok(sent > 0, `store ${index} reports ${sent} Raft messages sent`);
        assert.match(metrics, /# TYPE basalt_raft_client_dropped_overflow_total counter/);
      }
    }),
});

Deno.test({
  name:
    "replication: kill -9 of all three stores under writes, then a restart, finds every acknowledged write on every store",
  ...E2E,
  fn: () =>
    withReplicatedCluster({}, async (rc) => {
      const writers = startWriters(rc.client, { prefix: "crash-", count: 4 });
      let beforeCrash = 0;
      try {
        await waitFor(
          `${WRITES_BEFORE_CRASH} acknowledged writes before the crash`,
          () => writers.acknowledged.length >= WRITES_BEFORE_CRASH,
        );
        await Promise.all([0, 1, 2].map((i) => rc.cluster.kill(i)));
        beforeCrash = writers.acknowledged.length;
        // The puts in flight keep retrying until the stores are back (or their deadline).
        writers.halt();
        for (let i = 0; i < 3; i++) await rc.cluster.restart(i);
      } finally {
        await writers.stop();
      }
      const acknowledged = [...writers.acknowledged];
      await waitFor("a leader of the first region after the restart", async () => {
        return (await regionView(rc.pd)).leaderStore !== 0n;
      });
      for (let index = 0; index < 3; index++) {
        const pairs = await leadAndScan(rc, index);
        const missing = missingFrom(pairs, acknowledged);
        assert.deepEqual(
          missing.slice(0, 5),
          [],
          `store ${
            rc.cluster.storeId(index)
          } lost ${missing.length} of ${acknowledged.length} acknowledged writes`,
        );
      }
      // The cluster takes writes again.
      await rc.client.put("after-restart", "after-restart");
      console.log(
        `replication: ${beforeCrash} writes acknowledged before kill -9 of all 3 stores ` +
          `(${acknowledged.length} with the puts in flight then; ${writers.failures()} failed) ` +
          `found on each store after the restart`,
      );
    }),
});
