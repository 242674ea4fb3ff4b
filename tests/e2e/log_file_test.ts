/**
 * A log file that cannot be opened (its directory is missing) stops a store and a PD at start
 * with exit status 2 and one line naming the file — not an uncaught error.
 */
import assert from "node:assert/strict";

const STORE = new URL("../../src/server/main.ts", import.meta.url).pathname;
const PD = new URL("../../src/pd/server/main.ts", import.meta.url).pathname;

async function run(script: string, args: string[]) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: output.code, stderr: new TextDecoder().decode(output.stderr).trim() };
}

Deno.test("a store or PD whose log file cannot be opened exits 2 with one line naming it", async () => {
  const root = await Deno.makeTempDir({ prefix: "basalt_log_file_" });
  try {
    const missing = `${root}/no/such/dir`;
    const store = await run(STORE, [
      "--addr",
      "127.0.0.1:0",
      "--status-addr",
      "127.0.0.1:0",
      "--data-dir",
      `${root}/store`,
      "--log-file",
      `${missing}/store.log`,
    ]);
    assert.equal(store.code, 2, store.stderr);
    assert.match(store.stderr, /^basalt: cannot open the log file .*\/store\.log: /);
    assert.equal(store.stderr.split("\n").length, 1, store.stderr);
    const pd = await run(PD, [
      "--name",
      "pd1",
      "--client-urls",
      "127.0.0.1:0",
      "--status-addr",
      "127.0.0.1:0",
      "--data-dir",
      `${root}/pd`,
      "--log-file",
      `${missing}/pd.log`,
    ]);
    assert.equal(pd.code, 2, pd.stderr);
    assert.match(pd.stderr, /^basalt-pd: cannot open the log file .*\/pd\.log: /);
    assert.equal(pd.stderr.split("\n").length, 1, pd.stderr);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
