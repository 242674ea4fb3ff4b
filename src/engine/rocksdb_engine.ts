/**
 * The RocksDB implementation of `KvEngine`.
 *
 * One process opens the database once (`RocksDbEngine.open`); Web Workers attach to the same
 * native handle (`share()` → postMessage → `RocksDbEngine.attach`). Invariants:
 * - The owner cannot close while any Worker is attached or a durable write of any thread is in
 *   flight (counted in shared memory, since its native call runs on Deno's thread pool and
 *   outlives a terminated Worker): using a closed RocksDB handle is a use-after-free, so
 *   shutdown order is enforced here.
 * - Every native handle is freed exactly once; children (iterators, snapshots) are closed before
 *   the database.
 * - A directory that holds files but no RocksDB `CURRENT` file is refused, never written into.
 */
import { cString, ErrorSlot, native, RocksDbError, takeCString } from "../../ffi/native.ts";
import { assertEntrySize, assertRange } from "./limits.ts";
import { cfHandle, type ReaderContext, RocksReader, RocksSnapshot } from "./rocksdb_reader.ts";
import { buildOptions, type NativeOptions, type RocksDbOptions } from "./rocksdb_options.ts";
import { RocksWriteBatch } from "./rocksdb_write_batch.ts";
import {
  COLUMN_FAMILIES,
  type ColumnFamily,
  EngineClosedError,
  isColumnFamily,
  type KvEngine,
  type Snapshot,
  type WriteBatch,
} from "./types.ts";

export type { RocksDbOptions } from "./rocksdb_options.ts";

const rocks = () => native().rocks;

/** What a Worker needs to use a database opened by another thread of the same process. */
export interface SharedEngineHandle {
  path: string;
  db: bigint;
  columnFamilies: [ColumnFamily, bigint][];
  /**
   * Int32 counters shared by all threads: `[0]` engines attached, `[1]` durable writes in
   * flight in any thread (their native call runs on a thread of Deno's pool, and must end
   * before the owner may close the database), `[2]` non-zero while writes are fenced.
   */
  attached: SharedArrayBuffer;
}

/** The data directory is locked by another process. */
export class DataDirectoryLockedError extends Error {
  constructor(readonly path: string, detail: string) {
    super(
      `data directory ${path} is in use by another process (${detail}); ` +
        `stop that process or choose another data directory`,
    );
    this.name = "DataDirectoryLockedError";
  }
}

/** The directory holds files, but not a RocksDB database. */
export class NotADatabaseError extends Error {
  constructor(readonly path: string) {
    super(
      `${path} is not empty and holds no RocksDB database (no CURRENT file); ` +
        `refusing to write into it — choose an empty or new directory`,
    );
    this.name = "NotADatabaseError";
  }
}

class EngineState implements ReaderContext {
  closed = false;
  readonly children = new Set<{ close(): void }>();
  /** Handles of column families opened only because they exist (RocksDB requires it). */
  readonly unknownFamilies: Deno.PointerObject[] = [];
  constructor(
    readonly db: Deno.PointerObject,
    readonly columnFamilies: ReadonlyMap<ColumnFamily, Deno.PointerObject>,
  ) {}
  assertOpen(): void {
    if (this.closed) throw new EngineClosedError("engine");
  }
  register(child: { close(): void }): void {
    this.children.add(child);
  }
  unregister(child: { close(): void }): void {
    this.children.delete(child);
  }
}

/** Reports whether `path` holds an existing database; throws if it holds something else. */
function inspectDirectory(path: string): "new" | "existing" {
  let names: string[];
  try {
    names = [...Deno.readDirSync(path)].map((entry) => entry.name);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return "new";
    throw error;
  }
  if (names.length === 0) return "new";
  if (!names.includes("CURRENT")) throw new NotADatabaseError(path);
  return "existing";
}

function listColumnFamilies(options: Deno.PointerObject, path: string): string[] {
  const error = new ErrorSlot();
  const count = new BigUint64Array(1);
  const list = rocks().rocksdb_list_column_families(
    options,
    cString(path),
    new Uint8Array(count.buffer),
    error.buffer,
  );
  error.check(`list column families of ${path}`);
  const view = new Deno.UnsafePointerView(list!);
  const names: string[] = [];
  for (let i = 0; i < Number(count[0]); i++) {
    const name = Deno.UnsafePointer.create(view.getBigUint64(i * 8));
    names.push(Deno.UnsafePointerView.getCString(name!));
  }
  rocks().rocksdb_list_column_families_destroy(list, count[0]!);
  return names;
}

function describeOpenError(path: string, error: unknown): Error {
  if (!(error instanceof RocksDbError)) return error as Error;
  const text = error.rocksdbMessage;
  if (/LOCK/.test(text) && /(unavailable|No locks|lock hold)/i.test(text)) {
    return new DataDirectoryLockedError(path, text);
  }
  // A CURRENT that names a missing MANIFEST, or a MANIFEST that names a missing table file,
  // is reported as an IO error, but it is damage all the same.
  const missingFile = /No such file or directory.*(MANIFEST-|\.sst|\.ldb|\.log)/.test(text);
  if (/^Corruption/.test(text) || missingFile) {
    return new RocksDbError(
      `open ${path}`,
      `${text} — the database is damaged; restore it from a replica or backup, ` +
        `or try \`ldb --db=${path} repair\` on a copy`,
    );
  }
  return new RocksDbError(`open ${path}`, text);
}

function openNative(path: string, options: Deno.PointerObject): EngineState {
  let existing: string[] = [];
  try {
    if (inspectDirectory(path) === "existing") existing = listColumnFamilies(options, path);
  } catch (cause) {
    // Listing reads CURRENT and the MANIFEST first, so it is where most damage shows.
    throw describeOpenError(path, cause);
  }
  const names = [...new Set([...COLUMN_FAMILIES, ...existing])];
  const cNames = names.map(cString);
  const namePointers = new BigUint64Array(
    cNames.map((name) => BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(name)))),
  );
  const optionPointers = new BigUint64Array(names.length).fill(
    BigInt(Deno.UnsafePointer.value(options)),
  );
  const handles = new BigUint64Array(names.length);
  const error = new ErrorSlot();
  const db = rocks().rocksdb_open_column_families(
    options,
    cString(path),
    names.length,
    new Uint8Array(namePointers.buffer),
    new Uint8Array(optionPointers.buffer),
    new Uint8Array(handles.buffer),
    error.buffer,
  );
  try {
    error.check(`open ${path}`);
  } catch (cause) {
    throw describeOpenError(path, cause);
  }
  const map = new Map<ColumnFamily, Deno.PointerObject>();
  const unknown: Deno.PointerObject[] = [];
  names.forEach((name, i) => {
    const handle = Deno.UnsafePointer.create(handles[i]!)!;
    if (isColumnFamily(name)) map.set(name, handle);
    else unknown.push(handle);
  });
  const state = new EngineState(db!, map);
  state.unknownFamilies.push(...unknown);
  return state;
}

/** Indexes of the Int32 counters in `SharedEngineHandle.attached`. */
const ATTACHED = 0;
const DURABLE_IN_FLIGHT = 1;
/** Non-zero while the owner refuses writes for every thread (`fenceWrites`). */
const WRITES_FENCED = 2;
const SHARED_COUNTERS_BYTES = 12;

/** Writes are refused because the disk is (almost) full; see `RocksDbEngine.fenceWrites`. */
export class WritesFencedError extends Error {
  constructor(readonly path: string, operation: string) {
    super(
      `${operation}: the disk of ${path} is almost full, writes are refused ` +
        `(see the store's /health); they resume by themselves once space is freed`,
    );
    this.name = "WritesFencedError";
  }
}

/** The RocksDB engine of one store. */
export class RocksDbEngine extends RocksReader implements KvEngine {
  readonly #state: EngineState;
  readonly #owned: NativeOptions | null;
  readonly #attached: Int32Array;
  readonly #writeOptions: Deno.PointerObject;
  readonly #syncWriteOptions: Deno.PointerObject;
  #probeWriteOptions: Deno.PointerObject | null = null;
  #durableInFlight = 0;

  private constructor(
    state: EngineState,
    setup: { path: string; owned: NativeOptions | null; attached: SharedArrayBuffer },
  ) {
    super(state, rocks().rocksdb_readoptions_create()!);
    this.path = setup.path;
    this.#state = state;
    this.#owned = setup.owned;
    this.#attached = new Int32Array(setup.attached);
    const r = rocks();
    this.#writeOptions = r.rocksdb_writeoptions_create()!;
    this.#syncWriteOptions = r.rocksdb_writeoptions_create()!;
    r.rocksdb_writeoptions_set_sync(this.#syncWriteOptions, 1);
  }

  readonly path: string;

  /** Opens (creating if allowed) the database at `path` with Basalt's column families. */
  static open(path: string, settings: RocksDbOptions = {}): RocksDbEngine {
    native(); // A missing library is reported before anything is created on disk.
    if (settings.createIfMissing !== false) Deno.mkdirSync(path, { recursive: true });
    const owned = buildOptions(settings);
    let state: EngineState;
    try {
      state = openNative(path, owned.options);
    } catch (error) {
      owned.destroy();
      throw error;
    }
    return new RocksDbEngine(state, {
      path,
      owned,
      attached: new SharedArrayBuffer(SHARED_COUNTERS_BYTES),
    });
  }

  /** Uses a database opened by another thread of this process (see `share`). */
  /**
   * `options.obeyFence: false`: this attachment's writes pass the write fence (`fenceWrites`);
   * it still reads the fence (`writesFenced`) and refuses new work itself. A region worker
   * attaches so: every write of its raftstore is either a record the Raft log needs to stay
   * consistent (a vote, an entry already proposed, the apply of a committed one) or was
   * checked against the fence when it was proposed.
   */
  static attach(
    handle: SharedEngineHandle,
    options: { obeyFence?: boolean } = {},
  ): RocksDbEngine {
    const db = Deno.UnsafePointer.create(handle.db);
    if (db === null) throw new Error("attach: null database handle");
    const map = new Map<ColumnFamily, Deno.PointerObject>();
    for (const [cf, value] of handle.columnFamilies) map.set(cf, Deno.UnsafePointer.create(value)!);
    Atomics.add(new Int32Array(handle.attached), ATTACHED, 1);
    const engine = new RocksDbEngine(new EngineState(db, map), {
      path: handle.path,
      owned: null,
      attached: handle.attached,
    });
    engine.#obeyFence = options.obeyFence ?? true;
    return engine;
  }

  #obeyFence = true;

  /** A handle another thread passes to `attach`. The owner must outlive every attachment. */
  share(): SharedEngineHandle {
    this.#state.assertOpen();
    const value = (pointer: Deno.PointerObject) => BigInt(Deno.UnsafePointer.value(pointer));
    return {
      path: this.path,
      db: value(this.#state.db),
      columnFamilies: [...this.#state.columnFamilies].map(([cf, h]) => [cf, value(h)]),
      attached: this.#attached.buffer as SharedArrayBuffer,
    };
  }

  /**
   * Counts out one attachment whose thread ended without `close()` (a Worker that crashed or was
   * terminated). Only the owner may call it, and only for a thread that can no longer run.
   */
  forgetAttachment(): void {
    if (this.#owned === null) throw new Error("forgetAttachment: only the owner may call it");
    if (this.attachedCount <= 0) throw new Error("forgetAttachment: none attached");
    Atomics.sub(this.#attached, ATTACHED, 1);
  }

  /** Number of engines attached to this database from other threads. */
  get attachedCount(): number {
    return Atomics.load(this.#attached, ATTACHED);
  }

  /**
   * Refuses (or again accepts) writes in every thread attached to this database, before they
   * reach RocksDB. The store fences writes while its disk is almost full: RocksDB itself must
   * never meet a full disk, because Debian's librocksdb 7.8 is built with assertions on, and
   * its info-LOG writer aborts the process on the next line after a failed one (seen as
   * SIGABRT in `WritableFileWriter::AssertFalseAndGetStatusForPrevError`, called from
   * `SstFileManagerImpl::ClearError`). Only the owner may fence.
   */
  fenceWrites(fenced: boolean): void {
    if (this.#owned === null) throw new Error("fenceWrites: only the owner may call it");
    Atomics.store(this.#attached, WRITES_FENCED, fenced ? 1 : 0);
  }

  get writesFenced(): boolean {
    return Atomics.load(this.#attached, WRITES_FENCED) !== 0;
  }

  #assertWritable(operation: string): void {
    if (this.#obeyFence && Atomics.load(this.#attached, WRITES_FENCED) !== 0) {
      throw new WritesFencedError(this.path, operation);
    }
  }

  /** Durable writes of this engine whose native call has not returned. */
  get durableWritesInFlight(): number {
    return this.#durableInFlight;
  }

  /**
   * Durable writes in flight on this database from any thread. A thread that was terminated
   * during one never counts it out, so the database then never closes: the safe side.
   */
  get durableWritesInFlightAnywhere(): number {
    return Atomics.load(this.#attached, DURABLE_IN_FLIGHT);
  }

  get closed(): boolean {
    return this.#state.closed;
  }

  #cf(cf: ColumnFamily): Deno.PointerObject {
    this.#state.assertOpen();
    return cfHandle(this.#state, cf);
  }

  put(cf: ColumnFamily, key: Uint8Array, value: Uint8Array): void {
    assertEntrySize(key, value);
    this.#assertWritable("put");
    rocks().rocksdb_put_cf(
      this.#state.db,
      this.#writeOptions,
      this.#cf(cf),
      key,
      BigInt(key.length),
      value,
      BigInt(value.length),
      this.error.buffer,
    );
    this.error.check("put");
  }

  delete(cf: ColumnFamily, key: Uint8Array): void {
    assertEntrySize(key);
    this.#assertWritable("delete");
    const handle = this.#cf(cf);
    rocks().rocksdb_delete_cf(
      this.#state.db,
      this.#writeOptions,
      handle,
      key,
      BigInt(key.length),
      this.error.buffer,
    );
    this.error.check("delete");
  }

  singleDelete(cf: ColumnFamily, key: Uint8Array): void {
    assertEntrySize(key);
    this.#assertWritable("singleDelete");
    const handle = this.#cf(cf);
    rocks().rocksdb_singledelete_cf(
      this.#state.db,
      this.#writeOptions,
      handle,
      key,
      BigInt(key.length),
      this.error.buffer,
    );
    this.error.check("singleDelete");
  }

  deleteRange(cf: ColumnFamily, start: Uint8Array, end: Uint8Array): void {
    assertRange(start, end);
    this.#assertWritable("deleteRange");
    rocks().rocksdb_delete_range_cf(
      this.#state.db,
      this.#writeOptions,
      this.#cf(cf),
      start,
      BigInt(start.length),
      end,
      BigInt(end.length),
      this.error.buffer,
    );
    this.error.check("deleteRange");
  }

  newWriteBatch(): RocksWriteBatch {
    this.#state.assertOpen();
    return new RocksWriteBatch(this.#state);
  }

  write(batch: WriteBatch): void {
    this.#state.assertOpen();
    this.#assertWritable("write");
    const native = (batch as RocksWriteBatch).pointer();
    rocks().rocksdb_write(this.#state.db, this.#writeOptions, native, this.error.buffer);
    this.error.check("write");
  }

  async writeDurable(batch: WriteBatch): Promise<void> {
    this.#state.assertOpen();
    this.#assertWritable("write (sync)");
    const rocksBatch = batch as RocksWriteBatch;
    const pointer = rocksBatch.pointer();
    const error = new ErrorSlot();
    rocksBatch.inFlight = true;
    try {
      await this.#durableCall(() =>
        rocks().rocksdb_write_nonblocking(
          this.#state.db,
          this.#syncWriteOptions,
          pointer,
          error.buffer,
        )
      );
    } finally {
      rocksBatch.inFlight = false;
    }
    error.check("write (sync)");
  }

  /** `KvEngine.syncWal`: RocksDB's FlushWAL(sync), its fsync off the thread. */
  async syncWal(): Promise<void> {
    this.#state.assertOpen();
    const error = new ErrorSlot();
    await this.#durableCall(() =>
      rocks().rocksdb_flush_wal_nonblocking(this.#state.db, 1, error.buffer)
    );
    error.check("sync WAL");
  }

  /**
   * Runs a nonblocking native call that fsyncs, counted in `durableWritesInFlight` (and across
   * threads) until it returns: the engine is not closed while it runs.
   */
  async #durableCall(call: () => Promise<void>): Promise<void> {
    this.#durableInFlight++;
    Atomics.add(this.#attached, DURABLE_IN_FLIGHT, 1);
    try {
      await call();
    } finally {
      Atomics.sub(this.#attached, DURABLE_IN_FLIGHT, 1);
      this.#durableInFlight--;
    }
  }

  /**
   * Whether the database accepts writes now: null if it does, else RocksDB's reason. A
   * background error (a flush that hit "No space left on device") stops every write until
   * RocksDB recovers from it; this meets the same check as any write by writing an empty batch
   * without the WAL, which changes nothing.
   */
  writeProbe(): string | null {
    this.#state.assertOpen();
    const r = rocks();
    if (this.#probeWriteOptions === null) {
      this.#probeWriteOptions = r.rocksdb_writeoptions_create()!;
      r.rocksdb_writeoptions_disable_WAL(this.#probeWriteOptions, 1);
    }
    const batch = r.rocksdb_writebatch_create()!;
    try {
      r.rocksdb_write(this.#state.db, this.#probeWriteOptions, batch, this.error.buffer);
      this.error.check("write probe");
      return null;
    } catch (error) {
      if (!(error instanceof RocksDbError)) throw error;
      return error.rocksdbMessage;
    } finally {
      r.rocksdb_writebatch_destroy(batch);
    }
  }

  snapshot(): Snapshot {
    this.#state.assertOpen();
    return new RocksSnapshot(this.#state, rocks().rocksdb_create_snapshot(this.#state.db)!);
  }

  flush(cf?: ColumnFamily): void {
    this.#state.assertOpen();
    const r = rocks();
    const options = r.rocksdb_flushoptions_create()!;
    r.rocksdb_flushoptions_set_wait(options, 1);
    try {
      for (const name of cf === undefined ? COLUMN_FAMILIES : [cf]) {
        r.rocksdb_flush_cf(this.#state.db, options, this.#cf(name), this.error.buffer);
        this.error.check(`flush ${name}`);
      }
    } finally {
      r.rocksdb_flushoptions_destroy(options);
    }
  }

  compactRange(cf: ColumnFamily, start?: Uint8Array, end?: Uint8Array): void {
    rocks().rocksdb_compact_range_cf(
      this.#state.db,
      this.#cf(cf),
      start ?? null,
      BigInt(start?.length ?? 0),
      end ?? null,
      BigInt(end?.length ?? 0),
    );
  }

  property(cf: ColumnFamily, name: string): string | null {
    const handle = this.#cf(cf);
    return takeCString(rocks().rocksdb_property_value_cf(this.#state.db, handle, cString(name)));
  }

  /** Writes a consistent copy of the database into `directory` (which must not exist). */
  checkpoint(directory: string): void {
    this.#state.assertOpen();
    const r = rocks();
    const checkpoint = r.rocksdb_checkpoint_object_create(this.#state.db, this.error.buffer);
    this.error.check("checkpoint");
    try {
      r.rocksdb_checkpoint_create(checkpoint, cString(directory), 0n, this.error.buffer);
      this.error.check(`checkpoint into ${directory}`);
    } finally {
      r.rocksdb_checkpoint_object_destroy(checkpoint);
    }
  }

  /** Bytes currently held by the block cache. */
  blockCacheUsageBytes(): number {
    if (this.#owned === null) return 0;
    return Number(rocks().rocksdb_cache_get_usage(this.#owned.cache));
  }

  /** The native database handle, for the SST ingestion module. */
  nativeHandles(): { db: Deno.PointerObject; cf(cf: ColumnFamily): Deno.PointerObject } {
    return { db: this.#state.db, cf: (cf) => this.#cf(cf) };
  }

  /**
   * Ends an attachment whose work stopped while its thread lives on: a region worker's body
   * halted for a bug on the main thread (`store-pool-size = 0`, inline_worker.ts). Every later
   * call on it throws EngineClosedError and its snapshots and iterators are released; it is not
   * counted out — the owner does that (`forgetAttachment`), as for a terminated thread. A
   * durable write already inside its native call completes: its write options are kept (a few
   * bytes, once per bug) so that it never meets freed memory.
   */
  abandon(): void {
    if (this.#owned !== null) throw new Error("abandon: only an attachment may be abandoned");
    if (this.#state.closed) return;
    for (const child of [...this.#state.children]) child.close();
    this.#state.closed = true;
  }

  close(): void {
    if (this.#state.closed) return;
    if (this.#durableInFlight > 0) {
      throw new Error(`close: ${this.#durableInFlight} durable writes still in flight`);
    }
    if (this.#owned !== null && this.attachedCount > 0) {
      throw new Error(`close: ${this.attachedCount} workers are still attached to ${this.path}`);
    }
    if (this.#owned !== null && this.durableWritesInFlightAnywhere > 0) {
      throw new Error(
        `close: ${this.durableWritesInFlightAnywhere} durable writes of other threads are ` +
          `still in flight on ${this.path}`,
      );
    }
    for (const child of [...this.#state.children]) child.close();
    this.#state.closed = true;
    const r = rocks();
    r.rocksdb_readoptions_destroy(this.readOptions);
    r.rocksdb_writeoptions_destroy(this.#writeOptions);
    r.rocksdb_writeoptions_destroy(this.#syncWriteOptions);
    if (this.#probeWriteOptions !== null) r.rocksdb_writeoptions_destroy(this.#probeWriteOptions);
    if (this.#owned === null) {
      Atomics.sub(this.#attached, ATTACHED, 1);
      return;
    }
    for (const handle of [...this.#state.columnFamilies.values(), ...this.#state.unknownFamilies]) {
      r.rocksdb_column_family_handle_destroy(handle);
    }
    r.rocksdb_close(this.#state.db);
    this.#owned.destroy();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
