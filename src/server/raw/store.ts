/**
 * What every raw command runs against: the engine, the key latches, the clock, and the write
 * path (latched, batched, fsynced when `syncLog`). Handlers receive a `RawStore`; they never
 * reach for a clock or the engine any other way, so tests can drive them with a fixed time.
 */
import type { ColumnFamily, KvEngine, WriteBatch } from "../../engine/types.ts";
import { assertEntrySize, EntryTooLargeError } from "../../engine/limits.ts";
import { ENGINE_MAX_VALUE_BYTES, MAX_ENTRY_BYTES } from "../../constants.ts";
import type { RequestFailure } from "../failure.ts";
import { Latches, type Release } from "./latches.ts";
import { TTL_INDEX_CF, ttlIndexKey } from "./ttl_index.ts";
import { RAW_VALUE_SUFFIX_BYTES, RawValueEncoder } from "./value.ts";
import { type GroupWrite, WriteGroups } from "./write_group.ts";

/** The dependencies of raw command handlers. */
export interface RawStore {
  engine: KvEngine;
  latches: Latches;
  /** fsync the write-ahead log before a write is acknowledged. */
  syncLog: boolean;
  /** The current time in Unix seconds. */
  nowUnixSeconds(): number;
}

/** Builds a `RawStore` over `engine` reading the wall clock. */
export function newRawStore(engine: KvEngine, options: { syncLog: boolean }): RawStore {
  return {
    engine,
    latches: new Latches(),
    syncLog: options.syncLog,
    nowUnixSeconds: () => Math.floor(Date.now() / 1000),
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

/** Each store's write groups, made on first use (tests build `RawStore`s as plain objects). */
const writeGroups = new WeakMap<RawStore, WriteGroups>();

function writeGroupsOf(store: RawStore): WriteGroups {
  let groups = writeGroups.get(store);
  if (groups === undefined) {
    groups = new WriteGroups(store.engine, store.syncLog);
    writeGroups.set(store, groups);
  }
  return groups;
}

/** Stored values are encoded into one buffer and copied into the group batch at once. */
const values = new RawValueEncoder();

/**
 * The group write of `mutations` on `cf`: the stored values (with their expiry suffix) and, for
 * values with a TTL, their expiry index entries. Throws `EntryTooLargeError`, adding nothing, if
 * an entry is over the engine's limits.
 */
function groupWrite(
  options: { cf: ColumnFamily; mutations: readonly RawMutation[] },
  release: Release | null,
): GroupWrite {
  const { cf, mutations } = options;
  let sizeBytes = 0;
  for (const mutation of mutations) {
    if (mutation.kind === "delete") {
      assertEntrySize(mutation.key);
      sizeBytes += mutation.key.length;
    } else {
      const storedBytes = mutation.userValue.length + RAW_VALUE_SUFFIX_BYTES;
      if (storedBytes > ENGINE_MAX_VALUE_BYTES) {
        throw new EntryTooLargeError("value", storedBytes, ENGINE_MAX_VALUE_BYTES);
      }
      assertEntrySize(mutation.key);
      sizeBytes += mutation.key.length + storedBytes;
    }
  }
  const fill = (batch: WriteBatch) => {
    for (const mutation of mutations) {
      if (mutation.kind === "delete") {
        batch.delete(cf, mutation.key);
        continue;
      }
      batch.put(cf, mutation.key, values.encode(mutation.userValue, mutation.expireUnixSeconds));
      if (mutation.expireUnixSeconds !== 0) {
        const indexKey = ttlIndexKey(mutation.expireUnixSeconds, cf, mutation.key);
        batch.put(TTL_INDEX_CF, indexKey, EMPTY);
      }
    }
  };
  return { sizeBytes, fill, release };
}

/**
 * Applies `mutations` to `cf` atomically, in the current write group (`write_group.ts`):
 * resolves once applied, and durable when `syncLog`. The caller holds the keys' latches until
 * then.
 */
export function applyMutations(
  store: RawStore,
  options: { cf: ColumnFamily; mutations: readonly RawMutation[] },
): Promise<void> {
  try {
    return writeGroupsOf(store).write(groupWrite(options, null));
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * Latches the mutated keys and applies `mutations` in the current write group, which releases
 * the latches once the group is applied (durable when `syncLog`); resolves then.
 */
export function latchedWrite(
  store: RawStore,
  options: { cf: ColumnFamily; mutations: readonly RawMutation[] },
): Promise<void> {
  const keys = options.mutations.map((mutation) => mutation.key);
  const held = store.latches.lock(options.cf, keys);
  if (typeof held === "function") return writeHolding(store, options, held);
  return held.then((release) => writeHolding(store, options, release));
}

function writeHolding(
  store: RawStore,
  options: { cf: ColumnFamily; mutations: readonly RawMutation[] },
  release: Release,
): Promise<void> {
  let write: GroupWrite;
  try {
    write = groupWrite(options, release);
  } catch (error) {
    release();
    return Promise.reject(error);
  }
  return writeGroupsOf(store).write(write);
}
