/**
 * What transactional commands run against inside one region-group worker: the engine, the
 * key latches that serialize writes to a key, the concurrency manager (max_ts and the
 * in-memory locks of async commit and 1PC), and the lock manager (pessimistic lock waits and
 * deadlock detection). One per worker: a region's keys are only ever written by its worker,
 * so these tables see every write of the keys they guard.
 */
import type { KvEngine } from "../../engine/types.ts";
import { GroupCommit, type WritePath } from "../../storage/mod.ts";
import { ConcurrencyManager } from "../../txn/concurrency_manager.ts";
import { DeadlockDetector, LockWaitQueue, type LockWaitTimer } from "../../txn/lock_manager/mod.ts";
import type { MvccError } from "../../mvcc/mod.ts";
import type { Lock } from "../../txn_types/mod.ts";
import { Latches } from "../raw/latches.ts";

export interface TxnStore {
  engine: KvEngine;
  latches: Latches;
  concurrency: ConcurrencyManager<Lock>;
  detector: DeadlockDetector;
  lockWaits: LockWaitQueue<MvccError>;
  timer: LockWaitTimer;
  /** fsync the write-ahead log before a command is acknowledged. */
  syncLog: boolean;
  /** The write path every command's modifications leave through (src/storage). */
  writes: WritePath;
}

/** A `LockWaitTimer` on the real monotonic clock. */
export const realTimer: LockWaitTimer = {
  nowMs: () => performance.now(),
  schedule(delayMs, callback) {
    const id = setTimeout(callback, delayMs);
    return () => clearTimeout(id);
  },
};

/**
 * A store over `engine`, writing through `writes` (by default a group commit of its own; a
 * worker passes the one it shares with its raw store). `latestTs` seeds max_ts: a timestamp at least as large as any read
 * served before (TiKV takes a fresh one from PD when it starts).
 */
export function newTxnStore(
  engine: KvEngine,
  options: { syncLog: boolean; latestTs: bigint; timer?: LockWaitTimer; writes?: WritePath },
): TxnStore {
  const timer = options.timer ?? realTimer;
  const detector = new DeadlockDetector();
  return {
    engine,
    latches: new Latches(),
    concurrency: new ConcurrencyManager<Lock>({
      latestTs: options.latestTs,
      lockStartTs: (lock) => lock.startTs,
    }),
    detector,
    lockWaits: new LockWaitQueue<MvccError>({ timer, detector }),
    timer,
    syncLog: options.syncLog,
    writes: options.writes ?? new GroupCommit(engine, { syncLog: options.syncLog }),
  };
}
