/**
 * The two `tikvpb.Tikv` methods stores send Raft messages on, as grpc-js method definitions
 * that pass bytes through untouched (the handlers decode themselves, so a malformed message is
 * their INVALID_ARGUMENT rather than grpc-js's INTERNAL), and the logger the transport writes to.
 *
 * Both are client-streaming: `BatchRaft(stream BatchRaftMessage) returns (Done)` and
 * `Raft(stream RaftMessage) returns (Done)` (proto/tikvpb.proto). grpc-js registers handlers by
 * path, so these can be added to a server beside the rest of `tikvpb.Tikv`, as a second service
 * definition or merged into the first (README.md, "Wiring").
 *
 * @module
 */
import type * as grpc from "@grpc/grpc-js";
import type { Buffer } from "node:buffer";

/** `tikvpb.Tikv/BatchRaft`'s path. */
export const BATCH_RAFT_PATH = "/tikvpb.Tikv/BatchRaft";
/** `tikvpb.Tikv/Raft`'s path. */
export const RAFT_PATH = "/tikvpb.Tikv/Raft";

/** Fields of a log line (the server's `Logger` takes these). */
export type TransportLogFields = Record<string, string | number | bigint | boolean | undefined>;

/** The logger the transport writes to (src/server/log.ts's `Logger` fits). */
export interface TransportLog {
  debug(message: string, fields?: TransportLogFields): void;
  info(message: string, fields?: TransportLogFields): void;
  warn(message: string, fields?: TransportLogFields): void;
  error(message: string, fields?: TransportLogFields): void;
}

const identity = (bytes: Buffer) => bytes;

function clientStreamMethod(path: string): grpc.MethodDefinition<Buffer, Buffer> {
  return {
    path,
    requestStream: true,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  };
}

/**
 * `BatchRaft` and `Raft` keyed by method name, the shape of `grpc.ServiceDefinition` (and of
 * `tikvServiceDefinition()`'s entries in src/server/grpc_server.ts).
 */
export function raftMethodDefinitions(): {
  BatchRaft: grpc.MethodDefinition<Buffer, Buffer>;
  Raft: grpc.MethodDefinition<Buffer, Buffer>;
} {
  return { BatchRaft: clientStreamMethod(BATCH_RAFT_PATH), Raft: clientStreamMethod(RAFT_PATH) };
}
