/**
 * `RegionSnapshot`: a read view of one region (TiKV's `RegionSnapshot`). Every read a command
 * makes goes through one, so scans, region-wide ResolveLock, GC and both delete-ranges see only
 * the keys of the command's region, whatever bounds they ask for:
 *
 * - An iterator's bounds are clamped to `[region.startKey, region.endKey)` in every data column
 *   family (region bounds are data keys, so one bytewise clamp is right for raw keys and for
 *   encoded transactional keys with or without a ts: see `region_range.ts`). Seeks outside the
 *   region land inside it or nowhere, as the engine's iterator bounds promise. A range that the
 *   clamp leaves empty gives an iterator that is never valid.
 * - A point read (`get`, `multiGet`) of a key outside the region is a bug — the command's keys
 *   were checked against the region before it ran — and throws (TiKV answers KeyNotInRegion).
 * - CF `raft` holds no region data: reading it through a region is a bug and throws.
 *
 * For the standalone region (every key) nothing is clamped or compared: a read costs what the
 * engine's read costs.
 *
 * A view either owns an engine snapshot (`RegionSnapshot.take`: consistent across reads,
 * released with the view; what transactional commands read) or reads the engine's latest state
 * (`RegionSnapshot.latest`: each read sees one state of its own; the raw commands, which took no
 * snapshot before and whose point reads are the hot path).
 */
import {
  type ColumnFamily,
  EngineClosedError,
  type EngineIterator,
  type IterOptions,
  type KvEngine,
  type Readable,
  type Snapshot,
} from "../engine/types.ts";
import { assert } from "../util/assert.ts";
import {
  clampToRegion,
  coversAllKeys,
  describeRange,
  isDataCf,
  regionContainsKey,
  type RegionMeta,
} from "./region_range.ts";

/** A read view clamped to one region (see the module header). */
export class RegionSnapshot implements Snapshot {
  readonly #source: Readable;
  readonly #owned: Snapshot | null;
  readonly #clamped: boolean;
  #released = false;

  private constructor(readonly region: RegionMeta, source: Readable, owned: Snapshot | null) {
    this.#source = source;
    this.#owned = owned;
    this.#clamped = !coversAllKeys(region);
  }

  /** A consistent view of `region`: a snapshot of `engine` now, released with the view. */
  static take(engine: KvEngine, region: RegionMeta): RegionSnapshot {
    const snapshot = engine.snapshot();
    return new RegionSnapshot(region, snapshot, snapshot);
  }

  /** A view of `region` reading `engine`'s latest state (see the module header for when). */
  static latest(engine: Readable, region: RegionMeta): RegionSnapshot {
    return new RegionSnapshot(region, engine, null);
  }

  get(cf: ColumnFamily, key: Uint8Array): Uint8Array | null {
    this.#check(cf);
    if (this.#clamped) this.#assertContains(key);
    return this.#source.get(cf, key);
  }

  multiGet(cf: ColumnFamily, keys: readonly Uint8Array[]): (Uint8Array | null)[] {
    this.#check(cf);
    if (this.#clamped) { for (const key of keys) this.#assertContains(key); }
    return this.#source.multiGet(cf, keys);
  }

  iterator(cf: ColumnFamily, options: IterOptions = {}): EngineIterator {
    this.#check(cf);
    if (!this.#clamped) return this.#source.iterator(cf, options);
    const bounds = clampToRegion(this.region, {
      lower: options.lowerBound,
      upper: options.upperBound,
    });
    if (bounds === null) return new EmptyIterator();
    const clamped: IterOptions = {};
    if (bounds.lower !== undefined) clamped.lowerBound = bounds.lower;
    if (bounds.upper !== undefined) clamped.upperBound = bounds.upper;
    return this.#source.iterator(cf, clamped);
  }

  /** Releases the engine snapshot this view owns (if any); the view is closed after. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#owned?.release();
  }

  [Symbol.dispose](): void {
    this.release();
  }

  #check(cf: ColumnFamily): void {
    if (this.#released) throw new EngineClosedError("region snapshot");
    assert(isDataCf(cf), "a region's view reads only data column families", {
      region: this.region.id,
      cf,
    });
  }

  #assertContains(key: Uint8Array): void {
    // The command's keys were checked against the region before it ran (`respond.ts`).
    assert(regionContainsKey(this.region, key), "a command reads only inside its region", {
      region: this.region.id,
      range: describeRange(this.region),
      key,
    });
  }
}

/** An iterator over nothing (a range the clamp emptied). */
class EmptyIterator implements EngineIterator {
  #closed = false;

  #open(): void {
    if (this.#closed) throw new EngineClosedError("iterator");
  }

  seek(): void {
    this.#open();
  }
  seekForPrev(): void {
    this.#open();
  }
  seekToFirst(): void {
    this.#open();
  }
  seekToLast(): void {
    this.#open();
  }
  next(): boolean {
    throw new Error("iterator is not positioned on an entry");
  }
  prev(): boolean {
    throw new Error("iterator is not positioned on an entry");
  }
  valid(): boolean {
    this.#open();
    return false;
  }
  key(): Uint8Array {
    throw new Error("iterator is not positioned on an entry");
  }
  value(): Uint8Array {
    throw new Error("iterator is not positioned on an entry");
  }
  close(): void {
    this.#closed = true;
  }
  [Symbol.dispose](): void {
    this.close();
  }
}
