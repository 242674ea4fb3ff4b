/**
 * The check behind every `purity_test.ts` (STYLE.md "Pure core, thin edges"): it reads the
 * source of the modules a pure layer is made of and lists each line that calls out of the
 * pure core. A layer's test names its modules and the patterns it forbids; this module only
 * walks and matches, so every layer enforces its boundary the same way.
 *
 * Lines that are comments (starting with `//` or `*`, as JSDoc does) are skipped: they may name
 * what the code must not do. The check reads files, so only tests import this module.
 *
 * @example
 * ```ts
 * Deno.test("src/raft is pure", () => {
 *   assertPure(modulesIn(new URL("./", import.meta.url)), IMPURE_CALLS);
 * });
 * ```
 */

import assert from "node:assert/strict";

/** What no pure module may touch: `Deno.*`, clocks, randomness, timers and the network. */
export const IMPURE_CALLS: readonly RegExp[] = [
  /\bDeno\./,
  /\bDate\.now\b/,
  /\bnew Date\(/,
  /\bperformance\.now\b/,
  /\bMath\.random\b/,
  /\bsetTimeout\b/,
  /\bsetInterval\b/,
  /\bfetch\(/,
];

/** An import of a `node:` module, forbidden in the cores that must not lean on a runtime. */
export const NODE_IMPORT = /from "node:/;

const REPO_ROOT = new URL("../../", import.meta.url).pathname;

/** The production modules of a folder: its `.ts` files but `_test.ts` and `_bench.ts`, by name. */
export function modulesIn(dir: URL): URL[] {
  const names: string[] = [];
  for (const entry of Deno.readDirSync(dir)) {
    if (
      entry.isFile && entry.name.endsWith(".ts") && !entry.name.endsWith("_test.ts") &&
      !entry.name.endsWith("_bench.ts")
    ) {
      names.push(entry.name);
    }
  }
  return names.sort().map((name) => new URL(name, dir));
}

/**
 * Every code line of `files` that matches one of `forbidden`, as `path:line: text` with the
 * path from the repository root; one entry per pattern matched.
 */
export function impureLines(files: readonly URL[], forbidden: readonly RegExp[]): string[] {
  const violations: string[] = [];
  for (const url of files) {
    const path = url.pathname.startsWith(REPO_ROOT)
      ? url.pathname.slice(REPO_ROOT.length)
      : url.pathname;
    Deno.readTextFileSync(url).split("\n").forEach((line, index) => {
      const trimmed = line.trimStart();
      if (trimmed.startsWith("*") || trimmed.startsWith("//")) return;
      for (const pattern of forbidden) {
        if (pattern.test(line)) violations.push(`${path}:${index + 1}: ${line.trim()}`);
      }
    });
  }
  return violations;
}

/** Fails, listing them, when any code line of `files` matches one of `forbidden`. */
export function assertPure(files: readonly URL[], forbidden: readonly RegExp[]): void {
  assert.ok(files.length > 0, "a purity check must read at least one module");
  assert.deepEqual(impureLines(files, forbidden), []);
}
