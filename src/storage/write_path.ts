/**
 * The one way a write leaves a command: `WritePath.write(region, modifications, options)`.
 * Raw writes, transaction commands (the scheduler writes an `MvccTxn`'s modifications), both
 * delete-ranges and GC all call it; none touches a WriteBatch. Behind it today is the group
 * commit (`group_commit.ts`: the writes of one wave, one WriteBatch, one synced write); with
 * replication it is the region's Raft proposal, and the apply of the committed entry writes the
 * same modifications.
 *
 * The contract every implementation keeps, numbered so callers can cite it:
 * 1. **Copy on call.** `write` takes its own copy of every key and value before it returns (the
 *    group commit into its WriteBatch, the Raft path into the proposal's entry), so a caller
 *    may reuse a buffer at once (the raw value encoder does).
 * 2. **Atomic.** The modifications of one call are applied all or none.
 * 3. **Settles when applied.** The promise resolves once the write is applied and, when the
 *    path syncs its log (sync-log), durable; it rejects when the write failed (nothing of it is
 *    applied). With Raft it settles at apply of the committed entry. So an acknowledged write
 *    is durable.
 * 4. **Latches until applied.** Whatever serializes the write — the raw key latches (a CAS
 *    holds them from its read), the transaction scheduler's latches and the concurrency
 *    manager's memory locks — is held until the promise settles. A `release` handed in
 *    `options` is called by the path itself when the write is applied or failed, just before
 *    the promise settles (one release per write, no extra promise: the hot raw put path).
 * 5. **In order.** Writes are applied in the order `write` was called (two writes of one key
 *    are ordered by their latches anyway).
 * 6. **Inside the region.** Every key, and every delete-range, of a data column family lies in
 *    `[region.startKey, region.endKey)` (`region_range.ts`); a write that does not is a bug, and
 *    `write` throws before anything is written.
 *
 * This module imports nothing of any implementation.
 */
import type { Modification } from "./modification.ts";
import type { RegionMeta } from "./region_range.ts";

/** Gives back what serialized a write (latches); called once. */
export type Release = () => void;

/** Options of one write. */
export interface WriteOptions {
  /** Called by the path when the write is applied or failed, before the promise settles. */
  release?: Release | null;
  /**
   * `false`: the write need not be durable when acknowledged, because losing it in a crash is
   * harmless (a TTL sweep's deletes are redone by the next sweep). It still shares its group's
   * fsync when another write needs one. Default: the path's own setting (sync-log). With Raft
   * every write is in the synced log and this is moot.
   */
  sync?: boolean;
}

/** The write path of a store's regions (see the module header for its contract). */
export interface WritePath {
  /** Writes `modifications` of `region` atomically; settles when applied (durable). */
  write(
    region: RegionMeta,
    modifications: readonly Modification[],
    options?: WriteOptions,
  ): Promise<void>;
}
