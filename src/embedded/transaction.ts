/**
 * `BasaltTransaction`: what `Basalt.transaction`'s function works with — reads that see the
 * transaction's own writes, buffered puts (with TTL) and deletes, committed together when the
 * function returns. Snapshot isolation (Percolator over TxnKV): reads are at the start
 * timestamp, and the commit fails with a write conflict (then the whole function runs again)
 * when another transaction committed one of the written — or `lock`ed — keys after it.
 *
 * Expiry is judged at one instant per transaction (when it began), so every read of it agrees.
 */
import type { Transaction } from "../client/mod.ts";
import { utf8 } from "../util/bytes.ts";
import { decodeValue, encodeValue, expired, expiryOf, storageKey } from "./layout.ts";
import { type Entry, type ScanPage, scanPage, type StoredReader } from "./scan.ts";
import { keyId } from "../client/keys.ts";

/** A key or value: bytes, or a string taken as UTF-8. */
export type Bytes = Uint8Array | string;

/** Options of a put. */
export interface PutOptions {
  /** Seconds until the pair expires (a whole number; 0 or absent: never). */
  ttlSeconds?: number;
}

/** What a scan reads: keys in [start, end) that start with `prefix`, one page at a time. */
export interface ScanOptions {
  /** Only keys starting with these bytes. */
  prefix?: Bytes;
  /** First key (inclusive). */
  start?: Bytes;
  /** End key (exclusive); absent or empty: unbounded. */
  end?: Bytes;
  /** The `cursor` of the previous page: the next page follows it. */
  cursor?: Uint8Array;
  /** Most pairs (default 100, at most 1000). */
  limit?: number;
  /** Largest keys first (walks the range forward: refused past 100 000 stored pairs). */
  reverse?: boolean;
}

/** Bytes of a key or value given as `Bytes`. */
export function bytesOf(value: Bytes): Uint8Array {
  return typeof value === "string" ? utf8(value) : value;
}

/** A live entry of `stored` (a stored value or null) at `nowMs`, or null. */
export function entryOf(key: Uint8Array, stored: Uint8Array | null, nowMs: number): Entry | null {
  if (stored === null) return null;
  const { value, expireAtMs } = decodeValue(stored);
  return expired(expireAtMs, nowMs) ? null : { key, value, expireAtMs };
}

/** A stored reader over a client transaction (its own writes merged). */
export function transactionReader(txn: Transaction): StoredReader {
  return {
    scan: (start, end, limit) => txn.scan(start, end, { limit }),
    async batchGet(keys) {
      const pairs = await txn.batchGet(keys);
      return new Map(pairs.map((pair) => [keyId(pair.key), pair.value]));
    },
  };
}

/** One transaction of `Basalt.transaction`. */
export class BasaltTransaction {
  readonly #txn: Transaction;
  readonly #nowMs: number;

  /** Wraps a client transaction; `nowMs` is the instant its expiries are judged at. */
  constructor(txn: Transaction, nowMs: number) {
    this.#txn = txn;
    this.#nowMs = nowMs;
  }

  /** The value of `key`, or null when absent or expired. */
  async get(key: Bytes): Promise<Uint8Array | null> {
    return (await this.getEntry(key))?.value ?? null;
  }

  /** The entry of `key` (value and expiry), or null when absent or expired. */
  async getEntry(key: Bytes): Promise<Entry | null> {
    const bytes = bytesOf(key);
    return entryOf(bytes, await this.#txn.get(storageKey(bytes)), this.#nowMs);
  }

  /** Buffers `key` = `value`, expiring after `ttlSeconds` when given. */
  put(key: Bytes, value: Bytes, options: PutOptions = {}): void {
    const expireAtMs = expiryOf(options.ttlSeconds, this.#nowMs);
    this.#txn.set(storageKey(bytesOf(key)), encodeValue(bytesOf(value), expireAtMs));
  }

  /** Buffers the deletion of `key`. */
  delete(key: Bytes): void {
    this.#txn.delete(storageKey(bytesOf(key)));
  }

  /** One page of live pairs (see `ScanOptions`), this transaction's writes included. */
  scan(options: ScanOptions = {}): Promise<ScanPage> {
    const bytes = (value: Bytes | undefined) => value === undefined ? undefined : bytesOf(value);
    return scanPage(transactionReader(this.#txn), {
      prefix: bytes(options.prefix),
      start: bytes(options.start),
      end: bytes(options.end),
      cursor: options.cursor,
      limit: options.limit,
      reverse: options.reverse,
      nowMs: this.#nowMs,
    });
  }

  /**
   * Makes the commit fail with a write conflict (and the transaction run again) if another
   * transaction writes any of `keys` after this one began — for keys it read and decided on
   * without writing them.
   */
  async lock(...keys: Bytes[]): Promise<void> {
    await this.#txn.lockKeys(...keys.map((key) => storageKey(bytesOf(key))));
  }
}
