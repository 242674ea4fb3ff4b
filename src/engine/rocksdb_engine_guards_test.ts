/**
 * The RocksDB engine's guards for shutdown and disk trouble (issue #9, items 5 and 6):
 * - the owner never closes the database while a durable write of any thread is inside RocksDB
 *   (a Worker terminated mid-write never counts its write out, so the database stays open: the
 *   safe side — closing under it was measured to end in SIGSEGV or SIGABRT in 5 of 8 runs);
 * - `writeProbe()` tells whether the database accepts writes without changing anything;
 * - `fenceWrites()` refuses writes in every thread before they reach RocksDB (a full disk).
 */
import assert from "node:assert/strict";
import { utf8 } from "../util/bytes.ts";
import { RocksDbEngine, WritesFencedError } from "./rocksdb_engine.ts";

async function withEngine(body: (engine: RocksDbEngine) => Promise<void>): Promise<void> {
  const directory = await Deno.makeTempDir({ prefix: "basalt-engine-guards-" });
  const engine = RocksDbEngine.open(directory, { blockCacheBytes: 8 << 20 });
  try {
    await body(engine);
  } finally {
    if (!engine.closed) engine.close();
    await Deno.remove(directory, { recursive: true });
  }
}

Deno.test("the owner refuses to close while another thread's durable write is in RocksDB", async () => {
  await withEngine(async (owner) => {
    // An attachment in this thread stands for a worker; forgetAttachment() for its termination.
    const worker = RocksDbEngine.attach(owner.share());
    const batch = worker.newWriteBatch();
    batch.put("default", utf8("k"), utf8("v"));
    const written = worker.writeDurable(batch);
    assert.equal(owner.durableWritesInFlightAnywhere, 1);
    assert.equal(worker.durableWritesInFlight, 1);
    owner.forgetAttachment();
    assert.equal(owner.attachedCount, 0);
    assert.throws(() => owner.close(), /1 durable writes of other threads are still in flight/);
    await written;
    batch.destroy();
    assert.equal(owner.durableWritesInFlightAnywhere, 0);
    owner.close();
    assert.ok(owner.closed);
  });
});

Deno.test("writeProbe() is null on a healthy database and writes nothing", async () => {
  await withEngine((engine) => {
    const before = engine.property("default", "rocksdb.estimate-num-keys");
    assert.equal(engine.writeProbe(), null);
    assert.equal(engine.writeProbe(), null);
    assert.equal(engine.property("default", "rocksdb.estimate-num-keys"), before);
    engine.close();
    assert.throws(() => engine.writeProbe(), /engine is closed/);
    return Promise.resolve();
  });
});

Deno.test("fenced writes are refused in every attached thread before RocksDB; reads go on", async () => {
  await withEngine(async (owner) => {
    const worker = RocksDbEngine.attach(owner.share());
    owner.put("default", utf8("before"), utf8("v"));
    owner.fenceWrites(true);
    assert.ok(worker.writesFenced);
    const batch = worker.newWriteBatch();
    batch.put("default", utf8("k"), utf8("v"));
    assert.throws(() => worker.put("default", utf8("k"), utf8("v")), WritesFencedError);
    assert.throws(() => worker.delete("default", utf8("before")), WritesFencedError);
    assert.throws(() => worker.write(batch), /write: the disk of .* is almost full/);
    await assert.rejects(() => worker.writeDurable(batch), WritesFencedError);
    assert.throws(() => worker.fenceWrites(false), /only the owner/);
    assert.deepEqual(worker.get("default", utf8("before")), utf8("v"));
    assert.equal(owner.writeProbe(), null, "RocksDB itself is healthy");
    owner.fenceWrites(false);
    await worker.writeDurable(batch);
    assert.deepEqual(owner.get("default", utf8("k")), utf8("v"));
    batch.destroy();
    worker.close();
  });
});
