/**
 * The Placement Driver's pure core (DESIGN §4.2): cluster metadata, id allocation, the TSO
 * window, GC and service safe points, operators and the schedulers, over `PdStorage`, with the
 * clock and random source as arguments. The gRPC edge (`pdpb.PD`) and the process around it
 * are thin layers over `PlacementDriver`. Several members replicate it over src/raft through
 * `PdMember` (`pd_member.ts` states the design: writes replicated, only the leader serves).
 *
 * @example
 * ```ts
 * import { EngineStorage, PlacementDriver } from "./mod.ts";
 * const pd = PlacementDriver.open({ storage: new EngineStorage({ engine }), clock, random });
 * pd.bootstrap({ store, region });
 * const answer = pd.regionHeartbeat(heartbeat); // a HeartbeatInstruction, null, or a PdError
 * pd.scheduleRound(); // on an interval
 * ```
 *
 * @module
 */
export {
  PdCluster,
  type PdClusterOptions,
  type RegionHeartbeat,
  type SplitId,
  type StorePut,
} from "./cluster.ts";
export { DEFAULT_SCHEDULE_CONFIG, type ScheduleConfig, scheduleConfig } from "./config.ts";
export { type RoundParts, type RoundResult, runScheduleRound } from "./coordinator.ts";
export { EngineStorage, type EngineStorageOptions } from "./engine_storage.ts";
export {
  isPdError,
  PD_ERROR_TYPES,
  PdError,
  type PdErrorCode,
  type PdErrorTypeName,
} from "./errors.ts";
export { IdAllocator, type IdAllocatorOptions } from "./id_allocator.ts";
export { checkMerge } from "./merge_checker.ts";
export {
  type ConfChangeType,
  describeOperator,
  describeStep,
  type HeartbeatInstruction,
  type Operator,
  type OperatorKind,
  type OperatorStatus,
  type OpStep,
} from "./operator.ts";
export { type MergeRequest, OperatorController } from "./operator_controller.ts";
export {
  type MemberStatus,
  type MemberTransport,
  PdMember,
  type PdMemberOptions,
} from "./pd_member.ts";
export {
  type AdminOperatorRequest,
  PlacementDriver,
  type PlacementDriverOptions,
} from "./placement_driver.ts";
export { RegionTree } from "./region_tree.ts";
export {
  GC_WORKER_SERVICE_ID,
  type MinServiceSafePoint,
  SafePoints,
  type ServiceSafePoint,
} from "./safe_point.ts";
export { SimCluster } from "./sim_cluster.ts";
export { SplitRecords } from "./split_records.ts";
export { PD_KEYS, type PdStorage, type PdWrite } from "./storage.ts";
export type * from "./types.ts";
