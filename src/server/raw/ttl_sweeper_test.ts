import assert from "node:assert/strict";
import { MemoryEngine } from "../../engine/memory_engine.ts";
import { utf8 } from "../../util/bytes.ts";
import { standaloneRegion } from "../region.ts";
import type { StoreServices } from "../services.ts";
import { Latches } from "./latches.ts";
import { newTxnStore } from "../txn/store.ts";
import { latchedWrite } from "./store.ts";
import { TTL_INDEX_CF } from "./ttl_index.ts";
import { sweepExpired } from "./ttl_sweeper.ts";

function setUp() {
  const clock = { now: 1_000 };
  const engine = new MemoryEngine();
  const region = standaloneRegion();
  const services: StoreServices = {
    regions: new Map([[region.id, region]]),
    raw: { engine, latches: new Latches(), syncLog: false, nowUnixSeconds: () => clock.now },
    txn: newTxnStore(engine, { syncLog: false, latestTs: 1n }),
  };
  const put = (key: string, expireUnixSeconds: number, cf: "default" | "write" = "default") =>
    latchedWrite(services.raw, {
      cf,
      mutations: [{ kind: "put", key: utf8(key), userValue: utf8("v"), expireUnixSeconds }],
    });
  const indexEntries = () => {
    using iterator = engine.iterator(TTL_INDEX_CF);
    let count = 0;
    for (iterator.seekToFirst(); iterator.valid(); iterator.next()) count++;
    return count;
  };
  return { clock, engine, services, put, indexEntries };
}

Deno.test("the sweep deletes expired values and their index entries, nothing else", async () => {
  const { clock, engine, services, put, indexEntries } = setUp();
  for (let i = 0; i < 600; i++) await put(`short${i}`, 1_010); // more than two chunks
  await put("long", 5_000);
  await put("forever", 0);
  await put("other-cf", 1_010, "write");
  engine.put("default", utf8("txn-value-lookalike"), new Uint8Array(300).fill(1));
  assert.equal(indexEntries(), 602); // "forever" has no expiry to index

  assert.deepEqual(await sweepExpired(services), { deleted: 0, examined: 0 });
  clock.now = 1_010;
  assert.deepEqual(await sweepExpired(services), { deleted: 601, examined: 601 });
  assert.equal(engine.get("default", utf8("short0")), null);
  assert.equal(engine.get("default", utf8("short599")), null);
  assert.equal(engine.get("write", utf8("other-cf")), null);
  assert.notEqual(engine.get("default", utf8("long")), null);
  assert.notEqual(engine.get("default", utf8("forever")), null);
  assert.notEqual(engine.get("default", utf8("txn-value-lookalike")), null);
  assert.equal(indexEntries(), 1);
});

Deno.test("an overwritten key keeps its new value; the stale index entry goes", async () => {
  const { clock, engine, services, put, indexEntries } = setUp();
  await put("k", 1_010);
  await put("k", 0); // rewritten without TTL
  await put("j", 1_010);
  await put("j", 2_000); // rewritten with a later expiry
  clock.now = 1_500;
  assert.deepEqual(await sweepExpired(services), { deleted: 0, examined: 2 });
  assert.notEqual(engine.get("default", utf8("k")), null);
  assert.notEqual(engine.get("default", utf8("j")), null);
  assert.equal(indexEntries(), 1);
  clock.now = 2_000;
  assert.deepEqual(await sweepExpired(services), { deleted: 1, examined: 1 });
  assert.equal(engine.get("default", utf8("j")), null);
});

Deno.test("a sweep leaves keys of regions this worker does not serve", async () => {
  const { clock, engine, services, put, indexEntries } = setUp();
  await put("k", 1_010);
  clock.now = 2_000;
  const elsewhere: StoreServices = { ...services, regions: new Map() };
  assert.deepEqual(await sweepExpired(elsewhere), { deleted: 0, examined: 0 });
  assert.notEqual(engine.get("default", utf8("k")), null);
  assert.equal(indexEntries(), 1);
});
