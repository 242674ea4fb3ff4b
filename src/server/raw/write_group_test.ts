import assert from "node:assert/strict";
import { MemoryEngine } from "../../engine/memory_engine.ts";
import type { KvEngine, WriteBatch } from "../../engine/types.ts";
import {
  GROUP_MAX_BYTES,
  GROUPS_IN_FLIGHT_MAX,
  type GroupWrite,
  WriteGroups,
} from "./write_group.ts";

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (value: Uint8Array | null) => value === null ? null : new TextDecoder().decode(value);

/** A write of `pairs` (value null = delete) to the default family. */
function puts(
  pairs: [string, string | null][],
  release: (() => void) | null = null,
): GroupWrite {
  return {
    sizeBytes: pairs.reduce((sum, [k, v]) => sum + k.length + (v?.length ?? 0), 0),
    fill(batch) {
      for (const [k, v] of pairs) {
        if (v === null) batch.delete("default", bytes(k));
        else batch.put("default", bytes(k), bytes(v));
      }
    },
    release,
  };
}

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

Deno.test("writes added in one synchronous run share one durable engine write; latches are released and writes acknowledged only once it is done", async () => {
  const { engine, durable } = countingEngine();
  const groups = new WriteGroups(engine, true);
  let settled = 0;
  let released = 0;
  const writes = ["a", "b", "c"].map((k) =>
    groups.write(puts([[k, k]], () => released++)).then(() => {
      assert.equal(released, 3, "latches released before the acknowledgement");
      settled++;
    })
  );
  await new Promise((resolve) => setTimeout(resolve, 1));
  assert.deepEqual(durable, [3]);
  assert.equal(settled, 0, "acknowledged before the durable write finished");
  assert.equal(released, 0, "latches released before the durable write finished");
  await Promise.all(writes);
  assert.equal(text(engine.get("default", bytes("b"))), "b");
});

Deno.test("writes after the wave ended go in later groups, in order", async () => {
  const { engine, writes } = countingEngine();
  const groups = new WriteGroups(engine, false);
  await groups.write(puts([["k", "1"]]));
  await groups.write(puts([["k", "2"], ["j", null]]));
  assert.deepEqual(writes, [1, 2]);
  assert.equal(text(engine.get("default", bytes("k"))), "2");
});

Deno.test("a write whose fill throws fails its whole group, which writes nothing, and releases every latch", async () => {
  const { engine, writes } = countingEngine();
  const groups = new WriteGroups(engine, false);
  let released = 0;
  const first = groups.write(puts([["a", "a"]], () => released++));
  const broken = groups.write({
    sizeBytes: 1,
    fill(batch) {
      batch.put("default", bytes("b"), bytes("b"));
      throw new Error("bug while adding");
    },
    release: () => released++,
  });
  const results = await Promise.allSettled([first, broken]);
  assert.deepEqual(results.map((result) => result.status), ["rejected", "rejected"]);
  assert.deepEqual(writes, []);
  assert.equal(engine.get("default", bytes("a")), null);
  assert.equal(released, 2);
});

Deno.test("a group reaching GROUP_MAX_BYTES is written at once", async () => {
  const { engine, writes } = countingEngine();
  const groups = new WriteGroups(engine, false);
  const first = groups.write({
    sizeBytes: GROUP_MAX_BYTES,
    fill: (batch) => batch.put("default", bytes("big"), new Uint8Array(GROUP_MAX_BYTES)),
    release: null,
  });
  assert.deepEqual(writes, [1], "not written before the wave ended");
  const second = groups.write(puts([["small", "s"]]));
  await Promise.all([first, second]);
  assert.deepEqual(writes, [1, 1]);
});

Deno.test("a failed group write fails every write of the group", async () => {
  const engine = new MemoryEngine();
  engine.writeDurable = () => Promise.reject(new Error("disk on fire"));
  const groups = new WriteGroups(engine, true);
  const results = await Promise.allSettled(
    ["a", "b"].map((k) => groups.write(puts([[k, k]]))),
  );
  assert.deepEqual(results.map((result) => result.status), ["rejected", "rejected"]);
  assert.match(String((results[0] as PromiseRejectedResult).reason), /disk on fire/);
});

Deno.test("with GROUPS_IN_FLIGHT_MAX durable writes in flight, later writes gather in one group written when one lands", async () => {
  const engine = new MemoryEngine();
  const sizes: number[] = [];
  const landings: (() => void)[] = [];
  const write = engine.write.bind(engine);
  engine.writeDurable = (batch: WriteBatch) => {
    sizes.push(batch.count);
    write(batch);
    return new Promise((resolve) => landings.push(resolve));
  };
  const groups = new WriteGroups(engine, true);
  const waves = (count: number) => new Promise((resolve) => setTimeout(resolve, count));
  const done: Promise<void>[] = [];
  for (let i = 0; i < GROUPS_IN_FLIGHT_MAX; i++) {
    done.push(groups.write(puts([[`first${i}`, "v"]])));
    await waves(1);
  }
  assert.equal(sizes.length, GROUPS_IN_FLIGHT_MAX);
  for (let i = 0; i < 3; i++) {
    done.push(groups.write(puts([[`later${i}`, "v"]])));
    await waves(1);
  }
  assert.equal(sizes.length, GROUPS_IN_FLIGHT_MAX, "held back while the maximum is in flight");
  landings.shift()!();
  await waves(1);
  assert.deepEqual(sizes.slice(GROUPS_IN_FLIGHT_MAX), [3], "the three later writes, as one group");
  for (const land of landings.splice(0)) land();
  await waves(1);
  for (const land of landings.splice(0)) land();
  await Promise.all(done);
});
