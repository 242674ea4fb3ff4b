/**
 * The RegionHeartbeat bidi stream (PD's `GrpcServer.RegionHeartbeat`): a store's leaders send
 * their regions' heartbeats on one stream; PD answers a heartbeat only when it has something to
 * say: the current step of the region's operator, or an error header (a stale heartbeat,
 * NOT_BOOTSTRAPPED) — the stream stays open after an error header, as in PD. A request naming
 * another cluster ends the stream with FAILED_PRECONDITION, a malformed one with
 * INVALID_ARGUMENT.
 *
 * A heartbeat is answered without waiting for the commit of the region writes it made: those
 * are soft (`src/pd/storage.ts`); a replicated leader proposes them in batches
 * (`src/pd/pd_member.ts`, design 6). It still waits for hard writes (an operator's step may
 * carry a peer id whose allocation must be durable first) and, under back-pressure, for the
 * leader's log to catch up. A single member's `persist` syncs every write, soft ones too.
 *
 * Operators added between heartbeats (a scheduling round, `ctl operator add`) are pushed at
 * once on the stream of the store holding the region's leader (`HeartbeatStreams.push`), as
 * PD's heartbeat streams do; the next heartbeat would carry them otherwise.
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { pdpb } from "../../../proto/mod.ts";
import { PD_HEARTBEAT_STREAMS_MAX } from "../../constants.ts";
import { PdError } from "../errors.ts";
import type { HeartbeatInstruction } from "../operator.ts";
import { instructionToProto, MalformedRequest, regionHeartbeatFromProto } from "./convert.ts";
import {
  admitStreamRequest,
  type DrainableStream,
  errorHeader,
  failStream,
  notServingStatus,
  okHeader,
  type PdServiceDeps,
  persisted,
  serveInOrder,
  streamOpen,
} from "./dependencies.ts";

type Call = grpc.ServerDuplexStream<Buffer, Buffer>;

/** The latest heartbeat stream of each store, for pushing instructions to region leaders. */
export class HeartbeatStreams {
  readonly #byStore = new Map<bigint, Call>();

  /** `call` carries the heartbeats of leaders on `storeId` from now on. */
  bind(storeId: bigint, call: Call): void {
    if (this.#byStore.get(storeId) === call) return;
    this.#byStore.delete(storeId);
    if (this.#byStore.size >= PD_HEARTBEAT_STREAMS_MAX) return; // the next heartbeat carries it
    this.#byStore.set(storeId, call);
  }

  /** Forgets `call` (it ended). */
  unbind(call: Call): void {
    for (const [storeId, bound] of this.#byStore) if (bound === call) this.#byStore.delete(storeId);
  }

  /** Sends the region's current instruction to its leader's store, if both are known. */
  push(deps: PdServiceDeps, regionId: bigint): boolean {
    if (notServingStatus(deps) !== null) return false;
    const region = deps.driver.cluster.regions.getById(regionId);
    if (region === null || region.leader === null) return false;
    const call = this.#byStore.get(region.leader.storeId);
    const instruction = deps.driver.instructionFor(regionId);
    if (call === undefined || instruction === null || !streamOpen(call)) return false;
    send(call, deps, instruction);
    return true;
  }

  get size(): number {
    return this.#byStore.size;
  }
}

function send(call: Call, deps: PdServiceDeps, instruction: HeartbeatInstruction): void {
  deps.metrics?.heartbeat("operator_sent");
  write(call, { header: okHeader(deps), ...instructionToProto(instruction) });
}

function write(call: Call, response: pdpb.RegionHeartbeatResponse.$Properties): void {
  if (streamOpen(call)) {
    call.write(Buffer.from(pdpb.RegionHeartbeatResponse.encode(response).finish()));
  }
}

/** Handles one heartbeat; throws `MalformedRequest` for one that cannot be understood. */
async function handle(
  call: Call,
  deps: PdServiceDeps,
  bytes: Buffer,
): Promise<void> {
  let request: pdpb.RegionHeartbeatRequest;
  let heartbeat;
  try {
    request = pdpb.RegionHeartbeatRequest.decode(bytes);
    heartbeat = regionHeartbeatFromProto(request);
  } catch (error) {
    deps.metrics?.request("RegionHeartbeat", "invalid_argument");
    const details = `malformed RegionHeartbeatRequest: ${(error as Error).message}`;
    return failStream(call, grpc.status.INVALID_ARGUMENT, details);
  }
  if (!admitStreamRequest(deps, call, "RegionHeartbeat", request.header)) return;
  if (heartbeat.leader !== null) deps.heartbeatStreams?.bind(heartbeat.leader.storeId, call);
  const answer = deps.driver.regionHeartbeat(heartbeat);
  const lost = await persisted(deps);
  if (lost !== null) {
    deps.metrics?.request("RegionHeartbeat", "not_leader");
    return failStream(call, grpc.status.UNAVAILABLE, lost.message);
  }
  if (answer instanceof PdError) {
    deps.metrics?.request("RegionHeartbeat", "error_header");
    deps.metrics?.heartbeat(answer.code === "StaleRegion" ? "stale" : "refused");
    deps.log.debug("region heartbeat refused", {
      regionId: heartbeat.region.id,
      error: answer.toString(),
    });
    return write(call, { header: errorHeader(deps, answer) });
  }
  deps.metrics?.request("RegionHeartbeat", "ok");
  deps.metrics?.heartbeat("kept");
  if (answer !== null) send(call, deps, answer);
}

/** Serves one RegionHeartbeat stream until either side ends it. */
export function serveHeartbeatStream(
  call: Call,
  deps: PdServiceDeps,
): DrainableStream {
  return serveInOrder(call, deps, {
    name: "RegionHeartbeat",
    handle: (bytes) => handle(call, deps, bytes),
    failed(error) {
      if (error instanceof MalformedRequest) {
        return failStream(call, grpc.status.INVALID_ARGUMENT, error.message);
      }
      deps.log.error("region heartbeat failed", { error: String(error) });
      failStream(call, grpc.status.UNKNOWN, `region heartbeat failed: ${String(error)}`);
    },
    closed: () => deps.heartbeatStreams?.unbind(call),
  });
}
