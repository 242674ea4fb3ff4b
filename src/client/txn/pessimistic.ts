/**
 * Pessimistic locks (client-go's `pessimisticLock` action): a pessimistic transaction locks
 * keys while it runs, so its prewrite cannot meet a write conflict later.
 *
 * - Each lock call takes a fresh `for_update_ts` from the TSO: the lock is granted only if no
 *   one committed the key after it, and `return_values` reads the key's newest value at it.
 * - The transaction's primary is the first key it ever locks; the primary's region is locked
 *   first (its lock must exist before any secondary names it), then the other regions in
 *   parallel.
 * - A conflicting lock: the store waits for it (`wait_timeout`, a slice of the caller's lock
 *   wait timeout) in its lock-wait queue, and answers KeyIsLocked if it is still held. The
 *   client resolves the lock (its holder may be dead) and asks again until the caller's wait
 *   timeout: then `LockWaitTimeoutError`.
 * - Deadlock (the store's detector found a cycle through this wait): `DeadlockError`.
 * - WriteConflict (PessimisticRetry: someone committed after our for_update_ts): a newer
 *   for_update_ts is taken and the call runs again, as TiDB retries the statement.
 * - On failure, the keys this call locked are released (PessimisticRollback); keys locked by
 *   earlier calls stay locked.
 */
import { kvrpcpb } from "../../../proto/mod.ts";
import { bytesEqual } from "../../util/bytes.ts";
import type { Backoffer } from "../backoff.ts";
import type { RegionInfo } from "../region.ts";
import type { TimestampOracle } from "../tso.ts";
import { keyId } from "./buffer.ts";
import {
  LOCK_BACKOFF_BASE_MS,
  LOCK_BACKOFF_CAP_MS,
  MAX_PESSIMISTIC_RETRIES,
  PESSIMISTIC_LOCK_WAIT_SLICE_MS,
} from "./constants.ts";
import { LockWaitTimeoutError, TxnError, WriteConflictError } from "./errors.ts";
import { type LockInfo, lockOfKeyError, txnErrorOf } from "./key_errors.ts";
import { LockBackoff } from "./lock_backoff.ts";
import type { LockResolver } from "./lock_resolver.ts";
import { RETRY, type TxnRpc } from "./rpc.ts";

/** The pessimistic state of one transaction. */
export interface PessimisticState {
  startTs: bigint;
  /** The primary, once the first key is locked. */
  primary: Uint8Array | null;
  /** Newest for_update_ts used. */
  forUpdateTs: bigint;
  /** Keys holding our pessimistic locks, by keyId. */
  lockedKeys: Set<string>;
  lockTtlMs: number;
}

/** What locking needs of the client. */
export interface LockContext {
  rpc: TxnRpc;
  tso: TimestampOracle;
  resolver: LockResolver;
  timeoutMs: number;
}

/** Options of one lock call. */
export interface LockKeysOptions {
  /** Longest total wait for conflicting locks, ms (0: do not wait). */
  lockWaitTimeoutMs: number;
  /** Return each key's newest value. */
  returnValues: boolean;
  /** Keys that must not exist (insert in a pessimistic transaction), by keyId. */
  mustNotExist?: ReadonlySet<string>;
}

/** Values read while locking (when asked), by keyId; null for absent keys. */
export type LockedValues = Map<string, Uint8Array | null>;

class PessimisticRetry extends Error {
  constructor(readonly conflict: WriteConflictError) {
    super(conflict.message);
  }
}

/** Locks `keys` for `state`'s transaction (see the module comment). */
export async function acquirePessimisticLocks(
  context: LockContext,
  state: PessimisticState,
  keys: readonly Uint8Array[],
  options: LockKeysOptions,
): Promise<LockedValues> {
  const backoffer = context.rpc.backoffer(context.timeoutMs + options.lockWaitTimeoutMs);
  const waitDeadlineMs = context.rpc.clock.nowMs() + options.lockWaitTimeoutMs;
  const fresh = keys.filter((key) => !state.lockedKeys.has(keyId(key)));
  const newlyLocked: Uint8Array[] = [];
  for (let attempt = 0;; attempt++) {
    const forUpdateTs = await context.tso.getTimestamp({ deadlineMs: backoffer.deadlineMs });
    try {
      const values = await lockOnce(context, state, keys, {
        ...options,
        forUpdateTs,
        backoffer,
        waitDeadlineMs,
        newlyLocked,
      });
      if (forUpdateTs > state.forUpdateTs) state.forUpdateTs = forUpdateTs;
      for (const key of keys) state.lockedKeys.add(keyId(key));
      return values;
    } catch (error) {
      if (error instanceof PessimisticRetry && attempt + 1 < MAX_PESSIMISTIC_RETRIES) continue;
      await releaseLocks(context, state, {
        keys: newlyLocked.filter((key) => fresh.some((k) => bytesEqual(k, key))),
        forUpdateTs,
      });
      if (state.lockedKeys.size === 0) state.primary = null;
      throw error instanceof PessimisticRetry ? error.conflict : error;
    }
  }
}

/** One round of locking at `forUpdateTs`: the primary's region first, then the rest. */
async function lockOnce(
  context: LockContext,
  state: PessimisticState,
  keys: readonly Uint8Array[],
  how: LockKeysOptions & {
    forUpdateTs: bigint;
    backoffer: Backoffer;
    waitDeadlineMs: number;
    newlyLocked: Uint8Array[];
  },
): Promise<LockedValues> {
  const values: LockedValues = new Map();
  const isFirstLock = state.primary === null;
  state.primary ??= keys[0]!.slice();
  const primary = state.primary;
  const primaryFirst = keys.filter((key) => bytesEqual(key, primary));
  const rest = keys.filter((key) => !bytesEqual(key, primary));
  for (const group of [primaryFirst, rest]) {
    if (group.length === 0) continue;
    await context.rpc.forEachKeyBatch(group, {
      backoffer: how.backoffer,
      send: (region, part, backoffer) =>
        lockBatch(context, state, {
          ...how,
          backoffer,
          region,
          keys: part,
          values,
          isFirstLock,
        }),
    });
  }
  return values;
}

async function lockBatch(
  context: LockContext,
  state: PessimisticState,
  how: LockKeysOptions & {
    region: RegionInfo;
    keys: Uint8Array[];
    values: LockedValues;
    forUpdateTs: bigint;
    backoffer: Backoffer;
    waitDeadlineMs: number;
    newlyLocked: Uint8Array[];
    isFirstLock: boolean;
  },
): Promise<void | typeof RETRY> {
  const lockBackoff = new LockBackoff(how.backoffer, {
    baseMs: LOCK_BACKOFF_BASE_MS,
    capMs: LOCK_BACKOFF_CAP_MS,
  });
  for (;;) {
    const leftMs = how.waitDeadlineMs - context.rpc.clock.nowMs();
    const response = await context.rpc.sendToRegion("PessimisticLock", how.region, {
      mutations: how.keys.map((key) => ({
        op: kvrpcpb.Op.PessimisticLock,
        key,
        assertion: how.mustNotExist?.has(keyId(key))
          ? kvrpcpb.Assertion.NotExist
          : kvrpcpb.Assertion.None,
      })),
      primaryLock: state.primary!,
      startVersion: state.startTs,
      lockTtl: BigInt(state.lockTtlMs),
      forUpdateTs: how.forUpdateTs,
      isFirstLock: how.isFirstLock,
      // Negative: the store answers at once; else it waits up to this long for the lock.
      waitTimeout: BigInt(leftMs <= 0 ? -1 : Math.min(leftMs, PESSIMISTIC_LOCK_WAIT_SLICE_MS)),
      returnValues: how.returnValues,
      minCommitTs: how.forUpdateTs + 1n,
    }, { backoffer: how.backoffer, idempotent: true });
    if (response === RETRY) return RETRY;
    if (response.errors.length === 0) {
      how.keys.forEach((key, i) => {
        how.newlyLocked.push(key);
        if (!how.returnValues) return;
        const notFound = response.notFounds[i] ?? false;
        how.values.set(keyId(key), notFound ? null : response.values[i] ?? new Uint8Array(0));
      });
      return;
    }
    const locks = lockErrors(response.errors, state.startTs);
    if (context.rpc.clock.nowMs() >= how.waitDeadlineMs) {
      const lock = locks[0]!;
      throw new LockWaitTimeoutError(lock.key, lock.lockTs, how.lockWaitTimeoutMs);
    }
    const result = await context.resolver.resolveLocks(locks, {
      callerStartTs: 0n,
      backoffer: how.backoffer,
    });
    if (result.msBeforeExpired > 0 && how.waitDeadlineMs - context.rpc.clock.nowMs() > 0) {
      // The store already waited its slice; a short pause keeps a busy lock from being polled.
      await lockBackoff.wait(Math.min(result.msBeforeExpired, LOCK_BACKOFF_BASE_MS), "a lock");
    }
  }
}

/** The locks among `errors`; any other error is thrown (WriteConflict as a retry signal). */
function lockErrors(errors: kvrpcpb.KeyError.$Properties[], startTs: bigint): LockInfo[] {
  const locks: LockInfo[] = [];
  for (const error of errors) {
    const lock = lockOfKeyError(error);
    if (lock !== null) {
      locks.push(lock);
      continue;
    }
    const failure: TxnError = txnErrorOf(error, startTs);
    if (failure instanceof WriteConflictError) throw new PessimisticRetry(failure);
    throw failure;
  }
  return locks;
}

/** PessimisticRollback of `keys` (best effort: they also expire). */
export async function releaseLocks(
  context: LockContext,
  state: PessimisticState,
  how: { keys: readonly Uint8Array[]; forUpdateTs: bigint },
): Promise<void> {
  if (how.keys.length === 0) return;
  const backoffer = context.rpc.backoffer(context.timeoutMs);
  try {
    await context.rpc.forEachKeyBatch(how.keys, {
      backoffer,
      send: async (region, part, requestBackoffer) => {
        const response = await context.rpc.sendToRegion("PessimisticRollback", region, {
          startVersion: state.startTs,
          forUpdateTs: how.forUpdateTs,
          keys: part,
        }, { backoffer: requestBackoffer, idempotent: true });
        if (response === RETRY) return RETRY;
      },
    });
  } catch {
    // The locks expire on their own; a resolver removes them.
  }
  for (const key of how.keys) state.lockedKeys.delete(keyId(key));
}
