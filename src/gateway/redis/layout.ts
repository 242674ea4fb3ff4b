/**
 * How Redis data lies in Basalt's transactional keyspace. Every key the gateway writes starts
 * with `REDIS_PREFIX` (`\x00redis\x00`), a prefix no other user of the store may write under, so
 * Redis keys never meet raw or transactional users' keys; all of it goes through TxnKV
 * (transactions), never RawKV, on any of these keys.
 *
 * - `P "k" <key>` — the key's record: a 9-byte header (type, expiry) and, for a string, its
 *   value; for a hash, its field count.
 *     byte 0: type (1 = string, 2 = hash); bytes 1–8: expiry, Unix ms as a big-endian float64
 *     (an integer; 0 = none); then a string's bytes, or a hash's field count (u32 BE).
 *   One read answers GET, TYPE, TTL and EXISTS, expiry included.
 * - `P "h" <u32 BE key length> <key> <field>` — one hash field's value.
 * - `P "e" <u64 BE expiry ms> <key>` — the expiry index (empty value): one entry per key with
 *   an expiry, so the reclaimer finds expired keys by a bounded scan from the start.
 *
 * Invariants (kept by `keyspace.ts`, which alone writes these keys): a hash record's count is
 * its number of field keys, and a hash has at least one field; a key has an index entry if and
 * only if its record has an expiry, with that same expiry.
 */
import { assert } from "../../util/assert.ts";

/** Every key of the gateway starts with these bytes. */
export const REDIS_PREFIX = Uint8Array.of(0x00, 0x72, 0x65, 0x64, 0x69, 0x73, 0x00); // \0redis\0

const RECORD_TAG = 0x6b; // k
const FIELD_TAG = 0x68; // h
const EXPIRY_TAG = 0x65; // e

/** Type byte of a record. */
export const RedisType = { String: 1, Hash: 2 } as const;
/** A record's type byte. */
export type RedisType = typeof RedisType[keyof typeof RedisType];

/** A decoded key record. */
export interface RecordValue {
  type: RedisType;
  /** Unix ms; 0 = no expiry. */
  expireAtMs: number;
  /** A string's value (a view into the stored bytes). */
  value: Uint8Array;
  /** A hash's field count. */
  fields: number;
}

const HEADER_BYTES = 9;

function tagged(tag: number, ...parts: Uint8Array[]): Uint8Array {
  let length = REDIS_PREFIX.length + 1;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  out.set(REDIS_PREFIX);
  out[REDIS_PREFIX.length] = tag;
  let at = REDIS_PREFIX.length + 1;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** The storage key of `key`'s record. */
export function recordKey(key: Uint8Array): Uint8Array {
  return tagged(RECORD_TAG, key);
}

/** The first and the end (exclusive) storage keys of every record. */
export function recordRange(): { start: Uint8Array; end: Uint8Array } {
  return { start: tagged(RECORD_TAG), end: tagged(RECORD_TAG + 1) };
}

/** The Redis key of a record's storage key. */
export function keyOfRecord(storageKey: Uint8Array): Uint8Array {
  return storageKey.subarray(REDIS_PREFIX.length + 1);
}

function u32(value: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value);
  return out;
}

/** The storage key prefix of `key`'s hash fields. */
export function fieldPrefix(key: Uint8Array): Uint8Array {
  return tagged(FIELD_TAG, u32(key.length), key);
}

/** The storage key of `key`'s hash field `field`. */
export function fieldKey(key: Uint8Array, field: Uint8Array): Uint8Array {
  return tagged(FIELD_TAG, u32(key.length), key, field);
}

/** The field name of a field's storage key under `prefix`. */
export function fieldOf(storageKey: Uint8Array, prefix: Uint8Array): Uint8Array {
  return storageKey.subarray(prefix.length);
}

/** The storage key of the expiry-index entry of `key` expiring at `expireAtMs`. */
export function expiryKey(expireAtMs: number, key: Uint8Array): Uint8Array {
  const time = new Uint8Array(8);
  new DataView(time.buffer).setBigUint64(0, BigInt(expireAtMs));
  return tagged(EXPIRY_TAG, time, key);
}

/** The expiry-index range of every entry expiring before `beforeMs`. */
export function expiryRange(beforeMs: number): { start: Uint8Array; end: Uint8Array } {
  const time = new Uint8Array(8);
  new DataView(time.buffer).setBigUint64(0, BigInt(Math.max(0, beforeMs)));
  return { start: tagged(EXPIRY_TAG), end: tagged(EXPIRY_TAG, time) };
}

/** The expiry and key of an expiry-index entry's storage key. */
export function decodeExpiryKey(storageKey: Uint8Array): { expireAtMs: number; key: Uint8Array } {
  const at = REDIS_PREFIX.length + 1;
  assert(storageKey.length >= at + 8, "an expiry-index key holds a time", {
    length: storageKey.length,
  });
  const view = new DataView(storageKey.buffer, storageKey.byteOffset + at, 8);
  return { expireAtMs: Number(view.getBigUint64(0)), key: storageKey.subarray(at + 8) };
}

/** Encodes a string record. */
export function encodeString(value: Uint8Array, expireAtMs: number): Uint8Array {
  const out = new Uint8Array(HEADER_BYTES + value.length);
  out[0] = RedisType.String;
  new DataView(out.buffer).setFloat64(1, expireAtMs);
  out.set(value, HEADER_BYTES);
  return out;
}

/** Encodes a hash record. */
export function encodeHash(fields: number, expireAtMs: number): Uint8Array {
  assert(fields > 0 && Number.isSafeInteger(fields), "a stored hash has fields", { fields });
  const out = new Uint8Array(HEADER_BYTES + 4);
  out[0] = RedisType.Hash;
  const view = new DataView(out.buffer);
  view.setFloat64(1, expireAtMs);
  view.setUint32(HEADER_BYTES, fields);
  return out;
}

const EMPTY = new Uint8Array(0);

/** Decodes a record (a bug if it is not one the gateway wrote). */
export function decodeRecord(bytes: Uint8Array): RecordValue {
  assert(bytes.length >= HEADER_BYTES, "a Redis record has a header", { length: bytes.length });
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const type = bytes[0] as RedisType;
  const expireAtMs = view.getFloat64(1);
  assert(Number.isSafeInteger(expireAtMs) && expireAtMs >= 0, "a record's expiry is a time", {
    expireAtMs,
  });
  if (type === RedisType.String) {
    return { type, expireAtMs, value: bytes.subarray(HEADER_BYTES), fields: 0 };
  }
  assert(type === RedisType.Hash && bytes.length === HEADER_BYTES + 4, "a known record type", {
    type,
    length: bytes.length,
  });
  return { type, expireAtMs, value: EMPTY, fields: view.getUint32(HEADER_BYTES) };
}

/** The bytes of `bytes` as a one-byte-per-char string: a Map key for binary Redis keys. */
export function binaryKey(bytes: Uint8Array): string {
  if (bytes.length < 64) {
    let out = "";
    for (let i = 0; i < bytes.length; i++) out += String.fromCharCode(bytes[i]!);
    return out;
  }
  let out = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    out += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return out;
}

/** The inverse of `binaryKey`. */
export function bytesOfBinaryKey(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}
