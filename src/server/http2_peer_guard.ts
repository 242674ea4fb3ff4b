/**
 * Keeps what a peer sends on an HTTP/2 connection from throwing out of Deno's `node:http2`
 * event emitters and ending the process (Deno 2.9.6 under grpc-js 1.14.7). Found by the
 * request fuzzer (`tests/fuzz/`), sending raw HTTP/2 frames at the gRPC port.
 *
 * What goes wrong: Deno emits a session's "stream" event on a later tick (`emitStreamNT`), not
 * while it reads the HEADERS frame as Node does. The peer's next frames, read in between, can
 * close the stream first, and then either
 * 1. grpc-js's "stream" handler answers a closed stream: `_verifyContentType` (or the
 *    UNIMPLEMENTED answer) calls `stream.respond()`, which throws ERR_HTTP2_INVALID_STREAM
 *    ("The stream has been destroyed") out of the emitter — reproduced with a HEADERS frame
 *    and a GOAWAY in one TCP write; or
 * 2. the stream's own "error" (the peer broke it: a HEADERS frame and a WINDOW_UPDATE of 0 for
 *    its stream in one write give "Protocol error") is emitted on the next tick, before any
 *    handler could listen for it, and an unheard "error" throws.
 * Either way the process exits on an uncaught error.
 *
 * What this module does: it wraps `ServerHttp2Session.prototype.emit` so that a "stream" event
 * whose stream is already closed or destroyed is not delivered — it can carry no answer, and the
 * peer that closed it expects none — and that stream's coming "error" is heard and dropped.
 *
 * Invariants: installed at most once per process; every other event, and every "stream" event
 * of an open stream, passes unchanged; it composes with `src/util/goaway_guard.ts` (each wraps the emit
 * it finds). Checked by `tests/e2e/fuzz_test.ts` (raw frames at a real store).
 */
import * as http2 from "node:http2";

const installed = Symbol.for("basalt.http2PeerGuardInstalled");

/** The slice of Deno's `ServerHttp2Stream` the guard uses. */
interface StreamState {
  readonly closed?: boolean;
  readonly destroyed?: boolean;
  on(event: "error", listener: (error: unknown) => void): unknown;
}

const ignore = () => {};

/**
 * Installs the guard on every `node:http2` server session of this process. Call it once at
 * startup, before a server accepts connections; later calls do nothing.
 *
 * @example
 * ```ts
 * installHttp2PeerGuard();
 * const server = new grpc.Server();
 * ```
 */
export function installHttp2PeerGuard(): void {
  const sessionClass = (http2 as unknown as { ServerHttp2Session?: { prototype: object } })
    .ServerHttp2Session;
  if (sessionClass === undefined) {
    throw new Error("Cannot install the HTTP/2 peer guard: no ServerHttp2Session in node:http2");
  }
  const proto = sessionClass.prototype as {
    emit(event: string | symbol, ...args: unknown[]): boolean;
    [installed]?: boolean;
  };
  if (proto[installed]) return;
  if (typeof proto.emit !== "function") {
    throw new Error("Cannot install the HTTP/2 peer guard: ServerHttp2Session has no emit()");
  }
  const emit = proto.emit;
  proto.emit = function (this: unknown, event: string | symbol, ...args: unknown[]) {
    if (event === "stream") {
      const stream = args[0] as StreamState | undefined;
      if (stream?.closed === true || stream?.destroyed === true) {
        stream.on("error", ignore);
        return false;
      }
    }
    return emit.call(this, event, ...args);
  };
  proto[installed] = true;
}
