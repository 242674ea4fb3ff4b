/**
 * The log storage interface the Raft core reads from.
 *
 * The core never writes to storage: the application persists what `Ready` hands it (entries,
 * hard state, snapshot) and the core reads it back through this interface. Indexes below
 * `firstIndex()` are compacted into the snapshot; `term(firstIndex() - 1)` must still answer
 * (it is the snapshot's term), which is what lets the leader check log matching at the boundary.
 *
 * This module imports nothing of any implementation.
 *
 * @module
 */

import type { ConfState, Entry, HardState, Snapshot } from "./types.ts";

/** Stable codes for the expected failures of a storage read. */
export type StorageErrorCode =
  /** The requested index is below the first index: it was compacted into a snapshot. */
  | "Compacted"
  /** The requested index is above the last index. */
  | "Unavailable"
  /** The snapshot is being built; ask again later. */
  | "SnapshotTemporarilyUnavailable";

/** An expected storage failure, carried as a value with a stable `code`. */
export class StorageError extends Error {
  override name = "StorageError";
  /** Creates an error for `code` at `index`. */
  constructor(readonly code: StorageErrorCode, readonly index: bigint) {
    super(`Storage: ${code} at index ${index}`);
  }
}

/** What a restarting node recovers: the durable hard state and membership. */
export interface InitialState {
  hardState: HardState;
  confState: ConfState;
}

/** Read access to a node's durable log. Implementations: `MemoryStorage`, the RocksDB log later. */
export interface Storage {
  /**
   * The durable hard state, and the membership as of `firstIndex() - 1` (the snapshot's
   * ConfState) or as of any later index up to the applied one. Membership changes in the log
   * are found by scanning it from `firstIndex()`: a node always uses the latest configuration
   * in its log (Raft thesis §4.1). Replaying changes the given membership already includes is
   * harmless, because a single-step change sets one node's role (voter, learner or absent)
   * whatever it was, so replaying a suffix of the changes that produced a configuration gives
   * that configuration back (`raft_test.ts`, "restart with the applied membership").
   */
  initialState(): InitialState;
  /**
   * Entries in `[range.lo, range.hi)`, at most `maxSizeBytes` of data (but always at least one entry).
   * Throws `StorageError` "Compacted" if `lo < firstIndex()`, "Unavailable" if `hi > lastIndex() + 1`.
   */
  entries(range: { lo: bigint; hi: bigint; maxSizeBytes?: number }): Entry[];
  /** The term of entry `index`, valid for `firstIndex() - 1 <= index <= lastIndex()`. */
  term(index: bigint): bigint;
  /** The index of the first entry still in the log (snapshot index + 1). */
  firstIndex(): bigint;
  /** The index of the last entry (the snapshot index when the log is empty). */
  lastIndex(): bigint;
  /** The most recent snapshot; may throw "SnapshotTemporarilyUnavailable". */
  snapshot(): Snapshot;
}

/** Size of an entry for flow control: payload bytes plus a fixed header cost. */
export function entrySizeBytes(e: Entry): number {
  return e.data.length + e.context.length + 24;
}

/** Keeps the longest prefix of `entries` within `maxSizeBytes`, never less than one entry. */
export function limitSize(entries: Entry[], maxSizeBytes: number): Entry[] {
  if (entries.length <= 1) return entries;
  let size = entrySizeBytes(entries[0]!);
  let n = 1;
  for (; n < entries.length; n++) {
    size += entrySizeBytes(entries[n]!);
    if (size > maxSizeBytes) break;
  }
  return n === entries.length ? entries : entries.slice(0, n);
}
