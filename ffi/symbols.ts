/**
 * The subset of RocksDB's C API (rocksdb/c.h, 7.8) that Basalt binds, declared for Deno.dlopen.
 *
 * Conventions (see MEASURED.md):
 * - Handles are `pointer`; byte inputs and out-parameters (`size_t*`, `char** errptr`) are
 *   `buffer`, so hot calls stay on V8's fast path.
 * - `size_t` is `usize` and must be passed as a BigInt; a JS number silently takes the slow path.
 * - Functions that return a pointer the caller never needs declare `void` instead, which saves
 *   one pointer object per call (the x86-64 and arm64 ABIs return in a register either way).
 * - `rocksdb_write` has a second, `nonblocking` binding for synced writes: the fsync runs on a
 *   thread of Deno's pool and the event loop keeps going; many in flight share RocksDB's group
 *   commit.
 */

const P = "pointer" as const;
const B = "buffer" as const;
const Z = "usize" as const;
const V = "void" as const;

export const ROCKSDB_SYMBOLS = {
  // Options
  rocksdb_options_create: { parameters: [], result: P },
  rocksdb_options_destroy: { parameters: [P], result: V },
  rocksdb_options_set_create_if_missing: { parameters: [P, "u8"], result: V },
  rocksdb_options_set_create_missing_column_families: { parameters: [P, "u8"], result: V },
  rocksdb_options_set_error_if_exists: { parameters: [P, "u8"], result: V },
  rocksdb_options_set_write_buffer_size: { parameters: [P, Z], result: V },
  rocksdb_options_set_max_write_buffer_number: { parameters: [P, "i32"], result: V },
  rocksdb_options_set_max_background_jobs: { parameters: [P, "i32"], result: V },
  rocksdb_options_set_max_open_files: { parameters: [P, "i32"], result: V },
  rocksdb_options_set_compression: { parameters: [P, "i32"], result: V },
  rocksdb_options_set_block_based_table_factory: { parameters: [P, P], result: V },
  rocksdb_options_set_level_compaction_dynamic_level_bytes: { parameters: [P, "u8"], result: V },
  rocksdb_options_set_bytes_per_sync: { parameters: [P, "u64"], result: V },
  rocksdb_options_set_info_log_level: { parameters: [P, "i32"], result: V },
  rocksdb_options_set_keep_log_file_num: { parameters: [P, Z], result: V },
  rocksdb_block_based_options_create: { parameters: [], result: P },
  rocksdb_block_based_options_destroy: { parameters: [P], result: V },
  rocksdb_block_based_options_set_block_cache: { parameters: [P, P], result: V },
  rocksdb_block_based_options_set_block_size: { parameters: [P, Z], result: V },
  rocksdb_block_based_options_set_filter_policy: { parameters: [P, P], result: V },
  rocksdb_block_based_options_set_cache_index_and_filter_blocks: {
    parameters: [P, "u8"],
    result: V,
  },
  rocksdb_filterpolicy_create_bloom_full: { parameters: ["f64"], result: P },
  rocksdb_cache_create_lru: { parameters: [Z], result: P },
  rocksdb_cache_destroy: { parameters: [P], result: V },
  rocksdb_cache_get_usage: { parameters: [P], result: Z },
  rocksdb_readoptions_create: { parameters: [], result: P },
  rocksdb_readoptions_destroy: { parameters: [P], result: V },
  rocksdb_readoptions_set_snapshot: { parameters: [P, P], result: V },
  rocksdb_readoptions_set_iterate_upper_bound: { parameters: [P, B, Z], result: V },
  rocksdb_readoptions_set_iterate_lower_bound: { parameters: [P, B, Z], result: V },
  rocksdb_readoptions_set_fill_cache: { parameters: [P, "u8"], result: V },
  rocksdb_writeoptions_create: { parameters: [], result: P },
  rocksdb_writeoptions_destroy: { parameters: [P], result: V },
  rocksdb_writeoptions_set_sync: { parameters: [P, "u8"], result: V },
  rocksdb_writeoptions_disable_WAL: { parameters: [P, "i32"], result: V },
  rocksdb_flushoptions_create: { parameters: [], result: P },
  rocksdb_flushoptions_destroy: { parameters: [P], result: V },
  rocksdb_flushoptions_set_wait: { parameters: [P, "u8"], result: V },
  rocksdb_set_perf_level: { parameters: ["i32"], result: V },

  // Database
  rocksdb_list_column_families: { parameters: [P, B, B, B], result: P },
  rocksdb_list_column_families_destroy: { parameters: [P, Z], result: V },
  rocksdb_open_column_families: { parameters: [P, B, "i32", B, B, B, B], result: P },
  rocksdb_close: { parameters: [P], result: V },
  rocksdb_column_family_handle_destroy: { parameters: [P], result: V },
  rocksdb_put_cf: { parameters: [P, P, P, B, Z, B, Z, B], result: V },
  rocksdb_delete_cf: { parameters: [P, P, P, B, Z, B], result: V },
  rocksdb_singledelete_cf: { parameters: [P, P, P, B, Z, B], result: V },
  rocksdb_delete_range_cf: { parameters: [P, P, P, B, Z, B, Z, B], result: V },
  rocksdb_write: { parameters: [P, P, P, B], result: V },
  rocksdb_write_nonblocking: {
    name: "rocksdb_write",
    parameters: [P, P, P, B],
    result: V,
    nonblocking: true,
  },
  rocksdb_get_pinned_cf: { parameters: [P, P, P, B, Z, B], result: P },
  rocksdb_pinnableslice_value: { parameters: [P, B], result: P },
  rocksdb_pinnableslice_destroy: { parameters: [P], result: V },
  rocksdb_multi_get_cf: { parameters: [P, P, B, Z, B, B, B, B, B], result: V },
  rocksdb_batched_multi_get_cf: { parameters: [P, P, P, Z, B, B, B, B, "bool"], result: V },
  rocksdb_create_snapshot: { parameters: [P], result: P },
  rocksdb_release_snapshot: { parameters: [P, P], result: V },
  rocksdb_flush_cf: { parameters: [P, P, P, B], result: V },
  rocksdb_flush_wal: { parameters: [P, "u8", B], result: V },
  rocksdb_flush_wal_nonblocking: {
    name: "rocksdb_flush_wal",
    parameters: [P, "u8", B],
    result: V,
    nonblocking: true,
  },
  rocksdb_compact_range_cf: { parameters: [P, P, B, Z, B, Z], result: V },
  rocksdb_property_value_cf: { parameters: [P, P, B], result: P },
  rocksdb_free: { parameters: [P], result: V },

  // Write batches
  rocksdb_writebatch_create: { parameters: [], result: P },
  rocksdb_writebatch_destroy: { parameters: [P], result: V },
  rocksdb_writebatch_clear: { parameters: [P], result: V },
  rocksdb_writebatch_count: { parameters: [P], result: "i32" },
  rocksdb_writebatch_put_cf: { parameters: [P, P, B, Z, B, Z], result: V },
  rocksdb_writebatch_delete_cf: { parameters: [P, P, B, Z], result: V },
  rocksdb_writebatch_singledelete_cf: { parameters: [P, P, B, Z], result: V },
  rocksdb_writebatch_delete_range_cf: { parameters: [P, P, B, Z, B, Z], result: V },
  rocksdb_writebatch_data: { parameters: [P, B], result: P },

  // Iterators
  rocksdb_create_iterator_cf: { parameters: [P, P, P], result: P },
  rocksdb_iter_destroy: { parameters: [P], result: V },
  rocksdb_iter_valid: { parameters: [P], result: "u8" },
  rocksdb_iter_seek_to_first: { parameters: [P], result: V },
  rocksdb_iter_seek_to_last: { parameters: [P], result: V },
  rocksdb_iter_seek: { parameters: [P, B, Z], result: V },
  rocksdb_iter_seek_for_prev: { parameters: [P, B, Z], result: V },
  rocksdb_iter_next: { parameters: [P], result: V },
  rocksdb_iter_prev: { parameters: [P], result: V },
  rocksdb_iter_key: { parameters: [P, B], result: P },
  rocksdb_iter_value: { parameters: [P, B], result: P },
  rocksdb_iter_get_error: { parameters: [P, B], result: V },

  // Checkpoints
  rocksdb_checkpoint_object_create: { parameters: [P, B], result: P },
  rocksdb_checkpoint_create: { parameters: [P, B, "u64", B], result: V },
  rocksdb_checkpoint_object_destroy: { parameters: [P], result: V },

  // SST files and ingestion
  rocksdb_envoptions_create: { parameters: [], result: P },
  rocksdb_envoptions_destroy: { parameters: [P], result: V },
  rocksdb_sstfilewriter_create: { parameters: [P, P], result: P },
  rocksdb_sstfilewriter_open: { parameters: [P, B, B], result: V },
  rocksdb_sstfilewriter_put: { parameters: [P, B, Z, B, Z, B], result: V },
  rocksdb_sstfilewriter_delete: { parameters: [P, B, Z, B], result: V },
  rocksdb_sstfilewriter_delete_range: { parameters: [P, B, Z, B, Z, B], result: V },
  rocksdb_sstfilewriter_finish: { parameters: [P, B], result: V },
  rocksdb_sstfilewriter_file_size: { parameters: [P, B], result: V },
  rocksdb_sstfilewriter_destroy: { parameters: [P], result: V },
  rocksdb_ingestexternalfileoptions_create: { parameters: [], result: P },
  rocksdb_ingestexternalfileoptions_set_move_files: { parameters: [P, "u8"], result: V },
  rocksdb_ingestexternalfileoptions_destroy: { parameters: [P], result: V },
  rocksdb_ingest_external_file_cf: { parameters: [P, P, B, Z, P, B], result: V },
} as const satisfies Deno.ForeignLibraryInterface;

/**
 * libc: memcpy (declared to return nothing, see the conventions above); the calls that reserve
 * disk space (`open`, `posix_fallocate`, `close`, `statvfs`: Deno has neither fallocate nor
 * statfs); and `_exit`, which ends the process without running the C++ static destructors of
 * librocksdb — the only safe way out while a worker thread may still be inside RocksDB.
 */
export const LIBC_SYMBOLS = {
  memcpy: { parameters: [B, P, Z], result: V },
  open: { parameters: [B, "i32", "u32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  posix_fallocate: { parameters: ["i32", "i64", "i64"], result: "i32", optional: true },
  statvfs: { parameters: [B, B], result: "i32", optional: true },
  _exit: { parameters: ["i32"], result: V },
} as const satisfies Deno.ForeignLibraryInterface;

export type RocksDbSymbols = Deno.DynamicLibrary<typeof ROCKSDB_SYMBOLS>["symbols"];
export type LibcSymbols = Deno.DynamicLibrary<typeof LIBC_SYMBOLS>["symbols"];
