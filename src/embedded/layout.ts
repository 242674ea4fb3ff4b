/**
 * How the key-value API (the embedded `Basalt` and the HTTP gateway) lays its pairs in Basalt's
 * transactional keyspace. Every key it writes is `KV_PREFIX` (`\x00kv\x00`) + the user key, a
 * prefix no other user of the store writes under (the Redis gateway has `\x00redis\x00`), and
 * every one goes through TxnKV (transactions), never RawKV: raw and transactional data never
 * meet on a key, and a pair put by one request is seen by a transaction of the next.
 *
 * A stored value is a 9-byte header and the user's bytes:
 *   byte 0: format (1); bytes 1–8: expiry, Unix ms as a big-endian u64 (0 = none); then the value.
 * A pair whose expiry has passed reads as absent everywhere (get, scan, a transaction's reads and
 * compares); the reclaimer (`reclaimer.ts`) deletes such pairs later, through transactions.
 *
 * Pure: no clock (callers pass `nowMs`), no I/O.
 */
import { KV_MAX_KEY_BYTES, KV_MAX_TTL_SECONDS, KV_MAX_VALUE_BYTES } from "../constants.ts";
import { assert } from "../util/assert.ts";
import { BasaltError } from "./errors.ts";

/** Every stored key of the key-value API starts with these bytes. */
export const KV_PREFIX = Uint8Array.of(0x00, 0x6b, 0x76, 0x00); // \0kv\0

/** Header bytes of a stored value. */
export const HEADER_BYTES = 9;
const FORMAT_VALUE = 1;

/** A decoded stored value. */
export interface StoredValue {
  /** The user's bytes (a view into the stored value). */
  value: Uint8Array;
  /** Unix ms; 0 = never. */
  expireAtMs: number;
}

/** The stored key of user key `key` (checked: non-empty, at most KV_MAX_KEY_BYTES). */
export function storageKey(key: Uint8Array): Uint8Array {
  checkKey(key);
  const out = new Uint8Array(KV_PREFIX.length + key.length);
  out.set(KV_PREFIX);
  out.set(key, KV_PREFIX.length);
  return out;
}

/**
 * The stored key of a range bound: like `storageKey` but the empty key is allowed (the start of
 * the space) and no length check applies (a bound is not stored).
 */
export function boundKey(key: Uint8Array): Uint8Array {
  const out = new Uint8Array(KV_PREFIX.length + key.length);
  out.set(KV_PREFIX);
  out.set(key, KV_PREFIX.length);
  return out;
}

/** The end (exclusive) of every stored key of the key-value API. */
export function spaceEnd(): Uint8Array {
  const out = KV_PREFIX.slice();
  out[out.length - 1]! += 1;
  return out;
}

/** The user key of stored key `stored` (a bug if it is not under `KV_PREFIX`). */
export function userKey(stored: Uint8Array): Uint8Array {
  assert(
    stored.length > KV_PREFIX.length && KV_PREFIX.every((byte, i) => stored[i] === byte),
    "a key-value storage key is under the prefix",
    { length: stored.length },
  );
  return stored.subarray(KV_PREFIX.length);
}

/** Refuses a key the API does not store. */
export function checkKey(key: Uint8Array): void {
  if (key.length === 0) throw new BasaltError("InvalidArgument", "the empty key is not allowed");
  if (key.length > KV_MAX_KEY_BYTES) {
    throw new BasaltError(
      "KeyTooLarge",
      `key of ${key.length} bytes is over the limit of ${KV_MAX_KEY_BYTES}`,
    );
  }
}

/** The expiry of a TTL given at `nowMs` (0 for none); refuses a TTL that is not whole or too long. */
export function expiryOf(ttlSeconds: number | undefined | null, nowMs: number): number {
  if (ttlSeconds === undefined || ttlSeconds === null || ttlSeconds === 0) return 0;
  if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < 0 || ttlSeconds > KV_MAX_TTL_SECONDS) {
    throw new BasaltError(
      "InvalidArgument",
      `ttl_seconds must be a whole number in [0, ${KV_MAX_TTL_SECONDS}], not ${ttlSeconds}`,
    );
  }
  return nowMs + ttlSeconds * 1000;
}

/** Encodes `value` with its expiry (checked: at most KV_MAX_VALUE_BYTES). */
export function encodeValue(value: Uint8Array, expireAtMs: number): Uint8Array {
  if (value.length > KV_MAX_VALUE_BYTES) {
    throw new BasaltError(
      "ValueTooLarge",
      `value of ${value.length} bytes is over the limit of ${KV_MAX_VALUE_BYTES}`,
    );
  }
  assert(Number.isSafeInteger(expireAtMs) && expireAtMs >= 0, "an expiry is a time", {
    expireAtMs,
  });
  const out = new Uint8Array(HEADER_BYTES + value.length);
  out[0] = FORMAT_VALUE;
  new DataView(out.buffer).setBigUint64(1, BigInt(expireAtMs));
  out.set(value, HEADER_BYTES);
  return out;
}

/** Decodes a stored value (a bug if the key-value API did not write it). */
export function decodeValue(bytes: Uint8Array): StoredValue {
  assert(bytes.length >= HEADER_BYTES && bytes[0] === FORMAT_VALUE, "a stored value has a header", {
    length: bytes.length,
    format: bytes[0],
  });
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const expireAtMs = Number(view.getBigUint64(1));
  assert(Number.isSafeInteger(expireAtMs), "a stored expiry is a time", { expireAtMs });
  return { value: bytes.subarray(HEADER_BYTES), expireAtMs };
}

/** Whether a value expiring at `expireAtMs` is gone at `nowMs`. */
export function expired(expireAtMs: number, nowMs: number): boolean {
  return expireAtMs !== 0 && expireAtMs <= nowMs;
}

/** The TTL left at `nowMs` in whole seconds (rounded up), or null for none. */
export function ttlLeftSeconds(expireAtMs: number, nowMs: number): number | null {
  return expireAtMs === 0 ? null : Math.max(0, Math.ceil((expireAtMs - nowMs) / 1000));
}
