/**
 * The expiry index: for every raw value written with a TTL, one empty entry in column family
 * `raft` (store-local metadata, never served) under
 *
 *     0x01 't' | expiry (u64 big-endian Unix seconds) | cf (1 byte) | user key
 *
 * so the sweeper finds expired keys by scanning a prefix up to "now" instead of reading every
 * value, and never mistakes a value of another API (a transaction's, in the same column
 * family) for an expiring raw value. An entry whose key was since overwritten or deleted is
 * stale; the sweeper drops it.
 */
import type { ColumnFamily } from "../../engine/types.ts";

/** Column family of the index. */
export const TTL_INDEX_CF: ColumnFamily = "raft";

const PREFIX = [0x01, 0x74];
const RAW_CFS: readonly ColumnFamily[] = ["default", "lock", "write"];

/** The index key of `key` in `cf` expiring at `expireUnixSeconds`. */
export function ttlIndexKey(
  expireUnixSeconds: number,
  cf: ColumnFamily,
  key: Uint8Array,
): Uint8Array {
  const cfCode = RAW_CFS.indexOf(cf);
  if (cfCode < 0) throw new Error(`ttl index: column family ${cf} holds no raw values`);
  const out = new Uint8Array(PREFIX.length + 9 + key.length);
  out.set(PREFIX, 0);
  new DataView(out.buffer).setBigUint64(PREFIX.length, BigInt(expireUnixSeconds), false);
  out[PREFIX.length + 8] = cfCode;
  out.set(key, PREFIX.length + 9);
  return out;
}

/** The bounds of index keys expiring at or before `nowUnixSeconds`. */
export function ttlIndexRange(nowUnixSeconds: number): { start: Uint8Array; end: Uint8Array } {
  const start = new Uint8Array(PREFIX);
  const end = new Uint8Array(PREFIX.length + 8);
  end.set(PREFIX, 0);
  new DataView(end.buffer).setBigUint64(PREFIX.length, BigInt(nowUnixSeconds + 1), false);
  return { start, end };
}

/** An index key decoded; throws on a key that is not one. */
export function parseTtlIndexKey(
  indexKey: Uint8Array,
): { expireUnixSeconds: number; cf: ColumnFamily; key: Uint8Array } {
  if (
    indexKey.length < PREFIX.length + 9 || indexKey[0] !== PREFIX[0] || indexKey[1] !== PREFIX[1]
  ) {
    throw new Error(`not a ttl index key (${indexKey.length} bytes)`);
  }
  const view = new DataView(indexKey.buffer, indexKey.byteOffset, indexKey.length);
  const cf = RAW_CFS[indexKey[PREFIX.length + 8]!];
  if (cf === undefined) throw new Error(`ttl index key names unknown column family`);
  return {
    expireUnixSeconds: Number(view.getBigUint64(PREFIX.length, false)),
    cf,
    key: indexKey.slice(PREFIX.length + 9),
  };
}
