/**
 * Flow control of BatchCommands streams: what a client has asked for and not yet received is
 * bounded per stream and per connection, so a client that sends and never reads costs the
 * server at most its caps.
 *
 * Two quantities are counted: outstanding sub-requests (handed to a worker or waiting on an
 * `Empty` delay, not yet answered) and unsent answer bytes (handed to grpc-js, whose write
 * callback has not fired: the bytes sit in grpc-js's and HTTP/2's buffers because the client's
 * flow-control window is closed). When a stream or its connection reaches a cap the stream is
 * paused: grpc-js then stops reading it, HTTP/2 stops granting it window, and the client's
 * writes wait. It resumes once every count it is held by is below its cap again.
 *
 * Connections are told apart by `call.getPeer()` (the client's address and port). Where grpc-js
 * cannot tell the peer ("unknown": a TLS connection under Deno 2.9.6, whose TLSSocket reports no
 * remote address), each stream counts as a connection of its own; the per-stream caps still hold.
 *
 * Invariants: counts never go below zero; a closed stream gives back everything it held to its
 * connection and counts nothing more; a connection's entry exists exactly while it has streams.
 */
import {
  CONNECTION_MAX_PENDING_REQUESTS,
  CONNECTION_MAX_UNSENT_BYTES,
  STREAM_MAX_PENDING_REQUESTS,
  STREAM_MAX_UNSENT_BYTES,
} from "../constants.ts";

/** The caps (the constants by default; tests may pass smaller ones). */
export interface FlowCaps {
  streamMaxPendingRequests: number;
  streamMaxUnsentBytes: number;
  connectionMaxPendingRequests: number;
  connectionMaxUnsentBytes: number;
}

const DEFAULT_CAPS: FlowCaps = {
  streamMaxPendingRequests: STREAM_MAX_PENDING_REQUESTS,
  streamMaxUnsentBytes: STREAM_MAX_UNSENT_BYTES,
  connectionMaxPendingRequests: CONNECTION_MAX_PENDING_REQUESTS,
  connectionMaxUnsentBytes: CONNECTION_MAX_UNSENT_BYTES,
};

/** How a stream is stopped and restarted (grpc-js: `call.pause()`, `call.resume()`). */
export interface StreamValve {
  pause(): void;
  resume(): void;
}

class ConnectionFlow {
  /** The peer it is registered under; null for an unknown peer (never registered). */
  constructor(readonly peer: string | null) {}
  pendingRequests = 0;
  unsentBytes = 0;
  readonly streams = new Set<StreamFlow>();
}

/** The counts of one stream, drawing on its connection's. */
export class StreamFlow {
  #pendingRequests = 0;
  #unsentBytes = 0;
  #paused = false;
  #closed = false;

  constructor(
    private readonly registry: FlowRegistry,
    private readonly connection: ConnectionFlow,
    private readonly valve: StreamValve,
  ) {}

  get pendingRequests(): number {
    return this.#pendingRequests;
  }

  get unsentBytes(): number {
    return this.#unsentBytes;
  }

  get paused(): boolean {
    return this.#paused;
  }

  /** `count` sub-requests were taken in. */
  began(count: number): void {
    this.#change(count, 0);
  }

  /** `count` sub-requests were answered (or failed). */
  finished(count: number): void {
    this.#change(-count, 0);
  }

  /** `bytes` of answers were handed to gRPC. */
  queued(bytes: number): void {
    this.#change(0, bytes);
  }

  /** `bytes` of answers left gRPC's buffers (its write callback fired). */
  sent(bytes: number): void {
    this.#change(0, -bytes);
  }

  /** The stream ended: gives back what it held and stops counting. */
  close(): void {
    if (this.#closed) return;
    this.#change(-this.#pendingRequests, -this.#unsentBytes);
    this.#closed = true;
    this.connection.streams.delete(this);
    this.registry.forget(this.connection);
  }

  #change(requests: number, bytes: number): void {
    if (this.#closed) return;
    this.#pendingRequests += requests;
    this.#unsentBytes += bytes;
    this.connection.pendingRequests += requests;
    this.connection.unsentBytes += bytes;
    if (this.#pendingRequests < 0 || this.#unsentBytes < 0) {
      throw new Error(
        `flow control: stream counts below zero (${this.#pendingRequests} requests, ` +
          `${this.#unsentBytes} bytes)`,
      );
    }
    this.registry.totalPendingRequests += requests;
    this.registry.totalUnsentBytes += bytes;
    const connectionOver = this.registry.connectionOver(this.connection);
    if (connectionOver || requests < 0 || bytes < 0) {
      for (const stream of this.connection.streams) stream.settle(connectionOver);
    } else {
      this.settle(connectionOver);
    }
  }

  /** Pauses or resumes the stream to match the caps. */
  settle(connectionOver: boolean): void {
    const caps = this.registry.caps;
    const over = connectionOver || this.#pendingRequests >= caps.streamMaxPendingRequests ||
      this.#unsentBytes >= caps.streamMaxUnsentBytes;
    if (over === this.#paused) return;
    this.#paused = over;
    if (over) {
      this.registry.pauses++;
      this.valve.pause();
    } else {
      this.valve.resume();
    }
  }
}

/** Every connection's flow; one per gRPC server. */
export class FlowRegistry {
  readonly #connections = new Map<string, ConnectionFlow>();
  readonly caps: FlowCaps;
  /** Outstanding sub-requests over all streams (a gauge for /metrics). */
  totalPendingRequests = 0;
  /** Unsent answer bytes over all streams (a gauge for /metrics). */
  totalUnsentBytes = 0;
  /** Times a stream was paused by a cap (a counter for /metrics). */
  pauses = 0;

  constructor(caps: Partial<FlowCaps> = {}) {
    this.caps = { ...DEFAULT_CAPS, ...caps };
  }

  /** Connections with open streams. */
  get connections(): number {
    return this.#connections.size;
  }

  /** Starts counting a stream of the connection `peer` ("unknown": a connection of its own). */
  open(peer: string, valve: StreamValve): StreamFlow {
    const key = peer === "unknown" || peer === "" ? null : peer;
    let connection = key === null ? undefined : this.#connections.get(key);
    if (connection === undefined) {
      connection = new ConnectionFlow(key);
      if (key !== null) this.#connections.set(key, connection);
    }
    const stream = new StreamFlow(this, connection, valve);
    connection.streams.add(stream);
    return stream;
  }

  /** Whether `connection` is at one of its caps. */
  connectionOver(connection: ConnectionFlow): boolean {
    return connection.pendingRequests >= this.caps.connectionMaxPendingRequests ||
      connection.unsentBytes >= this.caps.connectionMaxUnsentBytes;
  }

  /** Drops a connection's entry once its last stream closed. */
  forget(connection: ConnectionFlow): void {
    if (connection.streams.size === 0 && connection.peer !== null) {
      this.#connections.delete(connection.peer);
    }
  }
}
