/**
 * `deno task serve`: runs one store (`src/server/main.ts`) with exactly the Deno permissions its
 * configuration needs (`src/security/permissions.ts`): its two listen addresses, its data
 * directory, log file, configuration and certificate files, the RocksDB library and the code
 * its workers load, `--allow-ffi`, and the environment variables it reads by name.
 *
 * Why a launcher: the addresses and paths come from flags and the configuration file at run
 * time, and Deno's permissions are fixed when a process starts. This process reads the
 * configuration (so it holds `--allow-read`), and it starts the store (so it holds
 * `--allow-run`: Deno matches `--allow-run=deno` against the `deno` found on PATH when the
 * launcher starts, and a `deno` started through npx runs from another path — measured). It never
 * opens a socket and reads no network input; the process that faces the network is the store,
 * with the narrow set. It costs one idle Deno process (~40 MB) for the store's lifetime.
 *
 * Signals (SIGINT, SIGTERM) are passed to the store, and the store's exit status is this
 * process's.
 */
import { findLibrary } from "../ffi/library.ts";
import { launch } from "./launch.ts";
import { serverPermissionFlags } from "../src/security/permissions.ts";
import { ConfigError, loadConfig, usage } from "../src/server/config.ts";

const MAIN = new URL("../src/server/main.ts", import.meta.url).pathname;
const CODE_ROOT = new URL("..", import.meta.url).pathname;

/**
 * The `deno` arguments that run the store with `args` (the store's own flags) under exactly the
 * permissions its configuration needs, or `{ help: true }`. Throws `ConfigError` for a command
 * line or configuration the store would refuse.
 */
export function storeRunArgs(args: string[]): string[] | { help: true } {
  const commandLine = loadConfig(args);
  if (commandLine.help) return { help: true };
  const flags = serverPermissionFlags({
    config: commandLine.config,
    configPath: commandLine.configPath,
    codeRoot: CODE_ROOT,
    libraryPath: findLibrary(),
  });
  const storeArgs = args[0] === "--" ? args.slice(1) : args;
  return ["run", ...flags, MAIN, ...storeArgs];
}

if (import.meta.main) {
  Deno.exit(
    await launch(Deno.args, {
      name: "basalt",
      runArgs: storeRunArgs,
      usage: usage,
      isRefusal: (error): error is Error => error instanceof ConfigError,
    }),
  );
}
