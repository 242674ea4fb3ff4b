/**
 * Point reads at a timestamp (TiKV `PointGetter`): the value of one key as a transaction
 * reading at `readTs` sees it, or the lock that stops it.
 *
 * Steps of `get(key)`:
 * 1. Unless the isolation level is RC, load the key's lock and check it
 *    (lock_conflict.ts). A blocking lock whose start ts is in `accessLocks` (kvproto
 *    `Context.committed_locks`: the client knows it committed) is read through: a Put lock
 *    yields its own value, a Delete lock yields nothing.
 * 2. Seek the newest write record at or below `readTs`; Put → its value, Delete → nothing,
 *    Lock/Rollback → step to the next older record. A record whose GC fence shows that its
 *    successor was GC-ed counts as gone.
 *
 * @module
 */

import type { Snapshot } from "../engine/types.ts";
import type { Key } from "../txn_types/key.ts";
import type { Lock } from "../txn_types/lock.ts";
import { assertTs, type TimeStamp, TS_MAX } from "../txn_types/timestamp.ts";
import { err, type MvccResult, ok } from "./errors.ts";
import { checkLockConflict, type IsolationLevel } from "./lock_conflict.ts";
import { MvccReader } from "./reader.ts";

/** Options of a point getter (kvproto `Context` fields of a read). */
export interface PointGetterOptions {
  readTs: TimeStamp;
  /** Default SI. */
  isolationLevel?: IsolationLevel;
  /** Locks to ignore (resolved: rolled back or committed above `readTs`). */
  bypassLocks?: ReadonlySet<TimeStamp>;
  /** Locks to read through (committed at or below `readTs`). */
  accessLocks?: ReadonlySet<TimeStamp>;
}

/** A value read, with the commit ts of its version (null when read from an accessed lock). */
export interface ValueEntry {
  value: Uint8Array;
  commitTs: TimeStamp | null;
}

const EMPTY_SET: ReadonlySet<TimeStamp> = new Set();

/** Reads single keys at one ts from one snapshot. Close it (or `using`) when done. */
export class PointGetter implements Disposable {
  readonly readTs: TimeStamp;
  readonly isolationLevel: IsolationLevel;
  readonly #bypassLocks: ReadonlySet<TimeStamp>;
  readonly #accessLocks: ReadonlySet<TimeStamp>;
  readonly #reader: MvccReader;

  constructor(snapshot: Snapshot, options: PointGetterOptions) {
    assertTs(options.readTs, "readTs");
    this.readTs = options.readTs;
    this.isolationLevel = options.isolationLevel ?? "SI";
    this.#bypassLocks = options.bypassLocks ?? EMPTY_SET;
    this.#accessLocks = options.accessLocks ?? EMPTY_SET;
    this.#reader = new MvccReader(snapshot);
  }

  close(): void {
    this.#reader.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** The value of `key` at the read ts, null when absent, or the error that stops the read. */
  get(key: Key): MvccResult<Uint8Array | null> {
    const entry = this.getEntry(key);
    return entry.ok ? ok(entry.value?.value ?? null) : entry;
  }

  /** Like {@linkcode get}, with the commit ts of the version read. */
  getEntry(key: Key): MvccResult<ValueEntry | null> {
    if (this.isolationLevel !== "RC") {
      const lock = this.#reader.loadLock(key);
      if (lock !== null) {
        const conflict = checkLockConflict(lock, key, {
          readTs: this.readTs,
          isolationLevel: this.isolationLevel,
          bypassLocks: this.#bypassLocks,
        });
        if (conflict !== null) {
          if (!this.#accessLocks.has(lock.startTs)) return err(conflict);
          return ok(this.#readFromLock(key, lock));
        }
      }
    }
    if (this.isolationLevel === "RCCheckTS") {
      const newest = this.#reader.seekWrite(key, TS_MAX);
      if (newest !== null && newest.commitTs > this.readTs) {
        return err({
          kind: "WriteConflict",
          startTs: this.readTs,
          conflictStartTs: 0n,
          conflictCommitTs: newest.commitTs,
          key: key.toRaw(),
          primary: new Uint8Array(),
          reason: "RcCheckTs",
        });
      }
    }
    const found = this.#reader.getWriteWithCommitTs(key, this.readTs, this.readTs);
    if (found === null) return ok(null);
    return ok({ value: this.#reader.loadData(key, found.write), commitTs: found.commitTs });
  }

  /** The value a committed lock stands for: a Put's own value, nothing for a Delete. */
  #readFromLock(key: Key, lock: Lock): ValueEntry | null {
    switch (lock.lockType) {
      case "Put": {
        const value = lock.shortValue ?? this.#reader.getValue(key, lock.startTs);
        if (value === null) throw new Error(`Put lock on ${key} at ${lock.startTs} has no value`);
        return { value, commitTs: null };
      }
      case "Delete":
        return null;
      default:
        // checkLockConflict never blocks on Lock or Pessimistic locks.
        throw new Error(`unreachable: read through a ${lock.lockType} lock on ${key}`);
    }
  }
}
