/**
 * gRPC method definitions that pass bytes through untouched: the store's services and the
 * client's fake servers decode and encode protobuf messages themselves (a malformed request
 * is then the handler's INVALID_ARGUMENT, not grpc-js's INTERNAL).
 */
import type * as grpc from "@grpc/grpc-js";
import type { Buffer } from "node:buffer";

const identity = (bytes: Buffer) => bytes;

/**
 * The definition of the method at `path` (`/package.Service/Method`), unary or, with
 * `stream`, bidirectionally streaming, with bytes in and out.
 */
export function bytesMethod(path: string, stream = false): grpc.MethodDefinition<Buffer, Buffer> {
  return {
    path,
    requestStream: stream,
    responseStream: stream,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  };
}
