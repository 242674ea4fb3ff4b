/**
 * Enforces the pure-core boundary of the embedded PD: the id allocator, the GC safe point, the
 * region lookups and the view never touch the outside world or read time or randomness; only
 * `standalone.ts` (files, timer, clock) and the gRPC modules do.
 */
import { assertPure, IMPURE_CALLS, NODE_IMPORT } from "../../util/purity.ts";

const PURE = ["constants.ts", "gc_safe_point.ts", "id_allocator.ts", "region_lookup.ts", "view.ts"];

Deno.test("the PD cores are pure: no Deno.*, clocks, randomness, timers or node: modules", () => {
  const files = PURE.map((name) => new URL(name, import.meta.url));
  assertPure(files, [...IMPURE_CALLS, /\bcrypto\./, NODE_IMPORT]);
});
