/**
 * The group commit (`group_commit.ts`): one engine write per wave of microtasks, latches
 * released and writes acknowledged only once their group is applied (durable with sync-log).
 */
import assert from "node:assert/strict";
import { WRITE_GROUP_MAX_BYTES, WRITE_GROUPS_IN_FLIGHT_MAX } from "../constants.ts";
import { MemoryEngine } from "../engine/memory_engine.ts";
import type { KvEngine, WriteBatch } from "../engine/types.ts";
import { fromUtf8, utf8 } from "../util/bytes.ts";
import { GroupCommit } from "./group_commit.ts";
import type { Modification } from "./modification.ts";
import type { RegionMeta } from "./region_range.ts";

const text = (value: Uint8Array | null) => value === null ? null : fromUtf8(value);

const ALL_KEYS: RegionMeta = {
  id: 1n,
  startKey: new Uint8Array(0),
  endKey: new Uint8Array(0),
  confVer: 1n,
  version: 1n,
};

/** The modifications of `pairs` (value null = delete) in the default family. */
function puts(pairs: [string, string | null][]): Modification[] {
  return pairs.map(([key, value]) =>
    value === null
      ? { type: "delete", cf: "default", key: utf8(key) }
      : { type: "put", cf: "default", key: utf8(key), value: utf8(value) }
  );
}

/** A memory engine that counts the batches it applies, durable ones after 5 ms. */
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
  const groups = new GroupCommit(engine, { syncLog: true });
  let settled = 0;
  let released = 0;
  const writes = ["a", "b", "c"].map((k) =>
    groups.write(ALL_KEYS, puts([[k, k]]), { release: () => released++ }).then(() => {
      assert.equal(released, 3, "latches released before the acknowledgement");
      settled++;
    })
  );
  await new Promise((resolve) => setTimeout(resolve, 1));
  assert.deepEqual(durable, [3]);
  assert.equal(settled, 0, "acknowledged before the durable write finished");
  assert.equal(released, 0, "latches released before the durable write finished");
  await Promise.all(writes);
  assert.equal(text(engine.get("default", utf8("b"))), "b");
});

Deno.test("writes after the wave ended go in later groups, in order", async () => {
  const { engine, writes } = countingEngine();
  const groups = new GroupCommit(engine, { syncLog: false });
  await groups.write(ALL_KEYS, puts([["k", "1"]]));
  await groups.write(ALL_KEYS, puts([["k", "2"], ["j", null]]));
  assert.deepEqual(writes, [1, 2]);
  assert.equal(text(engine.get("default", utf8("k"))), "2");
});

Deno.test("a write the engine's limits refuse fails alone, adds nothing and releases its latches; its group goes on", async () => {
  const { engine, writes } = countingEngine();
  const groups = new GroupCommit(engine, { syncLog: false });
  let released = 0;
  const first = groups.write(ALL_KEYS, puts([["a", "a"]]), { release: () => released++ });
  const refused = groups.write(ALL_KEYS, [
    { type: "put", cf: "default", key: utf8("b"), value: utf8("b") },
    { type: "deleteRange", cf: "default", startKey: utf8("z"), endKey: utf8("a") },
  ], { release: () => released++ });
  const results = await Promise.allSettled([first, refused]);
  assert.deepEqual(results.map((result) => result.status), ["fulfilled", "rejected"]);
  assert.match(String((results[1] as PromiseRejectedResult).reason), /start key is after end key/);
  assert.deepEqual(writes, [1]);
  assert.equal(text(engine.get("default", utf8("a"))), "a");
  assert.equal(engine.get("default", utf8("b")), null, "the refused write added nothing");
  assert.equal(released, 2);
});

Deno.test("a write that throws while it is added fails its whole group, which writes nothing, and releases every latch", async () => {
  const { engine, writes } = countingEngine();
  const newWriteBatch = engine.newWriteBatch.bind(engine);
  engine.newWriteBatch = () => {
    const batch = newWriteBatch();
    const put = batch.put.bind(batch);
    batch.put = (cf, key, value) => {
      if (fromUtf8(key) === "b") throw new Error("bug while adding");
      put(cf, key, value);
    };
    return batch;
  };
  const groups = new GroupCommit(engine, { syncLog: false });
  let released = 0;
  const first = groups.write(ALL_KEYS, puts([["a", "a"]]), { release: () => released++ });
  const broken = groups.write(ALL_KEYS, puts([["b", "b"]]), { release: () => released++ });
  const results = await Promise.allSettled([first, broken]);
  assert.deepEqual(results.map((result) => result.status), ["rejected", "rejected"]);
  assert.deepEqual(writes, []);
  assert.equal(engine.get("default", utf8("a")), null);
  assert.equal(released, 2);
});

Deno.test("a group reaching WRITE_GROUP_MAX_BYTES is written at once", async () => {
  const { engine, writes } = countingEngine();
  const groups = new GroupCommit(engine, { syncLog: false });
  const big: Modification = {
    type: "put",
    cf: "default",
    key: utf8("big"),
    value: new Uint8Array(WRITE_GROUP_MAX_BYTES),
  };
  const first = groups.write(ALL_KEYS, [big]);
  assert.deepEqual(writes, [1], "not written before the wave ended");
  const second = groups.write(ALL_KEYS, puts([["small", "s"]]));
  await Promise.all([first, second]);
  assert.deepEqual(writes, [1, 1]);
});

Deno.test("a failed group write fails every write of the group", async () => {
  const engine = new MemoryEngine();
  engine.writeDurable = () => Promise.reject(new Error("disk on fire"));
  const groups = new GroupCommit(engine, { syncLog: true });
  const results = await Promise.allSettled(
    ["a", "b"].map((k) => groups.write(ALL_KEYS, puts([[k, k]]))),
  );
  assert.deepEqual(results.map((result) => result.status), ["rejected", "rejected"]);
  assert.match(String((results[0] as PromiseRejectedResult).reason), /disk on fire/);
});

Deno.test("with WRITE_GROUPS_IN_FLIGHT_MAX durable writes in flight, later writes gather in one group written when one lands", async () => {
  const engine = new MemoryEngine();
  const sizes: number[] = [];
  const landings: (() => void)[] = [];
  const write = engine.write.bind(engine);
  engine.writeDurable = (batch: WriteBatch) => {
    sizes.push(batch.count);
    write(batch);
    return new Promise((resolve) => landings.push(resolve));
  };
  const groups = new GroupCommit(engine, { syncLog: true });
  const waves = (count: number) => new Promise((resolve) => setTimeout(resolve, count));
  const done: Promise<void>[] = [];
  for (let i = 0; i < WRITE_GROUPS_IN_FLIGHT_MAX; i++) {
    done.push(groups.write(ALL_KEYS, puts([[`first${i}`, "v"]])));
    await waves(1);
  }
  assert.equal(sizes.length, WRITE_GROUPS_IN_FLIGHT_MAX);
  for (let i = 0; i < 3; i++) {
    done.push(groups.write(ALL_KEYS, puts([[`later${i}`, "v"]])));
    await waves(1);
  }
  assert.equal(
    sizes.length,
    WRITE_GROUPS_IN_FLIGHT_MAX,
    "held back while the maximum is in flight",
  );
  landings.shift()!();
  await waves(1);
  assert.deepEqual(
    sizes.slice(WRITE_GROUPS_IN_FLIGHT_MAX),
    [3],
    "the three later writes, as one group",
  );
  for (const land of landings.splice(0)) land();
  await waves(1);
  for (const land of landings.splice(0)) land();
  await Promise.all(done);
});

Deno.test("a group is fsynced when any of its writes needs it; a group of sync: false writes is not", async () => {
  const { engine, writes, durable } = countingEngine();
  const groups = new GroupCommit(engine, { syncLog: true });
  await groups.write(ALL_KEYS, puts([["swept", null]]), { sync: false });
  assert.deepEqual([writes, durable], [[1], []]);
  await Promise.all([
    groups.write(ALL_KEYS, puts([["swept2", null]]), { sync: false }),
    groups.write(ALL_KEYS, puts([["put", "v"]])),
  ]);
  assert.deepEqual([writes, durable], [[1], [2]]);
});

Deno.test("every modification type reaches the engine: put, delete, delete-range", async () => {
  const engine = new MemoryEngine();
  for (const key of ["a", "b", "c", "d"]) engine.put("write", utf8(key), utf8(key));
  const groups = new GroupCommit(engine, { syncLog: false });
  await groups.write(ALL_KEYS, [
    { type: "put", cf: "lock", key: utf8("l"), value: utf8("1") },
    { type: "delete", cf: "write", key: utf8("a") },
    { type: "deleteRange", cf: "write", startKey: utf8("b"), endKey: utf8("d") },
  ]);
  assert.equal(text(engine.get("lock", utf8("l"))), "1");
  assert.deepEqual(
    ["a", "b", "c", "d"].map((key) => text(engine.get("write", utf8(key)))),
    [null, null, null, "d"],
  );
});

Deno.test("a write outside its region is refused before anything is written (write path duty 6)", () => {
  const engine = new MemoryEngine();
  const groups = new GroupCommit(engine, { syncLog: false });
  const region: RegionMeta = { ...ALL_KEYS, startKey: utf8("b"), endKey: utf8("d") };
  assert.throws(() => groups.write(region, puts([["c", "in"], ["d", "out"]])), /inside its region/);
  assert.throws(
    () =>
      groups.write(region, [
        { type: "deleteRange", cf: "default", startKey: utf8("b"), endKey: utf8("e") },
      ]),
    /inside its region/,
  );
  assert.equal(engine.get("default", utf8("c")), null);
});
