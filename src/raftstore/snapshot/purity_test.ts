/**
 * src/raftstore/snapshot/ is part of the pure raftstore (src/raftstore/purity_test.ts): no
 * `Deno.*`, clocks, randomness, timers, network or `node:`; file I/O is the `SnapshotManager`
 * src/server implements. Every module here is checked, and none imports src/server.
 */

import { assertPure, IMPURE_CALLS, modulesIn, NODE_IMPORT } from "../../util/purity.ts";

Deno.test("src/raftstore/snapshot's modules are pure and import nothing of src/server", () => {
  const files = modulesIn(new URL("./", import.meta.url));
  assertPure(files, [...IMPURE_CALLS, NODE_IMPORT, /from "(\.\.\/)+server\//]);
});
