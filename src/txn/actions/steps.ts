/**
 * Actions over many keys run as steps: a generator that does one key's work between two
 * `yield`s and returns the action's result. The action stays pure and synchronous; whoever
 * drives it decides what happens between steps. The scheduler (src/server/txn/scheduler.ts)
 * lets the event loop run every `TXN_WRITE_SLICE_KEYS` steps, so a request over 100k keys
 * never holds its worker longer than one slice; tests and single-shot callers run the steps to
 * the end with `runSteps`.
 *
 * A step must leave the buffer (`MvccTxn`) consistent: the driver may stop between steps
 * only by dropping the whole buffer, never by writing part of it.
 *
 * @module
 */

import type { MvccResult } from "../../mvcc/errors.ts";

/** The steps of an action: one per key, then its result. */
export type KeySteps<T> = Generator<void, MvccResult<T>, undefined>;

/** Runs every step of `steps` at once and returns the action's result. */
export function runSteps<T>(steps: KeySteps<T>): MvccResult<T> {
  for (;;) {
    const step = steps.next();
    if (step.done === true) return step.value;
  }
}

/** Whether an action returned steps (rather than its result at once). */
export function isKeySteps<T>(value: MvccResult<T> | KeySteps<T>): value is KeySteps<T> {
  return typeof (value as Partial<KeySteps<T>>).next === "function";
}
