/**
 * Lexicographic comparison of byte strings: the order RocksDB's default comparator and TiKV's
 * `Vec<u8>` ordering use, and the order every encoding in this folder preserves.
 *
 * @module
 */

/**
 * Compares `a` and `b` byte by byte; a proper prefix sorts first.
 * Returns a negative number, zero or a positive number (like `Array.prototype.sort` wants).
 *
 * @example
 * ```ts
 * import { compareBytes } from "./compare.ts";
 * compareBytes(new Uint8Array([1]), new Uint8Array([1, 0])); // < 0
 * ```
 */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const length = a.length < b.length ? a.length : b.length;
  for (let i = 0; i < length; i++) {
    const difference = a[i]! - b[i]!;
    if (difference !== 0) return difference;
  }
  return a.length - b.length;
}
