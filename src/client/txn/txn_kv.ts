/**
 * `TxnKV`: the transactional client (TiKV's `TransactionClient`): transactions with snapshot
 * isolation over Percolator, speaking only kvproto — KvGet/KvScan/KvBatchGet reads,
 * KvPrewrite/KvCommit two-phase commit (with async commit and 1PC), pessimistic locks, lock
 * resolution (KvCheckTxnStatus, KvCheckSecondaryLocks, KvResolveLock), heartbeats, region
 * splits (`splitRegions`) — with timestamps from PD's TSO stream, batched (`../tso.ts`).
 *
 * - `begin()` takes a start ts from the TSO and returns a `Transaction`.
 * - `withRetry(fn)` runs `fn` in a fresh transaction and commits it, again with a new start ts
 *   after a retriable failure (write conflict, deadlock, rolled back by a resolver, lock wait
 *   timeout), with back-off, up to `attempts` times.
 * - `snapshot(ts?)` reads at a ts without a transaction.
 * - `close()` waits (bounded) for background secondary commits, then closes connections.
 *
 * @example
 * ```ts ignore
 * const client = await TxnKV.connect({ host: "127.0.0.1:20160" });
 * await client.withRetry(async (txn) => {
 *   const a = Number(new TextDecoder().decode((await txn.get("a")) ?? new Uint8Array()));
 *   txn.set("a", String(a + 1));
 * });
 * await client.close();
 * ```
 */
import { type Clock, REAL_CLOCK } from "../clock.ts";
import { PdResolver } from "../pd_resolver.ts";
import type { RegionInfo } from "../region.ts";
import { splitRegions } from "../split_regions.ts";
import type { RegionResolver } from "../region_resolver.ts";
import { StandaloneResolver } from "../standalone_resolver.ts";
import type { TransportOptions } from "../transport.ts";
import { type TimestampOracle, TsoClient } from "../tso.ts";
import { DEFAULT_REQUEST_TIMEOUT_MS } from "../constants.ts";
import { InvalidArgumentError, ServerError } from "../errors.ts";
import type { Bytes } from "../raw.ts";
import type { kvrpcpb } from "../../../proto/mod.ts";
import { bytesEqual, utf8 } from "../../util/bytes.ts";
import {
  DEFAULT_LOCK_TTL_MS,
  DEFAULT_LOCK_WAIT_TIMEOUT_MS,
  DEFAULT_RETRY_ATTEMPTS,
  LOCK_BACKOFF_BASE_MS,
  LOCK_BACKOFF_CAP_MS,
  MANAGED_LOCK_TTL_MS,
  MAX_LOCK_TTL_MS,
  MIN_LOCK_TTL_MS,
  RETRY_BACKOFF_BASE_MS,
  RETRY_BACKOFF_CAP_MS,
  SCAN_BATCH_SIZE,
} from "./constants.ts";
import { TxnError } from "./errors.ts";
import { lockOf, txnErrorOf } from "./key_errors.ts";
import { LockBackoff } from "./lock_backoff.ts";
import { LockResolver } from "./lock_resolver.ts";
import { RETRY, TxnConnectionPool, TxnRpc } from "./rpc.ts";
import { Snapshot } from "./snapshot.ts";
import { Transaction, type TransactionContext, type TransactionOptions } from "./transaction.ts";

/** Options of a `TxnKV`. */
export interface TxnKVOptions {
  /** Deadline of one request, retries and lock waits included, ms (default 20 s). */
  timeoutMs?: number;
  /** Batching and streams of the store connections. */
  transport?: TransportOptions;
  /** Defaults of every transaction (each `begin` may override them). */
  transaction?: TransactionOptions;
  /**
   * The clock of every deadline, back-off, heartbeat and retry pause (default `REAL_CLOCK`; a
   * simulator passes its simulated one).
   */
  clock?: Clock;
}

/** Where `TxnKV.connect` finds the cluster: a standalone store (which serves PD too), or PD. */
export type TxnConnectOptions = TxnKVOptions & ({ host: string } | { pd: readonly string[] });

/** Options of `withRetry`. */
export interface RetryOptions extends TransactionOptions {
  /** Most attempts (default 10). */
  attempts?: number;
  /** Called before each retry with the error that caused it. */
  onRetry?: (error: TxnError, attempt: number) => void;
}

const EMPTY = new Uint8Array(0);
const bytesOf = (key: Bytes) => typeof key === "string" ? utf8(key) : key;

/** Most time `close` waits for background commits, ms. */
const CLOSE_WAIT_MS = 5_000;

/** The transactional client. */
export class TxnKV {
  readonly #resolver: RegionResolver;
  readonly #tso: TimestampOracle;
  readonly #pool: TxnConnectionPool;
  readonly #context: TransactionContext;
  readonly #defaults: Required<TransactionOptions>;
  readonly #background = new Set<Promise<unknown>>();
  readonly #clock: Clock;
  /** The lock resolver (its `stats` count the work it did). */
  readonly lockResolver: LockResolver;

  /** A client over `resolver` (regions, stores) and `tso` (timestamps); it owns both. */
  constructor(resolver: RegionResolver, tso: TimestampOracle, options: TxnKVOptions = {}) {
    const timeoutMs = options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    if (!(timeoutMs > 0)) throw new InvalidArgumentError("timeoutMs must be positive");
    this.#resolver = resolver;
    this.#tso = tso;
    this.#pool = new TxnConnectionPool(options.transport);
    this.#clock = options.clock ?? REAL_CLOCK;
    const rpc = new TxnRpc(resolver, this.#pool, { clock: this.#clock });
    this.lockResolver = new LockResolver(rpc, tso);
    this.#defaults = resolveTransactionOptions(options.transaction ?? {});
    this.#context = {
      rpc,
      tso,
      resolver: this.lockResolver,
      timeoutMs,
      background: (work) => {
        this.#background.add(work);
        work.finally(() => this.#background.delete(work));
      },
    };
  }

  /** A client of the standalone store at `host`, or of the cluster behind PD `pd`. */
  static async connect(options: TxnConnectOptions): Promise<TxnKV> {
    if ("pd" in options) {
      const resolver = await PdResolver.connect(options.pd, {
        timeoutMs: options.timeoutMs,
        tls: options.transport?.tls,
      });
      return new TxnKV(resolver, new TsoClient(resolver.pd), options);
    }
    const tso = await TsoClient.connect([options.host], {
      timeoutMs: options.timeoutMs,
      tls: options.transport?.tls,
    });
    const resolver = new StandaloneResolver(options.host, {
      timeoutMs: options.timeoutMs,
      tls: options.transport?.tls,
    });
    return new TxnKV(resolver, tso, options);
  }

  /**
   * A fresh timestamp from the TSO, waited for up to the client's `timeoutMs` (through a PD
   * leader's failover, which may take longer than the TSO client's own default).
   */
  currentTimestamp(): Promise<bigint> {
    return this.#tso.getTimestamp({ deadlineMs: this.#clock.nowMs() + this.#context.timeoutMs });
  }

  /** Starts a transaction at a fresh start ts. */
  async begin(options: TransactionOptions = {}): Promise<Transaction> {
    const resolved = resolveTransactionOptions({ ...this.#defaults, ...options });
    const startTs = await this.currentTimestamp();
    return new Transaction(this.#context, startTs, resolved);
  }

  /** Reads at `readTs` (default: a fresh ts), without a transaction. */
  async snapshot(readTs?: bigint): Promise<Snapshot> {
    return new Snapshot(this.#context, readTs ?? await this.currentTimestamp());
  }

  /**
   * Runs `fn` in a transaction and commits it; after a retriable `TxnError` runs it again in a
   * new transaction, with back-off. Resolves with `fn`'s result.
   */
  async withRetry<T>(
    fn: (txn: Transaction) => Promise<T>,
    options: RetryOptions = {},
  ): Promise<T> {
    const attempts = options.attempts ?? DEFAULT_RETRY_ATTEMPTS;
    for (let attempt = 1;; attempt++) {
      const txn = await this.begin(options);
      try {
        const result = await fn(txn);
        if (txn.state === "active") await txn.commit();
        return result;
      } catch (error) {
        await txn.rollback().catch(() => {});
        if (!(error instanceof TxnError) || !error.retriable || attempt >= attempts) throw error;
        options.onRetry?.(error, attempt);
        const capMs = Math.min(RETRY_BACKOFF_CAP_MS, RETRY_BACKOFF_BASE_MS * 2 ** (attempt - 1));
        await this.#clock.sleep(capMs / 2 + this.#clock.random() * capMs / 2);
      }
    }
  }

  /**
   * Every version, lock and write record of `key` (MvccGetByKey, a debugging RPC): the
   * store's `MvccInfo` with `lock` (or null), `writes` newest first and `values`.
   */
  async mvccGetByKey(key: Bytes): Promise<kvrpcpb.MvccInfo.$Properties> {
    const bytes = bytesOf(key);
    const backoffer = this.#context.rpc.backoffer(this.#context.timeoutMs);
    const response = await this.#context.rpc.sendToKey("MvccGetByKey", bytes, () => ({
      key: bytes,
    }), { backoffer, idempotent: true });
    if (response.error) throw new ServerError(`MvccGetByKey: ${response.error}`);
    return response.info ?? {};
  }

  /**
   * The key of the transaction that started at `startTs` and its MVCC records
   * (MvccGetByStartTs), asking each region in key order; null when no region knows it.
   */
  async mvccGetByStartTs(
    startTs: bigint,
  ): Promise<{ key: Uint8Array; info: kvrpcpb.MvccInfo.$Properties } | null> {
    const callBackoffer = this.#context.rpc.backoffer(this.#context.timeoutMs);
    let backoffer = callBackoffer.fork(); // one per region (see `Backoffer.fork`)
    let cursor: Uint8Array = new Uint8Array(0);
    for (;;) {
      const region = await this.#context.rpc.locate(cursor, backoffer);
      const response = await this.#context.rpc.sendToRegion("MvccGetByStartTs", region, {
        startTs,
      }, { backoffer, idempotent: true });
      if (response === RETRY) continue;
      backoffer = callBackoffer.fork();
      if (response.error) throw new ServerError(`MvccGetByStartTs: ${response.error}`);
      if (response.info != null && response.key.length > 0) {
        return { key: response.key, info: response.info };
      }
      const next = this.#context.rpc.keyAfterRegion(region);
      if (next === null) return null;
      cursor = next;
    }
  }

  /**
   * Splits the regions holding the transactional keys `keys` at them (SplitRegion without
   * `is_raw_kv`: the user keys go as they are and the store encodes them), each region's keys
   * in one request to its leader; keys that already start a region are left out. Resolves with
   * the regions the splits made, in key order (see `../split_regions.ts`).
   */
  async splitRegions(keys: readonly Bytes[]): Promise<RegionInfo[]> {
    return await splitRegions(this.#context.rpc, keys.map(bytesOf), {
      isRawKv: false,
      backoffer: this.#context.rpc.backoffer(this.#context.timeoutMs),
    });
  }

  /**
   * Resolves every lock of a transaction that started at or below `maxTs`, over the whole key
   * space (TiDB's GC worker does this before it raises the GC safe point): KvScanLock region by
   * region, each lock found resolved as a writer would resolve it — committed or rolled back
   * for good, a live transaction's lock waited out within the client's `timeoutMs` — and the
   * region scanned again until it holds none. Readers leave some locks behind on purpose: once
   * a small transaction's lock met is resolved, they read through (or past) its other locks
   * without resolving them (client-go does the same). Resolves with how many locks it met.
   */
  async resolveLocks(maxTs: bigint): Promise<number> {
    const rpc = this.#context.rpc;
    const backoffer = rpc.backoffer(this.#context.timeoutMs);
    const lockBackoff = new LockBackoff(backoffer, {
      baseMs: LOCK_BACKOFF_BASE_MS,
      capMs: LOCK_BACKOFF_CAP_MS,
    });
    let met = 0;
    let rounds = 0; // rounds at one cursor in a row that met locks
    let lastCursor: Uint8Array = EMPTY;
    await rpc.scanForward(
      { start: EMPTY, end: EMPTY, limit: Infinity, pageSize: SCAN_BATCH_SIZE, backoffer },
      async (region, at) => {
        const response = await rpc.sendToRegion("ScanLock", region, {
          maxVersion: maxTs,
          startKey: at.cursor,
          endKey: at.end,
          limit: at.ask,
        }, { backoffer: at.backoffer, idempotent: true });
        if (response === RETRY) return RETRY;
        if (response.error != null) throw txnErrorOf(response.error, maxTs);
        if (response.locks.length === 0) return { pairs: [], count: 0, lastKey: at.cursor };
        met += response.locks.length;
        rounds = bytesEqual(at.cursor, lastCursor) ? rounds + 1 : 0;
        lastCursor = at.cursor;
        const result = await this.lockResolver.resolveLocks(response.locks.map(lockOf), {
          callerStartTs: 0n,
          backoffer: at.backoffer,
        });
        // A lock met again and again backs off too (no hot loop), up to the deadline.
        if (result.msBeforeExpired > 0 || rounds >= 2) {
          const ms = result.msBeforeExpired > 0 ? result.msBeforeExpired : LOCK_BACKOFF_BASE_MS;
          await lockBackoff.wait(ms, `the locks of region ${region.id}`);
        }
        return RETRY; // This page again: resolved locks are gone, and more may follow.
      },
    );
    return met;
  }

  /** Background commits still running. */
  get pendingBackgroundWork(): number {
    return this.#background.size;
  }

  /** Waits for background commits (secondaries) to finish. */
  async flush(): Promise<void> {
    while (this.#background.size > 0) await Promise.allSettled([...this.#background]);
  }

  /** Waits (at most 5 s) for background commits, then closes every connection. */
  async close(): Promise<void> {
    let cancel: (() => void) | undefined;
    const timeout = new Promise<void>((resolve) =>
      cancel = this.#clock.setTimer(resolve, CLOSE_WAIT_MS)
    );
    await Promise.race([this.flush(), timeout]);
    cancel?.();
    this.#pool.close();
    this.#tso.close();
    this.#resolver.close();
  }
}

/** Every transaction option with its default, checked. */
function resolveTransactionOptions(options: TransactionOptions): Required<TransactionOptions> {
  const resolved: Required<TransactionOptions> = {
    pessimistic: options.pessimistic ?? false,
    asyncCommit: options.asyncCommit ?? false,
    onePc: options.onePc ?? false,
    awaitSecondaries: options.awaitSecondaries ?? false,
    lockTtlMs: options.lockTtlMs ?? DEFAULT_LOCK_TTL_MS,
    managedLockTtlMs: options.managedLockTtlMs ?? MANAGED_LOCK_TTL_MS,
    lockWaitTimeoutMs: options.lockWaitTimeoutMs ?? DEFAULT_LOCK_WAIT_TIMEOUT_MS,
  };
  for (const name of ["lockTtlMs", "managedLockTtlMs"] as const) {
    const value = resolved[name];
    if (!Number.isFinite(value) || value < MIN_LOCK_TTL_MS || value > MAX_LOCK_TTL_MS) {
      throw new InvalidArgumentError(
        `${name} must be in [${MIN_LOCK_TTL_MS}, ${MAX_LOCK_TTL_MS}], not ${value}`,
      );
    }
  }
  if (!(resolved.lockWaitTimeoutMs >= 0)) {
    throw new InvalidArgumentError("lockWaitTimeoutMs must be >= 0");
  }
  return resolved;
}
