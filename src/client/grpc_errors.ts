/**
 * gRPC call failures as client errors. grpc-js reports a failed call as an error with a status
 * `code` and `details`; this module decides what the failure means for a retry:
 *
 * - UNAVAILABLE whose details start with grpc-js's "No connection established": the call never
 *   had a connection, so nothing was sent (safe to retry any request).
 * - UNAVAILABLE, CANCELLED (not by us), UNKNOWN, INTERNAL, RESOURCE_EXHAUSTED, ABORTED: the
 *   connection or the stream broke; the request may have reached the server.
 * - DEADLINE_EXCEEDED: the call's deadline passed.
 * - UNIMPLEMENTED: the server does not serve the method.
 * - anything else (INVALID_ARGUMENT, …): the server refused the request.
 */
import { status } from "@grpc/grpc-js";
import {
  type ClientError,
  DeadlineExceededError,
  ServerError,
  UnavailableError,
  UnsupportedError,
} from "./errors.ts";

/** The shape of a grpc-js call error. */
interface GrpcFailure {
  code?: number;
  details?: string;
  message?: string;
}

const RETRIABLE_CODES: ReadonlySet<number> = new Set([
  status.UNAVAILABLE,
  status.CANCELLED,
  status.UNKNOWN,
  status.INTERNAL,
  status.RESOURCE_EXHAUSTED,
  status.ABORTED,
]);

/** Whether a grpc-js failure happened before the call had a connection. */
export function neverConnected(error: unknown): boolean {
  const failure = error as GrpcFailure;
  return failure.code === status.UNAVAILABLE &&
    /(^|: )No connection established/.test(failure.details ?? "");
}

/**
 * The client error for a failed call of `what` (e.g. "RawGet to 127.0.0.1:20160").
 * `written` says whether the request was handed to the call (it may still not have been sent).
 */
export function clientErrorOfGrpc(
  error: unknown,
  options: { what: string; written: boolean },
): ClientError {
  const failure = error as GrpcFailure;
  const details = failure.details || failure.message || String(error);
  const code = failure.code ?? status.UNKNOWN;
  if (code === status.DEADLINE_EXCEEDED) {
    return new DeadlineExceededError(`${options.what}: deadline exceeded`, { cause: error });
  }
  if (code === status.UNIMPLEMENTED) {
    return new UnsupportedError(`${options.what}: not implemented by the server (${details})`);
  }
  if (RETRIABLE_CODES.has(code)) {
    const sent = options.written && !neverConnected(error);
    return new UnavailableError(`${options.what}: ${status[code]}: ${details}`, {
      sent,
      cause: error,
    });
  }
  return new ServerError(`${options.what}: ${status[code] ?? code}: ${details}`, { cause: error });
}
