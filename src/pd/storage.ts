/**
 * The storage PD's state lives on, and the layout of that state in it.
 *
 * `PdStorage` is a sorted map of string keys to string values with atomic batches. This module
 * imports nothing of any implementation: `engine_storage.ts` keeps it on a `KvEngine` (the
 * memory engine in tests, RocksDB in the process); a replicated member (`pd_member.ts`) hands
 * its leader's core a `PdStorage` whose writes become Raft proposals, and applies committed
 * ones to an `EngineStorage`. The core reads its storage only when it opens (the member
 * asserts it), which is what lets the leader's writes run ahead of the log.
 *
 * Contract: `write` applies all of its operations or none, and a `get` or `scan` after it sees
 * them. Keys order by their UTF-16 code units, which for the ASCII keys below is byte order.
 *
 * Key layout (every key is ASCII; ids are 20-digit zero-padded decimals so they sort by value):
 *
 * | key                              | value                                                |
 * | -------------------------------- | ---------------------------------------------------- |
 * | `cluster_id`                     | the cluster id, decimal (written once)                |
 * | `cluster`                        | `{ id, maxPeerCount }` JSON; present iff bootstrapped |
 * | `alloc_id`                       | the id allocator's window end, decimal                |
 * | `tso`                            | the TSO's saved bound (a physical ms), decimal        |
 * | `gc/safe_point`                  | the GC safe point, decimal                            |
 * | `gc/service/<hex of service id>` | `{ serviceId, expiredAtSec, safePoint }` JSON         |
 * | `store/<id>`                     | the store's `StoreMeta` JSON                           |
 * | `region/<id>`                    | the region's `RegionMeta` JSON (keys in hex)           |
 *
 * `EngineStorage` also writes `\u0000sync_marker` (its fsync barrier), which no scan returns.
 *
 * Operators are not stored: like PD's, they live in the leader's memory and are made again by
 * the schedulers after a restart. Region leaders and sizes are not stored either; heartbeats
 * bring them back within a heartbeat interval.
 *
 * **Soft writes.** A batch that writes only `region/…` keys (`isSoftBatch`: what a region
 * heartbeat changes) is *soft*: no answer depends on it, because the stores hold the truth of
 * their regions and send it again with every heartbeat; a region whose write was lost is
 * learned again, and of two views of a region the one with the newer epoch wins
 * (`cluster.ts`, invariant 1). So a replicated member proposes soft writes in batches and
 * answers without waiting for their commit (`pd_member.ts`, design 6), as PD keeps region
 * metadata out of etcd and saves it to a local region storage in batches. Every other write
 * (ids, TSO windows, stores, bootstrap, GC safe points) is *hard*: answered only once durable.
 *
 * @module
 */

/** One operation of an atomic batch. */
export type PdWrite =
  | { kind: "put"; key: string; value: string }
  | { kind: "delete"; key: string };

/** A sorted string map with atomic batches: where PD keeps its state. */
export interface PdStorage {
  get(key: string): string | null;
  /** Every entry whose key starts with `prefix`, in key order. */
  scan(prefix: string): Array<[key: string, value: string]>;
  /** Applies every operation or none. */
  write(batch: readonly PdWrite[]): void;
}

/** Keys of the layout above. */
export const PD_KEYS = {
  clusterId: "cluster_id",
  cluster: "cluster",
  allocId: "alloc_id",
  tso: "tso",
  gcSafePoint: "gc/safe_point",
  servicePrefix: "gc/service/",
  storePrefix: "store/",
  regionPrefix: "region/",
} as const;

/** An id as a key component: 20 digits, so that ids sort by value. */
export function idKey(id: bigint): string {
  return id.toString().padStart(20, "0");
}

/** The key of store `id`. */
export function storeKey(id: bigint): string {
  return PD_KEYS.storePrefix + idKey(id);
}

/** Whether `batch` writes only region keys: a soft batch (see the module header). */
export function isSoftBatch(batch: readonly PdWrite[]): boolean {
  return batch.every((op) => op.key.startsWith(PD_KEYS.regionPrefix));
}

/** The key of region `id`. */
export function regionKey(id: bigint): string {
  return PD_KEYS.regionPrefix + idKey(id);
}

/** Reads a u64 stored as a decimal; `null` when absent; throws naming the key when unreadable. */
export function loadU64(storage: PdStorage, key: string): bigint | null {
  const text = storage.get(key);
  if (text === null) return null;
  if (!/^[0-9]{1,20}$/.test(text) || BigInt(text) >= 1n << 64n) {
    throw new Error(`PD storage: "${key}" holds "${text.slice(0, 40)}", not a u64`);
  }
  return BigInt(text);
}

/** A put of a u64 as a decimal. */
export function putU64(key: string, value: bigint): PdWrite {
  return { kind: "put", key, value: value.toString() };
}
