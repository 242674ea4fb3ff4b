/**
 * Test support for MVCC and transaction action tests: an in-memory engine with helpers that
 * lay down raw MVCC records (locks, commit records, values) directly, and that read the state
 * back for assertions. Used only by `*_test.ts` files.
 *
 * @module
 */

import { MemoryEngine } from "../engine/memory_engine.ts";
import type { Snapshot } from "../engine/types.ts";
import { utf8 } from "../util/bytes.ts";
import { Key } from "../txn_types/key.ts";
import {
  encodeLock,
  type Lock,
  type LockInit,
  newLock,
  SHORT_VALUE_MAX_LEN,
} from "../txn_types/lock.ts";
import type { TimeStamp } from "../txn_types/timestamp.ts";
import { encodeWrite, newWrite, type Write, type WriteInit } from "../txn_types/write.ts";
import { MvccReader } from "./reader.ts";
import type { MvccTxn } from "./txn.ts";

/** `Key.fromRaw(utf8(text))`. */
export function key(text: string): Key {
  return Key.fromRaw(utf8(text));
}

/** An engine with MVCC helpers. */
export class MvccFixture {
  readonly engine = new MemoryEngine();

  /** Writes a lock record directly. */
  putLock(rawKey: string, init: Omit<LockInit, "primary"> & { primary?: string }): Lock {
    const lock = newLock({ ...init, primary: utf8(init.primary ?? rawKey) });
    this.engine.put("lock", key(rawKey).encoded, encodeLock(lock));
    return lock;
  }

  /** Writes a write record directly at `commitTs`. */
  putWrite(rawKey: string, commitTs: TimeStamp, init: WriteInit): Write {
    const write = newWrite(init);
    this.engine.put("write", key(rawKey).appendTs(commitTs), encodeWrite(write));
    return write;
  }

  /** Lays down a committed Put: inline when short, else in the default CF. */
  commitPut(
    rawKey: string,
    value: string | Uint8Array,
    ts: { startTs: TimeStamp; commitTs: TimeStamp },
  ): void {
    const bytes = typeof value === "string" ? utf8(value) : value;
    const short = bytes.length <= SHORT_VALUE_MAX_LEN;
    if (!short) this.engine.put("default", key(rawKey).appendTs(ts.startTs), bytes);
    this.putWrite(rawKey, ts.commitTs, {
      writeType: "Put",
      startTs: ts.startTs,
      shortValue: short ? bytes : null,
    });
  }

  /** Lays down a committed Delete. */
  commitDelete(rawKey: string, ts: { startTs: TimeStamp; commitTs: TimeStamp }): void {
    this.putWrite(rawKey, ts.commitTs, { writeType: "Delete", startTs: ts.startTs });
  }

  /** Applies a command's modifications as one batch. */
  write(txn: MvccTxn): void {
    using batch = this.engine.newWriteBatch();
    txn.applyTo(batch);
    this.engine.write(batch);
  }

  /** A snapshot; release it (or `using`). */
  snapshot(): Snapshot {
    return this.engine.snapshot();
  }

  /** Runs `body` with a reader on a fresh snapshot. */
  read<T>(body: (reader: MvccReader) => T): T {
    using snapshot = this.snapshot();
    using reader = new MvccReader(snapshot);
    return body(reader);
  }

  /** The lock on `rawKey`, or null. */
  lock(rawKey: string): Lock | null {
    return this.read((reader) => reader.loadLock(key(rawKey)));
  }

  /** Every write record of `rawKey`, newest first. */
  writes(rawKey: string): { commitTs: TimeStamp; write: Write }[] {
    return this.read((reader) => reader.scanWrites(key(rawKey)));
  }

  /** The default-CF value of `rawKey` at `startTs`, or null. */
  value(rawKey: string, startTs: TimeStamp): Uint8Array | null {
    return this.read((reader) => reader.getValue(key(rawKey), startTs));
  }

  /** The committed value of `rawKey` at `ts` ignoring locks, as text, or null. */
  get(rawKey: string, ts: TimeStamp): string | null {
    const value = this.read((reader) => reader.get(key(rawKey), ts));
    return value === null ? null : new TextDecoder().decode(value);
  }
}
