/**
 * The race against etcd's driver: a real one-member etcd (skipped, saying why, when etcd is not
 * installed) takes a put and answers a linearizable get of it through `EtcdKv`; a key never
 * written is reported as not found; stopping the cluster ends its process and removes its
 * directory. The race's judgement: Basalt ÷ etcd at its bound, p99 no worse, errors on either
 * side a miss.
 */
import assert from "node:assert/strict";
import { ETCD_MAX_MEMBERS, etcdVersion, startEtcdCluster } from "./etcd_cluster.ts";
import { ETCD_MAX_CHANNELS, EtcdKv } from "./etcd_client.ts";
import { RACE_JUDGED_IN_FLIGHT, RACE_TARGETS, raceVerdicts } from "./etcd_race.ts";
import type { Summary } from "./cluster_bench.ts";

const etcd = etcdVersion();
if ("missing" in etcd) console.log(`etcd_race_test: skipping the live etcd test: ${etcd.missing}`);

Deno.test({
  name: "etcd driver: a put is read back by a linearizable get; a missing key is not found",
  ignore: "missing" in etcd,
  async fn() {
    const cluster = await startEtcdCluster({ members: 1 });
    const member = cluster.members[0]!;
    try {
      assert.equal(await cluster.leader(), 0);
      const kv = new EtcdKv(member.clientAddress, { channels: 2 });
      try {
        const key = new TextEncoder().encode("bk00000000000001");
        assert.equal(await kv.put(key, new Uint8Array(100).fill(7)), null);
        assert.equal(await kv.get(key), null);
        assert.equal(await kv.get(key, { serializable: true }), null);
        assert.equal(
          await kv.get(new TextEncoder().encode("never-written")),
          "a loaded key was not found",
        );
      } finally {
        kv.close();
      }
    } finally {
      await cluster.stop();
    }
    assert.throws(() => Deno.statSync(cluster.root), Deno.errors.NotFound);
    assert.throws(() => Deno.readTextFileSync(`/proc/${member.pid}/cmdline`), Deno.errors.NotFound);
  },
});

Deno.test("etcd driver: connections and members are bounded by their constants", async () => {
  await assert.rejects(startEtcdCluster({ members: 0 }), RangeError);
  await assert.rejects(startEtcdCluster({ members: ETCD_MAX_MEMBERS + 1 }), RangeError);
  assert.throws(() => new EtcdKv("127.0.0.1:1", { channels: 0 }), RangeError);
  assert.throws(() => new EtcdKv("127.0.0.1:1", { channels: ETCD_MAX_CHANNELS + 1 }), RangeError);
  new EtcdKv("127.0.0.1:1", { channels: ETCD_MAX_CHANNELS }).close();
});

function summary(opsPerSecond: number, fields: Partial<Summary> = {}): Summary {
  return {
    opsPerSecond,
    p50Ms: 1,
    p99Ms: 10,
    errors: 0,
    cpuUsPerOp: [],
    benchCpuUsPerOp: 0,
    ...fields,
  };
}

Deno.test("etcd race: Basalt ÷ etcd meets the target at 5× and not below, at the judged count only", () => {
  const at = RACE_JUDGED_IN_FLIGHT;
  const etcd = summary(1000);
  const putTimes = RACE_TARGETS.putsOverEtcdAtLeast;
  const getTimes = RACE_TARGETS.getsOverEtcdAtLeast;
  assert.equal(raceVerdicts("put", at, { basalt: summary(1000 * putTimes), etcd })[0]!.met, true);
  assert.equal(
    raceVerdicts("put", at, { basalt: summary(1000 * putTimes - 1), etcd })[0]!.met,
    false,
  );
  assert.equal(raceVerdicts("get", at, { basalt: summary(1000 * getTimes), etcd })[0]!.met, true);
  assert.equal(
    raceVerdicts("get", at, { basalt: summary(1000 * getTimes - 1), etcd })[0]!.met,
    false,
  );
  assert.equal(raceVerdicts("get", at, { basalt: summary(1e9), etcd }).length, 1);
  assert.deepEqual(raceVerdicts("put", 256, { basalt: summary(1e9), etcd }), []);
});

Deno.test("etcd race: a put p99 equal to etcd's is no worse; above it, or any error, misses", () => {
  const at = RACE_JUDGED_IN_FLIGHT;
  const p99 = (basalt: Summary, etcd: Summary) => raceVerdicts("put", at, { basalt, etcd })[1]!.met;
  assert.equal(p99(summary(1e9, { p99Ms: 10 }), summary(1, { p99Ms: 10 })), true);
  assert.equal(p99(summary(1e9, { p99Ms: 10.01 }), summary(1, { p99Ms: 10 })), false);
  const failed = raceVerdicts("put", at, {
    basalt: summary(1e9, { p99Ms: 1 }),
    etcd: summary(1, { errors: 1, firstError: "etcd Put: timed out" }),
  });
  assert.deepEqual(failed.map((v) => v.met), [false, false]);
});
