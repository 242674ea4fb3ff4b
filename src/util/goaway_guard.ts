/**
 * Keeps a client's GOAWAY from killing the server process (Deno 2.9.6, denoland/deno#36788).
 *
 * What goes wrong: when a peer sends GOAWAY, Deno's `node:http2` answers it the way Node does:
 * `onGoawayData` calls `session.close()` (NO_ERROR) or `session.destroy(error, NO_ERROR)`
 * (any other code), and both submit a GOAWAY of our own. A server session that has served at
 * least one stream and then sends GOAWAY after receiving one corrupts native memory: the
 * process aborts in nghttp2 (`find_stream_on_goaway_func: Assertion 'stream->closed_next ==
 * NULL'`), in glibc (`free(): invalid pointer`), or with SIGSEGV. With glibc's default heap the
 * damage shows after ~110 requests on the connection; with `MALLOC_PERTURB_=204` (freed
 * memory filled) a single request is enough, which shows it is a use-after-free and not a
 * limit. Deferring `close()` to a later macrotask is not enough (still crashes under
 * `MALLOC_PERTURB_` and under a concurrent stress load); never sending the answering GOAWAY is.
 *
 * What this module does instead: it patches `ServerHttp2Session.prototype` once per process so
 * that, after the peer's GOAWAY,
 * 1. `close()` does not send a GOAWAY: the session keeps serving the streams already open
 *    (RFC 9113 §6.8: the sender of GOAWAY may still finish them) and the peer closes the TCP
 *    connection when they are done, as grpc-js, grpc-go and nghttp2 clients do;
 * 2. a peer that leaves the connection open is cut after `GOAWAY_GUARD_LINGER_MS`, with
 *    `destroy(null)`, the one destroy form that sends no GOAWAY (open streams get RST_STREAM);
 * 3. `destroy(error, code)` (the peer's GOAWAY carried an error) is turned into that same
 *    `destroy(null)`, on the next macrotask rather than inside nghttp2's receive callback.
 * Sessions whose peer never sent GOAWAY are untouched: server-initiated `close()`
 * (`tryShutdown`, max connection age) still sends GOAWAY, which was measured safe.
 * Client sessions get the same patch: a client (a store's Raft or PD connection) whose server
 * shuts down receives the server's GOAWAY and would answer it with its own — seen as the same
 * nghttp2 abort in a store stopping after its peers (`deno task cluster`'s Ctrl+C).
 *
 * Invariants: the patch is installed at most once per process; it changes nothing before a
 * session has seen the peer's GOAWAY; it never throws out of nghttp2's callbacks.
 *
 * Remove it when deno#36788 is fixed: `goaway_guard_test.ts` has a canary that fails then.
 */
import * as http2 from "node:http2";

/** How long a session may stay open after its peer's GOAWAY before we cut it without GOAWAY. */
export const GOAWAY_GUARD_LINGER_MS = 30_000;

/** Options of {@link installGoawayGuard}. */
export interface GoawayGuardOptions {
  /** Overrides {@link GOAWAY_GUARD_LINGER_MS} (tests use a short one). */
  lingerMs?: number;
}

/** The slice of Deno's `ServerHttp2Session` that the guard replaces or calls. */
interface GuardedSession {
  readonly closed: boolean;
  readonly destroyed: boolean;
  once(event: "close", listener: () => void): unknown;
  emit(event: string | symbol, ...args: unknown[]): boolean;
  close(callback?: () => void): void;
  destroy(error?: unknown, code?: number): void;
  [peerSentGoaway]?: boolean;
  [lingerTimer]?: ReturnType<typeof setTimeout>;
}

const peerSentGoaway = Symbol("basalt.peerSentGoaway");
const lingerTimer = Symbol("basalt.goawayLingerTimer");
const installed = Symbol.for("basalt.goawayGuardInstalled");

/**
 * Installs the guard on every `node:http2` session of this process, server and client (grpc-js
 * creates its sessions through `node:http2`, so a `grpc.Server` and a `grpc.Client` are
 * covered whatever way they connect). Call it
 * once at startup, before the server accepts connections; later calls do nothing (the first
 * call's options stay).
 *
 * @example
 * ```ts
 * installGoawayGuard();
 * const server = new grpc.Server();
 * ```
 */
export function installGoawayGuard(options: GoawayGuardOptions = {}): void {
  const lingerMs = options.lingerMs ?? GOAWAY_GUARD_LINGER_MS;
  if (!(Number.isInteger(lingerMs) && lingerMs > 0)) {
    throw new Error(
      `Cannot install the GOAWAY guard: lingerMs must be a positive integer, not ${lingerMs}`,
    );
  }
  const classes = http2 as unknown as Record<string, { prototype: object } | undefined>;
  for (const name of ["ServerHttp2Session", "ClientHttp2Session"] as const) {
    const sessionClass = classes[name];
    if (sessionClass === undefined) {
      throw new Error(`Cannot install the GOAWAY guard: node:http2 exports no ${name}`);
    }
    guardPrototype(name, sessionClass.prototype as GuardedSession, lingerMs);
  }
}

/** The guard on one session class's prototype (see the module header), once. */
function guardPrototype(name: string, target: GuardedSession, lingerMs: number): void {
  const proto = target as GuardedSession & { [installed]?: boolean };
  if (Object.hasOwn(proto, installed)) return;
  for (const method of ["emit", "close", "destroy"] as const) {
    if (typeof proto[method] !== "function") {
      throw new Error(`Cannot install the GOAWAY guard: ${name} has no ${method}()`);
    }
  }
  const { emit, close, destroy } = proto;

  // Deno's onGoawayData emits "goaway" and then calls close() or destroy() on the session, so
  // seeing the event first is what tells those two calls apart from our own shutdowns.
  proto.emit = function (this: GuardedSession, event: string | symbol, ...args: unknown[]) {
    if (event === "goaway") this[peerSentGoaway] = true;
    return emit.call(this, event, ...args);
  };

  proto.close = function (this: GuardedSession, callback?: () => void) {
    if (!this[peerSentGoaway]) return close.call(this, callback);
    if (this.destroyed) return;
    if (typeof callback === "function") this.once("close", callback);
    scheduleLingerCut(this, { destroy, lingerMs });
  };

  proto.destroy = function (this: GuardedSession, error?: unknown, code?: number) {
    if (!this[peerSentGoaway] || error === null) return destroy.call(this, error, code);
    if (this.destroyed) return;
    // Off nghttp2's receive callback, and as destroy(null): closeSession then sends no GOAWAY.
    setTimeout(() => destroy.call(this, null), 0);
  };

  proto[installed] = true;
}

/** Arms the cut of a session whose peer said GOAWAY but has not closed the connection. */
function scheduleLingerCut(
  session: GuardedSession,
  { destroy, lingerMs }: {
    destroy: (this: GuardedSession, error?: unknown, code?: number) => void;
    lingerMs: number;
  },
): void {
  if (session[lingerTimer] !== undefined) return;
  const timer = setTimeout(() => {
    if (!session.destroyed) destroy.call(session, null);
  }, lingerMs);
  // The timer must not keep a stopping process alive, and must not outlive the session.
  Deno.unrefTimer(timer);
  session[lingerTimer] = timer;
  session.once("close", () => clearTimeout(timer));
}
