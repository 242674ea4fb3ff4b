/**
 * A memory engine that can lose power: writes through `write` (unsynced) are kept apart from
 * those made durable, and `powerLoss()` returns a fresh engine holding only what a synced write
 * made durable. `writeDurable` makes every earlier unsynced write durable too, as RocksDB's WAL
 * does (it is one sequential log: an fsync covers everything before it), and so does `syncWal`.
 *
 * A process crash (kill -9) loses nothing the engine was given (the OS keeps unsynced WAL
 * writes); `processCrash()` returns an engine with everything. Tests pick which to model.
 *
 * @module
 */

import { MemoryEngine, MemoryWriteBatch } from "../../engine/memory_engine.ts";
import {
  COLUMN_FAMILIES,
  type ColumnFamily,
  type EngineIterator,
  type IterOptions,
  type KvEngine,
  type Snapshot,
  type WriteBatch,
} from "../../engine/types.ts";

type Operations = MemoryWriteBatch["operations"];

/** A MemoryEngine with a durable shadow (module header). */
export class CrashableMemoryEngine implements KvEngine {
  readonly #live: MemoryEngine;
  readonly #durable: MemoryEngine;
  #unsynced: Operations[] = [];
  /** Fsyncs so far (each `writeDurable` or `syncWal`). */
  syncCount = 0;

  /** An empty engine, or one holding `from`'s contents as durable. */
  constructor(from?: MemoryEngine) {
    this.#live = copyOf(from);
    this.#durable = copyOf(from);
  }

  /** A new engine holding only what was made durable (a power loss). */
  powerLoss(): CrashableMemoryEngine {
    return new CrashableMemoryEngine(this.#durable);
  }

  /** A new engine holding everything written (a process crash). */
  processCrash(): CrashableMemoryEngine {
    const next = new CrashableMemoryEngine(this.#durable);
    for (const ops of this.#unsynced) next.#live.apply(ops);
    next.#unsynced = this.#unsynced.slice();
    return next;
  }

  /** Writes not yet made durable, for tests. */
  get unsyncedWrites(): number {
    return this.#unsynced.length;
  }

  get(cf: ColumnFamily, key: Uint8Array): Uint8Array | null {
    return this.#live.get(cf, key);
  }
  multiGet(cf: ColumnFamily, keys: readonly Uint8Array[]): (Uint8Array | null)[] {
    return this.#live.multiGet(cf, keys);
  }
  iterator(cf: ColumnFamily, options?: IterOptions): EngineIterator {
    return this.#live.iterator(cf, options);
  }
  put(cf: ColumnFamily, key: Uint8Array, value: Uint8Array): void {
    const batch = new MemoryWriteBatch();
    batch.put(cf, key, value);
    this.write(batch);
  }
  delete(cf: ColumnFamily, key: Uint8Array): void {
    const batch = new MemoryWriteBatch();
    batch.delete(cf, key);
    this.write(batch);
  }
  singleDelete(cf: ColumnFamily, key: Uint8Array): void {
    this.delete(cf, key);
  }
  deleteRange(cf: ColumnFamily, start: Uint8Array, end: Uint8Array): void {
    const batch = new MemoryWriteBatch();
    batch.deleteRange(cf, start, end);
    this.write(batch);
  }
  newWriteBatch(): MemoryWriteBatch {
    return this.#live.newWriteBatch();
  }
  write(batch: WriteBatch): void {
    const ops = (batch as MemoryWriteBatch).operations.slice();
    this.#live.apply(ops);
    this.#unsynced.push(ops);
  }
  writeDurable(batch: WriteBatch): Promise<void> {
    try {
      this.write(batch);
      this.#makeDurable();
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }
  syncWal(): Promise<void> {
    try {
      this.#makeDurable();
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }
  /** Every write so far becomes durable (one fsync of the write-ahead log). */
  #makeDurable(): void {
    for (const earlier of this.#unsynced) this.#durable.apply(earlier);
    this.#unsynced = [];
    this.syncCount++;
  }
  snapshot(): Snapshot {
    return this.#live.snapshot();
  }
  flush(cf?: ColumnFamily): void {
    this.#live.flush(cf);
  }
  compactRange(cf: ColumnFamily, start?: Uint8Array, end?: Uint8Array): void {
    this.#live.compactRange(cf, start, end);
  }
  property(cf: ColumnFamily, name: string): string | null {
    return this.#live.property(cf, name);
  }
  close(): void {
    this.#live.close();
  }
  get closed(): boolean {
    return this.#live.closed;
  }
}

/** A MemoryEngine holding a copy of `from` (or empty). */
function copyOf(from: MemoryEngine | undefined): MemoryEngine {
  const engine = new MemoryEngine();
  if (from === undefined) return engine;
  for (const cf of COLUMN_FAMILIES) {
    const batch = new MemoryWriteBatch();
    using iter = from.iterator(cf);
    for (iter.seekToFirst(); iter.valid(); iter.next()) batch.put(cf, iter.key(), iter.value());
    engine.apply(batch.operations);
  }
  return engine;
}

/**
 * A crashable engine whose fsyncs (`syncWal`) end only when `release` is called, while
 * `holding` (the default); with it off they end at once.
 */
export class HeldSyncEngine extends CrashableMemoryEngine {
  holding = true;
  #held: (() => void)[] = [];

  override syncWal(): Promise<void> {
    if (!this.holding) return super.syncWal();
    return new Promise((resolve) => this.#held.push(() => super.syncWal().then(resolve)));
  }

  /** How many fsyncs wait. */
  get held(): number {
    return this.#held.length;
  }

  /** Ends every fsync that waits. */
  release(): void {
    const held = this.#held;
    this.#held = [];
    for (const end of held) end();
  }
}
