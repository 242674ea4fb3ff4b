/**
 * Runs the scheduling datadriven files in `testdata/`: a cluster described as text, scheduling
 * rounds, and a simulated cluster carrying out what PD asks. Each file's first comment line
 * names the behaviour; it is the test's name. `REWRITE=1 deno test -A src/pd/schedule_test.ts`
 * regenerates the expected outputs (review the diff).
 *
 * Commands:
 * - `cluster [max-replicas=N] [store-down=SECONDS] [max-merge-size=MiB] [max-merge-keys=N]
 *   [split-merge=SECONDS] [merge-limit=N] [one-way]`: a new bootstrapped cluster on store 1.
 * - `store ID…`: PutStore and a first heartbeat for each.
 * - `region ID peers=(S,…) leader=S [size=MiB] [keys=N]`, `regions FIRST..LAST peers=(S,…)
 *   leaders=(S,…) [size=MiB] [keys=N]` (leaders taken in turn): regions with their first
 *   heartbeat; region N covers keys [rN, rN+1), so regions with consecutive ids are adjacent.
 * - `split REGION`: the region splits in two (AskBatchSplit, ReportBatchSplit, heartbeats).
 * - `merge-fails on|off`: stores roll merges back instead of committing them.
 * - `merge-check REGION`: what the merge checker proposes for the region, or why nothing.
 * - `tree`: the regions PD knows, in key order.
 * - `tick SECONDS`: the clock moves; `kill S`: store S sends nothing more;
 *   `heartbeat`: every live store heartbeats.
 * - `delete-store S`: `ctl store delete S`.
 * - `schedule [only=replica|merge|leader|region]`: one round; prints the operators added, timed
 *   out and the stores buried.
 * - `step [times=N]`: leaders carry out their instructions and heartbeat, N times.
 * - `operators`, `stores`, `operator REGION`: what PD holds.
 * - `settle [rounds=N]`: heartbeat, schedule, step, until nothing runs and nothing is added.
 */
import { runDataDriven, type TestCase } from "../raft/datadriven.ts";
import { SeededRandom } from "../util/random.ts";
import { MemoryEngine } from "../engine/memory_engine.ts";
import { EngineStorage } from "./engine_storage.ts";
import { PdError } from "./errors.ts";
import type { ScheduleConfig } from "./config.ts";
import { checkMerge } from "./merge_checker.ts";
import { describeOperator, describeStep } from "./operator.ts";
import { PlacementDriver } from "./placement_driver.ts";
import { scheduleContext } from "./schedule_context.ts";
import { SimCluster } from "./sim_cluster.ts";

const START_MS = 1_700_000_000_000;

function arg(c: TestCase, key: string): string[] | undefined {
  return c.args.find((a) => a.key === key)?.values;
}

function num(c: TestCase, key: string, fallback: number): number {
  const value = arg(c, key)?.[0];
  return value === undefined ? fallback : Number(value);
}

function ids(values: string[] | undefined): bigint[] {
  return (values ?? []).map((v) => BigInt(v));
}

/** A PD, its clock, and the simulated stores, driven by the commands above. */
export class ScheduleEnv {
  nowMs = START_MS;
  pd!: PlacementDriver;
  sim!: SimCluster;

  constructor() {
    this.reset({});
  }

  reset(config: Partial<ScheduleConfig>): void {
    this.nowMs = START_MS;
    const storage = new EngineStorage({ engine: new MemoryEngine() });
    this.pd = PlacementDriver.open({
      storage,
      clock: { nowMs: () => this.nowMs },
      random: new SeededRandom(1),
      config,
      // Peer ids the tests write by hand (region * 100 + store) stay below this.
      reservedIdsThrough: 1_000_000n,
    });
    const refused = this.pd.bootstrap({
      store: { id: 1n, address: "store1" },
      region: {
        id: 1n,
        startKey: new Uint8Array(0),
        endKey: new Uint8Array(0),
        regionEpoch: { confVer: 1n, version: 1n },
        peers: [{ id: 101n, storeId: 1n, role: "Voter" }],
      },
    });
    if (refused !== null) throw new Error(refused.message);
    this.sim = new SimCluster(this.pd);
  }

  handle(c: TestCase): string {
    switch (c.command) {
      case "cluster":
        this.reset({
          maxReplicas: num(c, "max-replicas", 3),
          maxStoreDownTimeMs: num(c, "store-down", 60) * 1000,
          maxMergeRegionSizeMb: num(c, "max-merge-size", 20),
          maxMergeRegionKeys: num(c, "max-merge-keys", 200_000),
          splitMergeIntervalMs: num(c, "split-merge", 3600) * 1000,
          mergeScheduleLimit: num(c, "merge-limit", 8),
          enableOneWayMerge: arg(c, "one-way") !== undefined,
        });
        return "ok";
      case "store":
        return this.#stores(c);
      case "region":
      case "regions":
        return this.#regions(c);
      case "tick":
        this.nowMs += Number(c.args[0]!.key) * 1000;
        return "ok";
      case "kill":
        this.sim.dead.add(BigInt(c.args[0]!.key));
        return "ok";
      case "heartbeat":
        this.sim.heartbeatStores();
        return "ok";
      case "delete-store":
        return String(this.pd.deleteStore(BigInt(c.args[0]!.key)) ?? "ok");
      case "schedule":
        return this.#schedule(arg(c, "only")?.[0]);
      case "step":
        return this.#step(num(c, "times", 1));
      case "operators":
        return this.pd.controller.running().map(describeOperator).join("\n") || "none";
      case "operator": {
        const op = this.pd.getOperator(BigInt(c.args[0]!.key));
        return op instanceof PdError ? op.toString() : describeOperator(op);
      }
      case "stores":
        return this.describeStores();
      case "settle":
        return this.#settle(num(c, "rounds", 100));
      case "split": {
        const made = this.sim.split(BigInt(c.args[0]!.key));
        return made instanceof PdError ? made.toString() : `region ${made} split off`;
      }
      case "merge-fails":
        this.sim.failMerges = c.args[0]!.key === "on";
        return "ok";
      case "merge-check":
        return this.#mergeCheck(BigInt(c.args[0]!.key));
      case "tree":
        return this.#tree();
      default:
        throw new Error(`unknown command ${c.command}`);
    }
  }

  #stores(c: TestCase): string {
    for (const a of c.args) {
      const id = BigInt(a.key);
      const refused = this.pd.putStore({ id, address: `store${id}` });
      if (refused !== null) return refused.toString();
    }
    this.sim.heartbeatStores();
    return "ok";
  }

  #regions(c: TestCase): string {
    const [first, last] = c.command === "region"
      ? [Number(c.args[0]!.key), Number(c.args[0]!.key)]
      : c.args[0]!.key.split("..").map(Number) as [number, number];
    const storeIds = ids(arg(c, "peers"));
    const leaders = ids(arg(c, "leaders") ?? arg(c, "leader"));
    for (let id = first; id <= last; id++) {
      const refused = this.sim.addRegion({
        id: BigInt(id),
        storeIds,
        leaderStoreId: leaders[(id - first) % leaders.length]!,
        sizeMb: num(c, "size", 96),
        keys: num(c, "keys", 0),
      });
      if (refused !== null) return refused.toString();
    }
    return "ok";
  }

  #schedule(only: string | undefined): string {
    const parts = only === undefined ? undefined : {
      replica: only === "replica",
      merge: only === "merge",
      balanceLeader: only === "leader",
      balanceRegion: only === "region",
    };
    const result = this.pd.scheduleRound(parts);
    const lines = [
      ...result.timedOut.map((op) => `timeout: ${describeOperator(op)}`),
      ...result.buried.map((id) => `store ${id} is Tombstone`),
      ...result.added.map((op) => `add: ${describeOperator(op)}`),
    ];
    return lines.join("\n") || "nothing";
  }

  #step(times: number): string {
    const lines: string[] = [];
    for (let i = 0; i < times; i++) lines.push(...this.sim.step());
    return lines.join("\n") || "nothing";
  }

  /** Heartbeat, schedule, step until quiet; prints the rounds taken and the stores. */
  #settle(maxRounds: number): string {
    for (let round = 1; round <= maxRounds; round++) {
      this.sim.heartbeatStores();
      const idle = this.pd.controller.running().length === 0;
      const added = this.pd.scheduleRound().added.length;
      this.sim.step();
      this.nowMs += 1000;
      if (idle && added === 0) {
        return `settled after ${round} rounds\n${this.describeStores()}`;
      }
    }
    return `not settled after ${maxRounds} rounds\n${this.describeStores()}`;
  }

  #mergeCheck(regionId: bigint): string {
    const region = this.pd.cluster.regions.getById(regionId);
    if (region === null) return `no region ${regionId}`;
    const ctx = scheduleContext(this.pd, { nowMs: this.nowMs, random: new SeededRandom(0) });
    const proposal = checkMerge(ctx, region);
    if (typeof proposal === "string") return proposal;
    return proposal.source.steps.map(describeStep).join(", ");
  }

  #tree(): string {
    const text = (key: Uint8Array, empty: string) =>
      key.length === 0 ? empty : new TextDecoder().decode(key);
    return this.pd.cluster.regions.all().map((region) => {
      const { startKey, endKey, regionEpoch } = region.meta;
      const stores = region.meta.peers.map((peer) => peer.storeId).join(",");
      return `region ${region.meta.id} [${text(startKey, "''")}, ${text(endKey, "+inf")}) ` +
        `version=${regionEpoch.version} conf_ver=${regionEpoch.confVer} stores=(${stores}) ` +
        `size=${region.approximateSizeBytes / (1024n * 1024n)}MiB keys=${region.approximateKeys}`;
    }).join("\n");
  }

  describeStores(): string {
    const ctx = scheduleContext(this.pd, { nowMs: this.nowMs, random: new SeededRandom(0) });
    return this.pd.cluster.stores().map((store) => {
      const view = ctx.stores.get(store.meta.id);
      const live = this.pd.cluster.liveness(store, this.nowMs);
      const counts = view === undefined
        ? ""
        : ` regions=${view.regionCount} leaders=${view.leaderCount} size=${view.regionSizeMb}`;
      return `store ${store.meta.id}: ${store.meta.state} ${live}${counts}`;
    }).join("\n");
  }
}

const dir = new URL("./testdata/", import.meta.url);
const files = [...Deno.readDirSync(dir)]
  .filter((e) => e.isFile && e.name.endsWith(".txt"))
  .map((e) => e.name)
  .sort();

for (const file of files) {
  const url = new URL(file, dir);
  const text = Deno.readTextFileSync(url);
  const title = text.split("\n")[0]!.replace(/^#\s*/, "");
  Deno.test(`${title} (src/pd/testdata/${file})`, () => {
    const env = new ScheduleEnv();
    const { failures, rewritten } = runDataDriven({
      name: file,
      text,
      handler: (c) => env.handle(c),
    });
    if (Deno.env.get("REWRITE") === "1") {
      Deno.writeTextFileSync(url, rewritten);
      return;
    }
    if (failures.length > 0) throw new Error(failures.join("\n\n"));
  });
}
