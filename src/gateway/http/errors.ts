/**
 * Errors of the HTTP API: every failure is answered with a JSON body
 * `{"error": {"code": "<stable snake_case code>", "message": "...", ...details}}` and a status:
 *
 * | status | code                                                                          |
 * | ------ | ----------------------------------------------------------------------------- |
 * | 400    | invalid_json, invalid_base64, invalid_key, invalid_argument, key_too_large,   |
 * |        | range_too_large, too_many_operations                                          |
 * | 404    | not_found (no such path), key_not_found                                       |
 * | 405    | method_not_allowed (with an `Allow` header)                                   |
 * | 408    | body_timeout (the body did not arrive in time)                                |
 * | 409    | compare_failed, write_conflict                                                |
 * | 413    | body_too_large, value_too_large                                               |
 * | 415    | unsupported_media_type                                                        |
 * | 500    | commit_undetermined, internal                                                 |
 * | 503    | unavailable                                                                   |
 * | 504    | timeout                                                                       |
 */
import { BasaltError, type BasaltErrorCode } from "../../embedded/errors.ts";
import { basaltErrorOf } from "../../embedded/errors.ts";

/** A refusal of the HTTP API: its status, stable code, message and details. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "HttpError";
  }
}

const BASALT_STATUS: Record<BasaltErrorCode, [number, string]> = {
  InvalidArgument: [400, "invalid_argument"],
  KeyTooLarge: [400, "key_too_large"],
  ValueTooLarge: [413, "value_too_large"],
  RangeTooLarge: [400, "range_too_large"],
  Conflict: [409, "write_conflict"],
  CompareFailed: [409, "compare_failed"],
  Undetermined: [500, "commit_undetermined"],
  Timeout: [504, "timeout"],
  Unavailable: [503, "unavailable"],
  Closed: [503, "unavailable"],
};

/** A JSON response with `status`. */
export function jsonResponse(
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

/** The HttpError for `error`, or null when it is none of the API's (a bug: answered 500). */
export function httpErrorOf(error: unknown): HttpError | null {
  if (error instanceof HttpError) return error;
  const basalt = error instanceof BasaltError ? error : basaltErrorOf(error);
  if (basalt === null) return null;
  const [status, code] = BASALT_STATUS[basalt.code];
  return new HttpError(status, code, basalt.message, jsonSafe(basalt.details));
}

/** The response for `error`. */
export function errorResponse(error: HttpError): Response {
  return jsonResponse(error.status, {
    error: { code: error.code, message: error.message, ...error.details },
  }, error.headers);
}

/** `details` with bigints as strings (JSON has none). */
function jsonSafe(details: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(details).map(([k, v]) => [k, typeof v === "bigint" ? String(v) : v]),
  );
}
