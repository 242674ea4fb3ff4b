/**
 * `deno task compile` builds single-file binaries that run. Where no denort runtime can be had
 * (no DENORT_BIN, nothing in Deno's cache), the test is skipped and says so.
 */
import assert from "node:assert/strict";
import { BINARIES, denortAvailable } from "../scripts/compile.ts";

const denort = denortAvailable();
if (!denort.available) console.log(`compile test skipped: no denort (${denort.reason})`);

Deno.test({
  name: "deno task compile builds binaries that answer --help",
  ignore: !denort.available,
  async fn() {
    const out = await Deno.makeTempDir({ prefix: "basalt-bin-" });
    try {
      const build = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "scripts/compile.ts", "--out", out],
      }).output();
      assert.ok(build.success, new TextDecoder().decode(build.stderr));
      for (const name of Object.keys(BINARIES)) {
        const run = await new Deno.Command(`${out}/${name}`, { args: ["--help"] }).output();
        assert.ok(run.success, `${name} --help failed`);
        assert.match(new TextDecoder().decode(run.stdout), /Usage/i);
      }
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});

Deno.test("the compile task refuses in one line when DENORT_BIN does not exist", async () => {
  const result = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "scripts/compile.ts"],
    env: { DENORT_BIN: "/nonexistent/denort" },
  }).output();
  assert.equal(result.code, 2);
  const stderr = new TextDecoder().decode(result.stderr).trim();
  assert.equal(stderr.split("\n").length, 1);
  assert.match(stderr, /DENORT_BIN=\/nonexistent\/denort does not exist/);
});
