/**
 * Every bound of Basalt in one place: sizes, queue lengths, batch sizes, retry counts. Relations
 * between them are asserted when this module loads, so an inconsistent edit fails at start-up.
 */
import { assert } from "./util/assert.ts";

/** Largest key the storage engine accepts (an encoded key: user key + MVCC suffix). */
export const ENGINE_MAX_KEY_BYTES = 64 * 1024;
/** Largest value the storage engine accepts in one write. */
export const ENGINE_MAX_VALUE_BYTES = 256 * 1024 * 1024;

/** Largest user key the API accepts (TiKV's `max-key-size` default). */
export const MAX_KEY_BYTES = 8 * 1024;
/** Largest key + value of one entry the API accepts (TiKV's `raft-entry-max-size` default). */
export const MAX_ENTRY_BYTES = 8 * 1024 * 1024;

/** Default RocksDB block cache for a store. */
export const DEFAULT_BLOCK_CACHE_BYTES = 256 * 1024 * 1024;
/** Default memtable size per column family of an engine opened without one (RocksDB's). */
export const DEFAULT_WRITE_BUFFER_BYTES = 64 * 1024 * 1024;
/**
 * A store's memtable size per column family (`[rocksdb] write-buffer-size` when unset). Every
 * write inserts into a skiplist whose nodes a random key's search visits all over the table;
 * at 64 MiB that search missed the CPU caches enough to be RocksDB's largest cost of a
 * replicated put (`InlineSkipList::FindSpliceForLevel`: 9% of all CPU with three stores and a
 * client on 2 cores, 4% at 8 MiB; puts at 256 in flight 15.6–17.9k → 18.4–20.8k/s). A flush's
 * cost follows the bytes written, not the memtable's size; the reserve file follows it
 * (RESERVE_SPACE_WRITE_BUFFERS).
 */
export const STORE_WRITE_BUFFER_BYTES = 8 * 1024 * 1024;
/** Default RocksDB background jobs (flushes + compactions). */
export const DEFAULT_MAX_BACKGROUND_JOBS = 2;
/** Default bloom filter bits per key. */
export const DEFAULT_BLOOM_BITS_PER_KEY = 10;

/** A relation between constants, checked when this module loads (`src/util/assert.ts`). */
function assertConstant(condition: boolean, what: string): void {
  assert(condition, `constants.ts: ${what}`);
}

assertConstant(MAX_KEY_BYTES + 32 <= ENGINE_MAX_KEY_BYTES, "API keys must fit engine keys");
assertConstant(MAX_ENTRY_BYTES <= ENGINE_MAX_VALUE_BYTES, "API entries must fit engine values");

// ---------------------------------------------------------------------------------------------
// Server (src/server/).

/** Largest gRPC message the server receives or sends. */
export const GRPC_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
/** Most keys (or pairs) in one raw batch request. */
export const RAW_BATCH_MAX_KEYS = 64 * 1024;
/** Most pairs one raw scan returns; a larger `limit` is clamped to it. */
export const RAW_SCAN_MAX_LIMIT = 64 * 1024;
/** Most ranges in one RawBatchScan or RawChecksum request. */
export const RAW_MAX_RANGES = 1024;
/** Most sub-requests in one BatchCommands stream message. */
export const BATCH_COMMANDS_MAX_REQUESTS = 4096;
/** Longest a BatchCommands `Empty` sub-request may ask the server to wait. */
export const BATCH_COMMANDS_MAX_DELAY_MS = 10_000;
/** How long a shutdown waits for in-flight requests before closing anyway. */
export const SHUTDOWN_DRAIN_MS = 10_000;
/** Size at which `--log-file` is rotated to `<file>.1`. */
export const LOG_FILE_MAX_BYTES = 64 * 1024 * 1024;

assertConstant(
  MAX_ENTRY_BYTES + MAX_KEY_BYTES + 1024 <= GRPC_MAX_MESSAGE_BYTES,
  "one maximal entry must fit a gRPC message",
);
assertConstant(RAW_SCAN_MAX_LIMIT <= RAW_BATCH_MAX_KEYS, "a scan returns no more than a batch");

// ---------------------------------------------------------------------------------------------
// Answer and request sizes (src/server/answer_budget.ts, src/server/request_limits.ts).

/**
 * Most bytes one answer may gather (pairs, values, lock and MVCC records), counted as it
 * gathers: below GRPC_MAX_MESSAGE_BYTES by the headroom that BatchCommands framing and request
 * ids need (≤ 4096 × ~32 bytes), so no answer is ever refused by gRPC's send limit.
 */
export const ANSWER_MAX_BYTES = GRPC_MAX_MESSAGE_BYTES - 4 * 1024 * 1024;
/** Bytes counted per gathered entry on top of its key and value (protobuf tags and lengths). */
export const ANSWER_ENTRY_OVERHEAD_BYTES = 32;
/**
 * Most answer bytes the sub-requests of one BatchCommands message (its part for one worker)
 * may gather together; each sub-request is also held to ANSWER_MAX_BYTES. The answers are sent
 * in several response messages, each at most ANSWER_MAX_BYTES (bar one lone answer's framing).
 */
export const BATCH_COMMANDS_MAX_ANSWER_BYTES = 2 * ANSWER_MAX_BYTES;
/**
 * A worker's protobuf writer grown past this is replaced after it posts, so one large answer
 * does not pin its peak buffer for the life of the worker.
 */
export const WORKER_WRITER_RETAIN_BYTES = 1024 * 1024;
/** Locks gathered per page while ScanLock counts its answer's bytes. */
export const SCAN_LOCK_PAGE_LOCKS = 256;

/**
 * Most entries in any list of one request: keys (RawBatchGet/Put/Delete, KvBatchGet, KvCommit,
 * KvBatchRollback, KvCheckSecondaryLocks, KvResolveLock, KVPessimisticRollback), mutations
 * (KvPrewrite, KvPessimisticLock), resolve-lock transactions and a context's lock lists.
 * TiKV bounds these only by its message and raft entry sizes; clients send far fewer (TiKV's
 * client: 16 KiB per write batch; Basalt's: 4096 keys).
 */
export const REQUEST_MAX_ITEMS = 64 * 1024;
/**
 * Most key and value bytes in one request's lists together. Below the message limit so that a
 * write's copy into the engine's write batch stays bounded apart from the received bytes.
 */
export const REQUEST_MAX_BYTES = GRPC_MAX_MESSAGE_BYTES / 2;

assertConstant(
  ANSWER_MAX_BYTES + BATCH_COMMANDS_MAX_REQUESTS * 64 <= GRPC_MAX_MESSAGE_BYTES,
  "an answer and the framing of a full BatchCommands message fit a gRPC message",
);
assertConstant(
  MAX_ENTRY_BYTES + MAX_KEY_BYTES + ANSWER_ENTRY_OVERHEAD_BYTES <= ANSWER_MAX_BYTES,
  "one maximal entry fits an answer",
);
assertConstant(
  BATCH_COMMANDS_MAX_ANSWER_BYTES >= ANSWER_MAX_BYTES,
  "a BatchCommands message can carry at least one full answer",
);
assertConstant(RAW_BATCH_MAX_KEYS <= REQUEST_MAX_ITEMS, "a raw batch is a request list");
assertConstant(
  MAX_ENTRY_BYTES + MAX_KEY_BYTES <= REQUEST_MAX_BYTES,
  "one maximal entry fits a request",
);

// ---------------------------------------------------------------------------------------------
// Placement Driver (src/pd/). Defaults of settings an operator may change (max replicas,
// store down time, schedule limits) are the `DEFAULT_*` ones; `ScheduleConfig` carries them.

/** Ids reserved per persisted window of PD's id allocator (PD's `allocStep`). */
export const PD_ID_ALLOC_STEP = 1_000n;
/** Most ids one AllocID request may take. */
export const PD_ID_ALLOC_MAX_COUNT = 1 << 20;
/** Most regions one ScanRegions answer carries, whatever `limit` asks for. */
export const PD_SCAN_REGIONS_MAX_LIMIT = 64 * 1024;
/** Most new regions one AskBatchSplit may ask ids for. */
export const PD_SPLIT_MAX_COUNT = 1024;
/** Most peers a region may have in a heartbeat, bootstrap or split request PD accepts. */
export const PD_REGION_MAX_PEERS = 16;
/** Most stores PD keeps (tombstones included). */
export const PD_STORES_MAX = 4096;
/** Most regions PD keeps. */
export const PD_REGIONS_MAX = 1 << 20;
/** Most labels one store may carry. */
export const PD_STORE_MAX_LABELS = 32;
/** Most service GC safe points kept at once (one per service id). */
export const PD_SERVICE_SAFE_POINTS_MAX = 1024;
/** Longest service id of a service GC safe point. */
export const PD_SERVICE_ID_MAX_BYTES = 256;
/** A store with no heartbeat for this long is Disconnected (PD's `storeDisconnectDuration`). */
export const PD_STORE_DISCONNECTED_MS = 20_000;
/** Default `max-store-down-time`: a store silent this long is Down and its replicas move. */
export const DEFAULT_PD_MAX_STORE_DOWN_TIME_MS = 30 * 60 * 1000;
/**
 * How often PD saves a store's last heartbeat time with its meta (PD's `storePersistInterval`),
 * at most; a quarter of `max-store-down-time` when that is shorter. A PD leader that loads its
 * stores (a restart, a failover) takes their silence from it.
 */
export const PD_STORE_HEARTBEAT_PERSIST_MS = 5 * 60 * 1000;
/**
 * After PD loads its stores, how long before it may call one Down (its saved heartbeat may be
 * old, or this member's clock ahead of the last leader's): two store heartbeats, so every live
 * store has spoken to the new leader first.
 */
export const PD_STORE_DOWN_GRACE_AFTER_LOAD_MS = 20_000;
/** Default `max-replicas`: voters per region. */
export const DEFAULT_PD_MAX_REPLICAS = 3;
/** Default `leader-schedule-limit`: leader transfers in flight at once. */
export const DEFAULT_PD_LEADER_SCHEDULE_LIMIT = 4;
/** Default `region-schedule-limit`: region moves (balance) in flight at once. */
export const DEFAULT_PD_REGION_SCHEDULE_LIMIT = 4;
/** Default `replica-schedule-limit`: replica repairs in flight at once. */
export const DEFAULT_PD_REPLICA_SCHEDULE_LIMIT = 64;
/** Default most operators in flight that touch one store (add or remove a peer there). */
export const DEFAULT_PD_STORE_OPERATOR_LIMIT = 4;
/** An operator step that needs no snapshot (promote, remove, transfer leader) times out after this. */
export const PD_OPERATOR_FAST_STEP_TIMEOUT_MS = 60_000;
/** An operator step that sends a snapshot (add learner) times out after this. */
export const PD_OPERATOR_SLOW_STEP_TIMEOUT_MS = 10 * 60 * 1000;
/** Most finished operators remembered for GetOperator. */
export const PD_OPERATOR_RECORDS_MAX = 4096;
/** How long a finished operator stays visible to GetOperator. */
export const PD_OPERATOR_RECORD_TTL_MS = 10 * 60 * 1000;
/** Most regions one ScatterRegion request may name. */
export const PD_SCATTER_MAX_REGIONS = 1024;
/** How often the PD process runs a scheduling round (its coordinator); `schedule.interval`. */
export const DEFAULT_PD_SCHEDULE_INTERVAL_MS = 1_000;
/** Largest JSON request the PD process's admin service (`basalt.PdAdmin`, used by ctl) reads. */
export const PD_ADMIN_REQUEST_MAX_BYTES = 64 * 1024;
/** Most region heartbeat streams the PD process keeps for pushing operators (one per store). */
export const PD_HEARTBEAT_STREAMS_MAX = PD_STORES_MAX;
/** Default `max-merge-region-size` (MiB): a region at most this big may merge; 0 disables merge. */
export const DEFAULT_PD_MAX_MERGE_REGION_SIZE_MB = 20;
/** Default `max-merge-region-keys`: a region with at most this many keys may merge. */
export const DEFAULT_PD_MAX_MERGE_REGION_KEYS = 200_000;
/**
 * Default `split-merge-interval`: a region split (AskBatchSplit or ReportBatchSplit named it) less
 * than this long ago is not merged, nor is anything in the first such span after PD starts.
 */
export const DEFAULT_PD_SPLIT_MERGE_INTERVAL_MS = 60 * 60 * 1000;
/** Default `merge-schedule-limit`: merge operators in flight (each merge is two); 0 disables. */
export const DEFAULT_PD_MERGE_SCHEDULE_LIMIT = 8;
/** Default `enable-one-way-merge`: when on, a region merges only into the next one. */
export const DEFAULT_PD_ENABLE_ONE_WAY_MERGE = false;
/**
 * A merge step (PrepareMerge, the target catching up, CommitMerge) times out after this: PD's
 * ten fast steps.
 */
export const PD_OPERATOR_MERGE_STEP_TIMEOUT_MS = 10 * PD_OPERATOR_FAST_STEP_TIMEOUT_MS;
/** Most recent splits PD remembers for `split-merge-interval`; past it the oldest are forgotten. */
export const PD_SPLIT_RECORDS_MAX = 64 * 1024;
/**
 * A merge target larger than max(this, PD_MERGE_TARGET_MAX_SIZE_FACTOR × region-max-size) MiB is
 * left alone (PD's `maxTargetRegionSize`).
 */
export const PD_MERGE_TARGET_MAX_SIZE_MB = 500;
/** See `PD_MERGE_TARGET_MAX_SIZE_MB` (PD's `maxTargetRegionFactor`). */
export const PD_MERGE_TARGET_MAX_SIZE_FACTOR = 4;

assertConstant(
  PD_STORE_DISCONNECTED_MS < DEFAULT_PD_MAX_STORE_DOWN_TIME_MS,
  "a store is Disconnected before it is Down",
);
assertConstant(
  PD_OPERATOR_FAST_STEP_TIMEOUT_MS <= PD_OPERATOR_SLOW_STEP_TIMEOUT_MS,
  "a snapshot step may take at least as long as a fast one",
);
assertConstant(
  BigInt(PD_ID_ALLOC_MAX_COUNT) < (1n << 32n) && PD_ID_ALLOC_STEP >= 1n,
  "an id batch must fit AllocID's u32 count",
);
assertConstant(
  PD_SPLIT_MAX_COUNT * (PD_REGION_MAX_PEERS + 1) <= PD_ID_ALLOC_MAX_COUNT,
  "one AskBatchSplit's ids must fit one id allocation",
);
assertConstant(
  PD_OPERATOR_SLOW_STEP_TIMEOUT_MS <= PD_OPERATOR_MERGE_STEP_TIMEOUT_MS &&
    PD_SPLIT_RECORDS_MAX >= 1,
  "a merge step may take at least as long as a snapshot; some splits are remembered",
);

// ---------------------------------------------------------------------------------------------
// Transactional write commands (src/server/txn/scheduler.ts).

/**
 * Keys a transactional write command works through before it lets its region-group worker's
 * event loop run again: the slice that bounds how long one request holds a worker. Between
 * slices the command keeps its latches, snapshot and buffer, and still writes everything as one
 * batch at the end, so a request stays atomic. Measured on RocksDB (2 shared vCPUs): a slice of
 * 1024 keys takes ~10–25 ms for the costliest command (prewrite), see bench `txn-large`.
 * Commands that must not be interrupted (async-commit and 1PC prewrites, whose locks are held in
 * the memory lock table between reading max_ts and publishing them) run at most one slice: a
 * larger one is prewritten as 2PC, as TiKV does when async commit cannot proceed.
 */
export const TXN_WRITE_SLICE_KEYS = 1024;

// ---------------------------------------------------------------------------------------------
// The network edge: flow control of BatchCommands streams, connections and descriptors
// (src/server/flow_control.ts, listener.ts, http1.ts, status_server.ts). Operator settings of the
// same concern (max connections, concurrent streams, idle timeout, keepalive) are `[server]` keys
// in src/server/config.ts.

/**
 * Sub-requests one BatchCommands stream may have outstanding (handed to workers, not yet
 * answered) before the server stops reading it. A stream stops at the message that reaches the
 * cap, so at most this plus one message's BATCH_COMMANDS_MAX_REQUESTS are outstanding.
 */
export const STREAM_MAX_PENDING_REQUESTS = 4 * 1024;
/**
 * Answer bytes of one stream handed to gRPC but not yet sent (its client does not read) before
 * the server stops reading that stream; answers already computed are still sent, so the bound
 * is this plus the answers of its outstanding sub-requests.
 */
export const STREAM_MAX_UNSENT_BYTES = 4 * 1024 * 1024;
/** Outstanding sub-requests of all streams of one connection before all of them stop reading. */
export const CONNECTION_MAX_PENDING_REQUESTS = 16 * 1024;
/** Unsent answer bytes of all streams of one connection before all of them stop reading. */
export const CONNECTION_MAX_UNSENT_BYTES = 16 * 1024 * 1024;
/** First pause of the accept loop after an accept error (EMFILE, ENFILE, ENOBUFS …). */
export const ACCEPT_RETRY_MIN_MS = 10;
/** Longest pause of the accept loop; it doubles from ACCEPT_RETRY_MIN_MS while accepts fail. */
export const ACCEPT_RETRY_MAX_MS = 1_000;
/**
 * Share of the open-file limit that client connections (gRPC and status together) may use; the
 * rest stays for RocksDB (SST files, WAL, LOG, MANIFEST), the workers and the runtime.
 */
export const FD_CONNECTION_SHARE = 0.5;
/** Share of the open-file limit RocksDB may keep open as table files (`max_open_files`). */
export const FD_ROCKSDB_SHARE = 0.25;
/** Lowest open-file limit a store starts with: below it the budget leaves no room to serve. */
export const FD_LIMIT_MIN = 128;
/** Most status-port (HTTP) connections open at once; more are closed on accept. */
export const STATUS_MAX_CONNECTIONS = 32;
/** Longest a status client may take to send a request head, from its first byte. */
export const STATUS_HEADER_TIMEOUT_MS = 10_000;
/** Largest request head (request line and headers) the status server reads; more gets 431. */
export const STATUS_MAX_HEADER_BYTES = 16 * 1024;

assertConstant(
  STREAM_MAX_PENDING_REQUESTS >= BATCH_COMMANDS_MAX_REQUESTS,
  "a stream may have at least one full BatchCommands message outstanding",
);
assertConstant(
  CONNECTION_MAX_PENDING_REQUESTS >= STREAM_MAX_PENDING_REQUESTS &&
    CONNECTION_MAX_UNSENT_BYTES >= STREAM_MAX_UNSENT_BYTES,
  "a connection's caps hold at least one stream's",
);
assertConstant(ACCEPT_RETRY_MIN_MS <= ACCEPT_RETRY_MAX_MS, "accept backoff grows");
assertConstant(
  FD_CONNECTION_SHARE + FD_ROCKSDB_SHARE < 1 &&
    FD_LIMIT_MIN * FD_CONNECTION_SHARE > STATUS_MAX_CONNECTIONS,
  "descriptors are left for the runtime and for gRPC connections at the lowest limit",
);

// ---------------------------------------------------------------------------------------------
// Shutdown and disk trouble (src/server/shutdown.ts, region_workers.ts, disk_guard.ts, log.ts).

/**
 * How long the main thread waits for each region worker to detach from the engine on shutdown
 * (its TTL sweep ends, its durable writes leave RocksDB). A worker that takes longer may still
 * hold native handles, so the database is then left to its write-ahead log, not closed.
 */
export const WORKER_STOP_TIMEOUT_MS = 5_000;
/** How often a stopping worker looks whether its durable writes have left RocksDB. */
export const WORKER_STOP_POLL_MS = 5;
/** How often a region worker posts its raftstore's counters to the main thread (`/metrics`). */
export const WORKER_STATS_INTERVAL_MS = 1_000;
/**
 * The longest a shutdown takes: the drain, then the workers' stop. Kubernetes waits 30 s
 * (`terminationGracePeriodSeconds`) before it kills; the store must be gone by then.
 */
export const SHUTDOWN_MAX_MS = 25_000;
/**
 * How often the store looks at its free disk space and probes its engine (`disk_guard.ts`). A
 * writer faster than the reserve size per interval can still fill the disk between two looks.
 */
export const DISK_CHECK_INTERVAL_MS = 250;
/**
 * The reserve file (`<data-dir>/space_placeholder_file`) holds this many write buffers, and
 * the store refuses writes while the disk has less free than that (`disk_guard.ts`). RocksDB
 * resumes after a disk-full error of its own only once a write buffer is free (its
 * SstFileManager polls every 5 s), so removing the file always frees enough to resume.
 */
export const RESERVE_SPACE_WRITE_BUFFERS = 2;
/** The reserve file is created only when the disk keeps at least this share free beside it. */
export const RESERVE_SPACE_MAX_SHARE_OF_FREE = 0.5;
/** Lines one repeated log message (same level and text) may write per window. */
export const LOG_REPEAT_MAX_LINES = 5;
/** The window of LOG_REPEAT_MAX_LINES; its suppressed lines are counted on the next line. */
export const LOG_REPEAT_WINDOW_MS = 10_000;
/** Distinct messages whose repetitions are tracked; the oldest is forgotten beyond it. */
export const LOG_REPEAT_MAX_MESSAGES = 256;

assertConstant(
  SHUTDOWN_DRAIN_MS + WORKER_STOP_TIMEOUT_MS <= SHUTDOWN_MAX_MS && SHUTDOWN_MAX_MS < 30_000,
  "a shutdown drains and stops its workers within Kubernetes' 30 s grace period",
);
assertConstant(WORKER_STOP_POLL_MS < WORKER_STOP_TIMEOUT_MS, "a stopping worker polls in time");
assertConstant(RESERVE_SPACE_WRITE_BUFFERS >= 1, "the reserve frees at least one write buffer");
assertConstant(
  RESERVE_SPACE_MAX_SHARE_OF_FREE > 0 && RESERVE_SPACE_MAX_SHARE_OF_FREE < 1,
  "the reserve takes a share of the free space",
);
assertConstant(LOG_REPEAT_MAX_LINES >= 1, "a repeated message is logged at least once");

// ---------------------------------------------------------------------------------------------
// Raftstore peer storage (src/raftstore/).

/** Most recent log entries one region caches beyond its last append. */
export const RAFT_ENTRY_CACHE_MAX_ENTRIES = 1024;
/** Most bytes of recent log entries one region keeps in memory, beyond its last append. */
export const RAFT_ENTRY_CACHE_MAX_BYTES = 4 * 1024 * 1024;

assertConstant(
  RAFT_ENTRY_CACHE_MAX_ENTRIES >= 1 && RAFT_ENTRY_CACHE_MAX_BYTES >= 1,
  "the entry cache holds at least one entry",
);

// ---------------------------------------------------------------------------------------------
// Raftstore peers, rounds and admin operations (src/raftstore/peer.ts, store.ts, apply.ts).

/** Default base election timeout of a region's peers, in ticks (TiKV: 10 ticks). */
export const RAFTSTORE_ELECTION_TIMEOUT_TICKS = 10;
/** Default heartbeat interval of a region's leader, in ticks (TiKV: 2 ticks). */
export const RAFTSTORE_HEARTBEAT_INTERVAL_TICKS = 2;
/** Most proposals one peer keeps waiting for apply; more are refused as ServerIsBusy. */
export const RAFTSTORE_MAX_PENDING_PROPOSALS = 4096;
/** Most reads one peer keeps waiting for a ReadIndex answer or for apply; more are refused. */
export const RAFTSTORE_MAX_PENDING_READS = 4096;
/** Ticks a read may wait for its ReadIndex before it is failed as ReadIndexTimeout. */
export const RAFTSTORE_READ_INDEX_TIMEOUT_TICKS = 2 * RAFTSTORE_ELECTION_TIMEOUT_TICKS;
/** Most messages and requests a store's inbox holds between rounds; more are dropped/refused. */
export const RAFTSTORE_MAX_INBOX = 65_536;
/**
 * Most write-ahead-log fsyncs a store has under way (store.ts): a round that would start one more
 * waits for the oldest to end first. Each covers every write before it, so more than a couple
 * only queue in RocksDB.
 */
export const RAFTSTORE_SYNCS_IN_FLIGHT_MAX = 2;
/**
 * Most entry bytes (new entries to persist plus committed entries to apply) one round of a store
 * takes from its peers' Readies: past it the round stops collecting, and the peers left wait for
 * the next round, first in line. One Ready is always taken, whatever its size (each peer's
 * committed entries per Ready are bounded by src/raft's `maxCommittedSizePerReadyBytes`). This
 * bounds a store's unapplied bytes in memory and the size of a round's two writes however many
 * regions fall behind at once.
 */
export const RAFTSTORE_ROUND_MAX_READY_BYTES = 32 * 1024 * 1024;
/** The leader proposes CompactLog once this many applied entries sit in the log (TiKV's count limit). */
export const RAFT_LOG_GC_COUNT_LIMIT = 1000;
/** …or once the entries appended since the last compaction hold this many bytes. */
export const RAFT_LOG_GC_SIZE_LIMIT_BYTES = 32 * 1024 * 1024;
/** Ticks between a leader's checks whether its log needs compacting (TiKV: raft-log-gc-tick). */
export const RAFT_LOG_GC_CHECK_TICKS = RAFTSTORE_ELECTION_TIMEOUT_TICKS;
/**
 * Ticks a leader holds a ChangePeer that makes a peer a voter, waiting for that peer to catch up
 * (src/raftstore/peer.ts `unsafeVoterProblem`), before it refuses it as ServerIsBusy (PD then
 * sends it again with a later region heartbeat).
 */
export const RAFTSTORE_VOTER_CATCH_UP_WAIT_TICKS = 5 * RAFTSTORE_ELECTION_TIMEOUT_TICKS;
/**
 * Largest region snapshot generated in one message (the key-value pairs of the region's data
 * column families, until SST-file snapshots exist); a larger region is not snapshotted.
 */
export const RAFTSTORE_INLINE_SNAPSHOT_MAX_BYTES = 64 * 1024 * 1024;

assertConstant(
  RAFTSTORE_HEARTBEAT_INTERVAL_TICKS < RAFTSTORE_ELECTION_TIMEOUT_TICKS,
  "a leader heartbeats within an election timeout",
);
assertConstant(
  RAFTSTORE_READ_INDEX_TIMEOUT_TICKS >= RAFTSTORE_ELECTION_TIMEOUT_TICKS,
  "a ReadIndex may wait at least one heartbeat round and an election",
);
assertConstant(RAFTSTORE_SYNCS_IN_FLIGHT_MAX >= 1, "a store may have one fsync under way");
assertConstant(
  RAFTSTORE_MAX_PENDING_PROPOSALS >= 1 && RAFTSTORE_MAX_PENDING_READS >= 1 &&
    RAFTSTORE_MAX_INBOX >= RAFTSTORE_MAX_PENDING_PROPOSALS,
  "a store's inbox holds at least one peer's worth of proposals",
);
assertConstant(RAFT_LOG_GC_COUNT_LIMIT >= 1, "log compaction keeps a positive count threshold");

// ---------------------------------------------------------------------------------------------
// Routing of regions to workers and the raw TTL expiry index (src/server/routing_table.ts,
// region_workers.ts, raw/ttl_index.ts, raw/ttl_sweeper.ts).

/** Most regions one store's routing table holds (TiKV stores run tens of thousands). */
export const ROUTING_TABLE_MAX_REGIONS = 1 << 20;
/**
 * Longest a region move waits for the worker that gives the region up to drain its commands on
 * it (a pessimistic lock wait is the longest of them, bounded by its own timeout).
 */
export const REGION_MOVE_DRAIN_TIMEOUT_MS = 30_000;
/** Expired index entries a sweep deletes per chunk; it yields to requests between chunks. */
export const TTL_SWEEP_CHUNK_ENTRIES = 256;
/** Index entries a sweep reads per chunk (expired or not) before it yields to requests. */
export const TTL_SWEEP_CHUNK_SCANNED = 4096;
/** Old-layout index entries rewritten per write batch when a store opens (`ttl_index.ts`). */
export const TTL_INDEX_MIGRATION_BATCH_ENTRIES = 4096;

assertConstant(
  TTL_SWEEP_CHUNK_ENTRIES >= 1 && TTL_SWEEP_CHUNK_ENTRIES <= TTL_SWEEP_CHUNK_SCANNED,
  "a sweep chunk deletes at most what it reads",
);
assertConstant(TTL_INDEX_MIGRATION_BATCH_ENTRIES >= 1, "the migration moves entries");

// ---------------------------------------------------------------------------------------------
// The write path's group commit (src/storage/group_commit.ts).

/**
 * Bytes (keys + values) at which a write group is written without waiting for the end of the
 * wave, so one wave's writes never build an unbounded batch.
 */
export const WRITE_GROUP_MAX_BYTES = 4 * 1024 * 1024;
/**
 * Durable group writes in flight at once; more groups wait to be written. Measured: 4 left
 * BatchCommands puts as they were (a client's streams rarely have more messages in flight) and
 * cut unary puts at 64 in flight from 182 to 136 µs of store CPU each (5.5k -> 6.5k/s); 1 cost
 * BatchCommands puts at 256 in flight a quarter of their throughput.
 */
export const WRITE_GROUPS_IN_FLIGHT_MAX = 4;

assertConstant(WRITE_GROUPS_IN_FLIGHT_MAX >= 1, "at least one write group may be in flight");

// ---------------------------------------------------------------------------------------------
// A clustered store's link to PD (src/server/cluster_join.ts).

/** Period of a clustered store's StoreHeartbeat (TiKV's `pd-store-heartbeat-tick-interval`). */
export const STORE_HEARTBEAT_INTERVAL_MS = 10_000;
/**
 * Default period of a clustered store's periodic region heartbeats (every region it leads, on one
 * stream; `[raftstore] pd-heartbeat-tick-interval`, TiKV's 60 s). A region that changes (a new
 * leader, a split, a conf change, new sizes) is reported at once besides, so the period only
 * bounds how stale PD's view of a quiet region may be: at 10,000 regions a store sends 10,000
 * heartbeats per period.
 */
export const DEFAULT_REGION_HEARTBEAT_INTERVAL_MS = 60_000;
/** The shortest `pd-heartbeat-tick-interval` a store accepts. */
export const MIN_REGION_HEARTBEAT_INTERVAL_MS = 1_000;
/**
 * A region PD sent an operator for is heartbeated this often (besides on every change) for
 * REGION_OPERATOR_FOLLOW_UP_MS after: PD hands out an operator's next step, or the same step
 * again when it did not take (a leader transfer the transferee was too far behind for), only
 * in answer to a heartbeat, and the periodic ones come a minute apart.
 */
export const REGION_OPERATOR_HEARTBEAT_MS = 5_000;
/**
 * How long after PD's last operator for a region it is heartbeated every
 * REGION_OPERATOR_HEARTBEAT_MS: a few retries, short enough that balancing thousands of regions
 * adds only a few hundred heartbeats a second.
 */
export const REGION_OPERATOR_FOLLOW_UP_MS = 20_000;
/** How long each start-up call to PD (AllocID, Bootstrap, PutStore…) may take. */
export const JOIN_PD_CALL_TIMEOUT_MS = 10_000;

assertConstant(
  STORE_HEARTBEAT_INTERVAL_MS >= 1000 &&
    DEFAULT_REGION_HEARTBEAT_INTERVAL_MS >= MIN_REGION_HEARTBEAT_INTERVAL_MS,
  "heartbeats are at most one a second",
);

// ---------------------------------------------------------------------------------------------
// The raftstore in a store process (src/raftstore/driver.ts, src/server/region_worker.ts).

/** Milliseconds per Raft tick: an election takes 10–20 ticks (1–2 s), a heartbeat 2 ticks. */
export const RAFTSTORE_TICK_MS = 100;
/**
 * `[raftstore] store-pool-size` when unset: on a machine of at most this many cores the regions
 * run on the main thread (0: src/server/inline_worker.ts), else in STORE_POOL_SIZE_THREADS
 * worker threads. Waking a thread costs more than the thread gives where cores are this few.
 */
export const STORE_POOL_INLINE_MAX_CORES = 2;
/** `store-pool-size` when unset on a machine with more cores than STORE_POOL_INLINE_MAX_CORES. */
export const STORE_POOL_SIZE_THREADS = 2;
/** The back-off a `ServerIsBusy` region error asks of the client, in milliseconds. */
export const SERVER_IS_BUSY_BACKOFF_MS = 20;

/** Wait before asking PD again for a new leader's max-ts timestamp after a failure. */
export const MAX_TS_SYNC_RETRY_MS = 500;

/** Most sibling regions an EpochNotMatch names besides the current one (TiKV: 10 in all). */
export const EPOCH_NOT_MATCH_MAX_SIBLINGS = 9;

/** How long a client backs off when a split found no ids from PD (answered ServerIsBusy). */
export const SPLIT_IDS_RETRY_MS = 200;
/** The shortest Raft tick a store accepts (`[raftstore] raft-base-tick-interval`). */
export const RAFTSTORE_MIN_TICK_MS = 10;

assertConstant(RAFTSTORE_TICK_MS >= RAFTSTORE_MIN_TICK_MS, "a Raft tick is at least 10 ms");

// ---------------------------------------------------------------------------------------------
// The store-to-store Raft transport (src/server/raft_transport/): BatchRaft client streams and
// the inbound BatchRaft/Raft handlers.

/** Most envelopes in one BatchRaftMessage (TiKV's `raft-msg-max-batch-size`). */
export const RAFT_CLIENT_BATCH_MAX_MESSAGES = 128;
/**
 * Encoded envelope bytes at which a BatchRaftMessage is closed (TiKV's `max-grpc-send-msg-len`);
 * an envelope larger than this on its own goes alone in its batch.
 */
export const RAFT_CLIENT_BATCH_MAX_BYTES = 10 * 1024 * 1024;
/**
 * Largest encoded envelope the client sends; a larger one is dropped and counted. Below
 * GRPC_MAX_MESSAGE_BYTES by the BatchRaftMessage framing, so a batch of one always fits the
 * receiver's message limit.
 */
export const RAFT_ENVELOPE_MAX_BYTES = GRPC_MAX_MESSAGE_BYTES - 64 * 1024;
/** Most envelopes queued for one destination store; when full, the oldest is dropped. */
export const RAFT_CLIENT_QUEUE_MAX_MESSAGES = 8192;
/** Most encoded bytes queued for one destination store; past it the oldest are dropped. */
export const RAFT_CLIENT_QUEUE_MAX_BYTES = 128 * 1024 * 1024;
/** Most destination stores one client keeps a link to; envelopes to more are dropped. */
export const RAFT_CLIENT_MAX_STORES = 4096;
/** First wait before reconnecting to a store after a failed connection or stream. */
export const RAFT_CLIENT_BACKOFF_INITIAL_MS = 100;
/** Longest wait between reconnection attempts (the wait doubles up to it). */
export const RAFT_CLIENT_BACKOFF_MAX_MS = 5_000;
/** Longest a store address lookup (`resolve`, PD's GetStore) may take. */
export const RAFT_CLIENT_RESOLVE_TIMEOUT_MS = 5_000;
/** Longest a connection to a store may take to become ready. */
export const RAFT_CLIENT_CONNECT_TIMEOUT_MS = 5_000;
/** Longest `close()` waits for each stream to end before cancelling it. */
export const RAFT_CLIENT_CLOSE_TIMEOUT_MS = 2_000;
/**
 * Batches one inbound stream may have handed to `deliver` and not yet seen finish; past it the
 * stream is paused (HTTP/2 flow control then holds the sender back).
 */
export const RAFT_SERVICE_STREAM_MAX_PENDING_BATCHES = 16;

assertConstant(
  RAFT_CLIENT_BATCH_MAX_BYTES <= RAFT_ENVELOPE_MAX_BYTES &&
    RAFT_ENVELOPE_MAX_BYTES < GRPC_MAX_MESSAGE_BYTES,
  "a batch of one envelope fits a gRPC message",
);
assertConstant(
  RAFT_ENVELOPE_MAX_BYTES <= RAFT_CLIENT_QUEUE_MAX_BYTES &&
    RAFT_CLIENT_BATCH_MAX_MESSAGES <= RAFT_CLIENT_QUEUE_MAX_MESSAGES,
  "a store's queue holds at least the largest envelope and a full batch",
);
assertConstant(
  RAFT_CLIENT_BACKOFF_INITIAL_MS >= 1 &&
    RAFT_CLIENT_BACKOFF_INITIAL_MS <= RAFT_CLIENT_BACKOFF_MAX_MS,
  "the reconnection backoff grows from a positive start to its maximum",
);
assertConstant(RAFT_SERVICE_STREAM_MAX_PENDING_BATCHES >= 1, "a stream may deliver a batch");

// ---------------------------------------------------------------------------------------------
// PD high availability (src/pd/pd_member.ts, src/pd/server/member_transport.ts): the members
// of `--initial-cluster` replicate PD's writes through a Raft group of their own.

/** Most members `--initial-cluster` may name (etcd advises at most 7; every member is a voter). */
export const PD_MEMBERS_MAX = 9;
/** Wall-clock length of one Raft tick of the PD members' group. */
export const PD_RAFT_TICK_INTERVAL_MS = 100;
/** Base election timeout of the PD group, in ticks (the real one is random in [this, 2×this)). */
export const PD_RAFT_ELECTION_TIMEOUT_TICKS = 10;
/** Ticks between the PD leader's heartbeats. */
export const PD_RAFT_HEARTBEAT_INTERVAL_TICKS = 2;
/** A member snapshots PD's state and compacts its Raft log once it holds more entries than this. */
export const PD_RAFT_LOG_COMPACT_ENTRIES = 2_000;
/** Entries kept behind the snapshot at compaction, so a briefly lagging member needs none. */
export const PD_RAFT_LOG_KEEP_ENTRIES = 200;
/** Largest message between PD members (a snapshot of PD's whole state rides in one). */
export const PD_RAFT_MESSAGE_MAX_BYTES = GRPC_MAX_MESSAGE_BYTES;
/** Most Raft messages queued for one peer member; more are dropped (Raft sends them again). */
export const PD_RAFT_SEND_QUEUE_MAX_MESSAGES = 4_096;
/** Most messages one call to a peer member carries. */
export const PD_RAFT_SEND_BATCH_MAX_MESSAGES = 256;
/** Deadline of one call carrying messages to a peer member. */
export const PD_RAFT_SEND_TIMEOUT_MS = 5_000;
/** Calls in flight to one peer member at once. */
export const PD_RAFT_SEND_MAX_IN_FLIGHT = 4;
/** Most PD writes a leader buffers before it proposes them as one Raft entry. */
export const PD_RAFT_PROPOSAL_MAX_WRITES = 10_000;

assertConstant(
  PD_RAFT_HEARTBEAT_INTERVAL_TICKS < PD_RAFT_ELECTION_TIMEOUT_TICKS,
  "PD members hear heartbeats within an election timeout",
);
assertConstant(
  PD_RAFT_LOG_KEEP_ENTRIES < PD_RAFT_LOG_COMPACT_ENTRIES,
  "compaction drops at least one entry",
);
assertConstant(
  PD_RAFT_SEND_BATCH_MAX_MESSAGES <= PD_RAFT_SEND_QUEUE_MAX_MESSAGES,
  "a peer's queue holds a full batch",
);

// ---------------------------------------------------------------------------------------------
// Region snapshots as SST files (src/raftstore/snapshot/, src/server/raft_transport/snapshot_*):
// generated per column family, streamed over `tikvpb.Tikv/Snapshot`, ingested on install.

/** Bytes of file data in one `SnapshotChunk` a sender writes (TiKV's SNAP_CHUNK_LEN, 1 MiB). */
export const SNAPSHOT_CHUNK_BYTES = 1024 * 1024;
/** Largest chunk a receiver accepts; a larger one ends the stream with INVALID_ARGUMENT. */
export const SNAPSHOT_CHUNK_MAX_BYTES = 4 * SNAPSHOT_CHUNK_BYTES;
/**
 * Most snapshots a store holds generated and not yet sent (TiKV bounds sends by
 * `concurrent-send-snap-limit`); past it, Raft is told the snapshot is temporarily unavailable
 * and asks again.
 */
export const SNAPSHOT_MAX_GENERATING = 4;
/** Most snapshot streams a store receives at once; more are refused with RESOURCE_EXHAUSTED. */
export const SNAPSHOT_MAX_RECEIVING = 4;
/** Deadline of sending one snapshot stream, from dialling to the receiver's `Done`. */
export const SNAPSHOT_SEND_TIMEOUT_MS = 10 * 60_000;
/** A received stream not ended within this is cancelled and its partial files removed. */
export const SNAPSHOT_RECEIVE_TIMEOUT_MS = 10 * 60_000;
/**
 * A generated snapshot older than this is taken back from its sender (whose message was lost
 * before it could stream it): its files are deleted and its place is free again.
 */
export const SNAPSHOT_GENERATED_MAX_AGE_MS = 2 * SNAPSHOT_SEND_TIMEOUT_MS;

assertConstant(
  SNAPSHOT_CHUNK_BYTES <= SNAPSHOT_CHUNK_MAX_BYTES &&
    SNAPSHOT_CHUNK_MAX_BYTES + 64 * 1024 <= GRPC_MAX_MESSAGE_BYTES,
  "a snapshot chunk fits a gRPC message",
);
assertConstant(
  SNAPSHOT_GENERATED_MAX_AGE_MS > SNAPSHOT_SEND_TIMEOUT_MS,
  "a generated snapshot outlives any stream sending it",
);

// ---------------------------------------------------------------------------------------------
// Region split (src/raftstore/split_check.ts; the `[coprocessor]` keys of src/server/config.ts).

/** Default `[coprocessor] region-split-size`: the size of the pieces a split cuts (TiKV: 96MiB). */
export const DEFAULT_REGION_SPLIT_SIZE_BYTES = 96 * 1024 * 1024;
/** Default `region-max-size`: a region larger than this is split (TiKV: 1.5 × split size). */
export const DEFAULT_REGION_MAX_SIZE_BYTES = DEFAULT_REGION_SPLIT_SIZE_BYTES / 2 * 3;
/** Default `region-split-keys`: keys per piece when a region splits by keys (TiKV: 960000). */
export const DEFAULT_REGION_SPLIT_KEYS = 960_000;
/** Default `region-max-keys`: a region with more keys than this is split (TiKV: 1.5 × split keys). */
export const DEFAULT_REGION_MAX_KEYS = DEFAULT_REGION_SPLIT_KEYS / 2 * 3;
/** Default `[raftstore] split-region-check-tick-interval` (TiKV: 10s). */
export const DEFAULT_SPLIT_REGION_CHECK_INTERVAL_MS = 10_000;
/**
 * Most split keys one split check produces (TiKV's `batch-split-limit`, 10): a larger region
 * is split in several rounds, so one check's scan stays near (this + 1) × region-max-size.
 */
export const SPLIT_CHECK_MAX_SPLIT_KEYS = 10;
/**
 * Most bytes (keys + values of the data column families) one split check reads; a larger region
 * is reported as seen so far (its size a lower bound). A backstop: with the defaults the
 * split-key bound ends a check first (asserted below).
 */
export const SPLIT_CHECK_SCAN_MAX_BYTES = 2 * 1024 * 1024 * 1024;
/** Most entries (keys of the data column families) one split check reads; see the bytes bound. */
export const SPLIT_CHECK_SCAN_MAX_KEYS = 16 * 1024 * 1024;
/**
 * Most split keys one manual split (the SplitRegion RPC, ctl) may name: each new region needs
 * ids from one AskBatchSplit, so at most PD_SPLIT_MAX_COUNT.
 */
export const SPLIT_REGION_MAX_KEYS = PD_SPLIT_MAX_COUNT;
/**
 * Most vote requests a store keeps for regions a split has not made here yet (replayed when it
 * does; TiKV keeps such messages too): the oldest go first past it.
 */
export const RAFTSTORE_SPLIT_PENDING_MAX = 256;
/**
 * Ticks between two stale checks of one replica (store.ts: a replica whose range a newer
 * region's leader's messages overlap asks its region's other stores whether it was removed).
 */
export const RAFTSTORE_STALE_CHECK_INTERVAL_TICKS = 10;
/** Entries a split check reads before letting its worker serve requests and rounds again. */
export const SPLIT_CHECK_SLICE_ENTRIES = 4096;
/**
 * How often `basalt-ctl region split` asks PD whether it knows the regions a split made (their
 * epoch and leader), until the command's `--timeout` (cli/region_split.ts).
 */
export const CTL_SPLIT_REPORT_POLL_MS = 100;

assertConstant(
  DEFAULT_REGION_SPLIT_SIZE_BYTES <= DEFAULT_REGION_MAX_SIZE_BYTES &&
    DEFAULT_REGION_SPLIT_KEYS <= DEFAULT_REGION_MAX_KEYS,
  "a region splits into pieces no larger than the size that makes it split",
);
assertConstant(
  (SPLIT_CHECK_MAX_SPLIT_KEYS + 1) * DEFAULT_REGION_MAX_SIZE_BYTES <= SPLIT_CHECK_SCAN_MAX_BYTES &&
    (SPLIT_CHECK_MAX_SPLIT_KEYS + 1) * DEFAULT_REGION_MAX_KEYS <= SPLIT_CHECK_SCAN_MAX_KEYS,
  "with the default sizes a split check ends at its split-key bound before its scan bound",
);
assertConstant(
  SPLIT_CHECK_MAX_SPLIT_KEYS >= 1 && SPLIT_CHECK_MAX_SPLIT_KEYS <= SPLIT_REGION_MAX_KEYS &&
    SPLIT_REGION_MAX_KEYS <= PD_SPLIT_MAX_COUNT,
  "the split keys of one check or one manual split get their ids from one AskBatchSplit",
);

// ---------------------------------------------------------------------------------------------
// Raft commands (src/raftstore/cmd_codec.ts).

/**
 * Largest encoded `raft_cmdpb.RaftCmdRequest`. It travels as a log entry's `data`, a
 * length-delimited field, and protobufjs reads no length of 2^31 or more: a larger command could
 * be proposed but never decoded again. The encoder asserts it (a write this large is a bug
 * upstream: gRPC requests are bounded far below it).
 */
export const RAFT_COMMAND_MAX_BYTES = 2 ** 31 - 1;

/**
 * Encoded write commands share slabs of this size (as protobufjs's writer and Node's
 * `Buffer.allocUnsafe` do, 8 KiB): a `new Uint8Array` costs ~0.3–1.7 µs in Deno, a view of a
 * slab ~25 ns (src/raftstore/cmd_codec_bench.ts). A held command keeps its slab alive.
 */
export const RAFT_COMMAND_SLAB_BYTES = 8 * 1024;
/** Largest command encoded into a shared slab; a larger one gets an array of its own. */
export const RAFT_COMMAND_SLAB_MAX_COMMAND_BYTES = RAFT_COMMAND_SLAB_BYTES / 2;

/**
 * Largest log entry that writes proposed together are merged into (src/raftstore/peer.ts
 * `flushProposals`, TiKV's `cmd-batch`): a round's small writes to one region become one
 * entry, so the log's per-entry costs (its key in CF `raft`, the entry's encoding, its
 * replication and apply bookkeeping) are paid once per round, not once per write. Bounded so
 * that one entry stays a small part of a message and of a round's write; a write larger than
 * this is an entry of its own.
 */
export const RAFT_WRITE_MERGE_MAX_BYTES = 256 * 1024;

assertConstant(
  MAX_ENTRY_BYTES + MAX_KEY_BYTES <= RAFT_COMMAND_MAX_BYTES,
  "one API entry fits one Raft command",
);
assertConstant(
  RAFT_WRITE_MERGE_MAX_BYTES <= RAFT_COMMAND_MAX_BYTES,
  "a merged entry is one Raft command",
);
assertConstant(
  RAFT_COMMAND_SLAB_MAX_COMMAND_BYTES <= RAFT_COMMAND_SLAB_BYTES,
  "a command that goes into a slab fits an empty one",
);

// ---------------------------------------------------------------------------------------------
// Hibernation of idle regions (src/raftstore/hibernate.ts; `[raftstore] hibernate-regions`).

/** Default of `[raftstore] hibernate-regions` (TiKV's default too): quiet regions stop ticking. */
export const DEFAULT_HIBERNATE_REGIONS = true;
/**
 * Election timeouts between a store's leader checks: every this many, a store wakes one of its
 * sleeping followers per store that leads some of them, and that follower asks its leader to
 * answer (src/raftstore/hibernate.ts). It bounds how long a leader that died while its regions
 * slept goes unnoticed; each check costs one region's wake-up per leading store.
 */
export const HIBERNATE_LEADER_CHECK_ELECTION_TIMEOUTS = 5;

assertConstant(
  HIBERNATE_LEADER_CHECK_ELECTION_TIMEOUTS >= 1,
  "a store checks the leaders of its sleeping followers at some interval",
);

// ---------------------------------------------------------------------------------------------
// Redis gateway (src/gateway/redis/).

/**
 * Largest bulk string the gateway reads or stores (Redis's `proto-max-bulk-len`, 512 MB there):
 * a value and its key must fit one API entry (MAX_ENTRY_BYTES). A longer bulk header is answered
 * `-ERR Protocol error: invalid bulk length` and the connection is closed, as Redis does; APPEND
 * and SETRANGE past it answer `-ERR string exceeds maximum allowed size (proto-max-bulk-len)`.
 */
export const REDIS_PROTO_MAX_BULK_BYTES = 4 * 1024 * 1024;
/**
 * Most bytes a connection's unparsed input may hold (Redis's `client-query-buffer-limit`, 1 GB
 * there): a connection past it is closed.
 */
export const REDIS_QUERY_BUFFER_MAX_BYTES = 64 * 1024 * 1024;
/** Most arguments of one command (a larger `*N` header is a protocol error). */
export const REDIS_MULTIBULK_MAX_ARGS = 1024 * 1024;
/** Longest inline command, and longest `*N` / `$N` header line (Redis's PROTO_INLINE_MAX_SIZE). */
export const REDIS_INLINE_MAX_BYTES = 64 * 1024;
/**
 * Longest Redis key: the gateway's key prefix and hash-field framing must still fit the API's
 * MAX_KEY_BYTES (a hash field key holds key and field together, see REDIS_MAX_FIELD_BYTES).
 */
export const REDIS_MAX_KEY_BYTES = 4 * 1024;
/** Longest hash field name. */
export const REDIS_MAX_FIELD_BYTES = MAX_KEY_BYTES - REDIS_MAX_KEY_BYTES - 64;
/** Most commands (from every connection) executed in one Basalt transaction. */
export const REDIS_BATCH_MAX_COMMANDS = 1024;
/**
 * Most bytes of arguments (plus REDIS_BATCH_KEY_OVERHEAD_BYTES per key) one batch gathers: a
 * batch this size writes less than the client's 1PC limit (ONE_PC_MAX_BYTES, 16 KiB), so it
 * commits in one request when its keys share a region. A larger batch falls back to 2PC, whose
 * secondary locks readers of the next batches then meet (measured: SET at pipeline 16 fell from
 * ~3k/s to 0.5k/s with 100-byte values and 800-command batches). One job larger than this still
 * runs, alone.
 */
export const REDIS_BATCH_MAX_BYTES = 12 * 1024;
/** What a batch's byte estimate adds per key: storage prefix, record header, expiry entry. */
export const REDIS_BATCH_KEY_OVERHEAD_BYTES = 48;
/**
 * Most batches of one gateway running at once (each one transaction; running batches touch
 * disjoint keys, see `job_order.ts`).
 */
export const REDIS_BATCHES_IN_FLIGHT_MAX = 8;
/** Most attempts of one batch whose commit meets a retriable conflict. */
export const REDIS_BATCH_MAX_ATTEMPTS = 16;
/** Most commands a connection may queue between MULTI and EXEC. */
export const REDIS_MULTI_MAX_COMMANDS = 16 * 1024;
/** Most keys a connection may WATCH at once. */
export const REDIS_WATCH_MAX_KEYS = 1024;
/** Most open connections; one more is told `-ERR max number of clients reached` and closed. */
export const REDIS_MAX_CLIENTS = 10_000;
/** Most SCAN/HSCAN cursors remembered (oldest dropped first; a dropped one is refused). */
export const REDIS_SCAN_CURSORS_MAX = 16 * 1024;
/** Most keys one SCAN/HSCAN call examines (COUNT is clamped to it). */
export const REDIS_SCAN_MAX_COUNT = 10_000;
/** Most keys KEYS returns; a larger answer is refused (use SCAN). */
export const REDIS_KEYS_MAX_KEYS = 1024 * 1024;
/** Keys read per page when the gateway walks the keyspace (KEYS, DBSIZE, FLUSHDB, HGETALL). */
export const REDIS_SCAN_PAGE_KEYS = 1024;
/** Most expired keys deleted by one round of the background reclaimer (one transaction). */
export const REDIS_RECLAIM_BATCH_KEYS = 256;
/** Interval between rounds of the background reclaimer (Redis's active expiry runs at 10 Hz). */
export const REDIS_RECLAIM_INTERVAL_MS = 100;

assertConstant(
  REDIS_MAX_KEY_BYTES + REDIS_MAX_FIELD_BYTES + 64 <= MAX_KEY_BYTES,
  "a Redis hash field's storage key fits the API's key limit",
);
assertConstant(
  REDIS_PROTO_MAX_BULK_BYTES + MAX_KEY_BYTES + 64 <= MAX_ENTRY_BYTES,
  "a Redis value and its storage key fit one API entry",
);
assertConstant(REDIS_SCAN_PAGE_KEYS <= REDIS_SCAN_MAX_COUNT, "a page fits a scan");
assertConstant(
  2 * REDIS_PROTO_MAX_BULK_BYTES + REDIS_INLINE_MAX_BYTES <= REDIS_QUERY_BUFFER_MAX_BYTES,
  "a connection's input holds at least a command with two maximal bulk strings",
);

// ---------------------------------------------------------------------------------------------
// PD scheduling at scale (issue #11): a round costs a bounded amount, not limit × regions.

/**
 * Most regions of one role on one store a balance scheduler weighs per step: a store with more
 * is sampled at random, this many draws (PD's schedulers likewise pick random regions from a
 * store's leader or follower sub-tree and retry a bounded number of times).
 */
export const PD_SCHEDULE_SAMPLE_REGIONS = 128;
/**
 * The replica and merge checkers' patrol: each round checks ceil(regions / this) regions from a
 * cursor that moves on through the key space, so every region is checked within this many
 * rounds (PD's `patrolRegionPartition` over its 10 ms patrol ticks).
 */
export const PD_PATROL_ROUNDS_PER_PASS = 16;
/** The least regions the patrol checks per round: a cluster this small is checked whole. */
export const PD_PATROL_REGIONS_MIN = 1024;
/** The most regions the patrol checks per round (PD's `MaxPatrolScanRegionLimit`). */
export const PD_PATROL_REGIONS_MAX = 8192;
/**
 * Most regions waiting for an immediate check because a heartbeat changed something the
 * checkers weigh (PD's pending-processed regions); past it, new ones wait for the patrol.
 */
export const PD_SUSPECT_REGIONS_MAX = 16 * 1024;
/** Most waiting regions (above) one round checks (PD's `suspectRegionLimit`). */
export const PD_SUSPECT_REGIONS_PER_ROUND = 1024;
/** Most regions per Down or Offline store one round checks for replicas to replace. */
export const PD_PATROL_STORE_REGIONS_PER_ROUND = 256;

assertConstant(
  PD_PATROL_REGIONS_MIN <= PD_PATROL_REGIONS_MAX && PD_PATROL_ROUNDS_PER_PASS >= 1,
  "the patrol's per-round bounds are ordered",
);
assertConstant(
  PD_SUSPECT_REGIONS_PER_ROUND <= PD_SUSPECT_REGIONS_MAX,
  "a round drains at most the waiting regions",
);

// ---------------------------------------------------------------------------------------------
// Write-path stage timings (src/raftstore/worker/stage_clock.ts; off unless BASALT_PUT_STAGES=1)

/** How often a thread whose stage clock is on logs its cumulative figures. */
export const STAGE_CLOCK_DUMP_INTERVAL_MS = 1_000;
/** How often a thread whose stage clock is on checks how late its timers fire (loop lag). */
export const STAGE_CLOCK_LAG_PROBE_MS = 20;
/** Histogram buckets per stage: bucket i holds durations up to 10 µs × 2^(i/2) (~100 s at 46). */
export const STAGE_CLOCK_BUCKETS = 48;
/**
 * Most send times a stage clock keeps waiting for their answer (an append for its ack, a
 * proposal for its log write); past it the oldest is forgotten (its stage goes unmeasured).
 */
export const STAGE_CLOCK_MARKS_MAX = 4096;

assertConstant(STAGE_CLOCK_BUCKETS >= 2 && STAGE_CLOCK_MARKS_MAX >= 1, "stage clock bounds");

// ---------------------------------------------------------------------------------------------
// Key-value API of the embedded store and the HTTP gateway (src/embedded/, src/gateway/http/).

/** Longest user key: the key-value prefix (4 bytes) must still fit the API's MAX_KEY_BYTES. */
export const KV_MAX_KEY_BYTES = 4 * 1024;
/** Largest user value: with its 9-byte header and its key it fits one API entry. */
export const KV_MAX_VALUE_BYTES = 4 * 1024 * 1024;
/** Longest TTL (ten years): its expiry time stays an exact integer of milliseconds. */
export const KV_MAX_TTL_SECONDS = 10 * 365 * 24 * 3600;
/** Pairs a scan returns when it names no limit. */
export const KV_SCAN_DEFAULT_LIMIT = 100;
/** Most pairs one scan (one HTTP page) returns; a larger `limit` is refused. */
export const KV_SCAN_MAX_LIMIT = 1000;
/** Pairs read from the store per request of a scan (expired ones are read and skipped). */
export const KV_SCAN_PAGE_KEYS = 256;
/**
 * Most stored pairs one forward scan examines, expired ones included: past it the page ends
 * early with a cursor, so a range full of expired pairs cannot hold a call for long.
 */
export const KV_SCAN_MAX_EXAMINED = 16 * 1024;
/**
 * Most stored pairs a reverse scan walks (the transactional client scans forward only, so a
 * reverse page is the tail of a forward walk of its range); a larger range is refused with
 * RangeTooLarge, naming this bound.
 */
export const KV_REVERSE_SCAN_MAX_EXAMINED = 100_000;
/** Most value bytes one scan returns; past it the page ends early with a cursor. */
export const KV_SCAN_MAX_ANSWER_BYTES = 16 * 1024 * 1024;
/** Attempts of a transaction that meets write conflicts (embedded `transaction`, HTTP /v1/txn). */
export const KV_TXN_MAX_ATTEMPTS = 8;
/** Interval between rounds of the expired-pair reclaimer, ms. */
export const KV_RECLAIM_INTERVAL_MS = 1_000;
/** Stored pairs one reclaimer round examines (it patrols the key space from a cursor). */
export const KV_RECLAIM_BATCH_KEYS = 256;
/** Largest HTTP request body; a larger one is answered 413 with a JSON error. */
export const HTTP_MAX_BODY_BYTES = 8 * 1024 * 1024;
/** Longest an HTTP request body may take to arrive once its handler reads it (then 408), ms. */
export const HTTP_BODY_READ_TIMEOUT_MS = 30_000;
/** Most operations (reads, puts, deletes, compares) in one POST /v1/txn. */
export const HTTP_TXN_MAX_OPS = 1024;
/** Most time an HTTP request waits for the store (retries included), ms. */
export const HTTP_REQUEST_TIMEOUT_MS = 20_000;

assertConstant(
  KV_MAX_KEY_BYTES + 4 <= MAX_KEY_BYTES,
  "a key-value key with its prefix is an API key",
);
assertConstant(
  KV_MAX_VALUE_BYTES + 9 + MAX_KEY_BYTES <= MAX_ENTRY_BYTES,
  "a key-value value with its header and key fits one API entry",
);
assertConstant(
  KV_SCAN_DEFAULT_LIMIT <= KV_SCAN_MAX_LIMIT && KV_SCAN_MAX_LIMIT <= KV_SCAN_MAX_EXAMINED &&
    KV_SCAN_MAX_EXAMINED <= KV_REVERSE_SCAN_MAX_EXAMINED,
  "scan limits are ordered",
);
assertConstant(
  Math.ceil(KV_MAX_VALUE_BYTES / 3) * 4 + Math.ceil(KV_MAX_KEY_BYTES / 3) * 4 + 1024 <=
    HTTP_MAX_BODY_BYTES,
  "an HTTP body holds the largest key and value in base64",
);
assertConstant(
  KV_MAX_VALUE_BYTES <= KV_SCAN_MAX_ANSWER_BYTES,
  "a scan page holds at least the largest value",
);

// ---------------------------------------------------------------------------------------------
// Region writes of a replicated PD (src/pd/pd_member.ts): the region metadata a heartbeat
// changes is "soft", as PD keeps it out of etcd — the heartbeat's answer does not wait for its
// commit, and the leader proposes such writes in batches, one Raft entry per batch.

/** Most region writes a leader buffers before it proposes them as one Raft entry. */
export const PD_REGION_WRITES_BATCH_MAX = 1_000;
/**
 * Raft ticks (`PD_RAFT_TICK_INTERVAL_MS` each) a buffered region write waits at most before it
 * is proposed, when fewer than `PD_REGION_WRITES_BATCH_MAX` came.
 */
export const PD_REGION_WRITES_FLUSH_TICKS = 1;
/**
 * Proposals a PD leader lets wait for their commit before every answer waits for them too (the
 * heartbeats' back-pressure: soft writes must not pile up in the log faster than it commits).
 */
export const PD_RAFT_UNCOMMITTED_MAX_ENTRIES = 32;

assertConstant(
  PD_REGION_WRITES_BATCH_MAX >= 1 && PD_REGION_WRITES_BATCH_MAX <= PD_RAFT_PROPOSAL_MAX_WRITES,
  "a batch of region writes fits one PD proposal",
);
assertConstant(
  PD_REGION_WRITES_FLUSH_TICKS >= 1 &&
    PD_REGION_WRITES_FLUSH_TICKS < PD_RAFT_ELECTION_TIMEOUT_TICKS,
  "buffered region writes are proposed within an election timeout",
);
/**
 * Bytes of entries a PD member applies past which it snapshots PD's state and compacts its log
 * (as after `PD_RAFT_LOG_COMPACT_ENTRIES` entries): batched region writes make entries of
 * hundreds of KiB, and the log is held in memory. What stays after a compaction is at most
 * `PD_RAFT_LOG_KEEP_ENTRIES` entries.
 */
export const PD_RAFT_LOG_COMPACT_BYTES = 64 * 1024 * 1024;
/**
 * Most bytes of committed entries one Ready of a PD member hands to apply: applying is
 * synchronous (decode, then one engine write), so a member far behind applies in slices of
 * about this size and its event loop keeps serving its Raft ticks and messages in between.
 */
export const PD_RAFT_APPLY_MAX_BYTES_PER_READY = 1024 * 1024;
/**
 * The PD process's election timeout (`election-interval`, PD's key), before a follower that
 * heard nothing from its leader campaigns; ticks are `PD_RAFT_TICK_INTERVAL_MS`. PD's leader
 * lease is 3 s. Measured (issue 11): on a loaded 2-core machine a PD leader's fsync took up to
 * 2.5 s during a burst of heartbeats, and with a 1 s timeout (`PD_RAFT_ELECTION_TIMEOUT_TICKS`,
 * still the pure member's default) the followers elected another leader.
 */
export const PD_ELECTION_INTERVAL_MS = 3_000;
/**
 * Longest a PD stream's handlers run one after another (requests already received) before
 * they yield the event loop to timers and I/O: handlers that await nothing would otherwise
 * run a whole socket read's worth of requests at once, ahead of the Raft ticks.
 */
export const PD_STREAM_TURN_MAX_MS = 10;

assertConstant(PD_RAFT_UNCOMMITTED_MAX_ENTRIES >= 1, "a leader may have a proposal in flight");
assertConstant(
  PD_ELECTION_INTERVAL_MS >= PD_RAFT_TICK_INTERVAL_MS * (PD_RAFT_HEARTBEAT_INTERVAL_TICKS + 1),
  "PD members hear heartbeats within the process's election timeout",
);
assertConstant(
  PD_STREAM_TURN_MAX_MS >= 1 && PD_STREAM_TURN_MAX_MS < PD_RAFT_TICK_INTERVAL_MS,
  "a stream yields within a Raft tick",
);
assertConstant(
  PD_RAFT_LOG_COMPACT_BYTES >= 16 * PD_REGION_WRITES_BATCH_MAX * 4096,
  "many full batches of region writes (a region record is well under 4 KiB) fit before a compaction",
);

assertConstant(
  PD_STORE_DOWN_GRACE_AFTER_LOAD_MS >= 2 * STORE_HEARTBEAT_INTERVAL_MS,
  "after PD loads its stores, each live one heartbeats twice before any may be called Down",
);
