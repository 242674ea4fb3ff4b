/**
 * The lock resolver (client-go's `LockResolver`, Percolator's "secondary lock resolved by
 * primary"): a request that met another transaction's lock asks that transaction's primary
 * key what became of it, and finishes the job the transaction's client may never finish.
 *
 * For each lock:
 * 1. CheckTxnStatus on the lock's primary with `caller_start_ts` (a reader's start ts, 0 for a
 *    writer) and a fresh `current_ts`. The store answers: committed at ts, rolled back, or
 *    still locked (with TTL). It rolls the primary back itself when the TTL expired, and for a
 *    reader pushes the lock's `min_commit_ts` above the reader's ts when it can.
 *    - TxnNotFound (the primary was never prewritten, or not yet): when the met lock expired,
 *      ask again with `rollback_if_not_exist` (a protected rollback stops a late prewrite);
 *      else back off and ask again.
 * 2. Async-commit primaries are never decided by TTL on the store: once expired, the resolver
 *    runs CheckSecondaryLocks on every secondary (grouped by region). A secondary reported
 *    committed decides "committed"; any secondary missing its lock decides "rolled back"
 *    (the store wrote a rollback for it); otherwise the transaction committed at the largest
 *    `min_commit_ts` of all its locks. A secondary that is not an async-commit lock means the
 *    client fell back to 2PC: CheckTxnStatus again with `force_sync_commit`.
 * 3. Decided: ResolveLock (commit at the ts, or roll back) — only the met key when the
 *    transaction is small ("lite", client-go's `bigTxnThreshold`), else every lock of the
 *    transaction in the region; a pessimistic lock is removed with PessimisticRollback.
 *    Still running: a reader whose read the store pushed past (min_commit_ts above its ts)
 *    may ignore the transaction's locks (`bypass`); otherwise the caller waits at most until
 *    the lock expires.
 *
 * Decided statuses are cached (bounded): a transaction's fate never changes once decided.
 */
import { kvrpcpb } from "../../../proto/mod.ts";
import type { Backoffer } from "../backoff.ts";
import type { RegionInfo } from "../region.ts";
import { physicalOf, type TimestampOracle } from "../tso.ts";
import {
  RESOLVED_CACHE_MAX_ENTRIES,
  TXN_NOT_FOUND_BACKOFF_BASE_MS,
  TXN_NOT_FOUND_BACKOFF_CAP_MS,
} from "./constants.ts";
import { type LockInfo, lockOf, txnErrorOf } from "./key_errors.ts";
import { LockBackoff } from "./lock_backoff.ts";
import { RETRY, type TxnRpc } from "./rpc.ts";
import type { Clock } from "../clock.ts";
import { keyId } from "./buffer.ts";

/** Transactions with fewer keys are resolved key by key (client-go `bigTxnThreshold`). */
const BIG_TXN_THRESHOLD = 16;
/** A pessimistic lock's rollback ignores its for_update_ts. */
const FOR_UPDATE_TS_ANY = 0xffff_ffff_ffff_ffffn;

/** What CheckTxnStatus (or async-commit recovery) found. */
export interface TxnStatus {
  /** > 0: still locked with this TTL. */
  ttlMs: number;
  /** > 0: committed at this ts. Both 0: rolled back. */
  commitTs: bigint;
  action: kvrpcpb.Action;
  /** The primary lock, when still locked. */
  primaryLock: LockInfo | null;
}

/** Whether the status is final (committed or rolled back). */
export function isDecided(status: TxnStatus): boolean {
  return status.ttlMs === 0;
}

/** The outcome of one `resolveLocks` call. */
export interface ResolveResult {
  /** Ms until the first lock still in the way expires; 0 when none is. */
  msBeforeExpired: number;
  /** Start ts of transactions whose locks the caller's reads may ignore from now on. */
  bypass: bigint[];
  /** Start ts of transactions committed at or below the caller's ts: read through their locks. */
  readThrough: bigint[];
}

/** Options of `resolveLocks`. */
export interface ResolveOptions {
  /** The reader's start ts, or 0 for a writer (no min_commit_ts push). */
  callerStartTs: bigint;
  backoffer: Backoffer;
}

class TxnNotFound extends Error {}

/** A timestamp and the local clock when it was fetched: an estimate of "now" later. */
interface CurrentTs {
  ts: bigint;
  fetchedAtMs: number;
  /** The clock `fetchedAtMs` was read from (the client's). */
  clock: Clock;
}

/** Resolves the locks met by requests of one `TxnKV`. */
export class LockResolver {
  readonly #resolved = new Map<bigint, TxnStatus>();
  /** Counts of work done, for tests and statistics. */
  readonly stats = { checkTxnStatus: 0, resolveLock: 0, checkSecondaryLocks: 0, rollbacks: 0 };

  constructor(readonly rpc: TxnRpc, readonly tso: TimestampOracle) {}

  /** Resolves `locks` as far as now possible (see the module comment). */
  async resolveLocks(locks: readonly LockInfo[], options: ResolveOptions): Promise<ResolveResult> {
    let msBeforeExpired = 0;
    const bypass: bigint[] = [];
    const readThrough: bigint[] = [];
    const current = await this.#currentTs(options.backoffer);
    const seen = new Set<string>();
    for (const lock of locks) {
      const id = `${lock.lockTs}:${keyId(lock.key)}`;
      if (seen.has(id)) continue;
      seen.add(id);
      const status = await this.#statusOf(lock, { ...options, current });
      if (isDecided(status)) {
        await this.#resolveDecided(lock, status, options.backoffer);
        // The transaction's other locks (a "lite" resolution leaves them) need not stop a
        // reader: rolled back or committed above it, they are invisible; committed at or
        // below it, their values are the committed ones.
        if (options.callerStartTs > 0n) {
          const visible = status.commitTs > 0n && status.commitTs <= options.callerStartTs;
          (visible ? readThrough : bypass).push(lock.lockTs);
        }
        continue;
      }
      const pushed = options.callerStartTs > 0n && status.primaryLock !== null &&
        status.primaryLock.minCommitTs > options.callerStartTs;
      if (pushed) {
        // It commits above the caller's ts (async commit: at the largest min_commit_ts).
        bypass.push(lock.lockTs);
        continue;
      }
      const left = msLeft(lock.lockTs, status.ttlMs, current);
      msBeforeExpired = msBeforeExpired === 0 ? Math.max(1, left) : Math.min(msBeforeExpired, left);
    }
    return { msBeforeExpired, bypass, readThrough };
  }

  /** The status of the transaction holding `lock`, deciding async-commit ones once expired. */
  async #statusOf(
    lock: LockInfo,
    options: ResolveOptions & { current: CurrentTs },
  ): Promise<TxnStatus> {
    let status = await this.#statusFromLock(lock, { ...options, forceSyncCommit: false });
    if (isDecided(status) || !status.primaryLock?.useAsyncCommit) return status;
    if (msLeft(lock.lockTs, status.ttlMs, options.current) > 0) return status;
    const decided = await this.#checkAllSecondaries(lock, status, options.backoffer);
    if (decided !== null) {
      await this.#resolveAsyncCommit(lock, status.primaryLock, decided, options.backoffer);
      this.#remember(lock.lockTs, decided);
      return decided;
    }
    // A secondary was not an async-commit lock: the client fell back to 2PC.
    status = await this.#statusFromLock(lock, { ...options, forceSyncCommit: true });
    return status;
  }

  /** CheckTxnStatus for `lock`'s transaction, handling TxnNotFound as client-go does. */
  async #statusFromLock(
    lock: LockInfo,
    options: ResolveOptions & { current: CurrentTs; forceSyncCommit: boolean },
  ): Promise<TxnStatus> {
    const cached = this.#resolved.get(lock.lockTs);
    if (cached !== undefined) return cached;
    let rollbackIfNotExist = false;
    const notFoundBackoff = new LockBackoff(options.backoffer, {
      baseMs: TXN_NOT_FOUND_BACKOFF_BASE_MS,
      capMs: TXN_NOT_FOUND_BACKOFF_CAP_MS,
    });
    for (;;) {
      try {
        return await this.checkTxnStatus(lock, { ...options, rollbackIfNotExist });
      } catch (error) {
        if (!(error instanceof TxnNotFound)) throw error;
      }
      const current = await this.#currentTs(options.backoffer);
      const left = msLeft(lock.lockTs, lock.ttlMs, current);
      if (left <= 0) {
        rollbackIfNotExist = true;
        continue;
      }
      if (lock.lockType === kvrpcpb.Op.PessimisticLock) {
        // The primary may not be locked yet; the caller waits on this lock's own TTL.
        return {
          ttlMs: lock.ttlMs,
          commitTs: 0n,
          action: kvrpcpb.Action.NoAction,
          primaryLock: null,
        };
      }
      await notFoundBackoff.wait(left, `the primary of txn ${lock.lockTs}`);
    }
  }

  /** One CheckTxnStatus on the primary of `lock`; throws TxnNotFound when the store says so. */
  async checkTxnStatus(
    lock: LockInfo,
    options: {
      callerStartTs: bigint;
      current: CurrentTs;
      rollbackIfNotExist: boolean;
      forceSyncCommit: boolean;
      backoffer: Backoffer;
    },
  ): Promise<TxnStatus> {
    this.stats.checkTxnStatus++;
    const response = await this.rpc.sendToKey("CheckTxnStatus", lock.primary, () => ({
      primaryKey: lock.primary,
      lockTs: lock.lockTs,
      callerStartTs: options.callerStartTs,
      currentTs: options.current.ts,
      rollbackIfNotExist: options.rollbackIfNotExist,
      forceSyncCommit: options.forceSyncCommit,
      resolvingPessimisticLock: lock.lockType === kvrpcpb.Op.PessimisticLock,
    }), { backoffer: options.backoffer, idempotent: true });
    if (response.error != null) {
      if (response.error.txnNotFound != null) throw new TxnNotFound();
      throw txnErrorOf(response.error, lock.lockTs);
    }
    const status: TxnStatus = {
      ttlMs: Number(response.lockTtl),
      commitTs: response.commitVersion,
      action: response.action,
      primaryLock: response.lockInfo != null ? lockOf(response.lockInfo) : null,
    };
    if (isDecided(status) && cacheable(status)) this.#remember(lock.lockTs, status);
    return status;
  }

  /**
   * Async-commit recovery: the decided status from every secondary, or null when one is not
   * an async-commit lock (the transaction fell back to 2PC).
   */
  async #checkAllSecondaries(
    lock: LockInfo,
    status: TxnStatus,
    backoffer: Backoffer,
  ): Promise<TxnStatus | null> {
    const primary = status.primaryLock!;
    let commitTs = primary.minCommitTs;
    let committedAt = 0n;
    let missing = false;
    let fallback = false;
    await this.rpc.forEachRegionBatch(primary.secondaries, {
      keyOf: (key) => key,
      chunk: (keys) => [keys],
      backoffer,
      concurrency: 16,
      send: async (region, keys, requestBackoffer) => {
        this.stats.checkSecondaryLocks++;
        const response = await this.rpc.sendToRegion("CheckSecondaryLocks", region, {
          keys,
          startVersion: lock.lockTs,
        }, { backoffer: requestBackoffer, idempotent: true });
        if (response === RETRY) return RETRY;
        if (response.error != null) throw txnErrorOf(response.error, lock.lockTs);
        if (response.commitTs > 0n) committedAt = response.commitTs;
        if (response.locks.length < keys.length) missing = true;
        for (const info of response.locks.map(lockOf)) {
          if (!info.useAsyncCommit) fallback = true;
          if (info.minCommitTs > commitTs) commitTs = info.minCommitTs;
        }
      },
    });
    const decided = (commit: bigint): TxnStatus => ({
      ttlMs: 0,
      commitTs: commit,
      action: kvrpcpb.Action.NoAction,
      primaryLock: null,
    });
    if (committedAt > 0n) return decided(committedAt);
    if (missing) return decided(0n);
    if (fallback) return null;
    return decided(commitTs);
  }

  /** Commits or rolls back every lock of an async-commit transaction (secondaries and primary). */
  async #resolveAsyncCommit(
    lock: LockInfo,
    primary: LockInfo,
    status: TxnStatus,
    backoffer: Backoffer,
  ): Promise<void> {
    const keys = [lock.primary, ...primary.secondaries];
    await this.rpc.forEachRegionBatch(keys, {
      keyOf: (key) => key,
      chunk: (part) => [part],
      backoffer,
      concurrency: 16,
      send: (region, part, requestBackoffer) =>
        this.#resolveKeys(region, part, {
          lockTs: lock.lockTs,
          status,
          backoffer: requestBackoffer,
        }),
    });
  }

  /** Removes a decided transaction's lock as the module comment says. */
  async #resolveDecided(lock: LockInfo, status: TxnStatus, backoffer: Backoffer): Promise<void> {
    if (lock.lockType === kvrpcpb.Op.PessimisticLock) {
      this.stats.rollbacks++;
      const response = await this.rpc.sendToKey("PessimisticRollback", lock.key, () => ({
        startVersion: lock.lockTs,
        forUpdateTs: FOR_UPDATE_TS_ANY,
        keys: [lock.key],
      }), { backoffer, idempotent: true });
      const error = response.errors[0];
      if (error != null) throw txnErrorOf(error, lock.lockTs);
      return;
    }
    const lite = lock.txnSize < BIG_TXN_THRESHOLD;
    for (;;) {
      const region = await this.rpc.locate(lock.key, backoffer);
      const outcome = await this.#resolveKeys(region, lite ? [lock.key] : [], {
        lockTs: lock.lockTs,
        status,
        backoffer,
      });
      if (outcome !== RETRY) return;
    }
  }

  /** ResolveLock of `keys` (all the transaction's locks in the region when empty). */
  async #resolveKeys(
    region: RegionInfo,
    keys: Uint8Array[],
    how: { lockTs: bigint; status: TxnStatus; backoffer: Backoffer },
  ): Promise<void | typeof RETRY> {
    this.stats.resolveLock++;
    const response = await this.rpc.sendToRegion("ResolveLock", region, {
      startVersion: how.lockTs,
      commitVersion: how.status.commitTs,
      keys,
    }, { backoffer: how.backoffer, idempotent: true });
    if (response === RETRY) return RETRY;
    if (response.error != null) throw txnErrorOf(response.error, how.lockTs);
  }

  #remember(lockTs: bigint, status: TxnStatus): void {
    if (this.#resolved.size >= RESOLVED_CACHE_MAX_ENTRIES) {
      const oldest = this.#resolved.keys().next();
      if (!oldest.done) this.#resolved.delete(oldest.value);
    }
    this.#resolved.set(lockTs, status);
  }

  /** The decided status of transaction `lockTs` if this resolver learned it. */
  cachedStatus(lockTs: bigint): TxnStatus | undefined {
    return this.#resolved.get(lockTs);
  }

  async #currentTs(backoffer: Backoffer): Promise<CurrentTs> {
    const ts = await this.tso.getTimestamp({ deadlineMs: backoffer.deadlineMs });
    const clock = this.rpc.clock;
    return { ts, fetchedAtMs: clock.nowMs(), clock };
  }
}

/** Whether a decided status may be cached (client-go `StatusCacheable`). */
function cacheable(status: TxnStatus): boolean {
  if (status.commitTs > 0n) return true;
  return status.action === kvrpcpb.Action.NoAction ||
    status.action === kvrpcpb.Action.LockNotExistRollback ||
    status.action === kvrpcpb.Action.TTLExpireRollback;
}

/** Ms until a lock of `lockTs` with `ttlMs` expires, as of `current` (negative: expired). */
export function msLeft(lockTs: bigint, ttlMs: number, current: CurrentTs): number {
  const nowMs = physicalOf(current.ts) + (current.clock.nowMs() - current.fetchedAtMs);
  return physicalOf(lockTs) + ttlMs - nowMs;
}
