/**
 * The HTTP API's stated limits, each enforced with a JSON error: the body size (declared and
 * streamed), the operations of a transaction, key and value sizes. Served in-process over
 * `Basalt.open` (the limits are the gateway's, whatever store is behind it).
 */
import assert from "node:assert/strict";
import {
  HTTP_MAX_BODY_BYTES,
  HTTP_TXN_MAX_OPS,
  KV_MAX_KEY_BYTES,
  KV_MAX_VALUE_BYTES,
} from "../../src/constants.ts";
import { Basalt } from "../../mod.ts";
import { HttpGateway } from "../../src/gateway/http/mod.ts";
import { fetchJson } from "./http_lib.ts";

Deno.test("HTTP limits: body, transaction size, key and value sizes", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "basalt_http_limits_" });
  const db = await Basalt.open({ dataDir: `${root}/data`, reclaimIntervalMs: 0 });
  const gateway = await HttpGateway.start({ hostname: "127.0.0.1", port: 0, db, ownsDb: true });
  const base = `http://${gateway.addr}`;
  try {
    await t.step(
      `a body over HTTP_MAX_BODY_BYTES (${HTTP_MAX_BODY_BYTES}) is 413, declared or streamed`,
      async () => {
        const declared = await fetchJson(`${base}/v1/kv/big`, {
          method: "PUT",
          body: new Uint8Array(HTTP_MAX_BODY_BYTES + 1),
        });
        assert.equal(declared.status, 413);
        assert.equal(declared.body.error.code, "body_too_large");
        const chunk = new Uint8Array(1024 * 1024);
        let sent = 0;
        const stream = new ReadableStream<Uint8Array>({
          pull(controller) {
            if (sent > HTTP_MAX_BODY_BYTES) return controller.close();
            sent += chunk.length;
            controller.enqueue(chunk);
          },
        });
        const streamed = await fetchJson(`${base}/v1/kv/big`, { method: "PUT", body: stream });
        assert.equal(streamed.status, 413);
        assert.equal(streamed.body.error.code, "body_too_large");
        assert.equal((await fetchJson(`${base}/v1/kv/big`)).status, 404, "nothing stored");
      },
    );
    await t.step(`a value over KV_MAX_VALUE_BYTES is 413; at the limit it is stored`, async () => {
      const over = await fetchJson(`${base}/v1/kv/v`, {
        method: "PUT",
        body: new Uint8Array(KV_MAX_VALUE_BYTES + 1),
      });
      assert.equal(over.status, 413);
      assert.equal(over.body.error.code, "value_too_large");
      const at = await fetch(`${base}/v1/kv/v`, {
        method: "PUT",
        body: new Uint8Array(KV_MAX_VALUE_BYTES),
      });
      assert.equal(at.status, 204);
      const back = await fetch(`${base}/v1/kv/v`);
      assert.equal((await back.arrayBuffer()).byteLength, KV_MAX_VALUE_BYTES);
    });
    await t.step(
      `a key over KV_MAX_KEY_BYTES (${KV_MAX_KEY_BYTES}) is 400 key_too_large`,
      async () => {
        const over = await fetchJson(`${base}/v1/kv/${"k".repeat(KV_MAX_KEY_BYTES + 1)}`, {
          method: "PUT",
          body: "v",
        });
        assert.equal(over.status, 400);
        assert.equal(over.body.error.code, "key_too_large");
      },
    );
    await t.step(
      `a transaction of more than HTTP_TXN_MAX_OPS (${HTTP_TXN_MAX_OPS}) operations is 400`,
      async () => {
        const reads = Array.from({ length: HTTP_TXN_MAX_OPS + 1 }, (_, i) => ({ key: `r${i}` }));
        const refused = await fetchJson(`${base}/v1/txn`, {
          method: "POST",
          body: JSON.stringify({ reads }),
        });
        assert.equal(refused.status, 400);
        assert.equal(refused.body.error.code, "too_many_operations");
        const allowed = await fetchJson(`${base}/v1/txn`, {
          method: "POST",
          body: JSON.stringify({ reads: reads.slice(1) }),
        });
        assert.equal(allowed.status, 200);
        assert.equal(allowed.body.reads.length, HTTP_TXN_MAX_OPS);
      },
    );
    await t.step(
      "a key written twice in one transaction, or an unknown field, is 400",
      async () => {
        const twice = await fetchJson(`${base}/v1/txn`, {
          method: "POST",
          body: JSON.stringify({ puts: [{ key: "a", value: "1" }], deletes: [{ key: "a" }] }),
        });
        assert.equal(twice.body.error.code, "invalid_argument");
        const unknown = await fetchJson(`${base}/v1/txn`, {
          method: "POST",
          body: JSON.stringify({ writes: [] }),
        });
        assert.equal(unknown.status, 400);
        assert.equal(unknown.body.error.field, "writes");
      },
    );
  } finally {
    await gateway.close();
    await Deno.remove(root, { recursive: true });
  }
});
