/**
 * `deno task compile`: single-file binaries with `deno compile` into bin/.
 *
 * `deno compile` embeds the `denort` runtime, which Deno downloads from its own server unless
 * `DENORT_BIN` names a local copy. Where neither can be had, this says so in one line and exits
 * with status 2, which the compile test reads as "skipped: no denort".
 *
 * Permissions are baked into a compiled binary, so they are worked out here, at build time:
 * - `basalt-server` gets exactly what a store with the given flags needs
 *   (`deno task compile -- --addr 0.0.0.0:20160 --data-dir /var/lib/basalt …`, the store's own
 *   flags; none = the defaults), as `deno task serve` grants them (`src/security/permissions.ts`).
 *   Started later with other addresses or paths, it stops with NotCapable naming the one missing.
 * - `basalt-ctl` gets the `ctl` task's permissions (its targets are command-line arguments).
 */
import { parseArgs } from "node:util";
import { findLibrary } from "../ffi/library.ts";
import { SERVER_ENV_VARIABLES, serverPermissionFlags } from "../src/security/permissions.ts";
import { loadConfig } from "../src/server/config.ts";

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

/** The permission flags baked into each binary, for a store started with `serverArgs`. */
export function bakedPermissions(serverArgs: string[]): Record<string, string[]> {
  const commandLine = loadConfig(serverArgs);
  if (commandLine.help) throw new Error("compile: --help is not a store configuration");
  const server = serverPermissionFlags({
    config: commandLine.config,
    configPath: commandLine.configPath,
    codeRoot: new URL("..", import.meta.url).pathname,
    libraryPath: findLibrary(),
  });
  const ctl = ["--no-prompt", "--allow-net", "--allow-read", "--allow-ffi"]
    .concat(`--allow-env=${SERVER_ENV_VARIABLES.join(",")}`);
  return { "basalt-server": server, "basalt-ctl": ctl };
}

async function main(): Promise<void> {
  // compile's own options, then "--" and the store's flags whose permissions to bake in.
  const split = Deno.args.indexOf("--");
  const own = split === -1 ? Deno.args : Deno.args.slice(0, split);
  const serverArgs = split === -1 ? [] : Deno.args.slice(split + 1);
  const { values } = parseArgs({ args: own, options: { out: { type: "string", default: "bin" } } });
  const permissions = bakedPermissions(serverArgs);
  const denort = denortAvailable();
  if (!denort.available) {
    console.error(`compile skipped: ${denort.reason}`);
    Deno.exit(NO_DENORT_STATUS);
  }
  await Deno.mkdir(values.out!, { recursive: true });
  for (const [name, entry] of Object.entries(BINARIES)) {
    const output = `${values.out}/${name}`;
    const result = await new Deno.Command(Deno.execPath(), {
      args: ["compile", ...permissions[name]!, "--output", output, entry],
    }).output();
    if (!result.success) {
      console.error(new TextDecoder().decode(result.stderr));
      throw new Error(`deno compile of ${entry} failed`);
    }
    console.log(`built ${output}`);
  }
}

if (import.meta.main) await main();
