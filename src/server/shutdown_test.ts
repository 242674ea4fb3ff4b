/**
 * The shutdown order (issue #9, item 5): drain, stop the status server, stop the workers, close
 * the PD, and only then flush and close the database — never while a worker may use it.
 */
import assert from "node:assert/strict";
import type { WorkersStopResult } from "./region_workers.ts";
import { shutDown, type ShutdownParts } from "./shutdown.ts";

/** A store whose parts record the order they are stopped in. */
function fakeStore(options: {
  statusServerStopped?: Promise<void>;
  drained?: boolean;
  workers?: WorkersStopResult;
  attachedCount?: number;
  durableWritesInFlightAnywhere?: number;
  flushFails?: boolean;
}) {
  const steps: string[] = [];
  const warnings: string[] = [];
  const parts: ShutdownParts = {
    log: { info: () => {}, warn: (message) => void warnings.push(message) },
    drain: () => {
      steps.push("drain");
      return Promise.resolve(options.drained ?? true);
    },
    stopStatusServer: () => {
      steps.push("status");
      return options.statusServerStopped ?? Promise.resolve();
    },
    stopWorkers: () => {
      steps.push("workers");
      return Promise.resolve(options.workers ?? { detached: true, stuckGroups: [] });
    },
    closePd: () => void steps.push("pd"),
    engine: {
      attachedCount: options.attachedCount ?? 0,
      durableWritesInFlightAnywhere: options.durableWritesInFlightAnywhere ?? 0,
      flush: () => {
        steps.push("flush");
        if (options.flushFails) throw new Error("IO error: No space left on device");
      },
      close: () => void steps.push("close"),
    },
  };
  return { parts, steps, warnings };
}

Deno.test("shutdown drains, stops the status server and the workers, then closes the engine", async () => {
  const { parts, steps, warnings } = fakeStore({});
  assert.equal(await shutDown(parts), "closed");
  assert.deepEqual(steps, ["drain", "status", "workers", "pd", "flush", "close"]);
  assert.deepEqual(warnings, []);
});

Deno.test("shutdown after a drain that timed out still stops the workers before closing", async () => {
  const { parts, steps, warnings } = fakeStore({ drained: false });
  assert.equal(await shutDown(parts), "closed");
  assert.deepEqual(steps, ["drain", "status", "workers", "pd", "flush", "close"]);
  assert.match(warnings[0]!, /still in flight/);
});

Deno.test("a worker that did not stop in time leaves the engine to its WAL: no flush, no close", async () => {
  const { parts, steps, warnings } = fakeStore({
    workers: { detached: false, stuckGroups: [1] },
    attachedCount: 1,
  });
  assert.equal(await shutDown(parts), "left-to-wal");
  assert.deepEqual(steps, ["drain", "status", "workers", "pd"]);
  assert.match(warnings.at(-1)!, /left the engine to its write-ahead log/);
});

Deno.test("a durable write of a dead worker still in RocksDB also leaves the engine open", async () => {
  // The workers all detached (one died and was counted out), but its write is still running
  // on Deno's thread pool: closing now would free the database under it.
  const { parts, steps } = fakeStore({ durableWritesInFlightAnywhere: 1 });
  assert.equal(await shutDown(parts), "left-to-wal");
  assert.ok(!steps.includes("close") && !steps.includes("flush"));
});

Deno.test("a flush that fails at shutdown (full disk) is logged and the engine still closes", async () => {
  const { parts, steps, warnings } = fakeStore({ flushFails: true });
  assert.equal(await shutDown(parts), "closed");
  assert.deepEqual(steps.slice(-2), ["flush", "close"]);
  assert.match(warnings[0]!, /flush at shutdown failed; the WAL keeps the data/);
});

Deno.test("a shutdown past its time is an overrun: nothing is flushed or closed, even later", async () => {
  let stopStatus!: () => void;
  const statusServerStopped = new Promise<void>((resolve) => stopStatus = resolve);
  const { parts, steps, warnings } = fakeStore({ statusServerStopped });
  assert.equal(await shutDown(parts, { maxMs: 20 }), "overrun");
  assert.match(warnings.at(-1)!, /shutdown overran its time/);
  // In the store the process ends here; should the stuck step ever finish, it closes nothing.
  stopStatus();
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.deepEqual(steps, ["drain", "status", "workers", "pd"]);
});
