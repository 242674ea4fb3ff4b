import assert from "node:assert/strict";
import { SeededRandom, seedFromEnv } from "../src/util/random.ts";
import {
  fnvHash64,
  ScrambledZipfianGenerator,
  SkewedLatestGenerator,
  ZipfianGenerator,
} from "./ycsb_generators.ts";

const seed = seedFromEnv();
const withSeed = (what: string) => `${what} (SEED=${seed})`;

Deno.test("fnvHash64: FNV-1a over 8 little-endian bytes, non-negative, spreads neighbours", () => {
  // FNV-1a of eight zero bytes (xor with 0 changes nothing), computed by hand from the offset basis and prime.
  let expected = 0xcbf29ce484222325n;
  for (let i = 0; i < 8; i++) expected = (expected * 1099511628211n) & ((1n << 64n) - 1n);
  if (expected >= 1n << 63n) expected = (1n << 64n) - expected;
  assert.equal(fnvHash64(0), expected);
  const hashes = new Set(Array.from({ length: 1000 }, (_, i) => fnvHash64(i)));
  assert.equal(hashes.size, 1000);
  for (const hash of hashes) assert.ok(hash >= 0n && hash < 1n << 63n);
});

Deno.test("ZipfianGenerator: P(item) ∝ 1/(item+1)^0.99 for the head, all draws in range", () => {
  const items = 1000;
  const zipfian = new ZipfianGenerator(items);
  const random = new SeededRandom(seed);
  const draws = 200_000;
  const counts = new Float64Array(items);
  for (let i = 0; i < draws; i++) {
    const item = zipfian.next(random);
    assert.ok(item >= 0 && item < items, withSeed(`draw ${item} out of range`));
    counts[item]!++;
  }
  let zetan = 0;
  for (let i = 1; i <= items; i++) zetan += 1 / Math.pow(i, 0.99);
  // Items 0 and 1 are exact in Gray's method; the tail follows the density approximately.
  for (const item of [0, 1]) {
    const expected = 1 / Math.pow(item + 1, 0.99) / zetan;
    const seen = counts[item]! / draws;
    assert.ok(
      Math.abs(seen - expected) / expected < 0.05,
      withSeed(`item ${item}: ${seen} vs ${expected}`),
    );
  }
  const head = counts.subarray(0, 10).reduce((a, b) => a + b, 0);
  const tail = counts.subarray(items - 100).reduce((a, b) => a + b, 0);
  assert.ok(head > 10 * tail, withSeed("the head is far more popular than the tail"));
});

Deno.test("ZipfianGenerator: the item count grows with inserts (zeta extended, not recomputed)", () => {
  const grown = new ZipfianGenerator(100);
  const random = new SeededRandom(seed);
  for (let i = 0; i < 1000; i++) grown.next(random, 100 + i);
  assert.equal(grown.items, 1099);
  assert.throws(() => grown.next(random, 50), RangeError);
});

Deno.test("Scrambled zipfian and skewed latest: ranges, hot keys scattered, newest most popular", () => {
  const random = new SeededRandom(seed);
  const scrambled = new ScrambledZipfianGenerator(10_000);
  const counts = new Map<number, number>();
  for (let i = 0; i < 50_000; i++) {
    const item = scrambled.next(random);
    assert.ok(item >= 0 && item < 10_000);
    counts.set(item, (counts.get(item) ?? 0) + 1);
  }
  const hottest = [...counts.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([k]) => k);
  assert.ok(Math.max(...hottest) - Math.min(...hottest) > 100, withSeed("hot keys not adjacent"));

  let latest = 999;
  const skewed = new SkewedLatestGenerator(() => latest);
  let recent = 0;
  for (let i = 0; i < 10_000; i++) {
    if (i % 100 === 0) latest++;
    const item = skewed.next(random);
    assert.ok(item >= 0 && item <= latest);
    if (latest - item < 10) recent++;
  }
  assert.ok(recent > 3_000, withSeed(`only ${recent} of 10000 draws among the 10 newest`));
});
