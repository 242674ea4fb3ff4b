/**
 * Settings of a store's peers, with defaults from src/constants.ts. Tests shrink the log
 * compaction thresholds to see compaction happen in a few dozen writes.
 *
 * @module
 */

import {
  DEFAULT_HIBERNATE_REGIONS,
  RAFT_LOG_GC_CHECK_TICKS,
  RAFT_LOG_GC_COUNT_LIMIT,
  RAFT_LOG_GC_SIZE_LIMIT_BYTES,
  RAFTSTORE_ELECTION_TIMEOUT_TICKS,
  RAFTSTORE_HEARTBEAT_INTERVAL_TICKS,
  RAFTSTORE_INLINE_SNAPSHOT_MAX_BYTES,
  RAFTSTORE_MAX_PENDING_PROPOSALS,
  RAFTSTORE_MAX_PENDING_READS,
  RAFTSTORE_READ_INDEX_TIMEOUT_TICKS,
  RAFTSTORE_ROUND_MAX_READY_BYTES,
  RAFTSTORE_VOTER_CATCH_UP_WAIT_TICKS,
} from "../constants.ts";
import { assert, type RaftTestingBugs } from "../raft/mod.ts";

/**
 * Deliberate bugs, so that tests can show their checkers catch them (as src/raft's
 * `RaftTestingBugs` and sim/bugs_test.ts do). Test-only: nothing outside tests sets them.
 */
export interface PeerTestingBugs {
  /** Followers answer reads from their own applied state (stale reads). */
  serveReadsOnFollowers?: boolean;
  /** The leader serves every read at once, without checking its lease. */
  readWithoutLease?: boolean;
  /** A proposal whose entry was overwritten by another term's is answered as applied. */
  ackOverwrittenProposals?: boolean;
  /** A leader's lease survives its sleep (hibernate.ts): heartbeats acknowledged before count. */
  leaseSurvivesSleep?: boolean;
  /** Apply skips the epoch check of normal writes (apply.ts): a stale write applies anyway. */
  skipEpochCheckAtApply?: boolean;
  /** src/raft's deliberate bugs, handed to every peer's RawNode (sim/cluster's teeth). */
  raft?: RaftTestingBugs;
}

/** Settings of every peer of a store. */
export interface PeerConfig {
  electionTimeoutTicks: number;
  heartbeatIntervalTicks: number;
  /** Applied entries in the log before the leader proposes CompactLog. */
  raftLogGcCountLimit: number;
  /** Bytes appended since the last compaction before the leader proposes CompactLog. */
  raftLogGcSizeLimitBytes: number;
  /** Ticks between the leader's compaction checks. */
  raftLogGcCheckTicks: number;
  /** Ticks a ChangePeer making a peer a voter waits for that peer to catch up. */
  voterCatchUpWaitTicks: number;
  maxPendingProposals: number;
  maxPendingReads: number;
  readIndexTimeoutTicks: number;
  /** Largest region snapshot sent in one message. */
  snapshotMaxBytes: number;
  /** Quiet regions stop being ticked until an input wakes them (`hibernate.ts`). */
  hibernateRegions: boolean;
  /** Most entry bytes a store's round takes from its peers' Readies (store.ts `round`). */
  roundMaxReadyBytes: number;
  /**
   * A round does not wait for its log's fsync (store.ts, "Pipelined log"): a standalone store's
   * (its regions each have their only voter here). Off, a round's write is durable before the
   * round goes on: a clustered store's, where the pipelined log measured slower (more, smaller
   * rounds, each paying its CPU, on a machine whose cores are the limit).
   */
  pipelineLog: boolean;
  /** Test-only bugs (see `PeerTestingBugs`). */
  testingBugs?: PeerTestingBugs;
}

/** The defaults, from src/constants.ts. */
export const DEFAULT_PEER_CONFIG: Readonly<PeerConfig> = {
  electionTimeoutTicks: RAFTSTORE_ELECTION_TIMEOUT_TICKS,
  heartbeatIntervalTicks: RAFTSTORE_HEARTBEAT_INTERVAL_TICKS,
  raftLogGcCountLimit: RAFT_LOG_GC_COUNT_LIMIT,
  raftLogGcSizeLimitBytes: RAFT_LOG_GC_SIZE_LIMIT_BYTES,
  raftLogGcCheckTicks: RAFT_LOG_GC_CHECK_TICKS,
  voterCatchUpWaitTicks: RAFTSTORE_VOTER_CATCH_UP_WAIT_TICKS,
  maxPendingProposals: RAFTSTORE_MAX_PENDING_PROPOSALS,
  maxPendingReads: RAFTSTORE_MAX_PENDING_READS,
  readIndexTimeoutTicks: RAFTSTORE_READ_INDEX_TIMEOUT_TICKS,
  snapshotMaxBytes: RAFTSTORE_INLINE_SNAPSHOT_MAX_BYTES,
  hibernateRegions: DEFAULT_HIBERNATE_REGIONS,
  roundMaxReadyBytes: RAFTSTORE_ROUND_MAX_READY_BYTES,
  pipelineLog: false,
};

/** The defaults with `overrides` applied, checked. */
export function peerConfig(overrides: Partial<PeerConfig> = {}): PeerConfig {
  const config = { ...DEFAULT_PEER_CONFIG, ...overrides };
  assert(
    config.heartbeatIntervalTicks > 0 &&
      config.heartbeatIntervalTicks < config.electionTimeoutTicks,
    "peer config: need 0 < heartbeat interval < election timeout",
  );
  assert(
    config.raftLogGcCountLimit >= 1 && config.raftLogGcCheckTicks >= 1,
    "peer config: log compaction thresholds must be positive",
  );
  assert(
    config.maxPendingProposals >= 1 && config.maxPendingReads >= 1 &&
      config.readIndexTimeoutTicks >= 1 && config.voterCatchUpWaitTicks >= 1 &&
      config.roundMaxReadyBytes >= 1,
    "peer config: queue limits must be positive",
  );
  return config;
}
