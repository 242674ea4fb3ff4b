/**
 * `RegionSnapshot` on both engines: a region [b, d) never yields a key outside it, through
 * get, multiGet, forward and reverse iteration and every seek, in every data column family,
 * with raw keys and with encoded transactional keys (with and without a ts); a random model
 * check compares it with filtering the engine's own iteration.
 */
import assert from "node:assert/strict";
import { encodeKey, encodeKeyWithTs } from "../codec/key.ts";
import { MemoryEngine } from "../engine/memory_engine.ts";
import { RocksDbEngine } from "../engine/rocksdb_engine.ts";
import type { ColumnFamily, EngineIterator, KvEngine } from "../engine/types.ts";
import { isAssertionError } from "../util/assert.ts";
import { compareBytes, fromUtf8, toHex, utf8 } from "../util/bytes.ts";
import { SeededRandom, seedFromEnv } from "../util/random.ts";
import { regionContainsKey, type RegionMeta } from "./region_range.ts";
import { RegionSnapshot } from "./region_snapshot.ts";

const DATA_CFS: readonly ColumnFamily[] = ["default", "lock", "write"];

/** Each engine: a fresh one, and how to dispose of it. */
const ENGINES: [string, () => Promise<{ engine: KvEngine; cleanup: () => Promise<void> }>][] = [
  ["memory", () => {
    const engine = new MemoryEngine();
    return Promise.resolve({ engine, cleanup: () => Promise.resolve(engine.close()) });
  }],
  ["rocksdb", async () => {
    const directory = await Deno.makeTempDir({ prefix: "basalt-region-snapshot-" });
    const engine = RocksDbEngine.open(directory, { blockCacheBytes: 8 << 20 });
    return {
      engine,
      cleanup: async () => {
        engine.close();
        await Deno.remove(directory, { recursive: true });
      },
    };
  }],
];

function regionOf(startKey: Uint8Array, endKey: Uint8Array): RegionMeta {
  return { id: 7n, startKey, endKey, confVer: 1n, version: 1n };
}

/** The keys an iterator yields from where it stands, moving with `step`. */
function drain(iterator: EngineIterator, step: "next" | "prev"): string[] {
  const keys: string[] = [];
  for (; iterator.valid(); iterator[step]()) keys.push(toHex(iterator.key()));
  return keys;
}

function forward(view: RegionSnapshot, cf: ColumnFamily, bounds = {}): string[] {
  using iterator = view.iterator(cf, bounds);
  iterator.seekToFirst();
  return drain(iterator, "next");
}

function reverse(view: RegionSnapshot, cf: ColumnFamily, bounds = {}): string[] {
  using iterator = view.iterator(cf, bounds);
  iterator.seekToLast();
  return drain(iterator, "prev");
}

/** Where `seek` / `seekForPrev` to `key` lands, hex, or null. */
function seekTo(
  view: RegionSnapshot,
  cf: ColumnFamily,
  how: "seek" | "seekForPrev",
  key: Uint8Array,
) {
  using iterator = view.iterator(cf);
  iterator[how](key);
  return iterator.valid() ? toHex(iterator.key()) : null;
}

const hex = (keys: Uint8Array[]) => keys.map(toHex);

function throwsAssertion(body: () => unknown): void {
  assert.throws(body, (error: unknown) => isAssertionError(error));
}

for (const [name, open] of ENGINES) {
  Deno.test(`RegionSnapshot (${name}): a raw region [b, d) yields only its keys, in every data cf, every direction`, async () => {
    const { engine, cleanup } = await open();
    try {
      const all = ["a", "b", "b\x00", "bz", "c", "c\xff", "d", "d\x00", "e"].map(utf8);
      for (const cf of DATA_CFS) for (const key of all) engine.put(cf, key, key);
      engine.put("raft", utf8("c"), utf8("local"));
      const inside = hex(["b", "b\x00", "bz", "c", "c\xff"].map(utf8));
      const region = regionOf(utf8("b"), utf8("d"));
      for (
        const view of [RegionSnapshot.take(engine, region), RegionSnapshot.latest(engine, region)]
      ) {
        using _ = view;
        for (const cf of DATA_CFS) {
          assert.deepEqual(forward(view, cf), inside, cf);
          assert.deepEqual(reverse(view, cf), [...inside].reverse(), cf);
          // Bounds wider than the region are clamped; narrower ones are kept.
          assert.deepEqual(
            forward(view, cf, { lowerBound: utf8("a"), upperBound: utf8("z") }),
            inside,
          );
          assert.deepEqual(
            reverse(view, cf, { lowerBound: utf8("a"), upperBound: utf8("z") }),
            [...inside].reverse(),
          );
          assert.deepEqual(
            forward(view, cf, { lowerBound: utf8("bz"), upperBound: utf8("c\xff") }),
            hex([utf8("bz"), utf8("c")]),
          );
          // Bounds outside the region, or crossed by the clamp, hold nothing.
          assert.deepEqual(forward(view, cf, { lowerBound: utf8("d") }), []);
          assert.deepEqual(reverse(view, cf, { upperBound: utf8("b") }), []);
          assert.deepEqual(forward(view, cf, { lowerBound: utf8("x"), upperBound: utf8("y") }), []);
          // Seeks from outside land inside, or nowhere.
          assert.equal(seekTo(view, cf, "seek", utf8("a")), toHex(utf8("b")));
          assert.equal(seekTo(view, cf, "seek", utf8("d")), null);
          assert.equal(seekTo(view, cf, "seekForPrev", utf8("z")), toHex(utf8("c\xff")));
          assert.equal(seekTo(view, cf, "seekForPrev", utf8("a")), null);
          {
            using iterator = view.iterator(cf);
            iterator.seek(utf8("c\xff"));
            assert.equal(iterator.next(), false, "next past the last key of the region");
            iterator.seekForPrev(utf8("b"));
            assert.equal(iterator.prev(), false, "prev before the first key of the region");
          }
          // Point reads inside answer; outside they are a bug.
          assert.equal(fromUtf8(view.get(cf, utf8("c"))!), "c");
          assert.deepEqual(
            view.multiGet(cf, [utf8("b"), utf8("bb")]).map((v) => v && fromUtf8(v)),
            ["b", null],
          );
          throwsAssertion(() => view.get(cf, utf8("a")));
          throwsAssertion(() => view.get(cf, utf8("d")));
          throwsAssertion(() => view.multiGet(cf, [utf8("c"), utf8("e")]));
        }
        throwsAssertion(() => view.get("raft", utf8("c")));
        throwsAssertion(() => view.iterator("raft"));
      }
    } finally {
      await cleanup();
    }
  });

  Deno.test(`RegionSnapshot (${name}): a transactional region [enc(b), enc(d)) holds every version of b..c and nothing of a, d`, async () => {
    const { engine, cleanup } = await open();
    try {
      // Keys chosen at the edges of the encoding: a prefix of the bound, a key sorting right
      // after it, and one whose encoding shares the bound's first group.
      const users = [
        "a",
        "b",
        "b\x00",
        "bbbbbbbbb",
        "c",
        "c\xff\xff\xff\xff\xff\xff\xff\xff",
        "d",
        "d\x00",
        "e",
      ];
      for (const user of users.map(utf8)) {
        engine.put("lock", encodeKey(user), user);
        for (const ts of [5n, 9n, 2n ** 64n - 1n]) {
          engine.put("write", encodeKeyWithTs(user, ts), user);
          engine.put("default", encodeKeyWithTs(user, ts), user);
        }
      }
      const region = regionOf(encodeKey(utf8("b")), encodeKey(utf8("d")));
      const insideUsers = users.slice(1, 6);
      using view = RegionSnapshot.take(engine, region);
      const usersOf = (keys: string[], withTs: boolean) =>
        keys.map((key) => {
          const bytes = Uint8Array.from(key.match(/../g)!.map((byte) => parseInt(byte, 16)));
          return fromUtf8(engine.get(withTs ? "write" : "lock", bytes)!);
        });
      assert.deepEqual(usersOf(forward(view, "lock"), false), insideUsers);
      assert.deepEqual(usersOf(reverse(view, "lock"), false), [...insideUsers].reverse());
      for (const cf of ["write", "default"] as const) {
        const seen = forward(view, cf);
        assert.equal(seen.length, insideUsers.length * 3, cf);
        assert.deepEqual([...new Set(usersOf(seen, true))], insideUsers);
        assert.deepEqual(
          [...new Set(usersOf(reverse(view, cf), true))],
          [...insideUsers].reverse(),
        );
      }
      assert.equal(fromUtf8(view.get("write", encodeKeyWithTs(utf8("c"), 9n))!), "c");
      throwsAssertion(() => view.get("write", encodeKeyWithTs(utf8("d"), 9n)));
      throwsAssertion(() => view.get("lock", encodeKey(utf8("a"))));
    } finally {
      await cleanup();
    }
  });

  Deno.test(`RegionSnapshot (${name}): take() reads at one point in time, latest() reads the engine now; a released view refuses reads`, async () => {
    const { engine, cleanup } = await open();
    try {
      const region = regionOf(utf8("b"), utf8("d"));
      engine.put("default", utf8("c"), utf8("1"));
      const taken = RegionSnapshot.take(engine, region);
      const latest = RegionSnapshot.latest(engine, region);
      engine.put("default", utf8("c"), utf8("2"));
      assert.equal(fromUtf8(taken.get("default", utf8("c"))!), "1");
      assert.equal(fromUtf8(latest.get("default", utf8("c"))!), "2");
      taken.release();
      latest.release();
      assert.throws(() => taken.get("default", utf8("c")), /closed/);
      assert.equal(fromUtf8(engine.get("default", utf8("c"))!), "2", "the engine stays open");
    } finally {
      await cleanup();
    }
  });

  Deno.test(`RegionSnapshot (${name}): random regions and bounds read exactly the engine's keys inside them`, async () => {
    const seed = seedFromEnv();
    const random = new SeededRandom(seed);
    const { engine, cleanup } = await open();
    try {
      const alphabet = [0x00, 0x01, 0x62, 0x63, 0xfe, 0xff];
      const key = () => Uint8Array.from({ length: random.int(4) }, () => random.pick(alphabet));
      const keys: Uint8Array[] = [];
      for (let i = 0; i < 200; i++) {
        const k = key();
        keys.push(k);
        engine.put("write", k, k);
      }
      const sorted = [...new Map(keys.map((k) => [toHex(k), k])).values()]
        .sort(compareBytes);
      for (let round = 0; round < 200; round++) {
        const [start, end] = [key(), key()].sort(compareBytes) as [Uint8Array, Uint8Array];
        const region = regionOf(start, random.chance(0.2) ? new Uint8Array(0) : end);
        // Bounds in order, as the engine requires of its callers.
        const [low, high] = [key(), key()].sort(compareBytes) as [Uint8Array, Uint8Array];
        const lower = random.chance(0.5) ? low : undefined;
        const upper = random.chance(0.5) ? high : undefined;
        const expected = sorted.filter((k) =>
          regionContainsKey(region, k) &&
          (lower === undefined || compareBytes(k, lower) >= 0) &&
          (upper === undefined || compareBytes(k, upper) < 0)
        ).map(toHex);
        using view = RegionSnapshot.latest(engine, region);
        const bounds = {
          ...(lower ? { lowerBound: lower } : {}),
          ...(upper ? { upperBound: upper } : {}),
        };
        const message = `seed ${seed} round ${round}`;
        assert.deepEqual(forward(view, "write", bounds), expected, message);
        assert.deepEqual(reverse(view, "write", bounds), [...expected].reverse(), message);
      }
    } finally {
      await cleanup();
    }
  });
}
