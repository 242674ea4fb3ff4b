import assert from "node:assert/strict";
import { MemoryEngine } from "../../engine/memory_engine.ts";
import type { KvEngine, WriteBatch } from "../../engine/types.ts";
import { GROUP_MAX_BYTES, WriteGroups } from "./write_group.ts";

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (value: Uint8Array | null) => value === null ? null : new TextDecoder().decode(value);

/** A memory engine that counts the batches it applies. */
function countingEngine(): { engine: KvEngine; writes: number[]; durable: number[] } {
  const engine = new MemoryEngine();
  const writes: number[] = [];
  const durable: number[] = [];
  const write = engine.write.bind(engine);
  engine.write = (batch: WriteBatch) => {
    writes.push(batch.count);
    write(batch);
  };
  engine.writeDurable = (batch: WriteBatch) => {
    durable.push(batch.count);
    write(batch);
    return new Promise((resolve) => setTimeout(resolve, 5));
  };
  return { engine, writes, durable };
}

Deno.test("writes of one turn share one durable engine write, and resolve only once it is done", async () => {
  const { engine, durable } = countingEngine();
  const groups = new WriteGroups(engine, true);
  let settled = 0;
  const writes = ["a", "b", "c"].map((k) =>
    groups.write([{ cf: "default", key: bytes(k), value: bytes(k) }]).then(() => settled++)
  );
  await new Promise((resolve) => setTimeout(resolve, 1));
  assert.deepEqual(durable, [3]);
  assert.equal(settled, 0, "acknowledged before the durable write finished");
  await Promise.all(writes);
  assert.equal(text(engine.get("default", bytes("b"))), "b");
});

Deno.test("writes of later turns go in later groups, in order", async () => {
  const { engine, writes } = countingEngine();
  const groups = new WriteGroups(engine, false);
  await groups.write([{ cf: "default", key: bytes("k"), value: bytes("1") }]);
  await groups.write([
    { cf: "default", key: bytes("k"), value: bytes("2") },
    { cf: "write", key: bytes("k"), value: null },
  ]);
  assert.deepEqual(writes, [1, 2]);
  assert.equal(text(engine.get("default", bytes("k"))), "2");
});

Deno.test("a write over the engine's limits is refused and leaves nothing in the group", async () => {
  const { engine, writes } = countingEngine();
  const groups = new WriteGroups(engine, false);
  const ok = groups.write([{ cf: "default", key: bytes("a"), value: bytes("a") }]);
  assert.throws(() =>
    groups.write([
      { cf: "default", key: bytes("b"), value: bytes("b") },
      { cf: "default", key: new Uint8Array(64 * 1024 + 1), value: bytes("x") },
    ])
  );
  await ok;
  assert.deepEqual(writes, [1]);
  assert.equal(engine.get("default", bytes("b")), null);
});

Deno.test("a group reaching GROUP_MAX_BYTES is written at once", async () => {
  const { engine, writes } = countingEngine();
  const groups = new WriteGroups(engine, false);
  const big = new Uint8Array(GROUP_MAX_BYTES);
  const first = groups.write([{ cf: "default", key: bytes("big"), value: big }]);
  assert.deepEqual(writes, [1], "not written before the turn ended");
  const second = groups.write([{ cf: "default", key: bytes("small"), value: bytes("s") }]);
  await Promise.all([first, second]);
  assert.deepEqual(writes, [1, 1]);
});

Deno.test("a failed group write fails every write of the group", async () => {
  const engine = new MemoryEngine();
  engine.writeDurable = () => Promise.reject(new Error("disk on fire"));
  const groups = new WriteGroups(engine, true);
  const results = await Promise.allSettled(
    ["a", "b"].map((k) => groups.write([{ cf: "default", key: bytes(k), value: bytes(k) }])),
  );
  assert.deepEqual(results.map((result) => result.status), ["rejected", "rejected"]);
  assert.match(String((results[0] as PromiseRejectedResult).reason), /disk on fire/);
});
