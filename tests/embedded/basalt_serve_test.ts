/**
 * A directory written in-process is a standalone store's: `Basalt.open`, write, close; then
 * `serve` the same directory as a process (with `--http-addr`) and read everything back through
 * the client (`Basalt.connect`) and the HTTP API — TTLs included.
 */
import assert from "node:assert/strict";
import { Basalt } from "../../mod.ts";
import { startServer } from "../e2e/lib.ts";
import { fetchJson } from "../gateway/http_lib.ts";

const text = (bytes: Uint8Array | null) => bytes === null ? null : new TextDecoder().decode(bytes);

Deno.test("Basalt.open writes, close, serve the same directory: the client reads it all back", async () => {
  const root = await Deno.makeTempDir({ prefix: "basalt_embedded_serve_" });
  const dataDir = `${root}/data`;
  const embedded = await Basalt.open({ dataDir, reclaimIntervalMs: 0 });
  await embedded.transaction((txn) => {
    for (let i = 0; i < 20; i++) txn.put(`served:${String(i).padStart(2, "0")}`, `v${i}`);
  });
  await embedded.put("served:ttl", "expires later", { ttlSeconds: 3600 });
  await embedded.put("served:binary", Uint8Array.of(0, 1, 255));
  assert.equal(await embedded.close(), "closed");

  const server = await startServer({ dataDir, args: ["--http-addr", "127.0.0.1:0"] });
  let failed = true;
  try {
    const remote = await Basalt.connect({ host: server.grpcAddr, reclaimIntervalMs: 0 });
    try {
      const page = await remote.scan({ prefix: "served:", limit: 100 });
      assert.equal(page.entries.length, 22);
      assert.equal(text(await remote.get("served:07")), "v7");
      assert.deepEqual(await remote.get("served:binary"), Uint8Array.of(0, 1, 255));
      const ttl = await remote.getEntry("served:ttl");
      assert.ok(ttl !== null && ttl.expireAtMs > Date.now() + 3_000_000, "the TTL came along");
      // And the served store takes new writes in the same space.
      await remote.put("served:after", "new");
    } finally {
      await remote.close();
    }
    const logText = await Deno.readTextFile(server.logPath);
    const httpAddr = /basalt ready: .* http (\S+)/.exec(logText)![1]!;
    const over = await fetchJson(`http://${httpAddr}/v1/kv/served:ttl?format=json`);
    assert.equal(over.body.value, "expires later");
    assert.ok(over.body.ttl_seconds > 3500);
    failed = false;
  } finally {
    await server.stop();
    if (failed) console.error(`kept ${root}`);
    else await Deno.remove(root, { recursive: true });
  }
});
