/**
 * `Basalt`: the key-value API — get, put (with TTL), delete, scan and transactions with retries
 * on conflict — over a store in the caller's process (`Basalt.open({ dataDir })`, no gRPC) or
 * over a running store or cluster (`Basalt.connect({ host } | { pd })`). The HTTP gateway
 * (src/gateway/http/) serves one `Basalt` over HTTP.
 *
 * Everything goes through TxnKV into the key-value space of `layout.ts` (prefix `\x00kv\x00`,
 * a 9-byte header with the expiry): a pair written by `Basalt.open` in one process is read by
 * `Basalt.connect` (or the HTTP API) of a store later serving the same directory.
 *
 * Expiry: a pair past its TTL reads as absent at once; a reclaimer deletes such pairs in the
 * background (every KV_RECLAIM_INTERVAL_MS, KV_RECLAIM_BATCH_KEYS stored pairs a round, from a
 * cursor that walks the space and wraps), through transactions, so its deletes never undo a
 * newer write (that write conflicts, and the round is dropped).
 *
 * Failures are `BasaltError`s with a stable `code` (`errors.ts`); an exception thrown by the
 * function of `transaction` is rethrown as it is, after the transaction is rolled back.
 *
 * @example
 * ```ts ignore
 * import { Basalt } from "./mod.ts";
 * const db = await Basalt.open({ dataDir: "./data" });
 * await db.put("greeting", "hello", { ttlSeconds: 60 });
 * const value = await db.get("greeting"); // Uint8Array of "hello"
 * await db.transaction(async (txn) => {
 *   const n = Number(new TextDecoder().decode((await txn.get("counter")) ?? new Uint8Array()));
 *   txn.put("counter", String(n + 1));
 * });
 * const page = await db.scan({ prefix: "greet", limit: 10 });
 * await db.close();
 * ```
 */
import { TxnKV, type TxnKVOptions } from "../client/mod.ts";
import {
  HTTP_REQUEST_TIMEOUT_MS,
  KV_RECLAIM_BATCH_KEYS,
  KV_RECLAIM_INTERVAL_MS,
  KV_TXN_MAX_ATTEMPTS,
} from "../constants.ts";
import type { LogLevel } from "../server/config.ts";
import type { ShutdownOutcome } from "../server/shutdown.ts";
import { successor } from "../util/bytes.ts";
import { BasaltError, rethrow } from "./errors.ts";
import { InProcessStore } from "./in_process_store.ts";
import { boundKey, decodeValue, expired, spaceEnd } from "./layout.ts";
import type { Entry, ScanPage } from "./scan.ts";
import { BasaltTransaction, type Bytes, type PutOptions, type ScanOptions } from "./transaction.ts";

export type { Entry, ScanPage } from "./scan.ts";
export type { Bytes, PutOptions, ScanOptions } from "./transaction.ts";

/** Options shared by `open` and `connect`. */
export interface CommonOptions {
  /** Deadline of one call, retries included, ms (default 20 s). */
  timeoutMs?: number;
  /** Interval of the expired-pair reclaimer, ms (default 1000; 0 = none). */
  reclaimIntervalMs?: number;
}

/** Options of `Basalt.open`. */
export interface OpenOptions extends CommonOptions {
  /** The store's data directory (created on first use). */
  dataDir: string;
  /** Fsync the Raft log before a write is acknowledged (default true). */
  syncLog?: boolean;
  /** Region-group worker threads (default: the server's default). */
  workers?: number;
  /** Log level of the store (default "warn"). */
  logLevel?: LogLevel;
  /** Log file of the store (default: standard error). */
  logFile?: string;
}

/** Options of `Basalt.connect`: a store's gRPC address, or PD's. */
export type ConnectOptions = CommonOptions & ({ host: string } | { pd: readonly string[] });

/** Options of `transaction`. */
export interface TransactionOptions {
  /** Most runs of the function when commits meet write conflicts (default 8). */
  attempts?: number;
}

/** A Basalt database: in this process (`open`) or over the network (`connect`). */
export class Basalt {
  readonly #kv: TxnKV;
  readonly #store: InProcessStore | null;
  #reclaimTimer: ReturnType<typeof setInterval> | undefined;
  #reclaiming: Promise<void> | null = null;
  #reclaimCursor: Uint8Array | null = null;
  #closed: Promise<ShutdownOutcome | "client-closed"> | null = null;

  private constructor(kv: TxnKV, store: InProcessStore | null, options: CommonOptions) {
    this.#kv = kv;
    this.#store = store;
    const intervalMs = options.reclaimIntervalMs ?? KV_RECLAIM_INTERVAL_MS;
    if (intervalMs > 0) {
      this.#reclaimTimer = setInterval(() => void this.reclaimExpired(), intervalMs);
      Deno.unrefTimer(this.#reclaimTimer);
    }
  }

  /**
   * Runs a standalone store on `options.dataDir` inside this process (no network) and opens it.
   * Needs the permissions of a store: read, write, FFI (RocksDB) and environment.
   *
   * @example
   * ```ts ignore
   * const db = await Basalt.open({ dataDir: "./data" });
   * await db.put("k", "v");
   * await db.close(); // then `deno task serve -- --data-dir ./data` serves the same data
   * ```
   */
  static async open(options: OpenOptions): Promise<Basalt> {
    const timeoutMs = options.timeoutMs ?? HTTP_REQUEST_TIMEOUT_MS;
    const store = await InProcessStore.open({ ...options, requestTimeoutMs: timeoutMs });
    const clientOptions: TxnKVOptions = {
      timeoutMs,
      transport: { link: () => store.link },
    };
    return new Basalt(new TxnKV(store.resolver, store.tso, clientOptions), store, options);
  }

  /**
   * Opens the database of a running standalone store (`host`, its gRPC address) or cluster
   * (`pd`, PD's addresses).
   *
   * @example
   * ```ts ignore
   * const db = await Basalt.connect({ pd: ["127.0.0.1:2379"] });
   * ```
   */
  static async connect(options: ConnectOptions): Promise<Basalt> {
    const timeoutMs = options.timeoutMs ?? HTTP_REQUEST_TIMEOUT_MS;
    const kv = "pd" in options
      ? await TxnKV.connect({ pd: options.pd, timeoutMs })
      : await TxnKV.connect({ host: options.host, timeoutMs });
    return new Basalt(kv, null, options);
  }

  /** The value of `key`, or null when absent or expired. */
  async get(key: Bytes): Promise<Uint8Array | null> {
    return (await this.getEntry(key))?.value ?? null;
  }

  /** The entry of `key` (its value and expiry), or null when absent or expired. */
  getEntry(key: Bytes): Promise<Entry | null> {
    return this.#run((txn) => txn.getEntry(key), 1);
  }

  /**
   * Stores `value` at `key`; with `ttlSeconds` it expires that many seconds from now.
   *
   * @example
   * ```ts ignore
   * await db.put("session:1", JSON.stringify({ user: 7 }), { ttlSeconds: 3600 });
   * ```
   */
  async put(key: Bytes, value: Bytes, options: PutOptions = {}): Promise<void> {
    await this.#run((txn) => Promise.resolve(txn.put(key, value, options)));
  }

  /** Deletes `key` (nothing happens when it is absent). */
  async delete(key: Bytes): Promise<void> {
    await this.#run((txn) => Promise.resolve(txn.delete(key)));
  }

  /**
   * One page of live pairs, smallest keys first (largest with `reverse`), and the `cursor` of
   * the next page (null at the end of the range).
   *
   * @example
   * ```ts ignore
   * let page = await db.scan({ prefix: "user:", limit: 100 });
   * while (page.cursor !== null) page = await db.scan({ prefix: "user:", cursor: page.cursor });
   * ```
   */
  scan(options: ScanOptions = {}): Promise<ScanPage> {
    return this.#run((txn) => txn.scan(options), 1);
  }

  /**
   * Runs `fn` in a transaction and commits what it wrote, all or nothing; when the commit meets
   * a write conflict, runs `fn` again in a new transaction (up to `attempts` times, then
   * `BasaltError` "Conflict"). Resolves with `fn`'s result.
   *
   * @example
   * ```ts ignore
   * await db.transaction(async (txn) => {
   *   const from = Number(new TextDecoder().decode((await txn.get("a")) ?? new Uint8Array()));
   *   txn.put("a", String(from - 10));
   *   txn.put("b", "10");
   * });
   * ```
   */
  async transaction<T>(
    fn: (txn: BasaltTransaction) => T | Promise<T>,
    options: TransactionOptions = {},
  ): Promise<T> {
    const attempts = options.attempts ?? KV_TXN_MAX_ATTEMPTS;
    if (!Number.isSafeInteger(attempts) || attempts < 1) {
      throw new BasaltError("InvalidArgument", `attempts must be a whole number >= 1`);
    }
    return await this.#run(async (txn) => await fn(txn), attempts);
  }

  /**
   * One round of the reclaimer: deletes the expired pairs among the next KV_RECLAIM_BATCH_KEYS
   * stored ones (the timer calls it; tests may too). Resolves with how many it deleted.
   */
  async reclaimExpired(): Promise<number> {
    if (this.#reclaiming !== null || this.#closed !== null) return 0;
    let deleted = 0;
    const round = async () => {
      const start = this.#reclaimCursor ?? boundKey(new Uint8Array(0));
      const nowMs = Date.now();
      let next: Uint8Array | null = null;
      await this.#kv.withRetry(async (txn) => {
        const stored = await txn.scan(start, spaceEnd(), { limit: KV_RECLAIM_BATCH_KEYS });
        for (const pair of stored) {
          if (expired(decodeValue(pair.value).expireAtMs, nowMs)) txn.delete(pair.key);
        }
        deleted = txn.bufferedKeys;
        next = stored.length < KV_RECLAIM_BATCH_KEYS
          ? null
          : successor(stored[stored.length - 1]!.key);
      }, { attempts: 1 });
      this.#reclaimCursor = next;
    };
    this.#reclaiming = round().catch(() => {
      deleted = 0; // a conflict or an unreachable store: the next round tries again
    }).finally(() => this.#reclaiming = null);
    await this.#reclaiming;
    return deleted;
  }

  /**
   * Closes the database: the reclaimer stops, the client waits (bounded) for commits finishing
   * in the background, then an in-process store stops (`"closed"` when its engine was closed;
   * `"left-to-wal"` when a worker might still hold it). Later calls get the same outcome.
   */
  close(): Promise<ShutdownOutcome | "client-closed"> {
    this.#closed ??= (async () => {
      clearInterval(this.#reclaimTimer);
      await this.#reclaiming;
      await this.#kv.close();
      return this.#store === null ? "client-closed" : await this.#store.close();
    })();
    return this.#closed;
  }

  async #run<T>(fn: (txn: BasaltTransaction) => Promise<T>, attempts = KV_TXN_MAX_ATTEMPTS) {
    if (this.#closed !== null) throw new BasaltError("Closed", "the database is closed");
    try {
      return await this.#kv.withRetry(
        (txn) => fn(new BasaltTransaction(txn, Date.now())),
        { attempts },
      );
    } catch (error) {
      rethrow(error);
    }
  }
}
