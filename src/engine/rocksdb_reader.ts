/**
 * Reads from RocksDB: point gets, multi-gets, iterators, snapshots.
 *
 * Iterators hand out keys and values by copying the native bytes into one reusable buffer per
 * iterator (one `memcpy` fast call, ~40 ns) and returning a view of it. The view object is
 * reused while lengths repeat, so a scan over fixed-size keys allocates nothing per entry. A
 * measurement here found one `new Uint8Array` per key and value held scans to ~0.2× of C.
 */
import { copyOut, ErrorSlot, LengthSlot, native, pinnedCopy } from "../../ffi/native.ts";
import {
  type ColumnFamily,
  EngineClosedError,
  type EngineIterator,
  type IterOptions,
  type Readable,
  type Snapshot,
} from "./types.ts";

/** What readers share with the engine that owns the database. */
export interface ReaderContext {
  readonly db: Deno.PointerObject;
  readonly columnFamilies: ReadonlyMap<ColumnFamily, Deno.PointerObject>;
  /** Throws `EngineClosedError` when the engine is closed. */
  assertOpen(): void;
  /** Children (iterators, snapshots) are closed before the database is. */
  register(child: { close(): void }): void;
  unregister(child: { close(): void }): void;
}

const rocks = () => native().rocks;

/** Resolves a column family name to its handle; unknown names are a programming error. */
export function cfHandle(context: ReaderContext, cf: ColumnFamily): Deno.PointerObject {
  const handle = context.columnFamilies.get(cf);
  if (handle === undefined) throw new Error(`unknown column family "${cf}"`);
  return handle;
}

/** Point reads and iterators with one set of read options (latest state or a snapshot). */
export class RocksReader implements Readable {
  protected readonly error = new ErrorSlot();
  protected readonly length = new LengthSlot();

  constructor(
    protected readonly context: ReaderContext,
    protected readonly readOptions: Deno.PointerObject,
    private readonly snapshotPointer: Deno.PointerObject | null = null,
  ) {}

  protected assertUsable(): void {
    this.context.assertOpen();
  }

  get(cf: ColumnFamily, key: Uint8Array): Uint8Array | null {
    this.assertUsable();
    const r = rocks();
    const handle = cfHandle(this.context, cf);
    const slice = r.rocksdb_get_pinned_cf(
      this.context.db,
      this.readOptions,
      handle,
      key,
      BigInt(key.length),
      this.error.buffer,
    );
    this.error.check("get");
    if (slice === null) return null;
    const value = r.rocksdb_pinnableslice_value(slice, this.length.buffer);
    const out = value === null ? new Uint8Array(0) : copyOut(value, this.length.value);
    r.rocksdb_pinnableslice_destroy(slice);
    return out;
  }

  /**
   * RocksDB's batched MultiGet: one call looks every key up together. The keys are copied into
   * one arena, so one pointer lookup (`UnsafePointer.of`, ~240 ns) serves them all; a pinned
   * copy and a pointer lookup per key held the old `rocksdb_multi_get_cf` path to 3.3–4.4
   * µs/key against 2.1–2.3 µs/key now (batches of 8–128 keys, memtable of 200k keys).
   */
  multiGet(cf: ColumnFamily, keys: readonly Uint8Array[]): (Uint8Array | null)[] {
    this.assertUsable();
    const count = keys.length;
    if (count === 0) return [];
    // One key: a get costs less than the arrays a multi-get needs (2.7 vs 6.6 µs, measured).
    if (count === 1) return [this.get(cf, keys[0]!)];
    const handle = cfHandle(this.context, cf);
    const { arena, offsets } = keyArena(keys);
    const base = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(arena)));
    const keyPointers = new BigUint64Array(count);
    const keySizes = new BigUint64Array(count);
    for (let i = 0; i < count; i++) {
      keyPointers[i] = base + BigInt(offsets[i]!);
      keySizes[i] = BigInt(keys[i]!.length);
    }
    const slices = new BigUint64Array(count);
    const errors = new BigUint64Array(count);
    rocks().rocksdb_batched_multi_get_cf(
      this.context.db,
      this.readOptions,
      handle,
      BigInt(count),
      new Uint8Array(keyPointers.buffer),
      new Uint8Array(keySizes.buffer),
      new Uint8Array(slices.buffer),
      new Uint8Array(errors.buffer),
      false,
    );
    return this.#collectPinned(slices, errors);
  }

  /** The values of pinned slices (freed here), or the first error. */
  #collectPinned(slices: BigUint64Array, errors: BigUint64Array): (Uint8Array | null)[] {
    const r = rocks();
    const results: (Uint8Array | null)[] = [];
    let firstError: string | null = null;
    for (let i = 0; i < slices.length; i++) {
      const error = Deno.UnsafePointer.create(errors[i]!);
      if (error !== null) {
        firstError ??= Deno.UnsafePointerView.getCString(error);
        r.rocksdb_free(error);
      }
      const slice = Deno.UnsafePointer.create(slices[i]!);
      if (slice === null) {
        results.push(null);
        continue;
      }
      const value = r.rocksdb_pinnableslice_value(slice, this.length.buffer);
      results.push(value === null ? new Uint8Array(0) : copyOut(value, this.length.value));
      r.rocksdb_pinnableslice_destroy(slice);
    }
    if (firstError !== null) throw new Error(`multiGet: ${firstError}`);
    return results;
  }

  iterator(cf: ColumnFamily, options: IterOptions = {}): EngineIterator {
    this.assertUsable();
    return new RocksIterator(this.context, { cf, options, snapshot: this.snapshotPointer });
  }
}

/**
 * `keys` copied into one buffer that stays put while RocksDB reads it (an explicit ArrayBuffer
 * is never moved by V8's collector), with each key's offset.
 */
function keyArena(keys: readonly Uint8Array[]): { arena: Uint8Array; offsets: number[] } {
  let size = 0;
  const offsets: number[] = [];
  for (const key of keys) {
    offsets.push(size);
    size += key.length;
  }
  const arena = new Uint8Array(new ArrayBuffer(Math.max(size, 1)));
  keys.forEach((key, i) => arena.set(key, offsets[i]!));
  return { arena, offsets };
}

/**
 * A reusable destination for native bytes. `fill` copies and returns a view; the same view
 * object is returned while the length repeats.
 */
class CopyBuffer {
  #bytes = new Uint8Array(new ArrayBuffer(256));
  #view = this.#bytes.subarray(0, 0);
  #lengthBig = 0n;

  fill(source: Deno.PointerObject | null, length: number): Uint8Array {
    if (length > this.#bytes.length) {
      this.#bytes = new Uint8Array(new ArrayBuffer(Math.max(length, this.#bytes.length * 2)));
      this.#view = this.#bytes.subarray(0, length);
      this.#lengthBig = BigInt(length);
    } else if (length !== this.#view.length) {
      this.#view = this.#bytes.subarray(0, length);
      this.#lengthBig = BigInt(length);
    }
    if (length > 0 && source !== null) native().libc.memcpy(this.#bytes, source, this.#lengthBig);
    return this.#view;
  }
}

interface IteratorSpec {
  cf: ColumnFamily;
  options: IterOptions;
  snapshot: Deno.PointerObject | null;
}

/** A RocksDB iterator with its own read options (bounds must outlive the iterator). */
class RocksIterator implements EngineIterator {
  #iterator: Deno.PointerObject | null;
  #valid = false;
  /**
   * An empty upper bound admits no key. The C API reads a zero-length bound as a null pointer,
   * which means "no bound", so that case is handled here instead of natively.
   */
  readonly #empty: boolean;
  #readOptions: Deno.PointerObject;
  readonly #bounds: Uint8Array[] = [];
  readonly #keyBuffer = new CopyBuffer();
  readonly #valueBuffer = new CopyBuffer();
  readonly #length = new LengthSlot();
  readonly #error = new ErrorSlot();

  constructor(private readonly context: ReaderContext, spec: IteratorSpec) {
    const r = rocks();
    this.#readOptions = r.rocksdb_readoptions_create()!;
    if (spec.snapshot !== null) {
      r.rocksdb_readoptions_set_snapshot(this.#readOptions, spec.snapshot);
    }
    const { lowerBound, upperBound } = spec.options;
    this.#empty = upperBound !== undefined && upperBound.length === 0;
    if (lowerBound !== undefined) {
      const bound = this.#keep(lowerBound);
      r.rocksdb_readoptions_set_iterate_lower_bound(this.#readOptions, bound, BigInt(bound.length));
    }
    if (upperBound !== undefined) {
      const bound = this.#keep(upperBound);
      r.rocksdb_readoptions_set_iterate_upper_bound(this.#readOptions, bound, BigInt(bound.length));
    }
    const handle = cfHandle(context, spec.cf);
    this.#iterator = r.rocksdb_create_iterator_cf(context.db, this.#readOptions, handle);
    context.register(this);
  }

  #keep(bound: Uint8Array): Uint8Array {
    const copy = pinnedCopy(bound);
    this.#bounds.push(copy);
    return copy;
  }

  #it(): Deno.PointerObject {
    if (this.#iterator === null) throw new EngineClosedError("iterator");
    return this.#iterator;
  }

  seek(key: Uint8Array): void {
    rocks().rocksdb_iter_seek(this.#it(), key, BigInt(key.length));
    this.#settle();
  }

  seekForPrev(key: Uint8Array): void {
    rocks().rocksdb_iter_seek_for_prev(this.#it(), key, BigInt(key.length));
    this.#settle();
  }

  seekToFirst(): void {
    rocks().rocksdb_iter_seek_to_first(this.#it());
    this.#settle();
  }

  seekToLast(): void {
    rocks().rocksdb_iter_seek_to_last(this.#it());
    this.#settle();
  }

  next(): boolean {
    rocks().rocksdb_iter_next(this.#positioned());
    return this.#settle();
  }

  prev(): boolean {
    rocks().rocksdb_iter_prev(this.#positioned());
    return this.#settle();
  }

  valid(): boolean {
    this.#it();
    return this.#valid;
  }

  key(): Uint8Array {
    const source = rocks().rocksdb_iter_key(this.#positioned(), this.#length.buffer);
    return this.#keyBuffer.fill(source, this.#length.value);
  }

  value(): Uint8Array {
    const source = rocks().rocksdb_iter_value(this.#positioned(), this.#length.buffer);
    return this.#valueBuffer.fill(source, this.#length.value);
  }

  /** The native iterator, which must be positioned on an entry (RocksDB asserts it). */
  #positioned(): Deno.PointerObject {
    const it = this.#it();
    if (!this.#valid) throw new Error("iterator is not positioned on an entry");
    return it;
  }

  /**
   * Records validity after a movement (one FFI call, so `valid()` costs none). An invalid
   * iterator may hide an I/O or corruption error: surface it.
   */
  #settle(): boolean {
    const it = this.#it();
    this.#valid = !this.#empty && rocks().rocksdb_iter_valid(it) !== 0;
    if (!this.#valid) {
      rocks().rocksdb_iter_get_error(it, this.#error.buffer);
      this.#error.check("iterator");
    }
    return this.#valid;
  }

  close(): void {
    if (this.#iterator === null) return;
    const r = rocks();
    r.rocksdb_iter_destroy(this.#iterator);
    r.rocksdb_readoptions_destroy(this.#readOptions);
    this.#iterator = null;
    this.#bounds.length = 0;
    this.context.unregister(this);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** A RocksDB snapshot: reads see the database as it was when the snapshot was taken. */
export class RocksSnapshot extends RocksReader implements Snapshot {
  #released = false;

  constructor(context: ReaderContext, readonly snapshot: Deno.PointerObject) {
    const readOptions = rocks().rocksdb_readoptions_create()!;
    rocks().rocksdb_readoptions_set_snapshot(readOptions, snapshot);
    super(context, readOptions, snapshot);
    context.register(this);
  }

  protected override assertUsable(): void {
    if (this.#released) throw new EngineClosedError("snapshot");
    super.assertUsable();
  }

  release(): void {
    if (this.#released) return;
    this.#released = true;
    rocks().rocksdb_release_snapshot(this.context.db, this.snapshot);
    rocks().rocksdb_readoptions_destroy(this.readOptions);
    this.context.unregister(this);
  }

  close(): void {
    this.release();
  }

  [Symbol.dispose](): void {
    this.release();
  }
}
