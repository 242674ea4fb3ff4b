/**
 * Enforces the pure-core boundary for the lock manager, the concurrency manager and the
 * transaction actions written beside them: no I/O, clocks, randomness or timers outside tests.
 */

import assert from "node:assert/strict";

const FORBIDDEN = [
  /\bDeno\./,
  /\bDate\.now\b/,
  /\bnew Date\(/,
  /\bperformance\.now\b/,
  /\bMath\.random\b/,
  /\bsetTimeout\b/,
  /\bsetInterval\b/,
  /\bfetch\(/,
];

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

function sources(): URL[] {
  const here = new URL("./", import.meta.url);
  const out: URL[] = [new URL("../concurrency_manager.ts", import.meta.url)];
  for (const entry of Deno.readDirSync(here)) {
    if (entry.isFile && entry.name.endsWith(".ts") && !entry.name.endsWith("_test.ts")) {
      out.push(new URL(entry.name, here));
    }
  }
  for (const name of ACTIONS) {
    const url = new URL(`../actions/${name}`, import.meta.url);
    try {
      Deno.statSync(url);
      out.push(url);
    } catch {
      // Not written yet.
    }
  }
  return out;
}

Deno.test("lock manager, concurrency manager and actions are pure (no I/O, clocks, timers)", () => {
  const offenders: string[] = [];
  for (const url of sources()) {
    const text = Deno.readTextFileSync(url);
    text.split("\n").forEach((line, i) => {
      const trimmed = line.trimStart();
      if (trimmed.startsWith("*") || trimmed.startsWith("//")) return;
      for (const re of FORBIDDEN) {
        if (re.test(line)) offenders.push(`${url.pathname}:${i + 1}: ${line.trim()}`);
      }
    });
  }
  assert.deepEqual(offenders, []);
});
