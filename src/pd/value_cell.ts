/**
 * One u64 of `PdStorage` as the `ValueStore` the timestamp oracle (src/tso) persists its window
 * through, so PD's TSO is the store's oracle, unchanged, with its bound kept beside the rest of
 * PD's state (key `tso`).
 *
 * @module
 */
import type { ValueStore } from "../tso/types.ts";
import { loadU64, type PdStorage, putU64 } from "./storage.ts";

/** The u64 at `key` of `storage`, as a `ValueStore`. */
export function storageCell(storage: PdStorage, key: string): ValueStore {
  return {
    load: () => loadU64(storage, key),
    save: (value: bigint) => storage.write([putU64(key, value)]),
  };
}
