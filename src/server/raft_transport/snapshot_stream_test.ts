/**
 * SST-form snapshots over `tikvpb.Tikv/Snapshot` between two real gRPC edges on 127.0.0.1:0
 * (served exactly as `extraServices` would add them beside `tikvpb.Tikv`): chunked sending,
 * checking on receipt, the receiving limit, partial files removed on every failure, and the
 * install on the receiving store from what arrived. Deno's op and resource sanitizers are on;
 * every wait has a deadline.
 */
import * as grpc from "@grpc/grpc-js";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { native } from "../../../ffi/native.ts";
import { metapb, raft_serverpb } from "../../../proto/mod.ts";
import { RocksDbEngine } from "../../engine/rocksdb_engine.ts";
import type { KvEngine } from "../../engine/types.ts";
import { MessageType, newMessage, type Snapshot } from "../../raft/mod.ts";
import { PeerState, type RegionMeta } from "../../raftstore/local_state.ts";
import { PeerStorage, writeInitialPeerState } from "../../raftstore/peer_storage.ts";
import { readRegionState, writeRegionState } from "../../raftstore/region_state.ts";
import type { RaftEnvelope, Transport } from "../../raftstore/transport.ts";
import { encodeRegionSnapshot } from "../../raftstore/snapshot.ts";
import { defaultConfig } from "../config.ts";
import {
  grpcEdgeSettings,
  type GrpcServer,
  startGrpcEdge,
  tikvServiceDefinition,
} from "../grpc_server.ts";
import { Logger } from "../log.ts";
import { envelopeToProto } from "./codec.ts";
import type { TransportLog } from "./methods.ts";
import { SnapshotDir } from "./snapshot_files.ts";
import {
  SnapshotRoutingTransport,
  SnapshotSender,
  type SnapshotSenderLimits,
} from "./snapshot_sender.ts";
import {
  SNAPSHOT_PATH,
  snapshotService,
  type SnapshotServiceLimits,
  type SnapshotServiceStats,
} from "./snapshot_service.ts";

// The RocksDB library stays loaded for the process: load it before the resource sanitizer looks.
native();

const WAIT_MS = 15_000;
const SHUTDOWN_GRACE_MS = 100;
const CHUNK = 4096;

function test(name: string, fn: () => Promise<void>): void {
  Deno.test({ name, sanitizeOps: true, sanitizeResources: true, fn });
}

async function waitFor(what: string, condition: () => boolean, timeoutMs = WAIT_MS) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

class RecordingLog implements TransportLog {
  readonly warnings: string[] = [];
  debug() {}
  info() {}
  warn(message: string, fields?: Record<string, unknown>) {
    this.warnings.push(
      `${message} ${JSON.stringify(fields, (_, v) => typeof v === "bigint" ? `${v}` : v)}`,
    );
  }
  error(message: string) {
    this.warnings.push(message);
  }
}

const utf8 = (text: string) => new TextEncoder().encode(text);

const REGION: RegionMeta = {
  id: 2n,
  startKey: utf8("k"),
  endKey: utf8("l"),
  regionEpoch: { confVer: 1n, version: 1n },
  peers: [
    { id: 11n, storeId: 1n, role: metapb.PeerRole.Voter },
    { id: 12n, storeId: 2n, role: metapb.PeerRole.Voter },
  ],
};

/** Bytes that do not compress: the files span many chunks. */
function noise(seed: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed * 2654435761 >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** A store: an engine, its snapshot directory, and (for receivers) a gRPC port with the service. */
class TestStore {
  readonly delivered: RaftEnvelope[] = [];
  server: GrpcServer | null = null;
  stats: SnapshotServiceStats | null = null;
  drain: () => void = () => {};

  constructor(readonly engine: RocksDbEngine, readonly snaps: SnapshotDir) {}

  static open(root: string, name: string): TestStore {
    return new TestStore(
      RocksDbEngine.open(`${root}/${name}`),
      new SnapshotDir(`${root}/${name}-snap`),
    );
  }

  serve(limits: Partial<SnapshotServiceLimits> = {}, log: TransportLog = new RecordingLog()): this {
    const service = snapshotService({
      dir: this.snaps,
      deliver: (envelopes) => {
        this.delivered.push(...envelopes);
      },
      log,
      limits,
    });
    this.server = startGrpcEdge("127.0.0.1:0", {
      services: [{ definition: tikvServiceDefinition(), handlers: {} }, service],
      edge: grpcEdgeSettings(defaultConfig().server),
      log: new Logger({ level: "error", file: "" }),
      drainStreams: () => service.drain(),
    });
    this.stats = service.stats;
    this.drain = service.drain;
    return this;
  }

  get addr(): string {
    return `127.0.0.1:${this.server!.port}`;
  }

  /** Snapshot files of the directory by name, partial ones included. */
  files(): string[] {
    return [...Deno.readDirSync(this.snaps.dir)].map((e) => e.name).sort();
  }

  async stop(): Promise<void> {
    if (this.server !== null) {
      await this.server.shutdown(SHUTDOWN_GRACE_MS);
      await new Promise((resolve) => setTimeout(resolve, SHUTDOWN_GRACE_MS + 20));
    }
    this.engine.close();
  }
}

async function withStores(body: (leader: TestStore, follower: TestStore) => Promise<void>) {
  const root = await Deno.makeTempDir({ prefix: "basalt-snapstream-" });
  const leader = TestStore.open(root, "leader");
  const follower = TestStore.open(root, "follower");
  try {
    await body(leader, follower);
  } finally {
    await leader.stop();
    await follower.stop();
    await Deno.remove(root, { recursive: true });
  }
}

/** Fills the leader's region (about 200 KB that does not compress) and generates its snapshot. */
function generate(leader: TestStore, pairs = 200): Snapshot {
  using batch = leader.engine.newWriteBatch();
  writeInitialPeerState(batch, { state: PeerState.Normal, region: REGION });
  for (let i = 0; i < pairs; i++) {
    const key = utf8(`k${String(i).padStart(4, "0")}`);
    batch.put("default", key, noise(i, 1000));
    batch.put("write", key, noise(i + 100_000, 24));
  }
  leader.engine.write(batch);
  return PeerStorage.load(leader.engine, REGION.id, { snapshots: leader.snaps }).snapshot();
}

function snapshotEnvelope(snapshot: Snapshot): RaftEnvelope {
  return {
    regionId: REGION.id,
    fromPeer: REGION.peers[0]!,
    toPeer: REGION.peers[1]!,
    regionEpoch: { ...REGION.regionEpoch },
    startKey: REGION.startKey,
    endKey: REGION.endKey,
    message: newMessage({
      msgType: MessageType.MsgSnapshot,
      to: 12n,
      from: 11n,
      term: 5n,
      snapshot,
    }),
    isTombstone: false,
  };
}

function sender(
  leader: TestStore,
  follower: TestStore,
  results: (string | null)[],
  limits: Partial<SnapshotSenderLimits> = {},
): SnapshotSender {
  return new SnapshotSender({
    dir: leader.snaps,
    resolve: () => Promise.resolve(follower.addr),
    log: new RecordingLog(),
    onResult: (_, problem) => results.push(problem),
    limits: { chunkBytes: CHUNK, ...limits },
  });
}

/** A raw Snapshot stream, to send what a well-behaved sender never would. */
function rawStream(addr: string) {
  const client = new grpc.Client(addr, grpc.credentials.createInsecure());
  let settle!: (error: grpc.ServiceError | null) => void;
  const answer = new Promise<grpc.ServiceError | null>((resolve) => settle = resolve);
  const call = client.makeClientStreamRequest<Uint8Array, Buffer>(
    SNAPSHOT_PATH,
    (bytes) => Buffer.from(bytes),
    (bytes) => bytes,
    new grpc.Metadata(),
    { deadline: Date.now() + WAIT_MS },
    (error) => settle(error),
  );
  call.on("error", () => {});
  return {
    call,
    write: (chunk: raft_serverpb.SnapshotChunk.$Properties) =>
      call.write(raft_serverpb.SnapshotChunk.encode(chunk).finish()),
    answer: answer.finally(() => client.close()),
    close: () => client.close(),
  };
}

/** The follower's uninitialized replica, then the install of the delivered snapshot. */
async function install(follower: TestStore, envelope: RaftEnvelope): Promise<void> {
  const engine: KvEngine = follower.engine;
  using batch = engine.newWriteBatch();
  writeRegionState(batch, { state: PeerState.Normal, region: { ...REGION, peers: [] } });
  engine.write(batch);
  const storage = PeerStorage.load(engine, REGION.id, { snapshots: follower.snaps });
  using ready = engine.newWriteBatch();
  storage.applySnapshot(ready, envelope.message.snapshot!);
  await engine.writeDurable(ready);
  await storage.finishSnapshotInstall(engine);
}

test("Snapshot stream: files go in bounded chunks, arrive checked, and install on the receiver", async () => {
  await withStores(async (leader, follower) => {
    follower.serve();
    const snapshot = generate(leader);
    const results: (string | null)[] = [];
    const out = sender(leader, follower, results);
    out.send(snapshotEnvelope(snapshot));
    await waitFor(
      "the snapshot delivered",
      () => follower.delivered.length === 1 && results.length === 1,
    );
    await out.close();
    assert.deepEqual(results, [null]);
    assert.ok(out.stats.bytesSent > 100_000, `${out.stats.bytesSent} bytes`);
    assert.ok(
      out.stats.chunksSent >= 1 + Math.ceil(out.stats.bytesSent / CHUNK),
      `${out.stats.chunksSent} chunks of at most ${CHUNK} bytes`,
    );
    assert.equal(follower.stats!.received, 1);
    assert.equal(follower.stats!.bytesReceived, out.stats.bytesSent);
    assert.equal(follower.stats!.receiving, 0);
    assert.deepEqual(leader.files(), [], "the sender released the generated snapshot");
    assert.deepEqual(follower.files(), [
      "rcv_2_5_5.meta",
      "rcv_2_5_5_default.sst",
      "rcv_2_5_5_write.sst",
    ]);
    const delivered = follower.delivered[0]!;
    assert.deepEqual(
      Uint8Array.from(delivered.message.snapshot!.data),
      Uint8Array.from(snapshot.data),
    );

    await install(follower, delivered);
    assert.equal(readRegionState(follower.engine, REGION.id)?.state, PeerState.Normal);
    // The follower's region now holds exactly the leader's pairs.
    const source = encodeRegionSnapshot(leader.engine, REGION, 1 << 30);
    const installed = encodeRegionSnapshot(follower.engine, REGION, 1 << 30);
    assert.ok(source !== null && installed !== null);
    assert.deepEqual(installed, source);
    assert.deepEqual(follower.files(), [], "installed: the received files are pruned");
  });
});

test("Snapshot stream: a file whose checksum does not match is refused and leaves nothing behind", async () => {
  await withStores(async (leader, follower) => {
    const log = new RecordingLog();
    follower.serve({}, log);
    const snapshot = generate(leader);
    // Damage the write CF's file without changing its size.
    const path = leader.snaps.filePath("gen", { regionId: 2n, term: 5n, index: 5n }, "write");
    const bytes = Deno.readFileSync(path);
    bytes[100] = bytes[100]! ^ 0xff;
    Deno.writeFileSync(path, bytes);
    const results: (string | null)[] = [];
    const out = sender(leader, follower, results);
    out.send(snapshotEnvelope(snapshot));
    await waitFor("the send to fail", () => results.length === 1);
    await out.close();
    assert.match(results[0]!, /INVALID_ARGUMENT .*column family write has checksum/);
    assert.equal(follower.stats!.malformed, 1);
    assert.match(log.warnings.join("\n"), /malformed snapshot stream/);
    await waitFor("partial files removed", () => follower.files().length === 0);
    assert.deepEqual(follower.delivered, []);
    assert.deepEqual(leader.files(), [], "a failed send releases the generated snapshot too");
  });
});

test("Snapshot stream: at most maxReceiving streams at once; a cancelled one leaves no files", async () => {
  await withStores(async (leader, follower) => {
    follower.serve({ maxReceiving: 1 });
    const snapshot = generate(leader);
    // A stream that started a different snapshot of the region and stalls mid-file.
    const other = { ...snapshot, metadata: { ...snapshot.metadata, index: 4n, term: 4n } };
    const stalled = rawStream(follower.addr);
    stalled.write({ message: envelopeToProto(snapshotEnvelope(other)) });
    stalled.write({ data: new Uint8Array(100) });
    await waitFor("the stalled stream receiving", () => follower.stats!.receiving === 1);
    await waitFor("its partial file", () => follower.files().some((f) => f.endsWith(".tmp")));

    const results: (string | null)[] = [];
    const out = sender(leader, follower, results);
    out.send(snapshotEnvelope(snapshot));
    await waitFor("the second stream refused", () => results.length === 1);
    assert.match(results[0]!, /RESOURCE_EXHAUSTED .*at most 1 snapshots at once/);
    assert.equal(follower.stats!.refusedBusy, 1);

    stalled.call.cancel();
    await stalled.answer;
    await waitFor("the cancelled stream's files removed", () => follower.files().length === 0);
    assert.equal(follower.stats!.receiving, 0);

    // With the place free, the snapshot goes through (Raft would have sent it again).
    const again = generate(leader);
    out.send(snapshotEnvelope(again));
    await waitFor("the retry", () => results.length === 2);
    await out.close();
    assert.deepEqual(results[1], null);
    assert.equal(follower.delivered.length, 1);
  });
});

test("Snapshot stream: malformed streams end with INVALID_ARGUMENT naming the problem, without files", async () => {
  await withStores(async (leader, follower) => {
    follower.serve({ chunkMaxBytes: 1000 });
    const snapshot = generate(leader);
    const first = { message: envelopeToProto(snapshotEnvelope(snapshot)) };
    const cases: [string, (s: ReturnType<typeof rawStream>) => void, RegExp][] = [
      [
        "no message first",
        (s) => s.write({ data: new Uint8Array(10) }),
        /first chunk carries no message/,
      ],
      ["a chunk too large", (s) => {
        s.write(first);
        s.write({ data: new Uint8Array(1001) });
      }, /chunk of 1001 bytes is larger than 1000/],
      ["ended early", (s) => {
        s.write(first);
        s.write({ data: new Uint8Array(500) });
        s.call.end();
      }, /ended after 500 of \d+ bytes/],
      ["an inline snapshot", (s) => {
        const inline = encodeRegionSnapshot(leader.engine, REGION, 1 << 30)!;
        s.write({ message: envelopeToProto(snapshotEnvelope({ ...snapshot, data: inline })) });
      }, /inline snapshot on the Snapshot stream/],
      ["not a snapshot", (s) => {
        const heartbeat = snapshotEnvelope(snapshot);
        heartbeat.message = newMessage({ msgType: MessageType.MsgHeartbeat, to: 12n, from: 11n });
        s.write({ message: envelopeToProto(heartbeat) });
      }, /not a snapshot/],
    ];
    for (const [what, send, expected] of cases) {
      const s = rawStream(follower.addr);
      send(s);
      const error = await s.answer;
      assert.equal(error?.code, grpc.status.INVALID_ARGUMENT, what);
      assert.match(error!.details, expected, what);
      await waitFor(`${what}: files removed`, () => follower.files().length === 0);
    }
    assert.equal(follower.stats!.malformed, cases.length);
    assert.deepEqual(follower.delivered, []);
  });
});

test("Snapshot stream: a stream past receiveTimeoutMs, or open at drain, is ended and its files removed", async () => {
  await withStores(async (leader, follower) => {
    follower.serve({ receiveTimeoutMs: 300 });
    const snapshot = generate(leader);
    const slow = rawStream(follower.addr);
    slow.write({ message: envelopeToProto(snapshotEnvelope(snapshot)) });
    slow.write({ data: new Uint8Array(10) });
    const error = await slow.answer;
    assert.equal(error?.code, grpc.status.DEADLINE_EXCEEDED);
    assert.match(error!.details, /not received whole within 300 ms/);
    await waitFor("files removed after the timeout", () => follower.files().length === 0);

    const open = rawStream(follower.addr);
    open.write({ message: envelopeToProto(snapshotEnvelope(snapshot)) });
    open.write({ data: new Uint8Array(10) });
    await waitFor("receiving", () => follower.files().length === 1);
    follower.drain();
    assert.equal((await open.answer)?.code, grpc.status.UNAVAILABLE);
    await waitFor("files removed after drain", () => follower.files().length === 0);
    assert.equal(follower.stats!.failed, 2);
  });
});

test("SnapshotRoutingTransport: SST snapshots take the Snapshot stream, everything else the inner transport", async () => {
  await withStores(async (leader, _follower) => {
    const snapshot = generate(leader);
    const inner: RaftEnvelope[] = [];
    const innerTransport: Transport = { send: (e) => void inner.push(e) };
    const results: (string | null)[] = [];
    const out = new SnapshotSender({
      dir: leader.snaps,
      resolve: () => Promise.reject(new Error("store 2 has no address yet")),
      log: new RecordingLog(),
      onResult: (_, problem) => results.push(problem),
    });
    const transport = new SnapshotRoutingTransport(innerTransport, out);
    const inline = encodeRegionSnapshot(leader.engine, REGION, 1 << 30)!;
    transport.send(snapshotEnvelope({ ...snapshot, data: inline }));
    const heartbeat = snapshotEnvelope(snapshot);
    heartbeat.message = newMessage({ msgType: MessageType.MsgHeartbeat, to: 12n, from: 11n });
    transport.send(heartbeat);
    transport.send(snapshotEnvelope(snapshot));
    assert.equal(inner.length, 2, "the inline snapshot and the heartbeat");
    await waitFor("the SST snapshot's send to fail", () => results.length === 1);
    await out.close();
    assert.match(results[0]!, /store 2 has no address yet/);
    assert.deepEqual(leader.files(), [], "released after the failure");
  });
});
