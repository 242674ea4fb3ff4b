/**
 * How a raw value is stored: the user's value followed by an 8-byte big-endian expiry, in Unix
 * seconds, with 0 meaning "never expires". This is TiKV's API V1TTL layout, so TTL is available
 * on every raw write without a store-wide switch, and every stored raw value carries the suffix.
 *
 * Invariant: every raw write goes through `encodeRawValue` and every raw read through
 * `decodeRawValue`; no other module knows the layout.
 */

/** Bytes the expiry suffix adds to every stored value. */
export const RAW_VALUE_SUFFIX_BYTES = 8;

/** A stored raw value, decoded. */
export interface RawValue {
  /** The user's value: a view into the stored bytes. */
  userValue: Uint8Array;
  /** Expiry in Unix seconds; 0 = never. */
  expireUnixSeconds: number;
}

/** The expiry of a value written at `nowUnixSeconds` with `ttlSeconds` (0 = forever). */
export function expiryFor(options: { ttlSeconds: bigint; nowUnixSeconds: number }): number {
  if (options.ttlSeconds === 0n) return 0;
  const expiry = BigInt(options.nowUnixSeconds) + options.ttlSeconds;
  // A TTL so long it passes 2^53 seconds is, for every purpose, forever minus one second.
  return expiry > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(expiry);
}

/** The stored bytes for `userValue` expiring at `expireUnixSeconds`. */
export function encodeRawValue(userValue: Uint8Array, expireUnixSeconds: number): Uint8Array {
  const out = new Uint8Array(userValue.length + RAW_VALUE_SUFFIX_BYTES);
  out.set(userValue, 0);
  new DataView(out.buffer).setBigUint64(userValue.length, BigInt(expireUnixSeconds), false);
  return out;
}

/** A stored raw value decoded; throws if it is too short to hold the suffix (damaged data). */
export function decodeRawValue(stored: Uint8Array): RawValue {
  if (stored.length < RAW_VALUE_SUFFIX_BYTES) {
    throw new Error(`damaged raw value: ${stored.length} bytes, shorter than its expiry suffix`);
  }
  const split = stored.length - RAW_VALUE_SUFFIX_BYTES;
  const view = new DataView(stored.buffer, stored.byteOffset, stored.length);
  return {
    userValue: stored.subarray(0, split),
    expireUnixSeconds: Number(view.getBigUint64(split, false)),
  };
}

/** Whether a value expiring at `expireUnixSeconds` is gone at `nowUnixSeconds`. */
export function isExpired(expireUnixSeconds: number, nowUnixSeconds: number): boolean {
  return expireUnixSeconds !== 0 && expireUnixSeconds <= nowUnixSeconds;
}

/** The live user value of `stored` at `nowUnixSeconds`, or null if absent or expired. */
export function liveValue(stored: Uint8Array | null, nowUnixSeconds: number): RawValue | null {
  if (stored === null) return null;
  const value = decodeRawValue(stored);
  return isExpired(value.expireUnixSeconds, nowUnixSeconds) ? null : value;
}
