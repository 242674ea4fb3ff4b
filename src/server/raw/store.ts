/**
 * What every raw command runs against: the engine (read through a region's view), the key
 * latches, the clock, and the write path (src/storage: raw writes leave as `Modification`s,
 * latched until applied, grouped, fsynced when `syncLog`). Handlers receive a `RawStore`; they
 * never reach for a clock or the engine any other way, so tests can drive them with a fixed
 * time.
 */
import type { ColumnFamily, KvEngine } from "../../engine/types.ts";
import { MAX_ENTRY_BYTES } from "../../constants.ts";
import {
  GroupCommit,
  type Modification,
  type RegionMeta,
  RegionSnapshot,
  type WritePath,
} from "../../storage/mod.ts";
import type { RequestFailure } from "../failure.ts";
import { Latches, type Release } from "./latches.ts";
import { TTL_INDEX_CF, ttlIndexKey } from "./ttl_index.ts";
import { RAW_VALUE_SUFFIX_BYTES, RawValueEncoder, writeRawValue } from "./value.ts";

/** The dependencies of raw command handlers. */
export interface RawStore {
  engine: KvEngine;
  latches: Latches;
  /** fsync the write-ahead log before a write is acknowledged. */
  syncLog: boolean;
  /** The current time in Unix seconds. */
  nowUnixSeconds(): number;
  /**
   * The store's write path, shared with the transactional store (one group commit per
   * worker). Absent in stores that tests build as plain objects: a group commit of the store's
   * own is made on first use (`writePathOf`).
   */
  writes?: WritePath;
}

/** Builds a `RawStore` over `engine` reading the wall clock, writing through `writes`. */
export function newRawStore(
  engine: KvEngine,
  options: { syncLog: boolean; writes?: WritePath },
): RawStore {
  return {
    engine,
    latches: new Latches(),
    syncLog: options.syncLog,
    nowUnixSeconds: () => Math.floor(Date.now() / 1000),
    writes: options.writes ?? new GroupCommit(engine, { syncLog: options.syncLog }),
  };
}

/** The column family a raw request names: empty = default; "raft" and others are refused. */
export function resolveColumnFamily(
  name: string | null | undefined,
): ColumnFamily | RequestFailure {
  if (name === "" || name == null || name === "default") return "default";
  if (name === "write" || name === "lock") return name;
  return { code: "InvalidColumnFamily", name };
}

/** Refuses an entry whose key plus value exceeds `MAX_ENTRY_BYTES`. */
export function checkEntrySize(key: Uint8Array, value: Uint8Array): RequestFailure | null {
  const sizeBytes = key.length + value.length;
  return sizeBytes > MAX_ENTRY_BYTES
    ? { code: "EntryTooLarge", sizeBytes, limitBytes: MAX_ENTRY_BYTES }
    : null;
}

const EMPTY = new Uint8Array(0);

/** One raw write: a put of a user value with its expiry, or a delete. */
export type RawMutation =
  | { kind: "put"; key: Uint8Array; userValue: Uint8Array; expireUnixSeconds: number }
  | { kind: "delete"; key: Uint8Array };

/** One raw write command's mutations, on one column family. */
export interface RawWrite {
  cf: ColumnFamily;
  mutations: readonly RawMutation[];
}

/** Write paths made for stores built without one (see `RawStore.writes`). */
const ownWritePaths = new WeakMap<RawStore, WritePath>();

/** The write path of `store`. */
export function writePathOf(store: RawStore): WritePath {
  if (store.writes !== undefined) return store.writes;
  let writes = ownWritePaths.get(store);
  if (writes === undefined) {
    writes = new GroupCommit(store.engine, { syncLog: store.syncLog });
    ownWritePaths.set(store, writes);
  }
  return writes;
}

/**
 * A view of `region` for a raw command's reads: the engine's latest state, clamped to the
 * region (`RegionSnapshot.latest`). Raw reads took no snapshot before the view existed and
 * still take none: each get, multi-get batch or iterator reads one consistent state of its own,
 * and the hot point-read path pays no snapshot's FFI calls. (TiKV reads raw batches from one
 * snapshot; a raw batch read here is not atomic against a concurrent write, as before.)
 */
export function rawReader(store: RawStore, region: RegionMeta): RegionSnapshot {
  return RegionSnapshot.latest(store.engine, region);
}

/** Stored values of single writes are encoded into one reused buffer (the write path copies). */
const values = new RawValueEncoder();

/**
 * The modifications of `mutations` on `cf`: the stored values (with their expiry suffix) and,
 * for values with a TTL, their expiry index entries. Must be handed to the write path at once:
 * a single put's value is a view of a buffer the next call reuses (duty 1 of the write path
 * makes that safe); several puts' values share one new buffer.
 */
function rawModifications(options: RawWrite): Modification[] {
  const { cf, mutations } = options;
  const single = mutations.length === 1;
  const storage = single ? null : new Uint8Array(storedBytesOf(mutations));
  let at = 0;
  const modifications: Modification[] = [];
  for (const mutation of mutations) {
    if (mutation.kind === "delete") {
      modifications.push({ type: "delete", cf, key: mutation.key });
      continue;
    }
    let value: Uint8Array;
    if (storage === null) value = values.encode(mutation.userValue, mutation.expireUnixSeconds);
    else {
      const length = mutation.userValue.length + RAW_VALUE_SUFFIX_BYTES;
      value = storage.subarray(at, at + length);
      writeRawValue(value, mutation.userValue, mutation.expireUnixSeconds);
      at += length;
    }
    modifications.push({ type: "put", cf, key: mutation.key, value });
    if (mutation.expireUnixSeconds !== 0) {
      const indexKey = ttlIndexKey(mutation.expireUnixSeconds, cf, mutation.key);
      modifications.push({ type: "put", cf: TTL_INDEX_CF, key: indexKey, value: EMPTY });
    }
  }
  return modifications;
}

function storedBytesOf(mutations: readonly RawMutation[]): number {
  let bytes = 0;
  for (const mutation of mutations) {
    if (mutation.kind === "put") bytes += mutation.userValue.length + RAW_VALUE_SUFFIX_BYTES;
  }
  return bytes;
}

/**
 * Applies `mutations` to `cf` of `region` atomically, through the write path: resolves once
 * applied, and durable when `syncLog`. The caller holds the keys' latches until then (a CAS,
 * from its read).
 */
export function applyMutations(
  store: RawStore,
  region: RegionMeta,
  options: RawWrite,
): Promise<void> {
  try {
    return writePathOf(store).write(region, rawModifications(options));
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * Latches the mutated keys and applies `mutations` through the write path, which releases the
 * latches once the write is applied (durable when `syncLog`); resolves then.
 */
export function latchedWrite(
  store: RawStore,
  region: RegionMeta,
  options: RawWrite,
): Promise<void> {
  const keys = options.mutations.map((mutation) => mutation.key);
  const held = store.latches.lock(options.cf, keys);
  if (typeof held === "function") return writeHolding(store, region, { options, release: held });
  return held.then((release) => writeHolding(store, region, { options, release }));
}

function writeHolding(
  store: RawStore,
  region: RegionMeta,
  { options, release }: { options: RawWrite; release: Release },
): Promise<void> {
  let modifications: Modification[];
  try {
    modifications = rawModifications(options);
  } catch (error) {
    release();
    return Promise.reject(error);
  }
  return writePathOf(store).write(region, modifications, { release });
}
