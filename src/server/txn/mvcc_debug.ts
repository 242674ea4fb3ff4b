/**
 * MvccGetByKey and MvccGetByStartTs: every version, lock and write record of a key, as TiKV's
 * debugging RPCs show them (the admin CLI's `mvcc` command uses them). A key may hold any number
 * of versions, each value up to MAX_ENTRY_BYTES: every record's bytes are taken from the answer
 * budget as it is read, and a key whose history passes the budget answers `AnswerTooLarge`.
 */
import { kvrpcpb } from "../../../proto/mod.ts";
import { RegionSnapshot } from "../../storage/mod.ts";
import { decodeTs, isUserKeyEq, truncateTs } from "../../codec/key.ts";
import { ANSWER_ENTRY_OVERHEAD_BYTES } from "../../constants.ts";
import { MvccReader } from "../../mvcc/mod.ts";
import {
  decodeWrite,
  Key,
  type Lock,
  type LockType,
  TS_MAX,
  type Write,
  type WriteType,
} from "../../txn_types/mod.ts";
import type { ColumnFamily, Snapshot } from "../../engine/types.ts";
import type { AnswerBudget } from "../answer_budget.ts";
import { type Command, refuse } from "../command.ts";

const LOCK_OPS: Record<LockType, kvrpcpb.Op> = {
  Put: kvrpcpb.Op.Put,
  Delete: kvrpcpb.Op.Del,
  Lock: kvrpcpb.Op.Lock,
  Pessimistic: kvrpcpb.Op.PessimisticLock,
};

const WRITE_OPS: Record<WriteType, kvrpcpb.Op> = {
  Put: kvrpcpb.Op.Put,
  Delete: kvrpcpb.Op.Del,
  Lock: kvrpcpb.Op.Lock,
  Rollback: kvrpcpb.Op.Rollback,
};

function lockInfo(lock: Lock): kvrpcpb.IMvccLock {
  return {
    type: LOCK_OPS[lock.lockType],
    startTs: lock.startTs,
    primary: lock.primary,
    shortValue: lock.shortValue ?? new Uint8Array(),
    ttl: lock.ttlMs,
    forUpdateTs: lock.forUpdateTs,
    txnSize: lock.txnSize,
    useAsyncCommit: lock.useAsyncCommit,
    secondaries: lock.secondaries,
    rollbackTs: lock.rollbackTs,
  };
}

function writeInfo(commitTs: bigint, write: Write): kvrpcpb.IMvccWrite {
  return {
    type: WRITE_OPS[write.writeType],
    startTs: write.startTs,
    commitTs,
    shortValue: write.shortValue ?? new Uint8Array(),
    hasOverlappedRollback: write.hasOverlappedRollback,
    hasGcFence: write.gcFence !== null,
    gcFence: write.gcFence ?? 0n,
  };
}

/**
 * Calls `visit` with the suffix ts and value of each record of `key` in `cf`, newest first,
 * until it returns false; false when it did.
 */
function eachVersion(
  snapshot: Snapshot,
  { cf, key }: { cf: ColumnFamily; key: Key },
  visit: (ts: bigint, value: Uint8Array) => boolean,
): boolean {
  using cursor = snapshot.iterator(cf, { lowerBound: key.appendTs(TS_MAX) });
  for (cursor.seekToFirst(); cursor.valid(); cursor.next()) {
    const found = cursor.key();
    if (!isUserKeyEq(found, key.encoded)) break;
    if (!visit(decodeTs(found), cursor.value())) return false;
  }
  return true;
}

/**
 * Everything stored about `key`: its lock, write records and default-CF values, newest first;
 * null when `budget` refused a record (the answer would be too large).
 */
export function mvccInfoOf(
  snapshot: Snapshot,
  key: Key,
  budget: AnswerBudget,
): kvrpcpb.IMvccInfo | null {
  using reader = new MvccReader(snapshot);
  const lock = reader.loadLock(key);
  const info: kvrpcpb.IMvccInfo = {
    lock: lock === null ? null : lockInfo(lock),
    writes: [],
    values: [],
  };
  if (info.lock != null && !takeRecord(budget, kvrpcpb.MvccLock.encode(info.lock))) return null;
  const writesComplete = eachVersion(snapshot, { cf: "write", key }, (commitTs, bytes) => {
    const write = writeInfo(commitTs, decodeWrite(bytes));
    if (!takeRecord(budget, kvrpcpb.MvccWrite.encode(write))) return false;
    info.writes!.push(write);
    return true;
  });
  if (!writesComplete) return null;
  const valuesComplete = eachVersion(snapshot, { cf: "default", key }, (startTs, value) => {
    if (!budget.takeEntry(8, value.length)) return false;
    info.values!.push({ startTs, value: value.slice() });
    return true;
  });
  return valuesComplete ? info : null;
}

function takeRecord(budget: AnswerBudget, encoded: { finish(): Uint8Array }): boolean {
  return budget.take(encoded.finish().length + ANSWER_ENTRY_OVERHEAD_BYTES);
}

/**
 * The first key (in key order) with a write record (commit or rollback) of transaction
 * `startTs`. As TiKV, a transaction that is only prewritten is not found.
 */
export function keyOfTxn(snapshot: Snapshot, startTs: bigint): Key | null {
  using cursor = snapshot.iterator("write");
  for (cursor.seekToFirst(); cursor.valid(); cursor.next()) {
    if (decodeWrite(cursor.value()).startTs === startTs) {
      return Key.fromEncoded(truncateTs(cursor.key()).slice());
    }
  }
  return null;
}

/** MvccGetByKey. */
export const mvccGetByKey: Command<
  kvrpcpb.MvccGetByKeyRequest,
  kvrpcpb.MvccGetByKeyResponse.$Properties
> = {
  name: "MvccGetByKey",
  batchName: null,
  requestCodec: kvrpcpb.MvccGetByKeyRequest,
  responseCodec: kvrpcpb.MvccGetByKeyResponse,
  errorField: "error",
  keyApi: "txn",
  keysOf: (request) => [request.key],
  execute({ txn: store }, request, { region, budget }) {
    using snapshot = RegionSnapshot.take(store.engine, region);
    const info = mvccInfoOf(snapshot, Key.fromRaw(request.key), budget);
    if (info === null) return Promise.resolve(refuse(budget.refusal("MvccGetByKey", 0)));
    return Promise.resolve({ info });
  },
};

/** MvccGetByStartTs: scans the whole store for a key of that transaction. */
export const mvccGetByStartTs: Command<
  kvrpcpb.MvccGetByStartTsRequest,
  kvrpcpb.MvccGetByStartTsResponse.$Properties
> = {
  name: "MvccGetByStartTs",
  batchName: null,
  requestCodec: kvrpcpb.MvccGetByStartTsRequest,
  responseCodec: kvrpcpb.MvccGetByStartTsResponse,
  errorField: "error",
  keyApi: "txn",
  keysOf: () => [],
  execute({ txn: store }, request, { region, budget }) {
    using snapshot = RegionSnapshot.take(store.engine, region);
    const key = keyOfTxn(snapshot, request.startTs);
    // As TiKV: an unknown transaction is no key, an empty info and no error.
    if (key === null) return Promise.resolve({ info: {} });
    const info = mvccInfoOf(snapshot, key, budget);
    if (info === null) return Promise.resolve(refuse(budget.refusal("MvccGetByStartTs", 0)));
    return Promise.resolve({ key: key.toRaw(), info });
  },
};
