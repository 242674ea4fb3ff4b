/**
 * Rollback (TiKV's `Rollback` command over `cleanup`): abort this transaction on the given
 * keys, whatever the TTL of its locks.
 *
 * On each key: the lock and its default-CF value are removed, and a Rollback write record at
 * the start ts is left so a late prewrite of the transaction fails with
 * WriteConflict(SelfRolledBack). The primary key's rollback is protected; others are not, and
 * an older unprotected rollback of the key is collapsed. When another transaction committed
 * on the key at exactly this start ts, its commit record is marked `hasOverlappedRollback`
 * (with a GC fence) instead of being overwritten — for the primary only; elsewhere no record
 * is needed. Rolling back twice is a no-op. A transaction already committed on the key cannot
 * be rolled back: the `Committed` error.
 *
 * @module
 */

import type { MvccResult } from "../../mvcc/errors.ts";
import { ok } from "../../mvcc/errors.ts";
import type { MvccReader } from "../../mvcc/reader.ts";
import type { MvccTxn, ReleasedLock } from "../../mvcc/txn.ts";
import type { Key } from "../../txn_types/key.ts";
import { ROLLBACK_MAX_KEYS } from "./limits.ts";
import { cleanup } from "./cleanup.ts";
import { type KeySteps, runSteps } from "./steps.ts";

/** Rolls this transaction back on `key`. Returns the released lock, or null if none. */
export function rollback(
  txn: MvccTxn,
  reader: MvccReader,
  key: Key,
): MvccResult<ReleasedLock | null> {
  return cleanup(txn, reader, { key, currentTs: 0n, protectRollback: false });
}

/**
 * Rolls this transaction back on every key (kvproto `BatchRollback`), all in `txn`. The first
 * error ends it; the caller then writes nothing.
 */
export function batchRollback(
  txn: MvccTxn,
  reader: MvccReader,
  keys: readonly Key[],
): MvccResult<ReleasedLock[]> {
  return runSteps(batchRollbackSteps(txn, reader, keys));
}

/** {@linkcode batchRollback}, one step per key (see steps.ts). */
export function* batchRollbackSteps(
  txn: MvccTxn,
  reader: MvccReader,
  keys: readonly Key[],
): KeySteps<ReleasedLock[]> {
  if (keys.length > ROLLBACK_MAX_KEYS) {
    return {
      ok: false,
      error: { kind: "InvalidRequest", message: `${keys.length} keys exceed ${ROLLBACK_MAX_KEYS}` },
    };
  }
  const released: ReleasedLock[] = [];
  for (const key of keys) {
    const result = rollback(txn, reader, key);
    if (!result.ok) return result;
    if (result.value !== null) released.push(result.value);
    yield;
  }
  return ok(released);
}
