/**
 * Messages between the main thread (gRPC, routing) and the region-group workers that run
 * commands (DESIGN.md §2). Request and response bodies travel as protobuf bytes.
 *
 * BatchCommands traffic is laid out for the cost of crossing threads, which is per message
 * (~10–20 µs of CPU here for a post and the wake-up it causes, measured) and per structured-clone
 * value: a message is an `Int32Array` layout and one transferred byte buffer, with no
 * per-sub-request objects, strings or bigints. The main thread posts one message per
 * BatchCommands message; the worker posts the answers of every batch that completed in one wave
 * of microtasks (a group write, a message of reads) in one message, as complete
 * `BatchCommandsResponse`s (request ids included) that the main thread writes to the stream as
 * they are.
 *
 * Layouts (all Int32):
 * - `BatchRequests.layout`: per batch `id, count`, then per sub-request `command, bodyBytes,
 *   idBytes`; `data` holds, in that order, each sub-request's body then its request id (the id's
 *   protobuf varint, copied from the client's message).
 * - `BatchAnswers.layout`: per part `id, done, frameBytes, count`, then per answer `index,
 *   outcome`; `data` holds the parts' frames in that order. `index` is the sub-request's place in
 *   its batch, `outcome` an index into `OUTCOMES`.
 *
 * Raft messages cross as encoded `raft_serverpb.RaftMessage`s (codec.ts), never as envelope
 * object graphs: structured clone of envelopes took ~28% of a worker's CPU and ~25% of the main
 * thread's under heavy Raft traffic (10,000 regions on 3 stores, issue #10), and the main thread
 * then encoded or decoded them once more for the wire. A worker encodes a round's messages once
 * (their bytes are the wire form: the main thread frames them into BatchRaftMessages as they
 * are); the main thread reads only a received message's region id (and, for a region it does
 * not know, its keys) and hands the worker the bytes, which the worker decodes and checks. A
 * message's bytes and its routing facts travel as views of ONE ArrayBuffer, transferred
 * (`packOutboundRaft`, `packInboundRaft`). The rare SST-form `MsgSnapshot` leaves a worker as an
 * object ("raftSnapshots"): the main thread sends its files on a Snapshot stream of its own.
 */
import type $protobuf from "protobufjs/minimal.js";
import { appendEnvelope } from "./raft_transport/codec.ts";
import { assert } from "../util/assert.ts";
import type { SharedEngineHandle } from "../engine/rocksdb_engine.ts";
import type { AnyCommand } from "./command.ts";
import { COMMANDS_BY_BATCH_NAME } from "./commands.ts";
import type { LogLevel } from "./config.ts";
import type { LogFields } from "./log.ts";
import type { Outcome } from "./metrics.ts";
import type { RaftEnvelope } from "../raftstore/transport.ts";
import type { RaftstoreSettings, RegionOperator, SplitSpecIds } from "./worker_raftstore.ts";
import type { RegionMeta } from "../raftstore/local_state.ts";
import type { Region } from "./region.ts";

/** Start-up settings of one worker. */
export interface WorkerSettings {
  groupId: number;
  /**
   * The regions the worker serves at start, from the main thread's routing table
   * (`routing_table.ts`): a worker never decides for itself which regions are its own. Later
   * changes arrive as "addRegion" and "dropRegion".
   */
  regions: Region[];
  /** This store's id (the peers of its regions on this store carry it). */
  storeId: bigint;
  /** A new leader syncs max_ts with PD before async commit and 1PC (clustered stores). */
  syncMaxTs: boolean;
  /** The store's snapshot directory (`<data-dir>/snap`): region snapshots as SST files. */
  snapshotDir?: string;
  /** The raftstore's timing and log-compaction settings (`[raftstore]`); defaults when absent. */
  raftstore?: RaftstoreSettings;
  engine: SharedEngineHandle;
  syncLog: boolean;
  /** A timestamp at least as large as any read served before: seeds max_ts. */
  latestTs: bigint;
  logLevel: LogLevel;
  /** Period of the expired raw key sweep; 0 disables it. */
  ttlCheckPollIntervalMs: number;
  /** Hooks only tests set (`region_workers_test.ts`); production never does. */
  testHooks?: WorkerTestHooks;
}

/** Test-only behaviour of a worker. */
export interface WorkerTestHooks {
  /**
   * A command whose request names this key (`key` of a raw point request) fails an assertion
   * inside its run, as a bug in the command would: the worker must end, not answer INTERNAL.
   */
  assertionFailureOnKey?: Uint8Array;
}

/** The commands BatchCommands can carry; a command's code is its index here (same table on every thread). */
export const BATCH_COMMANDS: readonly AnyCommand[] = [...COMMANDS_BY_BATCH_NAME.values()];

/** Outcomes by code. */
export const OUTCOMES: readonly Outcome[] = [
  "ok",
  "region_error",
  "error",
  "invalid_argument",
  "internal",
];

/** Sub-requests of one or more BatchCommands messages for one worker (see the module header). */
export interface BatchRequests {
  layout: Int32Array;
  data: Uint8Array;
}

/** Answers to sub-requests of one or more batches (see the module header). */
export interface BatchAnswers {
  layout: Int32Array;
  data: Uint8Array;
}

export type ToWorker =
  | { kind: "init"; settings: WorkerSettings }
  | { kind: "unary"; id: number; name: string; bytes: Uint8Array }
  | { kind: "batch"; requests: BatchRequests }
  /** The GC safe point advanced: collect old versions of the worker's regions. */
  | { kind: "gc"; safePoint: bigint }
  /**
   * Serve `region` from now on (its state is on disk). `latestTs` is a fresh TSO timestamp: the
   * worker raises its max_ts to it, so no read the region's previous worker served is below it.
   */
  | { kind: "addRegion"; region: Region; latestTs: bigint }
  /**
   * Stop serving region `regionId`: refuse its new requests (RegionNotFound), let the ones
   * running finish, then answer "regionDropped" — only then may another worker load it.
   */
  | { kind: "dropRegion"; regionId: bigint }
  /** Raft messages from other stores for this worker's regions (or new ones it creates). */
  | { kind: "raft"; messages: RaftMessageBatch }
  /** A PD timestamp for a region led here in `term` (see FromWorker "needMaxTs"). */
  | { kind: "maxTs"; regionId: bigint; term: bigint; ts: bigint }
  /** A PD operator for a region this worker serves (carried out if its peer leads). */
  | { kind: "operator"; regionId: bigint; operator: RegionOperator }
  /** The answer to "askSplitIds" `requestId`: the ids, or why there are none. */
  | { kind: "splitIds"; requestId: number; ids: SplitSpecIds[] | null; error: string }
  | { kind: "stop" };

/** Why a request got no response message. */
export type FailureCode = "invalid_argument" | "internal";

export type FromWorker =
  | { kind: "ready" }
  | { kind: "unary"; id: number; bytes: Uint8Array; outcome: Outcome }
  | { kind: "unaryFailed"; id: number; code: FailureCode; details: string }
  | { kind: "batch"; answers: BatchAnswers }
  | { kind: "batchFailed"; id: number; code: FailureCode; details: string }
  | { kind: "log"; level: LogLevel; message: string; fields: LogFields }
  | { kind: "regionAdded"; regionId: bigint }
  /** Nothing of the region runs in this worker any more. */
  | { kind: "regionDropped"; regionId: bigint }
  /** Raft messages for other stores, encoded (see the module header). */
  | { kind: "raft"; messages: OutboundRaftMessages }
  /** SST-form `MsgSnapshot`s for other stores: each goes on a Snapshot stream of its own. */
  | { kind: "raftSnapshots"; envelopes: RaftEnvelope[] }
  /** A region's peer here became leader in `term`: its max_ts needs a PD timestamp. */
  | { kind: "needMaxTs"; regionId: bigint; term: bigint }
  /** Ids for `count` new regions of a split of `region` (answered by "splitIds"). */
  | { kind: "askSplitIds"; requestId: number; region: RegionMeta; count: number }
  /** A merge in this worker waits for region `regionId` (another worker runs it): move it here. */
  | { kind: "needRegion"; regionId: bigint }
  /** A split proposed by this store's leader applied: the regions it made, in key order. */
  | { kind: "regionsSplit"; regions: RegionMeta[] }
  /** Regions that appeared or changed here (epoch, peers), and regions that went. */
  | { kind: "regionsChanged"; changed: Region[]; removed: bigint[] }
  /**
   * The raftstore's figures now (`WorkerStats`), every WORKER_STATS_INTERVAL_MS: counters since
   * this worker started (names ending `_total`) and gauges.
   */
  | { kind: "stats"; stats: WorkerStats }
  | { kind: "stopped" };

/** A worker's figures by metric name (without the `basalt_` prefix /metrics adds). */
export type WorkerStats = Record<string, number>;

/** Largest batch id: ids wrap before leaving the Int32 layout. */
export const MAX_BATCH_ID = 0x7fff_ffff;

/**
 * `bytes` copied into an ArrayBuffer of its own, safe to transfer: protobufjs may hand out
 * pooled slices or Node Buffers, whose memory must not be detached.
 */
export function ownBuffer(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(bytes);
}

/** A growable Int32 layout. */
export class LayoutWriter {
  #words = new Int32Array(256);
  length = 0;

  push(value: number): void {
    if (this.length === this.#words.length) {
      const grown = new Int32Array(this.#words.length * 2);
      grown.set(this.#words);
      this.#words = grown;
    }
    this.#words[this.length++] = value;
  }

  /** Overwrites word `at` (a placeholder pushed earlier). */
  set(at: number, value: number): void {
    this.#words[at] = value;
  }

  /** The words written, copied out; the writer is emptied. */
  take(): Int32Array<ArrayBuffer> {
    const out = this.#words.slice(0, this.length);
    this.length = 0;
    return out;
  }
}

/**
 * Encoded `raft_serverpb.RaftMessage`s, one after another (see the module header). Every array
 * is a view of one ArrayBuffer, `data.buffer`, which is what is transferred.
 */
export interface RaftMessageBatch {
  /** The messages' bytes. */
  data: Uint8Array;
  /** Message `i` is `data` from `ends[i - 1]` (0 for the first) to `ends[i]`. */
  ends: Uint32Array;
}

/** Raft messages a worker sends to other stores, with what the main thread needs of each. */
export interface OutboundRaftMessages extends RaftMessageBatch {
  /** Per message `i`: its region id at `2i`, the id of its receiving store at `2i + 1`. */
  ids: BigUint64Array;
  /** Per message: its `eraftpb.MessageType` (the send queue's logs name it). */
  msgTypes: Uint8Array;
}

/** Message `i` of `batch`: a view of its bytes. */
export function raftMessageAt(batch: RaftMessageBatch, i: number): Uint8Array {
  const end = batch.ends[i]!;
  return batch.data.subarray(i === 0 ? 0 : batch.ends[i - 1]!, end);
}

/** Largest ArrayBuffer the Raft messages of one post may take (Uint32 ends). */
const RAFT_POST_MAX_BYTES = 0xffff_ffff;

/**
 * `envelopes` encoded into one ArrayBuffer (see `OutboundRaftMessages`): each appended to
 * `writer` (reused between posts; emptied here), then copied out once behind the routing facts.
 */
export function packOutboundRaft(
  envelopes: readonly RaftEnvelope[],
  writer: $protobuf.Writer,
): OutboundRaftMessages {
  const count = envelopes.length;
  writer.pos = 0;
  const ends: number[] = new Array(count);
  for (let i = 0; i < count; i++) {
    appendEnvelope(writer, envelopes[i]!);
    ends[i] = writer.pos;
  }
  const dataBytes = writer.pos;
  // ids first (8-byte aligned at 0), then ends (4-byte aligned), then types and data.
  const endsAt = 16 * count;
  const typesAt = endsAt + 4 * count;
  const dataAt = typesAt + count;
  assert(dataAt + dataBytes <= RAFT_POST_MAX_BYTES, "a round's Raft messages fit one post", {
    count,
    dataBytes,
  });
  const buffer = new ArrayBuffer(dataAt + dataBytes);
  const packed: OutboundRaftMessages = {
    ids: new BigUint64Array(buffer, 0, 2 * count),
    ends: new Uint32Array(buffer, endsAt, count),
    msgTypes: new Uint8Array(buffer, typesAt, count),
    data: new Uint8Array(buffer, dataAt, dataBytes),
  };
  for (let i = 0; i < count; i++) {
    const envelope = envelopes[i]!;
    packed.ids[2 * i] = envelope.regionId;
    packed.ids[2 * i + 1] = envelope.toPeer.storeId;
    packed.ends[i] = ends[i]!;
    packed.msgTypes[i] = envelope.message.msgType;
  }
  writer.finishInto(packed.data);
  writer.pos = 0;
  return packed;
}

/** `messages` (views of received batches) copied one after another into one ArrayBuffer. */
export function packInboundRaft(messages: readonly Uint8Array[]): RaftMessageBatch {
  const count = messages.length;
  let dataBytes = 0;
  for (const message of messages) dataBytes += message.length;
  const dataAt = 4 * count;
  assert(dataAt + dataBytes <= RAFT_POST_MAX_BYTES, "a batch's Raft messages fit one post", {
    count,
    dataBytes,
  });
  const buffer = new ArrayBuffer(dataAt + dataBytes);
  const packed: RaftMessageBatch = {
    ends: new Uint32Array(buffer, 0, count),
    data: new Uint8Array(buffer, dataAt, dataBytes),
  };
  let pos = 0;
  for (let i = 0; i < count; i++) {
    const message = messages[i]!;
    packed.data.set(message, pos);
    pos += message.length;
    packed.ends[i] = pos;
  }
  return packed;
}
