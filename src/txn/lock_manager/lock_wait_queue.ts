/**
 * The lock-wait queue: pessimistic lock requests that met another transaction's lock wait here
 * until that lock is released, their timeout passes, or waiting would deadlock (TiKV
 * `storage/lock_manager/lock_waiting_queue.rs` and `server/lock_manager/waiter_manager.rs`, in
 * the "legacy" wake-up mode: a woken request retries from the start).
 *
 * Life of a waiter:
 * 1. The scheduler runs `acquire_pessimistic_lock`, which returns `KeyIsLocked`. If the request
 *    may wait (`normalizeWaitTimeoutMs`), the scheduler calls `wait()` with that error.
 * 2. Unless the request is the transaction's first lock, the deadlock detector gets the edge
 *    `startTs → lockTs`; a cycle ends the wait at once with `{ kind: "deadlock" }`.
 * 3. When the holder's lock on the key is released (commit, rollback, pessimistic rollback,
 *    resolve), the scheduler calls `wakeUp()`. The oldest waiter of the key is woken at once
 *    (`{ kind: "woken" }`) and retries the command. The other waiters of that key are woken
 *    `wakeUpDelayMs` after the latest wake-up of the key, so that if the first one re-locked
 *    the key they meet the new lock and wait again (with fresh deadlock detection), and if it
 *    did not they are not stuck until their timeout.
 * 4. A waiter whose timeout passes gets `{ kind: "timeout", error }`, `error` being the
 *    `KeyIsLocked` it waited on, which the scheduler returns to the client.
 *
 * Invariants: every waiter is in exactly one key queue and has exactly one pending timer
 * until its outcome is delivered; an outcome is delivered once; a delivered waiter has no
 * deadlock edge left for its key.
 *
 * The queue is pure: time comes from the injected `LockWaitTimer`.
 *
 * @module
 */

import { toHex } from "../../util/bytes.ts";
import {
  DEFAULT_WAIT_FOR_LOCK_TIMEOUT_MS,
  DEFAULT_WAKE_UP_DELAY_MS,
  LOCK_WAIT_MAX_WAITERS,
} from "./constants.ts";
import { type DeadlockDetector, type DeadlockInfo, type WaitForEntry } from "./deadlock.ts";
import { keyHash } from "./key_hash.ts";
import type { LockWaitTimer } from "./timer.ts";
import { assert } from "../../util/assert.ts";

/** A pessimistic lock request that met a lock, as handed to `LockWaitQueue.wait`. */
export interface LockWaitRequest<E> {
  /** Start ts of the waiting transaction. */
  readonly startTs: bigint;
  /** The encoded key it wants to lock (wake-ups are by this key). */
  readonly key: Uint8Array;
  /**
   * The key as the client sent it (raw), for diagnostics: wait-for entries and deadlock
   * errors carry it, as kvproto expects. Defaults to `key`.
   */
  readonly rawKey?: Uint8Array;
  /** Start ts of the transaction whose lock is on `key`. */
  readonly lockTs: bigint;
  /** The `KeyIsLocked` error the request met; returned unchanged on timeout. */
  readonly error: E;
  /** How long to wait, already normalized (see `normalizeWaitTimeoutMs`). */
  readonly timeoutMs: number;
  /** The transaction holds no other lock yet, so it cannot be part of a deadlock. */
  readonly isFirstLock: boolean;
  readonly resourceGroupTag?: Uint8Array;
}

/** How a wait ended. */
export type LockWaitOutcome<E> =
  /** The lock was released (`commitTs` 0 when rolled back): retry the request. */
  | { readonly kind: "woken"; readonly commitTs: bigint }
  /** Nothing released the lock in time: return `error` (the original `KeyIsLocked`). */
  | { readonly kind: "timeout"; readonly error: E }
  /** Waiting would close a cycle of waits: return kvproto's `Deadlock` built from `deadlock`. */
  | { readonly kind: "deadlock"; readonly deadlock: DeadlockInfo }
  /** Too many waiters already: return `error` without waiting. */
  | { readonly kind: "queue_full"; readonly error: E }
  /** The scheduler withdrew the request (region change, shutdown). */
  | { readonly kind: "cancelled"; readonly reason: string };

/** A waiting request: `token` identifies it for `cancel`, `outcome` settles once. */
export interface LockWaiter<E> {
  readonly token: number;
  readonly outcome: Promise<LockWaitOutcome<E>>;
}

/** Options of `new LockWaitQueue`. */
export interface LockWaitQueueOptions {
  readonly timer: LockWaitTimer;
  /** Detects deadlocks between waiters; shared with nothing else in a single-store setup. */
  readonly detector: DeadlockDetector;
  readonly wakeUpDelayMs?: number;
  /** Most waiting requests; defaults to `LOCK_WAIT_MAX_WAITERS`. */
  readonly maxWaiters?: number;
}

interface Waiter<E> {
  readonly token: number;
  readonly request: LockWaitRequest<E>;
  readonly keyHash: bigint;
  /** The key's wake-up counter when this waiter arrived (see `KeyQueue.wakeUpIndex`). */
  readonly arrivedAtWakeUpIndex: number;
  readonly cancelTimeout: () => void;
  readonly settle: (outcome: LockWaitOutcome<E>) => void;
}

interface KeyQueue<E> {
  /** Waiters in arrival order. */
  readonly waiters: Waiter<E>[];
  /**
   * Counts wake-ups of this key. The delayed wake-up only wakes waiters that arrived before
   * the latest wake-up, not those that came after and are waiting on a new holder.
   */
  wakeUpIndex: number;
  cancelDelayedWakeUp: (() => void) | undefined;
}

/**
 * Maps the protocol's `wait_timeout` (ms; 0 = the default, negative = do not wait) to the time
 * to wait, capped at the default; `undefined` means "do not wait".
 */
export function normalizeWaitTimeoutMs(
  waitTimeout: bigint,
  defaultMs = DEFAULT_WAIT_FOR_LOCK_TIMEOUT_MS,
): number | undefined {
  if (waitTimeout < 0n) return undefined;
  if (waitTimeout === 0n || waitTimeout > BigInt(defaultMs)) return defaultMs;
  return Number(waitTimeout);
}

/**
 * The waiters of one store (or one worker's regions).
 *
 * @example
 * ```ts
 * import { DeadlockDetector } from "./deadlock.ts";
 * import { LockWaitQueue } from "./lock_wait_queue.ts";
 * import { ManualTimer } from "./timer.ts";
 * const queue = new LockWaitQueue<string>({ timer: new ManualTimer(), detector: new DeadlockDetector() });
 * const k = new Uint8Array([1]);
 * const waiter = queue.wait({ startTs: 20n, key: k, lockTs: 10n, error: "locked", timeoutMs: 100, isFirstLock: true });
 * queue.wakeUp({ lockTs: 10n, keys: [k], commitTs: 15n });
 * await waiter.outcome; // { kind: "woken", commitTs: 15n }
 * ```
 */
export class LockWaitQueue<E> {
  readonly #timer: LockWaitTimer;
  readonly #detector: DeadlockDetector;
  readonly #wakeUpDelayMs: number;
  readonly #maxWaiters: number;
  /** hex(key) → queue. */
  readonly #queues = new Map<string, KeyQueue<E>>();
  readonly #byToken = new Map<number, Waiter<E>>();
  #nextToken = 1;

  constructor(options: LockWaitQueueOptions) {
    this.#timer = options.timer;
    this.#detector = options.detector;
    this.#wakeUpDelayMs = options.wakeUpDelayMs ?? DEFAULT_WAKE_UP_DELAY_MS;
    this.#maxWaiters = options.maxWaiters ?? LOCK_WAIT_MAX_WAITERS;
    assert(this.#wakeUpDelayMs >= 0, "the wake-up delay is not negative", {
      wakeUpDelayMs: this.#wakeUpDelayMs,
    });
    assert(
      this.#maxWaiters >= 0 && this.#maxWaiters <= LOCK_WAIT_MAX_WAITERS,
      "maxWaiters is within 0..LOCK_WAIT_MAX_WAITERS",
      { maxWaiters: this.#maxWaiters },
    );
  }

  /** Enqueues `request`; its outcome settles on wake-up, timeout, deadlock or cancel. */
  wait(request: LockWaitRequest<E>): LockWaiter<E> {
    if (!(request.timeoutMs >= 0) || request.startTs === request.lockTs) {
      assert(false, "a txn waits with a timeout, and never for its own lock", {
        timeoutMs: request.timeoutMs,
        startTs: request.startTs,
        lockTs: request.lockTs,
        key: request.key,
      });
    }
    const token = this.#nextToken++;
    if (this.#byToken.size >= this.#maxWaiters) {
      return { token, outcome: Promise.resolve({ kind: "queue_full", error: request.error }) };
    }
    const hash = keyHash(request.key);
    const nowMs = this.#timer.nowMs();
    if (!request.isFirstLock) {
      const deadlock = this.#detector.detect({
        txnTs: request.startTs,
        lockTs: request.lockTs,
        keyHash: hash,
        key: request.rawKey ?? request.key,
        resourceGroupTag: request.resourceGroupTag,
        nowMs,
      });
      if (deadlock !== undefined) {
        return { token, outcome: Promise.resolve({ kind: "deadlock", deadlock }) };
      }
    }
    const queue = this.#queueFor(request.key);
    let settle!: (outcome: LockWaitOutcome<E>) => void;
    const outcome = new Promise<LockWaitOutcome<E>>((resolve) => (settle = resolve));
    const waiter: Waiter<E> = {
      token,
      request,
      keyHash: hash,
      arrivedAtWakeUpIndex: queue.wakeUpIndex,
      cancelTimeout: this.#timer.schedule(request.timeoutMs, () => {
        this.#finish(token, { kind: "timeout", error: request.error });
      }),
      settle,
    };
    queue.waiters.push(waiter);
    this.#byToken.set(token, waiter);
    return { token, outcome };
  }

  /**
   * The locks of transaction `lockTs` on `keys` were released (committed at `commitTs`, or
   * rolled back when it is 0). Wakes the oldest waiter of each key now and the rest of that
   * key's earlier waiters after the wake-up delay.
   */
  wakeUp(released: { lockTs: bigint; keys: readonly Uint8Array[]; commitTs: bigint }): void {
    for (const key of released.keys) {
      const queue = this.#queues.get(toHex(key));
      if (queue === undefined) continue;
      const head = queue.waiters[0];
      if (head === undefined) continue;
      queue.wakeUpIndex++;
      this.#finish(head.token, { kind: "woken", commitTs: released.commitTs });
      this.#scheduleDelayedWakeUp(queue, released.commitTs);
    }
  }

  /** Withdraws a waiter; its outcome becomes `{ kind: "cancelled", reason }`. */
  cancel(token: number, reason: string): void {
    this.#finish(token, { kind: "cancelled", reason });
  }

  /**
   * Transaction `startTs` finished (committed or rolled back): its wait-for edges go, so it
   * cannot appear in a deadlock any more.
   */
  cleanUpTxn(startTs: bigint): void {
    this.#detector.cleanUp(startTs);
  }

  /** Whether any request is waiting (lets the scheduler skip `wakeUp` work). */
  hasWaiters(): boolean {
    return this.#byToken.size > 0;
  }

  /** Number of waiting requests. */
  waiterCount(): number {
    return this.#byToken.size;
  }

  /** The current waits, as kvproto `WaitForEntry` shapes, oldest first per key. */
  waitForEntries(): WaitForEntry[] {
    const out: WaitForEntry[] = [];
    for (const queue of this.#queues.values()) {
      for (const waiter of queue.waiters) {
        out.push({
          txn: waiter.request.startTs,
          waitForTxn: waiter.request.lockTs,
          keyHash: waiter.keyHash,
          key: waiter.request.rawKey ?? waiter.request.key,
          resourceGroupTag: waiter.request.resourceGroupTag ?? new Uint8Array(),
        });
      }
    }
    return out;
  }

  /**
   * (Re)arms the key's delayed wake-up. `#finish` cancels it when the queue empties, so the
   * callback always sees the queue that is in the map.
   */
  #scheduleDelayedWakeUp(queue: KeyQueue<E>, commitTs: bigint): void {
    queue.cancelDelayedWakeUp?.();
    queue.cancelDelayedWakeUp = undefined;
    if (queue.waiters.length === 0) return;
    queue.cancelDelayedWakeUp = this.#timer.schedule(this.#wakeUpDelayMs, () => {
      queue.cancelDelayedWakeUp = undefined;
      // Waiters arrive in order and the wake-up counter only grows, so the due ones are a
      // prefix: taken off in one splice, not one search and splice each (quadratic in the
      // waiters of a hot key).
      let dueCount = 0;
      while (
        dueCount < queue.waiters.length &&
        queue.waiters[dueCount]!.arrivedAtWakeUpIndex < queue.wakeUpIndex
      ) dueCount++;
      const due = queue.waiters.splice(0, dueCount);
      if (queue.waiters.length === 0 && due.length > 0) {
        this.#queues.delete(toHex(due[0]!.request.key));
      }
      for (const waiter of due) this.#deliver(waiter, { kind: "woken", commitTs });
    });
  }

  /** Delivers `outcome` to waiter `token` once and forgets the waiter. */
  #finish(token: number, outcome: LockWaitOutcome<E>): void {
    const waiter = this.#byToken.get(token);
    if (waiter === undefined) return;
    const hex = toHex(waiter.request.key);
    const queue = this.#queues.get(hex);
    assert(queue !== undefined, "a waiter's key has a queue", { token, key: hex });
    const index = queue.waiters.indexOf(waiter);
    assert(index >= 0, "a waiter is in its key's queue", { token, key: hex });
    queue.waiters.splice(index, 1);
    if (queue.waiters.length === 0) {
      queue.cancelDelayedWakeUp?.();
      this.#queues.delete(hex);
    }
    this.#deliver(waiter, outcome);
  }

  /** Settles `waiter`, already taken off its key queue, and forgets it. */
  #deliver(waiter: Waiter<E>, outcome: LockWaitOutcome<E>): void {
    const known = this.#byToken.delete(waiter.token);
    assert(known, "a waiter's outcome is delivered once", { token: waiter.token });
    waiter.cancelTimeout();
    if (!waiter.request.isFirstLock) {
      this.#detector.cleanUpWaitFor({
        txnTs: waiter.request.startTs,
        lockTs: waiter.request.lockTs,
        keyHash: waiter.keyHash,
      });
    }
    waiter.settle(outcome);
  }

  #queueFor(key: Uint8Array): KeyQueue<E> {
    const hex = toHex(key);
    let queue = this.#queues.get(hex);
    if (queue === undefined) {
      queue = { waiters: [], wakeUpIndex: 0, cancelDelayedWakeUp: undefined };
      this.#queues.set(hex, queue);
    }
    return queue;
  }
}
