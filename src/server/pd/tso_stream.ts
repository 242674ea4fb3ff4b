/**
 * The Tso bidi stream (PD's `GrpcServer.Tso`): each `TsoRequest{count}` is answered, in order,
 * by a `TsoResponse{count, timestamp}` whose timestamp is the LAST of `count` fresh consecutive
 * timestamps. A request naming another cluster ends the stream with FAILED_PRECONDITION, a count
 * of 0 or one the oracle cannot grant with UNKNOWN ("generate timestamp failed, …"), a malformed
 * message with INVALID_ARGUMENT. The client ending its side ends ours.
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { pdpb } from "../../../proto/mod.ts";
import { TsoError } from "../../tso/mod.ts";
import {
  clusterMismatch,
  type DrainableStream,
  okHeader,
  type PdDependencies,
} from "./dependencies.ts";

/**
 * Ends the stream with a status. Emitting "error" is what makes grpc-js send the status as the
 * trailer (its handler records it and ends the stream); `destroy(error)` would only tear the
 * stream down, and the client would wait for a status that never comes.
 */
function fail(call: grpc.ServerDuplexStream<Buffer, Buffer>, code: grpc.status, details: string) {
  if (call.writableEnded || call.destroyed) return;
  call.emit("error", Object.assign(new Error(details), { code, details }));
}

/** Answers one TsoRequest, or ends the stream with the error PD would return. */
function answer(
  call: grpc.ServerDuplexStream<Buffer, Buffer>,
  deps: PdDependencies,
  bytes: Buffer,
): void {
  let request: pdpb.TsoRequest;
  try {
    request = pdpb.TsoRequest.decode(bytes);
  } catch (error) {
    fail(call, grpc.status.INVALID_ARGUMENT, `malformed TsoRequest: ${(error as Error).message}`);
    return;
  }
  const clusterId = request.header?.clusterId ?? 0n;
  if (clusterId !== deps.pd.clusterId) {
    const status = clusterMismatch(deps, clusterId);
    fail(call, status.code, status.details);
    return;
  }
  if (request.count === 0) {
    fail(call, grpc.status.UNKNOWN, "generate timestamp failed, tso count should be positive");
    return;
  }
  let batch;
  try {
    batch = deps.pd.oracle.next(request.count);
  } catch (error) {
    if (!(error instanceof TsoError)) deps.log.error("TSO failed", { error: String(error) });
    fail(call, grpc.status.UNKNOWN, `generate timestamp failed, ${(error as Error).message}`);
    return;
  }
  const response = pdpb.TsoResponse.encode({
    header: okHeader(deps),
    count: request.count,
    timestamp: { physical: batch.physicalMs, logical: batch.logical, suffixBits: 0 },
  }).finish();
  if (!call.writableEnded && !call.destroyed) call.write(Buffer.from(response));
}

/** Serves one Tso stream until either side ends it. */
export function serveTsoStream(
  call: grpc.ServerDuplexStream<Buffer, Buffer>,
  deps: PdDependencies,
): DrainableStream {
  const stream: DrainableStream = {
    drain() {
      if (!call.writableEnded && !call.destroyed) call.end();
    },
  };
  deps.openStreams?.add(stream);
  call.on("data", (bytes: Buffer) => {
    // After a failure the stream is ending; later requests get no answer.
    if (!call.writableEnded && !call.destroyed) answer(call, deps, bytes);
  });
  call.on("end", () => stream.drain());
  call.on("close", () => deps.openStreams?.delete(stream));
  call.on("error", (error) => deps.log.debug("Tso stream error", { error: String(error) }));
  return stream;
}
