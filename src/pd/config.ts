/**
 * The settings an operator may change in PD's scheduling (PD's `schedule` and `replication`
 * sections), with their defaults from `src/constants.ts`. Tests shrink the times (a store is
 * Down after seconds, not half an hour).
 *
 * @module
 */
import {
  DEFAULT_PD_LEADER_SCHEDULE_LIMIT,
  DEFAULT_PD_MAX_REPLICAS,
  DEFAULT_PD_MAX_STORE_DOWN_TIME_MS,
  DEFAULT_PD_REGION_SCHEDULE_LIMIT,
  DEFAULT_PD_REPLICA_SCHEDULE_LIMIT,
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
}

/** The defaults, as PD ships them. */
export const DEFAULT_SCHEDULE_CONFIG: Readonly<ScheduleConfig> = {
  maxReplicas: DEFAULT_PD_MAX_REPLICAS,
  maxStoreDownTimeMs: DEFAULT_PD_MAX_STORE_DOWN_TIME_MS,
  leaderScheduleLimit: DEFAULT_PD_LEADER_SCHEDULE_LIMIT,
  regionScheduleLimit: DEFAULT_PD_REGION_SCHEDULE_LIMIT,
  replicaScheduleLimit: DEFAULT_PD_REPLICA_SCHEDULE_LIMIT,
  storeOperatorLimit: DEFAULT_PD_STORE_OPERATOR_LIMIT,
};

/** `overrides` over the defaults; throws a `RangeError` naming a setting out of range. */
export function scheduleConfig(overrides: Partial<ScheduleConfig> = {}): ScheduleConfig {
  const config = { ...DEFAULT_SCHEDULE_CONFIG, ...overrides };
  for (const [name, value] of Object.entries(config)) {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new RangeError(`schedule setting ${name} must be a positive integer: ${value}`);
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
