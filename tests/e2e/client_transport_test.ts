/**
 * The client transport against real store processes: BatchCommands batching and id matching,
 * the unary path, deadlines, stream failure and reconnection.
 */
import assert from "node:assert/strict";
import { kvrpcpb } from "../../proto/mod.ts";
import {
  ClientClosedError,
  DeadlineExceededError,
  UnavailableError,
} from "../../src/client/errors.ts";
import { StoreConnection } from "../../src/client/transport.ts";
import { fromUtf8, utf8 } from "../../src/util/bytes.ts";
import { freeLoopbackPort, startServer, withServer } from "./lib.ts";

const E2E = { sanitizeOps: false, sanitizeResources: false };
const context: kvrpcpb.Context.$Properties = {
  regionId: 1n,
  regionEpoch: { confVer: 1n, version: 1n },
  peer: { id: 2n, storeId: 1n },
};

Deno.test({
  name: "transport: a burst of requests shares BatchCommands messages; answers match their ids",
  ...E2E,
  fn: () =>
    withServer(async (server) => {
      const connection = new StoreConnection(server.grpcAddr, { streamsPerStore: 2 });
      try {
        const count = 600;
        const puts = Array.from({ length: count }, (_, i) =>
          connection.send("RawPut", { context, key: utf8(`k${i}`), value: utf8(`v${i}`) }));
        for (const response of await Promise.all(puts)) {
          assert.equal(response.regionError, null);
          assert.equal(response.error, "");
        }
        const gets = await Promise.all(
          Array.from({ length: count }, (_, i) =>
            connection.send("RawGet", { context, key: utf8(`k${i}`) })),
        );
        gets.forEach((response, i) =>
          assert.equal(fromUtf8(response.value), `v${i}`)
        );
        const stats = connection.stats();
        assert.equal(stats.batchedRequestsSent, 2 * count);
        assert.equal(stats.unaryRequestsSent, 0);
        assert.equal(stats.streamsOpened, 2, "both streams carried requests");
        assert.ok(
          stats.messagesSent <= (2 * count) / 50,
          `${stats.messagesSent} messages for ${2 * count} requests`,
        );
        // Delayed and immediate answers on one stream: each caller gets its own answer.
        const slow = connection.send("Empty", { testId: 7n, delayTime: 300n });
        const fast = connection.send("Empty", { testId: 8n });
        const first = await Promise.race([
          slow.then(() =>
            "slow"
          ),
          fast.then(() => "fast"),
        ]);
        assert.equal(first, "fast");
        assert.equal((await slow).testId, 7n);
        assert.equal((await fast).testId, 8n);
      } finally {
        connection.close();
      }
    }),
});

Deno.test({
  name: "transport: commands outside BatchCommands, and batchCommands: false, go unary",
  ...E2E,
  fn: () =>
    withServer(async (server) => {
      const connection = new StoreConnection(server.grpcAddr);
      const unary = new StoreConnection(server.grpcAddr, { batchCommands: false });
      try {
        const cas = await connection.send("RawCompareAndSwap", {
          context,
          key: utf8("c"),
          value: utf8("1"),
          previousNotExist: true,
        });
        assert.equal(cas.succeed, true);
        const ttl = await connection.send("RawGetKeyTTL", { context, key: utf8("c") });
        assert.equal(ttl.notFound, false);
        assert.deepEqual(connection.stats().unaryRequestsSent, 2);
        assert.equal(connection.stats().messagesSent, 0);

        await unary.send("RawPut", { context, key: utf8("u"), value: utf8("x") });
        const got = await unary.send("RawGet", { context, key: utf8("u") });
        assert.equal(fromUtf8(got.value), "x");
        assert.equal(unary.stats().unaryRequestsSent, 2);
        assert.equal(unary.stats().streamsOpened, 0);
        await assert.rejects(unary.send("Empty", {}), /exists only on BatchCommands streams/);
      } finally {
        connection.close();
        unary.close();
      }
    }),
});

Deno.test({
  name: "transport: a request past its deadline fails alone; the stream keeps serving others",
  ...E2E,
  fn: () =>
    withServer(async (server) => {
      const connection = new StoreConnection(server.grpcAddr);
      try {
        const startMs = Date.now();
        const late = connection.send("Empty", { testId: 1n, delayTime: 3000n }, { timeoutMs: 200 });
        await assert.rejects(late, (error) => {
          assert.ok(error instanceof DeadlineExceededError, String(error));
          assert.match(error.message, /sent, no answer/);
          return true;
        });
        const elapsedMs = Date.now() - startMs;
        assert.ok(elapsedMs >= 190 && elapsedMs < 1500, `deadline took ${elapsedMs} ms`);
        const after = await connection.send("RawGet", { context, key: utf8("x") });
        assert.equal(after.notFound, true);
        assert.equal(connection.stats().streamFailures, 0);
        // A deadline beyond a timer's range is honoured without spinning.
        const far = await connection.send("RawGet", { context, key: utf8("x") }, {
          timeoutMs: 1e12,
        });
        assert.equal(far.notFound, true);
        await assert.rejects(
          connection.send("RawGet", { context, key: utf8("x") }, { deadlineMs: Date.now() - 1 }),
          DeadlineExceededError,
        );
        // Unary deadlines come from gRPC.
        await assert.rejects(
          connection.send("RawGet", { context, key: utf8("x") }, { unary: true, timeoutMs: 0.001 }),
          DeadlineExceededError,
        );
      } finally {
        connection.close();
      }
    }),
});

Deno.test({
  name: "transport: a killed store fails in-flight requests as sent; after restart it reconnects",
  ...E2E,
  async fn() {
    const port = freeLoopbackPort();
    const server = await startServer({ args: ["--addr", `127.0.0.1:${port}`] });
    const connection = new StoreConnection(server.grpcAddr, { streamsPerStore: 1 });
    try {
      await connection.send("RawPut", { context, key: utf8("a"), value: utf8("1") });
      const inFlight = connection.send("Empty", { delayTime: 5000n });
      inFlight.catch(() => {}); // rejected while the kill is awaited; asserted below
      await new Promise((resolve) => setTimeout(resolve, 100));
      await server.kill();
      await assert.rejects(inFlight, (error) => {
        assert.ok(error instanceof UnavailableError, String(error));
        assert.equal(error.sent, true);
        assert.equal(error.retriable, true);
        return true;
      });
      // Nothing listens: the request never had a connection, so it was not sent.
      await assert.rejects(connection.send("RawGet", { context, key: utf8("a") }), (error) => {
        assert.ok(error instanceof UnavailableError, String(error));
        assert.equal(error.sent, false);
        return true;
      });
      await server.restart();
      assert.equal(server.grpcAddr, `127.0.0.1:${port}`);
      let value = "";
      for (let attempt = 0; attempt < 50 && value === ""; attempt++) {
        try {
          value = fromUtf8((await connection.send("RawGet", { context, key: utf8("a") })).value);
        } catch (error) {
          assert.ok(error instanceof UnavailableError, String(error));
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
      assert.equal(value, "1");
      assert.ok(connection.stats().streamsOpened >= 2, "a new stream after the failure");
    } finally {
      connection.close();
      await server.stop();
      await Deno.remove(server.dataDir.replace(/\/data$/, ""), { recursive: true });
    }
  },
});

Deno.test({
  name: "transport: close() rejects pending requests with ClientClosedError",
  ...E2E,
  fn: () =>
    withServer(async (server) => {
      const connection = new StoreConnection(server.grpcAddr);
      const pending = connection.send("Empty", { delayTime: 2000n });
      pending.catch(() => {}); // asserted below
      await new Promise((resolve) => setTimeout(resolve, 50));
      connection.close();
      await assert.rejects(pending, ClientClosedError);
      await assert.rejects(
        connection.send("RawGet", { context, key: utf8("a") }),
        ClientClosedError,
      );
    }),
});
