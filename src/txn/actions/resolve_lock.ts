/**
 * ResolveLock (TiKV `commands/resolve_lock.rs`, `resolve_lock_readphase.rs`,
 * `resolve_lock_lite.rs`): once a client knows a transaction's fate (from CheckTxnStatus or
 * CheckSecondaryLocks), it resolves that transaction's locks: each is committed at the known
 * commit ts, or rolled back when the transaction is known to be rolled back (commit ts 0).
 *
 * Three pieces:
 * - `resolveLock`: one key of transaction `txn.startTs`.
 * - `scanLocksToResolve`: the read phase of a region-wide resolve — the next batch of locks in
 *   the region whose transaction is among those being resolved.
 * - `resolveLockBatch`: the write phase over such a batch, with one `MvccTxn` per
 *   transaction (a command's modifications belong to one start ts); all of them go in one
 *   write batch. It stops after `RESOLVE_LOCK_MAX_WRITE_BYTES` and names the key to resume
 *   from, so a region full of locks is resolved in bounded steps.
 *
 * A rolled-back lock gets an unprotected rollback (TiKV calls cleanup with current ts 0): the
 * primary already holds the protected record that decides the transaction. A commit ts not
 * above the lock's start ts is a client bug (TiKV `InvalidTxnTso`).
 *
 * @module
 */

import { err, type MvccResult, ok } from "../../mvcc/errors.ts";
import type { MvccReader } from "../../mvcc/reader.ts";
import { MvccTxn, type ReleasedLock } from "../../mvcc/txn.ts";
import type { Key } from "../../txn_types/key.ts";
import { isPessimisticLock, type Lock } from "../../txn_types/lock.ts";
import type { TimeStamp } from "../../txn_types/timestamp.ts";
import { cleanup } from "./cleanup.ts";
import { commit } from "./commit.ts";
import type { KeySteps } from "./steps.ts";

/** Bytes of modifications after which a resolve batch stops (TiKV `MAX_TXN_WRITE_SIZE`). */
export const RESOLVE_LOCK_MAX_WRITE_BYTES = 32 * 1024;
/** Locks one read phase of a region-wide resolve collects (TiKV `RESOLVE_LOCK_BATCH_SIZE`). */
export const RESOLVE_LOCK_BATCH_SIZE = 256;
/** Most transactions one ResolveLock request may name (`txn_infos`). */
export const RESOLVE_LOCK_MAX_TXNS = 64 * 1024;

/** The arguments of `resolveLock` for one key. */
export interface ResolveLockArgs {
  key: Key;
  /** The transaction's commit ts, or 0 when it is rolled back. */
  commitTs: TimeStamp;
  /**
   * The lock as the read phase saw it, when known. A pessimistic lock left behind by a
   * committed transaction (it retried after a conflict) then resolves to nothing.
   */
  lock?: Lock | null;
}

/**
 * Commits or rolls back this transaction's lock on `args.key`. Returns the released lock, or
 * null when there was none to release.
 *
 * @example
 * ```ts ignore
 * resolveLock(new MvccTxn(lockTs), reader, { key, commitTs: 0n }); // roll back
 * ```
 */
export function resolveLock(
  txn: MvccTxn,
  reader: MvccReader,
  args: ResolveLockArgs,
): MvccResult<ReleasedLock | null> {
  const { key, commitTs } = args;
  if (commitTs === 0n) {
    return cleanup(txn, reader, { key, currentTs: 0n, protectRollback: false });
  }
  if (commitTs <= txn.startTs) {
    return err({
      kind: "InvalidRequest",
      message: `resolve lock of txn ${txn.startTs} on ${key}: commit ts ${commitTs} is not ` +
        `above the start ts`,
    });
  }
  const result = commit(txn, reader, { key, commitTs });
  if (!result.ok && result.error.kind === "TxnLockNotFound" && args.lock != null) {
    // The transaction committed without this key's pessimistic lock: nothing to resolve.
    if (isPessimisticLock(args.lock)) return ok(null);
  }
  return result;
}

/**
 * Resolves this transaction's locks on every key of `keys` (kvproto `ResolveLock` with keys),
 * one step per key (see steps.ts). The first error ends it; the caller then writes nothing.
 */
export function* resolveLockKeySteps(
  txn: MvccTxn,
  reader: MvccReader,
  args: { keys: readonly Key[]; commitTs: TimeStamp },
): KeySteps<null> {
  for (const key of args.keys) {
    const resolved = resolveLock(txn, reader, { key, commitTs: args.commitTs });
    if (!resolved.ok) return resolved;
    yield;
  }
  return ok(null);
}

/** The arguments of `scanLocksToResolve`. */
export interface ScanLocksToResolveArgs {
  /** Start ts → commit ts (0: rolled back) of the transactions being resolved. */
  txnStatus: ReadonlyMap<TimeStamp, TimeStamp>;
  /** Where to start (inclusive); null for the region start. */
  startKey: Key | null;
  /** Where to stop (exclusive); null for the region end. */
  endKey: Key | null;
  /** Defaults to `RESOLVE_LOCK_BATCH_SIZE`. */
  limit?: number;
}

/**
 * The read phase: the next locks in range that belong to a transaction in `txnStatus`, and
 * whether more may follow.
 */
export function scanLocksToResolve(
  reader: MvccReader,
  args: ScanLocksToResolveArgs,
): { locks: { key: Key; lock: Lock }[]; hasRemain: boolean } {
  if (args.txnStatus.size > RESOLVE_LOCK_MAX_TXNS) {
    throw new RangeError(`resolve of ${args.txnStatus.size} txns exceeds ${RESOLVE_LOCK_MAX_TXNS}`);
  }
  return reader.scanLocks({
    start: args.startKey,
    end: args.endKey,
    filter: (_key, lock) => args.txnStatus.has(lock.startTs),
    limit: args.limit ?? RESOLVE_LOCK_BATCH_SIZE,
  });
}

/** The arguments of `resolveLockBatch`. */
export interface ResolveLockBatchArgs {
  /** The locks to resolve, in key order (as `scanLocksToResolve` returns them). */
  locks: readonly { key: Key; lock: Lock }[];
  /** Start ts → commit ts (0: rolled back); every lock's transaction must be in it. */
  txnStatus: ReadonlyMap<TimeStamp, TimeStamp>;
  /** Defaults to `RESOLVE_LOCK_MAX_WRITE_BYTES`. */
  maxWriteBytes?: number;
}

/** What one write phase of a resolve did. */
export interface ResolveLockBatchResult {
  /** One per transaction touched, in first-touched order; write them all in one batch. */
  txns: MvccTxn[];
  released: ReleasedLock[];
  /** `[startTs, commitTs]` of transactions seen committed, sorted, without duplicates. */
  knownTxnStatus: [TimeStamp, TimeStamp][];
  /**
   * When the write budget ran out: the key after which to scan again (the last key resolved;
   * a rescan from it finds its lock gone). Null when every lock given was resolved.
   */
  resumeKey: Key | null;
}

/** The write phase: resolves `locks` in order (see the module header). */
export function resolveLockBatch(
  reader: MvccReader,
  args: ResolveLockBatchArgs,
): MvccResult<ResolveLockBatchResult> {
  const maxWriteBytes = args.maxWriteBytes ?? RESOLVE_LOCK_MAX_WRITE_BYTES;
  const txns = new Map<TimeStamp, MvccTxn>();
  const released: ReleasedLock[] = [];
  const known = new Map<TimeStamp, TimeStamp>();
  let writeBytes = 0;
  for (const { key, lock } of args.locks) {
    const commitTs = args.txnStatus.get(lock.startTs);
    if (commitTs === undefined) {
      throw new Error(`resolveLockBatch: no status for txn ${lock.startTs} (lock on ${key})`);
    }
    let txn = txns.get(lock.startTs);
    if (txn === undefined) {
      txn = new MvccTxn(lock.startTs);
      txns.set(lock.startTs, txn);
    }
    const before = txn.writeSizeBytes;
    const result = resolveLock(txn, reader, { key, commitTs, lock });
    if (!result.ok) return result;
    if (result.value !== null) released.push(result.value);
    if (commitTs !== 0n) known.set(lock.startTs, commitTs);
    writeBytes += txn.writeSizeBytes - before;
    if (writeBytes >= maxWriteBytes) return ok(finish(txns, released, known, key));
  }
  return ok(finish(txns, released, known, null));
}

function finish(
  txns: Map<TimeStamp, MvccTxn>,
  released: ReleasedLock[],
  known: Map<TimeStamp, TimeStamp>,
  resumeKey: Key | null,
): ResolveLockBatchResult {
  const knownTxnStatus = [...known.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1));
  return { txns: [...txns.values()], released, knownTxnStatus, resumeKey };
}
