/**
 * The raft log writer: Ready duty 1 for every peer of a round in one WriteBatch and one engine
 * write (DESIGN.md §4.1). The write is synced when any Ready must be (new entries, a vote or a
 * term change, a snapshot): a commit-index-only change may be lost in a crash and is learnt
 * again from the leader, as etcd/raft's `MustSync` allows.
 *
 * Two ways, by the store's `pipelineLog`:
 * - Off (a clustered store): a write that must be durable is made, then fsynced off the thread
 *   (`syncWal`; `writeDurable` for a snapshot's round), so whatever arrives meanwhile
 *   (messages, proposals, reads, ticks) gathers in the store's inbox for the next round, which
 *   starts once this one is done. The writes the round applied are answered before its fsync
 *   ends: they were committed by earlier rounds (durable on a quorum, this replica's copy
 *   included — a leader counts its own entries only in a round after the one that wrote them),
 *   and what apply wrote is never synced anyway (a crash replays it from the log). Only the
 *   round's new log entries, hard state and messages wait for the fsync.
 * - On (a standalone store): the write is made on the calling thread and returns at once (in
 *   the memtables and the write-ahead log, not yet fsynced), and the caller starts
 *   `KvEngine.syncWal` after it and treats the round as durable when that ends (store.ts: the
 *   round's messages wait for it, its entries are reported persisted then, and only then
 *   applied). So the fsync of one round runs while the next rounds gather and write; since the
 *   write-ahead log is one sequential file whose fsync covers everything written before it, a
 *   crash keeps a prefix of the rounds — never a later round without an earlier one.
 *
 * A round that installs a snapshot is written durably before it returns, either way: its files
 * are ingested after the write, and only once it is durable.
 *
 * @module
 */

import type { KvEngine, WriteBatch } from "../engine/types.ts";
import type { Ready } from "../raft/mod.ts";
import type { Peer } from "./peer.ts";

/** What one round's persistence wrote, for tests and metrics. */
export interface LogWriteStats {
  peers: number;
  operations: number;
  /**
   * Whether the round must be durable: written durably already (`durable`), else the caller
   * makes it so with `syncWal`.
   */
  mustSync: boolean;
  /** The write was synced before returning (a snapshot's round). */
  durable: boolean;
}

/**
 * Persists every peer's Ready of a round: one batch, one write. `thenApply`, when given, adds
 * duty 3 (the committed entries' effects) to the same batch after duty 1: one atomic write
 * holds a round's log and what it applies, and the event loop never waits for a second write.
 * The store passes it unless a Ready installs a snapshot (whose files are ingested between the
 * two duties). `pipelined` (a pipelined log, module header): the write returns at once and
 * `mustSync` tells the caller to start the fsync; else a write that must be durable is, before
 * this returns (`writeDurable`, off the thread), as is a snapshot's in either case. With
 * `beforeSync` (and `thenApply`, no snapshot), such a write is made on the calling thread, then
 * `beforeSync` is handed what `thenApply` returned, then the fsync runs (`syncWal`) before this
 * returns: the store answers the writes applied while the fsync runs (module header).
 */
export async function persistReadies<T = never>(
  engine: KvEngine,
  readies: ReadonlyArray<{ peer: Peer; ready: Ready }>,
  thenApply: ((batch: WriteBatch) => T) | undefined,
  pipelined: boolean,
  beforeSync?: (applied: T) => void,
): Promise<LogWriteStats & { applied: T | undefined }> {
  const batch = engine.newWriteBatch();
  try {
    let mustSync = false;
    let installs = false;
    for (const { peer, ready } of readies) {
      peer.persist(batch, ready);
      mustSync ||= ready.mustSync;
      installs ||= ready.snapshot !== undefined;
    }
    const applied = thenApply?.(batch);
    const operations = batch.count;
    const durable = operations > 0 && (installs || (mustSync && !pipelined));
    // In two steps when what the write applied is to be answered while its fsync runs.
    const answer = durable && !installs && thenApply !== undefined ? beforeSync : undefined;
    if (answer !== undefined) {
      engine.write(batch);
      answer(applied as T);
      await engine.syncWal();
    } else if (durable) await engine.writeDurable(batch);
    else if (operations > 0) engine.write(batch);
    return {
      peers: readies.length,
      operations,
      mustSync: mustSync && operations > 0 && !durable,
      durable,
      applied,
    };
  } finally {
    batch.destroy();
  }
}
