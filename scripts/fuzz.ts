/**
 * The long fuzz run: `deno task fuzz -- --seconds N --seed S [--concurrency C]`.
 *
 * Starts a store (a fresh data directory, ports picked by the system), runs the request fuzzer
 * of `tests/fuzz/fuzzer.ts` against it for N seconds, stops it, and prints the seed, the
 * requests sent by kind and the answers by status. Exits 1 on any failure (the store exited,
 * a hang, an INTERNAL answer, a dead worker, a canary lost), keeping the data directory and
 * logs and printing where; 2 on bad flags. Without `--seed`, a fresh seed is drawn (and
 * printed): the same seed sends the same requests again.
 */
import { parseArgs } from "node:util";
import { startServer } from "../tests/e2e/lib.ts";
import { formatReport, runFuzz } from "../tests/fuzz/fuzzer.ts";
import { seedFromEnv } from "../src/util/random.ts";

const USAGE =
  "usage: deno task fuzz -- [--seconds N] [--seed S] [--concurrency C] [--verbose] [--check-every N] [--strict]";

function parse(
  args: string[],
): {
  seconds: number;
  seed: number;
  concurrency: number;
  verbose: boolean;
  checkEvery: number;
  strict: boolean;
} | null {
  const { values } = parseArgs({
    args: args[0] === "--" ? args.slice(1) : args,
    options: {
      seconds: { type: "string", default: "60" },
      seed: { type: "string" },
      concurrency: { type: "string", default: "8" },
      verbose: { type: "boolean", default: false },
      "check-every": { type: "string", default: "0" },
      strict: { type: "boolean", default: false },
    },
  });
  const seconds = Number(values.seconds);
  const concurrency = Number(values.concurrency);
  const seed = values.seed === undefined ? seedFromEnv() : Number(values.seed);
  const valid = Number.isFinite(seconds) && seconds > 0 && Number.isSafeInteger(concurrency) &&
    concurrency >= 1 && Number.isSafeInteger(seed) && seed >= 0 && seed < 2 ** 32;
  const checkEvery = Number(values["check-every"]);
  return valid && Number.isSafeInteger(checkEvery) && checkEvery >= 0
    ? { seconds, seed, concurrency, verbose: values.verbose, checkEvery, strict: values.strict }
    : null;
}

async function main(args: string[]): Promise<number> {
  let flags;
  try {
    flags = parse(args);
  } catch (error) {
    console.error(`fuzz: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (flags === null) {
    console.error(`fuzz: --seconds > 0, --concurrency ≥ 1 and --seed in [0, 2^32)\n${USAGE}`);
    return 2;
  }
  console.log(`fuzz: seed ${flags.seed}, ${flags.seconds} s, ${flags.concurrency} in flight`);
  const server = await startServer();
  const exited = server.status().then((status) =>
    `exit code ${status.code}${status.signal ? `, signal ${status.signal}` : ""}`
  );
  let failed = true;
  try {
    const report = await runFuzz(server, {
      seed: flags.seed,
      durationMs: flags.seconds * 1000,
      concurrency: flags.concurrency,
      verbose: flags.verbose,
      checkEvery: flags.checkEvery,
      strict: flags.strict,
      exited,
      readLog: () => Deno.readTextFile(`${server.dataDir}.server.log`).catch(() => ""),
      log: (line) => console.log(line),
    });
    console.log(formatReport(report));
    failed = report.failures.length > 0;
  } finally {
    const code = await server.stop().catch((error) => String(error));
    if (code !== 0) {
      console.error(`fuzz: FAILURE the store stopped with ${code}, not 0`);
      failed = true;
    }
    const parent = server.dataDir.replace(/\/data$/, "");
    if (failed) console.error(`fuzz: kept the data directory and logs in ${parent}`);
    else await Deno.remove(parent, { recursive: true });
  }
  return failed ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
