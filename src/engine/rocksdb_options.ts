/**
 * RocksDB options for a Basalt store, and their native construction. Every column family gets
 * the same table options: one shared LRU block cache, full bloom filters.
 */
import { native } from "../../ffi/native.ts";
import {
  DEFAULT_BLOCK_CACHE_BYTES,
  DEFAULT_BLOOM_BITS_PER_KEY,
  DEFAULT_MAX_BACKGROUND_JOBS,
  DEFAULT_WRITE_BUFFER_BYTES,
} from "../constants.ts";

/** Compression algorithms, with RocksDB's C enum values. */
export const COMPRESSION = {
  none: 0,
  snappy: 1,
  zlib: 2,
  lz4: 4,
  zstd: 7,
} as const;
export type Compression = keyof typeof COMPRESSION;

/** Tunables of the RocksDB engine. */
export interface RocksDbOptions {
  /** Create the database if it does not exist (default true). */
  createIfMissing?: boolean;
  blockCacheBytes?: number;
  writeBufferBytes?: number;
  maxBackgroundJobs?: number;
  compression?: Compression;
  /** Bloom filter bits per key; 0 disables bloom filters. */
  bloomBitsPerKey?: number;
  maxOpenFiles?: number;
}

/** Native option objects that must live until the database is closed. */
export interface NativeOptions {
  options: Deno.PointerObject;
  tableOptions: Deno.PointerObject;
  cache: Deno.PointerObject;
  destroy(): void;
}

/** Builds the native options for `settings`. */
export function buildOptions(settings: RocksDbOptions): NativeOptions {
  const r = native().rocks;
  const options = r.rocksdb_options_create()!;
  r.rocksdb_options_set_create_if_missing(options, settings.createIfMissing === false ? 0 : 1);
  r.rocksdb_options_set_create_missing_column_families(options, 1);
  const writeBuffer = settings.writeBufferBytes ?? DEFAULT_WRITE_BUFFER_BYTES;
  r.rocksdb_options_set_write_buffer_size(options, BigInt(writeBuffer));
  const jobs = settings.maxBackgroundJobs ?? DEFAULT_MAX_BACKGROUND_JOBS;
  r.rocksdb_options_set_max_background_jobs(options, jobs);
  r.rocksdb_options_set_max_open_files(options, settings.maxOpenFiles ?? -1);
  r.rocksdb_options_set_compression(options, COMPRESSION[settings.compression ?? "lz4"]);
  r.rocksdb_options_set_level_compaction_dynamic_level_bytes(options, 1);
  r.rocksdb_options_set_keep_log_file_num(options, 10n);

  const tableOptions = r.rocksdb_block_based_options_create()!;
  const cacheBytes = settings.blockCacheBytes ?? DEFAULT_BLOCK_CACHE_BYTES;
  const cache = r.rocksdb_cache_create_lru(BigInt(cacheBytes))!;
  r.rocksdb_block_based_options_set_block_cache(tableOptions, cache);
  const bloomBits = settings.bloomBitsPerKey ?? DEFAULT_BLOOM_BITS_PER_KEY;
  if (bloomBits > 0) {
    // The table options take ownership of the filter policy.
    const policy = r.rocksdb_filterpolicy_create_bloom_full(bloomBits);
    r.rocksdb_block_based_options_set_filter_policy(tableOptions, policy);
  }
  r.rocksdb_options_set_block_based_table_factory(options, tableOptions);
  return {
    options,
    tableOptions,
    cache,
    destroy() {
      r.rocksdb_options_destroy(options);
      r.rocksdb_block_based_options_destroy(tableOptions);
      r.rocksdb_cache_destroy(cache);
    },
  };
}
