/**
 * The raftstore is pure apart from the engine and transport it is handed: no clock, randomness,
 * timers, network or `Deno.*` (STYLE.md "Pure core, thin edges"). That covers the round itself
 * (`store.ts`): time arrives as `tick()`, so the simulator can run the real store. The Worker
 * glue (`worker/`: the real-time driver) uses timers and is not listed here; the test harness
 * (`testing/`) is held to the same rule, so that a run is a function of its seed.
 */

import assert from "node:assert/strict";
import { assertPure, IMPURE_CALLS, modulesIn, NODE_IMPORT } from "../util/purity.ts";

const PURE_MODULES = [
  "apply.ts",
  "cmd_codec.ts",
  "command.ts",
  "entry_cache.ts",
  "errors.ts",
  "hibernate.ts",
  "keys.ts",
  "local_state.ts",
  "log_writer.ts",
  "peer.ts",
  "peer_config.ts",
  "peer_storage.ts",
  "region_state.ts",
  "snapshot.ts",
  "split_check.ts",
  "store.ts",
  "transport.ts",
  "write_path.ts",
  "testing/cluster.ts",
  "testing/crash_engine.ts",
  "testing/memory_transport.ts",
];

Deno.test("src/raftstore's modules are pure: no Deno.*, clocks, Math.random, timers, network or node:", () => {
  const files = PURE_MODULES.map((name) => new URL(`./${name}`, import.meta.url));
  assertPure(files, [...IMPURE_CALLS, NODE_IMPORT]);
});

Deno.test("every module of src/raftstore and its harness is on the purity list", () => {
  const here = new URL("./", import.meta.url);
  const found = [...modulesIn(here), ...modulesIn(new URL("./testing/", here))]
    .map((url) => url.pathname.slice(here.pathname.length));
  assert.deepEqual(found.filter((name) => !PURE_MODULES.includes(name)), []);
});

Deno.test("src/raftstore imports nothing of src/server (the layers below it live in src/storage and others)", () => {
  const here = new URL("./", import.meta.url);
  const files = [...modulesIn(here), ...modulesIn(new URL("./testing/", here))];
  assertPure(files, [/from "\.\.\/(\.\.\/)?server\//]);
});
