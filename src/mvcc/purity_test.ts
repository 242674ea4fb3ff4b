/**
 * Enforces the pure-core boundary of the transaction layers (STYLE.md "Pure core, thin
 * edges"): no module of src/txn_types, src/mvcc or src/txn/actions (tests aside) touches the
 * outside world, reads time or randomness, or imports an engine implementation. They get a
 * Snapshot and return modifications.
 */

import { assertPure, IMPURE_CALLS, modulesIn } from "../util/purity.ts";

const DIRS = ["../txn_types/", "./", "../txn/actions/"];
const ENGINE_IMPORT = /from "[^"]*(ffi\/|rocksdb_|server\/)/;
const TEST_SUPPORT_IMPORT = /from "[^"]*test_support\.ts"/;

/** The modules of the three layers but tests and test support. */
function productionModules(): URL[] {
  return DIRS.flatMap((relative) => modulesIn(new URL(relative, import.meta.url)))
    // Test support may build an in-memory engine; it is imported by tests only.
    .filter((url) => !url.pathname.endsWith("/test_support.ts"));
}

Deno.test("txn_types, mvcc and txn/actions are pure: no I/O, clocks, randomness or engine implementations", () => {
  assertPure(productionModules(), [...IMPURE_CALLS, ENGINE_IMPORT]);
});

Deno.test("production modules of the transaction layers never import test support", () => {
  assertPure(productionModules(), [TEST_SUPPORT_IMPORT]);
});
