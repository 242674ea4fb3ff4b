/**
 * The client's link to a store running in the same process (`in_process_store.ts`): a request
 * is encoded with the client's codec and handed, as bytes, to the region-group worker of the
 * region its `Context` names — `RegionWorkers.unary`, exactly what the store's gRPC handler
 * calls — and the worker's encoded answer is decoded. No socket, no gRPC: the client's region
 * cache, retries, lock resolution and two-phase commit run unchanged above it.
 *
 * Bounds: at most MAX_PENDING_REQUESTS_PER_STORE requests in flight (then refused, unsent, as
 * the gRPC connection does); every request has a deadline (its own, or the link's default), at
 * which it is rejected with `DeadlineExceededError` (the worker may still run it).
 */
import { MAX_PENDING_REQUESTS_PER_STORE } from "../client/constants.ts";
import {
  ClientClosedError,
  type CommandName,
  COMMANDS,
  DeadlineExceededError,
  noTransportStats,
  type RequestOf,
  type ResponseOf,
  type SendOptions,
  ServerError,
  type StoreLink,
  type TransportStats,
  UnavailableError,
  UnsupportedError,
} from "../client/mod.ts";
import type { RegionWorkers, UnaryResult } from "../server/region_workers.ts";
import { contextRegionId } from "../server/wire.ts";

/** A link that sends every command as a unary request to in-process region workers. */
export class InProcessLink implements StoreLink {
  readonly #workers: RegionWorkers;
  readonly #defaultTimeoutMs: number;
  readonly #stats: TransportStats = noTransportStats();
  #pending = 0;
  #closed = false;
  #drained: (() => void) | null = null;

  constructor(
    readonly address: string,
    parts: { workers: RegionWorkers; defaultTimeoutMs: number },
  ) {
    this.#workers = parts.workers;
    this.#defaultTimeoutMs = parts.defaultTimeoutMs;
  }

  get pending(): number {
    return this.#pending;
  }

  stats(): TransportStats {
    return { ...this.#stats };
  }

  send<C extends CommandName>(
    cmd: C,
    request: RequestOf<C>,
    options: SendOptions = {},
  ): Promise<ResponseOf<C>> {
    const what = `${cmd} in process`;
    if (this.#closed) return Promise.reject(new ClientClosedError("in-process link"));
    if (this.#pending >= MAX_PENDING_REQUESTS_PER_STORE) {
      const message = `${what}: ${MAX_PENDING_REQUESTS_PER_STORE} requests pending`;
      return Promise.reject(new UnavailableError(message, { sent: false }));
    }
    const spec = COMMANDS[cmd];
    if (spec.method === null) {
      return Promise.reject(new UnsupportedError(`${cmd} exists only on BatchCommands streams`));
    }
    const nowMs = Date.now();
    const deadlineMs = options.deadlineMs ?? nowMs + (options.timeoutMs ?? this.#defaultTimeoutMs);
    if (deadlineMs <= nowMs) {
      return Promise.reject(new DeadlineExceededError(`${what}: deadline passed`));
    }
    let bytes: Uint8Array;
    try {
      bytes = (spec.request.encode as (message: unknown) => { finish(): Uint8Array })(request)
        .finish();
    } catch (error) {
      return Promise.reject(new ServerError(`${what}: malformed request: ${error}`));
    }
    this.#stats.messagesSent++;
    this.#stats.unaryRequestsSent++;
    this.#pending++;
    const answer = this.#workers.unary(contextRegionId(bytes), spec.method, bytes);
    return this.#withDeadline(answer, { what, deadlineMs }).then((result) => {
      if (!result.ok) {
        // The worker's INTERNAL (it died, or the store is stopping) may follow a write it made.
        if (result.code === "internal") {
          throw new UnavailableError(`${what}: ${result.details}`, { sent: true });
        }
        throw new ServerError(`${what}: INVALID_ARGUMENT: ${result.details}`);
      }
      return spec.response.decode(result.bytes) as ResponseOf<C>;
    });
  }

  /** Refuses new requests from now on. */
  close(): void {
    this.#closed = true;
  }

  /** Resolves true once no request is in flight, or false after `timeoutMs`. */
  drained(timeoutMs: number): Promise<boolean> {
    if (this.#pending === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#drained = null;
        resolve(false);
      }, timeoutMs);
      this.#drained = () => {
        clearTimeout(timer);
        resolve(true);
      };
    });
  }

  #withDeadline(
    answer: Promise<UnaryResult>,
    request: { what: string; deadlineMs: number },
  ): Promise<UnaryResult> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new DeadlineExceededError(`${request.what}: deadline exceeded (sent)`)),
        request.deadlineMs - Date.now(),
      );
    });
    const settled = answer.finally(() => {
      clearTimeout(timer);
      if (--this.#pending === 0) this.#drained?.();
    });
    return Promise.race([settled, late]);
  }
}
