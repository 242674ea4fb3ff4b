/**
 * The layout of a store's data directory, and the guard that keeps Basalt out of directories
 * that are not its own.
 *
 * Layout: `<data-dir>/basalt.json` (identity, written on first start), `<data-dir>/db` (RocksDB);
 * a standalone store adds `<data-dir>/pd` (its embedded PD), a clustered store
 * `<data-dir>/regions.json` (`cluster_join.ts`).
 * A directory that is non-empty and has no identity file is refused: it belongs to someone else.
 * A clustered store's identity names its cluster: the directory serves that cluster only, and
 * never a standalone store. A standalone store's directory becomes a clustered one when the
 * store starts with `--pd` and a fresh PD adopts its cluster (`standalone_adoption.ts`): the
 * identity then gains the cluster id (the standalone one, which PD took) and `adoptedAt`, and
 * from then on the directory is a clustered store's like any other (`pd/` stays, unread).
 */

/** The identity file's content. */
export interface DataDirIdentity {
  format: "basalt-store";
  version: 1;
  storeId: number;
  createdAt: string;
  /** The PD cluster id (decimal) of a clustered store; absent on a standalone store. */
  clusterId?: string;
  /** When a PD adopted this standalone store's cluster (`standalone_adoption.ts`). */
  adoptedAt?: string;
}

const IDENTITY_FILE = "basalt.json";

/** The data directory is unusable; `reason` says why. */
export class DataDirError extends Error {
  constructor(readonly path: string, readonly reason: string) {
    super(`data directory ${path}: ${reason}`);
    this.name = "DataDirError";
  }
}

function listNames(path: string): string[] | null {
  try {
    return [...Deno.readDirSync(path)].map((entry) => entry.name);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw new DataDirError(path, (error as Error).message);
  }
}

function readIdentity(path: string): DataDirIdentity {
  const file = `${path}/${IDENTITY_FILE}`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Deno.readTextFileSync(file));
  } catch (error) {
    throw new DataDirError(path, `${IDENTITY_FILE} is unreadable: ${(error as Error).message}`);
  }
  const identity = parsed as Partial<DataDirIdentity>;
  if (identity.format !== "basalt-store" || identity.version !== 1) {
    throw new DataDirError(path, `${IDENTITY_FILE} is not a Basalt store identity (version 1)`);
  }
  return identity as DataDirIdentity;
}

/** The identity of the data directory at `path`; `null` when it has none (or does not exist). */
export function readDataDirIdentity(path: string): DataDirIdentity | null {
  const names = listNames(path);
  if (names === null || !names.includes(IDENTITY_FILE)) return null;
  return readIdentity(path);
}

/**
 * Marks a standalone store's directory as a store of PD cluster `clusterId`, once PD adopted its
 * cluster: the identity is replaced atomically, keeping the store id. From then on a start
 * without `--pd` is refused, and one with `--pd` is an ordinary clustered start.
 */
export function markAdopted(path: string, options: { clusterId: bigint; now: Date }): void {
  const identity = readIdentity(path);
  if (identity.clusterId !== undefined && identity.clusterId !== String(options.clusterId)) {
    throw new DataDirError(
      path,
      `belongs to PD cluster ${identity.clusterId}, not to cluster ${options.clusterId}`,
    );
  }
  writeIdentity(path, {
    ...identity,
    clusterId: String(options.clusterId),
    adoptedAt: identity.adoptedAt ?? options.now.toISOString(),
  });
}

/**
 * Prepares `path` for a store: creates it and its identity on first start, checks the identity
 * afterwards. Returns the identity and the RocksDB directory.
 */
export function prepareDataDir(
  path: string,
  options: { storeId: number; now: Date },
): { identity: DataDirIdentity; dbPath: string } {
  const names = listNames(path);
  const dbPath = `${path}/db`;
  if (names !== null && names.includes(IDENTITY_FILE)) {
    const identity = readIdentity(path);
    if (identity.clusterId !== undefined) {
      throw new DataDirError(
        path,
        `belongs to store ${identity.storeId} of PD cluster ${identity.clusterId}: start it with --pd`,
      );
    }
    if (identity.storeId !== options.storeId) {
      throw new DataDirError(path, `belongs to store ${identity.storeId}, not ${options.storeId}`);
    }
    return { identity, dbPath };
  }
  if (names !== null && names.length > 0) {
    throw new DataDirError(
      path,
      `not empty and has no ${IDENTITY_FILE}: not a Basalt data directory; choose an empty one`,
    );
  }
  const identity: DataDirIdentity = {
    format: "basalt-store",
    version: 1,
    storeId: options.storeId,
    createdAt: options.now.toISOString(),
  };
  writeIdentity(path, identity);
  return { identity, dbPath };
}

function writeIdentity(path: string, identity: DataDirIdentity): void {
  Deno.mkdirSync(path, { recursive: true });
  const temporary = `${path}/${IDENTITY_FILE}.tmp`;
  Deno.writeTextFileSync(temporary, JSON.stringify(identity, null, 2) + "\n");
  Deno.renameSync(temporary, `${path}/${IDENTITY_FILE}`);
}

/**
 * Prepares `path` for a store of PD cluster `clusterId`: on an empty (or missing) directory,
 * `allocStoreId` gives the store its id and the identity is written with the cluster id; a
 * directory that has an identity must name the same cluster. Refused: another cluster's
 * directory, a standalone store's (`joinCluster` has PD adopt it first), a foreign one.
 */
export async function prepareClusterDataDir(
  path: string,
  options: { clusterId: bigint; allocStoreId: () => Promise<bigint>; now: Date },
): Promise<{ identity: DataDirIdentity; dbPath: string; created: boolean }> {
  const names = listNames(path);
  const dbPath = `${path}/db`;
  if (names !== null && names.includes(IDENTITY_FILE)) {
    const identity = readIdentity(path);
    if (identity.clusterId === undefined) {
      throw new DataDirError(
        path,
        `belongs to standalone store ${identity.storeId}${
          names.includes("pd") ? " (it has pd/, the embedded PD)" : ""
        }, which no PD has adopted yet`,
      );
    }
    if (identity.clusterId !== String(options.clusterId)) {
      throw new DataDirError(
        path,
        `belongs to PD cluster ${identity.clusterId}, not to cluster ${options.clusterId} of the PD given with --pd`,
      );
    }
    return { identity, dbPath, created: false };
  }
  if (names !== null && names.length > 0) {
    throw new DataDirError(
      path,
      `not empty and has no ${IDENTITY_FILE}: not a Basalt data directory; choose an empty one`,
    );
  }
  const storeId = await options.allocStoreId();
  if (storeId <= 0n || storeId > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new DataDirError(path, `PD allocated store id ${storeId}, which is out of range`);
  }
  const identity: DataDirIdentity = {
    format: "basalt-store",
    version: 1,
    storeId: Number(storeId),
    createdAt: options.now.toISOString(),
    clusterId: String(options.clusterId),
  };
  writeIdentity(path, identity);
  return { identity, dbPath, created: true };
}
