/**
 * Enforces the pure-core boundary of the oracle: its logic (`oracle.ts`, `types.ts`,
 * `constants.ts`, `memory_value_store.ts`) never touches the outside world or reads time or
 * randomness itself. Only `durable_file.ts` and `file_value_store.ts` do I/O.
 */
import { assertPure, IMPURE_CALLS, NODE_IMPORT } from "../util/purity.ts";

const PURE = ["oracle.ts", "types.ts", "constants.ts", "memory_value_store.ts"];

Deno.test("the TSO core is pure: no Deno.*, clocks, randomness, timers or node: modules", () => {
  const files = PURE.map((name) => new URL(name, import.meta.url));
  assertPure(files, [...IMPURE_CALLS, NODE_IMPORT]);
});
