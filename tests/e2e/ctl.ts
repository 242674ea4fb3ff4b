/**
 * Runs `basalt-ctl` (`cli/main.ts`) as a child process, as a user would, for the CLI end-to-end
 * tests (`cli_online_test.ts`, `txn_cli_test.ts`).
 */
import assert from "node:assert/strict";

const CTL = new URL("../../cli/main.ts", import.meta.url).pathname;

/** How one `basalt-ctl` run ended. */
export interface CtlRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI with `args`, whatever its outcome. */
export async function ctl(args: string[]): Promise<CtlRun> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CTL, ...args],
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

/** Runs the CLI and expects success; returns stdout lines. */
export async function ok(args: string[]): Promise<string[]> {
  const run = await ctl(args);
  assert.equal(run.code, 0, `basalt-ctl ${args.join(" ")}: ${run.stderr}`);
  return run.stdout.trimEnd().split("\n");
}
