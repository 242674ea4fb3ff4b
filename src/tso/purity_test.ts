/**
 * Enforces the pure-core boundary of the oracle: its logic (`oracle.ts`, `types.ts`,
 * `constants.ts`, `memory_value_store.ts`) never touches the outside world or reads time or
 * randomness itself. Only `durable_file.ts` and `file_value_store.ts` do I/O.
 */
import assert from "node:assert/strict";

const PURE = ["oracle.ts", "types.ts", "constants.ts", "memory_value_store.ts"];
const FORBIDDEN = [
  /\bDeno\./,
  /\bDate\.now\b/,
  /\bnew Date\(/,
  /\bperformance\.now\b/,
  /\bMath\.random\b/,
  /\bsetTimeout\b/,
  /\bsetInterval\b/,
  /\bfetch\(/,
  /from "node:/,
];

Deno.test("the TSO core is pure: no Deno.*, clocks, randomness, timers or node: modules", () => {
  const offenders: string[] = [];
  for (const name of PURE) {
    const text = Deno.readTextFileSync(new URL(name, import.meta.url));
    text.split("\n").forEach((line, i) => {
      const trimmed = line.trimStart();
      if (trimmed.startsWith("*") || trimmed.startsWith("//")) return;
      for (const re of FORBIDDEN) {
        if (re.test(line)) offenders.push(`${name}:${i + 1}: ${line.trim()}`);
      }
    });
  }
  assert.deepEqual(offenders, []);
});
