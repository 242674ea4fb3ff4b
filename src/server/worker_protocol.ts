/**
 * Messages between the main thread (gRPC, routing) and the region-group workers that run
 * commands (DESIGN.md §2). Request and response bodies travel as protobuf bytes, several packed
 * into one transferred buffer, so a BatchCommands message costs one postMessage each way per
 * worker whatever its size.
 */
import type { SharedEngineHandle } from "../engine/rocksdb_engine.ts";
import type { LogLevel } from "./config.ts";
import type { LogFields } from "./log.ts";
import type { Outcome } from "./metrics.ts";

/** Start-up settings of one worker. */
export interface WorkerSettings {
  groupId: number;
  /** How many groups there are: the worker serves the regions with `id % groups === groupId`. */
  groups: number;
  engine: SharedEngineHandle;
  syncLog: boolean;
  /** A timestamp at least as large as any read served before: seeds max_ts. */
  latestTs: bigint;
  logLevel: LogLevel;
  /** Period of the expired raw key sweep; 0 disables it. */
  ttlCheckPollIntervalMs: number;
}

/** Several byte strings in one buffer: part `i` is `data[offsets[i], offsets[i + 1])`. */
export interface Packed {
  data: Uint8Array;
  offsets: number[];
}

export type ToWorker =
  | { kind: "init"; settings: WorkerSettings }
  | { kind: "unary"; id: number; name: string; bytes: Uint8Array }
  | { kind: "batch"; id: number; names: string[]; bodies: Packed }
  /** The GC safe point advanced: collect old versions of the worker's regions. */
  | { kind: "gc"; safePoint: bigint }
  | { kind: "stop" };

/** Why a request got no response message. */
export type FailureCode = "invalid_argument" | "internal";

export type FromWorker =
  | { kind: "ready" }
  | { kind: "unary"; id: number; bytes: Uint8Array; outcome: Outcome }
  | { kind: "unaryFailed"; id: number; code: FailureCode; details: string }
  /**
   * Some sub-requests of batch `id` answered: `indexes` into the batch, each with an encoded
   * `BatchCommandsResponse.Response`. `done` on the last part.
   */
  | {
    kind: "batch";
    id: number;
    indexes: number[];
    responses: Packed;
    outcomes: Outcome[];
    done: boolean;
  }
  | { kind: "batchFailed"; id: number; code: FailureCode; details: string }
  | { kind: "log"; level: LogLevel; message: string; fields: LogFields }
  | { kind: "stopped" };

/** Packs `parts` into one buffer (copied, so it can be transferred). */
export function pack(parts: readonly Uint8Array[]): Packed {
  const offsets = [0];
  let size = 0;
  for (const part of parts) offsets.push(size += part.length);
  const data = new Uint8Array(size);
  parts.forEach((part, i) => data.set(part, offsets[i]!));
  return { data, offsets };
}

/** The parts of a packed buffer, as views. */
export function unpack(packed: Packed): Uint8Array[] {
  const parts: Uint8Array[] = [];
  for (let i = 0; i + 1 < packed.offsets.length; i++) {
    parts.push(packed.data.subarray(packed.offsets[i]!, packed.offsets[i + 1]!));
  }
  return parts;
}

/**
 * `bytes` copied into an ArrayBuffer of its own, safe to transfer: protobufjs may hand out
 * pooled slices or Node Buffers, whose memory must not be detached.
 */
export function ownBuffer(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(bytes);
}
