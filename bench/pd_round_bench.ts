/**
 * How long one PD scheduling round takes in-process (issue #11: at 10,000 regions a round took
 * 0.9–1.6 s at leader-schedule-limit 64, for a 1 s schedule interval).
 *
 * The cluster: `--stores` stores, `--regions` regions of 96 MiB with their three replicas on
 * stores 1–3 and every leader on store 1, so balance-leader has work in every round and, with
 * more than three stores, balance-region too (stores 4 and up start empty). Each measured
 * round is the pure `scheduleRound()` only; between rounds the simulated stores carry out what
 * PD asked and heartbeat (not timed, two steps, so the operators end and the next round has
 * room again), the clock moves 1 s.
 *
 *   deno run -A bench/pd_round_bench.ts                      the table: 1k/10k/100k regions,
 *                                                            3 and 5 stores, limits 4 and 64
 *   deno run -A bench/pd_round_bench.ts --regions 10000 --stores 3 --limit 64 --rounds 5
 *
 * `deno task bench -- --only pd` prints the 10k-region cells (`benchPdRounds`).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { MemoryEngine } from "../src/engine/memory_engine.ts";
import { EngineStorage } from "../src/pd/engine_storage.ts";
import { PlacementDriver } from "../src/pd/placement_driver.ts";
import { SimCluster } from "../src/pd/sim_cluster.ts";
import { SeededRandom } from "../src/util/random.ts";
import { printTable } from "./report.ts";

const START_MS = 1_700_000_000_000;
/** Region ids start here (below are the bootstrap region and the stores' ids). */
const FIRST_REGION_ID = 10;

/** One cell of the table. */
export interface RoundCell {
  regions: number;
  stores: number;
  limit: number;
  /** Measured round times, ms. */
  roundsMs: number[];
  /** Operators added per measured round. */
  added: number[];
}

/** Builds the cluster of the module header and times `rounds` scheduling rounds. */
export function measureRounds(
  shape: { regions: number; stores: number; limit: number; rounds: number },
): RoundCell {
  const clock = { nowMs: START_MS };
  const pd = PlacementDriver.open({
    storage: new EngineStorage({ engine: new MemoryEngine() }),
    clock: { nowMs: () => clock.nowMs },
    random: new SeededRandom(7),
    config: { leaderScheduleLimit: shape.limit, regionScheduleLimit: shape.limit },
    reservedIdsThrough: BigInt(FIRST_REGION_ID + shape.regions) * 100n + 100n,
  });
  const refused = pd.bootstrap({
    store: { id: 1n, address: "s1" },
    region: {
      id: 1n,
      startKey: new Uint8Array(0),
      endKey: new Uint8Array(0),
      regionEpoch: { confVer: 1n, version: 1n },
      peers: [{ id: 101n, storeId: 1n, role: "Voter" }],
    },
  });
  if (refused !== null) throw new Error(refused.message);
  for (let id = 2; id <= shape.stores; id++) {
    const put = pd.putStore({ id: BigInt(id), address: `s${id}` });
    if (put !== null) throw new Error(put.message);
  }
  const sim = new SimCluster(pd);
  sim.heartbeatStores();
  for (let id = FIRST_REGION_ID; id < FIRST_REGION_ID + shape.regions; id++) {
    const added = sim.addRegion({
      id: BigInt(id),
      storeIds: [1n, 2n, 3n],
      leaderStoreId: 1n,
      sizeMb: 96,
    });
    if (added !== null) throw new Error(added.message);
  }
  const cell: RoundCell = { ...shape, roundsMs: [], added: [] };
  for (let round = 0; round <= shape.rounds; round++) {
    sim.heartbeatStores();
    const started = performance.now();
    const result = pd.scheduleRound();
    const elapsedMs = performance.now() - started;
    // Round 0 warms the JIT up; it is not counted.
    if (round > 0) {
      cell.roundsMs.push(elapsedMs);
      cell.added.push(result.added.length);
    }
    // The first step sends each new operator's instruction, the second carries it out, so
    // every round finds room under the limits again.
    sim.step();
    sim.step();
    clock.nowMs += 1_000;
  }
  return cell;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

/** The cells of one row: regions, stores, limit, round p50 and max ms, operators added p50. */
export function roundRow(cell: RoundCell): string[] {
  const ms = (value: number) => value.toFixed(value < 10 ? 2 : 0);
  return [
    cell.regions.toLocaleString("en-US"),
    String(cell.stores),
    String(cell.limit),
    ms(median(cell.roundsMs)),
    ms(Math.max(...cell.roundsMs)),
    String(Math.round(median(cell.added))),
  ];
}

/** The table's header, in `roundRow`'s order. */
export const ROUND_TABLE_HEADER = [
  "regions",
  "stores",
  "limit",
  "round p50 ms",
  "round max ms",
  "operators added p50",
];

/**
 * Times the rounds of every (stores, limit) pair at `regions` regions and prints them as a
 * `bench/report.ts` table (`deno task bench -- --only pd` runs 10k regions, about 5 s).
 */
export function benchPdRounds(
  shape: { regions: number; stores: readonly number[]; limits: readonly number[]; rounds: number },
): RoundCell[] {
  const cells: RoundCell[] = [];
  for (const stores of shape.stores) {
    for (const limit of shape.limits) {
      cells.push(measureRounds({ regions: shape.regions, stores, limit, rounds: shape.rounds }));
    }
  }
  printTable(
    `PD: one scheduling round in-process (scheduleRound(), ${shape.rounds} rounds after a ` +
      "warm-up; every leader on store 1; limit = leader- and region-schedule-limit)",
    ROUND_TABLE_HEADER,
    cells.map(roundRow),
  );
  return cells;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      regions: { type: "string" },
      stores: { type: "string" },
      limit: { type: "string" },
      rounds: { type: "string", default: "5" },
    },
  });
  const list = (given: string | undefined, fallback: number[]) =>
    given === undefined ? fallback : given.split(",").map(Number);
  console.log(`| ${ROUND_TABLE_HEADER.join(" | ")} |`);
  console.log(`|${ROUND_TABLE_HEADER.map(() => "---|").join("")}`);
  for (const regions of list(values.regions, [1_000, 10_000, 100_000])) {
    for (const stores of list(values.stores, [3, 5])) {
      for (const limit of list(values.limit, [4, 64])) {
        const cell = measureRounds({ regions, stores, limit, rounds: Number(values.rounds) });
        console.log(`| ${roundRow(cell).join(" | ")} |`);
      }
    }
  }
}
