/**
 * The TTL sweep (`ttl_sweeper.ts`): it deletes expired raw values and their index entries, and
 * nothing else; it touches only the worker's regions, and stops on a region given up meanwhile.
 */
import assert from "node:assert/strict";
import { TTL_SWEEP_CHUNK_ENTRIES, TTL_SWEEP_CHUNK_SCANNED } from "../../constants.ts";
import { MemoryEngine } from "../../engine/memory_engine.ts";
import {
  GroupCommit,
  type Modification,
  type RegionMeta,
  type WriteOptions,
  type WritePath,
} from "../../storage/mod.ts";
import { RecordingWritePath } from "../../storage/test_support.ts";
import { TTL_INDEX_BOUNDS, TTL_INDEX_CF, ttlIndexKey } from "../../storage/ttl_index.ts";
import { toHex, utf8 } from "../../util/bytes.ts";
import { type Region, standaloneRegion } from "../region.ts";
import type { StoreServices } from "../services.ts";
import { Latches } from "./latches.ts";
import { newTxnStore } from "../txn/store.ts";
import { latchedWrite } from "./store.ts";
import { sweepExpired } from "./ttl_sweeper.ts";

function setUp(regions: Region[] = [standaloneRegion()]) {
  const clock = { now: 1_000 };
  const engine = new MemoryEngine();
  const services: StoreServices = {
    regions: new Map(regions.map((region) => [region.id, region])),
    raw: { engine, latches: new Latches(), syncLog: false, nowUnixSeconds: () => clock.now },
    txn: newTxnStore(engine, { syncLog: false, latestTs: 1n }),
  };
  const whole = standaloneRegion();
  const put = (key: string, expireUnixSeconds: number, cf: "default" | "write" = "default") =>
    latchedWrite(services.raw, whole, {
      cf,
      mutations: [{ kind: "put", key: utf8(key), userValue: utf8("v"), expireUnixSeconds }],
    });
  const indexEntries = () => {
    using iterator = engine.iterator(TTL_INDEX_CF, {
      lowerBound: TTL_INDEX_BOUNDS.start,
      upperBound: TTL_INDEX_BOUNDS.end,
    });
    let count = 0;
    for (iterator.seekToFirst(); iterator.valid(); iterator.next()) count++;
    return count;
  };
  return { clock, engine, services, put, indexEntries };
}

function region(id: bigint, startKey: string, endKey: string): Region {
  return { ...standaloneRegion(), id, startKey: utf8(startKey), endKey: utf8(endKey) };
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

Deno.test("a worker serving [a, m) sweeps its keys only; the keys from m on wait for theirs", async () => {
  const left = region(1n, "", "m");
  const right = region(2n, "m", "");
  const { clock, engine, services, put } = setUp([left]);
  // "l" sorts before "m" but "l\xff…" must not escape [a, m): the index is prefix-free.
  for (const key of ["a", "l", "l\u00ff\u00ff", "m", "m0", "z"]) await put(key, 1_010);
  clock.now = 1_010;
  assert.deepEqual(await sweepExpired(services), { deleted: 3, examined: 3 });
  for (const key of ["a", "l", "l\u00ff\u00ff"]) {
    assert.equal(engine.get("default", utf8(key)), null);
  }
  for (const key of ["m", "m0", "z"]) assert.notEqual(engine.get("default", utf8(key)), null);
  const other: StoreServices = { ...services, regions: new Map([[right.id, right]]) };
  assert.deepEqual(await sweepExpired(other), { deleted: 3, examined: 3 });
});

Deno.test("a sweep reads past many live entries in chunks and still finds the few due ones", async () => {
  const { clock, engine, services, put, indexEntries } = setUp();
  const live = TTL_SWEEP_CHUNK_SCANNED + 500;
  for (let i = 0; i < live; i++) await put(`live${String(i).padStart(6, "0")}`, 9_000);
  await put("live~due-after-all-live", 1_010);
  await put("a-due-before", 1_010);
  clock.now = 1_010;
  assert.deepEqual(await sweepExpired(services), { deleted: 2, examined: 2 });
  assert.equal(engine.get("default", utf8("live~due-after-all-live")), null);
  assert.equal(indexEntries(), live);
});

Deno.test("a region given up during a sweep is left at once (its hold is refused)", async () => {
  const { clock, engine, services, put } = setUp();
  for (let i = 0; i < 10; i++) await put(`k${i}`, 1_010);
  clock.now = 1_010;
  let holds = 0;
  const result = await sweepExpired(services, {
    hold: () => {
      holds++;
      return null; // dropped before the first chunk
    },
  });
  assert.deepEqual(result, { deleted: 0, examined: 0 });
  assert.equal(holds, 1, "one refused hold ends the region's sweep");
  assert.notEqual(engine.get("default", utf8("k0")), null);
});

Deno.test("the sweep's deletes leave through the write path, one unsynced latched write per chunk of a region", async () => {
  const { clock, engine, services, put } = setUp([region(7n, "", "")]);
  const recording = new RecordingWritePath(new GroupCommit(engine, { syncLog: false }));
  const calls: { sync: boolean | undefined; latchesHeld: number; withoutRelease: boolean }[] = [];
  let releasedInside = 0;
  const observing: WritePath = {
    write(region: RegionMeta, modifications: readonly Modification[], options?: WriteOptions) {
      const release = options?.release ?? null;
      calls.push({
        sync: options?.sync,
        latchesHeld: services.raw.latches.size,
        withoutRelease: release === null,
      });
      // The path, not the sweeper, gives the latches back once the write is applied.
      const counted = release === null ? null : () => {
        releasedInside++;
        release();
      };
      return recording.write(region, modifications, { ...options, release: counted });
    },
  };
  const due = TTL_SWEEP_CHUNK_ENTRIES + 10; // two chunks
  for (let i = 0; i < due; i++) await put(`k${String(i).padStart(4, "0")}`, 1_010);
  await put("stale", 1_010);
  await put("stale", 0); // its entry is due, its value lives on
  await put("live", 9_000);
  services.raw.writes = observing;
  clock.now = 1_010;
  assert.deepEqual(await sweepExpired(services), { deleted: due, examined: due + 1 });

  assert.equal(recording.writes.length, 2, "one write per chunk, not one per entry");
  assert.deepEqual(calls.map((call) => call.sync), [false, false]);
  assert.ok(
    calls.every((call) => call.latchesHeld > 0 && !call.withoutRelease),
    "latched until applied",
  );
  assert.equal(releasedInside, 2);
  assert.equal(services.raw.latches.size, 0);
  assert.ok(recording.writes.every((write) => write.regionId === 7n));
  const deleted = new Set(
    recording.modificationsSince(0).map((modification) => {
      assert.equal(modification.type, "delete");
      return `${modification.cf}:${toHex(modification.key)}`;
    }),
  );
  const expected = new Set<string>();
  for (let i = 0; i < due; i++) {
    const key = utf8(`k${String(i).padStart(4, "0")}`);
    expected.add(`default:${toHex(key)}`);
    expected.add(`${TTL_INDEX_CF}:${toHex(ttlIndexKey(1_010, "default", key))}`);
  }
  expected.add(`${TTL_INDEX_CF}:${toHex(ttlIndexKey(1_010, "default", utf8("stale")))}`);
  assert.deepEqual(deleted, expected);
  assert.notEqual(engine.get("default", utf8("stale")), null);
  assert.notEqual(engine.get("default", utf8("live")), null);
  assert.equal(engine.get("default", utf8("k0000")), null);
});
