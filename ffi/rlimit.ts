/**
 * The process's open-file limit (RLIMIT_NOFILE) through libc's `getrlimit`/`setrlimit`: Deno
 * has no API for it. A store raises its soft limit to the hard limit at start, so the
 * connections it accepts and the files RocksDB opens share as many descriptors as the system
 * allows; the result is logged, and the connection caps are derived from it.
 *
 * This binding is separate from `native.ts` so that it loads no RocksDB: it is used before the
 * engine opens. `struct rlimit` is two `rlim_t` (u64 on the 64-bit Linux and macOS targets).
 */

const LIBC_RLIMIT_SYMBOLS = {
  getrlimit: { parameters: ["i32", "buffer"], result: "i32" },
  setrlimit: { parameters: ["i32", "buffer"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** RLIMIT_NOFILE's resource number: 7 on Linux, 8 on macOS and the BSDs. */
const RLIMIT_NOFILE = Deno.build.os === "linux" ? 7 : 8;
/** The soft limit asked for when the hard limit is "unlimited" (Linux's default `nr_open`). */
const UNLIMITED_TARGET = 1n << 20n;
const RLIM_INFINITY = (1n << 64n) - 1n;

/** The open-file limit after {@link raiseOpenFileLimit}. */
export interface OpenFileLimit {
  /** The soft limit in force: the most descriptors this process may hold. */
  soft: number;
  /** The hard limit (the ceiling of the soft one); `Infinity` when unlimited. */
  hard: number;
  /** The soft limit before it was raised; equal to `soft` when nothing changed. */
  before: number;
  /** Why the limit could not be raised, or null. */
  problem: string | null;
}

let libc: Deno.DynamicLibrary<typeof LIBC_RLIMIT_SYMBOLS>["symbols"] | null = null;

function symbols(): Deno.DynamicLibrary<typeof LIBC_RLIMIT_SYMBOLS>["symbols"] {
  const path = Deno.build.os === "darwin" ? "libSystem.B.dylib" : "libc.so.6";
  return libc ??= Deno.dlopen(path, LIBC_RLIMIT_SYMBOLS).symbols;
}

function read(): { soft: bigint; hard: bigint } {
  const limit = new BigUint64Array(2);
  if (symbols().getrlimit(RLIMIT_NOFILE, limit) !== 0) {
    throw new Error("getrlimit(RLIMIT_NOFILE) failed");
  }
  return { soft: limit[0]!, hard: limit[1]! };
}

const toNumber = (value: bigint) => value === RLIM_INFINITY ? Infinity : Number(value);

/** The current soft and hard open-file limits. */
export function openFileLimit(): { soft: number; hard: number } {
  const { soft, hard } = read();
  return { soft: toNumber(soft), hard: toNumber(hard) };
}

/** Raises the soft open-file limit to the hard one (or to 2^20 when the hard one is unlimited). */
export function raiseOpenFileLimit(): OpenFileLimit {
  const { soft, hard } = read();
  const target = hard === RLIM_INFINITY ? UNLIMITED_TARGET : hard;
  let problem: string | null = null;
  if (soft !== RLIM_INFINITY && soft < target) {
    if (symbols().setrlimit(RLIMIT_NOFILE, new BigUint64Array([target, hard])) !== 0) {
      problem = `setrlimit(RLIMIT_NOFILE, ${target}) failed`;
    }
  }
  const after = read();
  return {
    soft: toNumber(after.soft),
    hard: toNumber(after.hard),
    before: toNumber(soft),
    problem,
  };
}
