/**
 * `PdStorage` (src/pd/storage.ts) over a standalone store's record files under
 * `<data-dir>/pd/`: the files standalone stores have always kept stay where and what they are,
 * so an existing data directory opens unchanged, and the rest of PD's state (cluster meta,
 * stores, regions, service safe points) lives in one more record file, `pd/meta`.
 *
 * | PD key          | file               | format                                         |
 * | --------------- | ------------------ | ---------------------------------------------- |
 * | `cluster_id`    | `pd/cluster`       | `basalt-pd-cluster` (read only: written by `openStandalonePd`) |
 * | `tso`           | `pd/tso`           | `basalt-pd-tso`, field `boundMs`               |
 * | `alloc_id`      | `pd/ids`           | `basalt-pd-ids`, field `end`                   |
 * | `gc/safe_point` | `pd/gc_safe_point` | `basalt-pd-gc-safe-point`, field `safePoint`   |
 * | every other key | `pd/meta`          | `basalt-pd-meta`, one field per key            |
 *
 * Atomicity: every file is replaced atomically and durably (`durable_file.ts`). The core writes
 * the single-value keys alone, one per batch; a batch of `pd/meta` keys is one file
 * replacement. A batch mixing them would not be atomic, and is refused as a bug.
 *
 * @module
 */
import { FileValueStore, readRecordFile, writeRecordFile } from "../../tso/mod.ts";
import { PD_KEYS, type PdStorage, type PdWrite } from "../../pd/storage.ts";
import { assert } from "../../util/assert.ts";

/** The record format of `<data-dir>/pd/meta`. */
export const META_FILE_FORMAT = "basalt-pd-meta";

/** The single-value files and the PD keys they hold. */
export const VALUE_FILES = {
  [PD_KEYS.tso]: { name: "tso", format: "basalt-pd-tso", field: "boundMs" },
  [PD_KEYS.allocId]: { name: "ids", format: "basalt-pd-ids", field: "end" },
  [PD_KEYS.gcSafePoint]: {
    name: "gc_safe_point",
    format: "basalt-pd-gc-safe-point",
    field: "safePoint",
  },
} as const;

type ValueKey = keyof typeof VALUE_FILES;

function isValueKey(key: string): key is ValueKey {
  return Object.hasOwn(VALUE_FILES, key);
}

/** PD's state in the record files of `dir` (`<data-dir>/pd`). */
export class RecordFileStorage implements PdStorage {
  readonly #dir: string;
  readonly #clusterId: bigint;
  readonly #values = new Map<ValueKey, FileValueStore>();
  /** `pd/meta`'s fields, kept in memory, in key order when scanned. */
  readonly #meta: Map<string, string>;

  /** Opens the files of `dir`; `clusterId` is the one `pd/cluster` holds. */
  constructor(dir: string, clusterId: bigint) {
    this.#dir = dir;
    this.#clusterId = clusterId;
    for (const [key, file] of Object.entries(VALUE_FILES)) {
      this.#values.set(
        key as ValueKey,
        new FileValueStore(`${dir}/${file.name}`, { format: file.format, field: file.field }),
      );
    }
    const fields = readRecordFile(this.metaPath, META_FILE_FORMAT) ?? {};
    this.#meta = new Map(Object.entries(fields));
  }

  get metaPath(): string {
    return `${this.#dir}/meta`;
  }

  /** The `ValueStore` of a single-value key (the TSO keeps its file's save time through it). */
  valueStore(key: ValueKey): FileValueStore {
    return this.#values.get(key)!;
  }

  get(key: string): string | null {
    if (key === PD_KEYS.clusterId) return this.#clusterId.toString();
    if (isValueKey(key)) return this.valueStore(key).load()?.toString() ?? null;
    return this.#meta.get(key) ?? null;
  }

  scan(prefix: string): Array<[string, string]> {
    return [...this.#meta].filter(([key]) => key.startsWith(prefix)).sort(([a], [b]) =>
      a < b ? -1 : a > b ? 1 : 0
    );
  }

  write(batch: readonly PdWrite[]): void {
    if (batch.length === 0) return;
    const single = batch.find((op) => op.key === PD_KEYS.clusterId || isValueKey(op.key));
    if (single !== undefined) {
      if (batch.length !== 1 || single.kind !== "put" || single.key === PD_KEYS.clusterId) {
        assert(false, "standalone PD storage writes a single-value key alone, as a put", {
          key: single.key,
          kind: single.kind,
          batchLength: batch.length,
        });
      }
      this.valueStore(single.key as ValueKey).save(BigInt(single.value));
      return;
    }
    const next = new Map(this.#meta);
    for (const op of batch) {
      if (op.kind === "put") next.set(op.key, op.value);
      else next.delete(op.key);
    }
    writeRecordFile(this.metaPath, { format: META_FILE_FORMAT, fields: Object.fromEntries(next) });
    this.#meta.clear();
    for (const [key, value] of next) this.#meta.set(key, value);
  }
}
