/**
 * The one assertion module of the tree (STYLE.md, "Assertions and errors").
 *
 * A failed assertion is a bug, never an expected failure: it throws `AssertionError`, which no
 * code may catch and go on from. A region worker that meets one ends (the main thread fails what
 * it owed with INTERNAL and rebuilds it from disk, `src/server/region_workers.ts`); elsewhere it
 * ends the process. Expected failures are values (`src/server/failure.ts`), not assertions.
 *
 * `fields` carry the state that matters, so the log line of the crash says what broke and with
 * which values; they are kept on the error (`AssertionError.fields`) for the logger.
 *
 * Pure: no I/O, no clock (src/raft, which imports nothing outside its folder, keeps its own
 * `assert` in `src/raft/types.ts`).
 *
 * @example
 * ```ts
 * import { assert, unreachable } from "./assert.ts";
 * function commit(startTs: bigint, commitTs: bigint): void {
 *   assert(commitTs >= startTs, "commit ts below start ts", { startTs, commitTs });
 * }
 * type Kind = "put" | "delete";
 * function code(kind: Kind): number {
 *   switch (kind) {
 *     case "put": return 1;
 *     case "delete": return 2;
 *     default: return unreachable(kind);
 *   }
 * }
 * ```
 *
 * @module
 */

/** State attached to a failed assertion: plain values a log line can print. */
export type AssertionFields = Record<string, unknown>;

/** A broken invariant: a bug. Never caught to go on (see the module header). */
export class AssertionError extends Error {
  /** The state that matters, as the assertion named it. */
  readonly fields: AssertionFields;

  constructor(message: string, fields: AssertionFields = {}) {
    const shown = Object.keys(fields).length === 0 ? "" : ` ${describeFields(fields)}`;
    super(`assertion failed: ${message}${shown}`);
    this.name = "AssertionError";
    this.fields = fields;
  }
}

/**
 * Throws `AssertionError` when `condition` is false. `message` says what must hold, `fields`
 * the values it was checked on.
 */
export function assert(
  condition: unknown,
  message: string,
  fields?: AssertionFields,
): asserts condition {
  if (!condition) throw new AssertionError(message, fields);
}

/**
 * Marks a branch the types prove impossible (the `default` of an exhaustive `switch`): it does
 * not compile while a case is missing, and throws `AssertionError` if reached anyway (a value
 * from outside the type system, e.g. a bad cast).
 */
export function unreachable(value: never, what = "unreachable branch"): never {
  throw new AssertionError(what, { value });
}

/** Whether `error` is a failed assertion (of this module). */
export function isAssertionError(error: unknown): error is AssertionError {
  return error instanceof AssertionError;
}

/** `fields` as `{a=1 b="x"}`, bigints and byte arrays readable, never throwing. */
export function describeFields(fields: AssertionFields): string {
  const parts = Object.entries(fields).map(([name, value]) => `${name}=${describeValue(value)}`);
  return `{${parts.join(" ")}}`;
}

/**
 * Longest rendering of one field value; a long key or value is cut. A formatting cut, kept here
 * rather than in `src/constants.ts`: that module asserts its relations when it loads, with this
 * module, which must therefore import nothing.
 */
const FIELD_MAX_CHARS = 200;

function describeValue(value: unknown): string {
  let text: string;
  if (typeof value === "bigint") text = `${value}n`;
  else if (value instanceof Uint8Array) {
    text = `0x${Array.from(value.subarray(0, FIELD_MAX_CHARS / 2), hexByte).join("")}`;
  } else if (typeof value === "string") text = JSON.stringify(value);
  else {
    try {
      text = JSON.stringify(value, (_, v) => typeof v === "bigint" ? `${v}n` : v) ?? String(value);
    } catch {
      text = String(value);
    }
  }
  return text.length > FIELD_MAX_CHARS ? `${text.slice(0, FIELD_MAX_CHARS)}…` : text;
}

function hexByte(byte: number): string {
  return byte.toString(16).padStart(2, "0");
}
