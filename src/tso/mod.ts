/**
 * The timestamp oracle: TiKV-format timestamps (`physical_ms << 18 | logical`) that never go
 * backwards, over an injected clock and a durable saved bound (PD's window scheme), plus the
 * file-backed durable cell it and PD's other allocators persist through.
 *
 * @example
 * ```ts
 * import { FileValueStore, TimestampOracle } from "./mod.ts";
 * const oracle = TimestampOracle.open({
 *   clock: { nowMs: () => Date.now() },
 *   store: new FileValueStore("data/pd/tso", { format: "basalt-tso", field: "boundMs" }),
 * });
 * oracle.next(10).last; // the largest of ten fresh timestamps
 * ```
 *
 * @module
 */
export * from "./constants.ts";
export type { Clock, LogFields, ValueStore, WarnLog } from "./types.ts";
export {
  composeTimestamp,
  TimestampOracle,
  type TsoBatch,
  TsoError,
  type TsoOptions,
} from "./oracle.ts";
export {
  CorruptFileError,
  parseU64Field,
  readRecordFile,
  syncDirectory,
  writeRecordFile,
} from "./durable_file.ts";
export { FileValueStore, type FileValueStoreOptions } from "./file_value_store.ts";
export { MemoryValueStore } from "./memory_value_store.ts";
