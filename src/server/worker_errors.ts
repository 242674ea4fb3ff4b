/**
 * Which errors a region worker answers, and which end it (STYLE.md: "a failed assertion is a
 * bug: crash the worker loudly with the state that matters; never catch it and go on").
 *
 * A command that throws an expected failure of its surroundings — the engine closed under a
 * shutdown, writes fenced on a full disk, a storage I/O error, an entry over the engine's
 * limits, stored bytes that do not decode, a full memory lock table — is answered INTERNAL
 * (a TiKV client retries) and the worker goes on: nothing in its memory is wrong.
 *
 * Anything else is a bug: a failed assertion (`AssertionError`), a `TypeError` or
 * `RangeError` from a broken invariant, a plain `Error` thrown where the code said "cannot
 * happen", a thrown non-Error. The worker's memory (latches, the concurrency manager, write
 * groups) may be inconsistent after it, so the worker ends; the main thread fails what it owed
 * with INTERNAL and starts another from disk (`region_workers.ts`).
 *
 * The list is closed on purpose: a new expected failure must be named here (and given a class of
 * its own) to be answered rather than crash.
 *
 * @module
 */
import { EngineClosedError, EngineError } from "../engine/types.ts";
import { EntryTooLargeError } from "../engine/limits.ts";
import { WritesFencedError } from "../engine/rocksdb_engine.ts";
import { RocksDbError } from "../../ffi/native.ts";
import { CodecError } from "../codec/codec_error.ts";
import { RecordFormatError } from "../txn_types/record_codec.ts";
import { DefaultNotFoundError } from "../mvcc/reader.ts";
import { MemoryLockTableFullError } from "../txn/concurrency_manager.ts";
import { AssertionError } from "../util/assert.ts";

/** The classes of expected failures (see the module header). */
const EXPECTED_FAILURES: readonly (abstract new (...args: never[]) => Error)[] = [
  EngineClosedError,
  EngineError,
  RocksDbError,
  WritesFencedError,
  EntryTooLargeError,
  CodecError,
  RecordFormatError,
  DefaultNotFoundError,
  MemoryLockTableFullError,
];

/** Whether `error` is an expected failure a worker answers and survives. */
export function isExpectedFailure(error: unknown): boolean {
  return EXPECTED_FAILURES.some((kind) => error instanceof kind);
}

/**
 * Whether `error` is a bug beyond doubt: a failed assertion, or an error the language throws for
 * broken code (a `TypeError` from a missing value, a `RangeError`, a `ReferenceError`). Used where
 * plain `Error`s still carry expected failures (the GC pass reports a refused write so, in
 * `src/server/txn/gc.ts`), so that only those end the worker there.
 */
export function isCertainBug(error: unknown): boolean {
  return error instanceof AssertionError || error instanceof TypeError ||
    error instanceof RangeError || error instanceof ReferenceError;
}

/** What a log line says about `error`: its message, and an assertion's fields. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return `a thrown ${typeof error}: ${String(error)}`;
}
