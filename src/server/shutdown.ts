/**
 * The store's shutdown, in the only safe order (issue #9, item 5):
 *
 * 1. Drain: `/health` already answers 503; gRPC stops accepting and ends its streams, and the
 *    requests in flight finish — bounded by SHUTDOWN_DRAIN_MS.
 * 2. Stop the status server (it reads engine properties).
 * 3. Stop the region workers — bounded by WORKER_STOP_TIMEOUT_MS. Each detaches from the
 *    database once its durable writes have left RocksDB.
 * 4. Close the embedded PD (its TSO timer).
 * 5. Only if every worker detached and no durable write of any thread is inside RocksDB: flush
 *    the memtables (a failure, such as a full disk, is logged: the WAL still holds everything)
 *    and close the database. Otherwise leave the database open to its write-ahead log, flush
 *    nothing, and let the caller end the process without RocksDB's static destructors
 *    (`ffi/exit.ts`): closing a database a thread may still use is a use-after-free, which ends
 *    in SIGSEGV or SIGABRT inside RocksDB.
 *
 * The waits of steps 1 and 3 are bounded; the whole is held to SHUTDOWN_MAX_MS all the same
 * (a status server that will not stop, a PD that hangs): past it the outcome is "overrun", the
 * database is neither flushed nor closed, and the caller ends the process as for "left-to-wal".
 */
import { SHUTDOWN_MAX_MS } from "../constants.ts";
import type { LogFields } from "./log.ts";
import type { WorkersStopResult } from "./region_workers.ts";

/** The database as the shutdown sees it. */
export interface ShutdownEngine {
  readonly attachedCount: number;
  readonly durableWritesInFlightAnywhere: number;
  flush(): void;
  close(): void;
}

/** The parts of a running store, stopped in order by `shutDown`. */
export interface ShutdownParts {
  log: {
    info(message: string, fields?: LogFields): void;
    warn(message: string, fields?: LogFields): void;
  };
  /** Step 1: resolves whether every request in flight finished in time. */
  drain(): Promise<boolean>;
  /** Step 2. */
  stopStatusServer(): Promise<void>;
  /** Step 3, bounded. */
  stopWorkers(): Promise<WorkersStopResult>;
  /** Step 4. */
  closePd(): void;
  engine: ShutdownEngine;
}

/**
 * How the database was left: closed, or open to its write-ahead log (because a worker may use
 * it, or because the shutdown ran past SHUTDOWN_MAX_MS).
 */
export type ShutdownOutcome = "closed" | "left-to-wal" | "overrun";

/** Stops the store's parts in order within `maxMs` (see the module header). */
export async function shutDown(
  parts: ShutdownParts,
  options: { maxMs?: number } = {},
): Promise<ShutdownOutcome> {
  const maxMs = options.maxMs ?? SHUTDOWN_MAX_MS;
  const clock = { overrun: false };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"overrun">((resolve) => {
    timer = setTimeout(() => {
      clock.overrun = true;
      parts.log.warn("shutdown overran its time; the WAL keeps the data", { maxMs });
      resolve("overrun");
    }, maxMs);
  });
  try {
    return await Promise.race([stopInOrder(parts, clock), late]);
  } finally {
    clearTimeout(timer);
  }
}

async function stopInOrder(
  parts: ShutdownParts,
  clock: { overrun: boolean },
): Promise<ShutdownOutcome> {
  const { log, engine } = parts;
  const drained = await parts.drain();
  if (!drained) log.warn("requests still in flight after the drain; stopping the workers anyway");
  await parts.stopStatusServer();
  const workers = await parts.stopWorkers();
  parts.closePd();
  // The caller may already be ending the process: then touch nothing.
  if (clock.overrun) return "overrun";
  const busy = engine.attachedCount > 0 || engine.durableWritesInFlightAnywhere > 0;
  if (!workers.detached || busy) {
    log.warn("left the engine to its write-ahead log: a worker may still use it", {
      stuckGroups: workers.stuckGroups.join(","),
      attached: engine.attachedCount,
      durableWritesInFlight: engine.durableWritesInFlightAnywhere,
    });
    return "left-to-wal";
  }
  try {
    engine.flush();
  } catch (error) {
    // A full disk fails the flush; the WAL holds every acknowledged write all the same.
    log.warn("flush at shutdown failed; the WAL keeps the data", { error: String(error) });
  }
  engine.close();
  return "closed";
}
