/**
 * The two-phase commit RPCs and the checks lock resolution makes: KvPrewrite, KvCommit,
 * KvBatchRollback, KvCleanup, KvTxnHeartBeat, KvCheckTxnStatus, KvCheckSecondaryLocks. Each
 * runs one action through the scheduler and maps its result onto kvproto's response.
 */
import { kvrpcpb } from "../../../proto/mod.ts";
import { type MvccError, mvccErrorToKeyError, ok } from "../../mvcc/mod.ts";
import { assertionLevelFromProto, Key, mutationFromProto } from "../../txn_types/mod.ts";
import {
  batchRollback,
  cleanup,
  commit,
  pessimisticActionFromProto,
  type PrewriteMutationArgs,
  prewriteMutations,
  type TransactionKind,
} from "../../txn/actions/mod.ts";
import {
  checkSecondaryLocks,
  secondaryLocksStatusToResponse,
} from "../../txn/actions/check_secondary_locks.ts";
import { checkTxnStatus, txnStatusToResponse } from "../../txn/actions/check_txn_status.ts";
import { txnHeartBeat } from "../../txn/actions/txn_heart_beat.ts";
import { type Command, refuse } from "../command.ts";
import { executeWrite } from "./scheduler.ts";

const keyError = (error: MvccError) => mvccErrorToKeyError(error);

/** KvPrewrite: locks every mutation's key and stages its value (phase one). */
export const kvPrewrite: Command<kvrpcpb.PrewriteRequest, kvrpcpb.PrewriteResponse.$Properties> = {
  name: "KvPrewrite",
  batchName: "Prewrite",
  requestCodec: kvrpcpb.PrewriteRequest,
  responseCodec: kvrpcpb.PrewriteResponse,
  errorField: "keyErrors",
  keysOf: (request) => request.mutations.map((mutation) => mutation.key ?? new Uint8Array()),
  async execute({ txn: store }, request) {
    const expected = new Map(
      request.forUpdateTsConstraints.map((c) => [c.index, c.expectedForUpdateTs]),
    );
    const mutations: PrewriteMutationArgs[] = [];
    for (const [index, proto] of request.mutations.entries()) {
      const mutation = mutationFromProto(proto);
      if (typeof mutation === "string") {
        return refuse({ code: "InvalidArgument", message: mutation });
      }
      mutations.push({
        mutation,
        pessimisticAction: pessimisticActionFromProto(request.pessimisticActions[index]),
        expectedForUpdateTs: expected.get(index) ?? null,
      });
    }
    const kind: TransactionKind = request.forUpdateTs === 0n
      ? { type: "Optimistic", skipConstraintCheck: request.skipConstraintCheck }
      : { type: "Pessimistic", forUpdateTs: request.forUpdateTs };
    const result = await executeWrite(store, {
      keys: mutations.map((m) => m.mutation.key),
      startTs: request.startVersion,
      memoryLocks: request.useAsyncCommit || request.tryOnePc,
    }, ({ reader, txn, maxTs }) =>
      prewriteMutations(txn, reader, {
        startTs: request.startVersion,
        primary: request.primaryLock,
        mutations,
        kind,
        lockTtlMs: request.lockTtl,
        txnSize: request.txnSize,
        minCommitTs: request.minCommitTs,
        maxCommitTs: request.maxCommitTs,
        secondaryKeys: request.useAsyncCommit ? request.secondaries : null,
        tryOnePc: request.tryOnePc,
        isRetryRequest: request.context?.isRetryRequest ?? false,
        assertionLevel: assertionLevelFromProto(request.assertionLevel),
        txnSource: request.context?.txnSource ?? 0n,
        maxTs,
      }));
    if (!result.ok) return { errors: [keyError(result.error)] };
    if (result.value.locks.length > 0) return { errors: result.value.locks.map(keyError) };
    return { minCommitTs: result.value.minCommitTs, onePcCommitTs: result.value.onePcCommitTs };
  },
};

/** KvCommit: commits the transaction's locks on `keys` at `commit_version` (phase two). */
export const kvCommit: Command<kvrpcpb.CommitRequest, kvrpcpb.CommitResponse.$Properties> = {
  name: "KvCommit",
  batchName: "Commit",
  requestCodec: kvrpcpb.CommitRequest,
  responseCodec: kvrpcpb.CommitResponse,
  errorField: "keyError",
  keysOf: (request) => request.keys,
  async execute({ txn: store }, request) {
    const keys = request.keys.map((raw) => Key.fromRaw(raw));
    const result = await executeWrite(
      store,
      { keys, startTs: request.startVersion },
      ({ reader, txn }) => {
        for (const key of keys) {
          const committed = commit(txn, reader, { key, commitTs: request.commitVersion });
          if (!committed.ok) return committed;
        }
        return ok(null);
      },
    );
    if (!result.ok) return { error: keyError(result.error) };
    return { commitVersion: request.commitVersion };
  },
};

/** KvBatchRollback: rolls the transaction back on `keys`. */
export const kvBatchRollback: Command<
  kvrpcpb.BatchRollbackRequest,
  kvrpcpb.BatchRollbackResponse.$Properties
> = {
  name: "KvBatchRollback",
  batchName: "BatchRollback",
  requestCodec: kvrpcpb.BatchRollbackRequest,
  responseCodec: kvrpcpb.BatchRollbackResponse,
  errorField: "keyError",
  keysOf: (request) => request.keys,
  async execute({ txn: store }, request) {
    const keys = request.keys.map((raw) => Key.fromRaw(raw));
    const result = await executeWrite(
      store,
      { keys, startTs: request.startVersion },
      ({ reader, txn }) => batchRollback(txn, reader, keys),
    );
    return result.ok ? {} : { error: keyError(result.error) };
  },
};

/**
 * KvCleanup: rolls back the transaction's lock on `key` if its TTL has expired at
 * `current_ts` (or unconditionally when it is 0); a committed transaction answers with its
 * commit ts.
 */
export const kvCleanup: Command<kvrpcpb.CleanupRequest, kvrpcpb.CleanupResponse.$Properties> = {
  name: "KvCleanup",
  batchName: "Cleanup",
  requestCodec: kvrpcpb.CleanupRequest,
  responseCodec: kvrpcpb.CleanupResponse,
  errorField: "keyError",
  keysOf: (request) => [request.key],
  async execute({ txn: store }, request) {
    const key = Key.fromRaw(request.key);
    const result = await executeWrite(
      store,
      { keys: [key], startTs: request.startVersion },
      ({ reader, txn }) =>
        cleanup(txn, reader, { key, currentTs: request.currentTs, protectRollback: true }),
    );
    if (result.ok) return {};
    if (result.error.kind === "Committed") return { commitVersion: result.error.commitTs };
    return { error: keyError(result.error) };
  },
};

/** KvTxnHeartBeat: extends the primary lock's TTL to at least `advise_lock_ttl`. */
export const kvTxnHeartBeat: Command<
  kvrpcpb.TxnHeartBeatRequest,
  kvrpcpb.TxnHeartBeatResponse.$Properties
> = {
  name: "KvTxnHeartBeat",
  batchName: "TxnHeartBeat",
  requestCodec: kvrpcpb.TxnHeartBeatRequest,
  responseCodec: kvrpcpb.TxnHeartBeatResponse,
  errorField: "keyError",
  keysOf: (request) => [request.primaryLock],
  async execute({ txn: store }, request) {
    const primaryKey = Key.fromRaw(request.primaryLock);
    const result = await executeWrite(
      store,
      { keys: [primaryKey], startTs: request.startVersion },
      ({ reader, txn }) =>
        txnHeartBeat(txn, reader, {
          primaryKey,
          adviseLockTtlMs: request.adviseLockTtl,
          minCommitTs: request.minCommitTs,
        }),
    );
    return result.ok ? { lockTtl: result.value.ttlMs } : { error: keyError(result.error) };
  },
};

/**
 * KvCheckTxnStatus: the status of the transaction whose primary is `primary_key` — committed,
 * rolled back, or locked (rolled back here if its TTL expired at `current_ts`; its
 * min_commit_ts pushed past `caller_start_ts`).
 */
export const kvCheckTxnStatus: Command<
  kvrpcpb.CheckTxnStatusRequest,
  kvrpcpb.CheckTxnStatusResponse.$Properties
> = {
  name: "KvCheckTxnStatus",
  batchName: "CheckTxnStatus",
  requestCodec: kvrpcpb.CheckTxnStatusRequest,
  responseCodec: kvrpcpb.CheckTxnStatusResponse,
  errorField: "keyError",
  keysOf: (request) => [request.primaryKey],
  async execute({ txn: store }, request) {
    const primaryKey = Key.fromRaw(request.primaryKey);
    const result = await executeWrite(
      store,
      { keys: [primaryKey], startTs: request.lockTs },
      ({ reader, txn }) =>
        checkTxnStatus(txn, reader, {
          primaryKey,
          callerStartTs: request.callerStartTs,
          currentTs: request.currentTs,
          rollbackIfNotExist: request.rollbackIfNotExist,
          forceSyncCommit: request.forceSyncCommit,
          resolvingPessimisticLock: request.resolvingPessimisticLock,
          verifyIsPrimary: request.verifyIsPrimary,
        }),
    );
    if (!result.ok) return { error: keyError(result.error) };
    return txnStatusToResponse(result.value.status, primaryKey);
  },
};

/**
 * KvCheckSecondaryLocks: for async-commit recovery, whether every secondary is still locked
 * (the locks), or the transaction committed (its commit ts) or was rolled back (neither).
 * A missing lock is rolled back (protected), so the transaction can no longer commit.
 */
export const kvCheckSecondaryLocks: Command<
  kvrpcpb.CheckSecondaryLocksRequest,
  kvrpcpb.CheckSecondaryLocksResponse.$Properties
> = {
  name: "KvCheckSecondaryLocks",
  batchName: "CheckSecondaryLocks",
  requestCodec: kvrpcpb.CheckSecondaryLocksRequest,
  responseCodec: kvrpcpb.CheckSecondaryLocksResponse,
  errorField: "keyError",
  keysOf: (request) => request.keys,
  async execute({ txn: store }, request) {
    const keys = request.keys.map((raw) => Key.fromRaw(raw));
    const result = await executeWrite(
      store,
      { keys, startTs: request.startVersion },
      ({ reader, txn }) => checkSecondaryLocks(txn, reader, { keys }),
    );
    if (!result.ok) return { error: keyError(result.error) };
    return secondaryLocksStatusToResponse(result.value.status);
  },
};
