/**
 * AcquirePessimisticLock (TiKV `actions/acquire_pessimistic_lock.rs` and the command around
 * it): a pessimistic transaction locks a key while it executes, before prewrite, so that its
 * writes cannot conflict at commit time.
 *
 * For one key, with `txn.startTs` the transaction and `forUpdateTs` the ts of its current
 * statement's reads:
 * 1. Another transaction's lock: KeyIsLocked. The scheduler then waits for it in the lock
 *    manager's queue (see src/txn/lock_manager/) and retries the whole request when woken.
 * 2. Our own lock: a prewrite lock is LockTypeNotMatch (the key is past this stage). A
 *    pessimistic lock is the same request again: its `forUpdateTs` is raised if this one is
 *    newer, and nothing else changes (idempotent).
 * 3. No lock: the newest write record decides.
 *    - Committed after `forUpdateTs`: WriteConflict(PessimisticRetry) — the statement read
 *      stale data and must retry at a newer for_update_ts. (With `allowLockWithConflict` the
 *      lock is taken anyway at the newer version: LockedWithConflict.)
 *    - Our own rollback at start ts (a Rollback record or an overlapped rollback):
 *      PessimisticLockRolledBack; the transaction was rolled back by someone resolving it.
 *    - `shouldNotExist` (Insert) and the key has a value: AlreadyExist.
 *    Then the lock is written: type Pessimistic, no value, `forUpdateTs`, the last-change
 *    pointer of the key.
 * `returnValues` / `checkExistence` read the key's newest value as well (the read counts for
 * max_ts at `forUpdateTs`). With `lockOnlyIfExists` (which needs `returnValues`) a missing key
 * is not locked.
 *
 * A request over several keys (`acquirePessimisticLocks`) is all or nothing: at the first
 * error no key is locked, and on KeyIsLocked the caller waits and runs the request again.
 *
 * @module
 */

import { err, type MvccError, type MvccResult, ok } from "../../mvcc/errors.ts";
import type { MvccReader } from "../../mvcc/reader.ts";
import type { MvccTxn } from "../../mvcc/txn.ts";
import type { Key } from "../../txn_types/key.ts";
import type { LastChange } from "../../txn_types/last_change.ts";
import { isPessimisticLock, type Lock, lockToLockInfo, newLock } from "../../txn_types/lock.ts";
import { prevTs, type TimeStamp, TS_MAX } from "../../txn_types/timestamp.ts";
import { checkGcFenceAsLatestVersion, type Write } from "../../txn_types/write.ts";
import { checkDataConstraint } from "./check_data_constraint.ts";
import { loadLockSeeingPending, nextLastChangeInfo } from "./common.ts";
import { type KeySteps, runSteps } from "./steps.ts";

/** Most keys one AcquirePessimisticLock request may lock. */
export const PESSIMISTIC_LOCK_MAX_KEYS = 256 * 1024;

/** What holds for every key of one request (kvproto `PessimisticLockRequest`). */
export interface PessimisticLockParams {
  primary: Uint8Array;
  lockTtlMs: bigint;
  forUpdateTs: TimeStamp;
  /** Read and return each key's value (kvproto `return_values`). */
  needValue: boolean;
  /** Return whether each key has a value (kvproto `check_existence`). */
  needCheckExistence: boolean;
  minCommitTs: TimeStamp;
  /** Lock a key only if it has a value; needs `needValue`. */
  lockOnlyIfExists: boolean;
  /** Lock despite a newer version (kvproto `WakeUpModeForceLock`); one key per request. */
  allowLockWithConflict: boolean;
}

/** The arguments of one key. */
export interface AcquirePessimisticLockArgs extends PessimisticLockParams {
  key: Key;
  /** The key is inserted: it must not have a value. */
  shouldNotExist: boolean;
}

/** What one key's lock request returns (TiKV `PessimisticLockKeyResult`). */
export type PessimisticLockKeyResult =
  | { kind: "Empty" }
  | { kind: "Value"; value: Uint8Array | null }
  | { kind: "Existence"; exists: boolean }
  /** Locked at `conflictTs` (the newest commit ts), which is the lock's for_update_ts now. */
  | { kind: "LockedWithConflict"; value: Uint8Array | null; conflictTs: TimeStamp };

interface Conflict {
  startTs: TimeStamp;
  commitTs: TimeStamp;
}

/**
 * Locks one key for this transaction (see the module header).
 *
 * @example
 * ```ts ignore
 * const txn = new MvccTxn(startTs);
 * const result = acquirePessimisticLock(txn, reader, { key, primary, forUpdateTs, ... });
 * if (!result.ok && result.error.kind === "KeyIsLocked") // wait in the lock-wait queue
 * ```
 */
export function acquirePessimisticLock(
  txn: MvccTxn,
  reader: MvccReader,
  args: AcquirePessimisticLockArgs,
): MvccResult<PessimisticLockKeyResult> {
  if (args.lockOnlyIfExists && !args.needValue) {
    return err({
      kind: "InvalidRequest",
      message: `lock_only_if_exists without return_values (txn ${txn.startTs}, key ${args.key})`,
    });
  }
  // These options read the key; the read is at for_update_ts.
  if (args.shouldNotExist || args.needValue || args.needCheckExistence) {
    txn.observeReadTs(args.forUpdateTs);
  }
  const lock = loadLockSeeingPending(txn, reader, args.key);
  if (lock !== null) return relock(txn, reader, { ...args, lock });

  let forUpdateTs = args.forUpdateTs;
  let conflict: Conflict | null = null;
  let value: Uint8Array | null = null;
  let lastChange: LastChange = { kind: "NotExist" };
  const newest = reader.seekWrite(args.key, TS_MAX);
  if (newest !== null) {
    const { commitTs, write } = newest;
    if (commitTs > forUpdateTs) {
      const found = { startTs: write.startTs, commitTs };
      if (!args.allowLockWithConflict) return err(writeConflict(txn, args, found));
      conflict = found;
      forUpdateTs = commitTs;
    }
    const rolledBack = checkSelfRollback(txn, reader, { key: args.key, commitTs, write });
    if (!rolledBack.ok) return rolledBack;
    const constraint = checkDataConstraint(reader, {
      shouldNotExist: args.shouldNotExist,
      write,
      commitTs,
      key: args.key,
      startTs: txn.startTs,
    });
    if (!constraint.ok) {
      // A newer version both conflicts and exists: retrying is the answer, not AlreadyExist.
      if (constraint.error.kind === "AlreadyExist" && conflict !== null) {
        return err(writeConflict(txn, args, conflict));
      }
      return constraint;
    }
    lastChange = nextLastChangeInfo(reader, { key: args.key, write, commitTs });
    if (args.needValue || args.needCheckExistence || conflict !== null) {
      value = valueOfNewest(reader, args.key, { commitTs, write, startTs: txn.startTs });
    }
  }
  if (!args.lockOnlyIfExists || value !== null) {
    const pessimistic = pessimisticLock(txn, args, { forUpdateTs, lastChange, conflict });
    txn.putLock(args.key, pessimistic, true);
  } else if (conflict !== null) {
    return err(writeConflict(txn, args, conflict));
  }
  return ok(keyResult(args, { value, conflict }));
}

/** The request meets a lock already on the key. */
function relock(
  txn: MvccTxn,
  reader: MvccReader,
  args: AcquirePessimisticLockArgs & { lock: Lock },
): MvccResult<PessimisticLockKeyResult> {
  const { key, lock } = args;
  if (lock.startTs !== txn.startTs) {
    return err({ kind: "KeyIsLocked", lockInfo: lockToLockInfo(lock, key.toRaw()) });
  }
  if (!isPessimisticLock(lock)) {
    return err({
      kind: "LockTypeNotMatch",
      startTs: txn.startTs,
      key: key.toRaw(),
      pessimistic: false,
    });
  }
  let forUpdateTs = args.forUpdateTs;
  let lockedWithConflictTs: TimeStamp | null = null;
  if (args.allowLockWithConflict && forUpdateTs < lock.forUpdateTs) {
    // The lock is already newer than this (stale) request: report the lock's version.
    forUpdateTs = lock.forUpdateTs;
    lockedWithConflictTs = lock.forUpdateTs;
  }
  const needLoadValue = args.needValue || lockedWithConflictTs !== null;
  let value: Uint8Array | null = null;
  if (needLoadValue || args.needCheckExistence || args.shouldNotExist) {
    const found = reader.getWriteWithCommitTs(key, forUpdateTs, txn.startTs);
    if (found !== null) {
      const constraint = checkDataConstraint(reader, {
        shouldNotExist: args.shouldNotExist,
        write: found.write,
        commitTs: found.commitTs,
        key,
        startTs: txn.startTs,
      });
      if (!constraint.ok) {
        if (constraint.error.kind === "AlreadyExist" && found.commitTs > args.forUpdateTs) {
          const newer = { startTs: found.write.startTs, commitTs: found.commitTs };
          return err(writeConflict(txn, args, newer));
        }
        return constraint;
      }
      if (needLoadValue) value = reader.loadData(key, found.write);
      else if (args.needCheckExistence) value = new Uint8Array();
    }
  }
  if (forUpdateTs > lock.forUpdateTs) {
    const raised = {
      ...lock,
      primary: args.primary,
      ttlMs: args.lockTtlMs,
      forUpdateTs,
      minCommitTs: args.minCommitTs,
    };
    txn.putLock(key, raised, false);
  }
  const conflict = lockedWithConflictTs === null
    ? null
    : { startTs: 0n, commitTs: lockedWithConflictTs };
  return ok(keyResult(args, { value, conflict }));
}

/** Our own rollback at start ts means the transaction was resolved away: refuse to lock. */
function checkSelfRollback(
  txn: MvccTxn,
  reader: MvccReader,
  newest: { key: Key; commitTs: TimeStamp; write: Write },
): MvccResult<void> {
  const isOwnRollback = (commitTs: TimeStamp, write: Write) =>
    commitTs === txn.startTs && (write.writeType === "Rollback" || write.hasOverlappedRollback);
  let rolledBack = isOwnRollback(newest.commitTs, newest.write);
  // A rollback at start ts hides below newer versions: look there too.
  if (!rolledBack && newest.commitTs > txn.startTs) {
    const older = reader.seekWrite(newest.key, txn.startTs);
    rolledBack = older !== null && isOwnRollback(older.commitTs, older.write);
  }
  if (!rolledBack) return ok(undefined);
  return err({ kind: "PessimisticLockRolledBack", startTs: txn.startTs, key: newest.key.toRaw() });
}

/**
 * The key's value as of its newest record: a valid Put's value; nothing after a Delete; for a
 * Lock or Rollback record, the value below it.
 */
function valueOfNewest(
  reader: MvccReader,
  key: Key,
  newest: { commitTs: TimeStamp; write: Write; startTs: TimeStamp },
): Uint8Array | null {
  const { commitTs, write } = newest;
  switch (write.writeType) {
    case "Put":
      return checkGcFenceAsLatestVersion(write, newest.startTs)
        ? reader.loadData(key, write)
        : null;
    case "Delete":
      return null;
    case "Lock":
    case "Rollback":
      return commitTs === 0n ? null : reader.get(key, prevTs(commitTs), newest.startTs);
  }
}

function pessimisticLock(
  txn: MvccTxn,
  args: AcquirePessimisticLockArgs,
  state: { forUpdateTs: TimeStamp; lastChange: LastChange; conflict: Conflict | null },
): Lock {
  return newLock({
    lockType: "Pessimistic",
    primary: args.primary,
    startTs: txn.startTs,
    ttlMs: args.lockTtlMs,
    forUpdateTs: state.forUpdateTs,
    minCommitTs: args.minCommitTs,
    lastChange: state.lastChange,
    isLockedWithConflict: state.conflict !== null,
  });
}

function keyResult(
  args: AcquirePessimisticLockArgs,
  found: { value: Uint8Array | null; conflict: Conflict | null },
): PessimisticLockKeyResult {
  if (found.conflict !== null) {
    return { kind: "LockedWithConflict", value: found.value, conflictTs: found.conflict.commitTs };
  }
  if (args.needValue) return { kind: "Value", value: found.value };
  if (args.needCheckExistence) return { kind: "Existence", exists: found.value !== null };
  return { kind: "Empty" };
}

function writeConflict(
  txn: MvccTxn,
  args: AcquirePessimisticLockArgs,
  conflict: Conflict,
): MvccError {
  return {
    kind: "WriteConflict",
    startTs: txn.startTs,
    conflictStartTs: conflict.startTs,
    conflictCommitTs: conflict.commitTs,
    key: args.key.toRaw(),
    primary: args.primary,
    reason: "PessimisticRetry",
  };
}

/**
 * Locks every key of one request, all or nothing: the first error clears `txn` and is
 * returned (KeyIsLocked included: the caller waits, then runs the request again).
 */
export function acquirePessimisticLocks(
  txn: MvccTxn,
  reader: MvccReader,
  args: PessimisticLockRequestArgs,
): MvccResult<PessimisticLockKeyResult[]> {
  return runSteps(acquirePessimisticLocksSteps(txn, reader, args));
}

/** The arguments of a whole lock request. */
export type PessimisticLockRequestArgs = PessimisticLockParams & {
  keys: readonly { key: Key; shouldNotExist: boolean }[];
};

/** {@linkcode acquirePessimisticLocks}, one step per key (see steps.ts). */
export function* acquirePessimisticLocksSteps(
  txn: MvccTxn,
  reader: MvccReader,
  args: PessimisticLockRequestArgs,
): KeySteps<PessimisticLockKeyResult[]> {
  if (args.keys.length > PESSIMISTIC_LOCK_MAX_KEYS) {
    return err({
      kind: "InvalidRequest",
      message: `${args.keys.length} keys exceed ${PESSIMISTIC_LOCK_MAX_KEYS} in one lock request`,
    });
  }
  if (args.allowLockWithConflict && args.keys.length > 1) {
    return err({ kind: "InvalidRequest", message: "lock with conflict takes one key per request" });
  }
  const results: PessimisticLockKeyResult[] = [];
  for (const { key, shouldNotExist } of args.keys) {
    const result = acquirePessimisticLock(txn, reader, { ...args, key, shouldNotExist });
    if (!result.ok) {
      txn.clear();
      return result;
    }
    results.push(result.value);
    yield;
  }
  return ok(results);
}

/**
 * The legacy fields of kvproto `PessimisticLockResponse` for successful `results`: with
 * `return_values`, `values` and `not_founds` per key; with only `check_existence`,
 * `not_founds`; otherwise neither. Also `results` in the new per-key shape.
 */
export function pessimisticLockResponseFields(
  results: readonly PessimisticLockKeyResult[],
  options: { returnValues: boolean; checkExistence: boolean },
): { values: Uint8Array[]; notFounds: boolean[] } {
  if (!options.returnValues && !options.checkExistence) return { values: [], notFounds: [] };
  const values: Uint8Array[] = [];
  const notFounds: boolean[] = [];
  for (const result of results) {
    switch (result.kind) {
      case "Value":
      case "LockedWithConflict":
        values.push(result.value ?? new Uint8Array());
        notFounds.push(result.value === null);
        break;
      case "Existence":
        values.push(new Uint8Array());
        notFounds.push(!result.exists);
        break;
      case "Empty":
        values.push(new Uint8Array());
        notFounds.push(false);
        break;
    }
  }
  return { values: options.returnValues ? values : [], notFounds };
}
