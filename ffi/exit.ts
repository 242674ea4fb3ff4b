/**
 * Ending the process without running librocksdb's C++ static destructors.
 *
 * `Deno.exit` runs libc's `exit`, which destroys RocksDB's static objects (thread-local
 * registries, the default Env and its thread pools). With a database still open — left to its
 * write-ahead log because a worker thread may still hold its handles — RocksDB's background
 * threads and that worker would run on destroyed objects, and the process could end in SIGABRT
 * or SIGSEGV instead of the code asked for. `_exit` ends it at once; everything acknowledged is
 * already in the WAL, which the next open replays.
 */
import { native } from "./native.ts";

/** Ends the process with `code` at once: no unload handlers, no static destructors. */
export function exitWithoutDestructors(code: number): never {
  native().libc._exit(code);
  throw new Error("_exit returned"); // unreachable: _exit never returns
}
