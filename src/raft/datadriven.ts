/**
 * A small datadriven test runner (after etcd/raft and Pebble's `datadriven`).
 *
 * A test file is a sequence of cases. Each case is optional `#` comment lines, one command
 * line, a `----` line, then the expected output, ending at a blank line (or end of file):
 *
 * ```
 * # A comment about the case.
 * campaign 1
 * ----
 * > 1 becomes PreCandidate at term 0
 * ```
 *
 * A command is a name followed by arguments, either `key=value`, `key=(a,b)` or bare words.
 * Run with `REWRITE=1` to regenerate the expected outputs from the actual ones; review the
 * diff before committing it. Output must not contain blank lines (they end a case).
 *
 * The one runner of the repository: it lives in `src/raft` because `src/raft` may import
 * nothing outside itself (`purity_test.ts`) and `interaction_env.ts` uses its types; the tests
 * of `src/pd` and `src/txn` import it from here. `src/util/datadriven_claims_test.ts` checks
 * that every `testdata/*.txt` file is run by some test.
 *
 * @module
 */

/** One parsed argument: `key=value`, `key=(v1,v2)` or a bare word (key only, no values). */
export interface CommandArg {
  key: string;
  values: string[];
}

/** A case: command name and arguments, where it came from, and what it should print. */
export interface TestCase {
  comments: string[];
  commandLine: string;
  command: string;
  args: CommandArg[];
  expected: string;
  line: number;
}

/** Splits a command line into its name and arguments. */
export function parseCommand(line: string): { command: string; args: CommandArg[] } {
  const tokens = line.trim().match(/\S+=\([^)]*\)|\S+/g) ?? [];
  const [command = "", ...rest] = tokens;
  const args = rest.map((tok): CommandArg => {
    const eq = tok.indexOf("=");
    if (eq < 0) return { key: tok, values: [] };
    const key = tok.slice(0, eq);
    let v = tok.slice(eq + 1);
    if (v.startsWith("(") && v.endsWith(")")) v = v.slice(1, -1);
    return { key, values: v === "" ? [] : v.split(",").map((s) => s.trim()) };
  });
  return { command, args };
}

/** Parses a whole datadriven file. */
export function parseTestFile(text: string): TestCase[] {
  const lines = text.split("\n");
  const cases: TestCase[] = [];
  let i = 0;
  while (i < lines.length) {
    const comments: string[] = [];
    while (i < lines.length && (lines[i]!.startsWith("#") || lines[i]!.trim() === "")) {
      if (lines[i]!.startsWith("#")) comments.push(lines[i]!);
      i++;
    }
    if (i >= lines.length) break;
    const commandLine = lines[i]!;
    const line = i + 1;
    i++;
    if (lines[i] !== "----") throw new Error(`datadriven: line ${i + 1}: expected ----`);
    i++;
    const out: string[] = [];
    while (i < lines.length && lines[i]!.trim() !== "") out.push(lines[i++]!);
    cases.push({
      comments,
      commandLine,
      ...parseCommand(commandLine),
      expected: out.join("\n"),
      line,
    });
  }
  return cases;
}

/** Renders cases back into a file, with `actual` outputs in place of the expected ones. */
export function renderTestFile(cases: TestCase[], actual: string[]): string {
  const blocks = cases.map((c, k) => {
    const out = actual[k] ?? "";
    return [...c.comments, c.commandLine, "----", ...(out === "" ? [] : [out])].join("\n");
  });
  return blocks.join("\n\n") + "\n";
}

/**
 * Runs every case of a file's `text` through `handler` (which returns the output text).
 * Returns the mismatches and the file as it would be with the actual outputs (what
 * `REWRITE=1` writes back). File I/O stays with the caller: this module is pure, like the rest
 * of `src/raft`.
 */
export function runDataDriven(
  opts: { name: string; text: string; handler: (c: TestCase) => string },
): { failures: string[]; rewritten: string } {
  const cases = parseTestFile(opts.text);
  const actual: string[] = [];
  const failures: string[] = [];
  for (const c of cases) {
    const out = opts.handler(c).trimEnd();
    if (/\n\s*\n/.test(out)) {
      throw new Error(`datadriven: output of line ${c.line} has a blank line`);
    }
    actual.push(out);
    if (out !== c.expected) {
      failures.push(
        `${opts.name}:${c.line}: ${c.commandLine}\n--- expected\n${c.expected}\n--- actual\n${out}`,
      );
    }
  }
  return { failures, rewritten: renderTestFile(cases, actual) };
}
