/**
 * YCSB's key choosers, written after the algorithms of YCSB's `core/generator` package:
 *
 * - `ZipfianGenerator`: Gray et al., "Quickly Generating Billion-Record Synthetic Databases"
 *   (SIGMOD '94) — item i (0-based) is drawn with probability ∝ 1/(i+1)^θ, θ = 0.99, in O(1)
 *   per draw after an O(n) zeta sum; the sum is extended incrementally when the item count
 *   grows (inserts), as YCSB does.
 * - `ScrambledZipfianGenerator`: zipfian popularity spread over the key space by FNV-1a 64, so
 *   the hot items are not adjacent; YCSB draws from a fixed 10^10 item space with its
 *   precomputed zeta and takes the hash modulo the item count.
 * - `SkewedLatestGenerator`: the most recently inserted items are the most popular (workload
 *   D's "latest").
 * - `fnvHash64`: YCSB's `Utils.fnvhash64` (FNV-1a over the 8 little-endian bytes), used also to
 *   turn key numbers into key names.
 *
 * Every generator draws from a `SeededRandom`, so a run is a function of its seed.
 */
import type { SeededRandom } from "../src/util/random.ts";

/** YCSB's default zipfian constant θ. */
export const ZIPFIAN_CONSTANT = 0.99;
/** The item space of YCSB's scrambled zipfian, and its zeta for θ = 0.99. */
const SCRAMBLED_ITEM_COUNT = 10_000_000_000;
const SCRAMBLED_ZETAN = 26.46902820178302;

const FNV_OFFSET_BASIS_64 = 0xcbf29ce484222325n;
const FNV_PRIME_64 = 1099511628211n;
const MASK_64 = (1n << 64n) - 1n;

/** YCSB's `fnvhash64`: FNV-1a over the 8 bytes of `value`, low byte first, as a non-negative integer. */
export function fnvHash64(value: number): bigint {
  let rest = BigInt(value);
  let hash = FNV_OFFSET_BASIS_64;
  for (let i = 0; i < 8; i++) {
    hash ^= rest & 0xffn;
    rest >>= 8n;
    hash = (hash * FNV_PRIME_64) & MASK_64;
  }
  // Java's Math.abs of the signed 64-bit value.
  return hash >= 1n << 63n ? (1n << 64n) - hash : hash;
}

/** Σ_{i=from+1}^{to} 1/i^θ. */
function zetaRange(from: number, to: number, theta: number): number {
  let sum = 0;
  for (let i = from + 1; i <= to; i++) sum += 1 / Math.pow(i, theta);
  return sum;
}

/** Zipfian over [0, items) (item 0 the most popular). */
export class ZipfianGenerator {
  readonly #theta: number;
  readonly #alpha: number;
  readonly #zeta2: number;
  #items: number;
  #zetan: number;
  #eta: number;

  constructor(
    items: number,
    options: { theta?: number; zetan?: number } = {},
  ) {
    if (!(items >= 1)) throw new RangeError(`zipfian needs at least one item, not ${items}`);
    this.#theta = options.theta ?? ZIPFIAN_CONSTANT;
    this.#alpha = 1 / (1 - this.#theta);
    this.#zeta2 = zetaRange(0, 2, this.#theta);
    this.#items = items;
    this.#zetan = options.zetan ?? zetaRange(0, items, this.#theta);
    this.#eta = this.#etaOf(items);
  }

  /** Items drawn from. */
  get items(): number {
    return this.#items;
  }

  /** The next item in [0, items); `items` may grow (never shrink) between draws. */
  next(random: SeededRandom, items = this.#items): number {
    if (items !== this.#items) this.#grow(items);
    const u = random.next();
    const uz = u * this.#zetan;
    if (uz < 1) return 0;
    if (uz < 1 + Math.pow(0.5, this.#theta)) return 1;
    const item = Math.floor(this.#items * Math.pow(this.#eta * u - this.#eta + 1, this.#alpha));
    return Math.min(item, this.#items - 1);
  }

  #grow(items: number): void {
    if (items < this.#items) throw new RangeError("zipfian item count cannot shrink");
    this.#zetan += zetaRange(this.#items, items, this.#theta);
    this.#items = items;
    this.#eta = this.#etaOf(items);
  }

  #etaOf(items: number): number {
    return (1 - Math.pow(2 / items, 1 - this.#theta)) / (1 - this.#zeta2 / this.#zetan);
  }
}

/** Zipfian popularity scattered over [0, items) by hashing. */
export class ScrambledZipfianGenerator {
  readonly #zipfian = new ZipfianGenerator(SCRAMBLED_ITEM_COUNT, { zetan: SCRAMBLED_ZETAN });

  constructor(readonly items: number) {
    if (!(items >= 1)) throw new RangeError(`need at least one item, not ${items}`);
  }

  next(random: SeededRandom): number {
    return Number(fnvHash64(this.#zipfian.next(random)) % BigInt(this.items));
  }
}

/** The newest of `latest() + 1` items most popular: latest − zipfian. */
export class SkewedLatestGenerator {
  readonly #zipfian: ZipfianGenerator;

  constructor(readonly latest: () => number) {
    this.#zipfian = new ZipfianGenerator(latest() + 1);
  }

  next(random: SeededRandom): number {
    const last = this.latest();
    return last - this.#zipfian.next(random, last + 1);
  }
}
