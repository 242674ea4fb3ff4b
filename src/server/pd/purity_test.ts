/**
 * Enforces the pure-core boundary of the embedded PD's own modules: the view and the cluster
 * identity's construction never touch the outside world or read time or randomness; only
 * `standalone.ts` and `file_storage.ts` (files, timer, clock) and the gRPC modules do. The PD
 * logic itself is `src/pd`, checked by its own purity test.
 */
import { assertPure, IMPURE_CALLS, NODE_IMPORT } from "../../util/purity.ts";

const PURE = ["view.ts"];

Deno.test("the embedded PD's view is pure: no Deno.*, clocks, randomness, timers or node: modules", () => {
  const files = PURE.map((name) => new URL(name, import.meta.url));
  assertPure(files, [...IMPURE_CALLS, /\bcrypto\./, NODE_IMPORT]);
});
