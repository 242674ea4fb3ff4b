/**
 * The layout of a store's data directory, and the guard that keeps Basalt out of directories
 * that are not its own.
 *
 * Layout: `<data-dir>/basalt.json` (identity, written on first start), `<data-dir>/db` (RocksDB).
 * A directory that is non-empty and has no identity file is refused: it belongs to someone else.
 */

/** The identity file's content. */
export interface DataDirIdentity {
  format: "basalt-store";
  version: 1;
  storeId: number;
  createdAt: string;
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
  Deno.mkdirSync(path, { recursive: true });
  const identity: DataDirIdentity = {
    format: "basalt-store",
    version: 1,
    storeId: options.storeId,
    createdAt: options.now.toISOString(),
  };
  const temporary = `${path}/${IDENTITY_FILE}.tmp`;
  Deno.writeTextFileSync(temporary, JSON.stringify(identity, null, 2) + "\n");
  Deno.renameSync(temporary, `${path}/${IDENTITY_FILE}`);
  return { identity, dbPath };
}
