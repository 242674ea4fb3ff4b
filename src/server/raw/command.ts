/**
 * The shape of a raw command: its codecs, the keys it touches (for the region and size checks),
 * where its response reports a request failure, and its handler.
 */
import type { Failure } from "../failure.ts";
import type { RawStore } from "./store.ts";

/** A protobufjs static message class, as far as the server needs it. */
export interface MessageCodec<T> {
  encode(message: T): { finish(): Uint8Array };
  decode(bytes: Uint8Array): T;
}

/**
 * Where a response carries a request failure: the `error` string field, or (for responses that
 * have none, as TiKV does) a single `KvPair` whose `error.abort` holds the message.
 */
export type ErrorField = "error" | "pairs" | "kvs";

/** One raw RPC. `name` is both the gRPC method and the BatchCommands oneof member. */
export interface RawCommand<Request, Response> {
  name: string;
  requestCodec: MessageCodec<Request>;
  responseCodec: MessageCodec<Response>;
  errorField: ErrorField;
  /** Keys checked against the region and the key size limit before `execute`. */
  keysOf(request: Request): Uint8Array[];
  execute(store: RawStore, request: Request): Promise<Response | { failure: Failure }>;
}

/** Wraps a failure as a handler's return value. */
export function refuse(failure: Failure): { failure: Failure } {
  return { failure };
}

/** Whether a handler's result is a failure. */
export function isRefusal<R>(result: R | { failure: Failure }): result is { failure: Failure } {
  return typeof result === "object" && result !== null && "failure" in result;
}

/** Any raw command (the table holds several request/response types). */
// deno-lint-ignore no-explicit-any
export type AnyRawCommand = RawCommand<any, any>;
