/**
 * `RawKV` retries against real store processes: a store restarted under load, a stale region
 * cache corrected by the store's region errors, and deadlines when the store is gone.
 */
import assert from "node:assert/strict";
import { DeadlineExceededError, UnavailableError } from "../../src/client/errors.ts";
import { RawKV } from "../../src/client/raw.ts";
import { standaloneRegion, StandaloneResolver } from "../../src/client/standalone_resolver.ts";
import { fromUtf8 } from "../../src/util/bytes.ts";
import { freeLoopbackPort, startServer, type TestServer, withServer } from "./lib.ts";

const E2E = { sanitizeOps: false, sanitizeResources: false };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function cleanUp(server: TestServer): Promise<void> {
  try {
    await server.stop();
  } catch { /* already stopped */ }
  await Deno.remove(server.dataDir.replace(/\/data$/, ""), { recursive: true });
}

Deno.test({
  name:
    "RawKV retries: writers keep going across a SIGKILL and restart; no acknowledged write lost",
  ...E2E,
  async fn() {
    const port = freeLoopbackPort();
    const server = await startServer({ args: ["--addr", `127.0.0.1:${port}`] });
    const client = await RawKV.connect({ host: server.grpcAddr, timeoutMs: 30_000 });
    try {
      const acknowledged: string[] = [];
      // A put in flight when the store died has an unknown outcome: it is not re-sent (a write
      // is sent at most once, see src/client/raw.ts) and its error says so.
      const unknown: string[] = [];
      let running = true;
      const writers = Array.from({ length: 4 }, async (_, w) => {
        for (let i = 0; running; i++) {
          const key = `w${w}-${i}`;
          try {
            await client.put(key, `value-${key}`);
          } catch (error) {
            if (!(error instanceof UnavailableError) || !error.sent) throw error;
            unknown.push(key);
            continue;
          }
          acknowledged.push(key);
        }
      });
      // Bounded waits for progress, not fixed sleeps: a loaded machine starts a store slowly.
      await until("writes before the kill", () => acknowledged.length >= 20);
      const beforeKill = acknowledged.length;
      await server.kill();
      await sleep(700); // writes pile up against a dead store, retrying
      await server.restart();
      await until("writes after the restart", () => acknowledged.length >= beforeKill + 20);
      running = false;
      await Promise.all(writers); // none failed but for an unknown outcome at the kill
      assert.ok(unknown.length <= 8, `${unknown.length} puts of unknown outcome: ${unknown}`);
      assert.ok(beforeKill > 0, "writes before the kill");
      assert.ok(acknowledged.length > beforeKill, "writes after the restart");
      const stored = await client.batchGet(acknowledged);
      assert.equal(stored.length, acknowledged.length, "every acknowledged write is there");
      for (const pair of stored) {
        assert.equal(fromUtf8(pair.value), `value-${fromUtf8(pair.key)}`);
      }
    } finally {
      client.close();
      await cleanUp(server);
    }
  },
});

Deno.test({
  name: "RawKV retries: a stale epoch and an unknown region id are corrected by region errors",
  ...E2E,
  fn: () =>
    withServer(async (server) => {
      const resolver = new StandaloneResolver(server.grpcAddr);
      const client = new RawKV(resolver);
      try {
        await client.put("k", "v");
        // The cache believes in a newer epoch than the store's: EpochNotMatch carries the
        // current region, which replaces the cached one.
        resolver.cache.insert({ ...standaloneRegion(), epoch: { confVer: 1n, version: 9n } });
        assert.equal(fromUtf8((await client.get("k"))!), "v");
        assert.equal(resolver.cache.get(1n)?.epoch.version, 1n);
        // A region id the store does not have: RegionNotFound, reload, retry.
        resolver.cache.clear();
        resolver.cache.insert({ ...standaloneRegion(), id: 77n });
        assert.equal(fromUtf8((await client.get("k"))!), "v");
        assert.equal(resolver.cache.get(77n), null);
        assert.notEqual(resolver.cache.get(1n), null);
        // Batch calls regroup after a region error.
        resolver.cache.clear();
        resolver.cache.insert({ ...standaloneRegion(), epoch: { confVer: 1n, version: 3n } });
        await client.batchPut([{ key: "x", value: "1" }, { key: "y", value: "2" }]);
        assert.equal((await client.batchGet(["x", "y"])).length, 2);
      } finally {
        client.close();
      }
    }),
});

Deno.test({
  name: "RawKV deadlines: calls to a dead store fail with DeadlineExceededError near timeoutMs",
  ...E2E,
  async fn() {
    const server = await startServer();
    const client = await RawKV.connect({ host: server.grpcAddr });
    try {
      await client.put("k", "v");
      await server.kill();
      for (
        const call of [
          () => client.get("k", { timeoutMs: 600 }),
          () => client.compareAndSwap("k", "v", "w", { timeoutMs: 600 }),
          () => client.scan("", null, { timeoutMs: 600 }),
        ]
      ) {
        const startMs = Date.now();
        await assert.rejects(call(), (error) => {
          assert.ok(error instanceof DeadlineExceededError, String(error));
          assert.match(error.message, /Unavailable|UNAVAILABLE|deadline/);
          return true;
        });
        const elapsedMs = Date.now() - startMs;
        assert.ok(elapsedMs >= 300 && elapsedMs < 3000, `gave up after ${elapsedMs} ms`);
      }
    } finally {
      client.close();
      await cleanUp(server);
    }
  },
});

/** Waits until `done()` holds, checking every 20 ms; fails naming `what` after 15 s. */
async function until(what: string, done: () => boolean): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
