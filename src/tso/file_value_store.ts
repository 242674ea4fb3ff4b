/**
 * A `ValueStore` kept in one record file (see `durable_file.ts`): the TSO's saved bound at
 * `<data-dir>/pd/tso`, the id allocator's window at `<data-dir>/pd/ids`, and so on.
 */
import { parseU64Field, readRecordFile, writeRecordFile } from "./durable_file.ts";
import type { ValueStore } from "./types.ts";

/** Where and how one u64 is kept. */
export interface FileValueStoreOptions {
  /** The record's format name, checked on every read (e.g. `"basalt-tso"`). */
  format: string;
  /** The field holding the value (e.g. `"boundMs"`). */
  field: string;
}

/** One durable u64 in a record file. `load()` throws `CorruptFileError` for a damaged file. */
export class FileValueStore implements ValueStore {
  constructor(readonly path: string, readonly options: FileValueStoreOptions) {}

  load(): bigint | null {
    const fields = readRecordFile(this.path, this.options.format);
    if (fields === null) return null;
    return parseU64Field(this.path, fields, this.options.field);
  }

  /** The file's modification time: the host's clock when the value was last saved. */
  savedAtMs(): number | null {
    try {
      return Deno.statSync(this.path).mtime?.getTime() ?? null;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return null;
      throw error;
    }
  }

  save(value: bigint): void {
    if (value < 0n || value >= 1n << 64n) throw new RangeError(`not a u64: ${value}`);
    writeRecordFile(this.path, {
      format: this.options.format,
      fields: { [this.options.field]: value.toString() },
    });
  }
}
