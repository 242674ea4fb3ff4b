/**
 * The Deno permissions of one PD process, worked out from its configuration, as
 * `src/security/permissions.ts` does for a store: what `deno task pd` (through `scripts/pd.ts`)
 * and the end-to-end tests grant, and nothing more.
 *
 * - `--allow-net`: the client and status listen addresses (port 0 grants the host).
 *   A single PD member dials nobody.
 * - `--allow-read`: the data directory, the log file and its `.1`, the `--config` file, the
 *   three `[security]` files (when set) and the RocksDB library. PD starts no Workers, so no
 *   code directories.
 * - `--allow-write`: the data directory, the log file and its `.1`.
 * - `--allow-ffi` (unscoped, see `src/security/permissions.ts`) and `--allow-env` by name.
 *
 * Pure: every fact is an argument.
 *
 * @module
 */
import { listenGrants, SERVER_ENV_VARIABLES } from "../../security/permissions.ts";
import type { PdConfig } from "./config.ts";

/** The `deno run` permission flags of a PD with `config`, in a stable order. */
export function pdPermissionFlags(
  facts: { config: PdConfig; configPath?: string; libraryPath: string | null },
): string[] {
  const { config } = facts;
  const logFiles = config.log.file === "" ? [] : [config.log.file, `${config.log.file}.1`];
  const unique = (values: string[]) => [...new Set(values)];
  const net = unique([...listenGrants(config.clientAddr), ...listenGrants(config.statusAddr)]);
  const read = unique([
    config.dataDir,
    ...logFiles,
    ...(facts.configPath === undefined ? [] : [facts.configPath]),
    ...[config.security.caPath, config.security.certPath, config.security.keyPath].filter(
      (path) => path !== "",
    ),
    ...(facts.libraryPath === null ? [] : [facts.libraryPath]),
  ]);
  const write = unique([config.dataDir, ...logFiles]);
  for (const entry of [...net, ...read, ...write]) {
    // Deno splits a permission list on commas; such a path cannot be granted alone.
    if (entry.includes(",")) throw new RangeError(`cannot grant a path with a comma: ${entry}`);
  }
  return [
    "--no-prompt",
    `--allow-net=${net.join(",")}`,
    `--allow-read=${read.join(",")}`,
    `--allow-write=${write.join(",")}`,
    "--allow-ffi",
    `--allow-env=${SERVER_ENV_VARIABLES.join(",")}`,
  ];
}
