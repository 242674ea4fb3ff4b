/**
 * What idle regions cost (issue #12 item 3): three stores of the in-process raftstore harness
 * (src/raftstore/testing/cluster.ts, memory engines and transport) hold `--regions` regions
 * (default 10 000, made by BatchSplits, leaders spread evenly over the stores by transfers). With
 * no traffic, `--seconds` of real-time ticks (100 ms each, RAFTSTORE_TICK_MS) are replayed and
 * each store's own work — its ticks and its rounds — is timed, with `hibernate-regions` on and
 * off. The figure is each store's busy time over the simulated time: the share of a core the
 * store would use at that tick rate. Transport delivery (an array push per message here) is not
 * counted; in a store process the main thread's gRPC carries messages, and that cost scales with
 * the messages counted below.
 *
 * Run: `deno run -A bench/idle_bench.ts [--regions 10000] [--seconds 10]`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { RAFTSTORE_TICK_MS } from "../src/constants.ts";
import { Cluster } from "../src/raftstore/testing/cluster.ts";
import { printTable } from "./report.ts";

/** Split keys per BatchSplit while making the regions. */
const SPLIT_BATCH = 500;
/** Ticks allowed for the regions to settle (leaders elected, transfers done, asleep). */
const SETTLE_TICKS = 200;

interface IdleCost {
  cpuPercentPerStore: number[];
  peerTicks: number;
  messages: number;
  awakeAtEnd: number;
}

function key(i: number): string {
  return `r${String(i).padStart(6, "0")}`;
}

async function makeCluster(regions: number, hibernateRegions: boolean): Promise<Cluster> {
  const c = await Cluster.start({ storeCount: 3, seed: 1, config: { hibernateRegions } });
  for (let from = 1; from < regions; from += SPLIT_BATCH) {
    const keys: string[] = [];
    for (let i = from; i < Math.min(from + SPLIT_BATCH, regions); i++) keys.push(key(i));
    const result = await c.split(keys, { maxTicks: 400 });
    if (!result.ok) throw new Error(`split at ${keys[0]}: ${JSON.stringify(result.error)}`);
  }
  // Spread leaders as PD's balancer would: region i led from store i mod 3.
  const leaderStore = c.leader()!.meta.storeId;
  let i = 0;
  for (const peer of c.store(leaderStore).peers()) {
    const target = c.storeIds[i++ % 3]!;
    if (target === leaderStore || !peer.isLeader()) continue;
    const to = peer.region().peers.find((p) => p.storeId === target)!;
    c.store(leaderStore).transferLeader(peer.regionId, to.id);
  }
  await c.tick(SETTLE_TICKS);
  return c;
}

async function measure(c: Cluster, seconds: number): Promise<IdleCost> {
  const ticks = Math.round(seconds * 1000 / RAFTSTORE_TICK_MS);
  const busyMs = c.storeIds.map(() => 0);
  const peerTicksBefore = c.storeIds.reduce((n, id) => n + c.store(id).hibernation().peerTicks, 0);
  let messages = 0;
  c.transport.addFilter({ name: "count", decide: () => (messages++, "deliver") });
  for (let t = 0; t < ticks; t++) {
    c.storeIds.forEach((id, i) => {
      const t0 = performance.now();
      c.store(id).tick();
      busyMs[i]! += performance.now() - t0;
    });
    for (let r = 0; r < 16; r++) {
      c.transport.advanceRound();
      let worked = false;
      for (const [i, id] of c.storeIds.entries()) {
        const t0 = performance.now();
        if (await c.store(id).round()) worked = true;
        busyMs[i]! += performance.now() - t0;
      }
      if (!worked) break;
    }
  }
  return {
    cpuPercentPerStore: busyMs.map((ms) => 100 * ms / (seconds * 1000)),
    peerTicks: c.storeIds.reduce((n, id) => n + c.store(id).hibernation().peerTicks, 0) -
      peerTicksBefore,
    messages,
    awakeAtEnd: c.storeIds.reduce((n, id) => n + c.store(id).hibernation().awake, 0),
  };
}

/** Runs the comparison and prints it. */
export async function benchIdle(options: { regions: number; seconds: number }): Promise<void> {
  const lines: string[][] = [];
  for (const hibernate of [true, false]) {
    const setupStart = performance.now();
    const c = await makeCluster(options.regions, hibernate);
    const setupS = (performance.now() - setupStart) / 1000;
    const cost = await measure(c, options.seconds);
    lines.push([
      hibernate ? "on" : "off",
      String(options.regions),
      cost.cpuPercentPerStore.map((p) => p.toFixed(2)).join(" / "),
      String(cost.peerTicks),
      String(cost.messages),
      String(cost.awakeAtEnd),
      setupS.toFixed(1),
    ]);
  }
  printTable(
    `Idle regions on 3 stores: ${options.seconds} s of ${RAFTSTORE_TICK_MS} ms ticks, no traffic`,
    [
      "hibernate",
      "regions",
      "% of a core per store (1/2/3)",
      "peer ticks",
      "messages",
      "awake",
      "setup s",
    ],
    lines,
  );
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      regions: { type: "string", default: "10000" },
      seconds: { type: "string", default: "10" },
    },
  });
  await benchIdle({ regions: Number(values.regions), seconds: Number(values.seconds) });
}
