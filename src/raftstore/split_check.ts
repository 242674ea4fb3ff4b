/**
 * The split checker: whether a region should split, and where (TiKV's size and keys split
 * checkers, `raftstore::coprocessor::split_check`). Pure: it reads the engine or snapshot it is
 * handed and returns keys; proposing the split (BatchSplit through Raft) is the peer's.
 *
 * A check walks the region's data keys — column families `default`, `lock` and `write`, merged
 * in key order, each iterator bounded to `[startKey, endKey)`; never CF `raft` — and adds up
 * every entry's key and value bytes and counts the entries (one committed transactional version
 * is two entries, its write record and its value). Two measures, one rule each:
 *
 * - **Size**: when the region holds more than `maxSizeBytes`, a split key is taken at every
 *   `splitSizeBytes` boundary: the entry that brings the running total past `n × splitSizeBytes`
 *   gives the n-th key. **Keys**: the same with `maxKeys` and `splitKeys` over the entry count.
 *   Size goes first: the keys measure is used only when the size measure gives no key.
 * - The last key is dropped when the part after it plus `splitSize` stays below `maxSize`
 *   (TiKV's rule): so no piece is left much smaller than the rest, and every piece is below
 *   `maxSize`, the last one included.
 *
 * Invariants of every result:
 * - A split key is `splitKeyOf` some data key of the region: never between two versions (or a
 *   version and the lock) of one transactional key, see `splitKeyOf`.
 * - `startKey < key < endKey` for every split key (empty `endKey` = +∞), and the keys are
 *   strictly increasing; at most `SPLIT_CHECK_MAX_SPLIT_KEYS` of them.
 * - Bounded work: at most `SPLIT_CHECK_SCAN_MAX_KEYS` entries and `SPLIT_CHECK_SCAN_MAX_BYTES`
 *   bytes (+ one entry) are read. Once the split-key bound is reached and the part after the
 *   last key is large enough to keep it, the scan stops (TiKV stops there too).
 * - `approximateSizeBytes` / `approximateKeys` (for PD's region heartbeat) are what the scan
 *   saw: exact when it reached the region's end (`end === "region_end"`), else lower bounds.
 *
 * The check is synchronous. For a large region the caller runs `SplitCheckScan.run` in slices
 * over a `Snapshot` (so the slices see one state) and lets its event loop run between them.
 *
 * @example
 * ```ts
 * import { checkSplit } from "./split_check.ts";
 * import { MemoryEngine } from "../engine/memory_engine.ts";
 * const engine = new MemoryEngine();
 * const result = checkSplit(engine, { startKey: new Uint8Array(), endKey: new Uint8Array() }, {
 *   splitSizeBytes: 96 << 20, maxSizeBytes: 144 << 20, splitKeys: 960_000, maxKeys: 1_440_000,
 * });
 * result.splitKeys; // [] for an empty region
 * ```
 *
 * @module
 */

import { CodecError } from "../codec/codec_error.ts";
import { compareBytes } from "../codec/compare.ts";
import { encodedBytesSpan } from "../codec/memcomparable.ts";
import {
  SPLIT_CHECK_MAX_SPLIT_KEYS,
  SPLIT_CHECK_SCAN_MAX_BYTES,
  SPLIT_CHECK_SCAN_MAX_KEYS,
  SPLIT_REGION_MAX_KEYS,
} from "../constants.ts";
import {
  COLUMN_FAMILIES,
  type EngineIterator,
  type IterOptions,
  type Readable,
} from "../engine/types.ts";
import { describeRange, isDataCf } from "../storage/region_range.ts";
import { assert } from "../util/assert.ts";
import { toHex } from "../util/bytes.ts";

/** A region's range of data keys: `startKey` inclusive, `endKey` exclusive (empty = +∞). */
export interface SplitRange {
  readonly startKey: Uint8Array;
  readonly endKey: Uint8Array;
}

/** The thresholds of a check (`[coprocessor]` keys) and optional tighter work bounds. */
export interface SplitCheckLimits {
  /** Size of the pieces (TiKV's `region-split-size`). */
  splitSizeBytes: number;
  /** A region larger than this splits (TiKV's `region-max-size`); at least `splitSizeBytes`. */
  maxSizeBytes: number;
  /** Entries per piece when a region splits by keys (TiKV's `region-split-keys`). */
  splitKeys: number;
  /** A region with more entries than this splits (TiKV's `region-max-keys`). */
  maxKeys: number;
  /** At most SPLIT_CHECK_MAX_SPLIT_KEYS (the default). */
  maxSplitKeys?: number;
  /** At most SPLIT_CHECK_SCAN_MAX_BYTES (the default). */
  scanMaxBytes?: number;
  /** At most SPLIT_CHECK_SCAN_MAX_KEYS (the default). */
  scanMaxKeys?: number;
}

/** Why a scan ended: only `region_end` saw the whole region. */
export type SplitScanEnd = "region_end" | "split_key_limit" | "scan_byte_limit" | "scan_key_limit";

/** What a check found. */
export interface SplitCheckResult {
  /** Where to split: strictly increasing, strictly inside the region; empty = do not split. */
  splitKeys: Uint8Array[];
  /** Which measure gave the keys, or null when there are none. */
  splitBy: "size" | "keys" | null;
  /** Key and value bytes of the data CFs seen (a lower bound unless `end` is `region_end`). */
  approximateSizeBytes: number;
  /** Entries of the data CFs seen (a lower bound unless `end` is `region_end`). */
  approximateKeys: number;
  /** Why the scan ended. */
  end: SplitScanEnd;
}

/**
 * The split key a candidate data key stands for: its prefix that is a complete memcomparable
 * encoding (an encoded transactional user key; there is at most one, the encoding being
 * self-delimiting), or the candidate itself when it has none (a raw key: any byte string is a
 * valid raw boundary). Returns a view of `candidate`. An encoded user key without timestamp
 * (what a transactional SplitRegion becomes) is returned unchanged. TiKV's `SplitObserver`
 * strips a timestamp the same way (`decode_bytes`, then drop what follows).
 *
 * "Complete" is strict, as `decode_bytes` is: groups of 8 data bytes each followed by a marker,
 * 0xff while more groups follow, and a last marker `0xff - pad` with `pad` in 1..8 after `pad`
 * zero bytes. A looser reading (any marker but 0xff ends it) would cut ordinary raw keys such as
 * `user000000000123` to their first 9 bytes, so that all of them gave one split key.
 *
 * Why no split key falls between two versions of one transactional key `u`: let `E` be its
 * encoding, and `k` any key with `E ++ ts1 <= k <= E ++ ts2` (the versions, 8 bytes each after
 * `E`; the lock is `E` itself). Both bounds start with `E`, so `k` does too: were `i` the first
 * index below `|E|` where `k` ends or differs from `E`, then `k` ending there, or `k[i] < E[i]`,
 * puts `k` below `E ++ ts1`, and `k[i] > E[i]` puts it above `E ++ ts2`. Reading the groups of
 * `k` from its start reads exactly `E`'s groups (the same bytes) and `E`'s last marker ends the
 * encoding, valid as `E` is valid; the encoding is self-delimiting, so that is the first
 * complete prefix: `splitKeyOf(k) = E`. A split at `E` leaves the lock and every version of
 * `u` on its right.
 *
 * The same argument makes `splitKeyOf` monotone: for `k1 < k2`, were `P = splitKeyOf(k2)` below
 * `splitKeyOf(k1) <= k1`, then `P <= k1 < k2` with `k2` starting with `P`, so `k1` starts with
 * the complete encoding `P` and `splitKeyOf(k1) = P`, a contradiction. A walk in key order thus
 * yields split keys that never decrease; cutting only makes neighbours equal (dropped).
 *
 * @example
 * ```ts
 * import { splitKeyOf } from "./split_check.ts";
 * import { encodeKey, encodeKeyWithTs } from "../codec/key.ts";
 * const user = new TextEncoder().encode("k");
 * splitKeyOf(encodeKeyWithTs(user, 42n)); // = encodeKey(user)
 * splitKeyOf(new TextEncoder().encode("raw-key")); // unchanged
 * ```
 */
export function splitKeyOf(candidate: Uint8Array): Uint8Array {
  let span: number;
  try {
    span = encodedBytesSpan(candidate, 0);
  } catch (error) {
    if (error instanceof CodecError) return candidate;
    throw error;
  }
  assert(span >= 9 && span <= candidate.length, "an encoding is a prefix of its input", {
    span,
    candidate: toHex(candidate),
  });
  return candidate.subarray(0, span);
}

/**
 * Why `keys` cannot split `region` by hand (the SplitRegion RPC, ctl), or null when they can:
 * at least one and at most SPLIT_REGION_MAX_KEYS keys, each non-empty, strictly inside the
 * region, in strictly increasing order. Keys are data keys (a transactional request's keys
 * encoded first); they are not cut (`splitKeyOf` is the caller's, for transactional keys).
 */
export function validateSplitKeys(
  region: SplitRange,
  keys: readonly Uint8Array[],
): string | null {
  if (keys.length === 0) return "no split key given";
  if (keys.length > SPLIT_REGION_MAX_KEYS) {
    return `${keys.length} split keys given, at most ${SPLIT_REGION_MAX_KEYS} allowed`;
  }
  for (const [index, key] of keys.entries()) {
    const name = `split key #${index} ${toHex(key)}`;
    if (key.length === 0) return `split key #${index} is empty`;
    if (!strictlyInside(region, key)) {
      return `${name} is not strictly inside the region ${describeRange(region)}`;
    }
    const previous = keys[index - 1];
    if (previous !== undefined && compareBytes(previous, key) >= 0) {
      return `${name} does not follow split key #${index - 1} ${
        toHex(previous)
      } (keys must be sorted and unique)`;
    }
  }
  return null;
}

function strictlyInside(region: SplitRange, key: Uint8Array): boolean {
  if (compareBytes(key, region.startKey) <= 0) return false;
  return region.endKey.length === 0 || compareBytes(key, region.endKey) < 0;
}

/**
 * Checks `region` over `reader` in one go (see the module header). `reader` should be a
 * snapshot when writes may run meanwhile; a live engine is read as it changes.
 */
export function checkSplit(
  reader: Readable,
  region: SplitRange,
  limits: SplitCheckLimits,
): SplitCheckResult {
  using scan = new SplitCheckScan(reader, region, limits);
  for (;;) {
    const result = scan.run(SPLIT_CHECK_SCAN_MAX_KEYS);
    if (result !== null) return result;
  }
}

/**
 * One check, in slices: `run(entries)` reads up to `entries` more entries and returns the
 * result once the scan has ended, else null. Close it (or `using`) to release its iterators.
 */
export class SplitCheckScan implements Disposable {
  readonly #range: SplitRange;
  readonly #entries: MergedDataIterator;
  readonly #bySize: ThresholdSplitter;
  readonly #byKeys: ThresholdSplitter;
  readonly #scanMaxBytes: number;
  readonly #scanMaxKeys: number;
  #sizeBytes = 0;
  #keys = 0;
  #result: SplitCheckResult | null = null;
  #closed = false;

  constructor(reader: Readable, region: SplitRange, limits: SplitCheckLimits) {
    checkLimits(limits);
    assert(
      region.endKey.length === 0 || compareBytes(region.startKey, region.endKey) < 0,
      "a region's start is below its end",
      { range: describeRange(region) },
    );
    const maxSplitKeys = limits.maxSplitKeys ?? SPLIT_CHECK_MAX_SPLIT_KEYS;
    this.#range = region;
    this.#bySize = new ThresholdSplitter(region, {
      split: limits.splitSizeBytes,
      max: limits.maxSizeBytes,
      maxSplitKeys,
    });
    this.#byKeys = new ThresholdSplitter(region, {
      split: limits.splitKeys,
      max: limits.maxKeys,
      maxSplitKeys,
    });
    this.#scanMaxBytes = limits.scanMaxBytes ?? SPLIT_CHECK_SCAN_MAX_BYTES;
    this.#scanMaxKeys = limits.scanMaxKeys ?? SPLIT_CHECK_SCAN_MAX_KEYS;
    this.#entries = new MergedDataIterator(reader, region);
  }

  /** Reads up to `entries` (≥ 1) more entries; the result once the scan ended, else null. */
  run(entries: number): SplitCheckResult | null {
    assert(Number.isSafeInteger(entries) && entries >= 1, "a slice reads entries", { entries });
    if (this.#result !== null) return this.#result;
    assert(!this.#closed, "run() of a split check scan closed before its end");
    for (let read = 0; read < entries; read++) {
      const end = this.#endBeforeNext();
      if (end !== null) return this.#finish(end);
      const key = this.#entries.key();
      const bytes = key.length + this.#entries.value().length;
      this.#sizeBytes += bytes;
      this.#keys += 1;
      this.#bySize.observe(key, bytes);
      this.#byKeys.observe(key, 1);
      this.#entries.next();
    }
    return null;
  }

  /** Why the scan ends before reading another entry, or null when it reads on. */
  #endBeforeNext(): SplitScanEnd | null {
    if (!this.#entries.valid()) return "region_end";
    if (this.#bySize.satisfied || this.#byKeys.satisfied) return "split_key_limit";
    if (this.#sizeBytes >= this.#scanMaxBytes) return "scan_byte_limit";
    if (this.#keys >= this.#scanMaxKeys) return "scan_key_limit";
    return null;
  }

  #finish(end: SplitScanEnd): SplitCheckResult {
    this.close();
    const bySize = this.#bySize.finish();
    const splitKeys = bySize.length > 0 ? bySize : this.#byKeys.finish();
    const splitBy = splitKeys.length === 0 ? null : bySize.length > 0 ? "size" : "keys";
    assertSplitKeys(this.#range, splitKeys);
    this.#result = {
      splitKeys,
      splitBy,
      approximateSizeBytes: this.#sizeBytes,
      approximateKeys: this.#keys,
      end,
    };
    return this.#result;
  }

  /** Releases the iterators; a finished scan has released them already. */
  close(): void {
    this.#closed = true;
    this.#entries.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

function checkLimits(limits: SplitCheckLimits): void {
  const positive = (value: number | undefined) =>
    value === undefined || (Number.isSafeInteger(value) && value >= 1);
  assert(
    positive(limits.splitSizeBytes) && positive(limits.maxSizeBytes) &&
      positive(limits.splitKeys) && positive(limits.maxKeys) &&
      limits.splitSizeBytes <= limits.maxSizeBytes && limits.splitKeys <= limits.maxKeys,
    "split thresholds are positive integers, each split one at most its max",
    { ...limits },
  );
  assert(
    positive(limits.maxSplitKeys) && positive(limits.scanMaxBytes) &&
      positive(limits.scanMaxKeys) &&
      (limits.maxSplitKeys ?? 0) <= SPLIT_CHECK_MAX_SPLIT_KEYS &&
      (limits.scanMaxBytes ?? 0) <= SPLIT_CHECK_SCAN_MAX_BYTES &&
      (limits.scanMaxKeys ?? 0) <= SPLIT_CHECK_SCAN_MAX_KEYS,
    "a check's work bounds only tighten the constants",
    { ...limits },
  );
}

/** The result's promise, checked on the way out. */
function assertSplitKeys(region: SplitRange, keys: readonly Uint8Array[]): void {
  assert(keys.length <= SPLIT_CHECK_MAX_SPLIT_KEYS, "a check gives a bounded number of keys", {
    keys: keys.length,
  });
  for (const [index, key] of keys.entries()) {
    const previous = keys[index - 1] ?? region.startKey;
    assert(
      compareBytes(previous, key) < 0 && strictlyInside(region, key),
      "split keys increase strictly inside the region",
      { range: describeRange(region), index, key: toHex(key), previous: toHex(previous) },
    );
  }
}

/**
 * One measure's split keys (bytes or entries): a key where the running total passes each
 * multiple of `split`, kept if the total passes `max` (see the module header).
 */
class ThresholdSplitter {
  readonly #range: SplitRange;
  readonly #split: number;
  readonly #max: number;
  readonly #maxSplitKeys: number;
  readonly #keys: Uint8Array[] = [];
  /** The running total. */
  #seen = 0;
  /** The running total passes this: the next candidate. A multiple of `split`. */
  #boundary: number;
  /** The running total before the entry that gave the last kept key. */
  #beforeLastKey = 0;

  constructor(
    range: SplitRange,
    options: { split: number; max: number; maxSplitKeys: number },
  ) {
    this.#range = range;
    this.#split = options.split;
    this.#max = options.max;
    this.#maxSplitKeys = options.maxSplitKeys;
    this.#boundary = options.split;
  }

  /** Adds an entry of `amount` at `key` (a view: copied if kept). Keys come in order. */
  observe(key: Uint8Array, amount: number): void {
    const before = this.#seen;
    this.#seen += amount;
    if (this.#seen <= this.#boundary) return;
    // One large entry may pass several multiples: it gives one candidate.
    this.#boundary = Math.ceil(this.#seen / this.#split) * this.#split;
    if (this.#keys.length >= this.#maxSplitKeys) return;
    const splitKey = acceptedSplitKey(this.#range, this.#keys.at(-1), key);
    if (splitKey === null) return;
    this.#keys.push(splitKey);
    this.#beforeLastKey = before;
  }

  /** No need to read on: all keys taken, the region is over `max`, the last key is kept. */
  get satisfied(): boolean {
    return this.#keys.length >= this.#maxSplitKeys && this.#seen > this.#max &&
      this.#keepsLastKey();
  }

  /** The split keys: none unless the total passed `max`; the last one only if kept. */
  finish(): Uint8Array[] {
    if (this.#seen <= this.#max) return [];
    const keys = [...this.#keys];
    if (keys.length > 0 && !this.#keepsLastKey()) keys.pop();
    return keys;
  }

  /** TiKV's rule: the part after the last key, plus one `split`, reaches `max`. */
  #keepsLastKey(): boolean {
    return this.#seen - this.#beforeLastKey + this.#split >= this.#max;
  }
}

/**
 * The split key `candidate` (an entry's key, in order after `previous`) gives, or null when it
 * gives none: its cut is at or below the region's start, or equal to the previous key.
 */
function acceptedSplitKey(
  region: SplitRange,
  previous: Uint8Array | undefined,
  candidate: Uint8Array,
): Uint8Array | null {
  const key = splitKeyOf(candidate);
  if (compareBytes(key, region.startKey) <= 0) return null;
  if (previous !== undefined) {
    const order = compareBytes(previous, key);
    // splitKeyOf is monotone (see there), and candidates come in key order.
    assert(order <= 0, "split keys never decrease along a scan", {
      previous: toHex(previous),
      key: toHex(key),
      candidate: toHex(candidate),
    });
    if (order === 0) return null;
  }
  assert(strictlyInside(region, key), "a cut candidate lies inside the region", {
    range: describeRange(region),
    key: toHex(key),
  });
  return key.slice();
}

/** The data column families: a region's data lives in every CF but `raft`. */
const DATA_CFS = COLUMN_FAMILIES.filter(isDataCf);

/**
 * The region's entries of every data CF in key order: three bounded iterators merged by
 * taking the smallest current key (ties go to the CF listed first, so the order is fixed).
 */
class MergedDataIterator {
  readonly #iterators: EngineIterator[];
  #current: EngineIterator | null = null;
  #closed = false;

  constructor(reader: Readable, range: SplitRange) {
    const options: IterOptions = {};
    if (range.startKey.length > 0) options.lowerBound = range.startKey;
    if (range.endKey.length > 0) options.upperBound = range.endKey;
    this.#iterators = [];
    try {
      for (const cf of DATA_CFS) this.#iterators.push(reader.iterator(cf, options));
    } catch (error) {
      this.close();
      throw error;
    }
    for (const iterator of this.#iterators) iterator.seekToFirst();
    this.#pick();
  }

  valid(): boolean {
    return this.#current !== null;
  }

  /** The current key: a view valid until `next()`. */
  key(): Uint8Array {
    assert(this.#current !== null, "key() of a valid merged iterator");
    return this.#current.key();
  }

  /** The current value: a view valid until `next()`. */
  value(): Uint8Array {
    assert(this.#current !== null, "value() of a valid merged iterator");
    return this.#current.value();
  }

  next(): void {
    assert(this.#current !== null, "next() of a valid merged iterator");
    this.#current.next();
    this.#pick();
  }

  #pick(): void {
    let smallest: EngineIterator | null = null;
    for (const iterator of this.#iterators) {
      if (!iterator.valid()) continue;
      if (smallest === null || compareBytes(iterator.key(), smallest.key()) < 0) {
        smallest = iterator;
      }
    }
    this.#current = smallest;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#current = null;
    for (const iterator of this.#iterators) iterator.close();
  }
}
