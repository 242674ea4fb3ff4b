/**
 * A leader cut off from both followers (issue #10 item 10: "a partitioned leader steps down and
 * the majority side keeps serving"). The links between the leader's store and the others are
 * cut (`cluster.isolate`); PD and clients still reach every store, so clients keep trying the
 * old leader until it refuses them.
 *
 * Checked: writes resume on the majority side; the old leader stops serving (a read sent to it
 * alone is answered NotLeader: check quorum deposed it, Raft thesis §6.2); after the heal it
 * catches up, and made leader again it serves every write acknowledged before, during and after
 * the partition (so none was acknowledged by the cut-off leader alone).
 */
import assert from "node:assert/strict";
import { waitFor } from "./cluster.ts";
import {
  E2E,
  leadAndScan,
  leaderIndex,
  missingFrom,
  regionView,
  REPLICATION_FAILOVER_MS,
  scanAt,
  startWriters,
  withReplicatedCluster,
} from "./replication_lib.ts";

/** Acknowledged writes wanted before the cut, during it (after resuming), and after the heal. */
const WRITES_PER_PHASE = 100;
/**
 * A writer's deadline per put: the puts in flight at the cut-off leader are answered only then
 * (see `startWriters`), and the writer goes on with a fresh key, routed anew.
 */
const PUT_TIMEOUT_MS = 2_000;

Deno.test({
  name:
    "replication: a leader cut off from both followers steps down, the majority elects a leader and takes writes, and after the heal the old leader serves every acknowledged write",
  ...E2E,
  fn: () =>
    withReplicatedCluster({}, async (rc) => {
      const writers = startWriters(rc.client, {
        prefix: "part-",
        count: 4,
        putTimeoutMs: PUT_TIMEOUT_MS,
      });
      let resumedMs = 0;
      const old = await leaderIndex(rc);
      const oldStore = rc.cluster.storeId(old);
      try {
        await waitFor(
          "writes before the cut",
          () => writers.acknowledged.length >= WRITES_PER_PHASE,
        );
        rc.cluster.isolate(old);
        const cutAt = Date.now();
        const atCut = writers.acknowledged.length;
        await waitFor(
          `writes to resume on the majority side after cutting off store ${oldStore} ` +
            `(${writers.failures()} failed, last: ${writers.lastError()})`,
          () => writers.acknowledged.length >= atCut + WRITES_PER_PHASE,
          REPLICATION_FAILOVER_MS,
        );
        resumedMs = Date.now() - cutAt;
        await waitFor(`the new leader, not store ${oldStore}, in PD`, async () => {
          const { leaderStore } = await regionView(rc.pd);
          return leaderStore !== 0n && leaderStore !== oldStore;
        });
        let answer = "";
        await waitFor(`the cut-off store ${oldStore} to refuse reads as NotLeader`, async () => {
          const scan = await scanAt(rc, old);
          answer = scan.ok ? `served ${scan.pairs.size} pairs` : scan.regionError;
          return !scan.ok && scan.notLeader;
        }, REPLICATION_FAILOVER_MS).catch((error) => {
          throw new Error(`${(error as Error).message}; it answered: ${answer}`);
        });
        rc.cluster.rejoin(old);
        const atHeal = writers.acknowledged.length;
        await waitFor(
          "writes after the heal",
          () => writers.acknowledged.length >= atHeal + WRITES_PER_PHASE,
        );
      } finally {
        await writers.stop();
      }
      const acknowledged = [...writers.acknowledged];
      const pairs = await leadAndScan(rc, old);
      const missing = missingFrom(pairs, acknowledged);
      assert.deepEqual(
        missing.slice(0, 5),
        [],
        `the old leader lacks ${missing.length} of ${acknowledged.length} acknowledged writes`,
      );
      console.log(
        `replication: writes resumed ${resumedMs} ms after cutting off the leader's store ` +
          `${oldStore}; ${acknowledged.length} acknowledged writes (${writers.failures()} failed) ` +
          `read from it as leader after the heal`,
      );
    }),
});
