/**
 * Errors of the key-value API (embedded `Basalt`, HTTP gateway): one `BasaltError` class with a
 * stable `code`; the HTTP gateway maps each code to a status and a snake_case JSON code.
 *
 * | code             | when                                                                |
 * | ---------------- | ------------------------------------------------------------------- |
 * | InvalidArgument  | an empty key, a bad TTL, limit or range                             |
 * | KeyTooLarge      | a key over KV_MAX_KEY_BYTES                                          |
 * | ValueTooLarge    | a value over KV_MAX_VALUE_BYTES                                      |
 * | RangeTooLarge    | a reverse scan over more than KV_REVERSE_SCAN_MAX_EXAMINED pairs     |
 * | Conflict         | a transaction still met write conflicts after its attempts          |
 * | CompareFailed    | a compare condition of a transaction did not hold (nothing written) |
 * | Undetermined     | a commit whose outcome is unknown (its answer was lost)             |
 * | Timeout          | the store did not answer within the call's deadline                 |
 * | Unavailable      | the store cannot be reached, or refused the request                 |
 * | Closed           | the database (or client) was closed                                 |
 */
import {
  ClientClosedError,
  ClientError,
  CommitUndeterminedError,
  DeadlineExceededError,
  InvalidArgumentError,
  TxnError,
} from "../client/mod.ts";

/** Stable codes of `BasaltError`. */
export type BasaltErrorCode =
  | "InvalidArgument"
  | "KeyTooLarge"
  | "ValueTooLarge"
  | "RangeTooLarge"
  | "Conflict"
  | "CompareFailed"
  | "Undetermined"
  | "Timeout"
  | "Unavailable"
  | "Closed";

/** An expected failure of the key-value API. `details` carries structured fields. */
export class BasaltError extends Error {
  constructor(
    readonly code: BasaltErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "BasaltError";
  }
}

/**
 * The `BasaltError` for a failure of the client underneath, or null when `error` is none of
 * the client's (a bug or the caller's own exception: the caller rethrows it as it is).
 */
export function basaltErrorOf(error: unknown): BasaltError | null {
  if (error instanceof BasaltError) return error;
  if (error instanceof CommitUndeterminedError) {
    return new BasaltError("Undetermined", error.message, {}, { cause: error });
  }
  if (error instanceof TxnError) {
    const code = error.retriable ? "Conflict" : "Unavailable";
    return new BasaltError(code, error.message, { txnCode: error.code }, { cause: error });
  }
  if (error instanceof ClientClosedError) {
    return new BasaltError("Closed", error.message, {}, { cause: error });
  }
  if (error instanceof DeadlineExceededError) {
    return new BasaltError("Timeout", error.message, {}, { cause: error });
  }
  if (error instanceof InvalidArgumentError) {
    return new BasaltError("InvalidArgument", error.message, {}, { cause: error });
  }
  if (error instanceof ClientError) {
    return new BasaltError("Unavailable", error.message, { clientCode: error.code }, {
      cause: error,
    });
  }
  return null;
}

/** Rethrows `error` as a `BasaltError` when it is the client's, else as it is. */
export function rethrow(error: unknown): never {
  throw basaltErrorOf(error) ?? error;
}
