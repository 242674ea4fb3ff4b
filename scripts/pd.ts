/**
 * `deno task pd`: runs one PD member (`src/pd/server/main.ts`) with exactly the Deno permissions
 * its configuration needs (`src/pd/server/permissions.ts`), for the reasons `scripts/serve.ts`
 * gives: the addresses and paths come from flags and the configuration file, and Deno's
 * permissions are fixed when a process starts. Signals (SIGINT, SIGTERM) are passed on, and
 * PD's exit status is this process's.
 */
import { findLibrary } from "../ffi/library.ts";
import { launch } from "./launch.ts";
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

if (import.meta.main) {
  Deno.exit(
    await launch(Deno.args, {
      name: "basalt-pd",
      runArgs: pdRunArgs,
      usage: pdUsage,
      isRefusal: (error): error is Error => error instanceof ConfigError,
    }),
  );
}
