/**
 * The fake cluster's transactional store (`fake_cluster.ts`): a small Percolator over one
 * in-memory key space, enough for the client's two-phase commit, async commit, 1PC and lock
 * resolution to be tested across regions. Keys are user keys (latin1 text); the region check
 * (on their memcomparable encoding, TiKV API V1) is the cluster's, done before a command gets
 * here.
 *
 * What it keeps of TiKV's rules:
 * - A prewrite is all or nothing per request: with any key error, nothing is written. A
 *   prewrite meeting its own transaction's commit record (a repeat after the transaction
 *   committed) succeeds with that commit ts and writes nothing (`check_committed_record_on_err`).
 * - `try_one_pc` commits the request's keys at once (`one_pc_commit_ts`); `use_async_commit`
 *   locks carry `min_commit_ts` and (the primary's) the secondaries, and the answer carries the
 *   largest `min_commit_ts`. Both are above every read ts seen (`maxReadTs`), as TiKV's max_ts.
 * - A commit below the lock's `min_commit_ts` is refused (CommitTsExpired); a commit of a
 *   rolled-back or absent lock is refused (TxnLockNotFound) unless already committed.
 * - CheckTxnStatus rolls back an expired primary (by the physical part of `current_ts`), pushes
 *   a live one's `min_commit_ts` above a reader, never decides an async-commit lock by its TTL
 *   (unless `force_sync_commit`), and answers TxnNotFound or writes a protected rollback
 *   (`rollback_if_not_exist`) for a primary it never saw.
 * - Reads skip the locks of `Context.resolved_locks` and read through `committed_locks`.
 *
 * Not a model of TiKV's storage: no GC, no pessimistic locks, no conflict checks beyond
 * "locked" and "newer write".
 */
import { kvrpcpb } from "../../../proto/mod.ts";
import { physicalOf } from "../tso.ts";

const EMPTY = new Uint8Array(0);

export const latin1 = (bytes: Uint8Array) => String.fromCharCode(...bytes);
export const fromLatin1 = (text: string) => Uint8Array.from(text, (c) => c.charCodeAt(0));

/** One committed version of a transactional key (a null value is a delete). */
interface FakeVersion {
  startTs: bigint;
  commitTs: bigint;
  value: Uint8Array | null;
  /** A committed Lock mutation: a record of the commit, no value. */
  lockOnly: boolean;
}

/** A prewrite lock of a transactional key. */
interface FakeLock {
  primary: Uint8Array;
  startTs: bigint;
  ttl: bigint;
  op: kvrpcpb.Op;
  value: Uint8Array;
  txnSize: bigint;
  minCommitTs: bigint;
  useAsyncCommit: boolean;
  secondaries: Uint8Array[];
}

/** The fake's transactional data, by user key as latin1 text. */
export interface FakeTxnStore {
  versions: Map<string, FakeVersion[]>;
  locks: Map<string, FakeLock>;
  /** `${key}@${startTs}` of every rolled-back transaction key (a rollback record). */
  rollbacks: Set<string>;
  /** The largest read ts seen: commit ts chosen by the store stay above it. */
  maxReadTs: bigint;
}

/** An empty store. */
export function newFakeTxnStore(): FakeTxnStore {
  return { versions: new Map(), locks: new Map(), rollbacks: new Set(), maxReadTs: 0n };
}

/** The transactional commands the fake answers (BatchCommands names). */
export const TXN_COMMANDS = new Set([
  "Get",
  "BatchGet",
  "Scan",
  "Prewrite",
  "Commit",
  "BatchRollback",
  "CheckTxnStatus",
  "CheckSecondaryLocks",
  "ResolveLock",
  "TxnHeartBeat",
]);

/** A decoded request (read by field name). */
// deno-lint-ignore no-explicit-any
type AnyRequest = any;

function lockInfo(key: string, lock: FakeLock): kvrpcpb.LockInfo.$Properties {
  return {
    primaryLock: lock.primary,
    lockVersion: lock.startTs,
    key: fromLatin1(key),
    lockTtl: lock.ttl,
    lockType: lock.op,
    txnSize: lock.txnSize,
    useAsyncCommit: lock.useAsyncCommit,
    minCommitTs: lock.minCommitTs,
    secondaries: lock.secondaries,
  };
}

function committedVersion(store: FakeTxnStore, key: string, startTs: bigint) {
  return (store.versions.get(key) ?? []).find((v) => v.startTs === startTs);
}

/** A read at `version`: the locked error, or the newest value committed at or below it. */
function readAt(
  store: FakeTxnStore,
  key: string,
  at: { version: bigint; context: AnyRequest },
): { error: object } | { value: Uint8Array | null } {
  if (at.version > store.maxReadTs) store.maxReadTs = at.version;
  const lock = store.locks.get(key);
  const resolved: bigint[] = at.context?.resolvedLocks ?? [];
  const committed: bigint[] = at.context?.committedLocks ?? [];
  const inTheWay = lock !== undefined && lock.startTs <= at.version &&
    lock.op !== kvrpcpb.Op.Lock && !resolved.includes(lock.startTs);
  if (inTheWay && committed.includes(lock.startTs)) {
    return { value: lock.op === kvrpcpb.Op.Del ? null : lock.value };
  }
  if (inTheWay) return { error: { locked: lockInfo(key, lock) } };
  const visible = (store.versions.get(key) ?? []).filter((v) =>
    v.commitTs <= at.version && !v.lockOnly
  );
  const newest = visible.sort((a, b) => Number(b.commitTs - a.commitTs))[0];
  return { value: newest?.value ?? null };
}

/** Turns `key`'s lock of `startTs` into a version at `commitTs`. */
function commitLock(store: FakeTxnStore, key: string, commitTs: bigint): void {
  const lock = store.locks.get(key)!;
  store.locks.delete(key);
  const versions = store.versions.get(key) ?? [];
  const value = lock.op === kvrpcpb.Op.Del ? null : lock.value;
  versions.push({ startTs: lock.startTs, commitTs, value, lockOnly: lock.op === kvrpcpb.Op.Lock });
  store.versions.set(key, versions);
}

/** Removes `key`'s lock of `startTs` (if any) and writes a rollback record. */
function rollbackKey(store: FakeTxnStore, key: string, startTs: bigint): void {
  if (store.locks.get(key)?.startTs === startTs) store.locks.delete(key);
  if (committedVersion(store, key, startTs) === undefined) {
    store.rollbacks.add(`${key}@${startTs}`);
  }
}

/**
 * Runs a transactional command (the region check has passed). `inRegion` says whether a user
 * key belongs to the request's region (ResolveLock without keys resolves the region's locks;
 * a scan reads only the region's keys).
 */
export function runTxn(
  store: FakeTxnStore,
  cmd: string,
  on: { request: AnyRequest; inRegion: (key: Uint8Array) => boolean },
): object {
  const r = on.request;
  switch (cmd) {
    case "Get": {
      const read = readAt(store, latin1(r.key), { version: r.version, context: r.context });
      if ("error" in read) return read;
      return read.value === null ? { notFound: true } : { value: read.value };
    }
    case "BatchGet": {
      const pairs = [];
      for (const key of r.keys as Uint8Array[]) {
        const read = readAt(store, latin1(key), { version: r.version, context: r.context });
        if ("error" in read) pairs.push({ key, error: read.error });
        else if (read.value !== null) pairs.push({ key, value: read.value });
      }
      return { pairs };
    }
    case "Scan":
      return scan(store, r, on.inRegion);
    case "Prewrite":
      return prewrite(store, r);
    case "Commit": {
      for (const keyBytes of r.keys as Uint8Array[]) {
        const key = latin1(keyBytes);
        const lock = store.locks.get(key);
        if (lock === undefined || lock.startTs !== r.startVersion) {
          if (committedVersion(store, key, r.startVersion) !== undefined) continue;
          return { error: { txnLockNotFound: { key: keyBytes } } };
        }
        if (lock.minCommitTs > r.commitVersion) {
          return {
            error: {
              commitTsExpired: {
                startTs: r.startVersion,
                attemptedCommitTs: r.commitVersion,
                key: keyBytes,
                minCommitTs: lock.minCommitTs,
              },
            },
          };
        }
        commitLock(store, key, r.commitVersion);
      }
      return {};
    }
    case "BatchRollback":
      for (const key of r.keys as Uint8Array[]) rollbackKey(store, latin1(key), r.startVersion);
      return {};
    case "CheckTxnStatus":
      return checkTxnStatus(store, r);
    case "CheckSecondaryLocks": {
      const locks = [];
      let commitTs = 0n;
      for (const keyBytes of r.keys as Uint8Array[]) {
        const key = latin1(keyBytes);
        const lock = store.locks.get(key);
        if (lock !== undefined && lock.startTs === r.startVersion) {
          locks.push(lockInfo(key, lock));
          continue;
        }
        const version = committedVersion(store, key, r.startVersion);
        if (version !== undefined) commitTs = version.commitTs;
        else rollbackKey(store, key, r.startVersion);
      }
      return { locks, commitTs };
    }
    case "ResolveLock": {
      const keys = (r.keys as Uint8Array[]).length > 0
        ? (r.keys as Uint8Array[]).map(latin1)
        : [...store.locks.keys()].filter((key) => on.inRegion(fromLatin1(key)));
      for (const key of keys) {
        if (store.locks.get(key)?.startTs !== r.startVersion) continue;
        if (r.commitVersion > 0n) commitLock(store, key, r.commitVersion);
        else rollbackKey(store, key, r.startVersion);
      }
      return {};
    }
    case "TxnHeartBeat": {
      const key = latin1(r.primaryLock);
      const lock = store.locks.get(key);
      if (lock === undefined || lock.startTs !== r.startVersion) {
        return { error: { txnNotFound: { startTs: r.startVersion, primaryKey: r.primaryLock } } };
      }
      if (r.adviseLockTtl > lock.ttl) lock.ttl = r.adviseLockTtl;
      return { lockTtl: lock.ttl };
    }
  }
  return { regionError: { message: `${cmd} is not served by the fake` } };
}

function scan(store: FakeTxnStore, r: AnyRequest, inRegion: (key: Uint8Array) => boolean) {
  const low = latin1(r.startKey);
  const high = latin1(r.endKey);
  const keys = [...new Set([...store.versions.keys(), ...store.locks.keys()])]
    .filter((key) => key >= low && (r.endKey.length === 0 || key < high))
    .filter((key) => inRegion(fromLatin1(key)))
    .sort();
  const pairs = [];
  for (const key of keys) {
    if (pairs.length >= r.limit) break;
    const read = readAt(store, key, { version: r.version, context: r.context });
    if ("error" in read) pairs.push({ key: fromLatin1(key), error: read.error });
    else if (read.value !== null) {
      pairs.push({ key: fromLatin1(key), value: r.keyOnly ? EMPTY : read.value });
    }
  }
  return { pairs };
}

/** The key error stopping `mutation`'s prewrite, or null. */
function prewriteError(
  store: FakeTxnStore,
  r: AnyRequest,
  mutation: kvrpcpb.Mutation,
): object | null {
  const key = latin1(mutation.key);
  const lock = store.locks.get(key);
  if (lock !== undefined && lock.startTs !== r.startVersion) return { locked: lockInfo(key, lock) };
  if (store.rollbacks.has(`${key}@${r.startVersion}`)) {
    return {
      conflict: {
        startTs: r.startVersion,
        conflictTs: r.startVersion,
        key: mutation.key,
        reason: kvrpcpb.WriteConflict.Reason.SelfRolledBack,
      },
    };
  }
  const newer = (store.versions.get(key) ?? []).find((v) => v.commitTs >= r.startVersion);
  if (newer === undefined) return null;
  return { conflict: { startTs: r.startVersion, conflictTs: newer.startTs, key: mutation.key } };
}

function prewrite(store: FakeTxnStore, r: AnyRequest): object {
  const mutations = r.mutations as kvrpcpb.Mutation[];
  const committed = mutations.map((m) => committedVersion(store, latin1(m.key), r.startVersion))
    .find((version) => version !== undefined);
  if (committed !== undefined) {
    return {
      minCommitTs: r.useAsyncCommit ? committed.commitTs : 0n,
      onePcCommitTs: r.tryOnePc ? committed.commitTs : 0n,
    };
  }
  const errors = mutations.map((m) => prewriteError(store, r, m)).filter((e) => e !== null);
  if (errors.length > 0) return { errors }; // all or nothing, as TiKV's prewrite
  const asyncOrOnePc = r.useAsyncCommit || r.tryOnePc;
  const floor = store.maxReadTs + 1n > r.minCommitTs ? store.maxReadTs + 1n : r.minCommitTs;
  const minCommitTs = asyncOrOnePc ? floor : r.minCommitTs;
  for (const mutation of mutations) {
    const key = latin1(mutation.key);
    if (store.locks.get(key)?.startTs === r.startVersion) continue; // a repeated prewrite
    if (committedVersion(store, key, r.startVersion) !== undefined) continue;
    store.locks.set(key, {
      primary: r.primaryLock,
      startTs: r.startVersion,
      ttl: r.lockTtl,
      op: mutation.op,
      value: mutation.value,
      txnSize: r.txnSize,
      minCommitTs,
      useAsyncCommit: r.useAsyncCommit,
      secondaries: r.secondaries,
    });
  }
  if (r.tryOnePc) {
    for (const mutation of mutations) {
      const key = latin1(mutation.key);
      if (store.locks.get(key)?.startTs === r.startVersion) commitLock(store, key, minCommitTs);
    }
    return { onePcCommitTs: minCommitTs };
  }
  return { minCommitTs: r.useAsyncCommit ? minCommitTs : 0n };
}

function checkTxnStatus(store: FakeTxnStore, r: AnyRequest): object {
  const key = latin1(r.primaryKey);
  const lock = store.locks.get(key);
  if (lock !== undefined && lock.startTs === r.lockTs) {
    const expired = physicalOf(r.currentTs) >= physicalOf(lock.startTs) + Number(lock.ttl);
    if (lock.useAsyncCommit && !r.forceSyncCommit) {
      return { lockTtl: lock.ttl, lockInfo: lockInfo(key, lock) };
    }
    if (expired) {
      rollbackKey(store, key, lock.startTs);
      return { action: kvrpcpb.Action.TTLExpireRollback };
    }
    let action = kvrpcpb.Action.NoAction;
    if (r.callerStartTs > 0n && lock.minCommitTs <= r.callerStartTs) {
      lock.minCommitTs = r.callerStartTs + 1n;
      action = kvrpcpb.Action.MinCommitTSPushed;
    }
    return { lockTtl: lock.ttl, action, lockInfo: lockInfo(key, lock) };
  }
  const version = committedVersion(store, key, r.lockTs);
  if (version !== undefined) return { commitVersion: version.commitTs };
  if (store.rollbacks.has(`${key}@${r.lockTs}`)) return {};
  if (r.rollbackIfNotExist) {
    rollbackKey(store, key, r.lockTs);
    return { action: kvrpcpb.Action.LockNotExistRollback };
  }
  return { error: { txnNotFound: { startTs: r.lockTs, primaryKey: r.primaryKey } } };
}
