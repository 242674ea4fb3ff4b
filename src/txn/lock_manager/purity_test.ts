/**
 * Enforces the pure-core boundary for the lock manager, the concurrency manager and the
 * transaction actions written beside them: no I/O, clocks, randomness or timers outside tests.
 */

import { assertPure, IMPURE_CALLS, modulesIn } from "../../util/purity.ts";

const ACTIONS = [
  "check_txn_status.ts",
  "resolve_lock.ts",
  "check_secondary_locks.ts",
  "scan_lock.ts",
  "txn_heart_beat.ts",
  "acquire_pessimistic_lock.ts",
  "pessimistic_rollback.ts",
  "gc.ts",
];

Deno.test("lock manager, concurrency manager and actions are pure (no I/O, clocks, timers)", () => {
  const files = [
    new URL("../concurrency_manager.ts", import.meta.url),
    ...modulesIn(new URL("./", import.meta.url)),
    ...ACTIONS.map((name) => new URL(`../actions/${name}`, import.meta.url)),
  ];
  assertPure(files, IMPURE_CALLS);
});
