/**
 * The connection to one store: `send(cmd, request)` → the store's response, over BatchCommands
 * streams (batched, see `batch_stream.ts`) or unary calls of `tikvpb.Tikv`.
 *
 * - One gRPC channel (one HTTP/2 connection) per store, carrying `streamsPerStore`
 *   BatchCommands streams; each request goes to the least loaded stream.
 * - Unary fallback: commands kvproto leaves out of BatchCommands (RawCompareAndSwap,
 *   RawGetKeyTTL, RawChecksum, …) always go unary; every command goes unary with
 *   `batchCommands: false`, or after the store answered BatchCommands with UNIMPLEMENTED.
 * - Deadlines: every request has one (absolute `deadlineMs`, or `timeoutMs` from now, or the
 *   connection's default). A request still unanswered at its deadline is rejected with
 *   `DeadlineExceededError`; one timer serves all requests of the connection.
 * - Failures: a broken stream or connection rejects the requests it carried with a retriable
 *   `UnavailableError` whose `sent` says whether the store may have seen them; the next request
 *   reconnects. The caller decides whether to retry (see `region_request.ts`).
 * - The store's answer is returned as decoded; region errors and request errors inside it are
 *   the caller's to interpret.
 *
 * @example
 * ```ts
 * const connection = new StoreConnection("127.0.0.1:20160");
 * const response = await connection.send("RawGet", { context, key }, { timeoutMs: 1000 });
 * connection.close();
 * ```
 */
import * as grpc from "@grpc/grpc-js";
import { newGrpcClient } from "../util/grpc_client.ts";
import { Buffer } from "node:buffer";
import {
  type BatchingOptions,
  BatchStream,
  type BatchStreamOwner,
  noTransportStats,
  type PendingRequest,
  settleReject,
  settleResolve,
  type TransportStats,
} from "./batch_stream.ts";
import { type CommandName, COMMANDS, type RequestOf, type ResponseOf } from "./commands.ts";
import {
  DEADLINE_TIMER_MAX_MS,
  DEFAULT_BUSY_THRESHOLD,
  DEFAULT_MAX_BATCH_SIZE,
  DEFAULT_MAX_BATCH_WAIT_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_STREAMS_PER_STORE,
  GRPC_MAX_MESSAGE_BYTES,
  KEEPALIVE_TIME_MS,
  KEEPALIVE_TIMEOUT_MS,
  MAX_PENDING_REQUESTS_PER_STORE,
  MAX_STREAMS_PER_STORE,
  RECONNECT_INITIAL_BACKOFF_MS,
  RECONNECT_MAX_BACKOFF_MS,
  SERVER_MAX_BATCH_SIZE,
} from "./constants.ts";
import { type DeadlineEntry, DeadlineQueue } from "./deadline_queue.ts";
import {
  ClientClosedError,
  type ClientError,
  DeadlineExceededError,
  UnavailableError,
  UnsupportedError,
} from "./errors.ts";
import { channelCredentials, type TlsIdentity } from "../security/tls.ts";
import { closeGrpcClient, destroyGrpcSessions } from "./grpc_close.ts";
import { clientErrorOfGrpc } from "./grpc_errors.ts";

export { noTransportStats, type TransportStats } from "./batch_stream.ts";
export type { CommandName, RequestOf, ResponseOf } from "./commands.ts";

/** How a connection sends. Every field has a default. */
export interface TransportOptions {
  /** Most sub-requests in one BatchCommands message (default 128, at most 4096). */
  maxBatchSize?: number;
  /** Wait window for more sub-requests while a stream is busy (default 0: next loop turn). */
  maxBatchWaitMs?: number;
  /** In-flight sub-requests at which a stream counts as busy (default 8). */
  busyThreshold?: number;
  /** BatchCommands streams per store (default 2). */
  streamsPerStore?: number;
  /** Use BatchCommands streams (default true); false sends every command unary. */
  batchCommands?: boolean;
  /** Deadline of a request that names none (default 20 s). */
  defaultTimeoutMs?: number;
  /** Mutual TLS to the stores (`loadTlsIdentity`); plain text when absent. */
  tls?: TlsIdentity | null;
  /**
   * Opens the link to the store at `address` instead of a gRPC `StoreConnection`: an in-process
   * store speaks through the same command layer its gRPC handlers call (src/embedded/).
   */
  link?: (address: string) => StoreLink;
}

/**
 * What the request layers use of a connection to one store: a gRPC `StoreConnection`, or an
 * in-process store's link (src/embedded/in_process_link.ts). `send` rejects with a `ClientError`.
 */
export interface StoreLink {
  readonly address: string;
  /** Requests queued or awaiting an answer. */
  readonly pending: number;
  send<C extends CommandName>(
    cmd: C,
    request: RequestOf<C>,
    options?: SendOptions,
  ): Promise<ResponseOf<C>>;
  /** Counters of what this link sent (a snapshot). */
  stats(): TransportStats;
  close(): void;
}

/** Per-request options of `send`. */
export interface SendOptions {
  /** Absolute deadline, ms since the Unix epoch (as `Date.now()`). */
  deadlineMs?: number;
  /** Deadline relative to now, used when `deadlineMs` is absent. */
  timeoutMs?: number;
  /** Send as a unary call even if the command could be batched. */
  unary?: boolean;
}

interface Resolved {
  batching: BatchingOptions;
  streamsPerStore: number;
  batchCommands: boolean;
  defaultTimeoutMs: number;
}

function resolveOptions(options: TransportOptions): Resolved {
  const resolved: Resolved = {
    batching: {
      maxBatchSize: options.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE,
      maxBatchWaitMs: options.maxBatchWaitMs ?? DEFAULT_MAX_BATCH_WAIT_MS,
      busyThreshold: options.busyThreshold ?? DEFAULT_BUSY_THRESHOLD,
    },
    streamsPerStore: options.streamsPerStore ?? DEFAULT_STREAMS_PER_STORE,
    batchCommands: options.batchCommands ?? true,
    defaultTimeoutMs: options.defaultTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
  };
  const { maxBatchSize, maxBatchWaitMs, busyThreshold } = resolved.batching;
  const check = (ok: boolean, what: string) => {
    if (!ok) throw new RangeError(`transport option ${what}`);
  };
  check(Number.isInteger(maxBatchSize), "maxBatchSize must be an integer");
  check(maxBatchSize >= 1 && maxBatchSize <= SERVER_MAX_BATCH_SIZE, "maxBatchSize out of range");
  check(maxBatchWaitMs >= 0 && maxBatchWaitMs <= 1000, "maxBatchWaitMs must be in [0, 1000]");
  check(busyThreshold >= 0, "busyThreshold must be >= 0");
  check(
    Number.isInteger(resolved.streamsPerStore) && resolved.streamsPerStore >= 1 &&
      resolved.streamsPerStore <= MAX_STREAMS_PER_STORE,
    `streamsPerStore must be in [1, ${MAX_STREAMS_PER_STORE}]`,
  );
  check(resolved.defaultTimeoutMs > 0, "defaultTimeoutMs must be positive");
  return resolved;
}

/** gRPC channel options shared by store and PD connections. */
export const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  "grpc.max_receive_message_length": GRPC_MAX_MESSAGE_BYTES,
  "grpc.max_send_message_length": GRPC_MAX_MESSAGE_BYTES,
  "grpc.keepalive_time_ms": KEEPALIVE_TIME_MS,
  "grpc.keepalive_timeout_ms": KEEPALIVE_TIMEOUT_MS,
  "grpc.initial_reconnect_backoff_ms": RECONNECT_INITIAL_BACKOFF_MS,
  "grpc.max_reconnect_backoff_ms": RECONNECT_MAX_BACKOFF_MS,
  // Each connection gets its own HTTP/2 connection rather than grpc-js's shared subchannel.
  "grpc.use_local_subchannel_pool": 1,
};

const toBuffer = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
const fromBuffer = (buffer: Buffer) =>
  new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.length);

/** The connection to one store. */
export class StoreConnection implements StoreLink {
  readonly address: string;
  readonly #options: Resolved;
  readonly #client: grpc.Client;
  readonly #streams: BatchStream[] = [];
  readonly #deadlines = new DeadlineQueue<PendingRequest>();
  readonly #deadlineEntries = new Map<number, DeadlineEntry<PendingRequest>>();
  readonly #stats: TransportStats = noTransportStats();
  #deadlineTimer: ReturnType<typeof setTimeout> | null = null;
  #deadlineTimerAtMs = Infinity;
  #nextId = 1;
  #batchCommands: boolean;
  #closed = false;

  constructor(address: string, options: TransportOptions = {}) {
    this.address = address;
    this.#options = resolveOptions(options);
    this.#batchCommands = this.#options.batchCommands;
    const credentials = channelCredentials(options.tls ?? null);
    this.#client = newGrpcClient(address, credentials, CHANNEL_OPTIONS);
    const owner: BatchStreamOwner = {
      address,
      stats: this.#stats,
      openCall: () =>
        this.#client.makeBidiStreamRequest<Uint8Array, Uint8Array>(
          "/tikvpb.Tikv/BatchCommands",
          toBuffer,
          fromBuffer,
        ),
      onSettled: (request) => this.#dropDeadline(request),
      onUnimplemented: (requests) => this.#onBatchCommandsUnimplemented(requests),
    };
    for (let i = 0; i < this.#options.streamsPerStore; i++) {
      this.#streams.push(new BatchStream(owner, this.#options.batching));
    }
  }

  /** Counters of what this connection sent (a snapshot). */
  stats(): TransportStats {
    return { ...this.#stats };
  }

  /** Requests queued or awaiting an answer. */
  get pending(): number {
    return this.#deadlineEntries.size;
  }

  /** Whether BatchCommands streams are in use (false after the store refused them). */
  get batchCommands(): boolean {
    return this.#batchCommands;
  }

  /**
   * Sends `cmd` with `request` and resolves with the store's response. Rejects with a
   * `ClientError`: `UnavailableError` (retriable), `DeadlineExceededError`, `UnsupportedError`,
   * `ServerError` (gRPC refusal) or `ClientClosedError`.
   */
  send<C extends CommandName>(
    cmd: C,
    request: RequestOf<C>,
    options: SendOptions = {},
  ): Promise<ResponseOf<C>> {
    if (this.#closed) return Promise.reject(new ClientClosedError("connection"));
    const nowMs = Date.now();
    const deadlineMs = options.deadlineMs ??
      nowMs + (options.timeoutMs ?? this.#options.defaultTimeoutMs);
    if (deadlineMs <= nowMs) {
      return Promise.reject(
        new DeadlineExceededError(`${cmd} to ${this.address}: deadline passed`),
      );
    }
    if (this.#deadlineEntries.size >= MAX_PENDING_REQUESTS_PER_STORE) {
      const message =
        `${cmd} to ${this.address}: ${MAX_PENDING_REQUESTS_PER_STORE} requests pending`;
      return Promise.reject(new UnavailableError(message, { sent: false }));
    }
    const spec = COMMANDS[cmd];
    const viaStream = spec.batch && this.#batchCommands && options.unary !== true;
    if (!viaStream && spec.method === null) {
      return Promise.reject(new UnsupportedError(`${cmd} exists only on BatchCommands streams`));
    }
    return new Promise<ResponseOf<C>>((resolve, reject) => {
      const pending: PendingRequest = {
        id: this.#nextId++,
        cmd,
        request,
        deadlineMs,
        settled: false,
        written: false,
        stream: null,
        resolve: resolve as (response: unknown) => void,
        reject,
      };
      this.#watchDeadline(pending);
      if (viaStream) this.#leastLoadedStream().enqueue(pending);
      else this.#sendUnary(pending);
    });
  }

  /** Rejects every pending request with `ClientClosedError` and closes the channel. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // Sessions first: cancelling streams on a live session and then closing it is the sequence
    // that aborts a Deno server (see grpc_close.ts).
    destroyGrpcSessions(this.#client);
    for (const stream of this.#streams) stream.close();
    const error = new ClientClosedError("connection");
    for (const request of this.#deadlines.clear()) settleReject(request, error);
    this.#deadlineEntries.clear();
    if (this.#deadlineTimer !== null) clearTimeout(this.#deadlineTimer);
    this.#deadlineTimer = null;
    closeGrpcClient(this.#client);
  }

  #leastLoadedStream(): BatchStream {
    let best = this.#streams[0]!;
    for (const stream of this.#streams) if (stream.load < best.load) best = stream;
    return best;
  }

  #sendUnary(pending: PendingRequest): void {
    const spec = COMMANDS[pending.cmd];
    const what = `${pending.cmd} to ${this.address}`;
    let bytes: Uint8Array;
    try {
      bytes = (spec.request.encode as (message: unknown) => { finish(): Uint8Array })(
        pending.request,
      ).finish();
    } catch (error) {
      return this.#fail(
        pending,
        clientErrorOfGrpc({ details: `malformed request: ${error}` }, {
          what,
          written: false,
        }),
      );
    }
    pending.written = true;
    this.#stats.unaryRequestsSent++;
    this.#client.makeUnaryRequest<Uint8Array, Uint8Array>(
      `/tikvpb.Tikv/${spec.method}`,
      toBuffer,
      fromBuffer,
      bytes,
      { deadline: pending.deadlineMs },
      (error, response) => {
        if (error) return this.#fail(pending, clientErrorOfGrpc(error, { what, written: true }));
        let decoded: unknown;
        try {
          decoded = spec.response.decode(response!);
        } catch (decodeError) {
          return this.#fail(
            pending,
            clientErrorOfGrpc({ details: `malformed response: ${decodeError}` }, {
              what,
              written: true,
            }),
          );
        }
        settleResolve(pending, decoded);
        this.#dropDeadline(pending);
      },
    );
  }

  #fail(pending: PendingRequest, error: ClientError): void {
    settleReject(pending, error);
    this.#dropDeadline(pending);
  }

  /** The store has no BatchCommands: send these (never executed) and all later ones unary. */
  #onBatchCommandsUnimplemented(requests: PendingRequest[]): void {
    this.#batchCommands = false;
    for (const request of requests) {
      if (COMMANDS[request.cmd].method === null) {
        this.#fail(request, new UnsupportedError(`${request.cmd}: the store has no BatchCommands`));
      } else this.#sendUnary(request);
    }
  }

  #watchDeadline(pending: PendingRequest): void {
    this.#deadlineEntries.set(pending.id, this.#deadlines.push(pending.deadlineMs, pending));
    if (pending.deadlineMs < this.#deadlineTimerAtMs) this.#armDeadlineTimer();
  }

  #dropDeadline(pending: PendingRequest): void {
    const entry = this.#deadlineEntries.get(pending.id);
    if (entry === undefined) return;
    this.#deadlineEntries.delete(pending.id);
    this.#deadlines.remove(entry);
    if (this.#deadlines.size === 0 && this.#deadlineTimer !== null) {
      clearTimeout(this.#deadlineTimer);
      this.#deadlineTimer = null;
      this.#deadlineTimerAtMs = Infinity;
    }
  }

  #armDeadlineTimer(): void {
    if (this.#deadlineTimer !== null) clearTimeout(this.#deadlineTimer);
    const next = this.#deadlines.peekDeadline();
    if (next === null || this.#closed) {
      this.#deadlineTimer = null;
      this.#deadlineTimerAtMs = Infinity;
      return;
    }
    // Capped so a far deadline cannot overflow the timer (it would fire at once, in a loop).
    const delayMs = Math.min(Math.max(0, next - Date.now()), DEADLINE_TIMER_MAX_MS);
    this.#deadlineTimerAtMs = delayMs === DEADLINE_TIMER_MAX_MS ? Date.now() + delayMs : next;
    this.#deadlineTimer = setTimeout(this.#onDeadlineTimer, delayMs);
  }

  readonly #onDeadlineTimer = (): void => {
    this.#deadlineTimer = null;
    for (const request of this.#deadlines.popDue(Date.now())) {
      this.#deadlineEntries.delete(request.id);
      request.stream?.forget(request);
      const state = request.written ? "sent, no answer" : "not sent";
      settleReject(
        request,
        new DeadlineExceededError(
          `${request.cmd} to ${this.address}: deadline exceeded (${state})`,
        ),
      );
    }
    this.#armDeadlineTimer();
  };
}

/** Connections to stores by address, created on first use and shared. */
export class ConnectionPool {
  readonly #options: TransportOptions;
  readonly #connections = new Map<string, StoreLink>();
  #closed = false;

  constructor(options: TransportOptions = {}) {
    resolveOptions(options); // refuse bad options now rather than at first use
    this.#options = options;
  }

  /** The connection to `address`. */
  get(address: string): StoreLink {
    if (this.#closed) throw new ClientClosedError("connection pool");
    let connection = this.#connections.get(address);
    if (connection === undefined) {
      connection = this.#options.link?.(address) ?? new StoreConnection(address, this.#options);
      this.#connections.set(address, connection);
    }
    return connection;
  }

  /** Addresses with a connection. */
  addresses(): string[] {
    return [...this.#connections.keys()];
  }

  /** Closes every connection. */
  close(): void {
    this.#closed = true;
    for (const connection of this.#connections.values()) connection.close();
    this.#connections.clear();
  }
}
