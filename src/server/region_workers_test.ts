/**
 * The region workers seen from the main thread.
 *
 * Stopping (issue #9, item 5): the pool reports whether every worker detached from the engine,
 * and a worker that did not answer in time is never counted out — the database refuses to close
 * under it — until its late "stopped" arrives.
 *
 * Routing (issue #10, DESIGN.md §4.1): the main thread's table places regions on the
 * least-loaded worker — with two workers and two regions, both serve — moves a region between
 * workers (its state is on disk), and answers an unknown region RegionNotFound.
 *
 * Bugs (STYLE.md): a failed assertion inside a command ends its worker, which is replaced and
 * rebuilt from disk; an expected failure is answered INTERNAL and the worker goes on.
 */
import assert from "node:assert/strict";
import { kvrpcpb, metapb, raft_serverpb } from "../../proto/mod.ts";
import { MessageType, newMessage } from "../raft/mod.ts";
import type { RaftEnvelope } from "../raftstore/transport.ts";
import { decodeEnvelope, encodeEnvelope } from "./raft_transport/codec.ts";
import type { EncodedTransport } from "./raft_transport/client.ts";
import { RocksDbEngine } from "../engine/rocksdb_engine.ts";
import { utf8 } from "../util/bytes.ts";
import { LOG_REPEAT_MAX_LINES } from "../constants.ts";
import { Logger } from "./log.ts";
import { type Region, standaloneRegion } from "./region.ts";
import {
  poolOptions,
  type RegionWorkerOptions,
  RegionWorkers,
  type UnaryResult,
} from "./region_workers.ts";
import { bootstrapRegions, recordRegions } from "./store_regions.ts";

const context = { regionId: 1n, regionEpoch: { confVer: 1n, version: 1n } };
/** Keys preloaded so that one scan keeps its worker busy for many milliseconds. */
const PRELOADED_KEYS = 60_000;
const WAIT_MS = 10_000;

async function withPool(
  body: (engine: RocksDbEngine, workers: RegionWorkers, logPath: string) => Promise<void>,
  options: Partial<RegionWorkerOptions> = {},
) {
  const dir = await Deno.makeTempDir({ prefix: "basalt_workers_" });
  const engine = RocksDbEngine.open(dir, { blockCacheBytes: 8 << 20 });
  const log = new Logger({ level: "error", file: `${dir}.log` });
  let workers: RegionWorkers | null = null;
  try {
    await bootstrapRegions(engine, options.regions ?? [standaloneRegion()]);
    workers = await RegionWorkers.start({
      count: 2,
      engine,
      syncLog: true,
      latestTs: () => 1n,
      logLevel: "error",
      ttlCheckPollIntervalMs: 0,
      log,
      ...options,
    });
    await body(engine, workers, `${dir}.log`);
  } finally {
    if (workers !== null && engine.attachedCount > 0) await workers.stop();
    if (!engine.closed && engine.attachedCount === 0) engine.close();
    log.close();
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(`${dir}.log`);
  }
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`not within ${WAIT_MS} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

Deno.test("stop() detaches every worker, after which the engine closes", async () => {
  await withPool(async (engine, workers) => {
    assert.equal(engine.attachedCount, 2);
    const put = kvrpcpb.RawPutRequest.encode({ context, key: utf8("k"), value: utf8("v") });
    const answer = await workers.unary(1, "RawPut", put.finish());
    assert.ok(answer.ok);
    assert.deepEqual(await workers.stop(), { detached: true, stuckGroups: [] });
    assert.equal(engine.attachedCount, 0);
    engine.close();
    assert.ok(engine.closed);
  });
});

Deno.test("a worker busy past the stop timeout is not counted out; the engine refuses to close until it stops", async () => {
  await withPool(async (engine, workers) => {
    const value = new Uint8Array(100).fill(7);
    const batch = engine.newWriteBatch();
    for (let i = 0; i < PRELOADED_KEYS; i++) {
      batch.put("default", utf8(`key-${String(i).padStart(6, "0")}`), value);
    }
    engine.write(batch);
    batch.destroy();
    // One long synchronous scan in the worker of region 1 (group 0: the table's first region goes
    // to the first worker), then a stop that allows no time at all: it cannot answer in time.
    const scan = kvrpcpb.RawScanRequest.encode({ context, limit: PRELOADED_KEYS });
    const scanned = workers.unary(1, "RawScan", scan.finish());
    const result = await workers.stop({ timeoutMs: 0 });
    assert.equal(result.detached, false);
    // The idle worker of group 1 cannot answer within 0 ms either; the busy one surely not.
    assert.ok(result.stuckGroups.includes(0), `stuck: ${result.stuckGroups}`);
    assert.ok(engine.attachedCount >= 1, "the busy worker is still counted as attached");
    assert.throws(() => engine.close(), /still attached/);
    // The scan was admitted before the stop, so it is answered; then the late "stopped".
    const answer = await scanned;
    assert.ok(answer.ok);
    await until(() => engine.attachedCount === 0, "the late workers detach");
    engine.close();
  });
});

Deno.test("a request that reaches a stopping worker is refused, not run", async () => {
  await withPool(async (engine, workers) => {
    const stopped = workers.stop();
    const put = kvrpcpb.RawPutRequest.encode({ context, key: utf8("late"), value: utf8("v") });
    const answer = await workers.unary(1, "RawPut", put.finish());
    assert.deepEqual(answer, {
      ok: false,
      code: "internal",
      details: "the store is shutting down",
    });
    assert.equal((await stopped).detached, true);
    assert.equal(engine.get("default", utf8("late")), null);
  });
});

/** Region `id` over [startKey, endKey). */
function region(id: bigint, startKey: string, endKey: string): Region {
  return { ...standaloneRegion(), id, startKey: utf8(startKey), endKey: utf8(endKey) };
}

const LEFT = region(1n, "", "m");
const RIGHT = region(2n, "m", "");

function contextOf(r: Region) {
  return { regionId: r.id, regionEpoch: { confVer: r.confVer, version: r.version } };
}

async function rawPut(workers: RegionWorkers, r: Region, key: string): Promise<UnaryResult> {
  const put = kvrpcpb.RawPutRequest.encode({
    context: contextOf(r),
    key: utf8(key),
    value: utf8(key),
  });
  return await workers.unary(Number(r.id), "RawPut", put.finish());
}

async function rawGet(workers: RegionWorkers, regionId: bigint, key: string) {
  const get = kvrpcpb.RawGetRequest.encode({
    context: { regionId, regionEpoch: { confVer: 1n, version: 1n } },
    key: utf8(key),
  });
  const answer = await workers.unary(Number(regionId), "RawGet", get.finish());
  assert.ok(answer.ok, `RawGet answered: ${JSON.stringify(answer)}`);
  return kvrpcpb.RawGetResponse.decode(answer.bytes);
}

function assertPutOk(answer: UnaryResult, what: string): void {
  assert.ok(answer.ok, `${what}: ${JSON.stringify(answer)}`);
  const response = kvrpcpb.RawPutResponse.decode(answer.bytes);
  assert.equal(response.regionError, null, `${what}: ${response.regionError?.message}`);
  assert.equal(response.error, "", what);
}

Deno.test("with two workers and two regions, each worker serves one: the table, not a modulo, routes", async () => {
  await withPool(async (_engine, workers) => {
    assert.deepEqual(workers.regions().map((r) => [r.region.id, r.worker]), [[1n, 0], [2n, 1]]);
    assert.equal(workers.groupOf(1), 0);
    assert.equal(workers.groupOf(2), 1);
    // Region 2 is only in worker 1's map: its writes succeed only because they are routed there.
    assertPutOk(await rawPut(workers, LEFT, "a"), "region 1 in worker 0");
    assertPutOk(await rawPut(workers, RIGHT, "x"), "region 2 in worker 1");
    assert.equal(utf8Text((await rawGet(workers, 2n, "x")).value), "x");
  }, { regions: [LEFT, RIGHT] });
});

Deno.test("a request for a region no worker serves is answered RegionNotFound", async () => {
  await withPool(async (_engine, workers) => {
    for (const id of [0n, 3n, 4n, 1000n]) {
      const response = await rawGet(workers, id, "a");
      assert.equal(response.regionError?.regionNotFound?.regionId, id);
    }
  }, { regions: [LEFT, RIGHT] });
});

Deno.test("a region added later goes to the least-loaded worker and is served there", async () => {
  await withPool(async (engine, workers) => {
    assert.deepEqual(workers.regions().map((r) => r.worker), [0]);
    // A region is recorded on disk (by a split, or a snapshot) before a worker serves it.
    await recordRegions(engine, [region(7n, "m", "")]);
    assert.equal(await workers.addRegion(region(7n, "m", "")), 1);
    assert.equal(workers.workerOf(7n), 1);
    assertPutOk(await rawPut(workers, region(7n, "m", ""), "x"), "region 7 in worker 1");
    assert.deepEqual(await workers.addRegion(region(7n, "m", "")), {
      code: "RegionExists",
      regionId: 7n,
      group: 1,
    });
  }, { regions: [LEFT] });
});

Deno.test("a moved region is given up by one worker, then served by the other from disk", async () => {
  await withPool(async (_engine, workers) => {
    assertPutOk(await rawPut(workers, LEFT, "before"), "before the move");
    assert.deepEqual(await workers.moveRegion(1n, 1), { from: 0, to: 1 });
    assert.equal(workers.groupOf(1), 1);
    assert.deepEqual(workers.regions().map((r) => [r.region.id, r.worker]), [[1n, 1], [2n, 1]]);
    // The new worker reads what the old one wrote, and writes on.
    assert.equal(utf8Text((await rawGet(workers, 1n, "before")).value), "before");
    assertPutOk(await rawPut(workers, LEFT, "after"), "after the move");
    // And back again; refusals name what is wrong.
    assert.deepEqual(await workers.moveRegion(1n, 0), { from: 1, to: 0 });
    assert.equal(utf8Text((await rawGet(workers, 1n, "after")).value), "after");
    assert.deepEqual(await workers.moveRegion(9n, 0), { code: "RegionUnknown", regionId: 9n });
    assert.deepEqual(await workers.moveRegion(1n, 5), { code: "NoSuchGroup", group: 5, groups: 2 });
  }, { regions: [LEFT, RIGHT] });
});

Deno.test("a move waits until the giving worker's waiting command on the region has answered", async () => {
  await withPool(async (_engine, workers) => {
    const whole = standaloneRegion();
    const prewrite = kvrpcpb.PrewriteRequest.encode({
      context: contextOf(whole),
      mutations: [{ op: kvrpcpb.Op.Put, key: utf8("k"), value: utf8("v") }],
      primaryLock: utf8("k"),
      startVersion: 10n,
      lockTtl: 60_000n,
    });
    const prewritten = await workers.unary(1, "KvPrewrite", prewrite.finish());
    assert.ok(
      prewritten.ok && kvrpcpb.PrewriteResponse.decode(prewritten.bytes).errors.length === 0,
    );
    // Another transaction waits for that lock in worker 0 (an async wait, WAIT_FOR_LOCK_MS).
    const WAIT_FOR_LOCK_MS = 400;
    const lock = kvrpcpb.PessimisticLockRequest.encode({
      context: contextOf(whole),
      mutations: [{ op: kvrpcpb.Op.PessimisticLock, key: utf8("k") }],
      primaryLock: utf8("k"),
      startVersion: 20n,
      forUpdateTs: 20n,
      lockTtl: 60_000n,
      waitTimeout: BigInt(WAIT_FOR_LOCK_MS),
    });
    const order: string[] = [];
    const startMs = performance.now();
    const waited = workers.unary(1, "KvPessimisticLock", lock.finish()).then((answer) => {
      order.push("lock wait answered");
      return answer;
    });
    const moved = await workers.moveRegion(1n, 1);
    order.push("moved");
    assert.deepEqual(moved, { from: 0, to: 1 });
    const answer = await waited;
    assert.ok(answer.ok);
    const errors = kvrpcpb.PessimisticLockResponse.decode(answer.bytes).errors;
    assert.equal(errors[0]?.locked?.lockVersion, 10n, "the wait ended by its timeout, locked");
    assert.deepEqual(order, ["lock wait answered", "moved"]);
    assert.ok(performance.now() - startMs >= WAIT_FOR_LOCK_MS - 50, "the move waited");
    // The lock is on disk: the new worker sees it.
    const get = kvrpcpb.GetRequest.encode({
      context: contextOf(whole),
      key: utf8("k"),
      version: 30n,
    });
    const read = await workers.unary(1, "KvGet", get.finish());
    assert.ok(read.ok);
    assert.equal(kvrpcpb.GetResponse.decode(read.bytes).error?.locked?.lockVersion, 10n);
  });
});

Deno.test("a failed assertion inside a command ends its worker, which is replaced from disk; it is never answered as INTERNAL while the worker goes on", async () => {
  await withPool(async (engine, workers, logPath) => {
    assertPutOk(await rawPut(workers, LEFT, "kept"), "a write before the bug");
    const answer = await rawPut(workers, LEFT, "boom");
    // The answer comes from the main thread failing what the dead worker owed.
    assert.equal(answer.ok, false);
    assert.ok(!answer.ok && answer.code === "internal");
    assert.match(answer.details, /^region worker 0 died: .*assertion failed: test hook/);
    // The replacement serves the same regions from disk.
    await until(() => engine.attachedCount === 2, "the replacement attaches");
    assert.equal(utf8Text((await rawGet(workers, 1n, "kept")).value), "kept");
    assertPutOk(await rawPut(workers, LEFT, "after"), "a write to the replacement");
    assertPutOk(await rawPut(workers, RIGHT, "x"), "the other worker never stopped");
    const logged = await Deno.readTextFile(logPath);
    assert.match(logged, /bug in a region worker/);
    assert.match(logged, /region worker died/);
  }, {
    regions: [LEFT, RIGHT],
    testHooks: { assertionFailureOnKey: utf8("boom") },
  });
});

Deno.test("on the main thread (store-pool-size 0) one body serves every region and stop() detaches it, after which the engine closes", async () => {
  await withPool(async (engine, workers) => {
    assert.equal(engine.attachedCount, 1);
    assertPutOk(await rawPut(workers, LEFT, "l"), "a write left");
    assertPutOk(await rawPut(workers, RIGHT, "r"), "a write right");
    assert.equal(utf8Text((await rawGet(workers, 1n, "l")).value), "l");
    assert.deepEqual(await workers.stop(), { detached: true, stuckGroups: [] });
    assert.equal(engine.attachedCount, 0);
    engine.close();
  }, { ...poolOptions(0), regions: [LEFT, RIGHT] });
});

Deno.test("on the main thread a failed assertion ends the body, not the process: it is halted and another is built from disk", async () => {
  await withPool(async (engine, workers, logPath) => {
    assertPutOk(await rawPut(workers, LEFT, "kept"), "a write before the bug");
    const rounds = () => workers.raftstoreMetrics().raftstore_rounds_total ?? 0;
    await until(() => rounds() > 0, "the body reports its rounds");
    const roundsBefore = rounds();
    const answer = await rawPut(workers, LEFT, "boom");
    assert.ok(!answer.ok && answer.code === "internal", JSON.stringify(answer));
    assert.match(answer.details, /^region worker 0 died: .*assertion failed: test hook/);
    // The halted body was counted out and its successor attached.
    await until(() => engine.attachedCount === 1, "the replacement attaches");
    assert.equal(utf8Text((await rawGet(workers, 1n, "kept")).value), "kept");
    assertPutOk(await rawPut(workers, LEFT, "after"), "a write to the replacement");
    assertPutOk(await rawPut(workers, RIGHT, "x"), "the replacement serves every region");
    assert.equal(utf8Text((await rawGet(workers, 1n, "after")).value), "after");
    // The dead body's counters are kept: the total never goes back.
    assert.ok(rounds() >= roundsBefore, `rounds ${rounds()} < ${roundsBefore} before the bug`);
    await until(() => rounds() > roundsBefore, "the replacement's rounds are added");
    const logged = await Deno.readTextFile(logPath);
    assert.match(logged, /bug in a region worker/);
    assert.match(logged, /region worker died/);
  }, {
    ...poolOptions(0),
    regions: [LEFT, RIGHT],
    testHooks: { assertionFailureOnKey: utf8("boom") },
  });
});

Deno.test("an expected failure (writes fenced on a full disk) is answered INTERNAL and the worker goes on", async () => {
  await withPool(async (engine, workers, logPath) => {
    engine.fenceWrites(true);
    const refused = await rawPut(workers, LEFT, "k");
    assert.ok(!refused.ok && refused.code === "internal", JSON.stringify(refused));
    assert.match(refused.details, /^RawPut: .*almost full/);
    engine.fenceWrites(false);
    assertPutOk(await rawPut(workers, LEFT, "k"), "the same worker, once the fence is lifted");
    assert.equal(engine.attachedCount, 2);
    assert.doesNotMatch(await Deno.readTextFile(logPath), /region worker died/);
  }, { regions: [LEFT, RIGHT] });
});

function utf8Text(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}

/** What a worker sent to other stores: encoded messages (decoded here) and envelopes. */
class SentRaft implements EncodedTransport {
  readonly encoded: {
    storeId: bigint;
    envelope: RaftEnvelope;
    regionId: bigint;
    msgType: number;
  }[] = [];
  readonly envelopes: RaftEnvelope[] = [];

  sendEncoded(storeId: bigint, bytes: Uint8Array, about: { regionId: bigint; msgType: number }) {
    const decoded = decodeEnvelope(bytes);
    assert.ok(decoded.ok, decoded.ok ? "" : `a worker's message decodes: ${decoded.problem}`);
    this.encoded.push({ storeId, envelope: decoded.value, ...about });
  }

  send(envelope: RaftEnvelope) {
    this.envelopes.push(envelope);
  }
}

Deno.test("Raft messages cross to and from a worker as bytes: one malformed inside is dropped, counted and logged; its batch-mates are stepped", async () => {
  const sent = new SentRaft();
  const logPath = await Deno.makeTempFile({ prefix: "basalt_raft_log_" });
  const log = new Logger({ level: "warn", file: logPath });
  try {
    await withPool(async (_engine, workers) => {
      // Region 99 is not on this store (store 1); a leader on store 2 heartbeats it, which makes
      // a replica here. In the same batch: a message with a local type, which no store may take
      // from the wire, and which only the worker's decode can see (the main thread reads region
      // ids only).
      const route = {
        regionId: 99n,
        fromPeer: { id: 20n, storeId: 2n, role: metapb.PeerRole.Voter },
        toPeer: { id: 10n, storeId: 1n, role: metapb.PeerRole.Voter },
        regionEpoch: { confVer: 1n, version: 1n },
        startKey: utf8("m"),
        endKey: new Uint8Array(),
        isTombstone: false,
      };
      const local = raft_serverpb.RaftMessage.encode({
        ...route,
        message: { msgType: MessageType.MsgHup, to: 10n, from: 20n },
      }).finish();
      const heartbeat = encodeEnvelope({
        ...route,
        message: newMessage({ msgType: MessageType.MsgHeartbeat, to: 10n, from: 20n, term: 5n }),
      });
      workers.deliverRaft([
        { regionId: 99n, bytes: local },
        { regionId: 99n, bytes: heartbeat },
        { regionId: 99n, bytes: local },
      ]);
      await until(() => sent.encoded.length > 0, "the new replica's answer to the heartbeat");
      const [answer] = sent.encoded;
      assert.equal(answer!.storeId, 2n);
      assert.equal(answer!.regionId, 99n);
      assert.equal(answer!.msgType, MessageType.MsgHeartbeatResponse);
      assert.equal(answer!.envelope.regionId, 99n);
      assert.deepEqual(answer!.envelope.toPeer, route.fromPeer);
      assert.equal(answer!.envelope.message.msgType, MessageType.MsgHeartbeatResponse);
      assert.equal(answer!.envelope.message.term, 5n);
      assert.deepEqual(sent.envelopes, [], "no SST snapshot was sent");
      // The worker logged the drops: both counted, the repeated line held to the log's bound.
      await until(
        () => Deno.readTextFileSync(logPath).includes('droppedTotal="2"'),
        "the worker's line about the second drop",
      );
      const dropLines = () =>
        Deno.readTextFileSync(logPath).split("\n")
          .filter((line) => line.includes("malformed raft message dropped"));
      assert.equal(dropLines().length, 2, dropLines().join("\n"));
      assert.match(dropLines()[0]!, /problem="local message type MsgHup from the wire"/);
      assert.match(dropLines()[0]!, /droppedTotal="1"/);
      // Many more: the lines stay within the log's repeat bound. A heartbeat after them shows
      // they were all handled.
      const nextHeartbeat = encodeEnvelope({
        ...route,
        message: newMessage({ msgType: MessageType.MsgHeartbeat, to: 10n, from: 20n, term: 6n }),
      });
      workers.deliverRaft([
        ...Array.from({ length: 20 }, () => ({ regionId: 99n, bytes: local })),
        { regionId: 99n, bytes: nextHeartbeat },
      ]);
      await until(
        () => sent.encoded.some((m) => m.envelope.message.term === 6n),
        "the answer to the heartbeat after twenty malformed messages",
      );
      assert.equal(dropLines().length, LOG_REPEAT_MAX_LINES, dropLines().join("\n"));
      assert.match(dropLines().at(-1)!, new RegExp(`droppedTotal="${LOG_REPEAT_MAX_LINES}"`));
    }, { regions: [LEFT], sendRaft: sent, storeId: 1n, log });
  } finally {
    log.close();
    await Deno.remove(logPath);
  }
});
