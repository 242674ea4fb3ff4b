/**
 * `MvccReader`: the reads transaction actions make against one snapshot (TiKV
 * `mvcc::MvccReader`): a key's lock, its write records by commit ts, its values, and the
 * commit record of a given transaction.
 *
 * Layout it reads (see src/txn_types/):
 * - `lock` CF:    encodedKey                 → Lock
 * - `write` CF:   encodedKey ++ desc(commitTs) → Write   (a rollback: keyed by its start ts)
 * - `default` CF: encodedKey ++ desc(startTs)  → value   (values too long to be inline)
 *
 * Versions of one key sort newest first, so "the newest version at or below ts" is one seek to
 * `encodedKey ++ desc(ts)`. The reader keeps one write-CF iterator open across calls and
 * closes it in `close()`; use it with `using`.
 *
 * A corrupt record or a missing default-CF value is a broken invariant and throws; lock
 * conflicts are not checked here (see point_getter.ts and scanner.ts).
 *
 * @module
 */

import { isUserKeyEq } from "../codec/key.ts";
import { decodeTs } from "../codec/key.ts";
import type { EngineIterator, Snapshot } from "../engine/types.ts";
import { Key } from "../txn_types/key.ts";
import { decodeLock, type Lock } from "../txn_types/lock.ts";
import { assertTs, prevTs, type TimeStamp, TS_MAX } from "../txn_types/timestamp.ts";
import { checkGcFenceAsLatestVersion, decodeWrite, type Write } from "../txn_types/write.ts";
import { MVCC_SCAN_LOCKS_MAX_LIMIT } from "./limits.ts";

/**
 * When a Lock or Rollback record says the last real change is at least this many versions
 * back, a reader jumps there with one point get instead of stepping (TiKV `SEEK_BOUND`).
 */
export const SEEK_BOUND = 8n;

/** A write record and the commit ts it is keyed by. */
export interface CommittedWrite {
  commitTs: TimeStamp;
  write: Write;
}

/**
 * What the write CF says about a transaction on one key (TiKV `TxnCommitRecord`).
 * - `SingleRecord`: the transaction's own commit or rollback record.
 * - `OverlappedRollback`: another transaction committed at exactly this start ts and its
 *   record carries `hasOverlappedRollback`, standing for this transaction's rollback.
 * - `None`: nothing; `overlappedWrite` is another transaction's commit record at this start ts
 *   (a rollback must then mark it instead of overwriting it), with the GC fence to set.
 */
export type TxnCommitRecord =
  | { kind: "SingleRecord"; commitTs: TimeStamp; write: Write }
  | { kind: "OverlappedRollback"; commitTs: TimeStamp }
  | { kind: "None"; overlappedWrite: { write: Write; gcFence: TimeStamp } | null };

/** Thrown when a Put record points at a default-CF value that is not there. */
export class DefaultNotFoundError extends Error {
  constructor(key: Key, startTs: TimeStamp) {
    super(`default CF value of key ${key} at start_ts ${startTs} not found (data corruption?)`);
    this.name = "DefaultNotFoundError";
  }
}

/** Reads MVCC data of one snapshot. Not thread-safe; one reader per command. */
export class MvccReader implements Disposable {
  readonly snapshot: Snapshot;
  #writeIterator: EngineIterator | null = null;

  constructor(snapshot: Snapshot) {
    this.snapshot = snapshot;
  }

  /** Closes the iterators this reader opened (not the snapshot, which the caller owns). */
  close(): void {
    this.#writeIterator?.close();
    this.#writeIterator = null;
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #writeCursor(): EngineIterator {
    this.#writeIterator ??= this.snapshot.iterator("write");
    return this.#writeIterator;
  }

  /** The lock on `key`, or null. */
  loadLock(key: Key): Lock | null {
    const bytes = this.snapshot.get("lock", key.encoded);
    return bytes === null ? null : decodeLock(bytes);
  }

  /** The value the transaction at `startTs` put in the default CF, or null. */
  getValue(key: Key, startTs: TimeStamp): Uint8Array | null {
    return this.snapshot.get("default", key.appendTs(startTs));
  }

  /** The value of a Put record: inline, or from the default CF (which must have it). */
  loadData(key: Key, write: Write): Uint8Array {
    if (write.writeType !== "Put") throw new Error(`loadData of a ${write.writeType} record`);
    if (write.shortValue !== null) return write.shortValue;
    const value = this.getValue(key, write.startTs);
    if (value === null) throw new DefaultNotFoundError(key, write.startTs);
    return value;
  }

  /** The newest write record of `key` with commit ts <= `ts`, of any type, or null. */
  seekWrite(key: Key, ts: TimeStamp): CommittedWrite | null {
    assertTs(ts);
    const cursor = this.#writeCursor();
    cursor.seek(key.appendTs(ts));
    if (!cursor.valid()) return null;
    const found = cursor.key();
    if (!isUserKeyEq(found, key.encoded)) return null;
    return { commitTs: decodeTs(found), write: decodeWrite(cursor.value()) };
  }

  /**
   * The newest Put of `key` visible at `ts` with its commit ts, or null when the newest
   * Put/Delete is a Delete or there is none. Lock and Rollback records are skipped. With
   * `gcFenceLimit` (the read ts of a transactional read), a record whose GC fence shows its
   * successor was GC-ed counts as gone (TiKV `get_write_with_commit_ts`).
   */
  getWriteWithCommitTs(
    key: Key,
    ts: TimeStamp,
    gcFenceLimit: TimeStamp | null,
  ): { write: Write; commitTs: TimeStamp } | null {
    let found = this.seekWrite(key, ts);
    while (found !== null) {
      const { commitTs, write } = found;
      if (gcFenceLimit !== null && !checkGcFenceAsLatestVersion(write, gcFenceLimit)) return null;
      if (write.writeType === "Put") return { write, commitTs };
      if (write.writeType === "Delete") return null;
      const lastChange = write.lastChange;
      if (lastChange.kind === "NotExist") return null;
      if (lastChange.kind === "Exist" && lastChange.estimatedVersionsToLastChange >= SEEK_BOUND) {
        const bytes = this.snapshot.get("write", key.appendTs(lastChange.lastChangeTs));
        if (bytes === null) return null;
        const target = decodeWrite(bytes);
        if (target.writeType !== "Put" && target.writeType !== "Delete") {
          throw new Error(
            `last change of ${key} at ${lastChange.lastChangeTs} is a ${target.writeType}`,
          );
        }
        found = { commitTs: lastChange.lastChangeTs, write: target };
        continue;
      }
      if (commitTs === 0n) return null;
      found = this.seekWrite(key, prevTs(commitTs));
    }
    return null;
  }

  /** {@linkcode getWriteWithCommitTs} without the commit ts. */
  getWrite(key: Key, ts: TimeStamp, gcFenceLimit: TimeStamp | null): Write | null {
    return this.getWriteWithCommitTs(key, ts, gcFenceLimit)?.write ?? null;
  }

  /** The value of `key` visible at `ts` (ignoring locks), or null. */
  get(key: Key, ts: TimeStamp, gcFenceLimit: TimeStamp | null = ts): Uint8Array | null {
    const write = this.getWrite(key, ts, gcFenceLimit);
    return write === null ? null : this.loadData(key, write);
  }

  /**
   * What the write CF records about the transaction `startTs` on `key`. Scans every version
   * from the newest down to `startTs`, because in pessimistic transactions an older start ts
   * can commit after a newer one (TiKV `get_txn_commit_record`).
   */
  getTxnCommitRecord(key: Key, startTs: TimeStamp): TxnCommitRecord {
    let seekTs = TS_MAX;
    let gcFence = 0n;
    for (;;) {
      const found = this.seekWrite(key, seekTs);
      if (found === null) break;
      const { commitTs, write } = found;
      if (write.startTs === startTs) return { kind: "SingleRecord", commitTs, write };
      if (commitTs === startTs) {
        if (write.hasOverlappedRollback) return { kind: "OverlappedRollback", commitTs };
        return { kind: "None", overlappedWrite: { write, gcFence } };
      }
      if (write.writeType === "Put" || write.writeType === "Delete") gcFence = commitTs;
      if (commitTs < startTs || commitTs === 0n) break;
      seekTs = prevTs(commitTs);
    }
    return { kind: "None", overlappedWrite: null };
  }

  /** Every write record of `key`, newest first. */
  scanWrites(key: Key): CommittedWrite[] {
    const out: CommittedWrite[] = [];
    using cursor = this.snapshot.iterator("write", { lowerBound: key.appendTs(TS_MAX) });
    for (cursor.seekToFirst(); cursor.valid(); cursor.next()) {
      const found = cursor.key();
      if (!isUserKeyEq(found, key.encoded)) break;
      out.push({ commitTs: decodeTs(found), write: decodeWrite(cursor.value()) });
    }
    return out;
  }

  /** Every default-CF value of `key` with its start ts, newest first. */
  scanValuesInDefault(key: Key): { startTs: TimeStamp; value: Uint8Array }[] {
    const out: { startTs: TimeStamp; value: Uint8Array }[] = [];
    using cursor = this.snapshot.iterator("default", { lowerBound: key.appendTs(TS_MAX) });
    for (cursor.seekToFirst(); cursor.valid(); cursor.next()) {
      const found = cursor.key();
      if (!isUserKeyEq(found, key.encoded)) break;
      out.push({ startTs: decodeTs(found), value: cursor.value().slice() });
    }
    return out;
  }

  /**
   * Locks in [start, end) (either bound may be null for open) that pass `filter`, at most
   * `limit` of them (0 means MVCC_SCAN_LOCKS_MAX_LIMIT). `hasRemain` is true when the scan
   * stopped at the limit, so more locks may follow.
   */
  scanLocks(options: {
    start: Key | null;
    end: Key | null;
    filter?: (key: Key, lock: Lock) => boolean;
    limit: number;
  }): { locks: { key: Key; lock: Lock }[]; hasRemain: boolean } {
    const limit = options.limit === 0 ? MVCC_SCAN_LOCKS_MAX_LIMIT : options.limit;
    if (!Number.isInteger(limit) || limit < 0 || limit > MVCC_SCAN_LOCKS_MAX_LIMIT) {
      throw new RangeError(`scanLocks limit ${options.limit} out of range`);
    }
    const locks: { key: Key; lock: Lock }[] = [];
    using cursor = this.snapshot.iterator("lock", {
      ...(options.start !== null ? { lowerBound: options.start.encoded } : {}),
      ...(options.end !== null ? { upperBound: options.end.encoded } : {}),
    });
    for (cursor.seekToFirst(); cursor.valid(); cursor.next()) {
      const key = Key.fromEncoded(cursor.key());
      const lock = decodeLock(cursor.value());
      if (options.filter !== undefined && !options.filter(key, lock)) continue;
      locks.push({ key, lock });
      if (locks.length === limit) return { locks, hasRemain: true };
    }
    return { locks, hasRemain: false };
  }
}
