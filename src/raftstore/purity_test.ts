/**
 * The peer storage is pure apart from the engine it is handed: no clock, randomness, timers,
 * network or `Deno.*` (STYLE.md "Pure core, thin edges"). The Ready loop and the Worker glue
 * that will join this folder do I/O and are not listed here.
 */

import { assertPure, IMPURE_CALLS, NODE_IMPORT } from "../util/purity.ts";

const PURE_MODULES = [
  "entry_cache.ts",
  "keys.ts",
  "local_state.ts",
  "peer_storage.ts",
  "region_state.ts",
];

Deno.test("src/raftstore's storage modules are pure: no Deno.*, clocks, Math.random, timers, network or node:", () => {
  const files = PURE_MODULES.map((name) => new URL(`./${name}`, import.meta.url));
  assertPure(files, [...IMPURE_CALLS, NODE_IMPORT]);
});
