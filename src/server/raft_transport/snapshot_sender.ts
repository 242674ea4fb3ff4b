/**
 * The sending side of `tikvpb.Tikv/Snapshot`: a `MsgSnapshot` whose data is the SST form
 * (`src/raftstore/snapshot/sst_snapshot.ts`) does not go on the BatchRaft stream; it opens a
 * Snapshot stream of its own to the receiving store, whose first chunk is the message and whose
 * later chunks are the generated files' bytes in the metadata's order, at most `chunkBytes`
 * each (TiKV's `send_snap`). `SnapshotRoutingTransport` puts that in front of `RaftClient`.
 *
 * Invariants:
 * - Every stream is bounded: `sendTimeoutMs` from dialling to the receiver's `Done` (grpc-js
 *   deadline), resolving the address by `resolveTimeoutMs`; the HTTP/2 window paces the writes
 *   (a `write()` that returns false waits for `drain`), so at most one chunk is buffered.
 * - The generated snapshot is released (its files and place deleted, `SnapshotDir.releaseGenerated`)
 *   once the last stream sending it ends, whatever the outcome: Raft asks for a new snapshot if
 *   this one did not arrive, and generation is bounded by the places.
 * - `send()` never throws and never blocks; the outcome goes to `onResult` (TiKV reports it to
 *   the raftstore as `SnapshotStatus` Finish or Failure).
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { newGrpcClient } from "../../util/grpc_client.ts";
import { Buffer } from "node:buffer";
import { raft_serverpb } from "../../../proto/mod.ts";
import {
  GRPC_MAX_MESSAGE_BYTES,
  RAFT_CLIENT_RESOLVE_TIMEOUT_MS,
  SNAPSHOT_CHUNK_BYTES,
  SNAPSHOT_SEND_TIMEOUT_MS,
} from "../../constants.ts";
import { type SnapKey, snapKeyName } from "../../raftstore/snapshot/sst_snapshot.ts";
import type { RaftEnvelope, Transport } from "../../raftstore/transport.ts";
import { envelopeToProto } from "./codec.ts";
import type { TransportLog } from "./methods.ts";
import { type SnapshotDir, travelsAsSstFiles } from "./snapshot_files.ts";
import { SNAPSHOT_PATH } from "./snapshot_service.ts";

/** Bounds of a sender; the constants' values when absent. */
export interface SnapshotSenderLimits {
  chunkBytes: number;
  sendTimeoutMs: number;
  resolveTimeoutMs: number;
}

/** What a sender needs. */
export interface SnapshotSenderOptions {
  dir: SnapshotDir;
  /** The gRPC address of a store (the `RaftClient`'s resolver). */
  resolve(storeId: bigint): Promise<string>;
  credentials?: grpc.ChannelCredentials;
  log: TransportLog;
  /** A stream ended: `problem` is null when the receiver answered `Done`. */
  onResult?(envelope: RaftEnvelope, problem: string | null): void;
  limits?: Partial<SnapshotSenderLimits>;
}

/** Counters of a sender, for /metrics and tests. */
export interface SnapshotSenderStats {
  streamsStarted: number;
  /** Streams running now. */
  sending: number;
  sent: number;
  failed: number;
  bytesSent: number;
  chunksSent: number;
}

const toBuffer = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
const keepBuffer = (bytes: Buffer) => bytes;

/** Sends SST-form snapshots on Snapshot streams (module header). */
export class SnapshotSender {
  readonly stats: SnapshotSenderStats = {
    streamsStarted: 0,
    sending: 0,
    sent: 0,
    failed: 0,
    bytesSent: 0,
    chunksSent: 0,
  };
  readonly limits: SnapshotSenderLimits;
  /** Streams per generated snapshot (by name): released when the count falls to zero. */
  readonly #users = new Map<string, number>();
  readonly #running = new Set<Promise<void>>();
  readonly #calls = new Set<grpc.ClientWritableStream<Uint8Array>>();
  #closed = false;

  constructor(private readonly options: SnapshotSenderOptions) {
    this.limits = {
      chunkBytes: options.limits?.chunkBytes ?? SNAPSHOT_CHUNK_BYTES,
      sendTimeoutMs: options.limits?.sendTimeoutMs ?? SNAPSHOT_SEND_TIMEOUT_MS,
      resolveTimeoutMs: options.limits?.resolveTimeoutMs ?? RAFT_CLIENT_RESOLVE_TIMEOUT_MS,
    };
  }

  /** Starts sending `envelope` (an SST-form MsgSnapshot) on a stream of its own. */
  send(envelope: RaftEnvelope): void {
    const snapshot = envelope.message.snapshot!;
    const { term, index } = snapshot.metadata;
    const key = { regionId: envelope.regionId, term, index };
    const name = snapKeyName(key);
    this.#users.set(name, (this.#users.get(name) ?? 0) + 1);
    if (this.#closed) return this.finished(envelope, key, "the sender is closed");
    this.stats.streamsStarted++;
    this.stats.sending++;
    const run = this.stream(envelope, key).then(
      () => null,
      (error) => error instanceof Error ? error.message : String(error),
    ).then((problem) => {
      this.stats.sending--;
      this.finished(envelope, key, problem);
    });
    this.#running.add(run);
    void run.finally(() => this.#running.delete(run));
  }

  /** Cancels every stream and waits for them to end. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const call of this.#calls) call.cancel();
    await Promise.all([...this.#running]);
  }

  private finished(envelope: RaftEnvelope, key: SnapKey, problem: string | null): void {
    if (problem === null) this.stats.sent++;
    else {
      this.stats.failed++;
      this.options.log.warn("sending a snapshot failed", {
        regionId: envelope.regionId,
        storeId: envelope.toPeer.storeId,
        snapshot: snapKeyName(key),
        problem,
      });
    }
    const name = snapKeyName(key);
    const users = (this.#users.get(name) ?? 1) - 1;
    if (users === 0) {
      this.#users.delete(name);
      this.options.dir.releaseGenerated(key);
    } else this.#users.set(name, users);
    this.options.onResult?.(envelope, problem);
  }

  private async stream(envelope: RaftEnvelope, key: SnapKey): Promise<void> {
    const meta = this.options.dir.readMeta("gen", key);
    if (meta === null) throw new Error(`generated snapshot ${snapKeyName(key)} is gone`);
    const files = meta.files.map((f) => ({
      ...f,
      path: this.options.dir.filePath("gen", key, f.cf),
    }));
    const deadline = Date.now() + this.limits.sendTimeoutMs;
    const address = await this.resolve(envelope.toPeer.storeId);
    const channel = newGrpcClient(
      address,
      this.options.credentials ?? grpc.credentials.createInsecure(),
      {
        "grpc.max_send_message_length": GRPC_MAX_MESSAGE_BYTES,
        "grpc.max_receive_message_length": GRPC_MAX_MESSAGE_BYTES,
        "grpc.use_local_subchannel_pool": 1,
      },
    );
    try {
      let answer!: (error: grpc.ServiceError | null) => void;
      const answered = new Promise<grpc.ServiceError | null>((resolve) => answer = resolve);
      const call = channel.makeClientStreamRequest<Uint8Array, Buffer>(
        SNAPSHOT_PATH,
        toBuffer,
        keepBuffer,
        new grpc.Metadata(),
        { deadline },
        (error) => answer(error),
      );
      // Failures arrive through the callback; an 'error' event nobody hears ends the process.
      call.on("error", () => {});
      this.#calls.add(call);
      try {
        const ended = answered.then((error) => ({ ended: error }));
        const write = async (chunk: raft_serverpb.SnapshotChunk.$Properties) => {
          const bytes = raft_serverpb.SnapshotChunk.encode(chunk).finish();
          this.stats.chunksSent++;
          if (call.write(bytes)) return;
          const drained = new Promise<null>((resolve) => call.once("drain", () => resolve(null)));
          const outcome = await Promise.race([drained, ended]);
          if (outcome !== null) throw streamError(outcome.ended, "the stream ended while sending");
        };
        await write({ message: envelopeToProto(envelope) });
        const buffer = new Uint8Array(this.limits.chunkBytes);
        for (const f of files) {
          using file = await Deno.open(f.path, { read: true });
          let left = f.sizeBytes;
          while (left > 0) {
            const n = await file.read(buffer.subarray(0, Math.min(left, buffer.length)));
            if (n === null || n === 0) throw new Error(`${f.path} ended ${left} bytes early`);
            left -= n;
            this.stats.bytesSent += n;
            await write({ data: buffer.slice(0, n) });
          }
        }
        call.end();
        const error = await answered;
        if (error !== null) throw streamError(error, "the receiver refused the snapshot");
      } finally {
        this.#calls.delete(call);
      }
    } finally {
      channel.close();
    }
  }

  /** The store's address, bounded by `resolveTimeoutMs`. */
  private async resolve(storeId: bigint): Promise<string> {
    const timeoutMs = this.limits.resolveTimeoutMs;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`resolving store ${storeId} took over ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      const address = await Promise.race([this.options.resolve(storeId), timeout]);
      if (typeof address !== "string" || address === "") {
        throw new Error(`store ${storeId} resolved to ${JSON.stringify(address)}`);
      }
      return address;
    } finally {
      clearTimeout(timer);
    }
  }
}

function streamError(error: grpc.ServiceError | null, what: string): Error {
  return new Error(error === null ? what : `${what}: ${grpc.status[error.code]} ${error.details}`);
}

/**
 * The raftstore's `Transport` with snapshots split off: an SST-form `MsgSnapshot` goes to the
 * `SnapshotSender`, everything else to `inner` (the `RaftClient`).
 */
export class SnapshotRoutingTransport implements Transport {
  constructor(private readonly inner: Transport, private readonly sender: SnapshotSender) {}

  send(envelope: RaftEnvelope): void {
    if (travelsAsSstFiles(envelope)) this.sender.send(envelope);
    else this.inner.send(envelope);
  }
}
