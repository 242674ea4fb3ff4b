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

const TWO_POW_32 = 0x1_0000_0000;

/** Writes `expireUnixSeconds` (below 2^53) as 8 bytes big-endian at `out[at]`, without a bigint. */
function writeExpiry(out: Uint8Array, at: number, expireUnixSeconds: number): void {
  const high = Math.floor(expireUnixSeconds / TWO_POW_32);
  const low = expireUnixSeconds >>> 0;
  out[at] = high >>> 24;
  out[at + 1] = (high >>> 16) & 0xff;
  out[at + 2] = (high >>> 8) & 0xff;
  out[at + 3] = high & 0xff;
  out[at + 4] = low >>> 24;
  out[at + 5] = (low >>> 16) & 0xff;
  out[at + 6] = (low >>> 8) & 0xff;
  out[at + 7] = low & 0xff;
}

/** The stored bytes for `userValue` expiring at `expireUnixSeconds`. */
export function encodeRawValue(userValue: Uint8Array, expireUnixSeconds: number): Uint8Array {
  const out = new Uint8Array(userValue.length + RAW_VALUE_SUFFIX_BYTES);
  writeRawValue(out, userValue, expireUnixSeconds);
  return out;
}

/**
 * Writes the stored bytes of `userValue` expiring at `expireUnixSeconds` at the start of `out`
 * (which needs `userValue.length + RAW_VALUE_SUFFIX_BYTES` bytes): for a caller that packs
 * several values into one buffer.
 */
export function writeRawValue(
  out: Uint8Array,
  userValue: Uint8Array,
  expireUnixSeconds: number,
): void {
  out.set(userValue, 0);
  writeExpiry(out, userValue.length, expireUnixSeconds);
}

/**
 * Encodes stored values into one reused buffer, for a caller that copies each at once (into a
 * write batch). `new Uint8Array(n)` costs ~0.3–0.6 µs in Deno 2.9 (measured), a tenth of a put.
 */
export class RawValueEncoder {
  #buffer = new Uint8Array(new ArrayBuffer(1024));

  /** The stored bytes of `userValue` expiring at `expireUnixSeconds`, valid until the next call. */
  encode(userValue: Uint8Array, expireUnixSeconds: number): Uint8Array {
    const length = userValue.length + RAW_VALUE_SUFFIX_BYTES;
    if (length > this.#buffer.length) {
      // Large values are rare and their own copy costs more than the allocation.
      return encodeRawValue(userValue, expireUnixSeconds);
    }
    writeRawValue(this.#buffer, userValue, expireUnixSeconds);
    return this.#buffer.subarray(0, length);
  }
}

/** A stored raw value decoded; throws if it is too short to hold the suffix (damaged data). */
export function decodeRawValue(stored: Uint8Array): RawValue {
  if (stored.length < RAW_VALUE_SUFFIX_BYTES) {
    throw new Error(`damaged raw value: ${stored.length} bytes, shorter than its expiry suffix`);
  }
  const split = stored.length - RAW_VALUE_SUFFIX_BYTES;
  const high = (stored[split]! << 24 | stored[split + 1]! << 16 | stored[split + 2]! << 8 |
    stored[split + 3]!) >>> 0;
  const low = (stored[split + 4]! << 24 | stored[split + 5]! << 16 | stored[split + 6]! << 8 |
    stored[split + 7]!) >>> 0;
  // Expiries are written below 2^53; a damaged suffix above it reads as a huge (far) expiry.
  return { userValue: stored.subarray(0, split), expireUnixSeconds: high * TWO_POW_32 + low };
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
