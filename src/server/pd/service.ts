/**
 * The standalone store's `pdpb.PD` face: the one PD service (`src/pd/server/service.ts`) over
 * the embedded PD (`standalone.ts`), answering as the PD process does, for the calls a client
 * makes (`STANDALONE_PD_METHODS`). The store is this PD's
 * only member (named `basalt-store-1`, at the store's gRPC address) and its only store; before
 * each request the store's current addresses are registered (`StandalonePd.register`), so a
 * store started on port 0 reports the ports it bound. Its files are written durably before a
 * write returns, so no durability barrier is awaited.
 *
 * @module
 */
import type * as grpc from "@grpc/grpc-js";
import type { PdServiceDeps } from "../../pd/server/dependencies.ts";
import { pdServiceDefinition as definitionOf, pdServiceHandlers } from "../../pd/server/service.ts";
import type { PdDependencies } from "./dependencies.ts";

/**
 * The calls a standalone store's PD face answers: those of a client (members, TSO, ids,
 * routing, stores, GC and service safe points, operators). The calls a store makes of its PD
 * (PutStore, StoreHeartbeat, RegionHeartbeat, AskBatchSplit, ReportBatchSplit) and
 * ScatterRegion get UNIMPLEMENTED, as before: the standalone store is its PD's only store and
 * registers itself in-process, and no other process may reshape its one region.
 */
export const STANDALONE_PD_METHODS: readonly string[] = [
  "GetMembers",
  "GetClusterInfo",
  "Tso",
  "IsBootstrapped",
  "Bootstrap",
  "AllocID",
  "GetStore",
  "GetAllStores",
  "GetRegion",
  "GetPrevRegion",
  "GetRegionByID",
  "ScanRegions",
  "GetGCSafePoint",
  "UpdateGCSafePoint",
  "UpdateServiceGCSafePoint",
  "GetOperator",
];

/** The standalone store's `pdpb.PD` service definition (`STANDALONE_PD_METHODS`). */
export function pdServiceDefinition(): grpc.ServiceDefinition {
  return definitionOf(STANDALONE_PD_METHODS);
}

/** The service's dependencies for a standalone store. */
export function standaloneServiceDeps(deps: PdDependencies): PdServiceDeps {
  return {
    driver: deps.pd.driver,
    member: () => {
      const view = deps.view();
      return {
        name: deps.pd.memberName,
        memberId: deps.pd.memberId,
        clientUrls: view.clientUrls,
        binaryVersion: view.version,
      };
    },
    log: deps.log,
    refresh: () => deps.pd.register(deps.view()),
    openStreams: deps.openStreams,
  };
}

/**
 * The handlers of `pdServiceDefinition()` for a standalone store.
 *
 * @example
 * ```ts
 * server.addService(pdServiceDefinition(), pdHandlers({ pd, view: () => standaloneView({ addr, statusAddr }), log }));
 * ```
 */
export function pdHandlers(deps: PdDependencies): grpc.UntypedServiceImplementation {
  return pdServiceHandlers(standaloneServiceDeps(deps), STANDALONE_PD_METHODS);
}
