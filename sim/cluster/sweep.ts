/**
 * `deno task sim -- --cluster …`: one seed of the whole-cluster simulator, verbose, or a sweep
 * of seeds, with a deliberate store bug switched on if asked (test-only flags).
 *
 *   deno task sim -- --cluster --seed 7                 one seed: settings, faults, result
 *   deno task sim -- --cluster --seeds 500 [--from N]   seeds N..N+499; failures print traces
 *   deno task sim -- --cluster --seeds 100 --bug skipEpochCheckAtApply
 *   deno task sim -- --cluster --bank --seeds 100      the bank through the real client too
 *   deno task sim -- --cluster --seeds 60 --bug tsoGoesBack   (a bank bug: implies --bank)
 *   deno task sim -- --cluster --seeds 100 --pd real  every seed with the real PD (or oracle)
 *   deno task sim -- --cluster --seeds 100 --pd real --pd-members 3   … replicated, 3 members
 *
 * @module
 */

import type { PeerTestingBugs } from "../../src/raftstore/peer_config.ts";
import { type BankBugs, formatClusterResult, runClusterSimulation } from "./cluster_simulation.ts";
import { SIM_PD_MEMBER_COUNT } from "./sim_pd_members.ts";
import type { SimPdBugs } from "./sim_placement_driver.ts";

/** Deliberate bugs of the simulated PD and store glue (they switch the bank on), by name. */
export const BANK_BUGS: Record<string, BankBugs> = {
  tsoGoesBack: { tsoGoesBack: true },
  skipMaxTsSync: { skipMaxTsSync: true },
};

/** Deliberate bugs of PD's edge, by name (they bite in seeds with several PD members). */
export const PD_BUGS: Record<string, SimPdBugs> = {
  pdAnswersBeforeCommit: { answerBeforeCommit: true },
  pdTsoWithoutLease: { tsoWithoutLease: true },
};

/** The deliberate bugs a sweep can switch on, by name. */
export const CLUSTER_BUGS: Record<string, PeerTestingBugs> = {
  readWithoutLease: { readWithoutLease: true },
  serveReadsOnFollowers: { serveReadsOnFollowers: true },
  skipEpochCheckAtApply: { skipEpochCheckAtApply: true },
  ackOverwrittenProposals: { ackOverwrittenProposals: true },
  raftDoubleVote: { raft: { doubleVote: true } },
  raftCommitPreviousTerm: { raft: { commitPreviousTermByCount: true } },
};

/** What the command line asked for. */
export interface SweepArgs {
  seed?: number;
  seeds?: number;
  from: number;
  faultTicks?: number;
  bug?: string;
  /** Run the bank through the real client in every seed (`--bank`). */
  bank?: boolean;
  /** `real` or `oracle`: who repairs and balances in every seed (default: each seed's choice). */
  pd?: string;
  /** `1` or `3`: PD members in every seed with the real PD (default: each seed's choice). */
  pdMembers?: string;
  verbose: boolean;
}

/** Runs what `args` asks; returns the exit status (1 if any seed failed, 2 on bad arguments). */
export async function clusterMain(args: SweepArgs): Promise<number> {
  const bugs = args.bug === undefined ? undefined : CLUSTER_BUGS[args.bug];
  const bankBugs = args.bug === undefined ? undefined : BANK_BUGS[args.bug];
  const pdBugs = args.bug === undefined ? undefined : PD_BUGS[args.bug];
  if (
    args.bug !== undefined && bugs === undefined && bankBugs === undefined && pdBugs === undefined
  ) {
    const names = [
      ...Object.keys(CLUSTER_BUGS),
      ...Object.keys(BANK_BUGS),
      ...Object.keys(PD_BUGS),
    ];
    console.error(`unknown --bug ${args.bug}; one of ${names.join(", ")}`);
    return 2;
  }
  const bank = args.bank === true;
  if (args.pd !== undefined && args.pd !== "real" && args.pd !== "oracle") {
    console.error(`unknown --pd ${args.pd}; real or oracle`);
    return 2;
  }
  const pd = args.pd as "real" | "oracle" | undefined;
  if (args.pdMembers !== undefined && args.pdMembers !== "1" && args.pdMembers !== "3") {
    console.error(`unknown --pd-members ${args.pdMembers}; 1 or 3`);
    return 2;
  }
  const pdMembers = args.pdMembers === undefined ? undefined : Number(args.pdMembers) as 1 | 3;
  if (args.seeds === undefined) {
    const r = await runClusterSimulation({
      seed: args.seed ?? 1,
      bugs,
      bank,
      bankBugs,
      faultTicks: args.faultTicks,
      pd,
      pdMembers,
      pdBugs,
    });
    console.log(formatClusterResult(r, { verbose: true }));
    return r.ok ? 0 : 1;
  }
  const failed: number[] = [];
  const started = performance.now();
  let ops = 0;
  let realPdSeeds = 0;
  let replicatedPdSeeds = 0;
  for (let seed = args.from; seed < args.from + args.seeds; seed++) {
    const r = await runClusterSimulation({
      seed,
      bugs,
      bank,
      bankBugs,
      faultTicks: args.faultTicks,
      pd,
      pdMembers,
      pdBugs,
    });
    ops += r.stats.calls;
    if (r.settings.realPd) realPdSeeds++;
    if (r.settings.realPd && r.settings.pdMembers > 1) replicatedPdSeeds++;
    if (!r.ok) {
      failed.push(seed);
      console.log(formatClusterResult(r));
    } else if (args.verbose) {
      console.log(formatClusterResult(r));
    }
  }
  const secs = (performance.now() - started) / 1000;
  console.log(
    `cluster: swept seeds ${args.from}..${args.from + args.seeds - 1}` +
      `${args.bug === undefined ? "" : ` with bug ${args.bug}`}: ${
        args.seeds - failed.length
      } ok, ` +
      `${failed.length} failed${failed.length > 0 ? ` [${failed.join(", ")}]` : ""} in ` +
      `${secs.toFixed(1)}s (${ops} client ops; ${realPdSeeds} seeds with the real PD, ` +
      `${replicatedPdSeeds} of them with ${SIM_PD_MEMBER_COUNT} members)`,
  );
  return failed.length === 0 ? 0 : 1;
}
