/**
 * The Deno permissions of one PD process, worked out from its configuration, as
 * `src/security/permissions.ts` does for a store: what `deno task pd` (through `scripts/pd.ts`)
 * and the end-to-end tests grant, and nothing more.
 *
 * - `--allow-net`: the client, status and peer listen addresses (port 0 grants the host), and
 *   the other members' peer addresses it dials (a single member dials nobody).
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
import { processPermissionFlags } from "../../security/permissions.ts";
import { hostPort, type PdConfig } from "./config.ts";

/** The `deno run` permission flags of a PD with `config`, in a stable order. */
export function pdPermissionFlags(
  facts: { config: PdConfig; configPath?: string; libraryPath: string | null },
): string[] {
  const { config } = facts;
  return processPermissionFlags({
    listen: config.initialCluster.size > 1
      ? [config.clientAddr, config.statusAddr, hostPort("peer-urls", config.peerUrls[0]!)]
      : [config.clientAddr, config.statusAddr],
    dial: config.initialCluster.size > 1
      ? [...config.initialCluster]
        .filter(([name]) => name !== config.name)
        .flatMap(([, urls]) => urls.map((url) => hostPort("initial-cluster", url)))
      : [],
    dataDir: config.dataDir,
    logFile: config.log.file,
    configPath: facts.configPath,
    security: config.security,
    libraryPath: facts.libraryPath,
    code: [],
  });
}
