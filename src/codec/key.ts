/**
 * MVCC keys as TiKV's `txn_types::Key` builds them (API V1 transactional keys):
 *
 *     encoded key     = memcomparable(userKey)                    (Key::from_raw)
 *     key with ts     = memcomparable(userKey) ++ u64_desc(ts)    (Key::append_ts)
 *
 * Because the memcomparable part is self-delimiting and the timestamp is descending, all
 * versions of one user key sit together and the newest comes first; a seek to
 * `encodeKeyWithTs(k, readTs)` lands on the newest version visible at `readTs`.
 *
 * The timestamp is always the last 8 bytes, so splitting a key never needs to decode the user
 * key. `truncateTs`, `decodeTs` and `splitOnTs` return views of their input (no copy);
 * `decodeKey` and `decodeKeyWithTs` return fresh raw bytes.
 *
 * @module
 */

import { CodecError } from "./codec_error.ts";
import { decodeBytes, encodedBytesLength, writeBytes } from "./memcomparable.ts";
import { decodeU64Desc, U64_SIZE, writeU64Desc } from "./number.ts";

/**
 * Encodes a raw user key for the transactional column families (TiKV `Key::from_raw`).
 *
 * @example
 * ```ts
 * import { encodeKey } from "./key.ts";
 * encodeKey(new TextEncoder().encode("z")); // [0x7A, 0, 0, 0, 0, 0, 0, 0, 0xF8]
 * ```
 */
export function encodeKey(userKey: Uint8Array): Uint8Array {
  const out = new Uint8Array(encodedBytesLength(userKey.length));
  writeBytes(out, 0, userKey);
  return out;
}

/**
 * Encodes `userKey` and appends `ts` descending, in one allocation (TiKV
 * `Key::from_raw(k).append_ts(ts)`).
 *
 * @example
 * ```ts
 * import { encodeKeyWithTs } from "./key.ts";
 * // "z" at ts 1000: 7A 00 00 00 00 00 00 00 F8 FF FF FF FF FF FF FC 17
 * encodeKeyWithTs(new TextEncoder().encode("z"), 1000n);
 * ```
 */
export function encodeKeyWithTs(userKey: Uint8Array, ts: bigint): Uint8Array {
  const out = new Uint8Array(encodedBytesLength(userKey.length) + U64_SIZE);
  const at = writeBytes(out, 0, userKey);
  writeU64Desc(out, at, ts);
  return out;
}

/** Length of `encodeKeyWithTs(userKey, ts)` for a user key of `userKeyLength` bytes. */
export function keyWithTsLength(userKeyLength: number): number {
  return encodedBytesLength(userKeyLength) + U64_SIZE;
}

/**
 * Writes `encodeKeyWithTs(userKey, ts)` into `dest` at `offset` and returns the offset after
 * it. For hot paths that fill a preallocated buffer: in Deno a fresh `Uint8Array` costs more
 * than the encoding itself (see codec_bench.ts).
 */
export function writeKeyWithTs(
  dest: Uint8Array,
  offset: number,
  userKey: Uint8Array,
  ts: bigint,
): number {
  return writeU64Desc(dest, writeBytes(dest, offset, userKey), ts);
}

/**
 * Appends `ts` descending to an already encoded key (TiKV `Key::append_ts`).
 * Works on any byte string; the caller says it is an encoded key.
 */
export function appendTs(encodedKey: Uint8Array, ts: bigint): Uint8Array {
  const out = new Uint8Array(encodedKey.length + U64_SIZE);
  out.set(encodedKey, 0);
  writeU64Desc(out, encodedKey.length, ts);
  return out;
}

function checkHasTs(key: Uint8Array): void {
  if (key.length < U64_SIZE) {
    throw new CodecError(
      "bad_key_length",
      0,
      `key of ${key.length} bytes is too short to end with an 8-byte timestamp`,
    );
  }
}

/**
 * The encoded user key of a key with timestamp: all but its last 8 bytes, as a view
 * (TiKV `Key::truncate_ts_for`).
 * @throws {CodecError} `bad_key_length` when the key is shorter than 8 bytes.
 */
export function truncateTs(keyWithTs: Uint8Array): Uint8Array {
  checkHasTs(keyWithTs);
  return keyWithTs.subarray(0, keyWithTs.length - U64_SIZE);
}

/**
 * The timestamp of a key with timestamp (TiKV `Key::decode_ts_from`).
 * @throws {CodecError} `bad_key_length` when the key is shorter than 8 bytes.
 */
export function decodeTs(keyWithTs: Uint8Array): bigint {
  checkHasTs(keyWithTs);
  return decodeU64Desc(keyWithTs, keyWithTs.length - U64_SIZE);
}

/** A key with timestamp split in two; `encodedKey` is a view of the input. */
export interface SplitKey {
  /** The memcomparable-encoded user key (still encoded). */
  encodedKey: Uint8Array;
  /** The timestamp. */
  ts: bigint;
}

/** Splits a key with timestamp without decoding the user key (TiKV `Key::split_on_ts_for`). */
export function splitOnTs(keyWithTs: Uint8Array): SplitKey {
  return { encodedKey: truncateTs(keyWithTs), ts: decodeTs(keyWithTs) };
}

/**
 * Decodes an encoded user key back to raw bytes (TiKV `Key::to_raw`). Stricter than TiKV: bytes
 * after the memcomparable field are an error, since here they would mean a timestamp was left
 * on by mistake.
 * @throws {CodecError} `truncated`, `bad_padding` or `trailing_bytes`.
 */
export function decodeKey(encodedKey: Uint8Array): Uint8Array {
  const { value, nextOffset } = decodeBytes(encodedKey, 0);
  if (nextOffset !== encodedKey.length) {
    throw new CodecError(
      "trailing_bytes",
      nextOffset,
      `${encodedKey.length - nextOffset} bytes after the encoded key`,
    );
  }
  return value;
}

/** A key with timestamp fully decoded. */
export interface DecodedKeyWithTs {
  /** The raw user key (a fresh array). */
  userKey: Uint8Array;
  /** The timestamp. */
  ts: bigint;
}

/**
 * Decodes a key with timestamp into the raw user key and the timestamp. The memcomparable part
 * must end exactly 8 bytes before the end.
 * @throws {CodecError} `bad_key_length`, `truncated`, `bad_padding` or `trailing_bytes`.
 */
export function decodeKeyWithTs(keyWithTs: Uint8Array): DecodedKeyWithTs {
  checkHasTs(keyWithTs);
  const tsAt = keyWithTs.length - U64_SIZE;
  const { value, nextOffset } = decodeBytes(keyWithTs.subarray(0, tsAt), 0);
  if (nextOffset !== tsAt) {
    throw new CodecError(
      "trailing_bytes",
      nextOffset,
      `${tsAt - nextOffset} bytes between the encoded key and the timestamp`,
    );
  }
  return { userKey: value, ts: decodeU64Desc(keyWithTs, tsAt) };
}

/**
 * Whether `keyWithTs` is `encodedUserKey` followed by exactly 8 timestamp bytes (TiKV
 * `Key::is_user_key_eq`), without decoding either. MVCC scans call this per key to find where
 * one user key's versions end.
 */
export function isUserKeyEq(keyWithTs: Uint8Array, encodedUserKey: Uint8Array): boolean {
  const length = encodedUserKey.length;
  if (keyWithTs.length !== length + U64_SIZE) return false;
  // Compare from the end: keys sharing a long prefix most often differ in their last bytes.
  for (let i = length - 1; i >= 0; i--) {
    if (keyWithTs[i] !== encodedUserKey[i]) return false;
  }
  return true;
}
