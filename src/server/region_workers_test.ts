/**
 * Stopping the region workers (issue #9, item 5): the pool reports whether every worker
 * detached from the engine, and a worker that did not answer in time is never counted out —
 * the database refuses to close under it — until its late "stopped" arrives.
 */
import assert from "node:assert/strict";
import { kvrpcpb } from "../../proto/mod.ts";
import { RocksDbEngine } from "../engine/rocksdb_engine.ts";
import { utf8 } from "../util/bytes.ts";
import { Logger } from "./log.ts";
import { RegionWorkers } from "./region_workers.ts";

const context = { regionId: 1n, regionEpoch: { confVer: 1n, version: 1n } };
/** Keys preloaded so that one scan keeps its worker busy for many milliseconds. */
const PRELOADED_KEYS = 60_000;
const WAIT_MS = 10_000;

async function withPool(body: (engine: RocksDbEngine, workers: RegionWorkers) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "basalt_workers_" });
  const engine = RocksDbEngine.open(dir, { blockCacheBytes: 8 << 20 });
  const log = new Logger({ level: "error", file: `${dir}.log` });
  try {
    const workers = await RegionWorkers.start({
      count: 2,
      engine,
      syncLog: true,
      latestTs: () => 1n,
      logLevel: "error",
      ttlCheckPollIntervalMs: 0,
      log,
    });
    await body(engine, workers);
  } finally {
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
    // One long synchronous scan in the worker of region 1 (group 1), then a stop that allows
    // no time at all: the worker cannot answer before the timeout.
    const scan = kvrpcpb.RawScanRequest.encode({ context, limit: PRELOADED_KEYS });
    const scanned = workers.unary(1, "RawScan", scan.finish());
    const result = await workers.stop({ timeoutMs: 0 });
    assert.equal(result.detached, false);
    // The idle worker of group 0 cannot answer within 0 ms either; the busy one surely not.
    assert.ok(result.stuckGroups.includes(1), `stuck: ${result.stuckGroups}`);
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
