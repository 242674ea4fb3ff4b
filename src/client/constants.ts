/**
 * Every bound of the TypeScript client in one place: batch sizes, queue lengths, retry counts,
 * back-off times and default deadlines. Relations between them are asserted when this module
 * loads, so an inconsistent edit fails at start-up. (The server's bounds are in
 * `src/constants.ts`; the client keeps its own so it can be used without the server's code.)
 */

// ---------------------------------------------------------------------------------------------
// Transport (BatchCommands streams and unary calls to one store).

/** Default most sub-requests in one BatchCommands message (TiKV's `max-batch-size`). */
export const DEFAULT_MAX_BATCH_SIZE = 128;
/** Most sub-requests in one BatchCommands message the server accepts (its own bound). */
export const SERVER_MAX_BATCH_SIZE = 4096;
/** Default wait window for more sub-requests while a stream is busy; 0 = no timer wait. */
export const DEFAULT_MAX_BATCH_WAIT_MS = 0;
/** Default in-flight sub-requests on a stream at which it counts as busy (TiKV: batch-wait-size). */
export const DEFAULT_BUSY_THRESHOLD = 8;
/** Default BatchCommands streams per store. */
export const DEFAULT_STREAMS_PER_STORE = 2;
/** Most BatchCommands streams per store. */
export const MAX_STREAMS_PER_STORE = 64;
/** Most requests queued or in flight to one store before new ones are refused. */
export const MAX_PENDING_REQUESTS_PER_STORE = 1 << 17;
/** Largest gRPC message sent or received (the server's limit is the same). */
export const GRPC_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
/** HTTP/2 keepalive ping interval and the time a ping may go unanswered (TiKV's client: 10s/3s). */
export const KEEPALIVE_TIME_MS = 10_000;
export const KEEPALIVE_TIMEOUT_MS = 3_000;
/** Longest single wait of a connection's deadline timer (a far deadline is re-armed). */
export const DEADLINE_TIMER_MAX_MS = 60_000;
/** gRPC's reconnect back-off after a connection failure (grpc-js defaults are 1 s up to 120 s). */
export const RECONNECT_INITIAL_BACKOFF_MS = 100;
export const RECONNECT_MAX_BACKOFF_MS = 1_000;

// ---------------------------------------------------------------------------------------------
// Requests (RawKV, the region request sender).

/** Default deadline of one client call, retries included. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 20_000;
/**
 * Most attempts of one request to one region (regrouped parts of it included) before its last
 * error is surfaced; each region request of a multi-region call has its own (`Backoffer.fork`).
 */
export const MAX_ATTEMPTS_PER_REQUEST = 64;
/** Most keys in one raw batch request to one region (the server accepts up to 65 536). */
export const RAW_BATCH_MAX_KEYS = 4096;
/** Most key + value bytes in one RawBatchPut request to one region. */
export const RAW_BATCH_PUT_MAX_BYTES = 4 * 1024 * 1024;
/** Most pairs asked of one RawScan request (the server clamps to 65 536). */
export const RAW_SCAN_MAX_LIMIT = 65_536;
/**
 * Most split keys in one SplitRegion request: a request of N keys makes N new regions, and
 * PD hands out the ids of at most 1024 new regions per AskBatchSplit (the server's
 * `PD_SPLIT_MAX_COUNT`).
 */
export const SPLIT_REGION_MAX_KEYS = 1024;
/** Most regions one batch call sends to at once. */
export const MAX_CONCURRENT_REGION_REQUESTS = 16;

/** Time worth one more attempt; with less left before the deadline, a call gives up. */
export const BACKOFF_MIN_ATTEMPT_MS = 2;
/** Back-off schedules: first sleep and cap, in ms, doubling with equal jitter (TiKV's Backoffer). */
export const BACKOFF_SCHEDULES = {
  /** The region cache was stale (epoch, region not found, key not in region). */
  regionMiss: { baseMs: 2, capMs: 500 },
  /** The leader moved or is unknown. */
  notLeader: { baseMs: 2, capMs: 500 },
  /** The store said it is busy; its hint, when given, replaces the base. */
  serverBusy: { baseMs: 50, capMs: 2_000 },
  /** The store could not be reached or the stream broke. */
  storeUnavailable: { baseMs: 50, capMs: 1_000 },
  /** PD could not be reached. */
  pdUnavailable: { baseMs: 50, capMs: 1_000 },
} as const;

// ---------------------------------------------------------------------------------------------
// Region cache and PD.

/** Most regions held in the client's region cache; the oldest entries are dropped beyond it. */
export const REGION_CACHE_MAX_REGIONS = 1 << 20;
/**
 * An entry of the region cache unused this long is loaded from PD again at its next use
 * (client-go's `region-cache-ttl`, 600 s): a region nobody sent to met no region error that
 * would have kept it right.
 */
export const REGION_CACHE_TTL_MS = 600_000;
/** Regions asked per ScanRegions call when the cache is warmed for a range. */
export const PD_SCAN_REGIONS_LIMIT = 128;
/** Deadline of one call to PD. */
export const PD_REQUEST_TIMEOUT_MS = 5_000;
/** While PD's members hold an election (none knows a leader), how often the client asks again. */
export const PD_ELECTION_POLL_MS = 100;

function assertConstant(condition: boolean, what: string): void {
  if (!condition) throw new Error(`client/constants.ts: ${what}`);
}

assertConstant(
  DEFAULT_MAX_BATCH_SIZE > 0 && DEFAULT_MAX_BATCH_SIZE <= SERVER_MAX_BATCH_SIZE,
  "a default batch must be accepted by the server",
);
assertConstant(
  DEFAULT_STREAMS_PER_STORE >= 1 && DEFAULT_STREAMS_PER_STORE <= MAX_STREAMS_PER_STORE,
  "default streams per store within bounds",
);
assertConstant(RAW_BATCH_MAX_KEYS <= 65_536, "a raw batch must be accepted by the server");
assertConstant(
  RAW_BATCH_PUT_MAX_BYTES < GRPC_MAX_MESSAGE_BYTES / 2,
  "a raw batch put fits a gRPC message with room for framing",
);
assertConstant(KEEPALIVE_TIMEOUT_MS < KEEPALIVE_TIME_MS, "a ping times out before the next one");
assertConstant(
  RECONNECT_INITIAL_BACKOFF_MS <= RECONNECT_MAX_BACKOFF_MS,
  "reconnect back-off starts below its cap",
);
for (const [kind, schedule] of Object.entries(BACKOFF_SCHEDULES)) {
  assertConstant(schedule.baseMs > 0 && schedule.baseMs <= schedule.capMs, `back-off ${kind}`);
}
