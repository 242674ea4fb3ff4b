/**
 * Finding the RocksDB shared library.
 *
 * Order: `BASALT_ROCKSDB_LIB` (a file path), then the usual places of the system package
 * (Debian/Ubuntu multiarch, /usr/lib, /usr/local/lib, Homebrew). A missing library is reported
 * as `RocksDbLibraryNotFoundError` with the one command that installs it, never as a stack
 * trace from `dlopen`.
 */

/** The Debian/Ubuntu package that ships the library Basalt is built and measured against. */
export const DEBIAN_PACKAGE = "librocksdb7.8";

const LIBRARY_NAMES_LINUX = ["librocksdb.so.7.8", "librocksdb.so"];
const LIBRARY_NAMES_DARWIN = ["librocksdb.dylib", "librocksdb.7.dylib"];

const LINUX_DIRECTORIES = [
  "/usr/lib/x86_64-linux-gnu",
  "/usr/lib/aarch64-linux-gnu",
  "/usr/lib64",
  "/usr/lib",
  "/usr/local/lib",
];
const DARWIN_DIRECTORIES = ["/opt/homebrew/lib", "/usr/local/lib"];

/** Raised when no librocksdb can be found; the message names the command to run. */
export class RocksDbLibraryNotFoundError extends Error {
  constructor(readonly searched: string[]) {
    super(
      `RocksDB shared library not found (looked at ${searched.join(", ")}). ` +
        `Install it with: ${installHint()} — or set BASALT_ROCKSDB_LIB to its path.`,
    );
    this.name = "RocksDbLibraryNotFoundError";
  }
}

/** The command that installs the library on this platform. */
export function installHint(): string {
  if (Deno.build.os === "darwin") return "brew install rocksdb";
  return `sudo apt-get install -y ${DEBIAN_PACKAGE}`;
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** Candidate paths in lookup order. */
export function candidatePaths(): string[] {
  const fromEnv = Deno.env.get("BASALT_ROCKSDB_LIB");
  if (fromEnv) return [fromEnv];
  const darwin = Deno.build.os === "darwin";
  const names = darwin ? LIBRARY_NAMES_DARWIN : LIBRARY_NAMES_LINUX;
  const directories = darwin ? DARWIN_DIRECTORIES : LINUX_DIRECTORIES;
  const paths: string[] = [];
  for (const directory of directories) {
    for (const name of names) paths.push(`${directory}/${name}`);
  }
  return paths;
}

/** The path of the library to load, or null when none exists. */
export function findLibrary(): string | null {
  return candidatePaths().find(isFile) ?? null;
}

/** The path of the library to load; throws `RocksDbLibraryNotFoundError` when none exists. */
export function requireLibrary(): string {
  const path = findLibrary();
  if (path === null) throw new RocksDbLibraryNotFoundError(candidatePaths());
  return path;
}
