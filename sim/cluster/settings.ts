/**
 * What a cluster-simulator seed decides before the run starts: how many voters a region keeps,
 * how rough the network is while faults last, how often stores crash and how, whether one store
 * is lost for good, and the stores' own settings (log compaction, hibernation). Everything is
 * drawn from the run's one `SeededRandom`, first thing, so the settings are part of the history.
 *
 * @module
 */

import type { SeededRandom } from "../../src/util/random.ts";

/** The settings one seed chose. */
export interface ClusterSimSettings {
  /** Voters per region (3 or 5); one more store starts empty, a spare for moves and repair. */
  voters: number;
  /** Background loss, duplication and delay of every message while faults last. */
  dropRate: number;
  duplicateRate: number;
  maxDelayRounds: number;
  /** Chance per tick, with no crash under way, that a store crashes. */
  crashPerTick: number;
  /** Chance that a crash is a power loss (only synced writes survive) rather than kill -9. */
  powerLossShare: number;
  /** Chance per tick, with no cut under way, of a partition, a one-way cut or a flapping link. */
  cutPerTick: number;
  /** Chance per tick, with the scheduler idle, of an admin action (split, merge, move, transfer). */
  adminPerTick: number;
  /** The tick at which one store is lost for good (its replicas must be repaired), if any. */
  loseStoreAtTick: number | undefined;
  /** Applied entries in a log before the leader compacts it (small: snapshots happen). */
  raftLogGcCountLimit: number;
  hibernateRegions: boolean;
  /**
   * Whether the real PD (sim_placement_driver.ts) repairs, balances and serves the client, its
   * clock jumping now and then; otherwise the oracle scheduler and sim_pd.ts do.
   */
  realPd: boolean;
  /** With the real PD: whether its merge checker merges (a short split-merge-interval). */
  pdMergeChecker: boolean;
  /**
   * With the real PD: 1 core, or 3 replicated members (sim_pd_members.ts) whose leader crashes,
   * restarts, is partitioned away and whose clocks step.
   */
  pdMembers: 1 | 3;
  /**
   * With the bank: a hot-key client whose key's region leader moves right after each of its
   * reads (bank_workload.ts), for the stores' max_ts sync to be tested.
   */
  hotKeyProbe: boolean;
}

/** Ticks of the fault phase of a run (faults, admin actions and clients). */
export const FAULT_PHASE_TICKS = 500;

/** Draws one seed's settings. */
export function chooseSettings(random: SeededRandom): ClusterSimSettings {
  return {
    voters: random.pick([3, 3, 5]),
    dropRate: random.pick([0, 0.01, 0.05]),
    duplicateRate: random.pick([0, 0.01, 0.05]),
    maxDelayRounds: random.pick([0, 2, 4]),
    crashPerTick: random.pick([0.005, 0.02, 0.04]),
    powerLossShare: random.pick([0, 0.5, 1]),
    cutPerTick: random.pick([0.01, 0.03]),
    adminPerTick: random.pick([0.05, 0.15]),
    loseStoreAtTick: random.chance(0.3) ? 50 + random.int(FAULT_PHASE_TICKS - 150) : undefined,
    raftLogGcCountLimit: random.pick([20, 60, 1000]),
    hibernateRegions: random.chance(0.5),
    // Drawn last, so that every setting above is what it was before the real PD came.
    realPd: random.chance(0.5),
    pdMergeChecker: random.chance(0.5),
    // Drawn last again, for the same reason: a seed with one PD is what it was before.
    pdMembers: random.chance(0.5) ? 3 : 1,
    hotKeyProbe: random.chance(0.5),
  };
}

/**
 * One line naming every setting, for reports (`hotKeyProbe` only matters with the bank, whose
 * set-up says so in the trace).
 */
export function describeSettings(s: ClusterSimSettings): string {
  return [
    `${s.voters} voters + 1 spare store`,
    `drop ${s.dropRate} dup ${s.duplicateRate} delay ≤ ${s.maxDelayRounds} rounds`,
    `crash/tick ${s.crashPerTick} (power loss ${s.powerLossShare})`,
    `cut/tick ${s.cutPerTick}`,
    `admin/tick ${s.adminPerTick}`,
    s.loseStoreAtTick === undefined ? "no store lost" : `a store lost at t${s.loseStoreAtTick}`,
    `log gc at ${s.raftLogGcCountLimit}`,
    `hibernate ${s.hibernateRegions ? "on" : "off"}`,
    s.realPd
      ? `real PD${s.pdMembers > 1 ? ` (${s.pdMembers} members)` : ""} (merge checker ${
        s.pdMergeChecker ? "on" : "off"
      })`
      : "oracle PD",
  ].join(", ");
}
