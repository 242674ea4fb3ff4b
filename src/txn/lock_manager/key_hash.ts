/**
 * The 64-bit hash that identifies a locked key in the lock manager and in kvproto's
 * `Deadlock.deadlock_key_hash` / `WaitForEntry.key_hash`.
 *
 * TiKV uses farmhash's fingerprint64 of the encoded key; Basalt uses FNV-1a 64, which is
 * enough because the hash is only compared inside one store and shown in diagnostics.
 *
 * @module
 */

const FNV_OFFSET_BASIS = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;
const U64_MASK = 0xffff_ffff_ffff_ffffn;

/**
 * FNV-1a 64 of `key` as an unsigned bigint.
 *
 * @example
 * ```ts
 * import { keyHash } from "./key_hash.ts";
 * keyHash(new Uint8Array()); // 0xcbf29ce484222325n
 * ```
 */
export function keyHash(key: Uint8Array): bigint {
  // Two 32-bit halves would be faster; keys are hashed once per lock wait, so clarity wins.
  let hash = FNV_OFFSET_BASIS;
  for (const byte of key) {
    hash ^= BigInt(byte);
    hash = (hash * FNV_PRIME) & U64_MASK;
  }
  return hash;
}
