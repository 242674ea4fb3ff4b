/**
 * `deno task compile`: single-file binaries with `deno compile` into bin/.
 *
 * `deno compile` embeds the `denort` runtime, which Deno downloads from its own server unless
 * `DENORT_BIN` names a local copy. Where neither can be had, this says so in one line and exits
 * with status 2, which the compile test reads as "skipped: no denort".
 */
import { parseArgs } from "node:util";

/** The binaries Basalt ships, by entry point. */
export const BINARIES: Record<string, string> = {
  "basalt-server": "src/server/main.ts",
  "basalt-ctl": "cli/main.ts",
};

/** Exit status meaning "no denort runtime available here". */
export const NO_DENORT_STATUS = 2;

/** Whether `deno compile` can get a runtime: `DENORT_BIN`, or a copy in Deno's cache. */
export function denortAvailable(): { available: boolean; reason: string } {
  const fromEnv = Deno.env.get("DENORT_BIN");
  if (fromEnv) {
    try {
      if (Deno.statSync(fromEnv).isFile) return { available: true, reason: fromEnv };
    } catch { /* reported below */ }
    return { available: false, reason: `DENORT_BIN=${fromEnv} does not exist` };
  }
  const home = Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`;
  try {
    for (const entry of Deno.readDirSync(`${home}/dl/release/v${Deno.version.deno}`)) {
      if (entry.name.startsWith("denort")) return { available: true, reason: "Deno's cache" };
    }
  } catch { /* no cache */ }
  return {
    available: false,
    reason: "no denort runtime: set DENORT_BIN to a denort " + Deno.version.deno +
      " binary (deno compile cannot download one here)",
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { out: { type: "string", default: "bin" } } });
  const denort = denortAvailable();
  if (!denort.available) {
    console.error(`compile skipped: ${denort.reason}`);
    Deno.exit(NO_DENORT_STATUS);
  }
  await Deno.mkdir(values.out!, { recursive: true });
  for (const [name, entry] of Object.entries(BINARIES)) {
    const output = `${values.out}/${name}`;
    const result = await new Deno.Command(Deno.execPath(), {
      args: ["compile", "-A", "--output", output, entry],
    }).output();
    if (!result.success) {
      console.error(new TextDecoder().decode(result.stderr));
      throw new Error(`deno compile of ${entry} failed`);
    }
    console.log(`built ${output}`);
  }
}

if (import.meta.main) await main();
