/**
 * The raw TTL expiry index's layout (`ttl_index.ts`): ordered by column family and user key, so
 * the entries of a region's keys are one range per family — carried by a range copy of the
 * region's [start, end), divided by a split at the split key — and the old store-wide layout
 * (ordered by expiry) is rewritten when a store opens, losing no entry.
 */
import assert from "node:assert/strict";
import { TTL_INDEX_MIGRATION_BATCH_ENTRIES } from "../../constants.ts";
import { withSeed } from "../../codec/test_support.ts";
import { MemoryEngine } from "../../engine/memory_engine.ts";
import type { ColumnFamily, KvEngine } from "../../engine/types.ts";
import {
  applyStateKey,
  raftLogKey,
  raftLogRange,
  raftStateKey,
  regionMetaRange,
  regionStateKey,
  storeIdentKey,
} from "../../raftstore/keys.ts";
import { compareBytes, toHex, utf8 } from "../../util/bytes.ts";
import { type Region, standaloneRegion } from "../region.ts";
import type { StoreServices } from "../services.ts";
import { newTxnStore } from "../txn/store.ts";
import { Latches } from "./latches.ts";
import { latchedWrite } from "./store.ts";
import {
  LEGACY_TTL_INDEX_BOUNDS,
  legacyTtlIndexKey,
  migrateLegacyTtlIndex,
  parseTtlIndexKey,
  RAW_CFS,
  TTL_INDEX_BOUNDS,
  TTL_INDEX_CF,
  ttlIndexKey,
  ttlIndexRangeOf,
  ttlIndexRangesOf,
} from "../../storage/ttl_index.ts";
import { sweepExpired } from "./ttl_sweeper.ts";
import { encodeRawValue } from "./value.ts";

const U64_MAX = 0xffff_ffff_ffff_ffffn;

function inside(key: Uint8Array, range: { start: Uint8Array; end: Uint8Array }): boolean {
  return compareBytes(key, range.start) >= 0 && compareBytes(key, range.end) < 0;
}

function inRegion(key: Uint8Array, range: { startKey: Uint8Array; endKey: Uint8Array }): boolean {
  return compareBytes(key, range.startKey) >= 0 &&
    (range.endKey.length === 0 || compareBytes(key, range.endKey) < 0);
}

function keysIn(
  engine: KvEngine,
  cf: ColumnFamily,
  range?: { start: Uint8Array; end: Uint8Array },
) {
  using iterator = engine.iterator(cf, range && { lowerBound: range.start, upperBound: range.end });
  const keys: Uint8Array[] = [];
  for (iterator.seekToFirst(); iterator.valid(); iterator.next()) keys.push(iterator.key().slice());
  return keys;
}

function region(id: bigint, startKey: Uint8Array, endKey: Uint8Array): Region {
  return { ...standaloneRegion(), id, startKey, endKey };
}

Deno.test("an index entry lies in the index range of a key range exactly when its key lies in the key range (any bytes, prefixes included)", () => {
  withSeed((prng) => {
    const pick = () => prng.bytes(prng.below(4)); // short keys: many prefixes and equal keys
    for (let i = 0; i < 3000; i++) {
      const [a, b] = [pick(), pick()].sort(compareBytes);
      const range = { startKey: a!, endKey: prng.below(5) === 0 ? new Uint8Array(0) : b! };
      const cf = RAW_CFS[prng.below(3)]!;
      const key = pick();
      const entry = ttlIndexKey(1 + prng.below(2 ** 31), cf, key);
      const otherCf = RAW_CFS[(RAW_CFS.indexOf(cf) + 1) % 3]!;
      assert.equal(inside(entry, ttlIndexRangeOf(cf, range)), inRegion(key, range), toHex(entry));
      assert.ok(!inside(entry, ttlIndexRangeOf(otherCf, range)), "families never mix");
      assert.deepEqual(parseTtlIndexKey(entry)?.key, key);
    }
  });
});

Deno.test("a snapshot's range copy of [start, end) carries the index entries of its keys, and no others", async () => {
  const engine = new MemoryEngine();
  const clock = { now: 1_000 };
  const raw = { engine, latches: new Latches(), syncLog: false, nowUnixSeconds: () => clock.now };
  const keys = ["a", "b", "g", "g\u00ff", "h", "k", "q", "z"];
  for (const key of keys) {
    for (const cf of ["default", "write"] as const) {
      await latchedWrite(raw, standaloneRegion(), {
        cf,
        mutations: [{
          kind: "put",
          key: utf8(key),
          userValue: utf8("v"),
          expireUnixSeconds: 1_010,
        }],
      });
    }
  }
  // What a snapshot of region [g, q) copies: its data range per family, plus its index ranges.
  const moved = region(5n, utf8("g"), utf8("q"));
  const target = new MemoryEngine();
  for (const cf of RAW_CFS) {
    for (const key of keysIn(engine, cf)) {
      if (inRegion(key, moved)) target.put(cf, key, engine.get(cf, key)!);
    }
  }
  for (const { start, end } of ttlIndexRangesOf(moved)) {
    for (const key of keysIn(engine, TTL_INDEX_CF, { start, end })) {
      target.put(TTL_INDEX_CF, key, new Uint8Array(0));
    }
  }
  const carried = keysIn(target, TTL_INDEX_CF).map((key) => parseTtlIndexKey(key)!);
  const expected = ["g", "g\u00ff", "h", "k"];
  assert.deepEqual(
    carried.map((entry) => `${entry.cf}:${new TextDecoder().decode(entry.key)}`).sort(),
    expected.flatMap((key) => [`default:${key}`, `write:${key}`]).sort(),
  );
  // The store that installed the snapshot reclaims the region's expired keys by itself.
  clock.now = 1_010;
  const services: StoreServices = {
    regions: new Map([[moved.id, moved]]),
    raw: { ...raw, engine: target, latches: new Latches() },
    txn: newTxnStore(target, { syncLog: false, latestTs: 1n }),
  };
  assert.deepEqual(await sweepExpired(services), { deleted: 8, examined: 8 });
  assert.equal(keysIn(target, "default").length, 0);
  assert.equal(keysIn(target, TTL_INDEX_CF).length, 0);
});

Deno.test("a split at a key divides the parent's index ranges between the two halves, with no entry moved", () => {
  withSeed((prng) => {
    for (let i = 0; i < 500; i++) {
      const [a, m, b] = [
        prng.bytes(prng.below(5)),
        prng.bytes(1 + prng.below(5)),
        prng.bytes(prng.below(5)),
      ]
        .sort(compareBytes);
      if (compareBytes(a!, m!) >= 0 || compareBytes(m!, b!) >= 0) continue;
      const parent = { startKey: a!, endKey: b! };
      const left = { startKey: a!, endKey: m! };
      const right = { startKey: m!, endKey: b! };
      const cf = RAW_CFS[prng.below(3)]!;
      // The halves' index ranges meet at the split key: the left's end is the right's start.
      assert.deepEqual(ttlIndexRangeOf(cf, left).end, ttlIndexRangeOf(cf, right).start);
      assert.deepEqual(ttlIndexRangeOf(cf, left).start, ttlIndexRangeOf(cf, parent).start);
      assert.deepEqual(ttlIndexRangeOf(cf, right).end, ttlIndexRangeOf(cf, parent).end);
      const key = prng.bytes(prng.below(6));
      const entry = ttlIndexKey(1_000, cf, key);
      const halves = [left, right].filter((half) => inside(entry, ttlIndexRangeOf(cf, half)));
      assert.equal(halves.length, inRegion(key, parent) ? 1 : 0);
      if (halves.length === 1) assert.ok(inRegion(key, halves[0]!), "the entry goes with its key");
    }
  });
});

Deno.test("opening a store rewrites the old expiry-ordered index into the layout by key, losing no entry", async () => {
  const engine = new MemoryEngine();
  const count = TTL_INDEX_MIGRATION_BATCH_ENTRIES + 100; // more than one batch
  for (let i = 0; i < count; i++) {
    const key = utf8(`old${String(i).padStart(6, "0")}`);
    const expiry = i % 2 === 0 ? 1_010 : 9_000;
    const cf = i % 3 === 0 ? "write" : "default";
    engine.put(cf, key, encodeRawValue(utf8("v"), expiry));
    engine.put(TTL_INDEX_CF, legacyTtlIndexKey(expiry, cf, key), new Uint8Array(0));
  }
  const damaged = new Uint8Array([0x01, 0x74, 0x00, 1, 2]); // too short to name a key
  engine.put(TTL_INDEX_CF, damaged, new Uint8Array(0));
  const raftstoreKeys = [storeIdentKey(), raftStateKey(1n), regionStateKey(1n)];
  for (const key of raftstoreKeys) engine.put(TTL_INDEX_CF, key, utf8("state"));

  assert.deepEqual(migrateLegacyTtlIndex(engine), { moved: count, dropped: 1 });
  assert.equal(keysIn(engine, TTL_INDEX_CF, LEGACY_TTL_INDEX_BOUNDS).length, 0);
  assert.equal(keysIn(engine, TTL_INDEX_CF, TTL_INDEX_BOUNDS).length, count);
  for (const key of raftstoreKeys) assert.deepEqual(engine.get(TTL_INDEX_CF, key), utf8("state"));
  assert.deepEqual(migrateLegacyTtlIndex(engine), { moved: 0, dropped: 0 }, "idempotent");

  // The migrated entries work: a sweep reclaims exactly the expired half.
  const services: StoreServices = {
    regions: new Map([[1n, standaloneRegion()]]),
    raw: { engine, latches: new Latches(), syncLog: false, nowUnixSeconds: () => 1_010 },
    txn: newTxnStore(engine, { syncLog: false, latestTs: 1n }),
  };
  const expired = Math.ceil(count / 2);
  assert.deepEqual(await sweepExpired(services), { deleted: expired, examined: expired });
  assert.equal(keysIn(engine, TTL_INDEX_CF, TTL_INDEX_BOUNDS).length, count - expired);
});

Deno.test("no index key of either layout falls in a range of the raftstore's local keys in CF raft", () => {
  const ours = [
    ttlIndexKey(0, "default", new Uint8Array(0)),
    ttlIndexKey(Number.MAX_SAFE_INTEGER, "lock", new Uint8Array(300).fill(0xff)),
    ttlIndexKey(2 ** 32, "write", new Uint8Array([1, 2, 1])),
    legacyTtlIndexKey(1, "default", new Uint8Array(0)),
    legacyTtlIndexKey(Number.MAX_SAFE_INTEGER, "write", new Uint8Array(300).fill(0xff)),
  ];
  const raftstore = [raftLogRange(0n), raftLogRange(U64_MAX), regionMetaRange()];
  const raftstoreKeys = [
    storeIdentKey(),
    raftLogKey(0n, 0n),
    raftLogKey(U64_MAX, U64_MAX),
    raftStateKey(U64_MAX),
    applyStateKey(0n),
    regionStateKey(U64_MAX),
  ];
  for (const key of ours) {
    assert.ok(inside(key, TTL_INDEX_BOUNDS), toHex(key));
    for (const range of raftstore) assert.ok(!inside(key, range), toHex(key));
  }
  for (const key of raftstoreKeys) {
    assert.ok(!inside(key, TTL_INDEX_BOUNDS), `the index bounds must not reach ${toHex(key)}`);
  }
  // The two layouts are told apart by their third byte, and every region's ranges stay inside.
  assert.ok(inside(ours[3]!, LEGACY_TTL_INDEX_BOUNDS) && inside(ours[4]!, LEGACY_TTL_INDEX_BOUNDS));
  assert.ok(
    !inside(ours[0]!, LEGACY_TTL_INDEX_BOUNDS) && !inside(ours[1]!, LEGACY_TTL_INDEX_BOUNDS),
  );
  for (
    const { start, end } of ttlIndexRangesOf({
      startKey: new Uint8Array(0),
      endKey: new Uint8Array(0),
    })
  ) {
    assert.ok(inside(start, TTL_INDEX_BOUNDS) && compareBytes(end, TTL_INDEX_BOUNDS.end) <= 0);
    assert.ok(compareBytes(start, LEGACY_TTL_INDEX_BOUNDS.end) >= 0, "the layout by key is apart");
  }
});
