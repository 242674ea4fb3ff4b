/**
 * Enforces the pure-core boundary: no module of `src/raft` (tests aside) may touch the
 * outside world or read time or randomness directly.
 */

import { assertPure, IMPURE_CALLS, modulesIn } from "../util/purity.ts";

Deno.test("src/raft is pure: no Deno.*, clocks, Math.random, timers or network outside tests", () => {
  assertPure(modulesIn(new URL("./", import.meta.url)), IMPURE_CALLS);
});

Deno.test("src/raft is self-contained: its modules import only each other (no protobufjs, no node:)", () => {
  // Module specifiers that leave the folder: a parent path, a package, a URL or a runtime module.
  const outside = /\bfrom\s+"(?!\.\/)[^"]*"|\bimport\(\s*"(?!\.\/)/;
  assertPure(modulesIn(new URL("./", import.meta.url)), [outside]);
});
