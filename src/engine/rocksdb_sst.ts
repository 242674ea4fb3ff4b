/**
 * SST files written outside the database, and their ingestion into a column family. Raft
 * snapshots travel as SST files: the sender writes one per column family, the receiver ingests
 * them, which is far cheaper than replaying the keys as writes.
 *
 * Invariants this module keeps:
 * - Point entries (`put`, `delete`) are added in strictly ascending key order; an entry out of
 *   order is refused with `SstKeyOrderError` before it reaches RocksDB. Range deletions live in
 *   their own block of the file; Basalt requires them ascending and non-overlapping too, which
 *   keeps a file easy to reason about.
 * - Every native handle (writer, env options, options) is freed exactly once, by `destroy()`;
 *   using a destroyed writer throws `EngineClosedError`.
 */
import { cString, ErrorSlot, native, pinnedCopy } from "../../ffi/native.ts";
import { compareBytes, toHex } from "../util/bytes.ts";
import { assertEntrySize } from "./limits.ts";
import type { RocksDbEngine } from "./rocksdb_engine.ts";
import { COMPRESSION, type Compression } from "./rocksdb_options.ts";
import { type ColumnFamily, EngineClosedError } from "./types.ts";

const rocks = () => native().rocks;

/** An entry added to an SST file out of ascending key order. */
export class SstKeyOrderError extends Error {
  constructor(readonly path: string, readonly key: Uint8Array, readonly previous: Uint8Array) {
    super(
      `SST file ${path}: key ${hex(key)} is not after the previous key ${hex(previous)}; ` +
        `entries must be added in strictly ascending key order`,
    );
    this.name = "SstKeyOrderError";
  }
}

function hex(bytes: Uint8Array): string {
  const shown = bytes.length > 32 ? bytes.subarray(0, 32) : bytes;
  return `0x${toHex(shown)}${bytes.length > 32 ? `… (${bytes.length} bytes)` : ""}`;
}

/** Options of an SST file writer. */
export interface SstFileWriterOptions {
  /** Block compression; use the engine's (default lz4, as the engine's default). */
  compression?: Compression;
}

interface WriterHandles {
  writer: Deno.PointerObject;
  envOptions: Deno.PointerObject;
  options: Deno.PointerObject;
}

/**
 * Writes one SST file.
 *
 * @example
 * ```ts
 * using writer = SstFileWriter.open("/tmp/snap/default.sst");
 * writer.put(key1, value1); // key1 < key2
 * writer.put(key2, value2);
 * const sizeBytes = writer.finish();
 * ingestExternalFiles(engine, "default", ["/tmp/snap/default.sst"], { move: true });
 * ```
 */
export class SstFileWriter implements Disposable {
  #handles: WriterHandles | null;
  #finished = false;
  #lastKey: Uint8Array | null = null;
  #lastRangeEnd: Uint8Array | null = null;
  #entries = 0;
  readonly #error = new ErrorSlot();

  private constructor(readonly path: string, handles: WriterHandles) {
    this.#handles = handles;
  }

  /** Creates the file at `path` (replacing any file there) and returns its writer. */
  static open(path: string, settings: SstFileWriterOptions = {}): SstFileWriter {
    const r = rocks();
    const options = r.rocksdb_options_create()!;
    r.rocksdb_options_set_compression(options, COMPRESSION[settings.compression ?? "lz4"]);
    const envOptions = r.rocksdb_envoptions_create()!;
    const writer = r.rocksdb_sstfilewriter_create(envOptions, options)!;
    const sst = new SstFileWriter(path, { writer, envOptions, options });
    try {
      r.rocksdb_sstfilewriter_open(writer, cString(path), sst.#error.buffer);
      sst.#error.check(`open SST file ${path}`);
    } catch (error) {
      sst.destroy();
      throw error;
    }
    return sst;
  }

  /** Number of entries (puts, deletes, range deletions) added so far. */
  get entries(): number {
    return this.#entries;
  }

  #writable(): Deno.PointerObject {
    if (this.#handles === null) throw new EngineClosedError(`SST file writer for ${this.path}`);
    if (this.#finished) throw new Error(`SST file ${this.path} is already finished`);
    return this.#handles.writer;
  }

  #admitPointKey(key: Uint8Array): void {
    if (this.#lastKey !== null && compareBytes(key, this.#lastKey) <= 0) {
      throw new SstKeyOrderError(this.path, key, this.#lastKey);
    }
    this.#lastKey = key.slice();
    this.#entries++;
  }

  /** Adds `key` → `value`; `key` must sort after every point key added before. */
  put(key: Uint8Array, value: Uint8Array): void {
    assertEntrySize(key, value);
    const writer = this.#writable();
    this.#admitPointKey(key);
    rocks().rocksdb_sstfilewriter_put(
      writer,
      key,
      BigInt(key.length),
      value,
      BigInt(value.length),
      this.#error.buffer,
    );
    this.#error.check(`put into SST file ${this.path}`);
  }

  /** Adds a deletion of `key`; `key` must sort after every point key added before. */
  delete(key: Uint8Array): void {
    assertEntrySize(key);
    const writer = this.#writable();
    this.#admitPointKey(key);
    rocks().rocksdb_sstfilewriter_delete(writer, key, BigInt(key.length), this.#error.buffer);
    this.#error.check(`delete in SST file ${this.path}`);
  }

  /** Adds a deletion of [start, end); ranges must ascend and not overlap earlier ranges. */
  deleteRange(start: Uint8Array, end: Uint8Array): void {
    assertEntrySize(start);
    assertEntrySize(end);
    const writer = this.#writable();
    if (compareBytes(start, end) >= 0) {
      throw new Error(
        `SST file ${this.path}: delete range start ${hex(start)} is not before end ${hex(end)}`,
      );
    }
    if (this.#lastRangeEnd !== null && compareBytes(start, this.#lastRangeEnd) < 0) {
      throw new SstKeyOrderError(this.path, start, this.#lastRangeEnd);
    }
    this.#lastRangeEnd = end.slice();
    this.#entries++;
    rocks().rocksdb_sstfilewriter_delete_range(
      writer,
      start,
      BigInt(start.length),
      end,
      BigInt(end.length),
      this.#error.buffer,
    );
    this.#error.check(`delete range in SST file ${this.path}`);
  }

  /** Completes the file and returns its size in bytes. RocksDB refuses an empty file. */
  finish(): number {
    const writer = this.#writable();
    if (this.#entries === 0) {
      throw new Error(`SST file ${this.path}: cannot finish a file with no entries`);
    }
    rocks().rocksdb_sstfilewriter_finish(writer, this.#error.buffer);
    this.#error.check(`finish SST file ${this.path}`);
    this.#finished = true;
    const size = new BigUint64Array(1);
    rocks().rocksdb_sstfilewriter_file_size(writer, new Uint8Array(size.buffer));
    return Number(size[0]!);
  }

  /** Frees the writer. An unfinished file is left incomplete on disk; remove it. Idempotent. */
  destroy(): void {
    if (this.#handles === null) return;
    const { writer, envOptions, options } = this.#handles;
    this.#handles = null;
    const r = rocks();
    r.rocksdb_sstfilewriter_destroy(writer);
    r.rocksdb_envoptions_destroy(envOptions);
    r.rocksdb_options_destroy(options);
  }

  [Symbol.dispose](): void {
    this.destroy();
  }
}

/** Options of `ingestExternalFiles`. */
export interface IngestOptions {
  /** Move (hard-link) the files into the database instead of copying them (default false). */
  move?: boolean;
}

/**
 * Adds finished SST files to column family `cf` of `engine`. Their keys must not overlap each
 * other; entries in them shadow older entries of the same keys in the database.
 */
export function ingestExternalFiles(
  engine: RocksDbEngine,
  cf: ColumnFamily,
  paths: readonly string[],
  settings: IngestOptions = {},
): void {
  if (paths.length === 0) throw new Error("ingestExternalFiles: no files given");
  const handles = engine.nativeHandles();
  const cfHandle = handles.cf(cf);
  // The names are pinned: RocksDB reads them through the pointer array during the call.
  const names = paths.map((path) => pinnedCopy(cString(path)));
  const pointers = new BigUint64Array(
    names.map((name) => BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(name)))),
  );
  const r = rocks();
  const options = r.rocksdb_ingestexternalfileoptions_create()!;
  const error = new ErrorSlot();
  try {
    r.rocksdb_ingestexternalfileoptions_set_move_files(options, settings.move === true ? 1 : 0);
    r.rocksdb_ingest_external_file_cf(
      handles.db,
      cfHandle,
      new Uint8Array(pointers.buffer),
      BigInt(paths.length),
      options,
      error.buffer,
    );
    error.check(`ingest ${paths.join(", ")} into column family ${cf}`);
  } finally {
    r.rocksdb_ingestexternalfileoptions_destroy(options);
  }
}
