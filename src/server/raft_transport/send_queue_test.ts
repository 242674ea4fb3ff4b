/** The per-store send queue: FIFO, bounded in count and bytes, dropping the oldest. */
import assert from "node:assert/strict";
import { MessageType } from "../../raft/mod.ts";
import { isAssertionError } from "../../util/assert.ts";
import { type QueuedEnvelope, SendQueue } from "./send_queue.ts";

/** An item numbered `index` (its region id, which the queue never reads) of `size` bytes. */
function item(index: number, size = 10): QueuedEnvelope {
  return {
    bytes: new Uint8Array(size),
    regionId: BigInt(index),
    msgType: MessageType.MsgHeartbeat,
  };
}

const indexes = (items: QueuedEnvelope[]) => items.map((i) => Number(i.regionId));

Deno.test("SendQueue: past its count bound the oldest envelopes are dropped, order kept", () => {
  const queue = new SendQueue({ maxMessages: 4, maxBytes: 1000 });
  let dropped = 0;
  for (let i = 0; i < 10; i++) dropped += queue.push(item(i));
  assert.equal(dropped, 6);
  assert.equal(queue.count, 4);
  assert.equal(queue.bytes, 40);
  assert.deepEqual(indexes(queue.takeBatch(100, 1000)), [6, 7, 8, 9]);
  assert.equal(queue.count, 0);
  assert.equal(queue.bytes, 0);
});

Deno.test("SendQueue: past its byte bound the oldest are dropped until the new one fits", () => {
  const queue = new SendQueue({ maxMessages: 100, maxBytes: 100 });
  for (let i = 0; i < 5; i++) assert.equal(queue.push(item(i, 20)), 0);
  // 100 bytes queued; a 50-byte envelope needs the three oldest gone.
  assert.equal(queue.push(item(5, 50)), 3);
  assert.equal(queue.bytes, 90);
  assert.deepEqual(indexes(queue.takeBatch(100, 1000)), [3, 4, 5]);
  // One envelope as large as the whole bound empties the queue and gets in.
  for (let i = 0; i < 3; i++) queue.push(item(i, 20));
  assert.equal(queue.push(item(9, 100)), 3);
  assert.deepEqual(indexes(queue.takeBatch(100, 1000)), [9]);
});

Deno.test("SendQueue: a batch stops at its count or byte limit; a large first envelope goes alone", () => {
  const queue = new SendQueue({ maxMessages: 100, maxBytes: 10_000 });
  for (let i = 0; i < 7; i++) queue.push(item(i, 10));
  assert.deepEqual(indexes(queue.takeBatch(3, 1000)), [0, 1, 2]);
  assert.deepEqual(indexes(queue.takeBatch(100, 25)), [3, 4]);
  queue.push(item(7, 500));
  assert.deepEqual(indexes(queue.takeBatch(100, 25)), [5, 6]);
  assert.deepEqual(indexes(queue.takeBatch(100, 25)), [7]);
  assert.deepEqual(queue.takeBatch(100, 25), []);
});

Deno.test("SendQueue: a long run of pushes and takes keeps FIFO order and exact byte count", () => {
  const queue = new SendQueue({ maxMessages: 50, maxBytes: 1_000_000 });
  const taken: number[] = [];
  let next = 0;
  for (let round = 0; round < 200; round++) {
    for (let i = 0; i <= round % 7; i++) assert.equal(queue.push(item(next++, 1 + next % 13)), 0);
    taken.push(...indexes(queue.takeBatch(6, 1_000_000)));
  }
  taken.push(...indexes(queue.takeBatch(1000, 1_000_000)));
  // Nothing was dropped (the queue never passed 50), so everything left in order.
  assert.deepEqual(taken, Array.from({ length: next }, (_, i) => i));
  assert.equal(queue.bytes, 0);
});

Deno.test("SendQueue: an envelope larger than the byte bound is the caller's bug", () => {
  const queue = new SendQueue({ maxMessages: 10, maxBytes: 100 });
  assert.throws(() => queue.push(item(0, 101)), isAssertionError);
  assert.equal(queue.clear(), 0);
});
