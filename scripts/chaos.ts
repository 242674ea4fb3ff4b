/**
 * The long chaos run: `deno task chaos -- --seconds N --seed S [--stores K]`.
 *
 * Starts 3 PD members and K stores (3–5, default 3) on loopback and runs the fault suite of
 * `tests/chaos/run.ts` for N seconds: a seeded nemesis (kill -9 and restart of a store or a PD
 * member, a paused store, a cut link, an isolated store, a leader transfer, a forced split or merge, one
 * at a time) under a raw register workload checked for linearizability, an acknowledged-write
 * workload checked for losses, and the bank checked for its total. Prints the nemesis's
 * timeline, the counts and the verdicts. Exits 1 on a failing verdict or a harness failure
 * (the cluster's logs, the history and the timeline are kept, and where is printed), 2 on bad
 * flags. `--cas-only`: the register clients write by CAS only (no plain puts; see
 * `ChaosOptions.registerPuts`). Without `--seed`, a fresh seed is drawn and printed: the same seed replays the same
 * schedule of faults (not the processes' timing).
 */
import { parseArgs } from "node:util";
import { seedFromEnv } from "../src/util/random.ts";
import { CHAOS_MAX_STORES, CHAOS_MIN_STORES, runChaos } from "../tests/chaos/run.ts";

const USAGE = "usage: deno task chaos -- [--seconds N] [--seed S] [--stores 3..5] [--cas-only]";

function parse(
  args: string[],
): { seconds: number; seed: number; stores: number; registerPuts: boolean } | null {
  const { values } = parseArgs({
    args: args[0] === "--" ? args.slice(1) : args,
    options: {
      seconds: { type: "string", default: "120" },
      seed: { type: "string" },
      stores: { type: "string", default: String(CHAOS_MIN_STORES) },
      "cas-only": { type: "boolean", default: false },
    },
  });
  const seconds = Number(values.seconds);
  const stores = Number(values.stores);
  const seed = values.seed === undefined ? seedFromEnv() : Number(values.seed);
  const valid = Number.isFinite(seconds) && seconds > 0 && Number.isSafeInteger(seed) &&
    seed >= 0 && seed < 2 ** 32 && Number.isInteger(stores) && stores >= CHAOS_MIN_STORES &&
    stores <= CHAOS_MAX_STORES;
  return valid ? { seconds, seed, stores, registerPuts: !values["cas-only"] } : null;
}

async function main(args: string[]): Promise<number> {
  let flags;
  try {
    flags = parse(args);
  } catch (error) {
    console.error(`chaos: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (flags === null) {
    console.error(
      `chaos: --seconds > 0, --seed in [0, 2^32), --stores in ` +
        `${CHAOS_MIN_STORES}..${CHAOS_MAX_STORES}\n${USAGE}`,
    );
    return 2;
  }
  const result = await runChaos(flags);
  return result.ok ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
