/**
 * MvccGetByKey and MvccGetByStartTs: every version, lock and write record of a key, as TiKV's
 * debugging RPCs show them (the admin CLI's `mvcc` command uses them).
 */
import { kvrpcpb } from "../../../proto/mod.ts";
import { truncateTs } from "../../codec/key.ts";
import { MvccReader } from "../../mvcc/mod.ts";
import {
  decodeWrite,
  Key,
  type Lock,
  type LockType,
  type Write,
  type WriteType,
} from "../../txn_types/mod.ts";
import type { Snapshot } from "../../engine/types.ts";
import type { Command } from "../command.ts";

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

/** Everything stored about `key`: its lock, write records and default-CF values, newest first. */
export function mvccInfoOf(snapshot: Snapshot, key: Key): kvrpcpb.IMvccInfo {
  using reader = new MvccReader(snapshot);
  const lock = reader.loadLock(key);
  return {
    lock: lock === null ? null : lockInfo(lock),
    writes: reader.scanWrites(key).map(({ commitTs, write }) => writeInfo(commitTs, write)),
    values: reader.scanValuesInDefault(key),
  };
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
  keysOf: (request) => [request.key],
  execute({ txn: store }, request) {
    using snapshot = store.engine.snapshot();
    return Promise.resolve({ info: mvccInfoOf(snapshot, Key.fromRaw(request.key)) });
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
  keysOf: () => [],
  execute({ txn: store }, request) {
    using snapshot = store.engine.snapshot();
    const key = keyOfTxn(snapshot, request.startTs);
    // As TiKV: an unknown transaction is no key, an empty info and no error.
    if (key === null) return Promise.resolve({ info: {} });
    return Promise.resolve({ key: key.toRaw(), info: mvccInfoOf(snapshot, key) });
  },
};
