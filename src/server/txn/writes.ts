/**
 * The two-phase commit RPCs and the checks lock resolution makes: KvPrewrite, KvCommit,
 * KvBatchRollback, KvCleanup, KvTxnHeartBeat, KvCheckTxnStatus, KvCheckSecondaryLocks. Each
 * runs one action through the scheduler and maps its result onto kvproto's response.
 */
import { kvrpcpb } from "../../../proto/mod.ts";
import { type MvccError, mvccErrorToKeyError, type MvccResult } from "../../mvcc/mod.ts";
import type { ReleasedLock } from "../../mvcc/txn.ts";
import {
  assertionLevelFromProto,
  Key,
  type Lock,
  mutationFromProto,
  type TimeStamp,
} from "../../txn_types/mod.ts";
import {
  cleanup,
  pessimisticActionFromProto,
  type PrewriteMutationArgs,
  type TransactionKind,
} from "../../txn/actions/mod.ts";
import { batchRollbackSteps } from "../../txn/actions/rollback.ts";
import { commitKeys } from "../../txn/actions/commit.ts";
import { prewriteMutationSteps } from "../../txn/actions/prewrite.ts";
import type { KeySteps } from "../../txn/actions/steps.ts";
import { TXN_WRITE_SLICE_KEYS } from "../../constants.ts";
import {
  type CheckSecondaryLocksResult,
  checkSecondaryLocksSteps,
  secondaryLocksStatusToResponse,
} from "../../txn/actions/check_secondary_locks.ts";
import {
  checkTxnStatus,
  type CheckTxnStatusResult,
  txnStatusToResponse,
} from "../../txn/actions/check_txn_status.ts";
import { txnHeartBeat } from "../../txn/actions/txn_heart_beat.ts";
import { type Command, type MessageCodec, refuse } from "../command.ts";
import { type ActionContext, executeWrite } from "./scheduler.ts";

const keyError = (error: MvccError) => mvccErrorToKeyError(error);

/**
 * KvPrewrite: locks every mutation's key and stages its value (phase one).
 *
 * An async-commit or 1PC request over more than `TXN_WRITE_SLICE_KEYS` mutations is
 * prewritten as 2PC and answered with `min_commit_ts` and `one_pc_commit_ts` 0, which tells
 * the client to finish the transaction in two phases (TiKV answers so when async commit cannot
 * proceed): those modes must run without pausing, and one slice is the longest a request may
 * hold its worker.
 */
export const kvPrewrite: Command<kvrpcpb.PrewriteRequest, kvrpcpb.PrewriteResponse.$Properties> = {
  name: "KvPrewrite",
  batchName: "Prewrite",
  requestCodec: kvrpcpb.PrewriteRequest,
  responseCodec: kvrpcpb.PrewriteResponse,
  errorField: "keyErrors",
  keyApi: "txn",
  keysOf: (request) => request.mutations.map((mutation) => mutation.key ?? new Uint8Array()),
  async execute(services, request, { region }) {
    const store = services.txn;
    // A new leader may not know the largest timestamp its predecessor read at: a commit ts
    // computed from max_ts (async commit, 1PC) waits until max_ts is synced with PD.
    if (
      (request.useAsyncCommit || request.tryOnePc) && services.maxTsSynced?.(region.id) === false
    ) {
      return refuse({ code: "MaxTimestampNotSynced", regionId: region.id });
    }
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
    const fitsOneSlice = mutations.length <= TXN_WRITE_SLICE_KEYS;
    const useAsyncCommit = request.useAsyncCommit && fitsOneSlice;
    const tryOnePc = request.tryOnePc && fitsOneSlice;
    const result = await executeWrite(store, {
      region,
      keys: mutations.map((m) => m.mutation.key),
      startTs: request.startVersion,
      memoryLocks: useAsyncCommit || tryOnePc,
    }, ({ reader, txn, maxTs }) =>
      prewriteMutationSteps(txn, reader, {
        startTs: request.startVersion,
        primary: request.primaryLock,
        mutations,
        kind,
        lockTtlMs: request.lockTtl,
        txnSize: request.txnSize,
        minCommitTs: request.minCommitTs,
        maxCommitTs: request.maxCommitTs,
        secondaryKeys: useAsyncCommit ? request.secondaries : null,
        tryOnePc,
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

/** A one-action write command: which keys it latches, its action, and how it answers. */
interface WriteCommandSpec<Request, Response, T> {
  name: string;
  batchName: string;
  requestCodec: MessageCodec<Request>;
  responseCodec: MessageCodec<Response>;
  /** Raw keys the command writes (latched, checked against the region). */
  keysOf(request: Request): Uint8Array[];
  startTs(request: Request): TimeStamp;
  /** The action: its result, or its steps when it works through many keys. */
  action(context: ActionContext, request: Request, keys: Key[]): MvccResult<T> | KeySteps<T>;
  respond(value: T, request: Request): Response;
  /** An answer for an expected error other than the `error` field (e.g. "already committed"). */
  onError?(error: MvccError): Response | null;
}

/** The command of `spec`: latched, run by the scheduler, a failure answered in `error`. */
function writeCommand<Request, Response, T>(
  spec: WriteCommandSpec<Request, Response, T>,
): Command<Request, Response> {
  return {
    name: spec.name,
    batchName: spec.batchName,
    requestCodec: spec.requestCodec,
    responseCodec: spec.responseCodec,
    errorField: "keyError",
    keyApi: "txn",
    keysOf: spec.keysOf,
    async execute({ txn: store }, request, { region }) {
      const keys = spec.keysOf(request).map((raw) => Key.fromRaw(raw));
      const result = await executeWrite(
        store,
        { region, keys, startTs: spec.startTs(request) },
        (context) => spec.action(context, request, keys),
      );
      if (result.ok) return spec.respond(result.value, request);
      return spec.onError?.(result.error) ?? ({ error: keyError(result.error) } as Response);
    },
  };
}

/** KvCommit: commits the transaction's locks on `keys` at `commit_version` (phase two). */
export const kvCommit = writeCommand<
  kvrpcpb.CommitRequest,
  kvrpcpb.CommitResponse.$Properties,
  null
>({
  name: "KvCommit",
  batchName: "Commit",
  requestCodec: kvrpcpb.CommitRequest,
  responseCodec: kvrpcpb.CommitResponse,
  keysOf: (request) => request.keys,
  startTs: (request) => request.startVersion,
  action: ({ reader, txn }, request, keys) =>
    commitKeys(txn, reader, { keys, commitTs: request.commitVersion }),
  respond: (_, request) => ({
    commitVersion: request.commitVersion,
  }),
});

/** KvBatchRollback: rolls the transaction back on `keys`. */
export const kvBatchRollback = writeCommand<
  kvrpcpb.BatchRollbackRequest,
  kvrpcpb.BatchRollbackResponse.$Properties,
  ReleasedLock[]
>({
  name: "KvBatchRollback",
  batchName: "BatchRollback",
  requestCodec: kvrpcpb.BatchRollbackRequest,
  responseCodec: kvrpcpb.BatchRollbackResponse,
  keysOf: (request) => request.keys,
  startTs: (request) => request.startVersion,
  action: ({ reader, txn }, _, keys) => batchRollbackSteps(txn, reader, keys),
  respond: () => ({}),
});

/**
 * KvCleanup: rolls back the transaction's lock on `key` if its TTL has expired at
 * `current_ts` (or unconditionally when it is 0); a committed transaction answers with its
 * commit ts.
 */
export const kvCleanup = writeCommand<
  kvrpcpb.CleanupRequest,
  kvrpcpb.CleanupResponse.$Properties,
  ReleasedLock | null
>({
  name: "KvCleanup",
  batchName: "Cleanup",
  requestCodec: kvrpcpb.CleanupRequest,
  responseCodec: kvrpcpb.CleanupResponse,
  keysOf: (request) => [request.key],
  startTs: (request) => request.startVersion,
  action: ({ reader, txn }, request, [key]) =>
    cleanup(txn, reader, { key: key!, currentTs: request.currentTs, protectRollback: true }),
  respond: () => ({}),
  onError: (error) => error.kind === "Committed" ? { commitVersion: error.commitTs } : null,
});

/** KvTxnHeartBeat: extends the primary lock's TTL to at least `advise_lock_ttl`. */
export const kvTxnHeartBeat = writeCommand<
  kvrpcpb.TxnHeartBeatRequest,
  kvrpcpb.TxnHeartBeatResponse.$Properties,
  Lock
>({
  name: "KvTxnHeartBeat",
  batchName: "TxnHeartBeat",
  requestCodec: kvrpcpb.TxnHeartBeatRequest,
  responseCodec: kvrpcpb.TxnHeartBeatResponse,
  keysOf: (request) => [request.primaryLock],
  startTs: (request) => request.startVersion,
  action: ({ reader, txn }, request, [primaryKey]) =>
    txnHeartBeat(txn, reader, {
      primaryKey: primaryKey!,
      adviseLockTtlMs: request.adviseLockTtl,
      minCommitTs: request.minCommitTs,
    }),
  respond: (lock) => ({ lockTtl: lock.ttlMs }),
});

/**
 * KvCheckTxnStatus: the status of the transaction whose primary is `primary_key` — committed,
 * rolled back, or locked (rolled back here if its TTL expired at `current_ts`; its
 * min_commit_ts pushed past `caller_start_ts`).
 */
export const kvCheckTxnStatus = writeCommand<
  kvrpcpb.CheckTxnStatusRequest,
  kvrpcpb.CheckTxnStatusResponse.$Properties,
  CheckTxnStatusResult
>({
  name: "KvCheckTxnStatus",
  batchName: "CheckTxnStatus",
  requestCodec: kvrpcpb.CheckTxnStatusRequest,
  responseCodec: kvrpcpb.CheckTxnStatusResponse,
  keysOf: (request) => [request.primaryKey],
  startTs: (request) => request.lockTs,
  action: ({ reader, txn }, request, [primaryKey]) =>
    checkTxnStatus(txn, reader, {
      primaryKey: primaryKey!,
      callerStartTs: request.callerStartTs,
      currentTs: request.currentTs,
      rollbackIfNotExist: request.rollbackIfNotExist,
      forceSyncCommit: request.forceSyncCommit,
      resolvingPessimisticLock: request.resolvingPessimisticLock,
      verifyIsPrimary: request.verifyIsPrimary,
    }),
  respond: (value, request) => txnStatusToResponse(value.status, Key.fromRaw(request.primaryKey)),
});

/**
 * KvCheckSecondaryLocks: for async-commit recovery, whether every secondary is still locked
 * (the locks), or the transaction committed (its commit ts) or was rolled back (neither).
 * A missing lock is rolled back (protected), so the transaction can no longer commit.
 */
export const kvCheckSecondaryLocks = writeCommand<
  kvrpcpb.CheckSecondaryLocksRequest,
  kvrpcpb.CheckSecondaryLocksResponse.$Properties,
  CheckSecondaryLocksResult
>({
  name: "KvCheckSecondaryLocks",
  batchName: "CheckSecondaryLocks",
  requestCodec: kvrpcpb.CheckSecondaryLocksRequest,
  responseCodec: kvrpcpb.CheckSecondaryLocksResponse,
  keysOf: (request) => request.keys,
  startTs: (request) => request.startVersion,
  action: ({ reader, txn }, _, keys) => checkSecondaryLocksSteps(txn, reader, { keys }),
  respond: (value) => secondaryLocksStatusToResponse(value.status),
});
