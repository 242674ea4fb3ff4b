/**
 * The raft log writer: Ready duty 1 for every peer of a round in one WriteBatch and one engine
 * write (DESIGN.md §4.1). The write is synced when any Ready must be (new entries, a vote or a
 * term change, a snapshot): a commit-index-only change may be lost in a crash and is learnt
 * again from the leader, as etcd/raft's `MustSync` allows.
 *
 * `KvEngine.writeDurable` does not block the event loop (RocksDB's fsync runs off the thread),
 * so whatever arrives while it runs — messages, proposals, reads, ticks — gathers in the store's
 * inbox for the next round.
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
  synced: boolean;
}

/**
 * Persists every peer's Ready of a round: one batch, one write (synced when needed).
 * `thenApply`, when given, adds duty 3 (the committed entries' effects) to the same batch after
 * duty 1: one atomic write holds a round's log and what it applies, so a crash keeps both or
 * neither — what "persist, then apply" allows — and the event loop never blocks on a second,
 * synchronous write. The store passes it unless a Ready installs a snapshot (whose files are
 * ingested between the two duties).
 */
export async function persistReadies<T = never>(
  engine: KvEngine,
  readies: ReadonlyArray<{ peer: Peer; ready: Ready }>,
  thenApply?: (batch: WriteBatch) => T,
): Promise<LogWriteStats & { applied: T | undefined }> {
  const batch = engine.newWriteBatch();
  try {
    let mustSync = false;
    for (const { peer, ready } of readies) {
      peer.persist(batch, ready);
      mustSync ||= ready.mustSync || ready.snapshot !== undefined;
    }
    const applied = thenApply?.(batch);
    const operations = batch.count;
    if (operations > 0) {
      if (mustSync) await engine.writeDurable(batch);
      else engine.write(batch);
    }
    return { peers: readies.length, operations, synced: operations > 0 && mustSync, applied };
  } finally {
    batch.destroy();
  }
}
