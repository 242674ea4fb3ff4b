/**
 * Stores joining and leaving end to end (issue #11, PD): 1 PD and 3 stores hold BALANCE_REGIONS
 * regions (split by hand, a few keys written into each) while four writers (one in each of
 * LIVE_WRITER_REGIONS) keep writing.
 *
 * 1. A fourth store joins: PD's balance-region moves replicas onto it (add learner, snapshot,
 *    promote, remove the old one) until it holds its share — regions × 3 ÷ 4, within
 *    BALANCE_REPLICA_SLACK — and balance-leader spreads leadership so that every store leads a
 *    region and none leads more than half of them.
 * 2. One store is drained (`basalt-ctl store delete`): its replicas move to the other three, it
 *    ends Tombstone, and every region keeps three voters.
 *
 * Throughout, no client write fails and every key (the ones written first and every
 * acknowledged live write) reads back. PD's view (ScanRegions) is sampled every second and the
 * per-store counts are printed when they change, so a run shows how the moves went.
 *
 * PD runs its defaults: a scheduling round a second, leader-schedule-limit 4,
 * region-schedule-limit 4, replica-schedule-limit 64, store-limit 4 (a deployment's limits on
 * operators in flight). The running operators are sampled at every poll (`ListOperators`): no
 * kind ever runs more than its limit at once, none ends other than in success (GetOperator's
 * final status; PD's log shows no "operator timed out"). On this machine the new store has its
 * share after ~5 s, the drain takes ~5 s.
 */
import assert from "node:assert/strict";
import { PdClient, type PdRegion } from "../../src/client/pd_client.ts";
import { PdResolver } from "../../src/client/pd_resolver.ts";
import { RawKV } from "../../src/client/raw.ts";
import { fromUtf8, utf8 } from "../../src/util/bytes.ts";
import { metapb, pdpb } from "../../proto/mod.ts";
import {
  DEFAULT_PD_LEADER_SCHEDULE_LIMIT,
  DEFAULT_PD_REGION_SCHEDULE_LIMIT,
  DEFAULT_PD_REPLICA_SCHEDULE_LIMIT,
} from "../../src/constants.ts";
import { type Cluster, startCluster, waitFor } from "./cluster.ts";
import { PdRpc } from "./pd_lib.ts";
import { ctl } from "./ctl.ts";
import { E2E, REPLICATION_THREE_VOTERS_TIMEOUT_MS, startWriters } from "./replication_lib.ts";

/** Regions the key space is split into (15 split keys). */
const BALANCE_REGIONS = 16;
/** Keys written into each region before the fourth store joins. */
const KEYS_PER_REGION = 20;
/** How far the new store's replica count may be from its fair share (regions × 3 ÷ 4). */
const BALANCE_REPLICA_SLACK = 2;
/** How long PD may take to balance replicas and leaders onto the fourth store. */
const BALANCE_TIMEOUT_MS = 60_000;
/** How long PD may take to move a drained store's replicas away and bury it. */
const DRAIN_TIMEOUT_MS = 60_000;
/** How often PD's view is sampled while waiting (each sample printed when it changed). */
const SAMPLE_INTERVAL_MS = 1_000;
/** PD's default operator limits in flight (the test's PD runs them). */
const LIMITS: Record<string, number> = {
  leader: DEFAULT_PD_LEADER_SCHEDULE_LIMIT,
  region: DEFAULT_PD_REGION_SCHEDULE_LIMIT,
  replica: DEFAULT_PD_REPLICA_SCHEDULE_LIMIT,
};
/** Regions that get a live writer each. */
const LIVE_WRITER_REGIONS = [2, 6, 10, 14];

const regionKey = (region: number) => `bal-${String(region).padStart(2, "0")}`;
const EMPTY = new Uint8Array(0);

/** Replicas, voters and leaders per store id, as PD reports them now. */
interface Spread {
  regions: PdRegion[];
  replicas: Map<bigint, number>;
  leaders: Map<bigint, number>;
  /** Regions whose peers are not exactly three voters, or that have no leader. */
  unhealthy: number;
}

async function spread(pd: PdClient): Promise<Spread> {
  const regions = await pd.scanRegions({ startKey: EMPTY, endKey: EMPTY, limit: 1000 });
  const replicas = new Map<bigint, number>();
  const leaders = new Map<bigint, number>();
  let unhealthy = 0;
  for (const { region, leader } of regions) {
    const peers = region.peers ?? [];
    const voters = peers.filter((p) => (p.role ?? metapb.PeerRole.Voter) === metapb.PeerRole.Voter);
    if (voters.length !== 3 || peers.length !== 3 || leader === null) unhealthy++;
    for (const peer of peers) {
      replicas.set(peer.storeId!, (replicas.get(peer.storeId!) ?? 0) + 1);
    }
    if (leader !== null) leaders.set(leader.storeId!, (leaders.get(leader.storeId!) ?? 0) + 1);
  }
  return { regions, replicas, leaders, unhealthy };
}

function describe(s: Spread, storeIds: bigint[]): string {
  const per = storeIds.map((id) =>
    `store ${id}: ${s.replicas.get(id) ?? 0} replicas, ${s.leaders.get(id) ?? 0} leaders`
  );
  return `${s.regions.length} regions (${s.unhealthy} not 3 voters + leader); ${per.join("; ")}`;
}

/** What PD's operators did, as seen by sampling `ListOperators` at every poll. */
class OperatorWatch {
  /** The most operators of each kind seen RUNNING at once. */
  readonly maxRunning = new Map<string, number>();
  /** Operators seen, by id: their last description. */
  readonly seen = new Map<
    number,
    { kind: string; desc: string; status: string; regionId: bigint; line: string }
  >();

  constructor(private readonly admin: PdRpc) {}

  /**
   * Reads the running operators; an operator no longer running gets its final status from
   * GetOperator (PD keeps the last operator of each region), or "ENDED" when a newer one on
   * the same region hides it.
   */
  async sample(): Promise<void> {
    const answer = await this.admin.admin("ListOperators");
    const operators = answer.operators as Record<string, unknown>[];
    const running = new Map<string, number>();
    const now = new Set<number>();
    for (const op of operators) {
      const kind = String(op.kind);
      const status = String(op.status);
      now.add(Number(op.id));
      if (status === "RUNNING") running.set(kind, (running.get(kind) ?? 0) + 1);
      this.seen.set(Number(op.id), {
        kind,
        desc: String(op.desc),
        status,
        regionId: BigInt(String(op.regionId)),
        line: `region ${op.regionId} ${op.desc}: ${(op.steps as string[]).join(", ")}`,
      });
    }
    for (const [kind, n] of running) {
      this.maxRunning.set(kind, Math.max(n, this.maxRunning.get(kind) ?? 0));
    }
    for (const [id, op] of this.seen) {
      if (now.has(id) || op.status !== "RUNNING") continue;
      const last = await this.admin.call<pdpb.GetOperatorResponse>("GetOperator", {
        request: pdpb.GetOperatorRequest,
        response: pdpb.GetOperatorResponse,
      }, { regionId: op.regionId });
      const desc = new TextDecoder().decode(last.desc);
      const status = pdpb.OperatorStatus[last.status] ?? "UNKNOWN";
      op.status = desc === op.desc && status !== "RUNNING" ? status : "ENDED";
    }
  }

  /** Operators seen running at the last sample. */
  running(): number {
    return [...this.seen.values()].filter((op) => op.status === "RUNNING").length;
  }

  /** Operators by desc and final status, e.g. "balance-region SUCCESS ×9". */
  summary(): string {
    const counts = new Map<string, number>();
    for (const op of this.seen.values()) {
      const key = `${op.desc} ${op.status}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    const ops = [...counts].map(([key, n]) => `${key} ×${n}`).join(", ");
    const most = [...this.maxRunning].map(([kind, n]) => `${kind} ${n}`).join(", ");
    return `operators: ${ops}; most running at once: ${most}`;
  }

  /** Operators that ended other than in success. */
  failed(): string[] {
    return [...this.seen.values()].filter((op) =>
      op.status !== "RUNNING" && op.status !== "SUCCESS" && op.status !== "ENDED"
    ).map((op) => `${op.line} [${op.status}]`);
  }
}

/** Waits for `done` on PD's spread, printing each sample that differs from the last. */
async function waitForSpread(
  what: string,
  pd: PdClient,
  options: {
    storeIds: () => bigint[];
    done: (s: Spread) => boolean;
    timeoutMs: number;
    operators?: OperatorWatch;
  },
): Promise<Spread> {
  const started = Date.now();
  let last = "";
  let lastSampleMs = 0;
  let result: Spread | null = null;
  await waitFor(what, async () => {
    await options.operators?.sample();
    const s = await spread(pd);
    const line = describe(s, options.storeIds());
    if (line !== last && Date.now() - lastSampleMs >= SAMPLE_INTERVAL_MS) {
      console.log(`balance: +${((Date.now() - started) / 1000).toFixed(1)} s: ${line}`);
      last = line;
      lastSampleMs = Date.now();
    }
    if (!options.done(s)) return false;
    result = s;
    return true;
  }, options.timeoutMs).catch((error) => {
    throw new Error(`${(error as Error).message}; last seen: ${last}`);
  });
  console.log(`balance: ${what}: done after ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return result!;
}

function storeIdsOf(cluster: Cluster): bigint[] {
  return Array.from({ length: cluster.storeCount }, (_, i) => cluster.storeId(i));
}

/** Every store leads a region and none leads more than half of them. */
function leadersSpread(s: Spread, storeIds: bigint[]): boolean {
  return storeIds.every((id) => {
    const led = s.leaders.get(id) ?? 0;
    return led >= 1 && led <= s.regions.length / 2;
  });
}

Deno.test({
  name:
    "balance: a fourth store fills to its share of replicas and leads regions; a drained store empties and ends Tombstone; no write fails",
  ...E2E,
  fn: async () => {
    const cluster = await startCluster({ stores: 3 });
    const pd = await PdClient.connect([cluster.pdAddr]);
    const admin = await new PdRpc(cluster.pdAddr).connect();
    const operators = new OperatorWatch(admin);
    let client: RawKV | null = null;
    let failed = true;
    try {
      client = new RawKV(await PdResolver.connect([cluster.pdAddr]));
      const storeIds = () => storeIdsOf(cluster);
      await waitForSpread("region 1 to have three voters", pd, {
        storeIds,
        done: (s) => s.regions.length === 1 && s.unhealthy === 0,
        timeoutMs: REPLICATION_THREE_VOTERS_TIMEOUT_MS,
      });

      // The regions, and a few keys in each.
      const splitKeys = Array.from(
        { length: BALANCE_REGIONS - 1 },
        (_, i) => utf8(regionKey(i + 1)),
      );
      await client.splitRegions(splitKeys);
      const keys: string[] = [];
      for (let r = 0; r < BALANCE_REGIONS; r++) {
        for (let k = 0; k < KEYS_PER_REGION; k++) keys.push(`${regionKey(r)}-${k}`);
      }
      await client.batchPut(keys.map((key) => ({ key: utf8(key), value: utf8(key) })));
      await waitForSpread(`PD to know ${BALANCE_REGIONS} regions, each with 3 voters`, pd, {
        storeIds,
        done: (s) => s.regions.length === BALANCE_REGIONS && s.unhealthy === 0,
        timeoutMs: REPLICATION_THREE_VOTERS_TIMEOUT_MS,
      });

      // One writer in each of LIVE_WRITER_REGIONS regions, so moves and transfers meet writes.
      const liveClient = client;
      const writerSets = LIVE_WRITER_REGIONS.map((r) =>
        startWriters(liveClient, { prefix: `${regionKey(r)}-live-`, count: 1 })
      );
      const writers = {
        failures: () => writerSets.reduce((n, w) => n + w.failures(), 0),
        lastError: () => writerSets.map((w) => w.lastError()).filter((e) => e !== "").join("; "),
        acknowledged: () => writerSets.flatMap((w) => w.acknowledged),
        stop: () => Promise.all(writerSets.map((w) => w.stop())),
      };
      let joined: Spread;
      let drained: Spread;
      let drainedId: bigint;
      try {
        // 1. A fourth store joins.
        await cluster.addStore();
        const newId = cluster.storeId(3);
        const share = (BALANCE_REGIONS * 3) / 4;
        joined = await waitForSpread(
          `store ${newId} to hold ${share} ± ${BALANCE_REPLICA_SLACK} replicas and leaders to spread`,
          pd,
          {
            storeIds,
            done: (s) =>
              s.regions.length === BALANCE_REGIONS && s.unhealthy === 0 &&
              Math.abs((s.replicas.get(newId) ?? 0) - share) <= BALANCE_REPLICA_SLACK &&
              storeIds().every((id) =>
                Math.abs((s.replicas.get(id) ?? 0) - share) <= BALANCE_REPLICA_SLACK
              ) &&
              leadersSpread(s, storeIds()),
            timeoutMs: BALANCE_TIMEOUT_MS,
            operators,
          },
        );
        assert.equal(
          writers.failures(),
          0,
          `a write failed while balancing: ${writers.lastError()}`,
        );

        // 2. The store leading the most regions is drained.
        drainedId = [...joined.leaders.entries()].sort((a, b) => b[1] - a[1])[0]![0];
        const run = await ctl(["--pd", cluster.pdAddr, "store", "delete", String(drainedId)]);
        assert.equal(run.code, 0, run.stderr);
        assert.match(run.stdout, /Offline/);
        const rest = () => storeIds().filter((id) => id !== drainedId);
        drained = await waitForSpread(`store ${drainedId}'s replicas to move away`, pd, {
          storeIds,
          done: (s) =>
            s.regions.length === BALANCE_REGIONS && s.unhealthy === 0 &&
            (s.replicas.get(drainedId) ?? 0) === 0,
          timeoutMs: DRAIN_TIMEOUT_MS,
          operators,
        });
        await waitFor(`store ${drainedId} to be Tombstone`, async () => {
          const store = await pd.getStore(drainedId);
          return store.state === metapb.StoreState.Tombstone;
        }, DRAIN_TIMEOUT_MS);
        await waitFor("PD's operators to end", async () => {
          await operators.sample();
          return operators.running() === 0;
        }, DRAIN_TIMEOUT_MS);
        // Each remaining store holds every region once more: 3 stores, 3 voters each.
        for (const id of rest()) assert.equal(drained.replicas.get(id), BALANCE_REGIONS);
      } finally {
        await writers.stop();
      }
      assert.equal(writers.failures(), 0, `a write failed: ${writers.lastError()}`);
      const acknowledged = writers.acknowledged();
      assert.ok(acknowledged.length > 0, "the writers wrote nothing");

      console.log(`balance: ${operators.summary()}`);
      assert.deepEqual(operators.failed(), [], "an operator ended other than in success");
      // Operators whose final status GetOperator no longer shows ("ENDED") are covered here.
      const pdLog = await Deno.readTextFile(`${cluster.pd.dataDir}.server.log`);
      const timedOut = pdLog.split("\n").filter((line) => line.includes("operator timed out"));
      assert.deepEqual(timedOut, [], "PD timed an operator out");
      for (const [kind, most] of operators.maxRunning) {
        const limit = LIMITS[kind];
        if (limit !== undefined) {
          assert.ok(most <= limit, `${most} ${kind} operators ran at once; the limit is ${limit}`);
        }
      }
      assert.ok(
        operators.seen.size > 0 &&
          [...operators.seen.values()].some((op) => op.desc === "balance-region"),
        "no balance-region operator was seen",
      );
      const got = await client.batchGet(keys);
      assert.equal(got.length, keys.length, "a key written before the moves is missing");
      for (const pair of got) assert.equal(fromUtf8(pair.value), fromUtf8(pair.key));
      const live = new Set(
        (await client.batchGet(acknowledged)).filter((p) => fromUtf8(p.value) === fromUtf8(p.key))
          .map((p) => fromUtf8(p.key)),
      );
      const missing = acknowledged.filter((key) => !live.has(key));
      assert.deepEqual(missing.slice(0, 5), [], `${missing.length} acknowledged keys missing`);
      console.log(
        `balance: joined: ${describe(joined, storeIds())}; drained store ${drainedId}: ` +
          `${describe(drained, storeIds())}; ${acknowledged.length} live writes, ` +
          `${keys.length} keys read back`,
      );
      failed = false;
    } finally {
      client?.close();
      pd.close();
      admin.close();
      await cluster.stop({ keepLogs: failed });
    }
  },
});
