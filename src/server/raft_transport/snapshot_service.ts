/**
 * The receiving side of `tikvpb.Tikv/Snapshot(stream raft_serverpb.SnapshotChunk) returns
 * (Done)`, as TiKV has it: the first chunk carries the `RaftMessage` (a `MsgSnapshot` whose
 * snapshot data is the SST form's metadata, `src/raftstore/snapshot/sst_snapshot.ts`), every
 * later chunk carries file bytes, the files one after the other in the metadata's order. The
 * files are written to `<snap>/rcv_<key>_<cf>.sst.tmp`, each checked against its size and
 * CRC-32 as it completes; once all are there they are synced and renamed, the snapshot's
 * `.meta` is written, and only then is the message delivered to the raftstore (which installs
 * from those files) and the stream answered `Done`.
 *
 * Invariants:
 * - At most `maxReceiving` streams are received at once; another is answered RESOURCE_EXHAUSTED
 *   at its first chunk (the sender reports the snapshot failed; Raft sends another later). A
 *   second stream of a snapshot being received now is answered ALREADY_EXISTS.
 * - Everything a peer sends is checked: a chunk that does not decode, a first chunk without a
 *   snapshot message in the SST form, a chunk larger than `chunkMaxBytes`, more bytes than the
 *   files' sizes, fewer at the end, or a checksum that does not match ends the stream with
 *   INVALID_ARGUMENT naming the problem (logged, counted); nothing is delivered.
 * - A stream that fails in any way — refused, malformed, cancelled by the sender, past
 *   `receiveTimeoutMs`, or ended by `drain()` — leaves no file behind: partial files are
 *   removed. A `.meta` exists only beside whole, checked files.
 * - A snapshot already received whole (its `.meta` is there: the sender retried after losing
 *   our `Done`) is not written again: its bytes are read and dropped, and the message is
 *   delivered again (Raft ignores a snapshot it no longer needs).
 * - `deliver` must not throw or reject (as `service.ts`'s).
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { crc32 } from "node:zlib";
import { raft_serverpb } from "../../../proto/mod.ts";
import {
  SNAPSHOT_CHUNK_MAX_BYTES,
  SNAPSHOT_MAX_RECEIVING,
  SNAPSHOT_RECEIVE_TIMEOUT_MS,
} from "../../constants.ts";
import { MessageType } from "../../raft/mod.ts";
import {
  type SnapKey,
  snapKeyName,
  type SnapshotCfFile,
  snapshotFormOf,
} from "../../raftstore/snapshot/sst_snapshot.ts";
import type { RaftEnvelope } from "../../raftstore/transport.ts";
import { envelopeFromProto } from "./codec.ts";
import type { TransportLog } from "./methods.ts";
import type { SnapshotDir } from "./snapshot_files.ts";

/** `tikvpb.Tikv/Snapshot`'s path. */
export const SNAPSHOT_PATH = "/tikvpb.Tikv/Snapshot";

const identity = (bytes: Buffer) => bytes;

/** `Snapshot` as a grpc-js method definition passing bytes through (decoded by the handler). */
export function snapshotMethodDefinition(): grpc.MethodDefinition<Buffer, Buffer> {
  return {
    path: SNAPSHOT_PATH,
    requestStream: true,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  };
}

/** Bounds of the receiver; the constants' values when absent. */
export interface SnapshotServiceLimits {
  maxReceiving: number;
  chunkMaxBytes: number;
  receiveTimeoutMs: number;
}

/** What the Snapshot handler needs. */
export interface SnapshotServiceOptions {
  dir: SnapshotDir;
  /** Takes the snapshot's message once its files are whole (the same `deliver` as BatchRaft's). */
  deliver(envelopes: RaftEnvelope[]): void | Promise<void>;
  log: TransportLog;
  limits?: Partial<SnapshotServiceLimits>;
}

/** Counters of the receiver, for /metrics and tests. */
export interface SnapshotServiceStats {
  streamsOpened: number;
  /** Streams receiving now. */
  receiving: number;
  /** Snapshots received whole and delivered. */
  received: number;
  bytesReceived: number;
  /** Streams refused at the concurrency limit. */
  refusedBusy: number;
  /** Streams ended for malformed input or a checksum that did not match. */
  malformed: number;
  /** Streams that failed otherwise (cancelled, timed out, drained, a file error). */
  failed: number;
}

/** The handler and what the server needs of it. */
export interface SnapshotService {
  /** `Snapshot` only, on `tikvpb.Tikv`'s path. */
  definition: grpc.ServiceDefinition;
  handlers: grpc.UntypedServiceImplementation;
  stats: SnapshotServiceStats;
  /** Ends every stream with UNAVAILABLE and removes its partial files (shutdown). */
  drain(): void;
}

const DONE = Buffer.alloc(0); // raft_serverpb.Done has no fields.

/** The Snapshot handler over `options` (module header). */
export function snapshotService(options: SnapshotServiceOptions): SnapshotService {
  const limits: SnapshotServiceLimits = {
    maxReceiving: options.limits?.maxReceiving ?? SNAPSHOT_MAX_RECEIVING,
    chunkMaxBytes: options.limits?.chunkMaxBytes ?? SNAPSHOT_CHUNK_MAX_BYTES,
    receiveTimeoutMs: options.limits?.receiveTimeoutMs ?? SNAPSHOT_RECEIVE_TIMEOUT_MS,
  };
  const stats: SnapshotServiceStats = {
    streamsOpened: 0,
    receiving: 0,
    received: 0,
    bytesReceived: 0,
    refusedBusy: 0,
    malformed: 0,
    failed: 0,
  };
  const open = new Set<InboundSnapshot>();
  /** Snapshots (by name) being received now: the concurrency limit counts these. */
  const receiving = new Set<string>();
  const context: ReceiveContext = { options, limits, stats, receiving, open };
  return {
    definition: { Snapshot: snapshotMethodDefinition() },
    handlers: {
      Snapshot(
        call: grpc.ServerReadableStream<Buffer, Buffer>,
        callback: grpc.sendUnaryData<Buffer>,
      ) {
        const stream = new InboundSnapshot(call, callback, context);
        open.add(stream);
        stream.start();
      },
    },
    stats,
    drain() {
      for (const stream of [...open]) {
        stream.fail({ code: grpc.status.UNAVAILABLE, details: "the store is shutting down" });
      }
    },
  };
}

interface ReceiveContext {
  options: SnapshotServiceOptions;
  limits: SnapshotServiceLimits;
  stats: SnapshotServiceStats;
  receiving: Set<string>;
  open: Set<InboundSnapshot>;
}

/** A refusal of a peer's input: ends the stream with INVALID_ARGUMENT. */
class Malformed extends Error {}

/** The file being written now. */
interface OpenFile {
  spec: SnapshotCfFile;
  file: Deno.FsFile;
  written: number;
  checksum: number;
}

/** One served stream (module header). */
class InboundSnapshot {
  #finished = false;
  #envelope: RaftEnvelope | null = null;
  #key: SnapKey | null = null;
  #files: SnapshotCfFile[] = [];
  /** Index into `#files` of the file being written. */
  #at = 0;
  #current: OpenFile | null = null;
  /** The snapshot is already here whole: drop the bytes, deliver at the end. */
  #discard = false;
  #bytes = 0;
  #total = 0;
  /** Chunks are handled one at a time, in order. */
  #work: Promise<void> = Promise.resolve();
  #timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly call: grpc.ServerReadableStream<Buffer, Buffer>,
    private readonly callback: grpc.sendUnaryData<Buffer>,
    private readonly context: ReceiveContext,
  ) {}

  start(): void {
    this.context.stats.streamsOpened++;
    const timeoutMs = this.context.limits.receiveTimeoutMs;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.fail({
        code: grpc.status.DEADLINE_EXCEEDED,
        details: `Snapshot: not received whole within ${timeoutMs} ms`,
      });
    }, timeoutMs);
    this.call.on("data", (bytes: Buffer) => {
      // One chunk at a time: the next is read once this one is on disk (flow control holds
      // the sender meanwhile).
      this.call.pause();
      this.#work = this.#work.then(() => this.onChunk(bytes)).then(
        () => {
          if (!this.#finished) this.call.resume();
        },
        (error) => this.onError(error),
      );
    });
    this.call.on("end", () => {
      this.#work = this.#work.then(() => this.onEnd()).catch((error) => this.onError(error));
    });
    this.call.on("error", () => this.fail(null));
    this.call.on("cancelled", () => this.fail(null));
  }

  /** Ends the stream with `answer` (null: the peer is gone) and removes every partial file. */
  fail(
    answer: Partial<grpc.StatusObject> | null,
    counter: "failed" | "malformed" = "failed",
  ): void {
    if (this.#finished) return;
    this.context.stats[counter]++;
    this.finish(answer);
    void this.removePartial();
  }

  private finish(answer: Partial<grpc.StatusObject> | "done" | null): void {
    this.#finished = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.context.open.delete(this);
    if (this.#key !== null && !this.#discard) {
      if (this.context.receiving.delete(snapKeyName(this.#key))) this.context.stats.receiving--;
    }
    if (answer === "done") this.callback(null, DONE);
    else if (answer !== null) this.callback(answer);
  }

  private onError(error: unknown): void {
    if (this.#finished) return;
    if (error instanceof Malformed) {
      this.context.options.log.warn("malformed snapshot stream, ended", {
        peer: this.call.getPeer(),
        problem: error.message,
      });
      const answer = { code: grpc.status.INVALID_ARGUMENT, details: `Snapshot: ${error.message}` };
      this.fail(answer, "malformed");
      return;
    }
    this.context.options.log.error("receiving a snapshot failed", {
      peer: this.call.getPeer(),
      error: error instanceof Error ? error.message : String(error),
    });
    this.fail({ code: grpc.status.INTERNAL, details: `Snapshot: ${error}` });
  }

  private async onChunk(bytes: Buffer): Promise<void> {
    if (this.#finished) return;
    let chunk: raft_serverpb.SnapshotChunk;
    try {
      chunk = raft_serverpb.SnapshotChunk.decode(bytes);
    } catch (error) {
      throw new Malformed(`a chunk does not decode: ${error}`);
    }
    if (this.#envelope === null) return this.onFirstChunk(chunk);
    if (chunk.message !== null && chunk.message !== undefined) {
      throw new Malformed("only the first chunk carries a message");
    }
    const data = chunk.data ?? new Uint8Array(0);
    if (data.length > this.context.limits.chunkMaxBytes) {
      throw new Malformed(
        `a chunk of ${data.length} bytes is larger than ${this.context.limits.chunkMaxBytes}`,
      );
    }
    this.#bytes += data.length;
    this.context.stats.bytesReceived += data.length;
    if (this.#bytes > this.#total) {
      throw new Malformed(`more than the ${this.#total} bytes of the snapshot's files`);
    }
    if (this.#discard) return;
    let rest: Uint8Array = data;
    while (rest.length > 0) {
      const current = this.#current ?? await this.openNext();
      const take = Math.min(rest.length, current.spec.sizeBytes - current.written);
      const piece = rest.subarray(0, take);
      await writeAll(current.file, piece);
      current.written += take;
      current.checksum = crc32(piece, current.checksum);
      rest = rest.subarray(take);
      if (current.written === current.spec.sizeBytes) await this.closeCurrent();
    }
  }

  private onFirstChunk(chunk: raft_serverpb.SnapshotChunk): void {
    if (chunk.message === null || chunk.message === undefined) {
      throw new Malformed("the first chunk carries no message");
    }
    const decoded = envelopeFromProto(chunk.message);
    if (!decoded.ok) throw new Malformed(decoded.problem);
    const envelope = decoded.value;
    const snapshot = envelope.message.snapshot;
    if (envelope.message.msgType !== MessageType.MsgSnapshot || snapshot === undefined) {
      throw new Malformed("the first chunk's message is not a snapshot");
    }
    const form = snapshotFormOf(snapshot.data);
    if (form.form !== "sst") {
      throw new Malformed(
        form.form === "inline" ? "an inline snapshot on the Snapshot stream" : form.problem,
      );
    }
    if (form.meta.region.id !== envelope.regionId) {
      throw new Malformed(
        `a snapshot of region ${form.meta.region.id} in a message of region ${envelope.regionId}`,
      );
    }
    const key = {
      regionId: envelope.regionId,
      term: snapshot.metadata.term,
      index: snapshot.metadata.index,
    };
    const name = snapKeyName(key);
    const { receiving, limits, stats, options } = this.context;
    this.#envelope = envelope;
    this.#files = form.meta.files;
    this.#total = form.meta.files.reduce((sum, f) => sum + f.sizeBytes, 0);
    if (options.dir.readMeta("rcv", key) !== null) {
      this.#key = key;
      this.#discard = true;
      return;
    }
    if (receiving.has(name)) {
      this.finish({
        code: grpc.status.ALREADY_EXISTS,
        details: `Snapshot: snapshot ${name} is being received on another stream`,
      });
      return;
    }
    if (receiving.size >= limits.maxReceiving) {
      stats.refusedBusy++;
      this.finish({
        code: grpc.status.RESOURCE_EXHAUSTED,
        details: `Snapshot: this store receives at most ${limits.maxReceiving} snapshots at once`,
      });
      return;
    }
    receiving.add(name);
    stats.receiving++;
    this.#key = key;
  }

  private async openNext(): Promise<OpenFile> {
    const spec = this.#files[this.#at];
    if (spec === undefined) throw new Malformed("bytes past the last file");
    const path = `${this.context.options.dir.filePath("rcv", this.#key!, spec.cf)}.tmp`;
    const file = await Deno.open(path, { write: true, create: true, truncate: true });
    this.#current = { spec, file, written: 0, checksum: 0 };
    return this.#current;
  }

  /** Checks, syncs and closes the file just completed. */
  private async closeCurrent(): Promise<void> {
    const current = this.#current!;
    this.#current = null;
    this.#at++;
    try {
      if (current.checksum !== current.spec.checksum) {
        throw new Malformed(
          `the file of column family ${current.spec.cf} has checksum ${current.checksum}, ` +
            `not ${current.spec.checksum}`,
        );
      }
      await current.file.sync();
    } finally {
      current.file.close();
    }
  }

  private async onEnd(): Promise<void> {
    if (this.#finished) return;
    if (this.#envelope === null) throw new Malformed("the stream ended before its first chunk");
    if (this.#bytes < this.#total) {
      throw new Malformed(`the stream ended after ${this.#bytes} of ${this.#total} bytes`);
    }
    const key = this.#key!;
    const dir = this.context.options.dir;
    if (!this.#discard) {
      for (const { cf } of this.#files) {
        const path = dir.filePath("rcv", key, cf);
        await Deno.rename(`${path}.tmp`, path);
      }
      dir.writeMeta("rcv", key, this.#envelope.message.snapshot!.data, { sync: true });
    }
    if (this.#finished) return; // Drained or timed out while renaming: the files stay whole.
    this.context.stats.received++;
    await this.context.options.deliver([this.#envelope]);
    if (this.#finished) return;
    this.finish("done");
  }

  /** Removes the partial files of this stream (never a snapshot received whole). */
  private async removePartial(): Promise<void> {
    // Let a chunk being written finish first, so nothing is written after the removal.
    await this.#work.catch(() => {});
    this.#current?.file.close();
    this.#current = null;
    if (this.#key === null || this.#discard) return;
    const dir = this.context.options.dir;
    if (dir.readMeta("rcv", this.#key) !== null) return;
    for (const { cf } of this.#files) {
      const path = dir.filePath("rcv", this.#key, cf);
      for (const p of [`${path}.tmp`, path]) {
        await Deno.remove(p).catch((error) => {
          if (!(error instanceof Deno.errors.NotFound)) throw error;
        });
      }
    }
  }
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let at = 0;
  while (at < bytes.length) at += await file.write(bytes.subarray(at));
}
