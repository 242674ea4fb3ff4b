/** The offline CLI commands against a stopped store's data directory. */
import assert from "node:assert/strict";
import { RocksDbEngine } from "../src/engine/rocksdb_engine.ts";
import { utf8 } from "../src/util/bytes.ts";

async function ctl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./main.ts", import.meta.url).pathname, ...args],
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

Deno.test("ctl size, scan and compact read a stopped store; failures are one line", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "basalt-ctl-" });
  try {
    const engine = RocksDbEngine.open(`${dataDir}/db`);
    engine.put("default", utf8("alpha"), utf8("1"));
    engine.put("default", utf8("beta"), new Uint8Array([0, 255]));
    engine.put("write", utf8("w"), utf8("x"));
    engine.close();

    const scanned = await ctl(["--data-dir", dataDir, "scan", "--limit", "10"]);
    assert.equal(scanned.code, 0, scanned.stderr);
    assert.deepEqual(scanned.stdout.trim().split("\n"), ["alpha => 1", "beta => 0x00ff"]);

    const json = await ctl(["--data-dir", dataDir, "scan", "--cf", "write", "--json"]);
    assert.deepEqual(JSON.parse(json.stdout), { key: "77", value: "78" });

    const compacted = await ctl(["--data-dir", dataDir, "compact"]);
    assert.equal(compacted.code, 0, compacted.stderr);
    const size = await ctl(["--data-dir", dataDir, "size", "--json"]);
    const rows = JSON.parse(size.stdout) as { cf: string; sstBytes: number }[];
    assert.ok(rows.find((r) => r.cf === "default")!.sstBytes > 0, "compaction wrote an SST");

    const badCf = await ctl(["--data-dir", dataDir, "scan", "--cf", "nope"]);
    assert.equal(badCf.code, 1);
    assert.match(badCf.stderr.trim(), /^basalt-ctl: unknown column family "nope"/);
    const noStore = await ctl(["--data-dir", `${dataDir}/missing`, "size"]);
    assert.equal(noStore.code, 1);
    assert.equal(noStore.stderr.trim().split("\n").length, 1);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
