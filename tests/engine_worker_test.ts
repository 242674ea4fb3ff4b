/**
 * DESIGN.md §2, the shared-handle model: one process opens the database once; Web Workers
 * attach to the same native handle (`share()` → postMessage → `RocksDbEngine.attach`) and read
 * and write it concurrently. The owner cannot close while a Worker is attached, because a
 * Worker using a closed handle would be a use-after-free.
 */
import assert from "node:assert/strict";
import { RocksDbEngine } from "../src/engine/rocksdb_engine.ts";
import { workerKey, workerValue } from "./fixtures/engine_worker_keys.ts";

const WORKERS = 3;
const KEYS_PER_WORKER = 2000;
const MAIN_THREAD_ID = 99;
const WORKER_MODULE = new URL("./fixtures/engine_worker.ts", import.meta.url).href;

/** A Worker that answers one request at a time. */
class EngineWorker {
  readonly #worker = new Worker(WORKER_MODULE, { type: "module" });
  #pending: PromiseWithResolvers<Record<string, unknown>> | null = null;

  constructor() {
    this.#worker.onmessage = (event: MessageEvent<Record<string, unknown>>) => {
      const pending = this.#pending;
      this.#pending = null;
      if (pending === null) throw new Error("unexpected message from worker");
      if (event.data.kind === "error") pending.reject(new Error(String(event.data.message)));
      else pending.resolve(event.data);
    };
    this.#worker.onerror = (event) => {
      event.preventDefault();
      this.#pending?.reject(new Error(`worker failed: ${event.message}`));
      this.#pending = null;
    };
  }

  request(message: Record<string, unknown>): Promise<Record<string, unknown>> {
    assert.equal(this.#pending, null, "one request at a time");
    this.#pending = Promise.withResolvers();
    this.#worker.postMessage(message);
    return this.#pending.promise;
  }

  terminate(): void {
    this.#worker.terminate();
  }
}

function sameBytes(a: Uint8Array | null, b: Uint8Array): boolean {
  return a !== null && a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/** The main thread writes its own keys while the Workers write theirs. */
async function writeFromMainThread(engine: RocksDbEngine): Promise<void> {
  for (let i = 0; i < KEYS_PER_WORKER; i++) {
    engine.put("default", workerKey(MAIN_THREAD_ID, i), workerValue(MAIN_THREAD_ID, i));
    // Yield now and then so the Workers' replies and durable writes interleave with ours.
    if (i % 100 === 0) await new Promise((resolve) => setTimeout(resolve, 0));
  }
}

function countVisible(engine: RocksDbEngine, writers: [number, number][]): number {
  let visible = 0;
  for (const [writer, count] of writers) {
    for (let i = 0; i < count; i++) {
      if (sameBytes(engine.get("default", workerKey(writer, i)), workerValue(writer, i))) {
        visible++;
      }
    }
  }
  return visible;
}

Deno.test("Workers attached to one handle write concurrently; every write is visible to all (DESIGN.md §2)", async () => {
  const directory = await Deno.makeTempDir({ prefix: "basalt-workers-" });
  const engine = RocksDbEngine.open(`${directory}/db`);
  const workers = Array.from({ length: WORKERS }, () => new EngineWorker());
  try {
    await Promise.all(
      workers.map((worker, workerId) =>
        worker.request({ kind: "attach", handle: engine.share(), workerId })
      ),
    );
    assert.equal(engine.attachedCount, WORKERS);

    const started = performance.now();
    await Promise.all([
      ...workers.map((worker) => worker.request({ kind: "write", count: KEYS_PER_WORKER })),
      writeFromMainThread(engine),
    ]);
    const elapsedMs = performance.now() - started;
    console.log(
      `${WORKERS} workers + main thread wrote ${(WORKERS + 1) * KEYS_PER_WORKER} keys ` +
        `in ${elapsedMs.toFixed(0)} ms`,
    );

    const writers: [number, number][] = [
      ...workers.map((_, workerId): [number, number] => [workerId, KEYS_PER_WORKER]),
      [MAIN_THREAD_ID, KEYS_PER_WORKER],
    ];
    assert.equal(countVisible(engine, writers), writers.length * KEYS_PER_WORKER);
    const reports = await Promise.all(workers.map((w) => w.request({ kind: "verify", writers })));
    for (const report of reports) {
      assert.deepEqual(report, { kind: "verify", missing: 0, wrong: 0 });
    }

    assert.throws(() => engine.close(), new RegExp(`${WORKERS} workers are still attached`));
    assert.equal(engine.closed, false, "a refused close leaves the engine open");
    assert.ok(engine.get("default", workerKey(0, 0)) !== null);

    for (const worker of workers) await worker.request({ kind: "close" });
    assert.equal(engine.attachedCount, 0);
  } finally {
    for (const worker of workers) worker.terminate();
    if (engine.attachedCount === 0) engine.close();
  }
  // Everything written through the shared handle is in the database after a clean reopen.
  const reopened = RocksDbEngine.open(`${directory}/db`, { createIfMissing: false });
  try {
    const writers: [number, number][] = [[0, KEYS_PER_WORKER], [MAIN_THREAD_ID, KEYS_PER_WORKER]];
    assert.equal(countVisible(reopened, writers), 2 * KEYS_PER_WORKER);
    assert.ok(sameBytes(reopened.get("write", workerKey(1, 1)), workerValue(1, 1)));
  } finally {
    reopened.close();
    await Deno.remove(directory, { recursive: true });
  }
});
