/**
 * `serveInOrder`'s turns: handlers that await nothing (a heartbeat whose region writes are
 * soft) must still let the event loop run its timers — a replicated PD's Raft ticks — once
 * they have run `PD_STREAM_TURN_MAX_MS` in one turn, and still handle every message in order.
 */
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import type * as grpc from "@grpc/grpc-js";
import { PD_STREAM_TURN_MAX_MS } from "../../constants.ts";
import type { PdServiceDeps } from "./dependencies.ts";
import { serveInOrder } from "./dependencies.ts";

type Call = grpc.ServerDuplexStream<Buffer, Buffer>;

/** Spins the CPU for `ms` (a handler's synchronous work). */
function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) { /* working */ }
}

Deno.test("serveInOrder: handlers that await nothing yield to timers after PD_STREAM_TURN_MAX_MS, in order", async () => {
  const call = Object.assign(new EventEmitter(), {
    writableEnded: false,
    destroyed: false,
    end() {},
  }) as unknown as Call;
  const deps = { log: { debug() {} } } as unknown as PdServiceDeps;
  const total = 100;
  const handled: number[] = [];
  let allHandled!: () => void;
  const done = new Promise<void>((resolve) => allHandled = resolve);
  serveInOrder(call, deps, {
    name: "Test",
    handle(bytes) {
      busy(1);
      handled.push(bytes[0]!);
      if (handled.length === total) allHandled();
    },
    failed: (error) => assert.fail(String(error)),
  });
  let handledWhenTimerRan = -1;
  const timer = new Promise<void>((resolve) =>
    setTimeout(() => {
      handledWhenTimerRan = handled.length;
      resolve();
    }, 0)
  );
  // A socket read's worth of messages, arriving in one turn.
  for (let i = 0; i < total; i++) call.emit("data", Buffer.from([i]));
  await done;
  await timer;
  assert.ok(
    handledWhenTimerRan > 0 && handledWhenTimerRan < total,
    `a timer due at once ran after ${handledWhenTimerRan} of ${total} handlers of 1 ms ` +
      `(turns of at most ${PD_STREAM_TURN_MAX_MS} ms)`,
  );
  assert.deepEqual(handled, Array.from({ length: total }, (_, i) => i));
});
