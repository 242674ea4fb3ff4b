/**
 * The client's errors. Every error a client call can reject with is a `ClientError` with a
 * stable `code`; `retriable` says whether sending the same request again may succeed, which
 * the region request loop uses to decide between backing off and surfacing the error.
 *
 * - `UnavailableError`: the store (or PD) could not be reached, or the stream carrying the
 *   request broke. `sent` says whether the request may have reached the server: a request that
 *   may have been applied is not safe to repeat unless it is idempotent.
 * - `DeadlineExceededError`: the call's deadline passed (retries included).
 * - `ServerError`: the server refused the request itself (e.g. "key is too large"); its message
 *   is the server's, unchanged. Retrying the same request fails the same way.
 * - `RegionError`: a region error that retries did not get past (surfaced only when the retry
 *   budget or the deadline runs out); `regionError` is kvproto's `errorpb.Error`.
 * - `UnsupportedError`: the server does not implement the RPC (gRPC UNIMPLEMENTED).
 * - `PdError`: PD answered with an error header.
 * - `InvalidArgumentError`: the call's arguments were refused before anything was sent.
 * - `ClientClosedError`: the client was closed while the request was pending.
 */
import type { errorpb } from "../../proto/mod.ts";

/** Stable codes of client errors. */
export type ClientErrorCode =
  | "Unavailable"
  | "DeadlineExceeded"
  | "ServerError"
  | "RegionError"
  | "Unsupported"
  | "PdError"
  | "InvalidArgument"
  | "Closed";

/** Any error of a client call. */
export class ClientError extends Error {
  constructor(
    readonly code: ClientErrorCode,
    message: string,
    readonly retriable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The store or PD could not be reached, or the request's stream broke. */
export class UnavailableError extends ClientError {
  /** Whether the request may have reached the server before the failure. */
  readonly sent: boolean;
  constructor(message: string, options: { sent: boolean; cause?: unknown }) {
    super("Unavailable", message, true, { cause: options.cause });
    this.sent = options.sent;
  }
}

/** The call's deadline passed. */
export class DeadlineExceededError extends ClientError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("DeadlineExceeded", message, false, options);
  }
}

/** The server refused the request itself; `message` is the server's. */
export class ServerError extends ClientError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("ServerError", message, false, options);
  }
}

/** A region error that retries did not get past. */
export class RegionError extends ClientError {
  constructor(readonly regionError: errorpb.Error.$Properties, message?: string) {
    super("RegionError", message ?? `region error: ${describeRegionError(regionError)}`, true);
  }
}

/** The server does not implement the RPC. */
export class UnsupportedError extends ClientError {
  constructor(message: string) {
    super("Unsupported", message, false);
  }
}

/** PD answered with an error. `type` is the name of kvproto's `pdpb.ErrorType`. */
export class PdError extends ClientError {
  constructor(readonly type: string, message: string) {
    super("PdError", `PD error ${type}: ${message}`, false);
  }
}

/** The call's arguments were refused before anything was sent. */
export class InvalidArgumentError extends ClientError {
  constructor(message: string) {
    super("InvalidArgument", message, false);
  }
}

/** The client was closed. */
export class ClientClosedError extends ClientError {
  constructor(what = "client") {
    super("Closed", `${what} is closed`, false);
  }
}

/** A one-line description of a region error: its typed field and the server's message. */
export function describeRegionError(error: errorpb.Error.$Properties): string {
  const fields = Object.entries(error).filter(([name, value]) =>
    name !== "message" && !name.startsWith("$") && value != null && typeof value === "object"
  ).map(([name]) => name);
  const kind = fields[0] ?? "unknown";
  return error.message ? `${kind}: ${error.message}` : kind;
}
