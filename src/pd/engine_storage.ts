/**
 * `PdStorage` on a `KvEngine`: every key of PD's layout (see `storage.ts`) is stored under a
 * prefix in one column family, so PD may share an engine with a store's data when the prefix
 * lies outside the store's keys, or own one (a PD process: `<data-dir>/pd/`).
 *
 * Durability: `write` uses the engine's `write`, which survives a crash of the process (the
 * write-ahead log is written before it returns) but not of the machine. `sync()` makes every
 * write so far survive a machine crash too, by a durable write of a marker key (one fsync of
 * the log covers everything written before it); the edge awaits it before answering a request
 * that wrote, as PD answers only after etcd has committed. `needsSync` says whether it must.
 *
 * Imports only the engine's interface, never an implementation, and no `Deno.*`.
 *
 * @module
 */
import type { ColumnFamily, KvEngine } from "../engine/types.ts";
import type { PdStorage, PdWrite } from "./storage.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Where PD's keys go in the engine. */
export interface EngineStorageOptions {
  engine: KvEngine;
  /** Default `"default"`. */
  cf?: ColumnFamily;
  /** Prepended to every key; default `"pd/"`. */
  prefix?: string;
}

/** The key whose durable write is the fsync barrier of `sync()`; never a PD key, never scanned. */
const SYNC_MARKER = "\u0000sync_marker";

/** `PdStorage` over a `KvEngine`. */
export class EngineStorage implements PdStorage {
  readonly #engine: KvEngine;
  readonly #cf: ColumnFamily;
  readonly #prefix: string;
  #needsSync = false;

  constructor(options: EngineStorageOptions) {
    this.#engine = options.engine;
    this.#cf = options.cf ?? "default";
    this.#prefix = options.prefix ?? "pd/";
    if (this.#prefix.length === 0) throw new RangeError("EngineStorage needs a non-empty prefix");
  }

  /** Whether a write happened since the last `sync()`. */
  get needsSync(): boolean {
    return this.#needsSync;
  }

  get(key: string): string | null {
    const value = this.#engine.get(this.#cf, encoder.encode(this.#prefix + key));
    return value === null ? null : decoder.decode(value);
  }

  scan(prefix: string): Array<[string, string]> {
    const lower = encoder.encode(this.#prefix + prefix);
    const upper = prefixEnd(lower);
    const out: Array<[string, string]> = [];
    using iterator = this.#engine.iterator(this.#cf, { lowerBound: lower, upperBound: upper });
    for (iterator.seek(lower); iterator.valid(); iterator.next()) {
      const key = decoder.decode(iterator.key()).slice(this.#prefix.length);
      if (key !== SYNC_MARKER) out.push([key, decoder.decode(iterator.value())]);
    }
    return out;
  }

  write(batch: readonly PdWrite[]): void {
    if (batch.length === 0) return;
    using writeBatch = this.#engine.newWriteBatch();
    for (const op of batch) {
      const key = encoder.encode(this.#prefix + op.key);
      if (op.kind === "put") writeBatch.put(this.#cf, key, encoder.encode(op.value));
      else writeBatch.delete(this.#cf, key);
    }
    this.#engine.write(writeBatch);
    this.#needsSync = true;
  }

  /** Makes every write so far survive a machine crash (one fsync of the engine's log). */
  async sync(): Promise<void> {
    this.#needsSync = false;
    using writeBatch = this.#engine.newWriteBatch();
    writeBatch.put(this.#cf, encoder.encode(this.#prefix + SYNC_MARKER), new Uint8Array(0));
    await this.#engine.writeDurable(writeBatch);
  }
}

/** The smallest key above every key starting with `prefix` (the prefix is never all 0xff). */
function prefixEnd(prefix: Uint8Array): Uint8Array {
  const end = prefix.slice();
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i] = end[i]! + 1;
      return end.slice(0, i + 1);
    }
  }
  throw new RangeError("a PD storage prefix must not be all 0xff bytes");
}
