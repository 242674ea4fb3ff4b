/**
 * Enforces the pure-core boundary: no module of `src/raft` (tests aside) may touch the
 * outside world or read time or randomness directly.
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

Deno.test("src/raft is pure: no Deno.*, clocks, Math.random, timers or network outside tests", () => {
  const dir = new URL("./", import.meta.url);
  const offenders: string[] = [];
  for (const entry of Deno.readDirSync(dir)) {
    if (!entry.isFile || !entry.name.endsWith(".ts") || entry.name.endsWith("_test.ts")) continue;
    const text = Deno.readTextFileSync(new URL(entry.name, dir));
    text.split("\n").forEach((line, i) => {
      if (line.trimStart().startsWith("*") || line.trimStart().startsWith("//")) return;
      for (const re of FORBIDDEN) {
        if (re.test(line)) offenders.push(`${entry.name}:${i + 1}: ${line.trim()}`);
      }
    });
  }
  assert.deepEqual(offenders, []);
});
