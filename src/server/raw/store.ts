/**
 * What every raw command runs against: the engine, the key latches, the clock, and the write
 * path (latched, batched, fsynced when `syncLog`). Handlers receive a `RawStore`; they never
 * reach for a clock or the engine any other way, so tests can drive them with a fixed time.
 */
import type { ColumnFamily, KvEngine } from "../../engine/types.ts";
import { MAX_ENTRY_BYTES } from "../../constants.ts";
import type { RequestFailure } from "../failure.ts";
import { Latches } from "./latches.ts";
import { TTL_INDEX_CF, ttlIndexKey } from "./ttl_index.ts";
import { encodeRawValue } from "./value.ts";
import { type GroupOperation, WriteGroups } from "./write_group.ts";

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

/**
 * Applies `mutations` to `cf` atomically, in the current write group (`write_group.ts`):
 * resolves once applied, and durable when `syncLog`. The caller holds the keys' latches until
 * then.
 */
export function applyMutations(
  store: RawStore,
  options: { cf: ColumnFamily; mutations: readonly RawMutation[] },
): Promise<void> {
  const operations: GroupOperation[] = [];
  const cf = options.cf;
  for (const mutation of options.mutations) {
    if (mutation.kind === "delete") {
      operations.push({ cf, key: mutation.key, value: null });
      continue;
    }
    const value = encodeRawValue(mutation.userValue, mutation.expireUnixSeconds);
    operations.push({ cf, key: mutation.key, value });
    if (mutation.expireUnixSeconds !== 0) {
      const indexKey = ttlIndexKey(mutation.expireUnixSeconds, cf, mutation.key);
      operations.push({ cf: TTL_INDEX_CF, key: indexKey, value: EMPTY });
    }
  }
  try {
    return writeGroupsOf(store).write(operations);
  } catch (error) {
    return Promise.reject(error);
  }
}

/** Latches the mutated keys, applies `mutations`, releases once they are applied. */
export async function latchedWrite(
  store: RawStore,
  options: { cf: ColumnFamily; mutations: readonly RawMutation[] },
): Promise<void> {
  const keys = options.mutations.map((mutation) => mutation.key);
  const held = store.latches.lock(options.cf, keys);
  const release = typeof held === "function" ? held : await held;
  try {
    await applyMutations(store, options);
  } finally {
    release();
  }
}
