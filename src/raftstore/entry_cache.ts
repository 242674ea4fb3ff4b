/**
 * The recent tail of one region's log, kept in memory so that the leader replicating to
 * followers that are slightly behind, and apply reading just-committed entries, do not read
 * RocksDB (TiKV's `EntryCache`).
 *
 * Invariants:
 * - The cached entries have consecutive indexes.
 * - When not empty, the cache ends at the log's last index: `append` overwrites a conflicting
 *   suffix and drops anything after the appended entries, as the log does.
 * - The entries of the most recent `append` are always cached, whatever the limits: they may
 *   not be durable yet (the Ready loop writes them in a batch after `append` returns) and
 *   reads of them must not go to the engine. Older entries are evicted, oldest first, once the
 *   cache holds more than `maxEntries` entries or `maxBytes` bytes.
 *
 * @module
 */

import { assert, type Entry } from "../raft/mod.ts";

/** Bytes an entry costs in the cache: payload plus a fixed overhead. */
function cachedSizeBytes(e: Entry): number {
  return e.data.length + e.context.length + 48;
}

/** Limits of one region's cache. */
export interface EntryCacheLimits {
  maxEntries: number;
  maxBytes: number;
}

/** The recent entries of one region's log. */
export class EntryCache {
  #entries: Entry[] = [];
  #sizeBytes = 0;

  /** An empty cache bounded by `limits`. */
  constructor(readonly limits: EntryCacheLimits) {
    assert(limits.maxEntries > 0 && limits.maxBytes > 0, "entry cache limits must be positive");
  }

  /** Number of entries cached. */
  get length(): number {
    return this.#entries.length;
  }

  /** Bytes cached (as counted against `maxBytes`). */
  get sizeBytes(): number {
    return this.#sizeBytes;
  }

  /** Index of the first cached entry, or undefined when empty. */
  firstIndex(): bigint | undefined {
    return this.#entries[0]?.index;
  }

  /** The cached entry at `index`, if any. */
  get(index: bigint): Entry | undefined {
    const first = this.#entries[0]?.index;
    if (first === undefined || index < first) return undefined;
    return this.#entries[Number(index - first)];
  }

  /** Cached entries in [lo, hi); the caller checks that [lo, hi) lies within the cache. */
  slice(lo: bigint, hi: bigint): Entry[] {
    const first = this.#entries[0]?.index;
    assert(first !== undefined && lo >= first && lo <= hi, `entry cache: [${lo}, ${hi}) uncached`);
    const out = this.#entries.slice(Number(lo - first), Number(hi - first));
    assert(out.length === Number(hi - lo), `entry cache: [${lo}, ${hi}) runs past the cache`);
    return out;
  }

  /** Records newly appended entries (consecutive), replacing any cached suffix from theirs. */
  append(entries: readonly Entry[]): void {
    const head = entries[0];
    if (head === undefined) return;
    const first = this.#entries[0]?.index;
    const last = this.#entries[this.#entries.length - 1]?.index;
    if (first === undefined || last === undefined || head.index > last + 1n || head.index < first) {
      this.clear(); // Not adjacent to what is cached: start over from these entries.
    } else if (head.index <= last) {
      this.truncateFrom(head.index);
    }
    for (const e of entries) {
      const previous = this.#entries[this.#entries.length - 1];
      assert(previous === undefined || e.index === previous.index + 1n, "entry cache: gap");
      this.#entries.push(e);
      this.#sizeBytes += cachedSizeBytes(e);
    }
    this.evict(entries.length);
  }

  /** Drops entries with index below `index` (they were compacted away). */
  compactTo(index: bigint): void {
    const first = this.#entries[0]?.index;
    if (first === undefined || index <= first) return;
    const drop = Math.min(this.#entries.length, Number(index - first));
    for (const e of this.#entries.slice(0, drop)) this.#sizeBytes -= cachedSizeBytes(e);
    this.#entries = this.#entries.slice(drop);
  }

  /** Empties the cache. */
  clear(): void {
    this.#entries = [];
    this.#sizeBytes = 0;
  }

  private truncateFrom(index: bigint): void {
    const first = this.#entries[0]!.index;
    const keep = Number(index - first);
    for (const e of this.#entries.slice(keep)) this.#sizeBytes -= cachedSizeBytes(e);
    this.#entries.length = keep;
  }

  /** Evicts the oldest entries over the limits, keeping the newest `keepNewest`. */
  private evict(keepNewest: number): void {
    let drop = 0;
    let size = this.#sizeBytes;
    const evictable = this.#entries.length - keepNewest;
    while (
      drop < evictable &&
      (this.#entries.length - drop > this.limits.maxEntries || size > this.limits.maxBytes)
    ) {
      size -= cachedSizeBytes(this.#entries[drop]!);
      drop++;
    }
    if (drop === 0) return;
    this.#entries = this.#entries.slice(drop);
    this.#sizeBytes = size;
  }
}
