/**
 * The engine conformance suite: the behaviour every `KvEngine` must show, registered as Deno
 * tests for one implementation. `memory_engine_test.ts` and `rocksdb_engine_test.ts` run it.
 */
import assert from "node:assert/strict";
import { fromUtf8, utf8 } from "../util/bytes.ts";
import { EntryTooLargeError } from "./limits.ts";
import { ENGINE_MAX_KEY_BYTES } from "../constants.ts";
import {
  type ColumnFamily,
  EngineClosedError,
  type EngineIterator,
  type IterOptions,
  type KvEngine,
  type Readable,
} from "./types.ts";

/** Makes a fresh, empty engine and a function that disposes of it. */
export type EngineFactory = () => Promise<{ engine: KvEngine; cleanup: () => Promise<void> }>;

const b = utf8;
const text = (bytes: Uint8Array | null) => bytes === null ? null : fromUtf8(bytes);

/** Every key/value of `cf` in [lower, upper) forward, as strings. */
export function scanAll(
  reader: Readable,
  cf: ColumnFamily,
  options: IterOptions = {},
): [string, string][] {
  const out: [string, string][] = [];
  const iterator = reader.iterator(cf, options);
  try {
    for (iterator.seekToFirst(); iterator.valid(); iterator.next()) {
      out.push([fromUtf8(iterator.key()), fromUtf8(iterator.value())]);
    }
  } finally {
    iterator.close();
  }
  return out;
}

function position(iterator: EngineIterator): string | null {
  return iterator.valid() ? fromUtf8(iterator.key()) : null;
}

function fill(engine: KvEngine, cf: ColumnFamily, keys: string[]): void {
  for (const key of keys) engine.put(cf, b(key), b(`v-${key}`));
}

type Case = [name: string, body: (engine: KvEngine) => void | Promise<void>];

const CASES: Case[] = [
  ["get returns what put wrote, per column family", (engine) => {
    engine.put("default", b("k"), b("d"));
    engine.put("write", b("k"), b("w"));
    assert.equal(text(engine.get("default", b("k"))), "d");
    assert.equal(text(engine.get("write", b("k"))), "w");
    assert.equal(engine.get("lock", b("k")), null);
    assert.equal(engine.get("raft", b("k")), null);
  }],
  ["an empty value is present, not missing", (engine) => {
    engine.put("default", b("empty"), new Uint8Array(0));
    assert.deepEqual(engine.get("default", b("empty")), new Uint8Array(0));
  }],
  ["put overwrites and delete removes", (engine) => {
    engine.put("default", b("k"), b("1"));
    engine.put("default", b("k"), b("2"));
    assert.equal(text(engine.get("default", b("k"))), "2");
    engine.delete("default", b("k"));
    assert.equal(engine.get("default", b("k")), null);
    engine.delete("default", b("never-written"));
  }],
  ["singleDelete removes a key written once", (engine) => {
    engine.put("lock", b("once"), b("x"));
    engine.singleDelete("lock", b("once"));
    assert.equal(engine.get("lock", b("once")), null);
  }],
  ["stored bytes do not change when the caller reuses its buffers", (engine) => {
    const key = b("kk");
    const value = b("vv");
    engine.put("default", key, value);
    key[0] = 0x7a;
    value[0] = 0x7a;
    assert.equal(text(engine.get("default", b("kk"))), "vv");
    const got = engine.get("default", b("kk"))!;
    got[0] = 0x7a;
    assert.equal(text(engine.get("default", b("kk"))), "vv");
  }],
  ["deleteRange removes [start, end) and nothing else", (engine) => {
    fill(engine, "default", ["a", "b", "c", "d", "e"]);
    fill(engine, "write", ["b", "c"]);
    engine.deleteRange("default", b("b"), b("d"));
    assert.deepEqual(scanAll(engine, "default").map(([k]) => k), ["a", "d", "e"]);
    assert.deepEqual(scanAll(engine, "write").map(([k]) => k), ["b", "c"]);
  }],
  ["deleteRange with start after end is refused", (engine) => {
    assert.throws(() => engine.deleteRange("default", b("z"), b("a")), RangeError);
  }],
  ["multiGet answers in order with nulls for missing keys", (engine) => {
    fill(engine, "default", ["a", "c"]);
    const values = engine.multiGet("default", [b("c"), b("b"), b("a")]).map(text);
    assert.deepEqual(values, ["v-c", null, "v-a"]);
    assert.deepEqual(engine.multiGet("default", []), []);
  }],
  ["a write batch applies all its operations in order, atomically", (engine) => {
    engine.put("default", b("gone"), b("x"));
    const batch = engine.newWriteBatch();
    batch.put("default", b("a"), b("1"));
    batch.put("lock", b("a"), b("L"));
    batch.delete("default", b("gone"));
    batch.put("default", b("twice"), b("first"));
    batch.put("default", b("twice"), b("second"));
    batch.put("default", b("then-deleted"), b("x"));
    batch.delete("default", b("then-deleted"));
    assert.equal(batch.count, 7);
    assert.ok(batch.dataSizeBytes > 0);
    assert.equal(text(engine.get("default", b("a"))), null, "nothing visible before write");
    engine.write(batch);
    assert.equal(text(engine.get("default", b("a"))), "1");
    assert.equal(text(engine.get("lock", b("a"))), "L");
    assert.equal(engine.get("default", b("gone")), null);
    assert.equal(text(engine.get("default", b("twice"))), "second");
    assert.equal(engine.get("default", b("then-deleted")), null);
    batch.clear();
    assert.equal(batch.count, 0);
    batch.destroy();
    assert.throws(() => batch.put("default", b("x"), b("y")), EngineClosedError);
  }],
  ["a batch's deleteRange applies between the operations around it", (engine) => {
    fill(engine, "default", ["a", "b", "c"]);
    const batch = engine.newWriteBatch();
    batch.put("default", b("bb"), b("new"));
    batch.deleteRange("default", b("b"), b("c"));
    batch.put("default", b("b"), b("again"));
    engine.write(batch);
    batch.destroy();
    assert.deepEqual(scanAll(engine, "default"), [["a", "v-a"], ["b", "again"], ["c", "v-c"]]);
  }],
  ["writeDurable applies the batch and resolves", async (engine) => {
    const batch = engine.newWriteBatch();
    batch.put("raft", b("entry"), b("1"));
    await engine.writeDurable(batch);
    batch.destroy();
    assert.equal(text(engine.get("raft", b("entry"))), "1");
  }],
  [
    "a write is visible at once and syncWal resolves after it, concurrent syncs too",
    async (engine) => {
      const batch = engine.newWriteBatch();
      batch.put("raft", b("entry"), b("2"));
      engine.write(batch);
      batch.destroy();
      assert.equal(text(engine.get("raft", b("entry"))), "2");
      await Promise.all([engine.syncWal(), engine.syncWal()]);
      assert.equal(text(engine.get("raft", b("entry"))), "2");
    },
  ],
  ["a snapshot does not see writes made after it", (engine) => {
    fill(engine, "default", ["a", "b"]);
    const snapshot = engine.snapshot();
    engine.put("default", b("a"), b("changed"));
    engine.delete("default", b("b"));
    engine.put("default", b("c"), b("new"));
    assert.equal(text(snapshot.get("default", b("a"))), "v-a");
    assert.equal(text(snapshot.get("default", b("b"))), "v-b");
    assert.equal(snapshot.get("default", b("c")), null);
    assert.deepEqual(scanAll(snapshot, "default").map(([k]) => k), ["a", "b"]);
    assert.deepEqual(snapshot.multiGet("default", [b("a"), b("c")]).map(text), ["v-a", null]);
    snapshot.release();
    assert.throws(() => snapshot.get("default", b("a")), EngineClosedError);
    assert.equal(text(engine.get("default", b("a"))), "changed");
  }],
  ["an iterator sees the state at its creation", (engine) => {
    fill(engine, "default", ["a", "b"]);
    const iterator = engine.iterator("default");
    engine.put("default", b("aa"), b("later"));
    const keys: string[] = [];
    for (iterator.seekToFirst(); iterator.valid(); iterator.next()) {
      keys.push(fromUtf8(iterator.key()));
    }
    iterator.close();
    assert.deepEqual(keys, ["a", "b"]);
  }],
  ["iterator movement: seek, seekForPrev, first, last, next, prev", (engine) => {
    fill(engine, "default", ["b", "d", "f"]);
    const it = engine.iterator("default");
    it.seek(b("c"));
    assert.equal(position(it), "d");
    it.seek(b("d"));
    assert.equal(position(it), "d");
    it.seekForPrev(b("e"));
    assert.equal(position(it), "d");
    it.seekForPrev(b("a"));
    assert.equal(position(it), null);
    it.seek(b("g"));
    assert.equal(position(it), null);
    it.seekToLast();
    assert.equal(position(it), "f");
    assert.equal(it.prev(), true);
    assert.equal(position(it), "d");
    assert.equal(text(it.value()), "v-d");
    it.seekToFirst();
    assert.equal(it.prev(), false);
    assert.throws(() => it.key(), /not positioned/);
    it.close();
    assert.throws(() => it.seekToFirst(), EngineClosedError);
  }],
  ["iterator bounds: lower inclusive, upper exclusive, in every movement", (engine) => {
    fill(engine, "default", ["a", "b", "c", "d", "e"]);
    const it = engine.iterator("default", { lowerBound: b("b"), upperBound: b("d") });
    it.seekToFirst();
    assert.equal(position(it), "b");
    it.seekToLast();
    assert.equal(position(it), "c");
    it.seek(b("a"));
    assert.equal(position(it), "b", "seek below the lower bound lands on it");
    it.seekForPrev(b("z"));
    assert.equal(position(it), "c", "seekForPrev above the upper bound stays below it");
    assert.equal(it.next(), false);
    it.seek(b("c"));
    assert.equal(it.prev(), true);
    assert.equal(position(it), "b");
    assert.equal(it.prev(), false);
    it.close();
    const empty = engine.iterator("default", { lowerBound: b("bb"), upperBound: b("bc") });
    empty.seekToFirst();
    assert.equal(empty.valid(), false);
    empty.close();
    const none = engine.iterator("default", { upperBound: new Uint8Array(0) });
    none.seekToLast();
    assert.equal(none.valid(), false, "an empty upper bound admits no key");
    none.close();
    const all = engine.iterator("default", { lowerBound: new Uint8Array(0) });
    all.seekToFirst();
    assert.equal(position(all), "a", "an empty lower bound admits every key");
    all.close();
  }],
  ["iterator views change when it moves; slice() keeps them", (engine) => {
    fill(engine, "default", ["k1", "k2"]);
    const it = engine.iterator("default");
    it.seekToFirst();
    const kept = it.key().slice();
    it.next();
    assert.equal(fromUtf8(kept), "k1");
    assert.equal(fromUtf8(it.key()), "k2");
    it.close();
  }],
  ["binary keys order bytewise, including 0x00 and 0xff", (engine) => {
    const keys = [[0xff], [0x00], [], [0x00, 0x00], [0x7f, 0xff], [0x80]].map((k) =>
      new Uint8Array(k)
    );
    for (const key of keys) engine.put("default", key, key);
    const it = engine.iterator("default");
    const seen: number[][] = [];
    for (it.seekToFirst(); it.valid(); it.next()) seen.push([...it.key()]);
    it.close();
    assert.deepEqual(seen, [[], [0x00], [0x00, 0x00], [0x7f, 0xff], [0x80], [0xff]]);
  }],
  ["an over-limit key is refused and stored data is untouched", (engine) => {
    engine.put("default", b("safe"), b("1"));
    const huge = new Uint8Array(ENGINE_MAX_KEY_BYTES + 1);
    assert.throws(() => engine.put("default", huge, b("x")), EntryTooLargeError);
    const batch = engine.newWriteBatch();
    assert.throws(() => batch.put("default", huge, b("x")), EntryTooLargeError);
    batch.destroy();
    assert.equal(text(engine.get("default", b("safe"))), "1");
  }],
  ["a closed engine refuses every call with EngineClosedError", (engine) => {
    engine.put("default", b("k"), b("v"));
    const snapshot = engine.snapshot();
    const iterator = engine.iterator("default");
    engine.close();
    assert.equal(engine.closed, true);
    assert.throws(() => engine.get("default", b("k")), EngineClosedError);
    assert.throws(() => engine.put("default", b("k"), b("v")), EngineClosedError);
    assert.throws(() => engine.iterator("default"), EngineClosedError);
    assert.throws(() => engine.snapshot(), EngineClosedError);
    assert.throws(() => snapshot.get("default", b("k")), EngineClosedError);
    assert.throws(() => iterator.seekToFirst(), EngineClosedError);
    engine.close();
  }],
  ["estimate-num-keys is reported", (engine) => {
    fill(engine, "write", ["a", "b", "c"]);
    assert.ok(engine.property("write", "rocksdb.estimate-num-keys") !== null);
  }],
];

/** Registers the conformance suite for one engine implementation. */
export function runConformance(name: string, factory: EngineFactory): void {
  for (const [caseName, body] of CASES) {
    Deno.test(`${name} engine: ${caseName}`, async () => {
      const { engine, cleanup } = await factory();
      try {
        await body(engine);
      } finally {
        await cleanup();
      }
    });
  }
}
