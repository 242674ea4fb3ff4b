/**
 * The embedded Placement Driver of a standalone store: the one PD (`src/pd`, its gRPC service
 * in `src/pd/server/`) over durable state in `<data-dir>/pd/`, serving `pdpb.PD` on the store's
 * gRPC port.
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
export type { DrainableStream, PdDependencies, PdLog } from "./dependencies.ts";
export { META_FILE_FORMAT, RecordFileStorage } from "./file_storage.ts";
export {
  pdHandlers,
  pdServiceDefinition,
  STANDALONE_PD_METHODS,
  standaloneServiceDeps,
} from "./service.ts";
export {
  openStandalonePd,
  PdDataError,
  type StandalonePd,
  type StandalonePdOptions,
} from "./standalone.ts";
export {
  type PdView,
  STANDALONE_REPORTED_VERSION,
  standaloneView,
  type StandaloneViewOptions,
} from "./view.ts";
