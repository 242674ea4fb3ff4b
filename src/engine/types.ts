/**
 * The storage engine interface every layer above `ffi/` programs against.
 *
 * This module imports nothing of any implementation: the RocksDB engine (`rocksdb_engine.ts`)
 * and the ordered in-memory engine (`memory_engine.ts`) both satisfy it, and one conformance
 * suite (`conformance.ts`) runs against both.
 *
 * Invariants every implementation keeps:
 * - Keys order by unsigned bytewise comparison, per column family.
 * - A `Snapshot` sees exactly the writes that completed before it was taken.
 * - A `WriteBatch` applies atomically: a reader sees all of it or none of it.
 * - Iterator bounds: `lowerBound` inclusive, `upperBound` exclusive.
 * - Bytes an iterator hands out (`key()`, `value()`) are views that stay valid only until the
 *   iterator moves or closes; copy them (`slice()`) to keep them. Bytes returned by `get` and
 *   `multiGet` belong to the caller.
 * - Using a closed engine, snapshot or iterator throws `EngineClosedError`; it never crashes.
 */

/** The column families of a Basalt store, as TiKV has them. */
export type ColumnFamily = "default" | "lock" | "write" | "raft";

/** Every column family, in the order the engine opens them. */
export const COLUMN_FAMILIES: readonly ColumnFamily[] = ["default", "lock", "write", "raft"];

/** Whether `name` is one of Basalt's column families. */
export function isColumnFamily(name: string): name is ColumnFamily {
  return (COLUMN_FAMILIES as readonly string[]).includes(name);
}

/** Bounds of an iterator: `lowerBound` inclusive, `upperBound` exclusive. */
export interface IterOptions {
  lowerBound?: Uint8Array;
  upperBound?: Uint8Array;
}

/** A cursor over one column family. Positioning methods leave it valid or not. */
export interface EngineIterator extends Disposable {
  /** Positions at the first key >= `key` (within bounds). */
  seek(key: Uint8Array): void;
  /** Positions at the last key <= `key` (within bounds). */
  seekForPrev(key: Uint8Array): void;
  seekToFirst(): void;
  seekToLast(): void;
  /** Moves forward; returns `valid()` afterwards. */
  next(): boolean;
  /** Moves backward; returns `valid()` afterwards. */
  prev(): boolean;
  valid(): boolean;
  /** The current key: a view valid until the iterator moves or closes. */
  key(): Uint8Array;
  /** The current value: a view valid until the iterator moves or closes. */
  value(): Uint8Array;
  close(): void;
}

/** Reads, at the latest state (engine) or at a fixed point (snapshot). */
export interface Readable {
  get(cf: ColumnFamily, key: Uint8Array): Uint8Array | null;
  multiGet(cf: ColumnFamily, keys: readonly Uint8Array[]): (Uint8Array | null)[];
  iterator(cf: ColumnFamily, options?: IterOptions): EngineIterator;
}

/** A consistent read view. Release it when done; it pins old versions until then. */
export interface Snapshot extends Readable, Disposable {
  release(): void;
}

/** Buffered writes across column families, applied atomically by `KvEngine.write`. */
export interface WriteBatch extends Disposable {
  put(cf: ColumnFamily, key: Uint8Array, value: Uint8Array): void;
  delete(cf: ColumnFamily, key: Uint8Array): void;
  /** Deletes a key written once and never overwritten (RocksDB SingleDelete semantics). */
  singleDelete(cf: ColumnFamily, key: Uint8Array): void;
  /** Deletes every key in [start, end). */
  deleteRange(cf: ColumnFamily, start: Uint8Array, end: Uint8Array): void;
  /** Number of operations buffered. */
  readonly count: number;
  /** Approximate bytes buffered (keys + values + per-operation overhead). */
  readonly dataSizeBytes: number;
  clear(): void;
  /** Frees the batch. Using it afterwards throws. */
  destroy(): void;
}

/** Options for writes. */
export interface WriteOptions {
  /** fsync the write-ahead log before acknowledging. */
  sync?: boolean;
}

/** The whole key-value engine of one store. */
export interface KvEngine extends Readable {
  put(cf: ColumnFamily, key: Uint8Array, value: Uint8Array): void;
  delete(cf: ColumnFamily, key: Uint8Array): void;
  singleDelete(cf: ColumnFamily, key: Uint8Array): void;
  deleteRange(cf: ColumnFamily, start: Uint8Array, end: Uint8Array): void;
  newWriteBatch(): WriteBatch;
  /** Applies a batch without fsync, on the calling thread. */
  write(batch: WriteBatch): void;
  /**
   * Applies a batch and fsyncs the write-ahead log without blocking the event loop. The batch
   * must not be changed until the promise settles. Concurrent durable writes share fsyncs.
   */
  writeDurable(batch: WriteBatch): Promise<void>;
  /**
   * Makes every write that returned before this call durable (fsyncs the write-ahead log),
   * without blocking the event loop: `write` then `syncWal` is `writeDurable` in two steps, the
   * write visible at once and durable when the promise resolves. Concurrent calls share fsyncs.
   */
  syncWal(): Promise<void>;
  snapshot(): Snapshot;
  /** Flushes memtables of `cf` (or all) to SST files. */
  flush(cf?: ColumnFamily): void;
  /** Compacts [start, end) of `cf` (or the whole family when both are omitted). */
  compactRange(cf: ColumnFamily, start?: Uint8Array, end?: Uint8Array): void;
  /** An engine property such as `rocksdb.estimate-num-keys`, or null if unknown. */
  property(cf: ColumnFamily, name: string): string | null;
  close(): void;
  readonly closed: boolean;
}

/** Thrown when a closed engine, snapshot, iterator or batch is used. */
export class EngineClosedError extends Error {
  constructor(what: string) {
    super(`${what} is closed`);
    this.name = "EngineClosedError";
  }
}

/** Thrown for an error reported by the storage engine; `engineMessage` is its own text. */
export class EngineError extends Error {
  constructor(readonly operation: string, readonly engineMessage: string) {
    super(`${operation}: ${engineMessage}`);
    this.name = "EngineError";
  }
}
