/**
 * The transport over real gRPC: stores' ports are the store's own network edge
 * (`startGrpcEdge` on 127.0.0.1:0, serving `tikvpb.Tikv` with the Raft methods added beside it
 * exactly as src/server/grpc_server.ts's `extraServices` would), clients are `RaftClient`s.
 * Deno's op and resource sanitizers are on (opted into per test: Deno 2.9.6 runs without them
 * unless asked): every test closes its clients and servers, and a leaked connection or timer
 * fails it. Every wait has a deadline and names what it
 * waited for.
 */
import * as grpc from "@grpc/grpc-js";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { metapb, raft_serverpb } from "../../../proto/mod.ts";
import { EntryType, MessageType, newMessage } from "../../raft/mod.ts";
import type { RaftEnvelope } from "../../raftstore/transport.ts";
import { defaultConfig } from "../config.ts";
import {
  grpcEdgeSettings,
  type GrpcServer,
  startGrpcEdge,
  tikvServiceDefinition,
} from "../grpc_server.ts";
import { Logger } from "../log.ts";
import { makeTestPki, opensslMissing } from "../../security/test_certs.ts";
import { channelCredentials, loadTlsIdentity, serverCredentials } from "../../security/tls.ts";
import { RaftClient, type RaftClientLimits } from "./client.ts";
import { decodeEnvelope, encodeEnvelope, frameBatch } from "./codec.ts";
import { BATCH_RAFT_PATH, RAFT_PATH, type TransportLog } from "./methods.ts";
import { raftService, type RaftServiceStats } from "./service.ts";

const WAIT_MS = 15_000;
const SHUTDOWN_GRACE_MS = 100;
/** How late grpc-js's leftover reconnect timer may fire on a loaded machine. */
const GRPC_TIMER_MARGIN_MS = 1_000;

/**
 * A test with Deno's op and resource sanitizers on; `grpcTimers: "loose"` turns them off for a
 * test that stops a gRPC server and channels mid-connection, whose grpc-js timers
 * (reconnect backoff, session idle) end late on a loaded machine (seen under the parallel
 * suite): such a test checks our own timers with `openHandles()` instead.
 */
function test(name: string, fn: () => Promise<void>, grpcTimers: "strict" | "loose" = "strict") {
  // Deno 2.9.6 counts timers in the resource sanitizer: "loose" turns both off.
  const strict = grpcTimers === "strict";
  Deno.test({ name, sanitizeOps: strict, sanitizeResources: strict, fn });
}

/** Polls `condition` every 10 ms until it holds; fails naming `what` after `timeoutMs`. */
async function waitFor(what: string, condition: () => boolean, timeoutMs = WAIT_MS) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A logger that keeps warnings (tests read them) and drops the rest. */
class RecordingLog implements TransportLog {
  readonly warnings: string[] = [];
  debug() {}
  info() {}
  warn(message: string) {
    this.warnings.push(message);
  }
  error(message: string) {
    this.warnings.push(message);
  }
}

/** A store's gRPC port with the Raft service, recording what it receives. */
class StorePort {
  readonly received: RaftEnvelope[] = [];
  /** Problems of delivered messages that did not decode (a region worker drops them). */
  readonly refused: string[] = [];
  readonly batchSizes: number[] = [];
  private constructor(
    readonly server: GrpcServer,
    readonly stats: RaftServiceStats,
    readonly drain: () => void,
  ) {}

  /** Deliveries held back while `holdDeliveries` (each resolves when released). */
  readonly held: (() => void)[] = [];
  holdDeliveries = false;

  static start(
    port = 0,
    options: {
      log?: TransportLog;
      maxPendingBatches?: number;
      credentials?: grpc.ServerCredentials;
    } = {},
  ): StorePort {
    let self: StorePort | null = null;
    const service = raftService({
      deliver(messages) {
        self!.batchSizes.push(messages.length);
        // What a region worker does with them (region_worker.ts, `receiveRaft`).
        for (const { regionId, bytes } of messages) {
          const decoded = decodeEnvelope(bytes);
          if (!decoded.ok) {
            self!.refused.push(decoded.problem);
            continue;
          }
          assert.equal(decoded.value.regionId, regionId, "the peeked region id is the message's");
          self!.received.push(decoded.value);
        }
        if (!self!.holdDeliveries) return;
        return new Promise<void>((resolve) => self!.held.push(resolve));
      },
      log: options.log ?? new RecordingLog(),
      maxPendingBatches: options.maxPendingBatches,
    });
    const server = startGrpcEdge(`127.0.0.1:${port}`, {
      // tikvpb.Tikv's own methods (unimplemented here) beside BatchRaft and Raft: the lead's
      // wiring through `extraServices` is exactly this.
      services: [{ definition: tikvServiceDefinition(), handlers: {} }, service],
      edge: grpcEdgeSettings(defaultConfig().server),
      log: new Logger({ level: "error", file: "" }),
      credentials: options.credentials,
      drainStreams: () => service.drain(),
    });
    self = new StorePort(server, service.stats, service.drain);
    return self;
  }

  /** Finishes every held delivery (and those after it, until told to hold again). */
  releaseDeliveries(): void {
    this.holdDeliveries = false;
    for (const release of this.held.splice(0)) release();
  }

  get addr(): string {
    return `127.0.0.1:${this.server.port}`;
  }

  indexes(): number[] {
    return this.received.map((e) => Number(e.message.index));
  }

  /**
   * Shuts the port down, then waits out the grace timer grpc-js's `drain` leaves behind (it
   * destroys sessions still open after `SHUTDOWN_GRACE_MS`), which the op sanitizer would
   * otherwise count as this test's leak.
   */
  async stop(): Promise<void> {
    await this.server.shutdown(SHUTDOWN_GRACE_MS);
    await new Promise((resolve) => setTimeout(resolve, SHUTDOWN_GRACE_MS + 20));
  }
}

/** A heartbeat from store `from` to store `to`, numbered by `index`. */
function heartbeat(index: number, route: { from: bigint; to: bigint }): RaftEnvelope {
  return {
    regionId: 1n,
    fromPeer: { id: route.from * 10n, storeId: route.from, role: metapb.PeerRole.Voter },
    toPeer: { id: route.to * 10n, storeId: route.to, role: metapb.PeerRole.Voter },
    regionEpoch: { confVer: 1n, version: 1n },
    startKey: new Uint8Array(),
    endKey: new Uint8Array(),
    message: newMessage({
      msgType: MessageType.MsgHeartbeat,
      to: route.to * 10n,
      from: route.from * 10n,
      term: 1n,
      index: BigInt(index),
    }),
    isTombstone: false,
  };
}

const A_TO_B = { from: 1n, to: 2n };
const B_TO_A = { from: 2n, to: 1n };

/** Fast reconnection for tests; everything else as the constants say. */
const FAST: Partial<RaftClientLimits> = { backoffInitialMs: 20, backoffMaxMs: 200 };

function clientFor(
  addresses: Map<bigint, string>,
  extra: {
    limits?: Partial<RaftClientLimits>;
    dialRewrite?: (addr: string) => string;
    credentials?: grpc.ChannelCredentials;
  } = {},
) {
  const unreachable: bigint[] = [];
  const resolved: bigint[] = [];
  const log = new RecordingLog();
  const client = new RaftClient({
    resolve(storeId) {
      resolved.push(storeId);
      const addr = addresses.get(storeId);
      return addr === undefined
        ? Promise.reject(new Error(`store ${storeId} is not known`))
        : Promise.resolve(addr);
    },
    unreachable: (storeId) => unreachable.push(storeId),
    log,
    limits: { ...FAST, ...extra.limits },
    dialRewrite: extra.dialRewrite,
    credentials: extra.credentials,
  });
  return { client, unreachable, resolved, log };
}

/**
 * Closes `client` and checks that it holds nothing afterwards (module header). Then waits out
 * the reconnect-backoff timer grpc-js leaves behind a channel whose connection failed (set to
 * the client's first backoff, FAST's 20 ms ± 20%; client.ts says why), which the op sanitizer
 * would otherwise count. The client's own timers are checked without that grace by the test
 * with a one-minute backoff.
 */
async function closeClient(client: RaftClient): Promise<void> {
  await client.close();
  assert.equal(client.openHandles(), 0, "a closed client holds no timer, lookup or channel");
  // The margin covers a loaded machine (the suite runs in parallel): grpc-js's timer fires late
  // there, and the op sanitizer counts it against this test or the next.
  await new Promise((resolve) =>
    setTimeout(resolve, 2 * FAST.backoffInitialMs! + GRPC_TIMER_MARGIN_MS)
  );
}

/** A loopback port nothing listens on (bound, then released). */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

test("transport: envelopes between two stores arrive in order, batched under a burst", async () => {
  const a = StorePort.start();
  const b = StorePort.start();
  const addresses = new Map([[1n, a.addr], [2n, b.addr]]);
  const fromA = clientFor(addresses, { limits: { batchMaxMessages: 64 } });
  const fromB = clientFor(addresses);
  try {
    const burst = 1000;
    for (let i = 0; i < burst; i++) fromA.client.send(heartbeat(i, A_TO_B));
    fromB.client.send(heartbeat(7, B_TO_A));
    await waitFor(`${burst} envelopes at B`, () => b.received.length === burst);
    await waitFor("B's envelope at A", () => a.received.length === 1);
    assert.deepEqual(b.indexes(), Array.from({ length: burst }, (_, i) => i));
    assert.deepEqual(b.received[0], heartbeat(0, A_TO_B));
    assert.deepEqual(a.received, [heartbeat(7, B_TO_A)]);
    // Batched: far fewer BatchRaftMessages than envelopes, none above the limit.
    assert.equal(b.stats.envelopesDelivered, burst);
    assert.ok(b.stats.messagesReceived < burst / 10, `${b.stats.messagesReceived} batches`);
    assert.ok(b.stats.messagesReceived >= Math.ceil(burst / 64));
    assert.ok(Math.max(...b.batchSizes) <= 64, `batch sizes ${b.batchSizes}`);
    assert.equal(fromA.client.stats.batchesSent, b.stats.messagesReceived);
    assert.deepEqual(fromA.unreachable, []);
  } finally {
    await closeClient(fromA.client);
    await closeClient(fromB.client);
    await a.stop();
    await b.stop();
  }
});

test("transport: a link reconnects after the receiving store restarts on the same port", async () => {
  let b = StorePort.start();
  const port = b.server.port;
  // The store is known by a name that only dialRewrite turns into an address, so the test
  // also sees the hook applied at every (re)connect.
  const addresses = new Map([[2n, "store-b"]]);
  const rewritten: string[] = [];
  const fromA = clientFor(addresses, {
    dialRewrite: (addr) => {
      rewritten.push(addr);
      return addr === "store-b" ? `127.0.0.1:${port}` : addr;
    },
  });
  try {
    fromA.client.send(heartbeat(0, A_TO_B));
    await waitFor("the first envelope at B", () => b.received.length === 1);
    await b.stop();
    await waitFor("B reported unreachable", () => fromA.unreachable.length > 0);
    assert.deepEqual([...new Set(fromA.unreachable)], [2n]);
    b = StorePort.start(port);
    // Envelopes sent while the link comes back are queued, then delivered; keep sending until
    // one gets through (a bounded loop: waitFor's deadline).
    let next = 1;
    await waitFor("an envelope at the restarted B", () => {
      fromA.client.send(heartbeat(next++, A_TO_B));
      return b.received.length > 0;
    });
    assert.ok(fromA.client.stats.streamsOpened >= 2);
    assert.ok(fromA.resolved.length >= 2, "the address is resolved again after a failure");
    assert.ok(rewritten.length >= 2 && rewritten.every((addr) => addr === "store-b"));
    // Order holds on the new stream too.
    const got = b.indexes();
    assert.deepEqual(got, [...got].sort((x, y) => x - y));
  } finally {
    await closeClient(fromA.client);
    await b.stop();
  }
});

test("transport: while a store is down its queue keeps the newest envelopes, drops counted", async () => {
  const port = freePort();
  const addresses = new Map([[2n, `127.0.0.1:${port}`]]);
  const fromA = clientFor(addresses, { limits: { queueMaxMessages: 10 } });
  let b: StorePort | null = null;
  try {
    for (let i = 0; i < 25; i++) fromA.client.send(heartbeat(i, A_TO_B));
    assert.equal(fromA.client.stats.droppedOverflow, 15);
    assert.equal(fromA.client.linkState(2n)?.queued, 10);
    await waitFor("B reported unreachable", () => fromA.unreachable.includes(2n));
    assert.ok(fromA.log.warnings.includes("raft link to store failed"));
    assert.ok(fromA.client.openHandles() > 0, "a link backing off holds its timer");
    assert.equal(fromA.client.linkState(2n)?.queued, 10, "nothing is lost while reconnecting");
    b = StorePort.start(port);
    await waitFor("the queued envelopes at B", () => b!.received.length === 10);
    // The oldest fifteen were dropped; the newest ten arrive, in order.
    assert.deepEqual(b.indexes(), [15, 16, 17, 18, 19, 20, 21, 22, 23, 24]);
  } finally {
    await closeClient(fromA.client);
    await b?.stop();
  }
});

test("transport: an envelope above the size limit is dropped and counted, others go", async () => {
  const b = StorePort.start();
  const fromA = clientFor(new Map([[2n, b.addr]]), {
    limits: { envelopeMaxBytes: 200, batchMaxBytes: 200 },
  });
  try {
    const big = heartbeat(1, A_TO_B);
    big.message.context = new Uint8Array(500);
    fromA.client.send(big);
    fromA.client.send(heartbeat(2, A_TO_B));
    assert.equal(fromA.client.stats.droppedOversize, 1);
    await waitFor("the small envelope at B", () => b.received.length === 1);
    assert.deepEqual(b.indexes(), [2]);
  } finally {
    await closeClient(fromA.client);
    await b.stop();
  }
});

test("transport: sendEncoded sends a worker's bytes undecoded; a view that must wait is copied; an oversize one is dropped", async () => {
  const port = freePort();
  const fromA = clientFor(new Map([[2n, `127.0.0.1:${port}`]]), {
    limits: { envelopeMaxBytes: 200, batchMaxBytes: 200 },
  });
  let b: StorePort | null = null;
  try {
    // One buffer holding a round's messages, as a region worker posts it (worker_protocol.ts).
    const [one, two] = [1, 2].map((i) => encodeEnvelope(heartbeat(i, A_TO_B)));
    const round = new Uint8Array(one!.length + two!.length + 300);
    round.set(one!, 0);
    round.set(two!, one!.length);
    const about = { regionId: 1n, msgType: MessageType.MsgHeartbeat };
    fromA.client.sendEncoded(2n, round.subarray(0, one!.length), about);
    fromA.client.sendEncoded(2n, round.subarray(0, 201), about); // past envelopeMaxBytes
    fromA.client.sendEncoded(2n, round.subarray(one!.length, one!.length + two!.length), about);
    assert.equal(fromA.client.stats.droppedOversize, 1);
    assert.ok(fromA.log.warnings.includes("raft envelope too large to send, dropped"));
    assert.equal(fromA.client.linkState(2n)?.queued, 2);
    // Store 2 is down, so both wait in the queue: as copies, not views pinning the round's
    // buffer. Overwriting the buffer shows it (a view would now send zeros, which B refuses).
    round.fill(0);
    b = StorePort.start(port);
    await waitFor("both messages at B", () => b!.received.length === 2);
    assert.deepEqual(b.indexes(), [1, 2]);
    assert.equal(b.stats.malformedMessages, 0);
  } finally {
    await closeClient(fromA.client);
    await b?.stop();
  }
});

/** Opens a raw client stream on `path` at `addr`; resolves with the call's outcome. */
function rawStream(addr: string, path: string, messages: Uint8Array[]) {
  const client = new grpc.Client(addr, grpc.credentials.createInsecure());
  return new Promise<{ error: grpc.ServiceError | null }>((resolve) => {
    const call = client.makeClientStreamRequest<Uint8Array, Buffer>(
      path,
      (bytes) => Buffer.from(bytes),
      (bytes) => bytes,
      { deadline: Date.now() + WAIT_MS },
      (error) => resolve({ error }),
    );
    for (const message of messages) call.write(message);
    call.end();
  }).finally(() => client.close());
}

test("transport: broken framing or a missing region id ends the stream with INVALID_ARGUMENT, nothing of it delivered", async () => {
  const log = new RecordingLog();
  const b = StorePort.start(0, { log });
  const fromA = clientFor(new Map([[2n, b.addr]]));
  try {
    const good = encodeEnvelope(heartbeat(1, A_TO_B));
    const garbage = new Uint8Array([0x0a, 0x40, 0x01, 0x02]); // msgs field longer than the input
    const { error } = await rawStream(b.addr, BATCH_RAFT_PATH, [garbage]);
    assert.equal(error?.code, grpc.status.INVALID_ARGUMENT);
    assert.match(error!.details, /BatchRaft: not a BatchRaftMessage/);
    assert.equal(b.stats.malformedMessages, 1);
    assert.ok(log.warnings.includes("malformed raft message, stream ended"));
    // A message without a region id cannot be routed: its whole batch is refused.
    const noRegion = raft_serverpb.RaftMessage.encode({
      fromPeer: { id: 10n, storeId: 1n },
      toPeer: { id: 20n, storeId: 2n },
      message: { msgType: MessageType.MsgHeartbeat },
    }).finish();
    const second = await rawStream(b.addr, BATCH_RAFT_PATH, [frameBatch([good, noRegion])]);
    assert.equal(second.error?.code, grpc.status.INVALID_ARGUMENT);
    assert.match(second.error!.details, /message 1: region id is 0/);
    // So is a batch holding a message whose own framing is broken (cut short inside it).
    const cut = frameBatch([good, good.subarray(0, good.length - 3)]);
    const third = await rawStream(b.addr, BATCH_RAFT_PATH, [cut]);
    assert.equal(third.error?.code, grpc.status.INVALID_ARGUMENT);
    assert.match(third.error!.details, /message 1: not a RaftMessage/);
    assert.equal(b.stats.malformedMessages, 3);
    assert.equal(b.received.length + b.refused.length, 0, "nothing of a refused batch delivered");
    // The server goes on serving.
    fromA.client.send(heartbeat(3, A_TO_B));
    await waitFor("an envelope after the malformed streams", () => b.received.length === 1);
    assert.equal(b.stats.streamsOpen, 1, "only the client's stream is still open");
  } finally {
    await closeClient(fromA.client);
    await b.stop();
  }
});

/** A RaftMessage from store 1 to store 2 of region 1, with `outer` and `message` fields set. */
function rawMessage(message: Record<string, unknown> | null, outer: Record<string, unknown> = {}) {
  return raft_serverpb.RaftMessage.encode({
    regionId: 1n,
    fromPeer: { id: 10n, storeId: 1n },
    toPeer: { id: 20n, storeId: 2n },
    message: message === null ? null : { msgType: MessageType.MsgHeartbeat, ...message },
    ...outer,
  }).finish();
}

test("transport: each message malformed inside is delivered for its worker to drop; every batch-mate arrives", async () => {
  const log = new RecordingLog();
  const b = StorePort.start(0, { log });
  try {
    // Every problem only a decode sees (codec.ts's refusals past the region id), each between
    // two good messages of one batch.
    const inner: [Uint8Array, string][] = [
      [rawMessage({ msgType: MessageType.MsgHup }), "local message type MsgHup from the wire"],
      [rawMessage({ msgType: 99 }), "unknown message type 99"],
      [
        rawMessage({ entries: [{ entryType: EntryType.EntryConfChangeV2, index: 4n }] }),
        "entry 4 is a ConfChangeV2, which is not supported",
      ],
      [rawMessage({ entries: [{ entryType: 7, index: 5n }] }), "entry 5 has unknown type 7"],
      [rawMessage({ msgType: MessageType.MsgSnapshot }), "MsgSnapshot without snapshot metadata"],
      [rawMessage({}, { toPeer: null }), "no to_peer"],
      [rawMessage({}, { fromPeer: { id: 10n } }), "from_peer is peer 10 on store 0"],
      [rawMessage({}, { toPeer: { id: 20n, storeId: 2n, role: 9 } }), "to_peer has unknown role 9"],
      [rawMessage(null), "no Raft message"],
    ];
    const messages = [encodeEnvelope(heartbeat(0, A_TO_B))];
    inner.forEach(([bytes], i) => messages.push(bytes, encodeEnvelope(heartbeat(i + 1, A_TO_B))));
    const { error } = await rawStream(b.addr, BATCH_RAFT_PATH, [frameBatch(messages)]);
    assert.equal(error, null, "the stream is answered Done");
    assert.equal(b.stats.malformedMessages, 0);
    assert.equal(b.stats.envelopesDelivered, messages.length);
    assert.deepEqual(b.batchSizes, [messages.length]);
    assert.deepEqual(b.indexes(), Array.from({ length: inner.length + 1 }, (_, i) => i));
    assert.deepEqual(b.refused, inner.map(([, problem]) => problem));
    assert.deepEqual(log.warnings, []);
  } finally {
    await b.stop();
  }
});

test("transport: the Raft method takes one RaftMessage per stream message and answers Done", async () => {
  const b = StorePort.start();
  try {
    const messages = [1, 2, 3].map((i) => encodeEnvelope(heartbeat(i, A_TO_B)));
    const { error } = await rawStream(b.addr, RAFT_PATH, messages);
    assert.equal(error, null);
    assert.deepEqual(b.indexes(), [1, 2, 3]);
    assert.deepEqual(b.batchSizes, [1, 1, 1]);
    const bad = await rawStream(b.addr, RAFT_PATH, [new Uint8Array([0xff])]);
    assert.equal(bad.error?.code, grpc.status.INVALID_ARGUMENT);
    assert.match(bad.error!.details, /Raft: not a RaftMessage/);
  } finally {
    await b.stop();
  }
});

test("transport: a receiver slow to deliver pauses the stream; the sender's queue bound holds", async () => {
  const b = StorePort.start(0, { maxPendingBatches: 2 });
  // One envelope per batch, 8 KiB each, so that HTTP/2's window fills after a few dozen.
  const fromA = clientFor(new Map([[2n, b.addr]]), {
    limits: { batchMaxMessages: 1, queueMaxMessages: 50 },
  });
  try {
    // The link is open first, so that nothing below queues for want of a connection.
    fromA.client.send(heartbeat(0, A_TO_B));
    await waitFor("the first envelope at B", () => b.received.length === 1);
    b.received.length = 0;
    b.holdDeliveries = true;
    const total = 400;
    for (let i = 1; i < total; i++) {
      const envelope = heartbeat(i, A_TO_B);
      envelope.message.context = new Uint8Array(8 * 1024);
      fromA.client.send(envelope);
      // A macrotask between sends: the writes meet a full stream rather than one flush.
      if (i % 50 === 49) await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await waitFor("the stream paused", () => b.stats.pauses === 1);
    // Paused at the bound: no delivery starts while two are unfinished.
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(b.received.length, 2);
    assert.ok(fromA.client.stats.droppedOverflow > 0, "the sender's queue dropped its oldest");
    assert.ok((fromA.client.linkState(2n)?.queued ?? 0) <= 50);
    b.releaseDeliveries();
    const expected = total - 1 - fromA.client.stats.droppedOverflow;
    await waitFor(`${expected} envelopes at B`, () => b.received.length === expected);
    const got = b.indexes();
    assert.deepEqual(got, [...got].sort((x, y) => x - y), "in order, with a gap where dropped");
    assert.equal(got[got.length - 1], total - 1, "the newest envelope arrives");
  } finally {
    b.releaseDeliveries();
    await closeClient(fromA.client);
    await b.stop();
  }
});

test("transport: close() ends an open stream gracefully: the receiver answers Done", async () => {
  const b = StorePort.start();
  const fromA = clientFor(new Map([[2n, b.addr]]));
  try {
    fromA.client.send(heartbeat(1, A_TO_B));
    await waitFor("the envelope at B", () => b.received.length === 1);
    assert.equal(b.stats.streamsOpen, 1);
    await closeClient(fromA.client);
    assert.equal(fromA.client.stats.streamsCancelledAtClose, 0, "ended, not cancelled");
    await waitFor("B's stream closed", () => b.stats.streamsOpen === 0);
    assert.equal(b.stats.streamsDone, 1);
  } finally {
    await closeClient(fromA.client);
    await b.stop();
  }
});

test("transport: a store whose address cannot be found backs off; close() ends the wait", async () => {
  // Only this client's own timers are involved (no channel is made): a long backoff that
  // close() did not clear would be this test's leak.
  const fromA = clientFor(new Map(), {
    limits: { backoffInitialMs: 60_000, backoffMaxMs: 60_000 },
  });
  fromA.client.send(heartbeat(1, A_TO_B));
  await waitFor("store 2 reported unreachable", () => fromA.unreachable.includes(2n));
  assert.equal(fromA.client.linkState(2n)?.state, "backoff");
  assert.equal(fromA.client.stats.failures, 1);
  assert.ok(fromA.log.warnings.includes("raft link to store failed"));
  await closeClient(fromA.client);
  assert.equal(fromA.client.stats.droppedClosed, 1, "the queued envelope is dropped at close");
});

test("transport: bad addresses and a throwing resolver are failures reported, not crashes", async () => {
  const unreachable = new Set<bigint>();
  const client = new RaftClient({
    resolve(storeId) {
      if (storeId === 4n) throw new Error("no PD");
      const addresses = new Map([[2n, ""], [3n, "store-3"], [5n, "127.0.0.1:99999"]]);
      return Promise.resolve(addresses.get(storeId)!);
    },
    // grpc-js throws on an empty target; the link must take that as a failure.
    dialRewrite: (addr) => addr === "store-3" ? "" : addr,
    unreachable: (storeId) => unreachable.add(storeId),
    log: new RecordingLog(),
    limits: FAST,
  });
  try {
    for (const to of [2n, 3n, 4n, 5n]) client.send(heartbeat(1, { from: 1n, to }));
    await waitFor("every store reported unreachable", () => unreachable.size === 4);
    assert.ok(client.stats.failures >= 4);
  } finally {
    await closeClient(client);
  }
});

test("transport: close() ends streams, backoff timers and pending resolves", async () => {
  const b = StorePort.start();
  const addresses = new Map([[2n, b.addr], [3n, `127.0.0.1:${freePort()}`]]);
  let hangingResolves = 0;
  const fromA = clientFor(addresses);
  // Store 4's address never comes (a PD that does not answer).
  const hanging = new RaftClient({
    resolve: () => {
      hangingResolves++;
      return new Promise<string>(() => {});
    },
    log: new RecordingLog(),
    limits: { resolveTimeoutMs: 600_000 },
  });
  try {
    fromA.client.send(heartbeat(1, A_TO_B)); // An open stream.
    fromA.client.send(heartbeat(1, { from: 1n, to: 3n })); // A link backing off.
    hanging.send(heartbeat(1, { from: 1n, to: 4n })); // A resolve in progress.
    await waitFor("the envelope at B", () => b.received.length === 1);
    await waitFor("store 3 reported unreachable", () => fromA.unreachable.includes(3n));
    assert.equal(hangingResolves, 1);
  } finally {
    await closeClient(fromA.client);
    // close() ends the resolve in progress rather than waiting out its timeout.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const closed = await Promise.race([
      hanging.close().then(() => true),
      new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), WAIT_MS)),
    ]);
    clearTimeout(timer);
    assert.ok(closed, "close() returned while a resolve was pending");
    assert.equal(fromA.client.openHandles(), 0);
    assert.equal(hanging.openHandles(), 0);
    await b.stop();
  }
  // After close, sends are dropped and counted; nothing reconnects.
  fromA.client.send(heartbeat(2, A_TO_B));
  assert.equal(fromA.client.stats.droppedClosed >= 1, true);
  assert.equal(fromA.client.linkState(2n)?.state, "closed");
  assert.equal(fromA.client.linkState(2n)?.queued, 0);
}, "loose");

const NO_OPENSSL = await opensslMissing();
if (NO_OPENSSL !== null) console.log(`TLS transport test skipped: ${NO_OPENSSL}`);

Deno.test({
  name: "transport: with TLS credentials envelopes arrive; a plain-text client is refused",
  ignore: NO_OPENSSL !== null,
  // As in src/security/tls_test.ts: Deno's TLS streams are not tracked to the end of a test.
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const pki = await makeTestPki();
    const identity = (pair: { certPath: string; keyPath: string }) =>
      loadTlsIdentity({ caPath: pki.caPath, ...pair });
    const b = StorePort.start(0, {
      credentials: serverCredentials(identity(pki.server), { allowedCommonNames: [] }),
    });
    const addresses = new Map([[2n, b.addr]]);
    const secure = clientFor(addresses, {
      credentials: channelCredentials(identity(pki.client)),
    });
    const plain = clientFor(addresses);
    try {
      secure.client.send(heartbeat(1, A_TO_B));
      await waitFor("the envelope at B over TLS", () => b.received.length === 1);
      plain.client.send(heartbeat(2, A_TO_B));
      await waitFor("the plain-text link reported unreachable", () => plain.unreachable.length > 0);
      assert.deepEqual(b.indexes(), [1]);
    } finally {
      await closeClient(secure.client);
      await closeClient(plain.client);
      await b.stop();
      await pki.remove();
    }
  },
});
