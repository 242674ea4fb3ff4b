/**
 * gRPC method definitions that pass bytes through untouched, for the client's fake servers
 * (`fake_cluster.ts`, the fake PD of `tso_test.ts`): they decode and encode the protobuf
 * messages themselves, with the generated codecs.
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
