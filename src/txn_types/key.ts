/**
 * A transactional key (TiKV `txn_types::Key`): the memcomparable encoding of a raw user key,
 * which is what the `lock` column family is keyed by and what, with a descending timestamp
 * appended, the `write` and `default` column families are keyed by.
 *
 * Invariant: `encoded` always holds a valid memcomparable encoding without a timestamp; it is
 * never mutated after construction (the class hands out the same array, callers must not write
 * into it).
 *
 * @module
 */

import { compareBytes } from "../codec/compare.ts";
import { appendTs, decodeKey, encodeKey } from "../codec/key.ts";
import { bytesEqual, toHex } from "../util/bytes.ts";
import { assertTs, type TimeStamp } from "./timestamp.ts";

/**
 * An encoded user key.
 *
 * @example
 * ```ts
 * import { Key } from "./key.ts";
 * const key = Key.fromRaw(new TextEncoder().encode("k1"));
 * key.appendTs(10n); // the write-CF key of the version committed at 10
 * key.toRaw(); // "k1" again
 * ```
 */
export class Key {
  /** The memcomparable encoding, without timestamp. */
  readonly encoded: Uint8Array;
  #raw: Uint8Array | null;

  private constructor(encoded: Uint8Array, raw: Uint8Array | null) {
    this.encoded = encoded;
    this.#raw = raw;
  }

  /** Encodes a raw user key. The raw bytes are copied. */
  static fromRaw(raw: Uint8Array): Key {
    return new Key(encodeKey(raw), raw.slice());
  }

  /**
   * Wraps an already encoded key (without timestamp). The encoding is checked now, so a
   * corrupt key fails here rather than later; the bytes are copied.
   */
  static fromEncoded(encoded: Uint8Array): Key {
    const raw = decodeKey(encoded);
    return new Key(encoded.slice(), raw);
  }

  /** The raw user key. Callers must not mutate it. */
  toRaw(): Uint8Array {
    if (this.#raw === null) this.#raw = decodeKey(this.encoded);
    return this.#raw;
  }

  /** The encoded key with `ts` appended descending: a `write`/`default` CF key. */
  appendTs(ts: TimeStamp): Uint8Array {
    assertTs(ts);
    return appendTs(this.encoded, ts);
  }

  /** Whether both keys are the same user key. */
  equals(other: Key): boolean {
    return bytesEqual(this.encoded, other.encoded);
  }

  /** Orders keys as the engine does (by encoded bytes, which is raw-key order). */
  compare(other: Key): number {
    return compareBytes(this.encoded, other.encoded);
  }

  /** A string usable as a map key: the hex of the encoded key. */
  mapKey(): string {
    return toHex(this.encoded);
  }

  /** Printable form for messages: the raw key, as text when printable, else hex. */
  toString(): string {
    return displayRawKey(this.toRaw());
  }
}

/** A raw key for messages: quoted text when it is printable ASCII, else `0x` hex. */
export function displayRawKey(raw: Uint8Array): string {
  for (const byte of raw) {
    if (byte < 0x20 || byte > 0x7e) return `0x${toHex(raw)}`;
  }
  return JSON.stringify(new TextDecoder().decode(raw));
}
