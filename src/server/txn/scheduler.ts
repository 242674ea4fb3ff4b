/**
 * The transaction scheduler: how one write command runs. It holds the latches of the keys it
 * writes (acquired in sorted order, so commands never deadlock on latches), reads one
 * snapshot, runs a pure action that buffers modifications in an `MvccTxn`, and writes them as
 * one atomic batch (fsynced when the store syncs its log). Then it wakes the pessimistic lock
 * requests waiting for the locks the command released.
 *
 * For async commit and 1PC (`memoryLocks`), the keys are also taken in the concurrency
 * manager, and the locks the action asks to guard are published there before the latches
 * can let a reader near the keys — read max_ts, run the action, publish, with no await in
 * between — and withdrawn once the batch is in the engine.
 */
import { MvccReader, type MvccResult, MvccTxn } from "../../mvcc/mod.ts";
import type { ReleasedLock } from "../../mvcc/txn.ts";
import type { KvEngine } from "../../engine/types.ts";
import type { Key, TimeStamp } from "../../txn_types/mod.ts";
import type { KeyHandleGuard } from "../../txn/concurrency_manager.ts";
import type { Lock } from "../../txn_types/mod.ts";
import { toHex } from "../../util/bytes.ts";
import type { TxnStore } from "./store.ts";

/** Latch namespace of transactional keys (raw writes latch by column family). */
const TXN_LATCH = "txn";

/** What an action gets: a reader of one snapshot, the buffer, and max_ts at that moment. */
export interface ActionContext {
  reader: MvccReader;
  txn: MvccTxn;
  maxTs: TimeStamp;
  /** Buffers of other transactions the command also writes (resolving several at once). */
  others: MvccTxn[];
}

/** Options of `executeWrite`. */
export interface WriteOptions {
  /** Keys the command may write: latched for its duration. */
  keys: readonly Key[];
  startTs: TimeStamp;
  /** Take the keys in the concurrency manager too (async commit, 1PC). */
  memoryLocks?: boolean;
}

/**
 * Runs `action` as one write command (see the module header) and returns what it returned.
 * An action that fails (`{ ok: false }`) writes nothing: its buffers are dropped.
 */
export async function executeWrite<T>(
  store: TxnStore,
  options: WriteOptions,
  action: (context: ActionContext) => MvccResult<T>,
): Promise<MvccResult<T>> {
  const release = await store.latches.acquire(TXN_LATCH, options.keys.map((key) => key.encoded));
  let guards: KeyHandleGuard<Lock>[] = [];
  try {
    if (options.memoryLocks === true) {
      guards = await store.concurrency.lockKeys(options.keys.map((key) => key.encoded));
    }
    const txn = new MvccTxn(options.startTs);
    const others: MvccTxn[] = [];
    let result: MvccResult<T>;
    {
      using snapshot = store.engine.snapshot();
      using reader = new MvccReader(snapshot);
      result = action({ reader, txn, maxTs: store.concurrency.maxTs(), others });
    }
    const txns = [txn, ...others];
    for (const written of txns) {
      // Uniqueness checks and status checks are reads: later commits must order after them.
      if (written.observedReadTs > 0n) store.concurrency.updateMaxTs(written.observedReadTs);
    }
    if (!result.ok) return result;
    publishGuardedLocks(txn, guards);
    await writeTxns(store.engine, txns, store.syncLog);
    for (const written of txns) wakeWaiters(store, written.releasedLocks);
    return result;
  } finally {
    for (const guard of guards) guard.release();
    release();
  }
}

function publishGuardedLocks(txn: MvccTxn, guards: readonly KeyHandleGuard<Lock>[]): void {
  if (txn.guardedLocks.length === 0) return;
  const byKey = new Map(guards.map((guard) => [toHex(guard.key), guard]));
  for (const { key, lock } of txn.guardedLocks) {
    const guard = byKey.get(key.mapKey());
    if (guard === undefined) {
      throw new Error(`action guarded a lock on ${key} without taking its memory lock`);
    }
    guard.setLock(lock);
  }
}

/** Writes what `txns` buffered as one atomic batch; nothing when they are empty. */
export async function writeTxns(
  engine: KvEngine,
  txns: readonly MvccTxn[],
  sync: boolean,
): Promise<void> {
  if (txns.every((txn) => txn.isEmpty())) return;
  const batch = engine.newWriteBatch();
  try {
    for (const txn of txns) txn.applyTo(batch);
    if (sync) await engine.writeDurable(batch);
    else engine.write(batch);
  } finally {
    batch.destroy();
  }
}

/** Wakes the lock waiters of every released lock, one call per transaction. */
export function wakeWaiters(store: TxnStore, released: readonly ReleasedLock[]): void {
  if (released.length === 0 || !store.lockWaits.hasWaiters()) return;
  const byTxn = new Map<TimeStamp, { keys: Uint8Array[]; commitTs: TimeStamp }>();
  for (const lock of released) {
    const entry = byTxn.get(lock.startTs) ?? { keys: [], commitTs: lock.commitTs };
    entry.keys.push(lock.key.encoded);
    byTxn.set(lock.startTs, entry);
  }
  for (const [lockTs, { keys, commitTs }] of byTxn) {
    store.lockWaits.wakeUp({ lockTs, keys, commitTs });
  }
}
