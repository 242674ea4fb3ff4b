/**
 * One BatchCommands stream (`/tikvpb.Tikv/BatchCommands`) to one store, with client-side
 * batching in the manner of TiKV's Go client:
 *
 * - Requests queue on the stream. When the stream is idle-ish (fewer than `busyThreshold`
 *   sub-requests in flight) the queue is flushed at the end of the current microtask run, so a
 *   lone request goes out at once and a synchronous burst shares one message. When it is busy,
 *   the flush waits `maxBatchWaitMs` (or, when 0, until the event loop's next turn) to gather
 *   more. A queue that reaches `maxBatchSize` is flushed immediately.
 * - Each sub-request carries a connection-unique id; answers are matched by `request_ids`, in
 *   any order and any grouping.
 * - When the stream fails or the server ends it, every request in flight on it is rejected
 *   with a retriable `UnavailableError` (sent unless the stream never had a connection), and
 *   the next flush opens a new stream: reconnection is lazy.
 * - If the server does not implement BatchCommands (UNIMPLEMENTED), the requests are handed
 *   back to the owner to be sent as unary calls instead.
 *
 * Invariants: a request is in at most one of the queue and the in-flight map; a settled request
 * is never settled again (`settle*` check `settled`); a message never holds more than
 * `maxBatchSize` sub-requests.
 */
import type * as grpc from "@grpc/grpc-js";
import { setImmediate } from "node:timers";
import { tikvpb } from "../../proto/mod.ts";
import type { CommandName } from "./commands.ts";
import { ClientClosedError, type ClientError, ServerError, UnavailableError } from "./errors.ts";
import { clientErrorOfGrpc, neverConnected } from "./grpc_errors.ts";

/** A request waiting for its answer. */
export interface PendingRequest {
  readonly id: number;
  readonly cmd: CommandName;
  readonly request: unknown;
  readonly deadlineMs: number;
  /** Settled (answered, failed or timed out): ignore any later answer. */
  settled: boolean;
  /** Handed to a stream message or a unary call. */
  written: boolean;
  /** The stream holding it in flight, so a deadline can forget it there. */
  stream: BatchStream | null;
  resolve(response: unknown): void;
  reject(error: ClientError): void;
}

/** How a stream batches. */
export interface BatchingOptions {
  maxBatchSize: number;
  maxBatchWaitMs: number;
  busyThreshold: number;
}

/** Counters of a connection, for tests and status output. */
export interface TransportStats {
  /** BatchCommands messages written. */
  messagesSent: number;
  /** Sub-requests written in BatchCommands messages. */
  batchedRequestsSent: number;
  /** Unary calls made. */
  unaryRequestsSent: number;
  /** BatchCommands streams opened (the first and every reconnection). */
  streamsOpened: number;
  /** Streams that failed or were ended by the server. */
  streamFailures: number;
}

/** The counters of a link that has sent nothing yet. */
export function noTransportStats(): TransportStats {
  return {
    messagesSent: 0,
    batchedRequestsSent: 0,
    unaryRequestsSent: 0,
    streamsOpened: 0,
    streamFailures: 0,
  };
}

/** What a stream needs from the connection that owns it. */
export interface BatchStreamOwner {
  readonly address: string;
  readonly stats: TransportStats;
  /** Opens a new BatchCommands call. */
  openCall(): grpc.ClientDuplexStream<Uint8Array, Uint8Array>;
  /** Called when a request leaves the stream settled (to drop its deadline). */
  onSettled(request: PendingRequest): void;
  /** The server does not implement BatchCommands: these requests must go unary. */
  onUnimplemented(requests: PendingRequest[]): void;
}

/** Resolves `request` with `response` unless it is already settled. */
export function settleResolve(request: PendingRequest, response: unknown): void {
  if (request.settled) return;
  request.settled = true;
  request.resolve(response);
}

/** Rejects `request` with `error` unless it is already settled. */
export function settleReject(request: PendingRequest, error: ClientError): void {
  if (request.settled) return;
  request.settled = true;
  request.reject(error);
}

/** One BatchCommands stream with its queue and in-flight requests. */
export class BatchStream {
  readonly #owner: BatchStreamOwner;
  readonly #options: BatchingOptions;
  #call: grpc.ClientDuplexStream<Uint8Array, Uint8Array> | null = null;
  #queue: PendingRequest[] = [];
  readonly #inFlight = new Map<number, PendingRequest>();
  #flushScheduled = false;
  #closed = false;

  constructor(owner: BatchStreamOwner, options: BatchingOptions) {
    if (options.maxBatchSize < 1) throw new RangeError("maxBatchSize must be at least 1");
    this.#owner = owner;
    this.#options = options;
  }

  /** Requests queued or in flight on this stream. */
  get load(): number {
    return this.#queue.length + this.#inFlight.size;
  }

  /** Queues `request`; it is written by the next flush. */
  enqueue(request: PendingRequest): void {
    if (this.#closed) return settleReject(request, new ClientClosedError("connection"));
    this.#queue.push(request);
    if (this.#queue.length >= this.#options.maxBatchSize) return this.#flush();
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    if (this.#inFlight.size < this.#options.busyThreshold) queueMicrotask(this.#onFlushDue);
    else if (this.#options.maxBatchWaitMs > 0) {
      setTimeout(this.#onFlushDue, this.#options.maxBatchWaitMs);
    } else setImmediate(this.#onFlushDue);
  }

  /** Drops `request` from the in-flight map (its deadline passed; a late answer is ignored). */
  forget(request: PendingRequest): void {
    this.#inFlight.delete(request.id);
  }

  /** Rejects everything pending and cancels the stream. */
  close(): void {
    this.#closed = true;
    const pending = [...this.#queue, ...this.#inFlight.values()];
    this.#queue = [];
    this.#inFlight.clear();
    const call = this.#call;
    this.#call = null;
    call?.cancel();
    for (const request of pending) this.#reject(request, new ClientClosedError("connection"));
  }

  readonly #onFlushDue = (): void => {
    this.#flushScheduled = false;
    this.#flush();
  };

  #flush(): void {
    while (this.#queue.length > 0 && !this.#closed) {
      const batch: PendingRequest[] = [];
      let taken = 0;
      while (taken < this.#queue.length && batch.length < this.#options.maxBatchSize) {
        const request = this.#queue[taken++]!;
        if (!request.settled) batch.push(request);
      }
      this.#queue = taken === this.#queue.length ? [] : this.#queue.slice(taken);
      if (batch.length > 0) this.#write(batch);
    }
  }

  #write(batch: PendingRequest[]): void {
    let bytes: Uint8Array;
    try {
      bytes = encodeBatch(batch);
    } catch {
      // One malformed request must not sink its neighbours: find it, reject it, send the rest.
      batch = batch.filter((request) => {
        try {
          encodeBatch([request]);
          return true;
        } catch (error) {
          this.#reject(request, new ServerError(`malformed ${request.cmd} request: ${error}`));
          return false;
        }
      });
      if (batch.length === 0) return;
      bytes = encodeBatch(batch);
    }
    const call = this.#call ?? this.#open();
    for (const request of batch) {
      request.written = true;
      request.stream = this;
      this.#inFlight.set(request.id, request);
    }
    this.#owner.stats.messagesSent++;
    this.#owner.stats.batchedRequestsSent += batch.length;
    call.write(bytes);
  }

  #open(): grpc.ClientDuplexStream<Uint8Array, Uint8Array> {
    const call = this.#owner.openCall();
    this.#call = call;
    this.#owner.stats.streamsOpened++;
    call.on("data", (bytes: Uint8Array) => this.#onMessage(bytes));
    call.on("error", (error: unknown) => this.#onEnded(call, error));
    call.on("end", () => this.#onEnded(call, null));
    return call;
  }

  #onMessage(bytes: Uint8Array): void {
    let message: tikvpb.BatchCommandsResponse;
    try {
      message = tikvpb.BatchCommandsResponse.decode(bytes);
    } catch (error) {
      const call = this.#call;
      if (call !== null) this.#onEnded(call, { details: `malformed response: ${error}` });
      return;
    }
    const { responses, requestIds } = message;
    for (let i = 0; i < requestIds.length; i++) {
      const request = this.#inFlight.get(Number(requestIds[i]));
      if (request === undefined) continue; // timed out, or an answer to a failed stream
      this.#inFlight.delete(request.id);
      const answer = responses[i] as Record<string, unknown> | undefined;
      const response = answer?.[request.cmd];
      if (response == null) {
        const got = (answer as { cmd?: string } | undefined)?.cmd ?? "nothing";
        this.#reject(request, new ServerError(`${request.cmd}: the store answered with ${got}`));
      } else {
        settleResolve(request, response);
        this.#owner.onSettled(request);
      }
    }
  }

  /** The stream failed (`error`) or the server ended it (`error` null). */
  #onEnded(call: grpc.ClientDuplexStream<Uint8Array, Uint8Array>, error: unknown): void {
    if (call !== this.#call) return; // a second event of a stream already handled
    this.#call = null;
    if (error === null) call.end();
    this.#owner.stats.streamFailures++;
    const inFlight = [...this.#inFlight.values()];
    this.#inFlight.clear();
    const code = (error as { code?: number } | null)?.code;
    if (code === 12 /* UNIMPLEMENTED */) {
      const requests = [...inFlight, ...this.#queue];
      this.#queue = [];
      this.#owner.onUnimplemented(requests.filter((request) => !request.settled));
      return;
    }
    const what = `BatchCommands stream to ${this.#owner.address}`;
    const failure = error === null
      ? new UnavailableError(`${what} was ended by the server`, { sent: true })
      : clientErrorOfGrpc(error, { what, written: true });
    const unsent = error !== null && neverConnected(error)
      ? new UnavailableError(failure.message, { sent: false, cause: error })
      : failure;
    for (const request of inFlight) this.#reject(request, unsent);
    // Requests queued meanwhile go out on a new stream.
    if (this.#queue.length > 0 && !this.#flushScheduled) {
      this.#flushScheduled = true;
      queueMicrotask(this.#onFlushDue);
    }
  }

  #reject(request: PendingRequest, error: ClientError): void {
    settleReject(request, error);
    this.#owner.onSettled(request);
  }
}

function encodeBatch(batch: readonly PendingRequest[]): Uint8Array {
  return tikvpb.BatchCommandsRequest.encode({
    requests: batch.map((request) => ({ [request.cmd]: request.request })),
    requestIds: batch.map((request) => BigInt(request.id)),
  }).finish();
}
