/**
 * A RocksDB WriteBatch across column families. Each buffered operation is one FFI fast call;
 * the batch is applied atomically by `RocksDbEngine.write` / `writeDurable`.
 */
import { LengthSlot, native } from "../../ffi/native.ts";
import { assertEntrySize, assertRange } from "./limits.ts";
import { cfHandle, type ReaderContext } from "./rocksdb_reader.ts";
import { type ColumnFamily, EngineClosedError, type WriteBatch } from "./types.ts";

const rocks = () => native().rocks;

export class RocksWriteBatch implements WriteBatch {
  #batch: Deno.PointerObject | null = rocks().rocksdb_writebatch_create();
  readonly #length = new LengthSlot();
  /** Set while a durable write of this batch is in flight: the batch must not change. */
  inFlight = false;

  /**
   * The engine's context guards the column family handles: they die with the engine, and a
   * batch operation on a dead handle is a use-after-free (a SIGSEGV was seen), not an error.
   */
  constructor(private readonly engine: ReaderContext) {}

  /** The native batch; throws when destroyed or in flight. */
  pointer(): Deno.PointerObject {
    if (this.#batch === null) throw new EngineClosedError("write batch");
    return this.#batch;
  }

  #mutable(): Deno.PointerObject {
    if (this.inFlight) throw new Error("write batch changed while a durable write is in flight");
    return this.pointer();
  }

  #cf(cf: ColumnFamily): Deno.PointerObject {
    this.engine.assertOpen();
    return cfHandle(this.engine, cf);
  }

  put(cf: ColumnFamily, key: Uint8Array, value: Uint8Array): void {
    assertEntrySize(key, value);
    rocks().rocksdb_writebatch_put_cf(
      this.#mutable(),
      this.#cf(cf),
      key,
      BigInt(key.length),
      value,
      BigInt(value.length),
    );
  }

  delete(cf: ColumnFamily, key: Uint8Array): void {
    assertEntrySize(key);
    rocks().rocksdb_writebatch_delete_cf(this.#mutable(), this.#cf(cf), key, BigInt(key.length));
  }

  singleDelete(cf: ColumnFamily, key: Uint8Array): void {
    assertEntrySize(key);
    rocks().rocksdb_writebatch_singledelete_cf(
      this.#mutable(),
      this.#cf(cf),
      key,
      BigInt(key.length),
    );
  }

  deleteRange(cf: ColumnFamily, start: Uint8Array, end: Uint8Array): void {
    assertRange(start, end);
    rocks().rocksdb_writebatch_delete_range_cf(
      this.#mutable(),
      this.#cf(cf),
      start,
      BigInt(start.length),
      end,
      BigInt(end.length),
    );
  }

  get count(): number {
    return rocks().rocksdb_writebatch_count(this.pointer());
  }

  get dataSizeBytes(): number {
    rocks().rocksdb_writebatch_data(this.pointer(), this.#length.buffer);
    return this.#length.value;
  }

  clear(): void {
    rocks().rocksdb_writebatch_clear(this.#mutable());
  }

  destroy(): void {
    if (this.#batch === null) return;
    if (this.inFlight) throw new Error("write batch destroyed while a durable write is in flight");
    rocks().rocksdb_writebatch_destroy(this.#batch);
    this.#batch = null;
  }

  [Symbol.dispose](): void {
    this.destroy();
  }
}
