/**
 * `RaftClient`: the raftstore's `Transport` between store processes, over one
 * `tikvpb.Tikv/BatchRaft` client stream per destination store (TiKV's `RaftClient`).
 *
 * The path of an envelope: `send()` encodes it (`codec.ts`) and appends it to its store's
 * queue (`send_queue.ts`, bounded in count and bytes, dropping the oldest); everything queued
 * in one synchronous run — a raftstore round sends all its messages in one loop — is flushed
 * by one microtask as `BatchRaftMessage`s of at most `batchMaxMessages` envelopes and
 * `batchMaxBytes` bytes. While the stream's HTTP/2 window is full (`write()` returned false)
 * nothing more is written until it drains; envelopes wait in the queue meanwhile.
 *
 * A link to a store, as a state machine (one `attempt` number per connection, so callbacks of
 * an older connection are ignored):
 *
 *     idle --send--> connecting --ready--> open --stream ends--> backoff --timer--> connecting
 *                        \--resolve or connect fails-----------> backoff --timer, queue empty--> idle
 *
 * - connecting: the address comes from `resolve(storeId)` (cached; forgotten after any
 *   failure, so a store that moved is found again), passes through `dialRewrite`, and a new
 *   grpc-js channel (its own subchannel pool, so no backoff of an earlier channel carries over)
 *   must become READY within `connectTimeoutMs`. Each wait is bounded.
 * - Every failure (resolve, connect, a stream that ends with an error) calls
 *   `unreachable(storeId)`, so the raftstore can `reportUnreachable`, and waits the backoff:
 *   doubling from `backoffInitialMs` to `backoffMaxMs`, back to the start once a stream has
 *   lived `backoffMaxMs` (a link that comes up only to fail at once keeps backing off).
 * - A link with nothing to send after its backoff goes idle instead of redialling a store
 *   nobody talks to.
 *
 * Delivery is best effort (src/raftstore/transport.ts): envelopes written to a stream that then
 * breaks are lost without a trace; Raft resends what matters.
 *
 * Invariants: `send()` never blocks and never throws for anything the network does (an
 * envelope that breaks the protocol's shape is a bug and fails an assertion in `codec.ts`);
 * every wait is bounded; `close()` ends every stream, channel and timer, and resolves when they
 * are gone.
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import { newGrpcClient } from "../../util/grpc_client.ts";
import { Buffer } from "node:buffer";
import {
  GRPC_MAX_MESSAGE_BYTES,
  RAFT_CLIENT_BACKOFF_INITIAL_MS,
  RAFT_CLIENT_BACKOFF_MAX_MS,
  RAFT_CLIENT_BATCH_MAX_BYTES,
  RAFT_CLIENT_BATCH_MAX_MESSAGES,
  RAFT_CLIENT_CLOSE_TIMEOUT_MS,
  RAFT_CLIENT_CONNECT_TIMEOUT_MS,
  RAFT_CLIENT_MAX_STORES,
  RAFT_CLIENT_QUEUE_MAX_BYTES,
  RAFT_CLIENT_QUEUE_MAX_MESSAGES,
  RAFT_CLIENT_RESOLVE_TIMEOUT_MS,
  RAFT_ENVELOPE_MAX_BYTES,
} from "../../constants.ts";
import type { RaftEnvelope, Transport } from "../../raftstore/transport.ts";
import { assert } from "../../util/assert.ts";
import { encodeEnvelope, frameBatch } from "./codec.ts";
import { BATCH_RAFT_PATH, type TransportLog } from "./methods.ts";
import { type QueuedEnvelope, SendQueue } from "./send_queue.ts";

/** What a log line about an encoded message names (its bytes are not decoded to learn it). */
export interface EncodedAbout {
  regionId: bigint;
  /** Its `eraftpb.MessageType`. */
  msgType: number;
}

/**
 * Where a store's region workers send their Raft messages (`region_workers.ts`): encoded
 * messages to a `RaftClient`, and SST-form snapshots, as envelopes, through the
 * `SnapshotRoutingTransport` to their own streams.
 */
export interface EncodedTransport extends Transport {
  sendEncoded(storeId: bigint, bytes: Uint8Array, about: EncodedAbout): void;
}

/** The bounds a client works within; every one defaults to its `src/constants.ts` value. */
export interface RaftClientLimits {
  batchMaxMessages: number;
  batchMaxBytes: number;
  envelopeMaxBytes: number;
  queueMaxMessages: number;
  queueMaxBytes: number;
  maxStores: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  resolveTimeoutMs: number;
  connectTimeoutMs: number;
  closeTimeoutMs: number;
}

/** The constants' bounds. */
export const DEFAULT_RAFT_CLIENT_LIMITS: Readonly<RaftClientLimits> = {
  batchMaxMessages: RAFT_CLIENT_BATCH_MAX_MESSAGES,
  batchMaxBytes: RAFT_CLIENT_BATCH_MAX_BYTES,
  envelopeMaxBytes: RAFT_ENVELOPE_MAX_BYTES,
  queueMaxMessages: RAFT_CLIENT_QUEUE_MAX_MESSAGES,
  queueMaxBytes: RAFT_CLIENT_QUEUE_MAX_BYTES,
  maxStores: RAFT_CLIENT_MAX_STORES,
  backoffInitialMs: RAFT_CLIENT_BACKOFF_INITIAL_MS,
  backoffMaxMs: RAFT_CLIENT_BACKOFF_MAX_MS,
  resolveTimeoutMs: RAFT_CLIENT_RESOLVE_TIMEOUT_MS,
  connectTimeoutMs: RAFT_CLIENT_CONNECT_TIMEOUT_MS,
  closeTimeoutMs: RAFT_CLIENT_CLOSE_TIMEOUT_MS,
};

/** What a `RaftClient` needs. */
export interface RaftClientOptions {
  /** The gRPC address (host:port) of a store: PD's GetStore in production. */
  resolve(storeId: bigint): Promise<string>;
  /** Called on every failed resolve, connection or stream to `storeId`. */
  unreachable?(storeId: bigint): void;
  /** Transport security of the channels; plain text when absent. */
  credentials?: grpc.ChannelCredentials;
  /** Rewrites an address at every (re)connect (tests route a link through a proxy). */
  dialRewrite?(addr: string): string;
  log: TransportLog;
  /** Tighter bounds (tests); the constants' values when absent. */
  limits?: Partial<RaftClientLimits>;
}

/** Counters of a client, for /metrics and tests. */
export interface RaftClientStats {
  /** Envelopes accepted into a queue. */
  envelopesQueued: number;
  /** Envelopes written to a stream (not necessarily delivered). */
  envelopesSent: number;
  /** BatchRaftMessages written. */
  batchesSent: number;
  bytesSent: number;
  /** Oldest envelopes dropped from a full queue. */
  droppedOverflow: number;
  /** Envelopes larger than `envelopeMaxBytes`, never queued. */
  droppedOversize: number;
  /** Envelopes to a store past `maxStores` links. */
  droppedTooManyStores: number;
  /** Envelopes sent after `close()`, or still queued when it ran. */
  droppedClosed: number;
  /** Streams opened. */
  streamsOpened: number;
  /** Failed resolves, connections and streams (each reported unreachable). */
  failures: number;
  /** Streams `close()` had to cancel because they did not end within `closeTimeoutMs`. */
  streamsCancelledAtClose: number;
}

type LinkState = "idle" | "connecting" | "open" | "backoff" | "closed";

/** What a link needs from its client. */
interface LinkContext {
  readonly options: RaftClientOptions;
  readonly limits: RaftClientLimits;
  readonly stats: RaftClientStats;
}

const toBuffer = (bytes: Uint8Array): Buffer =>
  Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
const keepBuffer = (bytes: Buffer): Buffer => bytes;

/** The transport between store processes (module header). */
export class RaftClient implements EncodedTransport {
  readonly stats: RaftClientStats = {
    envelopesQueued: 0,
    envelopesSent: 0,
    batchesSent: 0,
    bytesSent: 0,
    droppedOverflow: 0,
    droppedOversize: 0,
    droppedTooManyStores: 0,
    droppedClosed: 0,
    streamsOpened: 0,
    failures: 0,
    streamsCancelledAtClose: 0,
  };
  readonly #context: LinkContext;
  readonly #links = new Map<bigint, StoreLink>();
  #closed = false;

  constructor(options: RaftClientOptions) {
    const limits = { ...DEFAULT_RAFT_CLIENT_LIMITS, ...options.limits };
    assert(
      limits.envelopeMaxBytes <= limits.queueMaxBytes &&
        limits.batchMaxMessages >= 1 && limits.backoffInitialMs >= 1 &&
        limits.backoffInitialMs <= limits.backoffMaxMs,
      "raft client limits are consistent",
      { ...limits },
    );
    this.#context = { options, limits, stats: this.stats };
  }

  /** @inheritdoc */
  send(envelope: RaftEnvelope): void {
    if (this.#closed) {
      this.stats.droppedClosed++;
      return;
    }
    this.sendEncoded(envelope.toPeer.storeId, encodeEnvelope(envelope), {
      regionId: envelope.regionId,
      msgType: envelope.message.msgType,
    });
  }

  /**
   * Sends one message already encoded as `raft_serverpb.RaftMessage` (a region worker's,
   * `worker_protocol.ts`) to store `storeId`, as `send` does an envelope: it is never decoded
   * here. `about` is what a log line names. `bytes` may be a view of a larger buffer: it is
   * copied when it would wait in the queue (`StoreLink.enqueue`).
   */
  sendEncoded(storeId: bigint, bytes: Uint8Array, about: EncodedAbout): void {
    if (this.#closed) {
      this.stats.droppedClosed++;
      return;
    }
    if (bytes.length > this.#context.limits.envelopeMaxBytes) {
      this.stats.droppedOversize++;
      this.#context.options.log.warn("raft envelope too large to send, dropped", {
        regionId: about.regionId,
        toStore: storeId,
        msgType: about.msgType,
        bytes: bytes.length,
      });
      return;
    }
    const link = this.link(storeId);
    if (link === null) {
      this.stats.droppedTooManyStores++;
      return;
    }
    link.enqueue({ bytes, regionId: about.regionId, msgType: about.msgType });
  }

  /** The state of the link to `storeId` (tests, /metrics); null when there is none. */
  linkState(storeId: bigint): { state: LinkState; queued: number; queuedBytes: number } | null {
    const link = this.#links.get(storeId);
    return link === undefined ? null : link.describe();
  }

  /**
   * Timers, address lookups, channels and streams the client holds now (for /metrics; zero
   * after `close()`).
   */
  openHandles(): number {
    let handles = 0;
    for (const link of this.#links.values()) handles += link.openHandles();
    return handles;
  }

  /**
   * Ends every stream (gracefully, then cancelled after `closeTimeoutMs`), channel and timer;
   * envelopes still queued are dropped. Later `send()`s are dropped.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#links.values()].map((link) => link.close()));
  }

  private link(storeId: bigint): StoreLink | null {
    let link = this.#links.get(storeId);
    if (link === undefined) {
      if (this.#links.size >= this.#context.limits.maxStores) return null;
      link = new StoreLink(storeId, this.#context);
      this.#links.set(storeId, link);
    }
    return link;
  }
}

/** The link to one store: its queue, channel, stream and backoff (module header). */
class StoreLink {
  readonly #queue: SendQueue;
  #state: LinkState = "idle";
  #attempt = 0;
  #address: string | null = null;
  #channel: grpc.Client | null = null;
  #stream: grpc.ClientWritableStream<Uint8Array> | null = null;
  #streamEnded: Promise<void> | null = null;
  #streamOpenedAtMs = 0;
  #waitingDrain = false;
  #flushScheduled = false;
  #backoffMs: number;
  #timer: ReturnType<typeof setTimeout> | null = null;
  /** Ends a resolve in progress (at close), so that its timeout timer goes with it. */
  #cancelResolve: (() => void) | null = null;

  constructor(readonly storeId: bigint, private readonly context: LinkContext) {
    this.#queue = new SendQueue({
      maxMessages: context.limits.queueMaxMessages,
      maxBytes: context.limits.queueMaxBytes,
    });
    this.#backoffMs = context.limits.backoffInitialMs;
  }

  openHandles(): number {
    return Number(this.#timer !== null) + Number(this.#cancelResolve !== null) +
      Number(this.#channel !== null) + Number(this.#stream !== null);
  }

  describe(): { state: LinkState; queued: number; queuedBytes: number } {
    return { state: this.#state, queued: this.#queue.count, queuedBytes: this.#queue.bytes };
  }

  enqueue(item: QueuedEnvelope): void {
    assert(this.#state !== "closed", "no envelope is queued on a closed link", {
      storeId: this.storeId,
    });
    // A view of a larger buffer (a worker's post of a whole round) that would wait here, for a
    // link that is not open or whose stream is full, is copied: waiting, it would pin the whole
    // round's buffer, for as long as a store is down, where the queue counts only its own bytes.
    // An open link writes it within this turn's microtasks, and the copy is not needed.
    const { bytes } = item;
    if (
      (this.#state !== "open" || this.#waitingDrain) && bytes.byteLength < bytes.buffer.byteLength
    ) {
      item.bytes = new Uint8Array(bytes); // A copy (a Buffer's slice() would be a view).
    }
    const dropped = this.#queue.push(item);
    this.context.stats.envelopesQueued++;
    this.context.stats.droppedOverflow += dropped;
    if (this.#state === "idle") void this.connect();
    else if (this.#state === "open") this.scheduleFlush();
  }

  // -------------------------------------------------------------------------------------------
  // Connecting.

  private async connect(): Promise<void> {
    const attempt = ++this.#attempt;
    this.#state = "connecting";
    let address = this.#address;
    if (address === null) {
      const resolved = await this.resolve();
      if (attempt !== this.#attempt) return; // Closed meanwhile.
      if ("problem" in resolved) return this.fail(attempt, resolved.problem);
      address = this.#address = resolved.address;
    }
    const target = this.context.options.dialRewrite?.(address) ?? address;
    let channel: grpc.Client;
    try {
      channel = this.newChannel(target);
    } catch (error) {
      // grpc-js refuses a target it cannot parse: a bad address from PD, not our bug.
      return this.fail(attempt, `address ${JSON.stringify(target)}: ${describeError(error)}`);
    }
    this.#channel = channel;
    const ready = await whenReady(channel, Date.now() + this.context.limits.connectTimeoutMs);
    if (attempt !== this.#attempt) return;
    if (ready !== null) return this.fail(attempt, `connecting to ${target}: ${ready}`);
    this.openStream(attempt, channel);
  }

  private newChannel(target: string): grpc.Client {
    return newGrpcClient(
      target,
      this.context.options.credentials ?? grpc.credentials.createInsecure(),
      {
        "grpc.max_send_message_length": GRPC_MAX_MESSAGE_BYTES,
        "grpc.max_receive_message_length": GRPC_MAX_MESSAGE_BYTES,
        // A fresh subchannel per connection: the global pool would carry an old channel's
        // reconnect backoff (grpc-js's own, up to minutes) over to this one.
        "grpc.use_local_subchannel_pool": 1,
        // grpc-js starts a backoff timer whenever a subchannel connects and stops it only once
        // READY, so a failed channel leaves it running after close() (1 s by default). This
        // link never lets grpc-js reconnect (it dials a new channel itself), so the timer only
        // needs to end soon: as long as this link's own first wait.
        "grpc.initial_reconnect_backoff_ms": this.context.limits.backoffInitialMs,
        "grpc.max_reconnect_backoff_ms": this.context.limits.backoffMaxMs,
      },
    );
  }

  /** The store's address, or why there is none; bounded by `resolveTimeoutMs`. */
  private async resolve(): Promise<{ address: string } | { problem: string }> {
    const timeoutMs = this.context.limits.resolveTimeoutMs;
    let cancel!: () => void;
    const timeout = new Promise<{ problem: string }>((resolve) => {
      const timer = setTimeout(
        () => resolve({ problem: `resolving store ${this.storeId} took over ${timeoutMs} ms` }),
        timeoutMs,
      );
      cancel = () => {
        clearTimeout(timer);
        resolve({ problem: "the client was closed" });
      };
    });
    this.#cancelResolve = cancel;
    // A resolver that throws instead of rejecting is caught the same way.
    const lookup = new Promise<unknown>((resolve) =>
      resolve(this.context.options.resolve(this.storeId))
    ).then(
      (address) =>
        typeof address === "string" && address !== ""
          ? { address }
          : { problem: `store ${this.storeId} resolved to ${JSON.stringify(address)}` },
      (error) => ({ problem: `resolving store ${this.storeId}: ${describeError(error)}` }),
    );
    try {
      return await Promise.race([lookup, timeout]);
    } finally {
      cancel();
      if (this.#cancelResolve === cancel) this.#cancelResolve = null;
    }
  }

  private openStream(attempt: number, channel: grpc.Client): void {
    let endStream!: () => void;
    this.#streamEnded = new Promise((resolve) => endStream = resolve);
    const stream = channel.makeClientStreamRequest<Uint8Array, Buffer>(
      BATCH_RAFT_PATH,
      toBuffer,
      keepBuffer,
      new grpc.Metadata(),
      {},
      (error) => {
        endStream();
        this.onStreamEnd(attempt, error);
      },
    );
    // Failures arrive through the callback above; an 'error' event nobody hears would end the
    // process.
    stream.on("error", (error: Error) => {
      this.context.options.log.debug("raft stream error", {
        storeId: this.storeId,
        error: error.message,
      });
    });
    this.#stream = stream;
    this.#state = "open";
    this.#waitingDrain = false;
    this.#streamOpenedAtMs = performance.now();
    this.context.stats.streamsOpened++;
    this.scheduleFlush();
  }

  private onStreamEnd(attempt: number, error: grpc.ServiceError | null): void {
    if (attempt !== this.#attempt) return;
    const livedMs = performance.now() - this.#streamOpenedAtMs;
    if (livedMs >= this.context.limits.backoffMaxMs) {
      this.#backoffMs = this.context.limits.backoffInitialMs;
    }
    if (error === null) {
      // The server ended the stream cleanly (it is draining): reconnect, nothing failed.
      this.dropChannel();
      this.scheduleReconnect();
      return;
    }
    this.fail(attempt, `stream: ${error.details || error.message}`);
  }

  /** A failed attempt: forget the address and channel, report, and back off. */
  private fail(attempt: number, problem: string): void {
    assert(attempt === this.#attempt, "only the current attempt fails", {
      attempt,
      current: this.#attempt,
    });
    this.context.stats.failures++;
    this.context.options.log.warn("raft link to store failed", {
      storeId: this.storeId,
      problem,
      retryMs: this.#backoffMs,
    });
    this.#address = null;
    this.dropChannel();
    this.context.options.unreachable?.(this.storeId);
    this.scheduleReconnect();
  }

  private dropChannel(): void {
    this.#stream = null;
    this.#channel?.close();
    this.#channel = null;
  }

  private scheduleReconnect(): void {
    this.#state = "backoff";
    const delayMs = this.#backoffMs;
    this.#backoffMs = Math.min(this.#backoffMs * 2, this.context.limits.backoffMaxMs);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      assert(this.#state === "backoff", "only a link backing off reconnects", {
        storeId: this.storeId,
        state: this.#state,
      });
      if (this.#queue.count === 0) this.#state = "idle";
      else void this.connect();
    }, delayMs);
  }

  // -------------------------------------------------------------------------------------------
  // Sending.

  private scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    queueMicrotask(() => {
      this.#flushScheduled = false;
      this.flush();
    });
  }

  /** Writes queued envelopes as batches until the queue is empty or the stream is full. */
  private flush(): void {
    const { limits, stats } = this.context;
    while (this.#state === "open" && !this.#waitingDrain && this.#queue.count > 0) {
      const stream = this.#stream;
      assert(stream !== null, "an open link has a stream", { storeId: this.storeId });
      const batch = this.#queue.takeBatch(limits.batchMaxMessages, limits.batchMaxBytes);
      const framed = frameBatch(batch.map((item) => item.bytes));
      stats.batchesSent++;
      stats.envelopesSent += batch.length;
      stats.bytesSent += framed.length;
      if (!stream.write(framed)) {
        this.#waitingDrain = true;
        const attempt = this.#attempt;
        stream.once("drain", () => {
          if (attempt !== this.#attempt) return;
          this.#waitingDrain = false;
          this.flush();
        });
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // Closing.

  async close(): Promise<void> {
    this.#attempt++; // Every callback of the current attempt is now stale.
    this.#state = "closed";
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#cancelResolve?.();
    this.#cancelResolve = null;
    this.context.stats.droppedClosed += this.#queue.clear();
    const stream = this.#stream;
    const ended = this.#streamEnded;
    if (stream !== null && ended !== null) {
      stream.end();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timedOut = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), this.context.limits.closeTimeoutMs);
      });
      const late = await Promise.race([ended.then(() => false), timedOut]);
      clearTimeout(timer);
      if (late) {
        this.context.stats.streamsCancelledAtClose++;
        stream.cancel();
        await ended;
      }
    }
    this.dropChannel();
  }
}

/**
 * Waits until `channel` is READY (null) or fails (why): TRANSIENT_FAILURE ends the wait at once
 * rather than at the deadline, as grpc-js's `waitForReady` would, so a refused connection
 * backs off promptly.
 */
function whenReady(channel: grpc.Client, deadlineMs: number): Promise<string | null> {
  const ConnectivityState = grpc.connectivityState;
  return new Promise((resolve) => {
    const check = (error?: Error) => {
      if (error !== undefined) return resolve(`not ready within the connect timeout`);
      let state: grpc.connectivityState;
      try {
        state = channel.getChannel().getConnectivityState(true);
      } catch {
        return resolve("the channel was closed");
      }
      if (state === ConnectivityState.READY) return resolve(null);
      if (state === ConnectivityState.TRANSIENT_FAILURE) return resolve("connection failed");
      if (state === ConnectivityState.SHUTDOWN) return resolve("the channel was closed");
      try {
        channel.getChannel().watchConnectivityState(state, deadlineMs, check);
      } catch {
        resolve("the channel was closed");
      }
    };
    check();
  });
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
