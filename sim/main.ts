/**
 * `deno task sim`: run the deterministic simulator.
 *
 *   deno task sim --seed 7 --steps 20000      one seed, verbose
 *   deno task sim --seeds 1000 [--steps N]    a sweep of seeds 1..1000; failures print traces
 *   deno task sim --seeds 200 --bug doubleVote   a sweep with a deliberate bug (test-only flag)
 *   deno task sim -- --cluster --seeds 500      the whole-cluster simulator (sim/cluster/sweep.ts)
 *   deno task sim -- --cluster --bank --seeds 100   … with the bank through the real client
 *
 * Exit status 1 if any seed fails.
 *
 * @module
 */

import { parseArgs } from "node:util";
import type { RaftTestingBugs } from "../src/raft/mod.ts";
import { clusterMain } from "./cluster/sweep.ts";
import { formatResult, runSimulation } from "./simulation.ts";

const BUGS: Record<string, RaftTestingBugs> = {
  doubleVote: { doubleVote: true },
  commitPreviousTerm: { commitPreviousTermByCount: true },
  leaseReadWithoutCheck: { leaseReadWithoutCheck: true },
  readIndexWithoutHeartbeat: { readIndexWithoutHeartbeat: true },
  probeNeverResumes: { probeNeverResumes: true },
};

async function main(): Promise<number> {
  const { values } = parseArgs({
    // `deno task sim -- --cluster …` hands the "--" on: skip it.
    args: Deno.args[0] === "--" ? Deno.args.slice(1) : Deno.args,
    options: {
      seed: { type: "string" },
      seeds: { type: "string" },
      from: { type: "string", default: "1" },
      steps: { type: "string", default: "20000" },
      bug: { type: "string" },
      verbose: { type: "boolean", default: false },
      cluster: { type: "boolean", default: false },
      bank: { type: "boolean", default: false },
      pd: { type: "string" },
      "pd-members": { type: "string" },
      ticks: { type: "string" },
    },
  });
  if (values.cluster) {
    return await clusterMain({
      seed: values.seed === undefined ? undefined : Number(values.seed),
      seeds: values.seeds === undefined ? undefined : Number(values.seeds),
      from: Number(values.from),
      faultTicks: values.ticks === undefined ? undefined : Number(values.ticks),
      bug: values.bug,
      bank: values.bank,
      pd: values.pd,
      pdMembers: values["pd-members"],
      verbose: values.verbose,
    });
  }
  const steps = Number(values.steps);
  const bugs = values.bug === undefined ? undefined : BUGS[values.bug];
  if (values.bug !== undefined && bugs === undefined) {
    console.error(`unknown --bug ${values.bug}; one of ${Object.keys(BUGS).join(", ")}`);
    return 2;
  }
  if (values.seeds === undefined) {
    const seed = Number(values.seed ?? "1");
    const r = runSimulation({ seed, steps, bugs });
    console.log(formatResult(r, { verbose: true }));
    return r.ok ? 0 : 1;
  }
  const from = Number(values.from);
  const count = Number(values.seeds);
  const failed: number[] = [];
  const started = performance.now();
  let totalSteps = 0;
  for (let seed = from; seed < from + count; seed++) {
    const r = runSimulation({ seed, steps, bugs });
    totalSteps += r.steps;
    if (!r.ok) {
      failed.push(seed);
      console.log(formatResult(r));
    } else if (values.verbose) {
      console.log(formatResult(r));
    }
  }
  const secs = (performance.now() - started) / 1000;
  console.log(
    `swept seeds ${from}..${from + count - 1} (${steps} steps each${
      values.bug ? `, bug ${values.bug}` : ""
    }): ` +
      `${count - failed.length} ok, ${failed.length} failed${
        failed.length ? ` [${failed.join(", ")}]` : ""
      } ` +
      `in ${secs.toFixed(1)}s (${Math.round(totalSteps / secs)} steps/s)`,
  );
  return failed.length === 0 ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main());
