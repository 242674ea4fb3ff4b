/**
 * What the `pdpb.PD` handlers share, in the PD process and in a standalone store alike: the
 * pure core (`PlacementDriver`), how this member describes itself, a logger, the durability
 * barrier awaited before a request that wrote is answered, request counters, and the open
 * streams shutdown must end. Also the response headers PD builds
 * (`pkg/utils/grpcutil/cluster.go`).
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { isAssertionError } from "../../util/assert.ts";
import { pdpb } from "../../../proto/mod.ts";
import type { LogFields } from "../../tso/mod.ts";
import { PD_STREAM_TURN_MAX_MS } from "../../constants.ts";
import { PD_ERROR_TYPES, type PdError } from "../errors.ts";
import type { PlacementDriver } from "../placement_driver.ts";
import type { HeartbeatStreams } from "./heartbeat_stream.ts";
import type { PdMetrics } from "./metrics.ts";

/** The logger the PD service writes to (the server's `Logger` fits). */
export interface PdLog {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

/** A served stream the server can end at shutdown. */
export interface DrainableStream {
  drain(): void;
}

/** What the PD handlers need. */
export interface PdServiceDeps {
  /**
   * The core. In a replicated PD it exists only while this member serves: every handler
   * asks `notServing` first, and reads `driver` only when that answered `null`.
   */
  driver: PlacementDriver;
  /** This member as GetMembers reports it, now (its URLs may be known only after binding). */
  member: () => pdpb.Member.$Properties;
  /**
   * A replicated PD's members and leader, as GetMembers reports them on every member; absent
   * for a single member (it is its own leader).
   */
  members?: () => { members: pdpb.Member.$Properties[]; leader: pdpb.Member.$Properties | null };
  /** A replicated PD: the cluster id this member knows (0 before the first leader made it). */
  clusterId?: () => bigint;
  /**
   * A replicated PD: `null` while this member serves, else the NotLeader refusal, which the
   * edge answers with UNAVAILABLE "not leader …" (PD's `ErrNotLeader`); clients then call
   * GetMembers and move to the leader.
   */
  notServing?: () => PdError | null;
  /**
   * A replicated PD: `null` while this member holds its leader lease (`PdMember.leaseLapsed`),
   * checked as a timestamp leaves: a leader cut off from the others may be deposed without
   * knowing it, and its window's timestamps must not follow a new leader's.
   */
  leaseLapsed?: () => PdError | null;
  log: PdLog;
  /**
   * Makes every write so far durable (one fsync; in a replicated PD, committed by the group,
   * soft region writes aside: `PdMember.barrier()`); awaited before answering a request that
   * wrote, as PD answers once etcd has committed. `null` when nothing is outstanding. A
   * replicated PD's promise may settle with NotLeader: the member lost leadership before the
   * writes committed.
   */
  persist?: () => Promise<PdError | null | void> | null;
  metrics?: PdMetrics;
  /** Called before every request (a standalone store keeps its own store's address fresh). */
  refresh?: () => void;
  /** Where operators are pushed to region leaders; none: they wait for the next heartbeat. */
  heartbeatStreams?: HeartbeatStreams;
  /** Open streams are added here while they last, so shutdown can `drain()` them. */
  openStreams?: Set<DrainableStream>;
}

/** The cluster id responses carry. */
export function clusterIdOf(deps: PdServiceDeps): bigint {
  return deps.clusterId?.() ?? deps.driver.clusterId;
}

/** The refusal of a member that does not serve now, as PD answers it; `null` when it serves. */
export function notServingStatus(deps: PdServiceDeps): grpc.StatusObject | null {
  const refusal = deps.notServing?.() ?? null;
  if (refusal === null) return null;
  return notLeaderStatus(refusal);
}

/** UNAVAILABLE with the NotLeader refusal's message (it begins "not leader"). */
export function notLeaderStatus(refusal: PdError): grpc.StatusObject {
  return {
    code: grpc.status.UNAVAILABLE,
    details: refusal.message,
    metadata: new grpc.Metadata(),
  };
}

/** The header of a successful response. */
export function okHeader(deps: PdServiceDeps): pdpb.ResponseHeader.$Properties {
  return { clusterId: clusterIdOf(deps) };
}

/** The header of a response carrying an expected failure of the core. */
export function errorHeader(
  deps: PdServiceDeps,
  error: PdError,
): pdpb.ResponseHeader.$Properties {
  const type = pdpb.ErrorType[PD_ERROR_TYPES[error.code]];
  return { clusterId: clusterIdOf(deps), error: { type, message: error.message } };
}

/** PD's error for a request naming another cluster (a gRPC status, not a header). */
export function clusterMismatch(deps: PdServiceDeps, got: bigint): grpc.StatusObject {
  const details = `mismatch cluster id, need ${clusterIdOf(deps)} but got ${got}`;
  return { code: grpc.status.FAILED_PRECONDITION, details, metadata: new grpc.Metadata() };
}

/**
 * Awaits the durability barrier when the request wrote; answers NotLeader when a replicated
 * member lost leadership before the writes committed (the answer must not leave then).
 */
export async function persisted(deps: PdServiceDeps): Promise<PdError | null> {
  const pending = deps.persist?.() ?? null;
  if (pending === null) return null;
  return (await pending) ?? null;
}

/**
 * Ends a server stream with a status. Emitting "error" is what makes grpc-js send the status
 * as the trailer (its handler records it and ends the stream); `destroy(error)` would only tear
 * the stream down, and the client would wait for a status that never comes.
 */
export function failStream(
  call: grpc.ServerDuplexStream<Buffer, Buffer>,
  code: grpc.status,
  details: string,
): void {
  if (call.writableEnded || call.destroyed) return;
  call.emit("error", Object.assign(new Error(details), { code, details }));
}

/**
 * The checks every request of a stream passes once decoded: this member serves (else
 * UNAVAILABLE "not leader") and the request names this cluster (else FAILED_PRECONDITION). When
 * one fails, the stream is failed with it and the outcome counted under `rpc`; returns whether
 * the request may go on.
 */
export function admitStreamRequest(
  deps: PdServiceDeps,
  call: grpc.ServerDuplexStream<Buffer, Buffer>,
  rpc: string,
  header: pdpb.RequestHeader.$Properties | null | undefined,
): boolean {
  const refused = notServingStatus(deps);
  if (refused !== null) {
    deps.metrics?.request(rpc, "not_leader");
    failStream(call, refused.code, refused.details);
    return false;
  }
  const clusterId = header?.clusterId ?? 0n;
  if (clusterId !== deps.driver.clusterId) {
    deps.metrics?.request(rpc, "cluster_mismatch");
    const status = clusterMismatch(deps, clusterId);
    failStream(call, status.code, status.details);
    return false;
  }
  return true;
}

/** Whether a server stream can still be written. */
export function streamOpen(call: grpc.ServerDuplexStream<Buffer, Buffer>): boolean {
  return !call.writableEnded && !call.destroyed;
}

/**
 * Serves one bidirectional stream whose requests are answered one at a time, in order (Tso,
 * RegionHeartbeat): `handle` runs each message after the previous one settled; a failure that
 * is not a bug goes to `failed` (which ends the stream; later messages get no answer); a failed
 * assertion is a bug and ends the process; the client's end drains the stream. Handlers that
 * await nothing (a heartbeat whose region writes are soft) run back to back as microtasks, so
 * once they have run `PD_STREAM_TURN_MAX_MS` in one turn of the event loop, the next waits for
 * the next turn (`loopTurn`): the Raft ticks and messages of a replicated PD run in between.
 */
export function serveInOrder(
  call: grpc.ServerDuplexStream<Buffer, Buffer>,
  deps: PdServiceDeps,
  options: {
    name: string;
    handle(bytes: Buffer): Promise<void> | void;
    failed(error: unknown): void;
    closed?(): void;
  },
): DrainableStream {
  const stream: DrainableStream = {
    drain() {
      if (streamOpen(call)) call.end();
    },
  };
  deps.openStreams?.add(stream);
  let previous: Promise<void> = Promise.resolve();
  call.on("data", (bytes: Buffer) => {
    deps.refresh?.();
    previous = previous.then(loopTurn).then(() =>
      streamOpen(call) ? options.handle(bytes) : undefined
    ).catch(
      (error) => {
        if (isAssertionError(error)) throw error; // a bug ends the process, never an answer
        options.failed(error);
      },
    );
  });
  call.on("end", () => {
    previous = previous.then(() => stream.drain());
  });
  call.on("close", () => {
    deps.openStreams?.delete(stream);
    options.closed?.();
  });
  call.on(
    "error",
    (error) => deps.log.debug(`${options.name} stream error`, { error: String(error) }),
  );
  return stream;
}

/** When the current turn of the event loop began running stream handlers; null between turns. */
let turnStartedMs: number | null = null;

/**
 * Nothing while the stream handlers of this turn of the event loop have run less than
 * `PD_STREAM_TURN_MAX_MS`; else a promise settled in a later turn, after the timers and I/O
 * due by then. Shared by every stream of the process.
 */
export function loopTurn(): Promise<void> | undefined {
  const nowMs = performance.now();
  if (turnStartedMs === null) {
    turnStartedMs = nowMs;
    setTimeout(() => turnStartedMs = null, 0); // runs once this turn's microtasks are done
    return undefined;
  }
  if (nowMs - turnStartedMs < PD_STREAM_TURN_MAX_MS) return undefined;
  return new Promise((resolve) => setTimeout(resolve, 0));
}
