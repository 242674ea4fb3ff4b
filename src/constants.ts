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
