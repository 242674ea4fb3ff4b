/**
 * Lock RPCs: KvScanLock and KvResolveLock (lock resolution), KvPessimisticLock (with waiting
 * in the lock-wait queue and deadlock detection) and KVPessimisticRollback.
 */
import { kvrpcpb } from "../../../proto/mod.ts";
import { clampToRegion, type RegionMeta, RegionSnapshot } from "../../storage/mod.ts";
import { type MvccError, mvccErrorToKeyError, MvccReader, ok } from "../../mvcc/mod.ts";
import { decodeLock, Key, type Lock, type TimeStamp } from "../../txn_types/mod.ts";
import {
  acquirePessimisticLocksSteps,
  pessimisticLockResponseFields,
} from "../../txn/actions/acquire_pessimistic_lock.ts";
import {
  pessimisticLocksToRollBack,
  pessimisticRollbackSteps,
} from "../../txn/actions/pessimistic_rollback.ts";
import {
  resolveLockBatch,
  resolveLockKeySteps,
  scanLocksToResolve,
} from "../../txn/actions/resolve_lock.ts";
import { scanLock } from "../../txn/actions/scan_lock.ts";
import { deadlockError, normalizeWaitTimeoutMs } from "../../txn/lock_manager/mod.ts";
import { successor } from "../../util/bytes.ts";
import { ANSWER_ENTRY_OVERHEAD_BYTES, SCAN_LOCK_PAGE_LOCKS } from "../../constants.ts";
import { MVCC_SCAN_LOCKS_MAX_LIMIT } from "../../mvcc/mod.ts";
import { type Command, refuse } from "../command.ts";
import { executeWrite, SlicePacer } from "./scheduler.ts";
import type { TxnStore } from "./store.ts";

const keyError = (error: MvccError) => mvccErrorToKeyError(error);

/** The memory locks (async commit, 1PC in flight) in [start, end) of `region`. */
function memoryLocksIn(
  scope: { store: TxnStore; region: RegionMeta },
  start: Key | null,
  end: Key | null,
): { key: Key; lock: Lock }[] {
  const found: { key: Key; lock: Lock }[] = [];
  // The memory locks are the worker's: only the region's part of the range is read.
  const range = clampToRegion(scope.region, { lower: start?.encoded, upper: end?.encoded });
  if (range === null) return found;
  scope.store.concurrency.readRangeCheck(
    { startKey: range.lower, endKey: range.upper },
    (encoded, lock) => {
      found.push({ key: Key.fromEncoded(encoded), lock });
      return undefined;
    },
  );
  return found;
}

/**
 * KvScanLock: locks with start ts ≤ `max_version` in [start_key, end_key), up to `limit` (0 =
 * MVCC_SCAN_LOCKS_MAX_LIMIT). Gathered in pages of SCAN_LOCK_PAGE_LOCKS, each lock's bytes taken
 * from the answer budget; a scan the budget refuses answers `AnswerTooLarge`, not a short list
 * (client-go's GC lock scan reads a short page as the end of the region). A page holds at most
 * SCAN_LOCK_PAGE_LOCKS locks past the budget, each bounded by the prewrite that wrote it.
 */
export const kvScanLock: Command<kvrpcpb.ScanLockRequest, kvrpcpb.ScanLockResponse.$Properties> = {
  name: "KvScanLock",
  batchName: "ScanLock",
  requestCodec: kvrpcpb.ScanLockRequest,
  responseCodec: kvrpcpb.ScanLockResponse,
  errorField: "keyError",
  keyApi: "txn",
  keysOf: (request) => [request.startKey],
  execute({ txn: store }, request, { region, budget }) {
    if (request.limit > MVCC_SCAN_LOCKS_MAX_LIMIT) {
      const message = `scan lock limit ${request.limit} exceeds ${MVCC_SCAN_LOCKS_MAX_LIMIT}`;
      return Promise.resolve(refuse({ code: "InvalidArgument", message }));
    }
    store.concurrency.updateMaxTs(request.maxVersion);
    const limit = request.limit === 0 ? MVCC_SCAN_LOCKS_MAX_LIMIT : request.limit;
    const endKey = request.endKey.length === 0 ? null : Key.fromRaw(request.endKey);
    let startKey = request.startKey.length === 0 ? null : Key.fromRaw(request.startKey);
    const memoryLocks = memoryLocksIn({ store, region }, startKey, endKey);
    using snapshot = RegionSnapshot.take(store.engine, region);
    using reader = new MvccReader(snapshot);
    const locks: kvrpcpb.ILockInfo[] = [];
    while (locks.length < limit) {
      const page = scanLock(reader, {
        startKey,
        endKey,
        maxVersion: request.maxVersion,
        limit: Math.min(SCAN_LOCK_PAGE_LOCKS, limit - locks.length),
        memoryLocks,
      });
      for (const info of page.locks) {
        const bytes = kvrpcpb.LockInfo.encode(info).finish().length;
        if (!budget.take(bytes + ANSWER_ENTRY_OVERHEAD_BYTES)) {
          return Promise.resolve(refuse(budget.refusal("KvScanLock", locks.length)));
        }
        locks.push(info);
      }
      const last = page.locks[page.locks.length - 1];
      if (!page.hasRemain || last === undefined) break;
      // The next raw key after the last (memcomparable encoding keeps raw order).
      startKey = Key.fromRaw(successor(last.key ?? new Uint8Array()));
    }
    return Promise.resolve({ locks });
  },
};

/** Locks of the given transactions found per round of a region-wide resolve. */
const RESOLVE_SCAN_LIMIT = 256;

/**
 * KvResolveLock: commits (commit ts > 0) or rolls back (0) the locks of the transactions in
 * `txn_infos` (or of `start_version` at `commit_version`): on `keys` when given, else every
 * lock of theirs in the region, in rounds.
 */
export const kvResolveLock: Command<
  kvrpcpb.ResolveLockRequest,
  kvrpcpb.ResolveLockResponse.$Properties
> = {
  name: "KvResolveLock",
  batchName: "ResolveLock",
  requestCodec: kvrpcpb.ResolveLockRequest,
  responseCodec: kvrpcpb.ResolveLockResponse,
  errorField: "keyError",
  keyApi: "txn",
  keysOf: (request) => request.keys,
  async execute({ txn: store }, request, { region }) {
    const txnStatus = new Map<TimeStamp, TimeStamp>(
      request.txnInfos.length > 0
        ? request.txnInfos.map((info) => [info.txn ?? 0n, info.status ?? 0n])
        : [[request.startVersion, request.commitVersion]],
    );
    if (request.keys.length > 0) {
      if (txnStatus.size !== 1) {
        return refuse({
          code: "InvalidArgument",
          message: "ResolveLock with keys resolves one transaction (start_version)",
        });
      }
      const keys = request.keys.map((raw) => Key.fromRaw(raw));
      const result = await executeWrite(
        store,
        { region, keys, startTs: request.startVersion },
        ({ reader, txn }) =>
          resolveLockKeySteps(txn, reader, { keys, commitTs: request.commitVersion }),
      );
      return result.ok ? {} : { error: keyError(result.error) };
    }
    let from: Key | null = null;
    const pacer = new SlicePacer();
    for (;;) {
      // Read phase: find a round of locks; write phase: resolve them under their latches.
      let round: { key: Key; lock: Lock }[];
      let hasRemain: boolean;
      {
        using snapshot = RegionSnapshot.take(store.engine, region);
        using reader = new MvccReader(snapshot);
        ({ locks: round, hasRemain } = scanLocksToResolve(reader, {
          txnStatus,
          startKey: from,
          endKey: null,
          limit: RESOLVE_SCAN_LIMIT,
        }));
      }
      if (round.length === 0) return {};
      const result = await executeWrite(
        store,
        { region, keys: round.map((entry) => entry.key), startTs: round[0]!.lock.startTs },
        ({ reader, others }) => {
          // Re-read each lock under the latches: it may have been resolved meanwhile.
          const current = round.flatMap(({ key }) => {
            const lock = reader.loadLock(key);
            return lock !== null && txnStatus.has(lock.startTs) ? [{ key, lock }] : [];
          });
          const resolved = resolveLockBatch(reader, { locks: current, txnStatus });
          if (!resolved.ok) return resolved;
          others.push(...resolved.value.txns);
          return ok(resolved.value.resumeKey);
        },
      );
      if (!result.ok) return { error: keyError(result.error) };
      await pacer.advance(round.length);
      if (result.value !== null) {
        from = result.value;
        continue;
      }
      if (!hasRemain) return {};
      // From the last key again: its lock is resolved now, so the scan moves past it. (The
      // byte successor of an encoded key is not an encoded key.)
      from = round[round.length - 1]!.key;
    }
  },
};

/**
 * KvPessimisticLock: takes pessimistic locks on every mutation's key, all or nothing. Meeting
 * another transaction's lock, it waits (up to `wait_timeout`, 0 = the default, negative = no
 * wait) in the lock-wait queue and retries when that lock goes; a wait that would close a
 * cycle of waits answers `Deadlock` at once.
 */
export const kvPessimisticLock: Command<
  kvrpcpb.PessimisticLockRequest,
  kvrpcpb.PessimisticLockResponse.$Properties
> = {
  name: "KvPessimisticLock",
  batchName: "PessimisticLock",
  requestCodec: kvrpcpb.PessimisticLockRequest,
  responseCodec: kvrpcpb.PessimisticLockResponse,
  errorField: "keyErrors",
  keyApi: "txn",
  keysOf: (request) => request.mutations.map((mutation) => mutation.key ?? new Uint8Array()),
  async execute({ txn: store }, request, { region }) {
    const keys: { key: Key; shouldNotExist: boolean }[] = [];
    for (const proto of request.mutations) {
      const op = proto.op ?? kvrpcpb.Op.PessimisticLock;
      if (op !== kvrpcpb.Op.PessimisticLock) {
        const message = `pessimistic lock mutations must be PessimisticLock, not ${kvrpcpb.Op[op]}`;
        return refuse({ code: "InvalidArgument", message });
      }
      // An insert locks its key asserting it has no value (kvproto: assertion NotExist).
      keys.push({
        key: Key.fromRaw(proto.key ?? new Uint8Array()),
        shouldNotExist: proto.assertion === kvrpcpb.Assertion.NotExist,
      });
    }
    const timeoutMs = normalizeWaitTimeoutMs(request.waitTimeout);
    for (;;) {
      const result = await executeWrite(
        store,
        { region, keys: keys.map((entry) => entry.key), startTs: request.startVersion },
        ({ reader, txn }) =>
          acquirePessimisticLocksSteps(txn, reader, {
            keys,
            primary: request.primaryLock,
            lockTtlMs: request.lockTtl,
            forUpdateTs: request.forUpdateTs,
            needValue: request.returnValues,
            needCheckExistence: request.checkExistence,
            minCommitTs: request.minCommitTs,
            lockOnlyIfExists: request.lockOnlyIfExists,
            allowLockWithConflict:
              request.wakeUpMode === kvrpcpb.PessimisticLockWakeUpMode.WakeUpModeForceLock,
          }),
      );
      if (result.ok) {
        const fields = pessimisticLockResponseFields(result.value, {
          returnValues: request.returnValues,
          checkExistence: request.checkExistence,
        });
        return {
          ...fields,
          results: result.value.map((entry) => ({
            type: entry.kind === "LockedWithConflict"
              ? kvrpcpb.PessimisticLockKeyResultType.LockResultLockedWithConflict
              : kvrpcpb.PessimisticLockKeyResultType.LockResultNormal,
            value: "value" in entry ? entry.value ?? new Uint8Array() : new Uint8Array(),
            existence: entry.kind === "Existence"
              ? entry.exists
              : "value" in entry && entry.value !== null,
            lockedWithConflictTs: entry.kind === "LockedWithConflict" ? entry.conflictTs : 0n,
          })),
        };
      }
      if (result.error.kind !== "KeyIsLocked" || timeoutMs === undefined) {
        return { errors: [keyError(result.error)] };
      }
      const waited = await waitForLock({ store, region }, request, {
        locked: result.error,
        timeoutMs,
      });
      if (waited !== null) return { errors: [keyError(waited)] };
    }
  },
};

/**
 * Waits until the lock in `locked` is released; null means "retry now", an error means
 * answer with it (the original KeyIsLocked on timeout, or Deadlock).
 */
async function waitForLock(
  scope: { store: TxnStore; region: RegionMeta },
  request: kvrpcpb.PessimisticLockRequest,
  options: { locked: Extract<MvccError, { kind: "KeyIsLocked" }>; timeoutMs: number },
): Promise<MvccError | null> {
  const { store, region } = scope;
  const { locked, timeoutMs } = options;
  const info = locked.lockInfo;
  const key = Key.fromRaw(info.key ?? new Uint8Array());
  const lockTs = info.lockVersion ?? 0n;
  const waiter = store.lockWaits.wait({
    startTs: request.startVersion,
    key: key.encoded,
    rawKey: key.toRaw(),
    lockTs,
    error: locked,
    timeoutMs,
    isFirstLock: request.isFirstLock,
  });
  // The lock may have gone between the attempt and the wait: then retry at once.
  const stored = RegionSnapshot.latest(store.engine, region).get("lock", key.encoded);
  if (stored === null || decodeLock(stored).startTs !== lockTs) {
    store.lockWaits.cancel(waiter.token, "lock released before the wait began");
    await waiter.outcome;
    return null;
  }
  const outcome = await waiter.outcome;
  switch (outcome.kind) {
    case "woken":
    case "cancelled":
      return null;
    case "timeout":
    case "queue_full":
      return outcome.error;
    case "deadlock":
      return deadlockError(request.startVersion, outcome.deadlock).error;
  }
}

/**
 * KVPessimisticRollback: removes the transaction's pessimistic locks with for_update_ts at
 * most `for_update_ts`, on `keys`, or on every key of the region when none are given.
 */
export const kvPessimisticRollback: Command<
  kvrpcpb.PessimisticRollbackRequest,
  kvrpcpb.PessimisticRollbackResponse.$Properties
> = {
  name: "KVPessimisticRollback",
  batchName: "PessimisticRollback",
  requestCodec: kvrpcpb.PessimisticRollbackRequest,
  responseCodec: kvrpcpb.PessimisticRollbackResponse,
  errorField: "keyErrors",
  keyApi: "txn",
  keysOf: (request) => request.keys,
  async execute({ txn: store }, request, { region }) {
    let keys = request.keys.map((raw) => Key.fromRaw(raw));
    let from: Key | null = null;
    const pacer = new SlicePacer();
    for (;;) {
      let hasRemain = false;
      if (request.keys.length === 0) {
        using snapshot = RegionSnapshot.take(store.engine, region);
        using reader = new MvccReader(snapshot);
        ({ keys, hasRemain } = pessimisticLocksToRollBack(reader, {
          startTs: request.startVersion,
          forUpdateTs: request.forUpdateTs,
          startKey: from,
        }));
        if (keys.length === 0) return {};
      }
      const result = await executeWrite(
        store,
        { region, keys, startTs: request.startVersion },
        ({ reader, txn }) =>
          pessimisticRollbackSteps(txn, reader, { keys, forUpdateTs: request.forUpdateTs }),
      );
      if (!result.ok) return { errors: [keyError(result.error)] };
      if (!hasRemain) return {};
      await pacer.advance(keys.length);
      // From the last key again: its lock is gone now (see KvResolveLock).
      from = keys[keys.length - 1]!;
    }
  },
};
