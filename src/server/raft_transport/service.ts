/**
 * The receiving side of the store-to-store transport: handlers of `tikvpb.Tikv/BatchRaft` and
 * `tikvpb.Tikv/Raft` that split each stream message into its `raft_serverpb.RaftMessage`s,
 * read each one's region id (`codec.ts`: `splitBatch`, `peekRegionId`) and hand them to
 * `deliver` undecoded, answering `Done` once the sender ends its stream. The messages are
 * decoded and checked where they are used (the region worker, `decodeEnvelope`): decoding them
 * here only to clone the objects to a worker cost the main thread more than the rest of its
 * Raft work (issue #10).
 *
 * Inbound flow: `deliver` may return a promise (the envelopes cross to a worker, say). A stream
 * with `maxPendingBatches` deliveries unfinished is paused; grpc-js reads a stream's messages
 * only as its reader asks for them, so a paused stream holds at most its reader's buffer (16
 * messages) and HTTP/2 flow control then stops the sender, whose queue fills and drops its
 * oldest envelopes (`send_queue.ts`). A synchronous `deliver` (the raftstore's bounded inbox)
 * never pauses anything.
 *
 * Invariants:
 * - A stream message whose framing is broken (the batch's, or a RaftMessage's own top level), or
 *   holding a RaftMessage without a region id (absent or 0), ends its stream with
 *   INVALID_ARGUMENT naming the problem, is logged and counted; nothing of it is delivered, and
 *   the server goes on. The sender reconnects. A RaftMessage whose content is malformed past
 *   that (an unknown message type, a missing peer, …) is delivered as bytes and dropped by its
 *   region worker, counted and logged there; the rest of its batch goes on.
 * - Every stream is answered exactly once: `Done` after the sender's end and the last delivery,
 *   INVALID_ARGUMENT, or UNAVAILABLE from `drain()` at shutdown.
 * - `deliver` must not throw or reject: a failure there is a bug of the receiver and ends the
 *   process (an uncaught exception or an unhandled rejection), as a failed assertion does.
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { RAFT_SERVICE_STREAM_MAX_PENDING_BATCHES } from "../../constants.ts";
import { assert } from "../../util/assert.ts";
import { type Decoded, peekRegionId, splitBatch } from "./codec.ts";
import { raftMethodDefinitions, type TransportLog } from "./methods.ts";

/**
 * One received `raft_serverpb.RaftMessage`, undecoded: its bytes (a view of the stream message
 * it came in) and its region id, read from them (`peekRegionId`: present and not 0).
 */
export interface ReceivedRaftMessage {
  regionId: bigint;
  bytes: Uint8Array;
}

/** What the Raft handlers need. */
export interface RaftServiceOptions {
  /**
   * Takes the messages of one stream message, in order (the region workers' `deliverRaft`);
   * `decodeEnvelope` makes envelopes of them.
   */
  deliver(messages: ReceivedRaftMessage[]): void | Promise<void>;
  log: TransportLog;
  /** Unfinished deliveries past which a stream is paused; RAFT_SERVICE_STREAM_MAX_PENDING_BATCHES. */
  maxPendingBatches?: number;
}

/** Counters of the service, for /metrics and tests. */
export interface RaftServiceStats {
  streamsOpened: number;
  /** Streams open now. */
  streamsOpen: number;
  /**
   * Streams answered Done. (grpc-js also ends the reader of a stream the sender cancels,
   * before it reports the cancel, so such a stream counts here too; the answer goes nowhere.)
   */
  streamsDone: number;
  messagesReceived: number;
  /** RaftMessages handed to `deliver` (undecoded: a worker may still drop one as malformed). */
  envelopesDelivered: number;
  /** Stream messages refused as malformed (each ended its stream). */
  malformedMessages: number;
  /** Times a stream was paused for unfinished deliveries. */
  pauses: number;
}

/** The handlers and what the server needs of them. */
export interface RaftService {
  /** `BatchRaft` and `Raft` only, on `tikvpb.Tikv`'s paths (see `methods.ts`). */
  definition: grpc.ServiceDefinition;
  handlers: grpc.UntypedServiceImplementation;
  stats: RaftServiceStats;
  /** Ends every open stream with UNAVAILABLE (shutdown); senders reconnect elsewhere or later. */
  drain(): void;
}

const DONE = Buffer.alloc(0); // raft_serverpb.Done has no fields.

/** The Raft handlers over `options.deliver` (module header). */
export function raftService(options: RaftServiceOptions): RaftService {
  const maxPending = options.maxPendingBatches ?? RAFT_SERVICE_STREAM_MAX_PENDING_BATCHES;
  assert(maxPending >= 1, "a stream may have a delivery in progress", { maxPending });
  const stats: RaftServiceStats = {
    streamsOpened: 0,
    streamsOpen: 0,
    streamsDone: 0,
    messagesReceived: 0,
    envelopesDelivered: 0,
    malformedMessages: 0,
    pauses: 0,
  };
  const open = new Set<InboundStream>();
  const handler = (method: string, read: (bytes: Uint8Array) => Decoded<ReceivedRaftMessage[]>) =>
  (
    call: grpc.ServerReadableStream<Buffer, Buffer>,
    callback: grpc.sendUnaryData<Buffer>,
  ) => {
    const stream = new InboundStream(call, callback, {
      method,
      read,
      maxPending,
      options,
      stats,
      onFinish: () => open.delete(stream),
    });
    open.add(stream);
    stream.start();
  };
  return {
    definition: raftMethodDefinitions(),
    handlers: {
      BatchRaft: handler("BatchRaft", readBatch),
      Raft: handler("Raft", readOne),
    },
    stats,
    drain() {
      for (const stream of [...open]) {
        stream.finish({ code: grpc.status.UNAVAILABLE, details: "the store is shutting down" });
      }
    },
  };
}

/** The messages of one `BatchRaftMessage`, each with its region id (module header). */
function readBatch(bytes: Uint8Array): Decoded<ReceivedRaftMessage[]> {
  const split = splitBatch(bytes);
  if (!split.ok) return split;
  const messages: ReceivedRaftMessage[] = new Array(split.value.length);
  for (let i = 0; i < split.value.length; i++) {
    const message = split.value[i]!;
    const regionId = peekRegionId(message);
    if (!regionId.ok) return { ok: false, problem: `message ${i}: ${regionId.problem}` };
    messages[i] = { regionId: regionId.value, bytes: message };
  }
  return { ok: true, value: messages };
}

/** The one `RaftMessage` of a `Raft` stream message, with its region id. */
function readOne(bytes: Uint8Array): Decoded<ReceivedRaftMessage[]> {
  const regionId = peekRegionId(bytes);
  return regionId.ok ? { ok: true, value: [{ regionId: regionId.value, bytes }] } : regionId;
}

interface InboundContext {
  method: string;
  /** The messages of one stream message, or what is wrong with its framing. */
  read: (bytes: Uint8Array) => Decoded<ReceivedRaftMessage[]>;
  maxPending: number;
  options: RaftServiceOptions;
  stats: RaftServiceStats;
  onFinish: () => void;
}

/** One served stream: read, deliver, pause past the pending bound, answer once. */
class InboundStream {
  #pending = 0;
  #paused = false;
  #senderEnded = false;
  #finished = false;

  constructor(
    private readonly call: grpc.ServerReadableStream<Buffer, Buffer>,
    private readonly callback: grpc.sendUnaryData<Buffer>,
    private readonly context: InboundContext,
  ) {}

  start(): void {
    this.context.stats.streamsOpened++;
    this.context.stats.streamsOpen++;
    this.call.on("data", (bytes: Buffer) => this.onData(bytes));
    this.call.on("end", () => {
      this.#senderEnded = true;
      this.finishIfDone();
    });
    // A reset or cancelled stream: nobody is left to answer.
    this.call.on("error", () => this.finish(null));
    this.call.on("cancelled", () => this.finish(null));
  }

  /**
   * Answers the stream (`"done"`: Done; `null`: it is gone, no answer) unless it was answered
   * already.
   */
  finish(answer: Partial<grpc.StatusObject> | "done" | null): void {
    if (this.#finished) return;
    this.#finished = true;
    this.context.stats.streamsOpen--;
    this.context.onFinish();
    if (answer === "done") {
      this.context.stats.streamsDone++;
      this.callback(null, DONE);
    } else if (answer !== null) this.callback(answer);
  }

  private onData(bytes: Buffer): void {
    if (this.#finished) return;
    const { stats, options, method } = this.context;
    stats.messagesReceived++;
    const decoded = this.context.read(bytes);
    if (!decoded.ok) {
      stats.malformedMessages++;
      options.log.warn("malformed raft message, stream ended", {
        rpc: method,
        peer: this.call.getPeer(),
        problem: decoded.problem,
      });
      this.finish({
        code: grpc.status.INVALID_ARGUMENT,
        details: `${method}: ${decoded.problem}`,
      });
      return;
    }
    stats.envelopesDelivered += decoded.value.length;
    const delivered = options.deliver(decoded.value);
    if (delivered === undefined) return;
    this.#pending++;
    if (this.#pending >= this.context.maxPending && !this.#paused) {
      this.#paused = true;
      stats.pauses++;
      this.call.pause();
    }
    // No rejection handler: a failed delivery is a bug (module header).
    void delivered.then(() => this.onDelivered());
  }

  private onDelivered(): void {
    this.#pending--;
    assert(this.#pending >= 0, "deliveries finish once each", { pending: this.#pending });
    if (this.#paused && this.#pending < this.context.maxPending) {
      this.#paused = false;
      this.call.resume();
    }
    this.finishIfDone();
  }

  private finishIfDone(): void {
    if (!this.#senderEnded || this.#pending > 0) return;
    this.finish("done");
  }
}
