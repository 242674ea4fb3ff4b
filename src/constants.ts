/**
 * Every bound of Basalt in one place: sizes, queue lengths, batch sizes, retry counts. Relations
 * between them are asserted when this module loads, so an inconsistent edit fails at start-up.
 */

/** Largest key the storage engine accepts (an encoded key: user key + MVCC suffix). */
export const ENGINE_MAX_KEY_BYTES = 64 * 1024;
/** Largest value the storage engine accepts in one write. */
export const ENGINE_MAX_VALUE_BYTES = 256 * 1024 * 1024;

/** Largest user key the API accepts (TiKV's `max-key-size` default). */
export const MAX_KEY_BYTES = 8 * 1024;
/** Largest key + value of one entry the API accepts (TiKV's `raft-entry-max-size` default). */
export const MAX_ENTRY_BYTES = 8 * 1024 * 1024;

/** Default RocksDB block cache for a store. */
export const DEFAULT_BLOCK_CACHE_BYTES = 256 * 1024 * 1024;
/** Default memtable size per column family. */
export const DEFAULT_WRITE_BUFFER_BYTES = 64 * 1024 * 1024;
/** Default RocksDB background jobs (flushes + compactions). */
export const DEFAULT_MAX_BACKGROUND_JOBS = 2;
/** Default bloom filter bits per key. */
export const DEFAULT_BLOOM_BITS_PER_KEY = 10;

function assertConstant(condition: boolean, what: string): void {
  if (!condition) throw new Error(`constants.ts: ${what}`);
}

assertConstant(MAX_KEY_BYTES + 32 <= ENGINE_MAX_KEY_BYTES, "API keys must fit engine keys");
assertConstant(MAX_ENTRY_BYTES <= ENGINE_MAX_VALUE_BYTES, "API entries must fit engine values");

// ---------------------------------------------------------------------------------------------
// Server (src/server/).

/** Largest gRPC message the server receives or sends. */
export const GRPC_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
/** Most keys (or pairs) in one raw batch request. */
export const RAW_BATCH_MAX_KEYS = 64 * 1024;
/** Most pairs one raw scan returns; a larger `limit` is clamped to it. */
export const RAW_SCAN_MAX_LIMIT = 64 * 1024;
/** Most ranges in one RawBatchScan or RawChecksum request. */
export const RAW_MAX_RANGES = 1024;
/** Most sub-requests in one BatchCommands stream message. */
export const BATCH_COMMANDS_MAX_REQUESTS = 4096;
/** Longest a BatchCommands `Empty` sub-request may ask the server to wait. */
export const BATCH_COMMANDS_MAX_DELAY_MS = 10_000;
/** How long a shutdown waits for in-flight requests before closing anyway. */
export const SHUTDOWN_DRAIN_MS = 10_000;
/** Size at which `--log-file` is rotated to `<file>.1`. */
export const LOG_FILE_MAX_BYTES = 64 * 1024 * 1024;

assertConstant(
  MAX_ENTRY_BYTES + MAX_KEY_BYTES + 1024 <= GRPC_MAX_MESSAGE_BYTES,
  "one maximal entry must fit a gRPC message",
);
assertConstant(RAW_SCAN_MAX_LIMIT <= RAW_BATCH_MAX_KEYS, "a scan returns no more than a batch");
