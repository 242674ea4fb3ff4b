/**
 * The cluster harness's link proxy (`link_proxy.ts`) between real loopback sockets: bytes pass
 * both ways and are counted; a cut closes live connections on both sides, at once, and closes
 * new ones before they reach the target, until a heal; a delay holds each chunk at least that
 * long and keeps the order; the queue and connection bounds hold; a gRPC stream through a cut
 * link fails on both ends; `close()` leaves no socket or timer behind (the resource and op
 * sanitizers are on).
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import {
  LINK_PROXY_MAX_CONNECTIONS,
  LINK_PROXY_MAX_QUEUED_BYTES,
  LINK_PROXY_READ_BYTES,
  LinkProxy,
} from "./link_proxy.ts";

/** The longest any single wait in these tests may take before it fails. */
const WAIT_MS = 5_000;

/** Resolves `promise`, or fails naming `what` after `ms`. */
async function within<T>(what: string, promise: Promise<T>, ms = WAIT_MS): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** A loopback TCP server that echoes (or, as a sink, only reads) every connection. */
function startTarget(mode: "echo" | "sink" = "echo") {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  let accepted = 0;
  let received = 0;
  const serving: Promise<void>[] = [];
  const serve = async (conn: Deno.Conn) => {
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const read = await conn.read(buffer);
        if (read === null) break;
        received += read;
        if (mode === "echo") {
          let written = 0;
          while (written < read) written += await conn.write(buffer.subarray(written, read));
        }
      }
    } catch { /* closed */ }
    conns.delete(conn);
    try {
      conn.close();
    } catch { /* closed */ }
  };
  const accepting = (async () => {
    for (;;) {
      try {
        const conn = await listener.accept();
        accepted += 1;
        conns.add(conn);
        serving.push(serve(conn));
      } catch {
        return;
      }
    }
  })();
  return {
    addr: `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    get accepted() {
      return accepted;
    },
    get received() {
      return received;
    },
    get open() {
      return conns.size;
    },
    async close() {
      listener.close();
      for (const conn of conns) {
        try {
          conn.close();
        } catch { /* closed */ }
      }
      await accepting;
      await Promise.all(serving);
    },
  };
}

function connect(addr: string): Promise<Deno.Conn> {
  const colon = addr.lastIndexOf(":");
  return Deno.connect({ hostname: addr.slice(0, colon), port: Number(addr.slice(colon + 1)) });
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}

/** Reads exactly `length` bytes from `conn` within the wait. */
function readExactly(conn: Deno.Conn, length: number): Promise<Uint8Array> {
  return within(
    `reading ${length} bytes`,
    (async () => {
      const out = new Uint8Array(length);
      let filled = 0;
      while (filled < length) {
        const read = await conn.read(out.subarray(filled));
        if (read === null) throw new Error(`end of stream after ${filled} of ${length} bytes`);
        filled += read;
      }
      return out;
    })(),
  );
}

/** Resolves when `conn` reads end-of-stream or fails (the peer closed), within the wait. */
function readsClosed(conn: Deno.Conn, what: string): Promise<void> {
  return within(
    `${what} to be closed`,
    (async () => {
      const buffer = new Uint8Array(1024);
      try {
        for (;;) {
          if (await conn.read(buffer) === null) return;
        }
      } catch { /* reset counts as closed */ }
    })(),
  );
}

function pattern(length: number, seed: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 31 + seed) & 0xff);
}

async function waitUntil(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`waited ${WAIT_MS} ms for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

Deno.test("link proxy: bytes pass both ways unchanged and are counted", async () => {
  const target = startTarget();
  const proxy = LinkProxy.start(target.addr);
  const client = await connect(proxy.addr);
  try {
    const sent = pattern(300_000, 7);
    const [, echoed] = await Promise.all([
      writeAll(client, sent),
      readExactly(client, sent.length),
    ]);
    assert.deepEqual(echoed, sent);
    assert.deepEqual(
      { ...proxy.stats, peakQueuedBytes: 0 },
      {
        connectionsForwarded: 1,
        connectionsRefused: 0,
        connectionsOpen: 1,
        bytesToTarget: sent.length,
        bytesFromTarget: sent.length,
        peakQueuedBytes: 0,
      },
    );
  } finally {
    client.close();
    await proxy.close();
    await target.close();
  }
});

Deno.test(
  "link proxy: cut closes live connections on both sides and closes new ones before they reach the target; heal forwards again",
  async () => {
    const target = startTarget();
    const proxy = LinkProxy.start(target.addr);
    const before = await connect(proxy.addr);
    const during = await (async () => {
      await writeAll(before, pattern(10, 1));
      await readExactly(before, 10);
      assert.equal(target.accepted, 1);
      proxy.cut();
      assert.equal(proxy.isCut, true);
      // Both ends of the live connection see it end.
      await readsClosed(before, "the client's live connection");
      await waitUntil("the target's side of the cut connection to close", () => target.open === 0);
      // A new connection is accepted by the proxy's listener and closed unforwarded.
      const during = await connect(proxy.addr);
      await writeAll(during, pattern(10, 2)).catch(() => {});
      await readsClosed(during, "a connection made during the cut");
      return during;
    })();
    try {
      assert.equal(target.accepted, 1, "a connection made during the cut reached the target");
      assert.equal(proxy.stats.connectionsRefused, 1);
      assert.equal(proxy.stats.bytesToTarget, 10);

      proxy.heal();
      const after = await connect(proxy.addr);
      try {
        const sent = pattern(1000, 3);
        await writeAll(after, sent);
        assert.deepEqual(await readExactly(after, sent.length), sent);
        assert.equal(target.accepted, 2);
        assert.equal(proxy.stats.connectionsForwarded, 2);
      } finally {
        after.close();
      }
    } finally {
      before.close();
      during.close();
      await proxy.close();
      await target.close();
    }
  },
);

Deno.test(
  "link proxy: delay holds every chunk at least the delay, each way, and keeps their order",
  async () => {
    const DELAY_MS = 150;
    const target = startTarget();
    const proxy = LinkProxy.start(target.addr);
    const client = await connect(proxy.addr);
    try {
      proxy.delay(DELAY_MS);
      const chunks = Array.from({ length: 20 }, (_, i) => pattern(100 + i, i));
      const startedMs = Date.now();
      for (const chunk of chunks) {
        await writeAll(client, chunk);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      const total = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
      const echoed = await readExactly(client, total);
      const elapsedMs = Date.now() - startedMs;
      const expected = new Uint8Array(total);
      chunks.reduce((offset, chunk) => (expected.set(chunk, offset), offset + chunk.length), 0);
      assert.deepEqual(echoed, expected);
      // Delayed on the way there and on the way back (a lower bound only: load adds to it).
      assert.ok(elapsedMs >= 2 * DELAY_MS, `echo took ${elapsedMs} ms < 2 × ${DELAY_MS} ms`);

      proxy.delay(0);
      const quick = pattern(10, 9);
      await writeAll(client, quick);
      assert.deepEqual(await readExactly(client, quick.length), quick);
      assert.throws(() => proxy.delay(-1), RangeError);
    } finally {
      client.close();
      await proxy.close();
      await target.close();
    }
  },
);

Deno.test(
  "link proxy: a delayed connection queues at most LINK_PROXY_MAX_QUEUED_BYTES per direction (plus one read)",
  async () => {
    const target = startTarget("sink");
    const proxy = LinkProxy.start(target.addr);
    const client = await connect(proxy.addr);
    try {
      proxy.delay(100);
      const total = 4 * LINK_PROXY_MAX_QUEUED_BYTES;
      await within("writing 4 × the queue bound", writeAll(client, pattern(total, 5)), 30_000);
      await waitUntil("the target to receive every byte", () => target.received === total);
      const peak = proxy.stats.peakQueuedBytes;
      assert.ok(peak < LINK_PROXY_MAX_QUEUED_BYTES + LINK_PROXY_READ_BYTES, `peak ${peak}`);
      // The bound was reached, so the test exercised it.
      assert.ok(peak >= LINK_PROXY_MAX_QUEUED_BYTES, `peak ${peak} never reached the bound`);
    } finally {
      client.close();
      await proxy.close();
      await target.close();
    }
  },
);

Deno.test(
  "link proxy: a connection beyond LINK_PROXY_MAX_CONNECTIONS is closed unforwarded",
  async () => {
    const target = startTarget();
    const proxy = LinkProxy.start(target.addr);
    const clients: Deno.Conn[] = [];
    try {
      for (let i = 0; i < LINK_PROXY_MAX_CONNECTIONS; i++) {
        clients.push(await connect(proxy.addr));
      }
      await waitUntil(
        "every connection to reach the target",
        () => target.accepted === LINK_PROXY_MAX_CONNECTIONS,
      );
      const extra = await connect(proxy.addr);
      clients.push(extra);
      await readsClosed(extra, "the connection beyond the bound");
      assert.equal(target.accepted, LINK_PROXY_MAX_CONNECTIONS);
      assert.equal(proxy.stats.connectionsRefused, 1);
      assert.equal(proxy.stats.connectionsOpen, LINK_PROXY_MAX_CONNECTIONS);
    } finally {
      for (const client of clients) client.close();
      await proxy.close();
      await target.close();
    }
  },
);

Deno.test("link proxy: close() closes every connection and the listener", async () => {
  const target = startTarget();
  const proxy = LinkProxy.start(target.addr);
  const client = await connect(proxy.addr);
  try {
    await writeAll(client, pattern(5, 1));
    await readExactly(client, 5);
    proxy.delay(60_000); // A chunk held for a minute must not hold close() up.
    await writeAll(client, pattern(5, 2));
    await waitUntil("the held chunk to be queued", () => proxy.stats.peakQueuedBytes > 0);
    await within("close()", proxy.close());
    assert.equal(proxy.stats.connectionsOpen, 0);
    await readsClosed(client, "the client's connection after close()");
    await waitUntil("the target's side to close", () => target.open === 0);
    await assert.rejects(connect(proxy.addr), Deno.errors.ConnectionRefused);
  } finally {
    client.close();
    await target.close();
  }
});

Deno.test({
  name:
    "link proxy: a cut fails a gRPC bidi stream on both ends, and the channel reconnects after heal",
  // grpc-js keeps timers and sockets of its own after close; the other tests check the proxy.
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const method = "/basalt.test.Echo/Stream";
    const bytes = {
      serialize: (value: Uint8Array) => Buffer.from(value),
      deserialize: (buffer: Buffer) => new Uint8Array(buffer),
    };
    const server = new grpc.Server();
    const serverEnds: Promise<string>[] = [];
    server.addService({
      Stream: {
        path: method,
        requestStream: true,
        responseStream: true,
        requestSerialize: bytes.serialize,
        requestDeserialize: bytes.deserialize,
        responseSerialize: bytes.serialize,
        responseDeserialize: bytes.deserialize,
      },
    }, {
      Stream: (call: grpc.ServerDuplexStream<Uint8Array, Uint8Array>) => {
        serverEnds.push(
          new Promise((resolve) => {
            call.on("cancelled", () => resolve("cancelled"));
            call.on("error", (error) => resolve(`error ${error.message}`));
            call.on("end", () => resolve("end"));
          }),
        );
        call.on("data", (message: Uint8Array) => call.write(message));
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(
        "127.0.0.1:0",
        grpc.ServerCredentials.createInsecure(),
        (error, bound) => error ? reject(error) : resolve(bound),
      )
    );
    const proxy = LinkProxy.start(`127.0.0.1:${port}`);
    const client = new grpc.Client(proxy.addr, grpc.credentials.createInsecure(), {
      "grpc.initial_reconnect_backoff_ms": 100,
      "grpc.max_reconnect_backoff_ms": 200,
    });
    const open = () => {
      const stream = client.makeBidiStreamRequest<Uint8Array, Uint8Array>(
        method,
        bytes.serialize,
        bytes.deserialize,
      );
      const replies: Uint8Array[] = [];
      stream.on("data", (message: Uint8Array) => replies.push(message));
      const ended = new Promise<grpc.StatusObject>((resolve) => stream.on("status", resolve));
      stream.on("error", () => {});
      return { stream, replies, ended };
    };
    try {
      const first = open();
      first.stream.write(pattern(3, 1));
      await waitUntil("the first echo", () => first.replies.length === 1);
      proxy.cut();
      const status = await within("the client stream's status after the cut", first.ended);
      assert.equal(status.code, grpc.status.UNAVAILABLE, status.details);
      assert.equal(serverEnds.length, 1);
      assert.match(await within("the server stream's end after the cut", serverEnds[0]!), /./);
      // During the cut no call gets through.
      const blocked = open();
      blocked.stream.write(pattern(3, 2));
      const blockedStatus = await within("a stream opened during the cut", blocked.ended);
      assert.equal(blockedStatus.code, grpc.status.UNAVAILABLE, blockedStatus.details);
      assert.equal(serverEnds.length, 1, "a stream opened during the cut reached the server");

      proxy.heal();
      // The channel is in its reconnect backoff: a call made now would fail at once.
      await new Promise<void>((resolve, reject) =>
        client.waitForReady(Date.now() + WAIT_MS, (error) => error ? reject(error) : resolve())
      );
      const second = open();
      second.stream.write(pattern(3, 3));
      await waitUntil("an echo after heal", () => second.replies.length === 1);
      second.stream.end();
    } finally {
      client.close();
      await proxy.close();
      server.forceShutdown();
    }
  },
});
