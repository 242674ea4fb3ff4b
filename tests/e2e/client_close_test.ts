/**
 * Closing clients must not take the store down. Deno 2.9.6's node:http2 aborts a server that
 * receives a GOAWAY after serving ~100 streams (see `src/client/grpc_close.ts`); the client
 * closes its connections without that GOAWAY.
 */
import assert from "node:assert/strict";
import { RawKV } from "../../src/client/raw.ts";
import { fromUtf8 } from "../../src/util/bytes.ts";
import { startServer } from "./lib.ts";

const E2E = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name: "e2e: clients closed after thousands of requests leave the store serving (exit 0)",
  ...E2E,
  async fn() {
    const server = await startServer();
    let code = -1;
    try {
      for (let round = 0; round < 4; round++) {
        const client = await RawKV.connect({ host: server.grpcAddr });
        let done = 0;
        await Promise.all(Array.from({ length: 128 }, async () => {
          while (done < 5000) await client.put(`k${done++ % 100}`, `round-${round}`);
        }));
        // RawGetKeyTTL is unary: one HTTP/2 stream each.
        for (let i = 0; i < 200; i++) await client.getKeyTTL(`k${i % 100}`);
        client.close();
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      const last = await RawKV.connect({ host: server.grpcAddr });
      assert.equal(fromUtf8((await last.get("k7"))!), "round-3");
      last.close();
    } finally {
      code = await server.stop();
      await Deno.remove(server.dataDir.replace(/\/data$/, ""), { recursive: true });
    }
    assert.equal(code, 0, "the store exited cleanly on SIGTERM, not aborted");
  },
});
