/**
 * The Tso bidi stream (PD's `GrpcServer.Tso`): each `TsoRequest{count}` is answered, in order,
 * by a `TsoResponse{count, timestamp}` whose timestamp is the LAST of `count` fresh consecutive
 * timestamps. A request naming another cluster ends the stream with FAILED_PRECONDITION, a count
 * of 0 or one the oracle cannot grant with UNKNOWN ("generate timestamp failed, …"), a malformed
 * message with INVALID_ARGUMENT. The client ending its side ends ours.
 *
 * A request whose timestamps moved the TSO window is answered only after the window's save is
 * durable (`persist`); answers stay in request order because each waits for the one before.
 * In a replicated PD a member that does not serve ends the stream with UNAVAILABLE "not
 * leader: …", and so does a leader that lost leadership before the window committed: the
 * client reconnects to the leader, whose timestamps lie above every window saved before.
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { pdpb } from "../../../proto/mod.ts";
import { PdError } from "../errors.ts";
import {
  admitStreamRequest,
  type DrainableStream,
  failStream,
  okHeader,
  type PdServiceDeps,
  persisted,
  serveInOrder,
  streamOpen,
} from "./dependencies.ts";

/** Answers one TsoRequest, or ends the stream with the error PD would return. */
async function answer(
  call: grpc.ServerDuplexStream<Buffer, Buffer>,
  deps: PdServiceDeps,
  bytes: Buffer,
): Promise<void> {
  let request: pdpb.TsoRequest;
  try {
    request = pdpb.TsoRequest.decode(bytes);
  } catch (error) {
    deps.metrics?.request("Tso", "invalid_argument");
    const details = `malformed TsoRequest: ${(error as Error).message}`;
    return failStream(call, grpc.status.INVALID_ARGUMENT, details);
  }
  if (!admitStreamRequest(deps, call, "Tso", request.header)) return;
  if (request.count === 0) {
    deps.metrics?.request("Tso", "failed");
    const details = "generate timestamp failed, tso count should be positive";
    return failStream(call, grpc.status.UNKNOWN, details);
  }
  const batch = deps.driver.tso(request.count);
  if (batch instanceof PdError) {
    deps.metrics?.request("Tso", "failed");
    return failStream(call, grpc.status.UNKNOWN, `generate timestamp failed, ${batch.message}`);
  }
  // The window these timestamps lie under may never have committed, or (the lease lapsed) a
  // new leader may have handed out later ones already: either way they must not leave.
  const lost = await persisted(deps) ?? deps.leaseLapsed?.() ?? null;
  if (lost !== null) {
    deps.metrics?.request("Tso", "not_leader");
    return failStream(call, grpc.status.UNAVAILABLE, lost.message);
  }
  deps.metrics?.request("Tso", "ok");
  deps.metrics?.timestamps(request.count);
  const response = pdpb.TsoResponse.encode({
    header: okHeader(deps),
    count: request.count,
    timestamp: { physical: batch.physicalMs, logical: batch.logical, suffixBits: 0 },
  }).finish();
  if (streamOpen(call)) call.write(Buffer.from(response));
}

/** Serves one Tso stream until either side ends it. */
export function serveTsoStream(
  call: grpc.ServerDuplexStream<Buffer, Buffer>,
  deps: PdServiceDeps,
): DrainableStream {
  return serveInOrder(call, deps, {
    name: "Tso",
    handle: (bytes) => answer(call, deps, bytes),
    failed(error) {
      deps.log.error("TSO failed", { error: String(error) });
      failStream(call, grpc.status.UNKNOWN, `generate timestamp failed, ${String(error)}`);
    },
  });
}
