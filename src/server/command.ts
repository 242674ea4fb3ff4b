/**
 * The shape of every command the store serves (raw today, transactional next): its codecs, the
 * keys it touches (for the region and size checks), where its response reports a request
 * failure, and its handler. A command runs inside a region-group worker against the
 * `StoreServices` of that worker; the gRPC edge on the main thread only routes bytes.
 */
import type { AnswerBudget } from "./answer_budget.ts";
import type { KeyApi } from "../storage/region_range.ts";
import type { Failure } from "./failure.ts";
import type { Region } from "./region.ts";
import type { StoreServices } from "./services.ts";

/** A protobufjs static message class, as far as the server needs it. */
export interface MessageCodec<T> {
  encode(message: T): { finish(): Uint8Array };
  decode(bytes: Uint8Array): T;
}

/**
 * Where a response carries a request failure (a refused argument, an oversized key):
 * - `error`: the response's `error` string (raw writes, RawGet);
 * - `pairs` / `kvs`: a single `KvPair` whose `error.abort` holds the message (RawBatchGet,
 *   RawScan — TiKV's answer where the response has no error string);
 * - `keyError`: the `error` field of type `KeyError`, `abort` set (KvGet, KvCommit, …);
 * - `keyErrors`: a single `KeyError` in the repeated `errors` field (KvPrewrite, …).
 */
export type ErrorField = "error" | "pairs" | "kvs" | "keyError" | "keyErrors";

/**
 * What a command runs within, besides the worker's services: the region its request was
 * checked against (`checkContext`: id, epoch, every key of `keysOf` inside it), and the answer
 * budget. A command reads through that region's snapshot and writes that region's keys only
 * (src/storage: `RegionSnapshot`, `WritePath`).
 */
export interface CommandScope {
  region: Region;
  budget: AnswerBudget;
}

/** One RPC. */
export interface Command<Request, Response> {
  /** The gRPC method of `tikvpb.Tikv`, e.g. "RawGet", "KvPrewrite". */
  name: string;
  /** Its member of the BatchCommands oneof ("RawGet", "Prewrite"), or null if it has none. */
  batchName: string | null;
  requestCodec: MessageCodec<Request>;
  responseCodec: MessageCodec<Response>;
  errorField: ErrorField;
  /**
   * The API of the request's keys, which fixes how they are checked against the region's
   * bounds (data keys: raw keys as they are, transactional keys memcomparable-encoded; see
   * src/storage/region_range.ts).
   */
  keyApi: KeyApi;
  /** Keys checked against the region and the key size limit before `execute`. */
  keysOf(request: Request): Uint8Array[];
  /**
   * True for a write that reads nothing before it proposes (a raw put or delete): it needs no
   * read gate (`StoreServices.gate`), as the log itself refuses it where this replica does not
   * lead. A command that reads first (a CAS, every transactional write) leaves it unset.
   */
  blindWrite?: true;
  /**
   * Runs the request within `scope.region`. A command whose answer gathers entries (pairs,
   * values, records) takes each one's bytes from `scope.budget` before keeping it, and answers
   * `AnswerTooLarge` (via `AnswerBudget.refusal`) when the budget refuses (see
   * `answer_budget.ts`).
   */
  execute(
    services: StoreServices,
    request: Request,
    scope: CommandScope,
  ): Promise<Response | { failure: Failure }>;
}

/** Wraps a failure as a handler's return value. */
export function refuse(failure: Failure): { failure: Failure } {
  return { failure };
}

/** Whether a handler's result is a failure. */
export function isRefusal<R>(result: R | { failure: Failure }): result is { failure: Failure } {
  return typeof result === "object" && result !== null && "failure" in result;
}

/** Any command (a table holds several request/response types). */
// deno-lint-ignore no-explicit-any
export type AnyCommand = Command<any, any>;
