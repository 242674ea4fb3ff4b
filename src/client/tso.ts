/**
 * The timestamp client: start and commit timestamps from PD's `Tso` bidi stream, batched the
 * way TiKV's clients batch them (client-go's `tsoDispatcher`).
 *
 * - Every `getTimestamp()` waiting when the stream is free goes out as ONE `TsoRequest{count}`;
 *   PD answers with the LAST of `count` consecutive timestamps, and the waiters get them in
 *   the order they asked. While a request is in flight, new callers queue for the next one,
 *   so under load one round trip serves many transactions.
 * - At most `TSO_MAX_IN_FLIGHT` requests ride the stream at once (PD answers in order) and at
 *   most `TSO_MAX_BATCH` timestamps are asked in one request.
 * - Invariant kept and asserted: timestamps handed out by one client strictly increase.
 * - A broken stream rejects what it carried with a retriable `UnavailableError`; the
 *   waiters retry on a new stream (after `pdUnavailable` back-off) until their deadline, to
 *   the PD leader found again through GetMembers (a replicated PD's leader may have changed).
 *
 * @example
 * ```ts
 * const tso = await TsoClient.connect(["127.0.0.1:20160"]);
 * const startTs = await tso.getTimestamp(); // a bigint: physical_ms << 18 | logical
 * tso.close();
 * ```
 */
import * as grpc from "@grpc/grpc-js";
import { newGrpcClient } from "../util/grpc_client.ts";
import { Buffer } from "node:buffer";
import { pdpb } from "../../proto/mod.ts";
import { Backoffer } from "./backoff.ts";
import { PD_REQUEST_TIMEOUT_MS } from "./constants.ts";
import { ClientClosedError, ClientError, PdError, UnavailableError } from "./errors.ts";
import { closeGrpcClient } from "./grpc_close.ts";
import { clientErrorOfGrpc } from "./grpc_errors.ts";
import { PdClient } from "./pd_client.ts";
import type { TlsIdentity } from "../security/tls.ts";
import { CHANNEL_OPTIONS } from "./transport.ts";

/** Most timestamps asked in one TsoRequest. */
export const TSO_MAX_BATCH = 10_000;
/** Most TsoRequests in flight on the stream. */
export const TSO_MAX_IN_FLIGHT = 2;
/** Most callers waiting for a timestamp before new ones are refused. */
export const TSO_MAX_WAITING = 1 << 17;
/**
 * A request unanswered this long breaks its stream: answers are positional, so a stream that
 * lost one is useless, and a peer can stop answering without ending the stream (a hung PD, a
 * half-open connection; the fake PD of `tso_test.ts` does it on purpose).
 */
export const TSO_RESPONSE_TIMEOUT_MS = 3_000;

/** Bits of the logical part of a TSO timestamp. */
const LOGICAL_BITS = 18n;

/** Where timestamps come from: PD's TSO, or a fake in tests. */
export interface TimestampOracle {
  /** A fresh timestamp, larger than every one this oracle handed out before. */
  getTimestamp(options?: { deadlineMs?: number }): Promise<bigint>;
  close(): void;
}

/** The physical (ms) part of a timestamp. */
export function physicalOf(ts: bigint): number {
  return Number(ts >> LOGICAL_BITS);
}

/** The timestamp with physical part `physicalMs` and logical part `logical`. */
export function composeTimestamp(physicalMs: number, logical = 0): bigint {
  return (BigInt(physicalMs) << LOGICAL_BITS) | BigInt(logical);
}

interface Waiter {
  resolve(ts: bigint): void;
  reject(error: ClientError): void;
}

interface Stream {
  call: grpc.ClientDuplexStream<Uint8Array, Uint8Array>;
  /** Batches sent and not yet answered, oldest first, with the time each was sent. */
  inFlight: { waiters: Waiter[]; sentAtMs: number }[];
  broken: boolean;
  /** Fires when the oldest batch waited TSO_RESPONSE_TIMEOUT_MS. */
  timer: ReturnType<typeof setTimeout> | null;
}

const toBuffer = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
const fromBuffer = (buffer: Buffer) =>
  new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.length);

/** A batched TSO client over one `pdpb.PD/Tso` stream. */
export class TsoClient implements TimestampOracle {
  readonly #pd: PdClient;
  readonly #ownsPd: boolean;
  readonly #waiting: Waiter[] = [];
  readonly #responseTimeoutMs: number;
  #client: grpc.Client | null = null;
  #clientAddress = "";
  #stream: Stream | null = null;
  #last = 0n;
  #closed = false;

  /** A client over `pd` (which it closes with itself only when `ownsPd`). */
  constructor(pd: PdClient, options: { ownsPd?: boolean; responseTimeoutMs?: number } = {}) {
    this.#pd = pd;
    this.#ownsPd = options.ownsPd ?? false;
    this.#responseTimeoutMs = options.responseTimeoutMs ?? TSO_RESPONSE_TIMEOUT_MS;
  }

  /** Connects to the PD at one of `endpoints` (for a standalone store: its own address). */
  static async connect(
    endpoints: readonly string[],
    options: { timeoutMs?: number; responseTimeoutMs?: number; tls?: TlsIdentity | null } = {},
  ): Promise<TsoClient> {
    const pd = await PdClient.connect(endpoints, options);
    return new TsoClient(pd, { ownsPd: true, responseTimeoutMs: options.responseTimeoutMs });
  }

  /** The last timestamp handed out (0 before the first). */
  get lastTimestamp(): bigint {
    return this.#last;
  }

  /**
   * A fresh timestamp; retried on broken or silent streams until the deadline (default 5 s;
   * a stream is declared silent after TSO_RESPONSE_TIMEOUT_MS).
   */
  async getTimestamp(options: { deadlineMs?: number } = {}): Promise<bigint> {
    const deadlineMs = options.deadlineMs ?? Date.now() + PD_REQUEST_TIMEOUT_MS;
    const backoffer = new Backoffer(deadlineMs);
    for (;;) {
      try {
        return await this.#getOnce();
      } catch (error) {
        if (!(error instanceof UnavailableError)) throw error;
        // The PD in use died or no longer leads: find the leader before the next stream.
        this.#pd.leaderLost();
        await backoffer.backoff("pdUnavailable", error);
        try {
          await this.#pd.ensureLeader({ deadlineMs });
        } catch (lookup) {
          if (!(lookup instanceof UnavailableError)) throw lookup;
        }
      }
    }
  }

  /** Closes the stream; waiting callers reject with `ClientClosedError`. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const closed = new ClientClosedError("TSO client");
    for (const waiter of this.#waiting.splice(0)) waiter.reject(closed);
    // Sessions are destroyed before the stream is cancelled (see grpc_close.ts).
    if (this.#client !== null) closeGrpcClient(this.#client);
    this.#client = null;
    if (this.#stream !== null) this.#breakStream(this.#stream, closed);
    if (this.#ownsPd) this.#pd.close();
  }

  #getOnce(): Promise<bigint> {
    if (this.#closed) return Promise.reject(new ClientClosedError("TSO client"));
    if (this.#waiting.length >= TSO_MAX_WAITING) {
      return Promise.reject(
        new UnavailableError(`TSO: ${TSO_MAX_WAITING} callers already waiting`, { sent: false }),
      );
    }
    return new Promise<bigint>((resolve, reject) => {
      this.#waiting.push({ resolve, reject });
      this.#flush();
    });
  }

  /** Sends the waiting callers as one request if the stream has room. */
  #flush(): void {
    if (this.#waiting.length === 0 || this.#closed) return;
    let stream: Stream;
    try {
      stream = this.#openStream();
    } catch (error) {
      const failure = error instanceof ClientError
        ? error
        : new UnavailableError(`TSO: ${error}`, { sent: false });
      for (const waiter of this.#waiting.splice(0)) waiter.reject(failure);
      return;
    }
    if (stream.inFlight.length >= TSO_MAX_IN_FLIGHT) return;
    const batch = this.#waiting.splice(0, TSO_MAX_BATCH);
    stream.inFlight.push({ waiters: batch, sentAtMs: Date.now() });
    this.#armTimer(stream);
    const request = pdpb.TsoRequest.encode({
      header: { clusterId: this.#pd.clusterId },
      count: batch.length,
    }).finish();
    stream.call.write(request);
  }

  #openStream(): Stream {
    if (this.#stream !== null && !this.#stream.broken) return this.#stream;
    const address = this.#pd.address;
    if (this.#client === null || this.#clientAddress !== address) {
      if (this.#client !== null) closeGrpcClient(this.#client);
      this.#client = newGrpcClient(address, this.#pd.credentials, CHANNEL_OPTIONS);
      this.#clientAddress = address;
    }
    const call = this.#client.makeBidiStreamRequest<Uint8Array, Uint8Array>(
      "/pdpb.PD/Tso",
      toBuffer,
      fromBuffer,
    );
    const stream: Stream = { call, inFlight: [], broken: false, timer: null };
    this.#stream = stream;
    call.on("data", (bytes: Uint8Array) => this.#onResponse(stream, bytes));
    call.on("error", (error) => {
      this.#breakStream(
        stream,
        clientErrorOfGrpc(error, { what: `TSO at ${address}`, written: true }),
      );
    });
    call.on("end", () => {
      this.#breakStream(
        stream,
        new UnavailableError(`TSO at ${address}: stream ended`, { sent: true }),
      );
    });
    return stream;
  }

  /** Arms the response timer for the oldest batch in flight, if not armed. */
  #armTimer(stream: Stream): void {
    const oldest = stream.inFlight[0];
    if (stream.timer !== null || oldest === undefined || stream.broken) return;
    const waitMs = Math.max(1, oldest.sentAtMs + this.#responseTimeoutMs - Date.now());
    stream.timer = setTimeout(() => {
      stream.timer = null;
      const first = stream.inFlight[0];
      if (first === undefined) return;
      if (Date.now() - first.sentAtMs >= this.#responseTimeoutMs) {
        const error = new UnavailableError(
          `TSO at ${this.#clientAddress}: no answer in ${this.#responseTimeoutMs} ms`,
          { sent: true },
        );
        this.#breakStream(stream, error);
        return;
      }
      this.#armTimer(stream);
    }, waitMs);
  }

  #onResponse(stream: Stream, bytes: Uint8Array): void {
    const batch = stream.inFlight.shift()?.waiters;
    if (stream.timer !== null) clearTimeout(stream.timer);
    stream.timer = null;
    this.#armTimer(stream);
    if (batch === undefined) {
      this.#breakStream(stream, new UnavailableError("TSO: unexpected response", { sent: true }));
      return;
    }
    let response: pdpb.TsoResponse;
    try {
      response = pdpb.TsoResponse.decode(bytes);
    } catch (error) {
      for (const waiter of batch) {
        waiter.reject(new UnavailableError(`TSO: malformed response: ${error}`, { sent: true }));
      }
      this.#breakStream(stream, new UnavailableError("TSO: malformed response", { sent: true }));
      return;
    }
    const failure = response.header?.error;
    if (failure != null && (failure.type ?? 0) !== pdpb.ErrorType.OK) {
      const error = new PdError(
        pdpb.ErrorType[failure.type ?? 1] ?? "UNKNOWN",
        failure.message ?? "",
      );
      for (const waiter of batch) waiter.reject(error);
    } else {
      this.#handOut(batch, response);
    }
    this.#flush();
  }

  /** Gives each waiter of `batch` its timestamp, in order (see the module comment). */
  #handOut(batch: Waiter[], response: pdpb.TsoResponse): void {
    const timestamp = response.timestamp;
    const count = response.count;
    if (timestamp == null || count !== batch.length) {
      const error = new UnavailableError(
        `TSO: asked ${batch.length} timestamps, PD answered ${count}`,
        { sent: true },
      );
      for (const waiter of batch) waiter.reject(error);
      return;
    }
    const last = (BigInt(timestamp.physical ?? 0n) << LOGICAL_BITS) +
      BigInt(timestamp.logical ?? 0n);
    const first = last - BigInt(count - 1);
    if (first <= this.#last) {
      // PD went backwards: a bug there, or another cluster. Never hand out such timestamps.
      const error = new PdError(
        "UNKNOWN",
        `TSO went backwards: ${first} after ${this.#last} (count ${count})`,
      );
      for (const waiter of batch) waiter.reject(error);
      return;
    }
    this.#last = last;
    for (let i = 0; i < batch.length; i++) batch[i]!.resolve(first + BigInt(i));
  }

  #breakStream(stream: Stream, error: ClientError): void {
    if (stream.broken) return;
    stream.broken = true;
    if (stream.timer !== null) clearTimeout(stream.timer);
    stream.timer = null;
    for (const batch of stream.inFlight.splice(0)) {
      for (const waiter of batch.waiters) waiter.reject(error);
    }
    try {
      stream.call.cancel();
    } catch { /* already ended */ }
    if (this.#stream === stream) this.#stream = null;
    // Callers queued behind the broken stream go out on a new one.
    queueMicrotask(() => this.#flush());
  }
}
