/**
 * The split checker (TiKV's size and keys split checkers): where a region splits, that a split
 * never falls between two versions of one transactional key, and the bounds on a check's work.
 * Entries are built with sizes that make the expected keys computable by hand: `entry(i)` is
 * ENTRY_BYTES of key and value, so the running total after entry i (1-based) is i × 1000.
 */

import assert from "node:assert/strict";
import { decodeKey, encodeKey, encodeKeyWithTs } from "../codec/key.ts";
import { compareBytes } from "../codec/compare.ts";
import {
  SPLIT_CHECK_MAX_SPLIT_KEYS,
  SPLIT_CHECK_SCAN_MAX_BYTES,
  SPLIT_REGION_MAX_KEYS,
} from "../constants.ts";
import { MemoryEngine } from "../engine/memory_engine.ts";
import { RocksDbEngine } from "../engine/rocksdb_engine.ts";
import type { ColumnFamily, KvEngine } from "../engine/types.ts";
import { AssertionError } from "../util/assert.ts";
import { fromUtf8, toHex, utf8 } from "../util/bytes.ts";
import { SeededRandom, seedFromEnv } from "../util/random.ts";
import {
  checkSplit,
  type SplitCheckLimits,
  SplitCheckScan,
  splitKeyOf,
  type SplitRange,
  validateSplitKeys,
} from "./split_check.ts";

const ENTRY_BYTES = 1000;
const EVERY_KEY: SplitRange = { startKey: new Uint8Array(), endKey: new Uint8Array() };
/** Splits every 10 entries once a region holds more than 15 (by size); keys far away. */
const BY_SIZE: SplitCheckLimits = {
  splitSizeBytes: 10 * ENTRY_BYTES,
  maxSizeBytes: 15 * ENTRY_BYTES,
  splitKeys: 1_000_000,
  maxKeys: 1_500_000,
};
const DATA_CFS: ColumnFamily[] = ["default", "write", "lock"];

/** Raw key `prefix` + 3 digits: letters and digits only, so no prefix is an encoding. */
function rawKey(prefix: string, i: number): Uint8Array {
  return utf8(`${prefix}${String(i).padStart(3, "0")}`);
}

/** Puts `count` raw entries of ENTRY_BYTES each, spread over the three data CFs. */
function putRaw(engine: KvEngine, prefix: string, count: number): void {
  for (let i = 0; i < count; i++) {
    const key = rawKey(prefix, i);
    engine.put(DATA_CFS[i % 3]!, key, new Uint8Array(ENTRY_BYTES - key.length));
  }
}

function names(keys: readonly Uint8Array[]): string[] {
  return keys.map(fromUtf8);
}

function rawNames(prefix: string, indexes: number[]): string[] {
  return indexes.map((i) => fromUtf8(rawKey(prefix, i)));
}

function withMemoryEngine(run: (engine: MemoryEngine) => void): void {
  const engine = new MemoryEngine();
  try {
    run(engine);
  } finally {
    engine.close();
  }
}

Deno.test("splitKeyOf() cuts a key with timestamp to its encoded user key and leaves raw and encoded keys as they are", () => {
  for (const user of ["", "k", "exactly8", "a user key of 27 bytes long"]) {
    const encoded = encodeKey(utf8(user));
    assert.deepEqual(splitKeyOf(encodeKeyWithTs(utf8(user), 42n)), encoded, user);
    assert.deepEqual(splitKeyOf(encodeKeyWithTs(utf8(user), 0n)), encoded, user);
    // A transactional SplitRegion's key, encoded without ts, is taken unchanged.
    assert.deepEqual(splitKeyOf(encoded), encoded, user);
  }
  // Raw keys: a ninth byte that is no valid marker (the loose rule would cut these to 9 bytes).
  for (const raw of ["user000000000123", "k", "", "abcdefgh"]) {
    assert.deepEqual(splitKeyOf(utf8(raw)), utf8(raw), raw);
  }
  // Marker 0xf8 says 7 pad bytes, but they are not zero: not an encoding, kept whole.
  const badPadding = Uint8Array.of(1, 2, 0, 0, 0, 0, 0, 0, 0xf8, 9, 9);
  assert.deepEqual(splitKeyOf(badPadding), badPadding);
  // A 0xff marker with nothing after it is a truncated encoding: kept whole.
  const truncated = Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8, 0xff, 1);
  assert.deepEqual(splitKeyOf(truncated), truncated);
});

Deno.test("splitKeyOf(): every key that starts with an encoded user key (every key between two of its versions) cuts to it; the cut never decreases along sorted keys", () => {
  const seed = seedFromEnv();
  const random = new SeededRandom(seed);
  const keys: Uint8Array[] = [];
  for (let round = 0; round < 2000; round++) {
    const encoded = encodeKey(random.bytes(random.int(20)));
    // Any suffix: a key between E ++ ts1 and E ++ ts2 starts with E (the proof in splitKeyOf).
    const key = new Uint8Array(encoded.length + random.int(12));
    key.set(encoded);
    key.set(random.bytes(key.length - encoded.length), encoded.length);
    assert.deepEqual(splitKeyOf(key), encoded, `seed ${seed}: ${toHex(key)}`);
    keys.push(key, random.bytes(random.int(24)));
  }
  keys.sort(compareBytes);
  for (let i = 1; i < keys.length; i++) {
    const order = compareBytes(splitKeyOf(keys[i - 1]!), splitKeyOf(keys[i]!));
    assert.ok(order <= 0, `seed ${seed}: ${toHex(keys[i - 1]!)} then ${toHex(keys[i]!)}`);
  }
});

Deno.test("checkSplit() splits raw keys at every region-split-size boundary once the region passes region-max-size", () => {
  withMemoryEngine((engine) => {
    putRaw(engine, "k", 100);
    const result = checkSplit(engine, EVERY_KEY, BY_SIZE);
    // The entry that brings the total past 10 000 is entry 11, "k010"; then "k020", …
    assert.deepEqual(names(result.splitKeys), rawNames("k", [10, 20, 30, 40, 50, 60, 70, 80, 90]));
    assert.equal(result.splitBy, "size");
    assert.equal(result.approximateSizeBytes, 100 * ENTRY_BYTES);
    assert.equal(result.approximateKeys, 100);
    assert.equal(result.end, "region_end");
  });
});

Deno.test("checkSplit() gives nothing up to region-max-size, and drops a last key that would leave a piece under max - split", () => {
  const keysFor = (count: number) => {
    let keys: string[] = [];
    withMemoryEngine((engine) => {
      putRaw(engine, "k", count);
      keys = names(checkSplit(engine, EVERY_KEY, BY_SIZE).splitKeys);
    });
    return keys;
  };
  assert.deepEqual(keysFor(0), []);
  assert.deepEqual(keysFor(15), [], "exactly region-max-size does not split");
  assert.deepEqual(keysFor(16), rawNames("k", [10]));
  // 24 entries: after "k020" only 4 000 bytes, and 4 000 + 10 000 < 15 000: "k020" is dropped.
  assert.deepEqual(keysFor(24), rawNames("k", [10]));
  assert.deepEqual(keysFor(25), rawNames("k", [10, 20]));
});

Deno.test("checkSplit() reads only the region's keys: bounds are honoured, keys outside are neither counted nor produced", () => {
  withMemoryEngine((engine) => {
    putRaw(engine, "a", 100);
    putRaw(engine, "b", 40);
    putRaw(engine, "c", 100);
    const region = { startKey: rawKey("b", 0), endKey: rawKey("c", 0) };
    const result = checkSplit(engine, region, BY_SIZE);
    assert.deepEqual(names(result.splitKeys), rawNames("b", [10, 20, 30]));
    assert.equal(result.approximateKeys, 40);
    assert.equal(result.approximateSizeBytes, 40 * ENTRY_BYTES);
    // An open end: everything from "b005" on (35 b-keys, then 100 c-keys).
    const tail = checkSplit(engine, { startKey: rawKey("b", 5), endKey: new Uint8Array() }, {
      ...BY_SIZE,
      maxSplitKeys: 3,
    });
    assert.deepEqual(names(tail.splitKeys), [...rawNames("b", [15, 25, 35])]);
    assert.ok(tail.splitKeys.every((key) => compareBytes(key, rawKey("b", 5)) > 0));
    // The CF raft belongs to no region: its keys are never read.
    engine.put("raft", rawKey("b", 1), new Uint8Array(1 << 20));
    assert.deepEqual(checkSplit(engine, region, BY_SIZE), result);
  });
});

/** A transactional key: a lock, and `versions` commits with a write record and a value each. */
function putTxn(
  engine: KvEngine,
  user: string,
  options: { versions: number; valueBytes: number },
): void {
  engine.put("lock", encodeKey(utf8(user)), new Uint8Array(40));
  for (let v = 1; v <= options.versions; v++) {
    const startTs = BigInt(v * 10);
    engine.put("default", encodeKeyWithTs(utf8(user), startTs), new Uint8Array(options.valueBytes));
    engine.put("write", encodeKeyWithTs(utf8(user), startTs + 1n), new Uint8Array(10));
  }
}

/** Every split key is a complete encoding with no ts left on: it decodes with nothing after. */
function assertWholeUserKeys(keys: readonly Uint8Array[]): string[] {
  return keys.map((key) => fromUtf8(decodeKey(key)));
}

Deno.test("checkSplit() never splits between two versions of a transactional key: a key of many versions moves whole", () => {
  withMemoryEngine((engine) => {
    for (let i = 0; i < 12; i++) putTxn(engine, `a${i}`, { versions: 1, valueBytes: 900 });
    putTxn(engine, "big", { versions: 200, valueBytes: 900 });
    for (let i = 0; i < 12; i++) putTxn(engine, `z${i}`, { versions: 1, valueBytes: 900 });
    const result = checkSplit(engine, EVERY_KEY, BY_SIZE);
    // About 20 candidates fall inside big's versions; all cut to encode("big"), kept once.
    // The a-keys pass 10 000 bytes (one key), the next ~20 candidates lie inside big's versions
    // and all cut to encode("big"), kept once; the z-keys' candidate leaves too small a tail.
    const users = assertWholeUserKeys(result.splitKeys);
    assert.equal(users.length, 2, users.join(","));
    assert.ok(users[0]!.startsWith("a") && users[1] === "big", users.join(","));
    assert.equal(result.splitBy, "size");
    // A region that starts at "big" and holds only its versions is far above max, yet
    // cannot split: every candidate cuts to its start key.
    const alone = {
      startKey: encodeKey(utf8("big")),
      endKey: encodeKey(utf8("z0")),
    };
    const bigOnly = checkSplit(engine, alone, BY_SIZE);
    assert.ok(bigOnly.approximateSizeBytes > 10 * BY_SIZE.maxSizeBytes);
    assert.deepEqual(bigOnly.splitKeys, []);
  });
});

Deno.test("checkSplit() stops at SPLIT_CHECK_MAX_SPLIT_KEYS keys once the part after the last one is large enough", () => {
  withMemoryEngine((engine) => {
    putRaw(engine, "k", 300);
    const result = checkSplit(engine, EVERY_KEY, BY_SIZE);
    const expected = Array.from({ length: SPLIT_CHECK_MAX_SPLIT_KEYS }, (_, n) => 10 * (n + 1));
    assert.deepEqual(names(result.splitKeys), rawNames("k", expected));
    assert.equal(result.end, "split_key_limit");
    // The last key came from entry 10n + 1; the scan reads on until that part plus one split
    // reaches max (5 000 bytes, 5 entries), then stops.
    assert.equal(result.approximateKeys, 10 * SPLIT_CHECK_MAX_SPLIT_KEYS + 5);
    const three = checkSplit(engine, EVERY_KEY, { ...BY_SIZE, maxSplitKeys: 3 });
    assert.deepEqual(names(three.splitKeys), rawNames("k", [10, 20, 30]));
    assert.equal(three.approximateKeys, 35);
    // With max at 2.5 × split, the next boundary comes before the tail is large enough: the
    // bound itself, not the stop, keeps the keys at three (the scan stops after 15 more entries).
    const wide = checkSplit(engine, EVERY_KEY, {
      ...BY_SIZE,
      maxSizeBytes: 25 * ENTRY_BYTES,
      maxSplitKeys: 3,
    });
    assert.deepEqual(names(wide.splitKeys), rawNames("k", [10, 20, 30]));
    assert.equal(wide.approximateKeys, 45);
  });
});

Deno.test("checkSplit() reads at most scanMaxKeys entries and scanMaxBytes bytes, and says so", () => {
  withMemoryEngine((engine) => {
    putRaw(engine, "k", 100);
    const byKeys = checkSplit(engine, EVERY_KEY, { ...BY_SIZE, scanMaxKeys: 50 });
    assert.equal(byKeys.end, "scan_key_limit");
    assert.equal(byKeys.approximateKeys, 50);
    assert.deepEqual(names(byKeys.splitKeys), rawNames("k", [10, 20, 30, 40]));
    // Bytes: the entry that reaches 20 500 is the 21st; "k020" then leaves 1 000 bytes: dropped.
    const byBytes = checkSplit(engine, EVERY_KEY, { ...BY_SIZE, scanMaxBytes: 20_500 });
    assert.equal(byBytes.end, "scan_byte_limit");
    assert.equal(byBytes.approximateSizeBytes, 21 * ENTRY_BYTES);
    assert.deepEqual(names(byBytes.splitKeys), rawNames("k", [10]));
    // A bound met exactly at the region's end saw the whole region.
    const exact = checkSplit(engine, EVERY_KEY, { ...BY_SIZE, scanMaxKeys: 100 });
    assert.equal(exact.end, "region_end");
    // The bounds only tighten the constants.
    assert.throws(
      () =>
        checkSplit(engine, EVERY_KEY, { ...BY_SIZE, scanMaxBytes: SPLIT_CHECK_SCAN_MAX_BYTES + 1 }),
      AssertionError,
    );
    assert.throws(
      () =>
        checkSplit(engine, EVERY_KEY, { ...BY_SIZE, maxSplitKeys: SPLIT_CHECK_MAX_SPLIT_KEYS + 1 }),
      AssertionError,
    );
  });
});

Deno.test("checkSplit() splits by key count when the size stays small, and size goes first when both would", () => {
  withMemoryEngine((engine) => {
    for (let i = 0; i < 40; i++) engine.put("default", rawKey("k", i), new Uint8Array(1));
    const byKeys = { ...BY_SIZE, splitKeys: 10, maxKeys: 15 };
    const result = checkSplit(engine, EVERY_KEY, byKeys);
    assert.equal(result.splitBy, "keys");
    assert.deepEqual(names(result.splitKeys), rawNames("k", [10, 20, 30]));
    assert.equal(result.approximateKeys, 40);
    assert.deepEqual(checkSplit(engine, EVERY_KEY, { ...byKeys, maxKeys: 40 }).splitKeys, []);
    // Sizes of 5 bytes per entry: size splits every 4 entries and wins.
    const both = checkSplit(engine, EVERY_KEY, {
      ...byKeys,
      splitSizeBytes: 20,
      maxSizeBytes: 30,
    });
    assert.equal(both.splitBy, "size");
    assert.deepEqual(names(both.splitKeys).slice(0, 2), rawNames("k", [4, 8]));
  });
});

Deno.test("SplitCheckScan.run() in slices gives what checkSplit() gives in one go", () => {
  withMemoryEngine((engine) => {
    putRaw(engine, "k", 100);
    for (let i = 0; i < 5; i++) putTxn(engine, `t${i}`, { versions: 30, valueBytes: 300 });
    const whole = checkSplit(engine, EVERY_KEY, BY_SIZE);
    using snapshot = engine.snapshot();
    using scan = new SplitCheckScan(snapshot, EVERY_KEY, BY_SIZE);
    let result = null;
    let slices = 0;
    while (result === null && slices < 1000) {
      result = scan.run(7);
      slices++;
    }
    assert.deepEqual(result, whole);
    assert.ok(slices > 10, `${slices} slices`);
    assert.deepEqual(scan.run(1), whole, "a finished scan keeps its result");
  });
});

Deno.test("checkSplit() on random raw data: keys increase inside the region, pieces stay near split size, a region splits iff it passes max", () => {
  const seed = seedFromEnv();
  const random = new SeededRandom(seed);
  for (let round = 0; round < 30; round++) {
    withMemoryEngine((engine) => {
      const letters = "abcdefghij";
      const sizes = new Map<string, number>();
      for (let i = 0; i < 400; i++) {
        let key = "";
        for (let n = 1 + random.int(6); n > 0; n--) key += random.pick([...letters]);
        const value = new Uint8Array(random.int(200));
        const cf = random.pick(DATA_CFS);
        engine.put(cf, utf8(key), value);
        sizes.set(`${cf}/${key}`, key.length + value.length);
      }
      const startKey = utf8(random.pick([...letters]));
      const region = { startKey, endKey: utf8(random.pick(["h", "j", "jj", ""])) };
      if (region.endKey.length > 0 && compareBytes(startKey, region.endKey) >= 0) return;
      // Big enough that the split-key bound never ends the scan: the whole region is seen.
      const limits = { ...BY_SIZE, splitSizeBytes: 5000, maxSizeBytes: 7500 };
      const result = checkSplit(engine, region, limits);
      const inRegion = [...sizes].map(([name, size]) => ({ key: utf8(name.split("/")[1]!), size }))
        .filter(({ key }) =>
          compareBytes(key, startKey) >= 0 &&
          (region.endKey.length === 0 || compareBytes(key, region.endKey) < 0)
        );
      const total = inRegion.reduce((sum, { size }) => sum + size, 0);
      const where = `seed ${seed} round ${round}`;
      assert.equal(result.end, "region_end", where);
      assert.equal(result.approximateSizeBytes, total, where);
      assert.equal(result.splitKeys.length > 0, total > limits.maxSizeBytes, where);
      const bounds = [startKey, ...result.splitKeys];
      for (let i = 1; i < bounds.length; i++) {
        assert.ok(compareBytes(bounds[i - 1]!, bounds[i]!) < 0, where);
        const piece = inRegion.filter(({ key }) =>
          compareBytes(key, bounds[i - 1]!) >= 0 && compareBytes(key, bounds[i]!) < 0
        ).reduce((sum, { size }) => sum + size, 0);
        // Entries are below 210 bytes: a piece ends within one entry past split size, plus the
        // entries of its first key in other CFs read before the one that gave the key.
        assert.ok(piece <= limits.splitSizeBytes + 3 * 210, `${where}: piece ${i} is ${piece}`);
      }
    });
  }
});

Deno.test("validateSplitKeys() names the offending key: empty, outside, at a bound, unsorted, repeated, too many", () => {
  const region = { startKey: utf8("b"), endKey: utf8("m") };
  assert.equal(validateSplitKeys(region, [utf8("c"), utf8("d")]), null);
  assert.equal(validateSplitKeys({ ...region, endKey: new Uint8Array() }, [utf8("zz")]), null);
  const refused = (keys: Uint8Array[], pattern: RegExp, range: SplitRange = region) =>
    assert.match(validateSplitKeys(range, keys) ?? "accepted", pattern);
  refused([], /no split key given/);
  refused([new Uint8Array()], /split key #0 is empty/, EVERY_KEY);
  refused([utf8("b")], /split key #0 62 is not strictly inside the region \[62, 6d\)/);
  refused([utf8("c"), utf8("m")], /split key #1 6d is not strictly inside/);
  refused([utf8("a")], /split key #0 61 is not strictly inside/);
  refused([utf8("zz")], /split key #0 7a7a is not strictly inside/);
  refused([utf8("d"), utf8("c")], /split key #1 63 does not follow split key #0 64/);
  refused([utf8("c"), utf8("c")], /split key #1 63 does not follow split key #0 63/);
  const many = Array.from(
    { length: SPLIT_REGION_MAX_KEYS + 1 },
    (_, i) => utf8(`c${String(i).padStart(5, "0")}`),
  );
  refused(many, new RegExp(`${SPLIT_REGION_MAX_KEYS + 1} split keys given, at most`));
  assert.equal(validateSplitKeys(region, many.slice(0, SPLIT_REGION_MAX_KEYS)), null);
});

Deno.test("checkSplit() over RocksDB (engine and snapshot): raw keys, and a transactional key of many versions kept whole", async () => {
  const directory = await Deno.makeTempDir({ prefix: "basalt-split-check-" });
  const engine = RocksDbEngine.open(directory, { blockCacheBytes: 8 << 20 });
  try {
    putRaw(engine, "k", 100);
    const raw = checkSplit(engine, { startKey: utf8("k"), endKey: utf8("l") }, BY_SIZE);
    assert.deepEqual(names(raw.splitKeys), rawNames("k", [10, 20, 30, 40, 50, 60, 70, 80, 90]));
    assert.equal(raw.approximateSizeBytes, 100 * ENTRY_BYTES);
    for (let i = 0; i < 12; i++) putTxn(engine, `a${i}`, { versions: 1, valueBytes: 900 });
    putTxn(engine, "big", { versions: 200, valueBytes: 900 });
    engine.flush();
    using snapshot = engine.snapshot();
    // The transactional keys sort before "k" (their encodings start with 'a' and 'b').
    const txn = checkSplit(snapshot, { startKey: new Uint8Array(), endKey: utf8("k") }, BY_SIZE);
    const users = assertWholeUserKeys(txn.splitKeys);
    assert.equal(users.length, 2, users.join(","));
    assert.ok(users[0]!.startsWith("a") && users[1] === "big", users.join(","));
    assert.equal(txn.end, "region_end");
  } finally {
    engine.close();
    await Deno.remove(directory, { recursive: true });
  }
});
