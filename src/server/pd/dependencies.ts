/**
 * What the PD service's handlers share: their dependencies (the PD's durable state, the cluster
 * view, a logger) and the response headers PD builds (`pkg/utils/grpcutil/cluster.go`).
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import type { pdpb } from "../../../proto/mod.ts";
import type { LogFields, TimestampOracle } from "../../tso/mod.ts";
import type { GcSafePoint } from "./gc_safe_point.ts";
import type { IdAllocator } from "./id_allocator.ts";
import type { PdView } from "./view.ts";

/** The logger the PD service writes to (the server's `Logger` fits). */
export interface PdLog {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

/** The PD's durable state: identity, TSO, ids, GC safe point. */
export interface PdState {
  clusterId: bigint;
  memberId: bigint;
  /** The member's name in GetMembers. */
  memberName: string;
  oracle: TimestampOracle;
  ids: IdAllocator;
  safePoint: GcSafePoint;
}

/** A served stream the server can end at shutdown. */
export interface DrainableStream {
  drain(): void;
}

/** What the PD handlers need. */
export interface PdDependencies {
  pd: PdState;
  /** The cluster as it is now; called on every request. */
  view: () => PdView;
  log: PdLog;
  /** Open Tso streams are added here while they last, so shutdown can `drain()` them. */
  openStreams?: Set<DrainableStream>;
}

/** The header of a successful response. */
export function okHeader(deps: PdDependencies): pdpb.ResponseHeader.$Properties {
  return { clusterId: deps.pd.clusterId };
}

/** The header of a response carrying an expected failure. */
export function errorHeader(
  deps: PdDependencies,
  type: pdpb.ErrorType,
  message: string,
): pdpb.ResponseHeader.$Properties {
  return { clusterId: deps.pd.clusterId, error: { type, message } };
}

/** PD's error for a request naming another cluster (a gRPC status, not a header). */
export function clusterMismatch(deps: PdDependencies, got: bigint): grpc.StatusObject {
  const details = `mismatch cluster id, need ${deps.pd.clusterId} but got ${got}`;
  return { code: grpc.status.FAILED_PRECONDITION, details, metadata: new grpc.Metadata() };
}
