/**
 * Range reads at a timestamp (TiKV's forward and backward `Scanner`s): the user keys of
 * [lowerBound, upperBound) in order (or in reverse), each with its value visible at `readTs`,
 * or with the lock that stops the read of that key.
 *
 * As in TiKV's `KvScan`, a blocking lock does not end the scan: it is returned as an entry
 * with an error in the key's place, counts against the limit, and the scan goes on. Lock
 * rules are those of point reads (lock_conflict.ts), including `bypassLocks` and
 * `accessLocks`.
 *
 * How it walks: one cursor over the `lock` CF and one over the `write` CF, both bounded to the
 * range. The next user key is the smaller (larger, backward) of the two cursors' user keys;
 * the visible version of that key is then found with a seek (MvccReader), and both cursors
 * step past the key. Encoded keys are prefix-free, so `encodedKey ++ ts` of one user key
 * always sorts between the encoded keys of its neighbours; that is what makes the skips below
 * exact.
 *
 * @module
 */

import { appendTs, truncateTs } from "../codec/key.ts";
import type { EngineIterator, Snapshot } from "../engine/types.ts";
import { bytesEqual, compareBytes } from "../util/bytes.ts";
import { Key } from "../txn_types/key.ts";
import { decodeLock } from "../txn_types/lock.ts";
import { assertTs, type TimeStamp, TS_MAX } from "../txn_types/timestamp.ts";
import type { MvccError } from "./errors.ts";
import { MVCC_SCAN_MAX_LIMIT } from "./limits.ts";
import { checkLockConflict, type IsolationLevel } from "./lock_conflict.ts";
import type { PointGetterOptions } from "./point_getter.ts";
import { MvccReader } from "./reader.ts";

/** Options of a scan. */
export interface ScannerOptions extends PointGetterOptions {
  /** Inclusive; null for the start of the key space. */
  lowerBound: Key | null;
  /** Exclusive; null for the end of the key space. */
  upperBound: Key | null;
  /** Scan from the upper bound down. */
  desc?: boolean;
  /** Return empty values (the keys only). */
  keyOnly?: boolean;
}

/** One entry of a scan: a pair with the commit ts of its version, or a lock error. */
export type ScanEntry =
  | { key: Uint8Array; value: Uint8Array; commitTs: TimeStamp | null; error?: undefined }
  | { key: Uint8Array; error: MvccError };

const EMPTY_SET: ReadonlySet<TimeStamp> = new Set();
const EMPTY_VALUE = new Uint8Array();

/** A cursor over the visible pairs of a range. Close it (or `using`) when done. */
export class Scanner implements Disposable {
  readonly #options: ScannerOptions;
  readonly #isolationLevel: IsolationLevel;
  readonly #bypassLocks: ReadonlySet<TimeStamp>;
  readonly #accessLocks: ReadonlySet<TimeStamp>;
  readonly #reader: MvccReader;
  readonly #lockCursor: EngineIterator;
  readonly #writeCursor: EngineIterator;

  constructor(snapshot: Snapshot, options: ScannerOptions) {
    assertTs(options.readTs, "readTs");
    const { lowerBound, upperBound } = options;
    if (lowerBound !== null && upperBound !== null && lowerBound.compare(upperBound) > 0) {
      throw new RangeError(`scan bounds reversed: ${lowerBound} > ${upperBound}`);
    }
    this.#options = options;
    this.#isolationLevel = options.isolationLevel ?? "SI";
    this.#bypassLocks = options.bypassLocks ?? EMPTY_SET;
    this.#accessLocks = options.accessLocks ?? EMPTY_SET;
    this.#reader = new MvccReader(snapshot);
    const bounds = {
      ...(lowerBound !== null ? { lowerBound: lowerBound.encoded } : {}),
      ...(upperBound !== null ? { upperBound: upperBound.encoded } : {}),
    };
    this.#lockCursor = snapshot.iterator("lock", bounds);
    this.#writeCursor = snapshot.iterator("write", bounds);
    if (options.desc === true) {
      this.#lockCursor.seekToLast();
      this.#writeCursor.seekToLast();
    } else {
      this.#lockCursor.seekToFirst();
      this.#writeCursor.seekToFirst();
    }
  }

  close(): void {
    this.#lockCursor.close();
    this.#writeCursor.close();
    this.#reader.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** The next entry, or null at the end of the range. */
  next(): ScanEntry | null {
    const desc = this.#options.desc === true;
    for (;;) {
      const lockKey = this.#lockCursor.valid() ? this.#lockCursor.key() : null;
      const writeKey = this.#writeCursor.valid() ? truncateTs(this.#writeCursor.key()) : null;
      if (lockKey === null && writeKey === null) return null;
      let current: Uint8Array;
      if (lockKey === null) current = writeKey!;
      else if (writeKey === null) current = lockKey;
      else {
        const order = compareBytes(lockKey, writeKey);
        current = (desc ? order >= 0 : order <= 0) ? lockKey : writeKey;
      }
      current = current.slice();
      const hasLock = lockKey !== null && bytesEqual(lockKey, current);
      const hasWrite = writeKey !== null && bytesEqual(writeKey, current);
      const key = Key.fromEncoded(current);
      const entry = this.#readKey(key, hasLock);
      if (hasLock) this.#step(this.#lockCursor, desc);
      if (hasWrite) this.#skipVersions(current, desc);
      if (entry !== null) return entry;
    }
  }

  /** Moves the lock cursor one key on. */
  #step(cursor: EngineIterator, desc: boolean): void {
    if (desc) cursor.prev();
    else cursor.next();
  }

  /** Moves the write cursor past every version of `encodedKey`. */
  #skipVersions(encodedKey: Uint8Array, desc: boolean): void {
    const cursor = this.#writeCursor;
    if (desc) {
      // The last key <= the bare encoded key is the previous user key's oldest version.
      cursor.seekForPrev(encodedKey);
      return;
    }
    const oldest = appendTs(encodedKey, 0n);
    cursor.seek(oldest);
    if (cursor.valid() && bytesEqual(cursor.key(), oldest)) cursor.next();
  }

  /** The entry of one user key, or null when it has no visible value. */
  #readKey(key: Key, hasLock: boolean): ScanEntry | null {
    const readTs = this.#options.readTs;
    if (hasLock && this.#isolationLevel !== "RC") {
      const lock = decodeLock(this.#lockCursor.value());
      const conflict = checkLockConflict(lock, key, {
        readTs,
        isolationLevel: this.#isolationLevel,
        bypassLocks: this.#bypassLocks,
      });
      if (conflict !== null) {
        if (!this.#accessLocks.has(lock.startTs)) return { key: key.toRaw(), error: conflict };
        if (lock.lockType === "Delete") return null;
        const value = lock.shortValue ?? this.#reader.getValue(key, lock.startTs);
        if (value === null) throw new Error(`Put lock on ${key} at ${lock.startTs} has no value`);
        return { key: key.toRaw(), value: this.#valueOut(value), commitTs: null };
      }
    }
    if (this.#isolationLevel === "RCCheckTS") {
      const newest = this.#reader.seekWrite(key, TS_MAX);
      if (newest !== null && newest.commitTs > readTs) {
        return {
          key: key.toRaw(),
          error: {
            kind: "WriteConflict",
            startTs: readTs,
            conflictStartTs: 0n,
            conflictCommitTs: newest.commitTs,
            key: key.toRaw(),
            primary: new Uint8Array(),
            reason: "RcCheckTs",
          },
        };
      }
    }
    const found = this.#reader.getWriteWithCommitTs(key, readTs, readTs);
    if (found === null) return null;
    const value = this.#options.keyOnly === true
      ? EMPTY_VALUE
      : this.#reader.loadData(key, found.write);
    return { key: key.toRaw(), value, commitTs: found.commitTs };
  }

  #valueOut(value: Uint8Array): Uint8Array {
    return this.#options.keyOnly === true ? EMPTY_VALUE : value;
  }
}

/**
 * Up to `limit` entries of a scan (lock errors count), in scan order.
 *
 * @example
 * ```ts ignore
 * const entries = scan(snapshot, { readTs: 100n, lowerBound: null, upperBound: null, limit: 10 });
 * ```
 */
export function scan(snapshot: Snapshot, options: ScannerOptions & { limit: number }): ScanEntry[] {
  if (
    !Number.isInteger(options.limit) || options.limit < 0 || options.limit > MVCC_SCAN_MAX_LIMIT
  ) {
    throw new RangeError(`scan limit ${options.limit} out of range`);
  }
  const out: ScanEntry[] = [];
  if (options.limit === 0) return out;
  using scanner = new Scanner(snapshot, options);
  for (let entry = scanner.next(); entry !== null; entry = scanner.next()) {
    out.push(entry);
    if (out.length === options.limit) break;
  }
  return out;
}
