/**
 * PD's expected failures as values with a stable code, never thrown: the pure core returns a
 * `PdError` where PD answers with an error header, and the gRPC edge turns it into one with
 * `PD_ERROR_TYPES[code]` (the name of a `pdpb.ErrorType` value). `ClusterIdMismatch` alone is a
 * gRPC status at the edge (FAILED_PRECONDITION), as PD's `validateRequest` returns it.
 *
 * @module
 */

/** The stable codes of PD's expected failures. */
export type PdErrorCode =
  | "NotBootstrapped"
  | "AlreadyBootstrapped"
  | "ClusterIdMismatch"
  | "RegionNotFound"
  | "StoreNotFound"
  | "StoreTombstone"
  | "StaleRegion"
  | "StaleEpoch"
  | "InvalidRequest"
  | "LimitExceeded"
  | "NotEnoughStores"
  | "DuplicatedStoreAddress"
  /** A replicated PD member that does not lead (or lost leadership before a write committed). */
  | "NotLeader";

/** `pdpb.ErrorType` names. */
export type PdErrorTypeName =
  | "UNKNOWN"
  | "NOT_BOOTSTRAPPED"
  | "STORE_TOMBSTONE"
  | "ALREADY_BOOTSTRAPPED"
  | "REGION_NOT_FOUND"
  | "INVALID_VALUE";

/** Which `pdpb.ErrorType` each code travels as (PD's `server/grpc_service.go` choices). */
export const PD_ERROR_TYPES: Readonly<Record<PdErrorCode, PdErrorTypeName>> = {
  NotBootstrapped: "NOT_BOOTSTRAPPED",
  AlreadyBootstrapped: "ALREADY_BOOTSTRAPPED",
  ClusterIdMismatch: "UNKNOWN",
  RegionNotFound: "REGION_NOT_FOUND",
  // PD answers an unknown store with UNKNOWN "invalid store ID n, not found".
  StoreNotFound: "UNKNOWN",
  StoreTombstone: "STORE_TOMBSTONE",
  StaleRegion: "UNKNOWN",
  StaleEpoch: "UNKNOWN",
  InvalidRequest: "UNKNOWN",
  LimitExceeded: "UNKNOWN",
  NotEnoughStores: "UNKNOWN",
  DuplicatedStoreAddress: "UNKNOWN",
  // Never sent in a header: the edge answers it with gRPC UNAVAILABLE "not leader", as PD does.
  NotLeader: "UNKNOWN",
};

/** An expected failure: a stable code and a message naming the thing. Returned, not thrown. */
export class PdError {
  constructor(readonly code: PdErrorCode, readonly message: string) {}

  toString(): string {
    return `${this.code}: ${this.message}`;
  }
}

/** Whether `value` is an expected failure. */
export function isPdError(value: unknown): value is PdError {
  return value instanceof PdError;
}
