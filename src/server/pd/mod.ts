/**
 * The embedded Placement Driver of a standalone store: the `pdpb.PD` gRPC service a TiKV client
 * needs before it can work (members and cluster id, TSO, region and store routing, ids, GC safe
 * point), over durable state in `<data-dir>/pd/`.
 *
 * @example
 * ```ts
 * const pd = openStandalonePd(dataDir, { log });
 * server.addService(
 *   pdServiceDefinition(),
 *   pdHandlers({ pd, view: () => standaloneView({ addr, statusAddr }), log, openStreams }),
 * );
 * ```
 *
 * @module
 */
export {
  CLUSTER_FILE_FORMAT,
  type ClusterIdentity,
  loadClusterIdentity,
  newClusterIdentity,
  saveClusterIdentity,
} from "./cluster_identity.ts";
export * from "./constants.ts";
export {
  clusterMismatch,
  type DrainableStream,
  errorHeader,
  okHeader,
  type PdDependencies,
  type PdLog,
  type PdState,
} from "./dependencies.ts";
export { GcSafePoint } from "./gc_safe_point.ts";
export { IdAllocator, type IdAllocatorOptions, IdAllocError } from "./id_allocator.ts";
export {
  prevRegion,
  regionById,
  regionByKey,
  scanRegions,
  sortedByStart,
} from "./region_lookup.ts";
export { pdHandlers, pdServiceDefinition } from "./service.ts";
export {
  openStandalonePd,
  PdDataError,
  type StandalonePd,
  type StandalonePdOptions,
} from "./standalone.ts";
export { serveTsoStream } from "./tso_stream.ts";
export {
  type PdView,
  type RegionRoute,
  STANDALONE_REPORTED_VERSION,
  standaloneView,
  type StandaloneViewOptions,
} from "./view.ts";
