/**
 * The Redis keyspace as one Basalt transaction sees it: the only code that reads or writes the
 * gateway's storage keys (`layout.ts`), so the layout's invariants live here — a key's expiry
 * index entry follows its record's expiry, a hash's fields go with its record, and an expired
 * record reads as absent (to the millisecond, against `nowMs`).
 *
 * Reads go through a cache of storage values filled by one KvBatchGet per batch (`prefetch`),
 * then by single gets; every write goes to the transaction's buffer and the cache together, so
 * the commands of a batch see each other's writes in order.
 */
import type { KvPair, Transaction } from "../../client/mod.ts";
import { REDIS_SCAN_PAGE_KEYS } from "../../constants.ts";
import { assert } from "../../util/assert.ts";
import {
  binaryKey,
  decodeRecord,
  encodeHash,
  encodeString,
  expiryKey,
  fieldKey,
  fieldPrefix,
  recordKey,
  type RecordValue,
  RedisType,
} from "./layout.ts";

/** The key after every key starting with `prefix` (prefix + 0xff… is not enough: use a bump). */
export function prefixEnd(prefix: Uint8Array): Uint8Array {
  const end = prefix.slice();
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1);
    }
  }
  return new Uint8Array(0);
}

/** Reads and writes of Redis keys inside one transaction. */
export class Keyspace {
  readonly #cache = new Map<string, Uint8Array | null>();
  /** The time commands compare expiries with, Unix ms (set before each command). */
  nowMs = Date.now();

  constructor(
    readonly txn: Transaction,
    private readonly hooks: {
      /** Called with the Redis key (as `binaryKey`) of every key a command changes. */
      onWrite: (key: string) => void;
    },
  ) {}

  /** Reads `storageKeys` into the cache in one request (keys already cached are skipped). */
  async prefetch(storageKeys: readonly Uint8Array[]): Promise<void> {
    const wanted = storageKeys.filter((key) => !this.#cache.has(binaryKey(key)));
    if (wanted.length === 0) return;
    const pairs = await this.txn.batchGet(wanted);
    for (const key of wanted) this.#cache.set(binaryKey(key), null);
    for (const pair of pairs) this.#cache.set(binaryKey(pair.key), pair.value);
  }

  /** Drops every cached value (after writes made on `txn` directly, as FLUSHDB's). */
  forgetCache(): void {
    this.#cache.clear();
  }

  /** The stored value of a storage key (cached). */
  async read(storageKey: Uint8Array): Promise<Uint8Array | null> {
    const id = binaryKey(storageKey);
    const cached = this.#cache.get(id);
    if (cached !== undefined) return cached;
    const value = await this.txn.get(storageKey);
    this.#cache.set(id, value);
    return value;
  }

  #put(storageKey: Uint8Array, value: Uint8Array): void {
    this.txn.set(storageKey, value);
    this.#cache.set(binaryKey(storageKey), value);
  }

  #delete(storageKey: Uint8Array): void {
    this.txn.delete(storageKey);
    this.#cache.set(binaryKey(storageKey), null);
  }

  /** `key`'s record, expired or not; null when there is none. */
  async rawRecord(key: Uint8Array): Promise<RecordValue | null> {
    const bytes = await this.read(recordKey(key));
    return bytes === null ? null : decodeRecord(bytes);
  }

  /** Whether `record` has expired at `nowMs`. */
  expired(record: RecordValue): boolean {
    return record.expireAtMs !== 0 && record.expireAtMs <= this.nowMs;
  }

  /** `key`'s live record, or null when absent or expired. */
  async record(key: Uint8Array): Promise<RecordValue | null> {
    const record = await this.rawRecord(key);
    return record === null || this.expired(record) ? null : record;
  }

  /** Moves the expiry index entry of `key` from `oldMs` to `newMs` (0 = none). */
  #reindex(key: Uint8Array, oldMs: number, newMs: number): void {
    if (oldMs === newMs) return;
    if (oldMs !== 0) this.#delete(expiryKey(oldMs, key));
    if (newMs !== 0) this.#put(expiryKey(newMs, key), new Uint8Array(0));
  }

  /** Removes whatever `key` holds, expired or not (`old` is its raw record). */
  async #clear(key: Uint8Array, old: RecordValue): Promise<void> {
    if (old.type === RedisType.Hash) {
      for (const pair of await this.hashFields(key, { raw: true })) this.#delete(pair.key);
    }
  }

  /** Sets `key` to the string `value` (replacing whatever it held), expiring at `expireAtMs`. */
  async setString(key: Uint8Array, value: Uint8Array, expireAtMs: number): Promise<void> {
    const old = await this.rawRecord(key);
    if (old !== null && old.type !== RedisType.String) await this.#clear(key, old);
    this.#reindex(key, old?.expireAtMs ?? 0, expireAtMs);
    this.#put(recordKey(key), encodeString(value, expireAtMs));
    this.hooks.onWrite(binaryKey(key));
  }

  /** Changes the expiry of the live key `key` (`record` is its live record). */
  setExpiry(key: Uint8Array, record: RecordValue, expireAtMs: number): void {
    this.#reindex(key, record.expireAtMs, expireAtMs);
    const bytes = record.type === RedisType.String
      ? encodeString(record.value, expireAtMs)
      : encodeHash(record.fields, expireAtMs);
    this.#put(recordKey(key), bytes);
    this.hooks.onWrite(binaryKey(key));
  }

  /** Deletes `key`; resolves with whether it was live. An expired one is deleted too. */
  async delete(key: Uint8Array, options: { touch?: boolean } = {}): Promise<boolean> {
    const old = await this.rawRecord(key);
    if (old === null) return false;
    await this.#clear(key, old);
    this.#reindex(key, old.expireAtMs, 0);
    this.#delete(recordKey(key));
    if (options.touch ?? true) this.hooks.onWrite(binaryKey(key));
    return !this.expired(old);
  }

  /**
   * The fields of the hash `key` as stored pairs (storage key, value), in field order; `raw`
   * reads them whatever the record says (used while clearing).
   */
  async hashFields(key: Uint8Array, options: { raw?: boolean } = {}): Promise<KvPair[]> {
    if (!(options.raw ?? false)) {
      const record = await this.record(key);
      if (record === null || record.type !== RedisType.Hash) return [];
    }
    const prefix = fieldPrefix(key);
    const end = prefixEnd(prefix);
    const out: KvPair[] = [];
    let cursor = prefix;
    for (;;) {
      const page = await this.txn.scan(cursor, end, { limit: REDIS_SCAN_PAGE_KEYS });
      out.push(...page);
      if (page.length < REDIS_SCAN_PAGE_KEYS) return out;
      const last = page[page.length - 1]!.key;
      cursor = new Uint8Array(last.length + 1);
      cursor.set(last);
    }
  }

  /** A field of a hash (no type check: the caller checked the record). */
  readField(key: Uint8Array, field: Uint8Array): Promise<Uint8Array | null> {
    return this.read(fieldKey(key, field));
  }

  /**
   * Writes fields of the hash `key`: `set` values, `remove` deletions (`null`). `record` is its
   * live record or null (a new hash; an expired one is cleared first). Resolves with the fields
   * added and removed.
   */
  async updateHash(
    key: Uint8Array,
    record: RecordValue | null,
    changes: ReadonlyArray<[Uint8Array, Uint8Array | null]>,
  ): Promise<{ added: number; removed: number }> {
    assert(record === null || record.type === RedisType.Hash, "hash update of a hash", {});
    if (record === null) {
      const old = await this.rawRecord(key);
      if (old !== null) await this.delete(key, { touch: false });
    }
    let fields = record?.fields ?? 0;
    let added = 0;
    let removed = 0;
    for (const [field, value] of changes) {
      const storageKey = fieldKey(key, field);
      const existed = (await this.read(storageKey)) !== null;
      if (value === null) {
        if (!existed) continue;
        this.#delete(storageKey);
        removed++;
        fields--;
      } else {
        this.#put(storageKey, value);
        if (!existed) {
          added++;
          fields++;
        }
      }
    }
    if (added === 0 && removed === 0 && changes.every(([, value]) => value === null)) {
      return { added, removed };
    }
    const expireAtMs = record?.expireAtMs ?? 0;
    if (fields === 0) {
      this.#reindex(key, expireAtMs, 0);
      this.#delete(recordKey(key));
    } else {
      this.#put(recordKey(key), encodeHash(fields, expireAtMs));
    }
    this.hooks.onWrite(binaryKey(key));
    return { added, removed };
  }

  /** Copies the live record `record` of `from` to `to` (replacing `to`), fields included. */
  async copy(
    from: Uint8Array,
    to: Uint8Array,
    record: RecordValue,
  ): Promise<void> {
    if (record.type === RedisType.String) {
      await this.setString(to, record.value, record.expireAtMs);
      return;
    }
    const pairs = await this.hashFields(from);
    const prefix = fieldPrefix(from);
    await this.delete(to, { touch: false });
    for (const pair of pairs) this.#put(fieldKey(to, pair.key.subarray(prefix.length)), pair.value);
    this.#reindex(to, 0, record.expireAtMs);
    this.#put(recordKey(to), encodeHash(record.fields, record.expireAtMs));
    this.hooks.onWrite(binaryKey(to));
  }
}
