/**
 * `deno task pd`: runs one PD member (`src/pd/server/main.ts`) with exactly the Deno permissions
 * its configuration needs (`src/pd/server/permissions.ts`), for the reasons `scripts/serve.ts`
 * gives: the addresses and paths come from flags and the configuration file, and Deno's
 * permissions are fixed when a process starts. Signals (SIGINT, SIGTERM) are passed on, and
 * PD's exit status is this process's.
 */
import { findLibrary } from "../ffi/library.ts";
import { ConfigError, loadPdConfig, pdUsage } from "../src/pd/server/config.ts";
import { pdPermissionFlags } from "../src/pd/server/permissions.ts";

const MAIN = new URL("../src/pd/server/main.ts", import.meta.url).pathname;

/**
 * The `deno` arguments that run PD with `args` (its own flags) under exactly the permissions
 * its configuration needs, or `{ help: true }`. Throws `ConfigError` for a command line or
 * configuration PD would refuse.
 */
export function pdRunArgs(args: string[]): string[] | { help: true } {
  const commandLine = loadPdConfig(args);
  if (commandLine.help) return { help: true };
  const flags = pdPermissionFlags({
    config: commandLine.config,
    configPath: commandLine.configPath,
    libraryPath: findLibrary(),
  });
  const pdArgs = args[0] === "--" ? args.slice(1) : args;
  return ["run", ...flags, MAIN, ...pdArgs];
}

async function main(args: string[]): Promise<number> {
  let runArgs: string[] | { help: true };
  try {
    runArgs = pdRunArgs(args);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(`basalt-pd: ${error.message}\n(see --help)`);
    return 2;
  }
  if (!Array.isArray(runArgs)) {
    console.log(pdUsage());
    return 0;
  }
  const child = new Deno.Command(Deno.execPath(), { args: runArgs }).spawn();
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => {
      try {
        child.kill(signal);
      } catch { /* PD has exited already */ }
    });
  }
  const status = await child.status;
  return status.code;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
