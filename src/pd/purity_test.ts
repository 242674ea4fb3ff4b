/**
 * Enforces the pure-core boundary of PD (STYLE.md "Pure core, thin edges"): no module of
 * `src/pd` (tests aside) touches `Deno.*`, reads a clock or randomness itself, sets a timer,
 * uses the network or imports a `node:` module. Time and randomness are arguments; storage is
 * `PdStorage`. `engine_storage.ts` is held to the same rule: it imports only the engine's
 * interface.
 *
 * Scope: the modules directly in `src/pd/` (`modulesIn` reads one folder, not its subfolders).
 * The gRPC edge and the process, `src/pd/server/`, do I/O by design and are outside it; the core
 * never imports them.
 */
import { assertPure, IMPURE_CALLS, modulesIn, NODE_IMPORT } from "../util/purity.ts";
import assert from "node:assert/strict";

Deno.test("src/pd is pure: no Deno.*, clocks, randomness, timers, network or node: modules", () => {
  assertPure(modulesIn(new URL("./", import.meta.url)), [...IMPURE_CALLS, NODE_IMPORT]);
});

Deno.test("src/pd imports no engine implementation and no generated protobuf code", () => {
  const forbidden = [/from "\.\.\/engine\/(?!types\.ts)/, /proto\//, /@grpc/];
  const offending: string[] = [];
  for (const url of modulesIn(new URL("./", import.meta.url))) {
    for (const line of Deno.readTextFileSync(url).split("\n")) {
      if (forbidden.some((pattern) => pattern.test(line))) {
        offending.push(`${url.pathname}: ${line}`);
      }
    }
  }
  assert.deepEqual(offending, []);
});

Deno.test("src/pd's core imports nothing of its edge (src/pd/server)", () => {
  const offending: string[] = [];
  for (const url of modulesIn(new URL("./", import.meta.url))) {
    for (const line of Deno.readTextFileSync(url).split("\n")) {
      if (/from "\.\/server\//.test(line)) offending.push(`${url.pathname}: ${line}`);
    }
  }
  assert.deepEqual(offending, []);
});
