/**
 * The settings an operator may change in PD's scheduling (PD's `schedule` and `replication`
 * sections), with their defaults from `src/constants.ts`. Tests shrink the times (a store is
 * Down after seconds, not half an hour).
 *
 * @module
 */
import {
  DEFAULT_PD_ENABLE_ONE_WAY_MERGE,
  DEFAULT_PD_LEADER_SCHEDULE_LIMIT,
  DEFAULT_PD_MAX_MERGE_REGION_KEYS,
  DEFAULT_PD_MAX_MERGE_REGION_SIZE_MB,
  DEFAULT_PD_MAX_REPLICAS,
  DEFAULT_PD_MAX_STORE_DOWN_TIME_MS,
  DEFAULT_PD_MERGE_SCHEDULE_LIMIT,
  DEFAULT_PD_REGION_SCHEDULE_LIMIT,
  DEFAULT_PD_REPLICA_SCHEDULE_LIMIT,
  DEFAULT_PD_SPLIT_MERGE_INTERVAL_MS,
  DEFAULT_PD_STORE_OPERATOR_LIMIT,
  PD_STORE_DISCONNECTED_MS,
} from "../constants.ts";

/** PD's scheduling settings. */
export interface ScheduleConfig {
  /** `max-replicas`: voters each region should have. */
  maxReplicas: number;
  /** `max-store-down-time`: silence after which a store is Down and its replicas move. */
  maxStoreDownTimeMs: number;
  /** `leader-schedule-limit`: balance-leader transfers in flight at once. */
  leaderScheduleLimit: number;
  /** `region-schedule-limit`: balance-region moves in flight at once. */
  regionScheduleLimit: number;
  /** `replica-schedule-limit`: replica repairs in flight at once. */
  replicaScheduleLimit: number;
  /** Operators in flight that add or remove a peer on one store. */
  storeOperatorLimit: number;
  /** `max-merge-region-size`: a region of at most this many MiB may merge; 0 disables merge. */
  maxMergeRegionSizeMb: number;
  /** `max-merge-region-keys`: a region with at most this many keys may merge. */
  maxMergeRegionKeys: number;
  /** `split-merge-interval`: no merge of a region split this recently, nor so soon after start. */
  splitMergeIntervalMs: number;
  /** `merge-schedule-limit`: merge operators in flight (two per merge, as PD counts); 0 disables. */
  mergeScheduleLimit: number;
  /** `enable-one-way-merge`: a region merges only into the next one (by key). */
  enableOneWayMerge: boolean;
}

/** The defaults, as PD ships them. */
export const DEFAULT_SCHEDULE_CONFIG: Readonly<ScheduleConfig> = {
  maxReplicas: DEFAULT_PD_MAX_REPLICAS,
  maxStoreDownTimeMs: DEFAULT_PD_MAX_STORE_DOWN_TIME_MS,
  leaderScheduleLimit: DEFAULT_PD_LEADER_SCHEDULE_LIMIT,
  regionScheduleLimit: DEFAULT_PD_REGION_SCHEDULE_LIMIT,
  replicaScheduleLimit: DEFAULT_PD_REPLICA_SCHEDULE_LIMIT,
  storeOperatorLimit: DEFAULT_PD_STORE_OPERATOR_LIMIT,
  maxMergeRegionSizeMb: DEFAULT_PD_MAX_MERGE_REGION_SIZE_MB,
  maxMergeRegionKeys: DEFAULT_PD_MAX_MERGE_REGION_KEYS,
  splitMergeIntervalMs: DEFAULT_PD_SPLIT_MERGE_INTERVAL_MS,
  mergeScheduleLimit: DEFAULT_PD_MERGE_SCHEDULE_LIMIT,
  enableOneWayMerge: DEFAULT_PD_ENABLE_ONE_WAY_MERGE,
};

/** Settings where 0 means "none" or "off" rather than a mistake. */
const ZERO_ALLOWED: ReadonlySet<keyof ScheduleConfig> = new Set(
  [
    "maxMergeRegionSizeMb",
    "maxMergeRegionKeys",
    "splitMergeIntervalMs",
    "mergeScheduleLimit",
  ] as const,
);

/** `overrides` over the defaults; throws a `RangeError` naming a setting out of range. */
export function scheduleConfig(overrides: Partial<ScheduleConfig> = {}): ScheduleConfig {
  const config = { ...DEFAULT_SCHEDULE_CONFIG, ...overrides };
  for (const [name, value] of Object.entries(config)) {
    if (typeof DEFAULT_SCHEDULE_CONFIG[name as keyof ScheduleConfig] === "boolean") {
      if (typeof value !== "boolean") {
        throw new RangeError(`schedule setting ${name} must be true or false: ${value}`);
      }
      continue;
    }
    const least = ZERO_ALLOWED.has(name as keyof ScheduleConfig) ? 0 : 1;
    if (!Number.isSafeInteger(value) || (value as number) < least) {
      const what = least === 0 ? "a non-negative integer" : "a positive integer";
      throw new RangeError(`schedule setting ${name} must be ${what}: ${value}`);
    }
  }
  if (config.maxStoreDownTimeMs <= PD_STORE_DISCONNECTED_MS) {
    throw new RangeError(
      `max-store-down-time (${config.maxStoreDownTimeMs} ms) must exceed the ` +
        `${PD_STORE_DISCONNECTED_MS} ms after which a store is Disconnected`,
    );
  }
  return config;
}
