/**
 * Enforces the pure-core boundary of the embedded PD: the id allocator, the GC safe point, the
 * region lookups and the view never touch the outside world or read time or randomness; only
 * `standalone.ts` (files, timer, clock) and the gRPC modules do.
 */
import assert from "node:assert/strict";

const PURE = ["constants.ts", "gc_safe_point.ts", "id_allocator.ts", "region_lookup.ts", "view.ts"];
const FORBIDDEN = [
  /\bDeno\./,
  /\bDate\.now\b/,
  /\bnew Date\(/,
  /\bperformance\.now\b/,
  /\bMath\.random\b/,
  /\bcrypto\./,
  /\bsetTimeout\b/,
  /\bsetInterval\b/,
  /\bfetch\(/,
  /from "node:/,
];

Deno.test("the PD cores are pure: no Deno.*, clocks, randomness, timers or node: modules", () => {
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
