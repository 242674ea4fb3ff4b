/**
 * `basalt-ctl region split` (issue #12), run as a child process against a real standalone
 * store: through `--host` (the store) and `--pd` (its PD face), raw and transactional keys,
 * human and JSON output, and the keys it refuses.
 */
import assert from "node:assert/strict";
import { RawKV } from "../../src/client/raw.ts";
import { fromUtf8 } from "../../src/util/bytes.ts";
import { ctl, type CtlRun, ok } from "./ctl.ts";
import { withServer } from "./lib.ts";

const E2E = { sanitizeOps: false, sanitizeResources: false };
const KEYS = ["apple", "kiwi", "mango", "zucchini"];

/** The `[start, end)` of each line of `region list` (human form). */
function ranges(lines: readonly string[]): string[] {
  return lines.map((line) => {
    const match = /^region \d+ (\[.*\)) epoch \d+\/\d+ peers \S+ leader \S+$/.exec(line);
    assert.ok(match !== null, `not a region line: ${line}`);
    return match[1]!;
  });
}

Deno.test({
  name:
    "ctl region split: --raw at m on a standalone store makes two regions that region list shows, keys read back; a transactional split cuts at the encoded key; --json lists the regions made",
  ...E2E,
  fn: () =>
    withServer(async (server) => {
      const host = ["--host", server.grpcAddr];
      const pd = ["--pd", server.grpcAddr];
      for (const key of KEYS) await ok([...host, "raw", "put", key, `v-${key}`]);

      const made = await ok([...host, "region", "split", "m", "--raw"]);
      assert.deepEqual(ranges(made), ['["", "m")', '["m", +inf)']);
      assert.deepEqual(ranges(await ok([...pd, "region", "list"])), ['["", "m")', '["m", +inf)']);
      const client = await RawKV.connect({ host: server.grpcAddr });
      try {
        const pairs = await client.scan("", "", { limit: 100 });
        assert.deepEqual(pairs.map((pair) => fromUtf8(pair.key)), KEYS);
        assert.equal(fromUtf8((await client.get("zucchini"))!), "v-zucchini");
      } finally {
        client.close();
      }

      // A transactional key: the region bound is its memcomparable encoding (no timestamp).
      // Through --pd (the store's PD face) this time, with --json and the key in hex ("k").
      const json = JSON.parse((await ok([...pd, "region", "split", "6b", "--json", "--hex"]))[0]!);
      const encodedK = "6b00000000000000f8";
      assert.deepEqual(
        json.regions.map((r: { startKey: string; endKey: string }) => [r.startKey, r.endKey]),
        [["", encodedK], [encodedK, "6d"]],
      );
      for (const region of json.regions) {
        assert.equal(region.peers.length, 1);
        assert.notEqual(region.leader, null, JSON.stringify(region));
      }
      assert.equal((await ok([...pd, "region", "list"])).length, 3);
    }),
});

Deno.test({
  name:
    "ctl region split: a key that already starts a region, a key named twice, the empty key and a key over the size limit each fail in one line with exit 1, and nothing is split",
  ...E2E,
  fn: () =>
    withServer(async (server) => {
      const host = ["--host", server.grpcAddr];
      const refused = async (args: string[], pattern: RegExp) => {
        const run: CtlRun = await ctl([...host, "region", "split", ...args]);
        assert.equal(run.code, 1, `${args.join(" ")}: ${run.stdout}`);
        const lines = run.stderr.trim().split("\n");
        assert.equal(lines.length, 1, run.stderr);
        assert.match(lines[0]!, pattern);
      };
      await ok([...host, "region", "split", "m", "--raw"]);
      await refused(["m", "--raw"], /split key "m" already starts region \d+: nothing was split/);
      await refused(["c", "m", "--raw"], /split key "m" already starts region/);
      await refused(["x", "x", "--raw"], /split key "x" is named twice/);
      await refused(["", "--raw"], /the empty key starts the first region/);
      await refused(["q".repeat(9000), "--raw"], /key is too large: 9000 bytes, limit 8192/);
      await refused([], /usage: basalt-ctl .* region split KEY/);
      const regions = await ok(["--pd", server.grpcAddr, "region", "list"]);
      assert.deepEqual(ranges(regions), ['["", "m")', '["m", +inf)']);
    }),
});
