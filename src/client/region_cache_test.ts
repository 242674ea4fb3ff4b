/** RegionCache: lookups by key and end key, overlap replacement, leader updates, bounds. */
import assert from "node:assert/strict";
import { SeededRandom } from "../util/random.ts";
import { fromUtf8, utf8 } from "../util/bytes.ts";
import type { RegionInfo } from "./region.ts";
import { RegionCache } from "./region_cache.ts";

function region(id: number, start: string, end: string, version = 1n): RegionInfo {
  const peers = [{ id: BigInt(id * 10 + 1), storeId: 1n }, {
    id: BigInt(id * 10 + 2),
    storeId: 2n,
  }];
  return {
    id: BigInt(id),
    startKey: utf8(start),
    endKey: utf8(end),
    epoch: { confVer: 1n, version },
    peers,
    leader: peers[0]!,
  };
}

const idAt = (cache: RegionCache, key: string) => cache.locate(utf8(key))?.id ?? null;
const idBelow = (cache: RegionCache, key: string) => cache.locateEnd(utf8(key))?.id ?? null;

Deno.test("locate finds the region holding a key; locateEnd the one holding keys just below", () => {
  const cache = new RegionCache();
  cache.insert(region(2, "g", "p"));
  cache.insert(region(1, "", "g"));
  cache.insert(region(3, "p", ""));
  assert.deepEqual(["", "a", "f", "g", "o", "p", "zzz"].map((k) => idAt(cache, k)), [
    1n,
    1n,
    1n,
    2n,
    2n,
    3n,
    3n,
  ]);
  // Keys just below "g" are in region 1 ([, g)); just below "" (+inf) in the last region.
  assert.deepEqual(["a", "g", "h", "p", "q", ""].map((k) => idBelow(cache, k)), [
    1n,
    1n,
    2n,
    2n,
    3n,
    3n,
  ]);
});

Deno.test("a gap in the cache is a miss, not a neighbour", () => {
  const cache = new RegionCache();
  cache.insert(region(1, "a", "c"));
  cache.insert(region(3, "x", "z"));
  assert.equal(idAt(cache, "d"), null);
  assert.equal(idAt(cache, "z"), null);
  assert.equal(idAt(cache, "0"), null);
  assert.equal(idBelow(cache, "e"), null);
  assert.equal(idBelow(cache, ""), null, "the last cached region does not reach +inf");
});

Deno.test("inserting a split's halves or a merge replaces every overlapped entry", () => {
  const cache = new RegionCache();
  cache.insert(region(1, "", "m"));
  cache.insert(region(2, "m", ""));
  // Region 1 splits into [, f) (id 1, new epoch) and [f, m) (id 4).
  cache.insert(region(1, "", "f", 2n));
  cache.insert(region(4, "f", "m", 2n));
  assert.deepEqual(cache.regions().map((r) => [r.id, fromUtf8(r.startKey)]), [
    [1n, ""],
    [4n, "f"],
    [2n, "m"],
  ]);
  assert.equal(cache.get(1n)?.epoch.version, 2n);
  // Regions 4 and 2 merge into [f, ) (id 2).
  cache.insert(region(2, "f", "", 3n));
  assert.deepEqual(cache.regions().map((r) => r.id), [1n, 2n]);
  assert.equal(cache.get(4n), null);
  assert.equal(idAt(cache, "g"), 2n);
});

Deno.test("updateLeader accepts only a peer of the region; removeStore drops its regions", () => {
  const cache = new RegionCache();
  cache.insert(region(1, "", "m"));
  cache.insert(region(2, "m", ""));
  assert.equal(cache.updateLeader(1n, { id: 12n, storeId: 2n }), true);
  assert.equal(cache.get(1n)?.leader.storeId, 2n);
  assert.equal(cache.updateLeader(1n, { id: 99n, storeId: 3n }), false);
  assert.equal(cache.updateLeader(9n, { id: 12n, storeId: 2n }), false);
  cache.removeStore(2n);
  assert.deepEqual(cache.regions().map((r) => r.id), [2n]);
});

Deno.test("the cache holds at most maxRegions, dropping the least recently inserted", () => {
  const cache = new RegionCache({ maxRegions: 2 });
  cache.insert(region(1, "a", "b"));
  cache.insert(region(2, "b", "c"));
  cache.insert(region(1, "a", "b")); // refreshed: region 2 is now the oldest
  cache.insert(region(3, "c", "d"));
  assert.deepEqual(cache.regions().map((r) => r.id), [1n, 3n]);
});

Deno.test("random inserts keep the cache equal to a brute-force model of disjoint ranges", () => {
  const letters = "abcdefghij";
  for (let seed = 1; seed <= 30; seed++) {
    const random = new SeededRandom(seed);
    const cache = new RegionCache();
    const model: RegionInfo[] = [];
    for (let step = 0; step < 60; step++) {
      const a = random.int(letters.length + 1);
      const b = a + 1 + random.int(letters.length + 1 - a);
      const start = a === 0 ? "" : letters[a - 1]!;
      const end = b > letters.length ? "" : letters[b - 1]!;
      if (end !== "" && start >= end) continue;
      const fresh = region(step + 1, start, end);
      const overlaps = (r: RegionInfo) =>
        (r.endKey.length === 0 || fromUtf8(r.endKey) > start) &&
        (end === "" || fromUtf8(r.startKey) < end);
      for (let i = model.length - 1; i >= 0; i--) if (overlaps(model[i]!)) model.splice(i, 1);
      model.push(fresh);
      cache.insert(fresh);
      for (const key of ["", ...letters, "zz"]) {
        const expected = model.find((r) =>
          fromUtf8(r.startKey) <= key && (r.endKey.length === 0 || key < fromUtf8(r.endKey))
        );
        assert.equal(idAt(cache, key), expected?.id ?? null, `seed ${seed} step ${step} ${key}`);
      }
      assert.equal(cache.size, model.length);
    }
  }
});

Deno.test("with a TTL, an entry unused for longer than it is a miss; each hit restarts it", () => {
  let nowMs = 1_000;
  const cache = new RegionCache({ ttl: { ttlMs: 100, nowMs: () => nowMs } });
  cache.insert(region(1, "", "m"));
  cache.insert(region(2, "m", ""));
  nowMs += 100;
  assert.equal(idAt(cache, "a"), 1n, "exactly the TTL is still valid");
  nowMs += 60;
  assert.equal(idAt(cache, "a"), 1n, "the hit at +100 restarted it");
  assert.equal(idBelow(cache, ""), null, "region 2, unused for 160 ms, expired");
  assert.equal(cache.get(2n), null);
  assert.equal(cache.size, 1, "the expired entry was dropped");
  nowMs += 101;
  assert.equal(cache.get(1n), null);
  assert.equal(cache.size, 0);
  cache.insert(region(1, "", "m"));
  assert.equal(idAt(cache, "a"), 1n, "inserting again starts a fresh TTL");
});
