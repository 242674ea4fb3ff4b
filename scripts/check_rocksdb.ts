/**
 * Checks that librocksdb can be found and loaded, and optionally that a database opens.
 *
 *   deno run -A scripts/check_rocksdb.ts [data-directory]
 *
 * Prints the library's path (exit 0), or one line saying what is wrong and the command that
 * fixes it (exit 1) — never a stack trace. With a data directory it also opens and closes the
 * engine there, which is how the tests show that opening an engine without a library fails
 * with that one line.
 */
import { native } from "../ffi/native.ts";
import { RocksDbEngine } from "../src/engine/rocksdb_engine.ts";

function main(directory: string | undefined): number {
  try {
    // Opening first, when asked, so a missing library is met the way a server meets it.
    if (directory !== undefined) RocksDbEngine.open(directory).close();
    console.log(native().path);
    return 0;
  } catch (error) {
    // Every expected failure here (library missing or unloadable, directory locked, damaged or
    // not a database) carries a message written for the user; one line of it is the report.
    const message = error instanceof Error ? error.message : String(error);
    console.error(message.replaceAll("\n", " "));
    return 1;
  }
}

if (import.meta.main) Deno.exit(main(Deno.args[0]));
