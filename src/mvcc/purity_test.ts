/**
 * Enforces the pure-core boundary of the transaction layers (STYLE.md "Pure core, thin
 * edges"): no module of src/txn_types, src/mvcc or src/txn/actions (tests aside) touches the
 * outside world, reads time or randomness, or imports an engine implementation. They get a
 * Snapshot and return modifications.
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
  /from "[^"]*(ffi\/|rocksdb_|server\/)/,
];

const DIRS = ["../txn_types/", "./", "../txn/actions/"];

Deno.test("txn_types, mvcc and txn/actions are pure: no I/O, clocks, randomness or engine implementations", () => {
  const offenders: string[] = [];
  for (const relative of DIRS) {
    const dir = new URL(relative, import.meta.url);
    for (const entry of Deno.readDirSync(dir)) {
      const name = entry.name;
      if (!entry.isFile || !name.endsWith(".ts") || name.endsWith("_test.ts")) continue;
      // Test support may build an in-memory engine; it is imported by tests only.
      const isTestSupport = name === "test_support.ts";
      const text = Deno.readTextFileSync(new URL(name, dir));
      text.split("\n").forEach((line, i) => {
        const trimmed = line.trimStart();
        if (trimmed.startsWith("*") || trimmed.startsWith("//")) return;
        for (const re of FORBIDDEN) {
          if (re.test(line) && !isTestSupport) {
            offenders.push(`${relative}${name}:${i + 1}: ${line.trim()}`);
          }
        }
      });
    }
  }
  assert.deepEqual(offenders, []);
});

Deno.test("production modules of the transaction layers never import test support", () => {
  const offenders: string[] = [];
  for (const relative of DIRS) {
    const dir = new URL(relative, import.meta.url);
    for (const entry of Deno.readDirSync(dir)) {
      const name = entry.name;
      if (!entry.isFile || !name.endsWith(".ts") || name.endsWith("_test.ts")) continue;
      if (name === "test_support.ts") continue;
      const text = Deno.readTextFileSync(new URL(name, dir));
      if (/from "[^"]*test_support\.ts"/.test(text)) offenders.push(`${relative}${name}`);
    }
  }
  assert.deepEqual(offenders, []);
});
