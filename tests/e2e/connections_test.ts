/**
 * Many client connections against one store: each client is a grpc-js channel of its own with
 * its own TCP connection, all writing and reading at once; then they all go away and the store
 * still serves.
 *
 * grpc-js shares one subchannel (TCP connection) between every channel with the same target and
 * options, through a process-wide pool. `grpc.use_local_subchannel_pool` gives each channel a
 * pool of its own, and a distinct option per client makes the channels different besides, so N
 * clients are N connections — counted on the server's side in /proc/net/tcp where Linux has it.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import * as grpc from "@grpc/grpc-js";
import { kvrpcpb, tikvpb } from "../../proto/mod.ts";
import { fromUtf8, utf8 } from "../../src/util/bytes.ts";
import { type TestServer, withServer } from "./lib.ts";

const E2E = { sanitizeOps: false, sanitizeResources: false };
const CLIENTS = 64;
const KEYS_PER_CLIENT = 40;
const CALL_TIMEOUT_MS = 15_000;
/** The load phase's bound: 64 × 40 puts and gets take a few seconds even on a loaded machine. */
const TEST_TIMEOUT_MS = 120_000;
const context = { regionId: 1n, regionEpoch: { confVer: 1n, version: 1n } };

/** A minimal kvproto client on a channel (and so a TCP connection) of its own. */
class OwnChannelClient {
  readonly #client: grpc.Client;

  constructor(addr: string, index: number) {
    this.#client = new grpc.Client(addr, grpc.credentials.createInsecure(), {
      "grpc.use_local_subchannel_pool": 1,
      "basalt.test_connection_index": index,
    });
  }

  unary<Req, Res>(
    method: string,
    codecs: {
      request: { encode(m: Req): { finish(): Uint8Array } };
      response: { decode(b: Uint8Array): Res };
    },
    request: Req,
  ): Promise<Res> {
    return new Promise((resolve, reject) => {
      this.#client.makeUnaryRequest<Req, Res>(
        `/tikvpb.Tikv/${method}`,
        (message) => Buffer.from(codecs.request.encode(message).finish()),
        (bytes) => codecs.response.decode(new Uint8Array(bytes)),
        request,
        { deadline: Date.now() + CALL_TIMEOUT_MS },
        (error, response) => error ? reject(error) : resolve(response!),
      );
    });
  }

  put(key: string, value: string): Promise<kvrpcpb.RawPutResponse> {
    return this.unary("RawPut", {
      request: kvrpcpb.RawPutRequest,
      response: kvrpcpb.RawPutResponse,
    }, { context, key: utf8(key), value: utf8(value) });
  }

  get(key: string): Promise<kvrpcpb.RawGetResponse> {
    return this.unary("RawGet", {
      request: kvrpcpb.RawGetRequest,
      response: kvrpcpb.RawGetResponse,
    }, { context, key: utf8(key) });
  }

  /** Sends one BatchCommands message on a fresh stream and returns the answer. */
  batch(requests: tikvpb.BatchCommandsRequest.IRequest[]): Promise<tikvpb.BatchCommandsResponse> {
    const stream = this.#client.makeBidiStreamRequest<Uint8Array, tikvpb.BatchCommandsResponse>(
      "/tikvpb.Tikv/BatchCommands",
      (bytes) => Buffer.from(bytes),
      (bytes) => tikvpb.BatchCommandsResponse.decode(new Uint8Array(bytes)),
      new grpc.Metadata(),
      { deadline: Date.now() + CALL_TIMEOUT_MS },
    );
    return new Promise((resolve, reject) => {
      stream.on("data", (response: tikvpb.BatchCommandsResponse) => {
        resolve(response);
        stream.end();
      });
      stream.on("error", reject);
      const requestIds = requests.map((_, i) => BigInt(i + 1));
      stream.write(tikvpb.BatchCommandsRequest.encode({ requests, requestIds }).finish());
    });
  }

  close(): void {
    this.#client.close();
  }
}

/**
 * Established TCP connections whose local port is `port` (the server's ends), from
 * /proc/net/tcp; null where the file does not exist.
 */
function establishedServerSockets(port: number): number | null {
  let table: string;
  try {
    table = Deno.readTextFileSync("/proc/net/tcp");
  } catch {
    return null;
  }
  const ESTABLISHED = "01";
  return table.split("\n").slice(1).filter((line) => {
    const fields = line.trim().split(/\s+/);
    const localPort = parseInt(fields[1]?.split(":")[1] ?? "", 16);
    return localPort === port && fields[3] === ESTABLISHED;
  }).length;
}

/** `promise`, or a rejection naming `what` once `ms` have passed. */
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took more than ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (condition()) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return condition();
}

/** One client's share of the load: interleaved puts and read-your-write gets, then a batch. */
async function clientWork(client: OwnChannelClient, index: number): Promise<void> {
  for (let j = 0; j < KEYS_PER_CLIENT; j++) {
    const key = `conn${String(index).padStart(2, "0")}-${String(j).padStart(3, "0")}`;
    const put = await client.put(key, `value-${index}-${j}`);
    assert.equal(put.error, "", `put ${key}`);
    assert.equal(put.regionError, null, `put ${key}`);
    const got = await client.get(key);
    assert.equal(fromUtf8(got.value), `value-${index}-${j}`, `read your write: ${key}`);
  }
  const answer = await client.batch(
    [0, KEYS_PER_CLIENT - 1].map((j) => ({
      RawGet: {
        context,
        key: utf8(`conn${String(index).padStart(2, "0")}-${String(j).padStart(3, "0")}`),
      },
    })),
  );
  assert.deepEqual(
    answer.responses.map((r) => fromUtf8(r.RawGet!.value!)),
    [`value-${index}-0`, `value-${index}-${KEYS_PER_CLIENT - 1}`],
  );
}

/** The load phase, shared by both tests: returns the server's gRPC port. */
async function concurrentClients(server: TestServer): Promise<number> {
  const port = Number(server.grpcAddr.split(":").at(-1));
  const clients = Array.from(
    { length: CLIENTS },
    (_, i) => new OwnChannelClient(server.grpcAddr, i),
  );
  try {
    const startMs = performance.now();
    await within(
      TEST_TIMEOUT_MS,
      `${CLIENTS} concurrent clients`,
      Promise.all(clients.map((client, i) => clientWork(client, i))),
    );
    const elapsedMs = Math.round(performance.now() - startMs);
    console.log(`${CLIENTS} clients × ${KEYS_PER_CLIENT} puts+gets in ${elapsedMs} ms`);

    const open = establishedServerSockets(port);
    if (open === null) console.log("connection count not checked: no /proc/net/tcp here");
    else assert.ok(open >= CLIENTS, `${open} connections open at the server, ${CLIENTS} wanted`);

    // Every client's writes are visible through every other connection.
    const [first, last] = [clients[0]!, clients[CLIENTS - 1]!];
    const lastKey = `conn${CLIENTS - 1}-000`;
    assert.equal(fromUtf8((await first.get(lastKey)).value), `value-${CLIENTS - 1}-0`);
    assert.equal(fromUtf8((await last.get("conn00-001")).value), "value-0-1");
  } finally {
    for (const client of clients) client.close();
  }
  return port;
}

Deno.test({
  name: `e2e: ${CLIENTS} clients on ${CLIENTS} connections write and read at once, each ` +
    "reading its own writes and the others'",
  ...E2E,
  fn: () => withServer(async (server) => void await concurrentClients(server)),
});

/**
 * Deno 2.9.6's node:http2 (nghttp2 inside Deno) aborts the whole process when a peer's GOAWAY
 * arrives after the process has served on the order of a hundred streams: "nghttp2_session.c:
 * find_stream_on_goaway_func: Assertion `stream->closed_next == NULL' failed" or "free():
 * invalid pointer", exit 134 (denoland/deno#36788 is the same crash seen from the client side).
 * grpc-js's `client.close()` sends that GOAWAY, so today a store is killed by its clients
 * closing gracefully — reproduced here with a bare grpc-js echo server too, not only Basalt's.
 * The server survives it through src/util/goaway_guard.ts (it never answers a client's GOAWAY
 * with its own, the path that triggers the fault); this test checks that end to end.
 */
Deno.test({
  name: `e2e: after ${CLIENTS} busy clients close their connections the store still serves`,
  ...E2E,
  fn: () =>
    withServer(async (server) => {
      const port = await concurrentClients(server);
      // All gone: the server's ends are closed too (no connection is held on to)...
      if (establishedServerSockets(port) !== null) {
        assert.ok(
          await waitFor(() => establishedServerSockets(port) === 0, 10_000),
          `connections still open at the server: ${establishedServerSockets(port)}`,
        );
      }
      // ...and a new client is served, and sees everything the others wrote.
      const after = new OwnChannelClient(server.grpcAddr, CLIENTS);
      try {
        const put = await after.put("after", "still serving").catch(async (error) => {
          const code = await server.stop();
          throw new Error(`the server is gone (exit code ${code}) after its clients closed`, {
            cause: error,
          });
        });
        assert.equal(put.error, "");
        assert.equal(fromUtf8((await after.get("after")).value), "still serving");
        const scan = await after.unary("RawScan", {
          request: kvrpcpb.RawScanRequest,
          response: kvrpcpb.RawScanResponse,
        }, { context, startKey: utf8("conn"), endKey: utf8("conn~"), limit: 100_000 });
        assert.equal(scan.kvs.length, CLIENTS * KEYS_PER_CLIENT);
      } finally {
        after.close();
      }
      const health = await fetch(`http://${server.statusAddr}/health`);
      assert.equal(health.status, 200);
      await health.body?.cancel();
    }),
});
