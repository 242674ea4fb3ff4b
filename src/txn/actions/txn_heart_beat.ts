/**
 * TxnHeartBeat (TiKV `commands/txn_heart_beat.rs`): a long-running transaction keeps its
 * primary lock alive by raising the lock's TTL, so that CheckTxnStatus does not roll it back.
 *
 * - The primary lock of this transaction is there: its TTL becomes
 *   `max(lock.ttlMs, adviseLockTtlMs)` (a heartbeat never shortens it). For a pipelined
 *   (flushed, `generation > 0`) non-async-commit transaction, `minCommitTs` may also be raised.
 * - Otherwise: TxnNotFound. The transaction was committed or rolled back, or never reached
 *   this key; either way there is nothing to keep alive.
 *
 * The TTL counts from the physical part of the start ts, so "advising" a TTL of `n` ms means
 * the lock lives until `physical(startTs) + n`.
 *
 * @module
 */

import { err, type MvccResult, ok } from "../../mvcc/errors.ts";
import type { MvccReader } from "../../mvcc/reader.ts";
import type { MvccTxn } from "../../mvcc/txn.ts";
import type { Key } from "../../txn_types/key.ts";
import type { Lock } from "../../txn_types/lock.ts";
import type { TimeStamp } from "../../txn_types/timestamp.ts";
import { loadLockSeeingPending } from "./common.ts";

/** The arguments of a heartbeat (kvproto `TxnHeartBeatRequest`). */
export interface TxnHeartBeatArgs {
  primaryKey: Key;
  /** The TTL the client wants, counted from the start ts. */
  adviseLockTtlMs: bigint;
  /** Pipelined transactions only: a new lower bound for the commit ts; 0 for none. */
  minCommitTs: TimeStamp;
}

/**
 * Extends the TTL of this transaction's primary lock. Returns the lock as it is after the
 * heartbeat (its `ttlMs` is the response's `lock_ttl`).
 *
 * @example
 * ```ts ignore
 * const result = txnHeartBeat(new MvccTxn(startTs), reader, { primaryKey, adviseLockTtlMs: 20_000n, minCommitTs: 0n });
 * if (result.ok) response.lockTtl = result.value.ttlMs;
 * ```
 */
export function txnHeartBeat(
  txn: MvccTxn,
  reader: MvccReader,
  args: TxnHeartBeatArgs,
): MvccResult<Lock> {
  const current = loadLockSeeingPending(txn, reader, args.primaryKey);
  if (current === null || current.startTs !== txn.startTs) {
    return err({ kind: "TxnNotFound", startTs: txn.startTs, key: args.primaryKey.toRaw() });
  }
  let lock = current;
  if (lock.ttlMs < args.adviseLockTtlMs) lock = { ...lock, ttlMs: args.adviseLockTtlMs };
  const pipelined = !lock.useAsyncCommit && lock.generation > 0n;
  if (pipelined && args.minCommitTs > 0n && lock.minCommitTs < args.minCommitTs) {
    lock = { ...lock, minCommitTs: args.minCommitTs };
  }
  if (lock !== current) txn.putLock(args.primaryKey, lock, false);
  return ok(lock);
}
