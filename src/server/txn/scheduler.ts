/**
 * The transaction scheduler: how one write command runs. It holds the latches of the keys it
 * writes (acquired in sorted order, so commands never deadlock on latches), reads one
 * snapshot of the command's region (`RegionSnapshot`), runs a pure action that buffers
 * modifications in an `MvccTxn`, and hands them to the write path as one atomic write (the
 * group commit today, the region's Raft proposal next), holding its latches until the write
 * path reports the write applied and durable. Then it wakes the pessimistic lock requests
 * waiting for the locks the command released.
 *
 * For async commit and 1PC (`memoryLocks`), the keys are also taken in the concurrency
 * manager, and the locks the action asks to guard are published there before the latches
 * can let a reader near the keys — read max_ts, run the action, publish, with no await in
 * between — and withdrawn once the write is applied (with Raft: at apply, not at proposal).
 *
 * Time bound. An action over many keys returns its work as steps, one per key (see
 * src/txn/actions/steps.ts). Every `TXN_WRITE_SLICE_KEYS` steps the scheduler lets the
 * worker's event loop run (other requests, timers, messages from the main thread) before it
 * goes on, holding its latches, snapshot and buffer meanwhile; the batch is still written once,
 * at the end. A `memoryLocks` command never pauses (a reader coming in between would miss its
 * unpublished locks), so it may span at most one slice.
 */
import { setImmediate } from "node:timers";
import { TXN_WRITE_SLICE_KEYS } from "../../constants.ts";
import { MvccReader, type MvccResult, MvccTxn } from "../../mvcc/mod.ts";
import type { ReleasedLock } from "../../mvcc/txn.ts";
import { type Modification, type RegionMeta, RegionSnapshot } from "../../storage/mod.ts";
import type { Key, TimeStamp } from "../../txn_types/mod.ts";
import type { KeyHandleGuard } from "../../txn/concurrency_manager.ts";
import type { Lock } from "../../txn_types/mod.ts";
import { isKeySteps, type KeySteps } from "../../txn/actions/steps.ts";
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
  /** The command's region: its snapshot is clamped to it, and its writes must lie in it. */
  region: RegionMeta;
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
  action: (context: ActionContext) => MvccResult<T> | KeySteps<T>,
): Promise<MvccResult<T>> {
  const memoryLocks = options.memoryLocks === true;
  if (memoryLocks && options.keys.length > TXN_WRITE_SLICE_KEYS) {
    throw new Error(
      `a memory-lock command over ${options.keys.length} keys exceeds one slice ` +
        `(${TXN_WRITE_SLICE_KEYS}); its caller must fall back to 2PC`,
    );
  }
  const release = await store.latches.acquire(TXN_LATCH, options.keys.map((key) => key.encoded));
  let guards: KeyHandleGuard<Lock>[] = [];
  try {
    if (memoryLocks) {
      // Once per distinct key: a request may name a key twice, and a second lockKey of a key
      // waits for the first forever, latches held (found by tests/fuzz: a 1PC prewrite).
      const distinct = new Map(options.keys.map((key) => [key.mapKey(), key.encoded]));
      guards = await store.concurrency.lockKeys([...distinct.values()]);
    }
    const txn = new MvccTxn(options.startTs);
    const others: MvccTxn[] = [];
    let result: MvccResult<T>;
    {
      using snapshot = RegionSnapshot.take(store.engine, options.region);
      using reader = new MvccReader(snapshot);
      const run = action({ reader, txn, maxTs: store.concurrency.maxTs(), others });
      // A memory-lock command runs its steps synchronously: even an `await` that never pauses
      // yields a microtask turn in which a reader could raise max_ts and miss the locks not
      // yet published (the bank test caught this: fractured reads under async commit and 1PC).
      if (!isKeySteps(run)) result = run;
      else if (memoryLocks) result = runToEnd(run);
      else result = await runInSlices(run);
    }
    const txns = [txn, ...others];
    for (const written of txns) {
      // Uniqueness checks and status checks are reads: later commits must order after them.
      if (written.observedReadTs > 0n) store.concurrency.updateMaxTs(written.observedReadTs);
    }
    if (!result.ok) return result;
    publishGuardedLocks(txn, guards);
    await writeTxns(store, options.region, txns);
    for (const written of txns) wakeWaiters(store, written.releasedLocks);
    return result;
  } finally {
    for (const guard of guards) guard.release();
    release();
  }
}

/** Runs `steps` to the end, letting the event loop run after every `TXN_WRITE_SLICE_KEYS` steps. */
async function runInSlices<T>(steps: KeySteps<T>): Promise<MvccResult<T>> {
  let stepsInSlice = 0;
  for (;;) {
    const step = steps.next();
    if (step.done === true) return step.value;
    if (++stepsInSlice < TXN_WRITE_SLICE_KEYS) continue;
    stepsInSlice = 0;
    await yieldToEventLoop();
  }
}

/**
 * Runs `steps` to the end without ever yielding: for memory-lock commands, which the caller has
 * already bounded to one slice (see the module header).
 */
function runToEnd<T>(steps: KeySteps<T>): MvccResult<T> {
  for (;;) {
    const step = steps.next();
    if (step.done === true) return step.value;
  }
}

/**
 * Lets the event loop run: timers, I/O and messages from the main thread get their turn
 * before the promise settles. (Measured on Deno 2.9.6: `setImmediate` costs ~0.1–0.8 ms a
 * pause; `setTimeout(0)` is clamped to ~2–4 ms once nested; a MessageChannel round trip lets
 * no worker message in.)
 */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Paces a command that works in rounds (region-wide resolve, GC, pessimistic rollback of a
 * whole region): each round is its own latched write, and after every `TXN_WRITE_SLICE_KEYS`
 * keys of rounds the event loop runs, as between the slices of one write.
 */
export class SlicePacer {
  #keysInSlice = 0;

  /** Counts `keys` more; resolves after a pause to the event loop when a slice is full. */
  async advance(keys: number): Promise<void> {
    this.#keysInSlice += keys;
    if (this.#keysInSlice < TXN_WRITE_SLICE_KEYS) return;
    this.#keysInSlice = 0;
    await yieldToEventLoop();
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

/**
 * Writes what `txns` buffered as one atomic write through the store's write path; settles once
 * it is applied (durable with sync-log). Nothing is written when they are empty.
 */
export function writeTxns(
  store: TxnStore,
  region: RegionMeta,
  txns: readonly MvccTxn[],
): Promise<void> {
  if (txns.every((txn) => txn.isEmpty())) return Promise.resolve();
  const modifications: readonly Modification[] = txns.length === 1
    ? txns[0]!.modificationsToWrite()
    : txns.flatMap((txn) => txn.modificationsToWrite());
  return store.writes.write(region, modifications);
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
