/**
 * The line between an expected failure a worker answers and a bug that ends it
 * (`worker_errors.ts`).
 */
import assert from "node:assert/strict";
import { EngineClosedError, EngineError } from "../engine/types.ts";
import { EntryTooLargeError } from "../engine/limits.ts";
import { WritesFencedError } from "../engine/rocksdb_engine.ts";
import { RecordFormatError } from "../txn_types/record_codec.ts";
import { MemoryLockTableFullError } from "../txn/concurrency_manager.ts";
import { AssertionError } from "../util/assert.ts";
import { describeError, isCertainBug, isExpectedFailure } from "./worker_errors.ts";

Deno.test("failures of the surroundings and of stored bytes are expected: the worker answers them and goes on", () => {
  const expected = [
    new EngineClosedError("engine"),
    new EngineError("write", "IO error"),
    new WritesFencedError("/data", "write"),
    new EntryTooLargeError("value", 10, 5),
    new RecordFormatError("lock", 0, "truncated"),
    new MemoryLockTableFullError(4),
  ];
  for (const error of expected) assert.ok(isExpectedFailure(error), error.name);
  for (const error of expected) assert.ok(!isCertainBug(error), error.name);
});

Deno.test("a failed assertion, a TypeError, a plain Error or a thrown non-Error is a bug: the worker ends", () => {
  const bugs: unknown[] = [
    new AssertionError("x"),
    new TypeError("cannot read properties of undefined"),
    new RangeError("offset out of bounds"),
    new Error("unreachable: undecided commit record"),
    "a string",
  ];
  for (const error of bugs) assert.ok(!isExpectedFailure(error), describeError(error));
  assert.ok(isCertainBug(new AssertionError("x")) && isCertainBug(new TypeError("t")));
  assert.ok(!isCertainBug(new Error("gc: refused")), "a plain Error is not certain (GC's policy)");
  assert.equal(describeError("a string"), "a thrown string: a string");
});
