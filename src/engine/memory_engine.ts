/**
 * An ordered in-memory `KvEngine` with the RocksDB engine's semantics, for unit tests and the
 * deterministic simulator. The conformance suite holds it to the same behaviour as RocksDB.
 *
 * Each column family is a sorted pair of arrays. Snapshots and iterators share the arrays they
 * capture; a write to a shared table copies it first (copy-on-write), so a captured view never
 * changes. Stored keys and values are private copies: callers may reuse their buffers.
 */
import { compareBytes } from "../util/bytes.ts";
import { assertEntrySize, assertRange } from "./limits.ts";
import {
  COLUMN_FAMILIES,
  type ColumnFamily,
  EngineClosedError,
  type EngineIterator,
  type IterOptions,
  type KvEngine,
  type Readable,
  type Snapshot,
  type WriteBatch,
} from "./types.ts";

interface Table {
  keys: Uint8Array[];
  values: Uint8Array[];
  /** Set once a snapshot or iterator holds the table: the next write must copy it. */
  shared: boolean;
}

/** First index whose key is >= `key`. */
function lowerBound(keys: readonly Uint8Array[], key: Uint8Array): number {
  let low = 0;
  let high = keys.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (compareBytes(keys[middle]!, key) < 0) low = middle + 1;
    else high = middle;
  }
  return low;
}

function putEntry(table: Table, key: Uint8Array, value: Uint8Array): void {
  const index = lowerBound(table.keys, key);
  const found = table.keys[index];
  if (found !== undefined && compareBytes(found, key) === 0) {
    table.values[index] = value;
  } else {
    table.keys.splice(index, 0, key);
    table.values.splice(index, 0, value);
  }
}

function removeEntry(table: Table, key: Uint8Array): void {
  const index = lowerBound(table.keys, key);
  const found = table.keys[index];
  if (found === undefined || compareBytes(found, key) !== 0) return;
  table.keys.splice(index, 1);
  table.values.splice(index, 1);
}

function removeRange(table: Table, start: Uint8Array, end: Uint8Array): void {
  const first = lowerBound(table.keys, start);
  const count = lowerBound(table.keys, end) - first;
  table.keys.splice(first, count);
  table.values.splice(first, count);
}

type Operation =
  | { kind: "put"; cf: ColumnFamily; key: Uint8Array; value: Uint8Array }
  | { kind: "delete"; cf: ColumnFamily; key: Uint8Array }
  | { kind: "deleteRange"; cf: ColumnFamily; start: Uint8Array; end: Uint8Array };

function tableOf(tables: ReadonlyMap<ColumnFamily, Table>, cf: ColumnFamily): Table {
  const table = tables.get(cf);
  if (table === undefined) throw new Error(`unknown column family "${cf}"`);
  return table;
}

/** Point reads over a fixed set of tables. */
class TableReader implements Readable {
  constructor(
    protected readonly tableOf: (cf: ColumnFamily) => Table,
    protected readonly assertOpen: () => void,
  ) {}

  get(cf: ColumnFamily, key: Uint8Array): Uint8Array | null {
    this.assertOpen();
    const table = this.tableOf(cf);
    const index = lowerBound(table.keys, key);
    const found = table.keys[index];
    if (found === undefined || compareBytes(found, key) !== 0) return null;
    return table.values[index]!.slice();
  }

  multiGet(cf: ColumnFamily, keys: readonly Uint8Array[]): (Uint8Array | null)[] {
    return keys.map((key) => this.get(cf, key));
  }

  iterator(cf: ColumnFamily, options: IterOptions = {}): EngineIterator {
    this.assertOpen();
    const table = this.tableOf(cf);
    table.shared = true;
    return new MemoryIterator(table, options, this.assertOpen);
  }
}

/** The in-memory engine. */
export class MemoryEngine extends TableReader implements KvEngine {
  readonly #state: { closed: boolean; tables: Map<ColumnFamily, Table> };

  constructor() {
    const state = { closed: false, tables: new Map<ColumnFamily, Table>() };
    super((cf) => tableOf(state.tables, cf), () => {
      if (state.closed) throw new EngineClosedError("engine");
    });
    this.#state = state;
    for (const cf of COLUMN_FAMILIES) state.tables.set(cf, { keys: [], values: [], shared: false });
  }

  /** The table of `cf`, copied first if a reader holds it. */
  #writable(cf: ColumnFamily): Table {
    const table = tableOf(this.#state.tables, cf);
    if (!table.shared) return table;
    const copy = { keys: table.keys.slice(), values: table.values.slice(), shared: false };
    this.#state.tables.set(cf, copy);
    return copy;
  }

  get closed(): boolean {
    return this.#state.closed;
  }

  /** Applies operations in order; synchronous, so no reader sees part of them. */
  apply(operations: readonly Operation[]): void {
    this.assertOpen();
    for (const operation of operations) {
      const table = this.#writable(operation.cf);
      if (operation.kind === "put") putEntry(table, operation.key, operation.value);
      else if (operation.kind === "delete") removeEntry(table, operation.key);
      else removeRange(table, operation.start, operation.end);
    }
  }

  put(cf: ColumnFamily, key: Uint8Array, value: Uint8Array): void {
    const batch = new MemoryWriteBatch();
    batch.put(cf, key, value);
    this.apply(batch.operations);
  }

  delete(cf: ColumnFamily, key: Uint8Array): void {
    const batch = new MemoryWriteBatch();
    batch.delete(cf, key);
    this.apply(batch.operations);
  }

  singleDelete(cf: ColumnFamily, key: Uint8Array): void {
    this.delete(cf, key);
  }

  deleteRange(cf: ColumnFamily, start: Uint8Array, end: Uint8Array): void {
    const batch = new MemoryWriteBatch();
    batch.deleteRange(cf, start, end);
    this.apply(batch.operations);
  }

  newWriteBatch(): MemoryWriteBatch {
    this.assertOpen();
    return new MemoryWriteBatch();
  }

  write(batch: WriteBatch): void {
    this.apply((batch as MemoryWriteBatch).operations);
  }

  writeDurable(batch: WriteBatch): Promise<void> {
    try {
      this.write(batch);
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  syncWal(): Promise<void> {
    try {
      this.assertOpen();
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  snapshot(): Snapshot {
    this.assertOpen();
    const captured = new Map<ColumnFamily, Table>();
    for (const [cf, table] of this.#state.tables) {
      table.shared = true;
      captured.set(cf, table);
    }
    return new MemorySnapshot(captured, this.assertOpen);
  }

  flush(_cf?: ColumnFamily): void {
    this.assertOpen();
  }

  compactRange(_cf: ColumnFamily, _start?: Uint8Array, _end?: Uint8Array): void {
    this.assertOpen();
  }

  property(cf: ColumnFamily, name: string): string | null {
    this.assertOpen();
    if (name === "rocksdb.estimate-num-keys") {
      return String(tableOf(this.#state.tables, cf).keys.length);
    }
    return null;
  }

  close(): void {
    this.#state.closed = true;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

class MemorySnapshot extends TableReader implements Snapshot {
  readonly #state: { released: boolean };

  constructor(tables: ReadonlyMap<ColumnFamily, Table>, engineOpen: () => void) {
    const state = { released: false };
    super((cf) => tableOf(tables, cf), () => {
      if (state.released) throw new EngineClosedError("snapshot");
      engineOpen();
    });
    this.#state = state;
  }

  release(): void {
    this.#state.released = true;
  }

  [Symbol.dispose](): void {
    this.release();
  }
}

/** Buffered operations; keys and values are copied when added. */
export class MemoryWriteBatch implements WriteBatch {
  operations: Operation[] = [];
  #sizeBytes = 0;
  #destroyed = false;

  #check(): void {
    if (this.#destroyed) throw new EngineClosedError("write batch");
  }

  put(cf: ColumnFamily, key: Uint8Array, value: Uint8Array): void {
    this.#check();
    assertEntrySize(key, value);
    this.operations.push({ kind: "put", cf, key: key.slice(), value: value.slice() });
    this.#sizeBytes += key.length + value.length + 8;
  }

  delete(cf: ColumnFamily, key: Uint8Array): void {
    this.#check();
    assertEntrySize(key);
    this.operations.push({ kind: "delete", cf, key: key.slice() });
    this.#sizeBytes += key.length + 8;
  }

  singleDelete(cf: ColumnFamily, key: Uint8Array): void {
    this.delete(cf, key);
  }

  deleteRange(cf: ColumnFamily, start: Uint8Array, end: Uint8Array): void {
    this.#check();
    assertRange(start, end);
    this.operations.push({ kind: "deleteRange", cf, start: start.slice(), end: end.slice() });
    this.#sizeBytes += start.length + end.length + 8;
  }

  get count(): number {
    this.#check();
    return this.operations.length;
  }

  get dataSizeBytes(): number {
    this.#check();
    return this.#sizeBytes;
  }

  clear(): void {
    this.#check();
    this.operations = [];
    this.#sizeBytes = 0;
  }

  destroy(): void {
    this.#destroyed = true;
    this.operations = [];
  }

  [Symbol.dispose](): void {
    this.destroy();
  }
}

/** An iterator over a captured (never changing) table, honouring bounds. */
class MemoryIterator implements EngineIterator {
  #index = -1;
  #closed = false;
  readonly #first: number;
  /** One past the last index inside the upper bound. */
  readonly #end: number;

  constructor(
    private readonly table: Table,
    options: IterOptions,
    private readonly engineOpen: () => void,
  ) {
    this.#first = options.lowerBound === undefined ? 0 : lowerBound(table.keys, options.lowerBound);
    this.#end = options.upperBound === undefined
      ? table.keys.length
      : lowerBound(table.keys, options.upperBound);
  }

  #open(): void {
    if (this.#closed) throw new EngineClosedError("iterator");
    this.engineOpen();
  }

  #place(index: number): boolean {
    this.#index = index >= this.#first && index < this.#end ? index : -1;
    return this.#index !== -1;
  }

  seek(key: Uint8Array): void {
    this.#open();
    this.#place(Math.max(this.#first, lowerBound(this.table.keys, key)));
  }

  seekForPrev(key: Uint8Array): void {
    this.#open();
    const index = lowerBound(this.table.keys, key);
    const exact = this.table.keys[index] !== undefined &&
      compareBytes(this.table.keys[index]!, key) === 0;
    this.#place(Math.min(this.#end - 1, exact ? index : index - 1));
  }

  seekToFirst(): void {
    this.#open();
    this.#place(this.#first);
  }

  seekToLast(): void {
    this.#open();
    this.#place(this.#end - 1);
  }

  next(): boolean {
    this.#positioned();
    return this.#place(this.#index + 1);
  }

  prev(): boolean {
    this.#positioned();
    return this.#place(this.#index - 1);
  }

  valid(): boolean {
    this.#open();
    return this.#index !== -1;
  }

  #positioned(): number {
    this.#open();
    if (this.#index === -1) throw new Error("iterator is not positioned on an entry");
    return this.#index;
  }

  key(): Uint8Array {
    return this.table.keys[this.#positioned()]!;
  }

  value(): Uint8Array {
    return this.table.values[this.#positioned()]!;
  }

  close(): void {
    this.#closed = true;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
