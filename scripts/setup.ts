/**
 * First-run set-up, called by `deno task serve|test|bench` before anything else: makes sure the
 * RocksDB shared library is there, installing it where this process may (root with apt-get),
 * and otherwise stops with one line naming the command to run. With `--bench` it also makes
 * sure the peers the benchmarks compare against are there (db_bench, redis-server, etcd); with
 * `--test`, the tools some tests use (openssl makes the TLS tests' certificates, prlimit runs a
 * store under a small descriptor limit). A tool that cannot be had leaves its tests skipped,
 * each saying why.
 */
import { parseArgs } from "node:util";
import { DEBIAN_PACKAGE, findLibrary, installHint } from "../ffi/library.ts";

/** Debian packages a benchmark run needs, by the command each provides. */
const BENCH_PACKAGES: Record<string, string> = {
  db_bench: "rocksdb-tools",
  "redis-server": "redis-server",
  "redis-benchmark": "redis-tools",
  etcd: "etcd-server",
  wrk: "wrk",
};

/** Debian packages some tests need, by the command each provides. */
const TEST_PACKAGES: Record<string, string> = {
  openssl: "openssl",
  prlimit: "util-linux",
  "redis-cli": "redis-tools",
  "redis-server": "redis-server",
};

/** Whether `command` is on PATH. */
export function haveCommand(command: string): boolean {
  try {
    return new Deno.Command("sh", { args: ["-c", `command -v ${command}`], stdout: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

function canInstall(): boolean {
  return Deno.build.os === "linux" && Deno.uid() === 0 && haveCommand("apt-get");
}

function aptGet(args: string[]): boolean {
  const result = new Deno.Command("apt-get", {
    args,
    env: { DEBIAN_FRONTEND: "noninteractive" },
    stdout: "null",
    stderr: "piped",
  }).outputSync();
  if (!result.success) console.error(new TextDecoder().decode(result.stderr).trim().slice(-500));
  return result.success;
}

/** Installs Debian packages, refreshing the package lists once if the first try fails. */
function install(packages: string[]): boolean {
  console.error(`basalt setup: installing ${packages.join(" ")} with apt-get…`);
  if (aptGet(["install", "-y", "-qq", ...packages])) return true;
  return aptGet(["update", "-qq"]) && aptGet(["install", "-y", "-qq", ...packages]);
}

function ensureLibrary(): void {
  if (findLibrary() !== null) return;
  if (Deno.env.get("BASALT_ROCKSDB_LIB")) {
    fail(`BASALT_ROCKSDB_LIB=${Deno.env.get("BASALT_ROCKSDB_LIB")} does not exist`);
  }
  if (!canInstall() || !install([DEBIAN_PACKAGE]) || findLibrary() === null) {
    fail(`RocksDB shared library not found; install it with: ${installHint()}`);
  }
}

/** Installs the packages of the missing commands where it may; says what stays missing. */
function ensureCommands(wanted: Record<string, string>, what: string, consequence: string): void {
  const missing = Object.entries(wanted).filter(([command]) => !haveCommand(command));
  if (missing.length === 0) return;
  const packages = [...new Set(missing.map(([, pkg]) => pkg))];
  if (!canInstall() || !install(packages)) {
    console.error(
      `basalt setup: ${what} missing (${missing.map(([c]) => c).join(", ")}); ` +
        `install with: sudo apt-get install -y ${packages.join(" ")} — ${consequence}`,
    );
  }
}

function fail(message: string): never {
  console.error(`basalt setup: ${message}`);
  Deno.exit(1);
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      bench: { type: "boolean", default: false },
      test: { type: "boolean", default: false },
    },
  });
  ensureLibrary();
  if (values.bench) ensureCommands(BENCH_PACKAGES, "benchmark peers", "their rows will be skipped");
  if (values.test) ensureCommands(TEST_PACKAGES, "test tools", "their tests will be skipped");
}
