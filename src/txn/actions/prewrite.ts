/**
 * Prewrite (Percolator's first phase; TiKV `actions/prewrite.rs` and the batch logic of
 * `commands/prewrite.rs`): lock each key of the transaction, with its value, after checking
 * that no other transaction wrote it since this one started.
 *
 * Per key, in order:
 * 1. The lock already on the key. Another transaction's lock: KeyIsLocked (or, where a
 *    pessimistic lock of ours was expected, PessimisticLockNotFound). Our own prewrite lock:
 *    the request is a retry, done (idempotent). Our own pessimistic lock: go on and replace
 *    it. No lock where a pessimistic lock was expected: "amend" it if the key did not change
 *    since start ts, else PessimisticLockNotFound.
 * 2. The newest write record (unless the constraint check is skipped). Our own rollback at
 *    start ts: WriteConflict(SelfRolledBack) — a rolled-back transaction must never prewrite
 *    again. Optimistic: any record committed after start ts is a WriteConflict. Pessimistic:
 *    a non-rollback record after for_update_ts means the pessimistic lock was lost. Insert and
 *    CheckNotExists fail with AlreadyExist when the key has a value.
 * 3. Assertions (Exist / NotExist) at the requested level.
 * 4. The lock: short values inline, long values in the default CF at start ts. With async
 *    commit or 1PC, `minCommitTs = max(maxTs, startTs, forUpdateTs) + 1` (never below the
 *    request's), where `maxTs` is the concurrency manager's max_ts read by the caller just
 *    before: every read that already happened at a ts >= it sees either this lock (in memory,
 *    through `txn.guardedLocks`) or a commit ts above its own read ts. Above `maxCommitTs` the
 *    key falls back to 2PC (CommitTsTooLarge).
 *
 * For a batch (`prewriteMutations`), KeyIsLocked errors are collected and the command writes
 * nothing; any other error ends it; a retried request of a transaction that already committed
 * succeeds with its commit ts. 1PC turns all locks into commit records at the largest
 * min_commit_ts, in the same write batch.
 *
 * @module
 */

import { kvrpcpb } from "../../../proto/mod.ts";
import { err, type MvccError, type MvccResult, ok } from "../../mvcc/errors.ts";
import type { CommittedWrite, MvccReader } from "../../mvcc/reader.ts";
import type { MvccTxn } from "../../mvcc/txn.ts";
import { bytesEqual } from "../../util/bytes.ts";
import type { Key } from "../../txn_types/key.ts";
import type { LastChange } from "../../txn_types/last_change.ts";
import { LAST_CHANGE_UNKNOWN } from "../../txn_types/last_change.ts";
import {
  type Lock,
  lockToLockInfo,
  type LockType,
  newLock,
  SHORT_VALUE_MAX_LEN,
} from "../../txn_types/lock.ts";
import {
  type AssertionLevel,
  lockTypeOfMutation,
  type Mutation,
  shouldNotExist,
} from "../../txn_types/mutation.ts";
import { maxTs, nextTs, prevTs, type TimeStamp, TS_MAX } from "../../txn_types/timestamp.ts";
import { newWrite, writeTypeFromLockType } from "../../txn_types/write.ts";
import { checkDataConstraint } from "./check_data_constraint.ts";
import { nextLastChangeInfo } from "./common.ts";
import { type KeySteps, runSteps } from "./steps.ts";

/** Optimistic (maybe skipping the constraint check) or pessimistic at `forUpdateTs`. */
export type TransactionKind =
  | { type: "Optimistic"; skipConstraintCheck: boolean }
  | { type: "Pessimistic"; forUpdateTs: TimeStamp };

/** Two-phase, one-phase, or async commit; `maxCommitTs` 0 means unbounded. */
export type CommitKind =
  | { type: "TwoPc" }
  | { type: "OnePc"; maxCommitTs: TimeStamp }
  | { type: "Async"; maxCommitTs: TimeStamp };

/** kvproto `PrewriteRequest.PessimisticAction`, per key of a pessimistic prewrite. */
export type PessimisticAction = "SkipPessimisticCheck" | "DoPessimisticCheck" | "DoConstraintCheck";

/** The pessimistic action of a kvproto enum value (unknown values are the default, skip). */
export function pessimisticActionFromProto(
  action: kvrpcpb.PrewriteRequest.PessimisticAction | null | undefined,
): PessimisticAction {
  if (action === kvrpcpb.PrewriteRequest.PessimisticAction.DO_PESSIMISTIC_CHECK) {
    return "DoPessimisticCheck";
  }
  if (action === kvrpcpb.PrewriteRequest.PessimisticAction.DO_CONSTRAINT_CHECK) {
    return "DoConstraintCheck";
  }
  return "SkipPessimisticCheck";
}

/** What holds for every key of one prewrite request (TiKV `TransactionProperties`). */
export interface TransactionProperties {
  startTs: TimeStamp;
  kind: TransactionKind;
  commitKind: CommitKind;
  primary: Uint8Array;
  txnSize: bigint;
  lockTtlMs: bigint;
  /** The client's lower bound of the commit ts. */
  minCommitTs: TimeStamp;
  isRetryRequest: boolean;
  assertionLevel: AssertionLevel;
  txnSource: bigint;
  /** The concurrency manager's max_ts, read by the caller right before this command. */
  maxTs: TimeStamp;
}

/** The arguments of a one-key prewrite. */
export interface PrewriteArgs {
  props: TransactionProperties;
  mutation: Mutation;
  /** null: not async commit. The primary carries every secondary; a secondary carries []. */
  secondaryKeys: Uint8Array[] | null;
  pessimisticAction: PessimisticAction;
  /** For a pessimistic lock taken in force-lock mode, the for_update_ts the client knows. */
  expectedForUpdateTs: TimeStamp | null;
}

type LockStatus =
  | { kind: "Locked"; minCommitTs: TimeStamp }
  | { kind: "Pessimistic"; forUpdateTs: TimeStamp }
  | { kind: "None" };

/** The mutable per-key state of a prewrite (TiKV `PrewriteMutation`). */
interface KeyPrewrite {
  args: PrewriteArgs;
  key: Key;
  lockType: LockType | null;
  lockTtlMs: bigint;
  minCommitTs: TimeStamp;
  lastChange: LastChange;
  shouldNotExist: boolean;
  shouldNotWrite: boolean;
}

function forUpdateTsOf(props: TransactionProperties): TimeStamp {
  return props.kind.type === "Pessimistic" ? props.kind.forUpdateTs : 0n;
}

function skipConstraintCheck(state: KeyPrewrite): boolean {
  const { props, pessimisticAction } = state.args;
  if (props.kind.type === "Optimistic") return props.kind.skipConstraintCheck;
  switch (pessimisticAction) {
    case "DoPessimisticCheck":
      return true;
    case "SkipPessimisticCheck":
      // A retried request re-checks keys that were never pessimistically locked, so a
      // retry after a commit cannot write a second version (TiKV #11187).
      return !props.isRetryRequest;
    case "DoConstraintCheck":
      return false;
  }
}

/**
 * Prewrites one key. Returns the key's min_commit_ts with async commit or 1PC (0 otherwise,
 * or when the key turned out to be prewritten already without async commit).
 *
 * A CommitTsTooLarge error still leaves the key's lock in `txn`, as a 2PC lock: the batch
 * goes on in 2PC (TiKV does the same).
 */
export function prewrite(
  txn: MvccTxn,
  reader: MvccReader,
  args: PrewriteArgs,
): MvccResult<TimeStamp> {
  const { props, mutation } = args;
  if (props.startTs !== txn.startTs) throw new Error("prewrite: props.startTs is not txn.startTs");
  const state: KeyPrewrite = {
    args,
    key: mutation.key,
    lockType: lockTypeOfMutation(mutation.type),
    lockTtlMs: props.lockTtlMs,
    minCommitTs: props.minCommitTs,
    lastChange: LAST_CHANGE_UNKNOWN,
    shouldNotExist: shouldNotExist(mutation.type),
    shouldNotWrite: mutation.type === "CheckNotExists",
  };
  if (props.kind.type === "Pessimistic" && state.shouldNotWrite) {
    return err({ kind: "InvalidRequest", message: "CheckNotExists in a pessimistic prewrite" });
  }
  // A uniqueness check is a read at start ts: max_ts must cover it.
  if (state.shouldNotExist) txn.observeReadTs(props.startTs);

  let lockStatus: LockStatus = { kind: "None" };
  let lockAmended = false;
  const lock = reader.loadLock(state.key);
  if (lock !== null) {
    const checked = checkLock(state, lock);
    if (!checked.ok) return checked;
    lockStatus = checked.value;
  } else if (args.pessimisticAction === "DoPessimisticCheck") {
    const amended = amendPessimisticLock(state, reader);
    if (!amended.ok) return amended;
    lockAmended = true;
  }
  if (lockStatus.kind === "Locked") return ok(lockStatus.minCommitTs);

  let previous: CommittedWrite | null = null;
  let previousLoaded = false;
  if (!skipConstraintCheck(state)) {
    const newer = checkForNewerVersion(state, reader);
    if (!newer.ok) return newer;
    previous = newer.value;
    previousLoaded = true;
  }
  if (!lockAmended) {
    const asserted = checkAssertion(state, reader, { previous, loaded: previousLoaded });
    if (!asserted.ok) return asserted;
  }

  if (state.shouldNotWrite) {
    const needsMinCommitTs = props.commitKind.type !== "TwoPc";
    return ok(needsMinCommitTs ? maxTs(props.minCommitTs, nextTs(props.startTs)) : 0n);
  }
  const isNewLock = args.pessimisticAction !== "DoPessimisticCheck" || lockAmended;
  return writeLock(state, txn, { lockStatus, isNewLock });
}

/** Step 1 with a lock present (TiKV `check_lock`). */
function checkLock(state: KeyPrewrite, lock: Lock): MvccResult<LockStatus> {
  const { props } = state.args;
  const rawKey = state.key.toRaw();
  if (lock.startTs !== props.startTs) {
    if (state.args.pessimisticAction === "DoPessimisticCheck") {
      return pessimisticLockNotFound(state, "LockTsMismatch");
    }
    // A pessimistic transaction's own row locks guarantee its isolation, so a lock met on an
    // unlocked index key may be resolved at once: report it with TTL 0.
    const lockInfo = lockToLockInfo(lock, rawKey);
    if (props.kind.type === "Pessimistic") lockInfo.lockTtl = 0n;
    return err({ kind: "KeyIsLocked", lockInfo });
  }
  state.lastChange = lock.lastChange;
  if (lock.lockType === "Pessimistic") {
    if (props.kind.type !== "Pessimistic") {
      return err({
        kind: "LockTypeNotMatch",
        startTs: props.startTs,
        key: rawKey,
        pessimistic: true,
      });
    }
    const expected = state.args.expectedForUpdateTs;
    if (expected !== null && lock.forUpdateTs !== expected) {
      return pessimisticLockNotFound(state, "LockForUpdateTsMismatch");
    }
    // Our pessimistic lock: replace it. Its TTL and min_commit_ts may have been pushed.
    state.lockTtlMs = maxTs(state.lockTtlMs, lock.ttlMs);
    state.minCommitTs = maxTs(state.minCommitTs, lock.minCommitTs);
    return ok({ kind: "Pessimistic", forUpdateTs: lock.forUpdateTs });
  }
  // Our prewrite lock: a duplicated request.
  return ok({ kind: "Locked", minCommitTs: lock.useAsyncCommit ? lock.minCommitTs : 0n });
}

function pessimisticLockNotFound(
  state: KeyPrewrite,
  reason:
    | "LockTsMismatch"
    | "LockMissingAmendFail"
    | "LockForUpdateTsMismatch"
    | "NonLockKeyConflict",
): { ok: false; error: MvccError } {
  return err({
    kind: "PessimisticLockNotFound",
    startTs: state.args.props.startTs,
    key: state.key.toRaw(),
    reason,
  });
}

function writeConflict(
  state: KeyPrewrite,
  found: CommittedWrite,
  reason: "SelfRolledBack" | "Optimistic" | "LazyUniquenessCheck",
): { ok: false; error: MvccError } {
  return err({
    kind: "WriteConflict",
    startTs: state.args.props.startTs,
    conflictStartTs: found.write.startTs,
    conflictCommitTs: found.commitTs,
    key: state.key.toRaw(),
    primary: state.args.props.primary,
    reason,
  });
}

/** Step 2 (TiKV `check_for_newer_version`): the newest relevant write record, or an error. */
function checkForNewerVersion(
  state: KeyPrewrite,
  reader: MvccReader,
): MvccResult<CommittedWrite | null> {
  const { props } = state.args;
  let seekTs = TS_MAX;
  for (
    let found = reader.seekWrite(state.key, seekTs);
    found !== null;
    found = reader.seekWrite(state.key, seekTs)
  ) {
    const { commitTs, write } = found;
    if (
      commitTs === props.startTs && (write.writeType === "Rollback" || write.hasOverlappedRollback)
    ) {
      return writeConflict(state, found, "SelfRolledBack");
    }
    if (seekTs === TS_MAX) {
      state.lastChange = nextLastChangeInfo(reader, { key: state.key, write, commitTs });
    }
    if (props.kind.type === "Optimistic") {
      if (commitTs > props.startTs) return writeConflict(state, found, "Optimistic");
    } else {
      if (state.args.pessimisticAction === "DoConstraintCheck" && commitTs > props.startTs) {
        return writeConflict(state, found, "LazyUniquenessCheck");
      }
      if (commitTs > props.kind.forUpdateTs) {
        // Rollbacks of others can be written while our pessimistic lock holds the row; they
        // are no conflict.
        if (write.writeType === "Rollback") {
          seekTs = prevTs(commitTs);
          continue;
        }
        return pessimisticLockNotFound(state, "NonLockKeyConflict");
      }
    }
    const constraint = checkDataConstraint(reader, {
      shouldNotExist: state.shouldNotExist,
      write,
      commitTs,
      key: state.key,
      startTs: props.startTs,
    });
    if (!constraint.ok) return constraint;
    return ok(found);
  }
  if (seekTs === TS_MAX) state.lastChange = { kind: "NotExist" };
  return ok(null);
}

/** Step 3 (TiKV `check_assertion`). */
function checkAssertion(
  state: KeyPrewrite,
  reader: MvccReader,
  options: { previous: CommittedWrite | null; loaded: boolean },
): MvccResult<void> {
  const { props, mutation } = state.args;
  const assertion = mutation.assertion;
  if (assertion === "None" || props.assertionLevel === "Off") return ok(undefined);
  if (props.assertionLevel !== "Strict" && !options.loaded) return ok(undefined);
  let previous = options.previous;
  // A loaded record with a GC fence was rewritten after its successor was GC-ed: it is gone.
  if (
    options.loaded && previous !== null && previous.write.gcFence !== null &&
    previous.write.gcFence !== 0n
  ) {
    previous = null;
  }
  const isData = (found: CommittedWrite) =>
    found.write.writeType === "Put" || found.write.writeType === "Delete";
  if (!options.loaded || (previous !== null && !isData(previous))) {
    const reloadTs = previous?.commitTs ?? TS_MAX;
    const reloaded = reader.getWriteWithCommitTs(state.key, reloadTs, props.startTs);
    previous = reloaded === null ? null : { commitTs: reloaded.commitTs, write: reloaded.write };
  }
  let existing: { startTs: TimeStamp; commitTs: TimeStamp } | null = null;
  if (assertion === "Exist" && previous === null) existing = { startTs: 0n, commitTs: 0n };
  else if (previous !== null) {
    const type = previous.write.writeType;
    if (
      (assertion === "Exist" && type === "Delete") || (assertion === "NotExist" && type === "Put")
    ) {
      existing = { startTs: previous.write.startTs, commitTs: previous.commitTs };
    }
  }
  if (existing === null) return ok(undefined);
  // A failed assertion may really be a rollback or a conflict; report that first.
  if (skipConstraintCheck(state)) {
    const newer = checkForNewerVersion(state, reader);
    if (!newer.ok) return newer;
  }
  return err({
    kind: "AssertionFailed",
    startTs: props.startTs,
    key: state.key.toRaw(),
    assertion,
    existingStartTs: existing.startTs,
    existingCommitTs: existing.commitTs,
  });
}

/**
 * A pessimistic lock we expected is missing, e.g. lost with a pipelined lock write. If the
 * key did not change since start ts, prewrite as if it had been locked (TiKV
 * `amend_pessimistic_lock`).
 */
function amendPessimisticLock(state: KeyPrewrite, reader: MvccReader): MvccResult<void> {
  const newest = reader.seekWrite(state.key, TS_MAX);
  if (newest !== null) {
    if (newest.commitTs >= state.args.props.startTs) {
      return pessimisticLockNotFound(state, "LockMissingAmendFail");
    }
    state.lastChange = nextLastChangeInfo(reader, { key: state.key, ...newest });
  } else {
    state.lastChange = { kind: "NotExist" };
  }
  return checkAssertion(state, reader, { previous: newest, loaded: true });
}

/** Step 4 (TiKV `write_lock`). */
function writeLock(
  state: KeyPrewrite,
  txn: MvccTxn,
  options: { lockStatus: LockStatus; isNewLock: boolean },
): MvccResult<TimeStamp> {
  const { props, mutation, secondaryKeys } = state.args;
  if (state.lockType === null) throw new Error("writeLock of a CheckNotExists mutation");
  let tryOnePc = props.commitKind.type === "OnePc";
  const status = options.lockStatus;
  const forUpdateTs = status.kind === "Pessimistic"
    ? maxTs(forUpdateTsOf(props), status.forUpdateTs)
    : forUpdateTsOf(props);
  const lock = newLock({
    lockType: state.lockType,
    primary: props.primary,
    startTs: props.startTs,
    ttlMs: state.lockTtlMs,
    forUpdateTs,
    txnSize: props.txnSize,
    minCommitTs: state.minCommitTs,
    txnSource: props.txnSource,
    // Only a Lock record needs a pointer to the last change; Put and Delete are changes.
    lastChange: state.lockType === "Lock" ? state.lastChange : LAST_CHANGE_UNKNOWN,
  });
  const value = mutation.value;
  if (value !== null) {
    if (value.length <= SHORT_VALUE_MAX_LEN) lock.shortValue = value;
    else txn.putValue(state.key, props.startTs, value);
  }
  if (secondaryKeys !== null) {
    lock.useAsyncCommit = true;
    lock.secondaries = secondaryKeys;
  } else if (tryOnePc) {
    // Readers at TS_MAX must not skip the in-memory lock of a 1PC primary.
    lock.useOnePc = true;
  }
  let result: MvccResult<TimeStamp> = ok(0n);
  if (lock.useAsyncCommit || tryOnePc) {
    result = asyncCommitTimestamps(txn, { key: state.key, lock, props });
    if (!result.ok && result.error.kind === "CommitTsTooLarge") {
      tryOnePc = false;
      lock.useOnePc = false;
      lock.useAsyncCommit = false;
      lock.secondaries = [];
    }
  }
  if (tryOnePc) txn.putLockForOnePc(state.key, lock, status.kind === "Pessimistic");
  else txn.putLock(state.key, lock, options.isNewLock);
  return result;
}

/**
 * The min_commit_ts of an async-commit or 1PC lock (TiKV `async_commit_timestamps`); on
 * success the lock is handed to the caller to hold in memory (`txn.guardedLocks`).
 */
function asyncCommitTimestamps(
  txn: MvccTxn,
  options: { key: Key; lock: Lock; props: TransactionProperties },
): MvccResult<TimeStamp> {
  const { key, lock, props } = options;
  const computed = nextTs(maxTs(props.maxTs, props.startTs, forUpdateTsOf(props)));
  const minCommitTs = maxTs(lock.minCommitTs, computed);
  const maxCommitTs = props.commitKind.type === "TwoPc" ? 0n : props.commitKind.maxCommitTs;
  if (maxCommitTs !== 0n && minCommitTs > maxCommitTs) {
    return err({ kind: "CommitTsTooLarge", startTs: props.startTs, minCommitTs, maxCommitTs });
  }
  lock.minCommitTs = minCommitTs;
  txn.guardLock(key, { ...lock });
  return ok(minCommitTs);
}

// ---------------------------------------------------------------------------------------------
// The batch: one prewrite request.

/** One mutation of a request, with its pessimistic action. */
export interface PrewriteMutationArgs {
  mutation: Mutation;
  pessimisticAction: PessimisticAction;
  expectedForUpdateTs: TimeStamp | null;
}

/** A whole prewrite request (kvproto `PrewriteRequest`), plus the caller's `maxTs`. */
export interface PrewriteRequestArgs {
  startTs: TimeStamp;
  primary: Uint8Array;
  mutations: PrewriteMutationArgs[];
  kind: TransactionKind;
  lockTtlMs: bigint;
  txnSize: bigint;
  minCommitTs: TimeStamp;
  /** 0: unbounded. */
  maxCommitTs: TimeStamp;
  /** Non-null for async commit: every secondary key (raw), kept on the primary lock. */
  secondaryKeys: Uint8Array[] | null;
  tryOnePc: boolean;
  isRetryRequest: boolean;
  assertionLevel: AssertionLevel;
  txnSource: bigint;
  maxTs: TimeStamp;
}

/** What a prewrite request answers (kvproto `PrewriteResponse`). */
export interface PrewriteResult {
  /** KeyIsLocked errors; when any, `txn` holds nothing to write. */
  locks: MvccError[];
  /** Async commit: the lower bound of the commit ts; 0 when not (or no longer) async. */
  minCommitTs: TimeStamp;
  /** 1PC: the commit ts; 0 when not committed in one phase. */
  onePcCommitTs: TimeStamp;
}

/**
 * Prewrites every mutation of a request into `txn` (TiKV `Prewriter::prewrite` and
 * `write_result`). On success with 1PC, the commit records are in `txn` already.
 */
export function prewriteMutations(
  txn: MvccTxn,
  reader: MvccReader,
  request: PrewriteRequestArgs,
): MvccResult<PrewriteResult> {
  return runSteps(prewriteMutationSteps(txn, reader, request));
}

/** {@linkcode prewriteMutations}, one step per mutation (see steps.ts). */
export function prewriteMutationSteps(
  txn: MvccTxn,
  reader: MvccReader,
  request: PrewriteRequestArgs,
): KeySteps<PrewriteResult> {
  return new BatchPrewrite(txn, reader, request).steps();
}

/** The state of one request's prewrite across its keys. */
class BatchPrewrite {
  readonly #txn: MvccTxn;
  readonly #reader: MvccReader;
  readonly #request: PrewriteRequestArgs;
  readonly #props: TransactionProperties;
  /** Null once the request is not (or no longer) async commit. */
  #secondaryKeys: Uint8Array[] | null;
  #tryOnePc: boolean;
  #finalMinCommitTs = 0n;
  readonly #locks: MvccError[] = [];
  #assertionFailure: MvccError | null = null;

  constructor(txn: MvccTxn, reader: MvccReader, request: PrewriteRequestArgs) {
    this.#txn = txn;
    this.#reader = reader;
    this.#request = request;
    this.#secondaryKeys = request.secondaryKeys;
    this.#tryOnePc = request.tryOnePc;
    const maxCommitTs = request.maxCommitTs;
    this.#props = {
      startTs: request.startTs,
      kind: request.kind,
      commitKind: request.tryOnePc
        ? { type: "OnePc", maxCommitTs }
        : request.secondaryKeys !== null
        ? { type: "Async", maxCommitTs }
        : { type: "TwoPc" },
      primary: request.primary,
      txnSize: request.txnSize,
      lockTtlMs: request.lockTtlMs,
      minCommitTs: request.minCommitTs,
      isRetryRequest: request.isRetryRequest,
      assertionLevel: request.assertionLevel,
      txnSource: request.txnSource,
      maxTs: request.maxTs,
    };
  }

  *steps(): KeySteps<PrewriteResult> {
    for (const mutation of this.#request.mutations) {
      const early = this.#prewriteOne(mutation);
      if (early !== null) return early;
      yield;
    }
    if (this.#assertionFailure !== null) return err(this.#assertionFailure);
    const minCommitTs = this.#secondaryKeys !== null ? this.#finalMinCommitTs : 0n;
    if (this.#locks.length > 0) {
      this.#txn.clear();
      return ok({ locks: this.#locks, minCommitTs, onePcCommitTs: 0n });
    }
    let onePcCommitTs = 0n;
    // A 1PC prewrite of no mutation has nothing to commit: it answers as a 2PC one would.
    if (this.#tryOnePc && this.#request.mutations.length > 0) {
      if (this.#finalMinCommitTs === 0n) throw new Error("1PC prewrite without a commit ts");
      commitOnePcLocks(this.#txn, this.#finalMinCommitTs);
      onePcCommitTs = this.#finalMinCommitTs;
    }
    return ok({ locks: [], minCommitTs, onePcCommitTs });
  }

  /** Prewrites one key; returns the request's result when the key ends it, else null. */
  #prewriteOne(args: PrewriteMutationArgs): MvccResult<PrewriteResult> | null {
    const isPrimary = bytesEqual(args.mutation.key.toRaw(), this.#request.primary);
    const secondaries = this.#secondaryKeys;
    const keySecondaries = secondaries === null ? null : isPrimary ? secondaries : [];
    const needsMinCommitTs = keySecondaries !== null || this.#tryOnePc;
    const result = prewrite(this.#txn, this.#reader, {
      ...args,
      props: this.#props,
      secondaryKeys: keySecondaries,
    });
    if (!result.ok) return this.#onKeyError(args.mutation.key, result.error);
    if (needsMinCommitTs && result.value === 0n) {
      // Prewritten before without async commit or 1PC: the rest go 2PC too.
      this.#fallBackToTwoPc();
    } else if (needsMinCommitTs && result.value > this.#finalMinCommitTs) {
      this.#finalMinCommitTs = result.value;
    }
    return null;
  }

  /** TiKV's handling of per-key errors: which end the request, which are collected. */
  #onKeyError(key: Key, error: MvccError): MvccResult<PrewriteResult> | null {
    switch (error.kind) {
      case "WriteConflict":
        if (error.conflictCommitTs <= error.startTs) return err(error);
        return this.#alreadyCommittedOr(key, error);
      case "PessimisticLockNotFound":
        return this.#alreadyCommittedOr(key, error);
      case "CommitTsTooLarge": {
        const committed = this.#alreadyCommittedOr(key, error);
        if (committed.ok) return committed;
        this.#fallBackToTwoPc();
        return null;
      }
      case "KeyIsLocked": {
        const committed = this.#alreadyCommittedOr(key, error);
        if (committed.ok) return committed;
        this.#locks.push(error);
        return null;
      }
      case "AssertionFailed":
        this.#assertionFailure ??= error;
        return null;
      default:
        return err(error);
    }
  }

  #fallBackToTwoPc(): void {
    this.#secondaryKeys = null;
    this.#tryOnePc = false;
    this.#props.commitKind = { type: "TwoPc" };
    this.#finalMinCommitTs = 0n;
    fallBackOnePcLocks(this.#txn);
    this.#txn.guardedLocks.length = 0;
  }

  /**
   * A retried prewrite may meet the effects of its own transaction's commit (a newer version,
   * a lock of a later transaction). If this transaction's commit record is on the key, the
   * request succeeds with nothing to write and its commit ts (TiKV
   * `check_committed_record_on_err`); otherwise the error stands.
   */
  #alreadyCommittedOr(key: Key, error: MvccError): MvccResult<PrewriteResult> {
    const record = this.#reader.getTxnCommitRecord(key, this.#txn.startTs);
    if (record.kind !== "SingleRecord" || record.write.writeType === "Rollback") return err(error);
    this.#txn.clear();
    return ok({
      locks: [],
      minCommitTs: this.#request.secondaryKeys !== null ? record.commitTs : 0n,
      onePcCommitTs: this.#request.tryOnePc ? record.commitTs : 0n,
    });
  }
}

/** 1PC fell back to 2PC: the locks kept aside are written as ordinary locks. */
function fallBackOnePcLocks(txn: MvccTxn): void {
  const pending = txn.locksForOnePc.splice(0);
  for (const { key, lock, removePessimisticLock } of pending) {
    txn.putLock(key, { ...lock, useOnePc: false }, !removePessimisticLock);
  }
}

/**
 * Commits the locks a 1PC prewrite kept aside, at `commitTs` (TiKV `handle_1pc_locks`):
 * each becomes a commit record; a pessimistic lock it replaces is deleted.
 */
export function commitOnePcLocks(txn: MvccTxn, commitTs: TimeStamp): void {
  const pending = txn.locksForOnePc.splice(0);
  for (const { key, lock, removePessimisticLock } of pending) {
    const writeType = writeTypeFromLockType(lock.lockType);
    if (writeType === null) throw new Error(`1PC lock on ${key} is pessimistic`);
    txn.putWrite(
      key,
      commitTs,
      newWrite({
        writeType,
        startTs: txn.startTs,
        shortValue: lock.shortValue,
        lastChange: lock.lastChange,
        txnSource: lock.txnSource,
      }),
    );
    if (removePessimisticLock) txn.unlockKey(key, true, commitTs);
  }
}
