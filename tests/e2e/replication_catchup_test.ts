/**
 * A follower restarted after missing many writes catches up (issue #10 item 10: "a follower
 * restarted after many writes catches up by log, and by snapshot after compaction").
 *
 * How each path is told apart, from the stores' data directories read while they are stopped
 * (`raftLogOnDisk`):
 * - By log: the follower's log afterwards continues its log from before the kill, and its
 *   truncated index is no higher than its last index then (a snapshot would have moved the
 *   truncated index to the snapshot's index, past it).
 * - By snapshot: before the follower restarts, the log of every other replica starts past the
 *   follower's last index, so no replica can send it the entries it lacks: Raft (§7) can only
 *   bring it up to date by a snapshot.
 * Either way the follower is then made leader (PD's transfer-leader) and must serve every write.
 */
import assert from "node:assert/strict";
import {
  E2E,
  leadAndScan,
  leaderIndex,
  missingFrom,
  putKeys,
  raftLogOnDisk,
  regionView,
  type ReplicatedCluster,
  REPLICATION_FAILOVER_MS,
  REPLICATION_PUT_CONCURRENCY,
  withReplicatedCluster,
} from "./replication_lib.ts";

/** Writes made before the follower is killed. */
const WRITES_BEFORE = 50;
/** Writes the follower misses (fewer than the default log-gc count limit, 1000: no compaction). */
const WRITES_MISSED_BY_LOG = 300;
/** The count limit of the snapshot test; the writes missed there are many times more. */
const SNAPSHOT_GC_COUNT_LIMIT = 20;
const WRITES_MISSED_BY_SNAPSHOT = 200;
/** How long the snapshot test keeps writing at least (several log-gc checks, one a second). */
const SNAPSHOT_WRITE_MS = 3_000;
/** Most writes the snapshot test makes while it waits for SNAPSHOT_WRITE_MS to pass. */
const SNAPSHOT_WRITES_MAX = 5_000;

/** A follower's harness index (a store not leading the first region). */
async function followerIndex(rc: ReplicatedCluster): Promise<number> {
  return ((await leaderIndex(rc)) + 1) % 3;
}

Deno.test({
  name:
    "replication: a follower killed while 300 writes happen catches up by log after its restart and serves them all as leader",
  ...E2E,
  fn: () =>
    withReplicatedCluster({}, async (rc) => {
      const { regionId } = await regionView(rc.pd);
      const before = await putKeys(rc.client, { prefix: "before-", count: WRITES_BEFORE });
      const follower = await followerIndex(rc);
      await rc.cluster.kill(follower);
      const down = raftLogOnDisk(rc.cluster, follower, regionId);
      const missed = await putKeys(rc.client, {
        prefix: "missed-",
        count: WRITES_MISSED_BY_LOG,
      });
      await rc.cluster.restart(follower);
      const pairs = await leadAndScan(rc, follower);
      const missing = missingFrom(pairs, [...before, ...missed]);
      assert.deepEqual(missing.slice(0, 5), [], `${missing.length} writes missing on the follower`);
      await rc.cluster.stopStore(follower);
      const after = raftLogOnDisk(rc.cluster, follower, regionId);
      assert.ok(
        after.truncatedIndex <= down.lastIndex,
        `the follower's truncated index moved from ≤ ${down.lastIndex} to ${after.truncatedIndex}: ` +
          `it was sent a snapshot`,
      );
      // The missed writes went in waves of REPLICATION_PUT_CONCURRENCY, each awaited: a wave's
      // writes may share an entry (writes proposed together are merged), but no two waves can.
      const waves = Math.ceil(WRITES_MISSED_BY_LOG / REPLICATION_PUT_CONCURRENCY);
      assert.ok(
        after.lastIndex >= down.lastIndex + BigInt(waves),
        `the follower's log grew from ${down.lastIndex} only to ${after.lastIndex} ` +
          `(the missed writes went in ${waves} waves, an entry or more each)`,
      );
      console.log(
        `replication: follower's log ${down.lastIndex} at the kill, ${after.lastIndex} after ` +
          `catching up (truncated at ${after.truncatedIndex}); ` +
          `${before.length + missed.length} writes read from it as leader`,
      );
    }),
});

Deno.test({
  name:
    "replication: a follower down while the others compact their logs past it catches up by snapshot and serves every write as leader",
  ...E2E,
  fn: () =>
    withReplicatedCluster({
      config: `[raftstore]\nraft-log-gc-count-limit = ${SNAPSHOT_GC_COUNT_LIMIT}\n`,
    }, async (rc) => {
      const { regionId } = await regionView(rc.pd);
      const before = await putKeys(rc.client, { prefix: "before-", count: WRITES_BEFORE });
      const follower = await followerIndex(rc);
      await rc.cluster.kill(follower);
      const down = raftLogOnDisk(rc.cluster, follower, regionId);
      const missed: string[] = [];
      const startedAt = Date.now();
      for (
        let i = 0;
        i < SNAPSHOT_WRITES_MAX &&
        (missed.length < WRITES_MISSED_BY_SNAPSHOT || Date.now() - startedAt < SNAPSHOT_WRITE_MS);
        i++
      ) {
        const key = `missed-${i}`;
        await rc.client.put(key, key, { timeoutMs: REPLICATION_FAILOVER_MS });
        missed.push(key);
      }
      // Stop the other two and read their logs: neither holds what the follower lacks.
      const others = [0, 1, 2].filter((i) => i !== follower);
      for (const i of others) await rc.cluster.stopStore(i);
      for (const i of others) {
        const log = raftLogOnDisk(rc.cluster, i, regionId);
        assert.ok(
          log.firstIndex > down.lastIndex + 1n,
          `store ${rc.cluster.storeId(i)}'s log still starts at ${log.firstIndex} ` +
            `(applied ${log.appliedIndex}), so the follower (last index ${down.lastIndex}) ` +
            `could catch up by log: the log was not compacted past the down follower`,
        );
        console.log(
          `replication: store ${
            rc.cluster.storeId(i)
          }'s log holds ${log.firstIndex}..${log.lastIndex}; ` +
            `the down follower's ends at ${down.lastIndex}`,
        );
      }
      for (const i of others) await rc.cluster.restart(i);
      await rc.cluster.restart(follower);
      const pairs = await leadAndScan(rc, follower);
      const missing = missingFrom(pairs, [...before, ...missed]);
      assert.deepEqual(missing.slice(0, 5), [], `${missing.length} writes missing on the follower`);
      console.log(
        `replication: ${before.length + missed.length} writes (${missed.length} missed while ` +
          `down) read from the follower as leader after a snapshot`,
      );
    }),
});
