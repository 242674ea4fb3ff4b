/**
 * Connection limits of both ports, end to end (src/server/listener.ts, http1.ts, grpc_server.ts):
 * idle timeouts, the status server's header-read timeout and 405, the gRPC connection and
 * concurrent-stream caps, and a store that runs out of file descriptors and keeps serving.
 */
import assert from "node:assert/strict";
import { kvrpcpb } from "../../proto/mod.ts";
import { fromUtf8, utf8 } from "../../src/util/bytes.ts";
import { TikvClient, withServer } from "./lib.ts";

const E2E = { sanitizeOps: false, sanitizeResources: false };
const context = { regionId: 1n, regionEpoch: { confVer: 1n, version: 1n } };
const SHORT_IDLE = `[server]\nconnection-idle-timeout = "1s"\n`;

function connect(addr: string): Promise<Deno.TcpConn> {
  const colon = addr.lastIndexOf(":");
  return Deno.connect({ hostname: addr.slice(0, colon), port: Number(addr.slice(colon + 1)) });
}

/** Milliseconds until the server closes `conn` (reads and drops what it sends); null if not within `timeoutMs`. */
async function closedWithin(conn: Deno.Conn, timeoutMs: number): Promise<number | null> {
  const start = Date.now();
  const timer = setTimeout(() => conn.close(), timeoutMs);
  const buffer = new Uint8Array(4096);
  try {
    while (await conn.read(buffer) !== null) { /* drop */ }
  } catch {
    return null; // closed by our own timer
  } finally {
    clearTimeout(timer);
  }
  try {
    conn.close();
  } catch { /* closed */ }
  return Date.now() - start;
}

async function put(client: TikvClient, key: string, value: string): Promise<void> {
  const bytes = await client.callBytes(
    "RawPut",
    kvrpcpb.RawPutRequest.encode({ context, key: utf8(key), value: utf8(value) }).finish(),
    5_000,
  );
  assert.equal(kvrpcpb.RawPutResponse.decode(bytes).error, "");
}

async function get(client: TikvClient, key: string): Promise<string> {
  const bytes = await client.callBytes(
    "RawGet",
    kvrpcpb.RawGetRequest.encode({ context, key: utf8(key) }).finish(),
    5_000,
  );
  return fromUtf8(kvrpcpb.RawGetResponse.decode(bytes).value);
}

Deno.test({
  name: "e2e: the status server answers 405 with Allow: GET to every method but GET",
  ...E2E,
  fn: () =>
    withServer(async (server) => {
      for (const method of ["POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]) {
        const response = await fetch(`http://${server.statusAddr}/health`, { method });
        await response.body?.cancel();
        assert.equal(response.status, 405, method);
        assert.equal(response.headers.get("allow"), "GET", method);
      }
      const conn = await connect(server.statusAddr);
      await conn.write(new TextEncoder().encode("TRACE /health HTTP/1.1\r\nHost: x\r\n\r\n"));
      const buffer = new Uint8Array(1024);
      const read = await conn.read(buffer);
      conn.close();
      assert.match(new TextDecoder().decode(buffer.subarray(0, read ?? 0)), /^HTTP\/1\.1 405 /);
      const ok = await fetch(`http://${server.statusAddr}/health`);
      assert.equal(ok.status, 200);
      assert.equal(await ok.text(), "ok\n");
    }),
});

Deno.test({
  name: "e2e: idle connections are closed on both ports, and a slow request head on the " +
    "status port (slowloris) is cut at the header timeout",
  ...E2E,
  fn: () =>
    withServer(async (server) => {
      // Silent TCP connections: no request, no HTTP/2 preface.
      const silentStatus = closedWithin(await connect(server.statusAddr), 8_000);
      const silentGrpc = closedWithin(await connect(server.grpcAddr), 8_000);
      // A status client that sends one header line every 300 ms and never ends its head.
      const slow = await connect(server.statusAddr);
      await slow.write(new TextEncoder().encode("GET /health HTTP/1.1\r\n"));
      const dripping = setInterval(() => {
        slow.write(new TextEncoder().encode("X-Slow: 1\r\n")).catch(() => clearInterval(dripping));
      }, 300);
      const slowloris = closedWithin(slow, 8_000).finally(() => clearInterval(dripping));
      // A keep-alive status connection after one answered request.
      const keepAlive = await connect(server.statusAddr);
      await keepAlive.write(new TextEncoder().encode("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
      const idleAfterAnswer = closedWithin(keepAlive, 8_000);
      // A gRPC client connection after one call.
      const client = new TikvClient(server.grpcAddr);
      await put(client, "idle", "1");
      const results = {
        silentStatus: await silentStatus,
        silentGrpc: await silentGrpc,
        slowloris: await slowloris,
        idleAfterAnswer: await idleAfterAnswer,
      };
      console.log("closed after (ms):", results);
      for (const [what, ms] of Object.entries(results)) {
        assert.ok(ms !== null, `${what}: still open after 8 s with a 1 s idle timeout`);
      }
      // The gRPC client's connection went idle and was closed; the client reconnects.
      assert.equal(await get(client, "idle"), "1");
      client.close();
    }, { config: SHORT_IDLE }),
});

Deno.test({
  name: "e2e: gRPC connections past max-connections are closed on accept, and the open ones " +
    "keep working",
  ...E2E,
  fn: () =>
    withServer(async (server) => {
      const held = [await connect(server.grpcAddr), await connect(server.grpcAddr)];
      const client = new TikvClient(server.grpcAddr);
      await put(client, "k", "v"); // the third connection: at the cap, served
      const refused = await closedWithin(await connect(server.grpcAddr), 5_000);
      assert.ok(refused !== null, "a fourth connection was kept open past max-connections = 3");
      assert.equal(await get(client, "k"), "v");
      const metrics = await (await fetch(`http://${server.statusAddr}/metrics`)).text();
      assert.match(metrics, /basalt_grpc_connections_refused_total [1-9]/);
      for (const conn of held) conn.close();
      client.close();
    }, { config: `[server]\nmax-connections = 3\n` }),
});

Deno.test({
  name: "e2e: a store with 200 descriptors survives 400 connection attempts, keeps serving " +
    "and keeps its data",
  ...E2E,
  ignore: Deno.build.os !== "linux",
  fn: () =>
    withServer(async (server) => {
      const client = new TikvClient(server.grpcAddr);
      await put(client, "before", "flood");
      // The descriptor budget caps gRPC connections at 200 / 2 - 32 = 68 (listener.ts), so the
      // flood is refused at the cap before descriptors run out; an EMFILE that still happens is
      // caught by the accept loop and counted (`accept errors`).
      const flood: Deno.TcpConn[] = [];
      for (let i = 0; i < 400; i++) {
        try {
          flood.push(await connect(i % 2 === 0 ? server.grpcAddr : server.statusAddr));
        } catch { /* the backlog is full: the client side gives up, as real clients do */ }
      }
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      // Existing connections still work while the flood holds every descriptor it could take.
      assert.equal(await get(client, "before"), "flood");
      await put(client, "during", "flood");
      for (const conn of flood) conn.close();
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      // New connections are accepted again, and the data is all there.
      const after = new TikvClient(server.grpcAddr);
      assert.equal(await get(after, "during"), "flood");
      await put(after, "after", "flood");
      const metrics = await (await fetch(`http://${server.statusAddr}/metrics`)).text();
      const value = (name: string) =>
        Number(new RegExp(`^${name} (\\d+)$`, "m").exec(metrics)?.[1]);
      console.log(
        `400 connection attempts at a 200-descriptor limit: ${
          value("basalt_grpc_connections_refused_total")
        } refused at the cap, ${value("basalt_grpc_accept_errors_total")} accept errors`,
      );
      assert.ok(
        value("basalt_grpc_connections_refused_total") + value("basalt_grpc_accept_errors_total") >
          0,
        "the flood was neither refused nor ran out of descriptors: the test did not test",
      );
      after.close();
      client.close();
      await server.stop();
      await server.restart();
      const reopened = new TikvClient(server.grpcAddr);
      assert.equal(await get(reopened, "after"), "flood");
      reopened.close();
    }, { launcher: ["prlimit", "--nofile=200:200", "--"] }),
});
