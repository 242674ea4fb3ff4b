/**
 * Where a write's time goes, per stage, for `bench/put_breakdown.ts` (issue #13 item 5): each
 * thread of a store (the main thread, every region worker) keeps durations per named stage and
 * counters, and logs their cumulative figures every STAGE_CLOCK_DUMP_INTERVAL_MS; the bench
 * reads the store's log before and after a cell and subtracts.
 *
 * Off unless the store's environment sets `BASALT_PUT_STAGES=1` and the process may read it
 * (a store under `deno task serve` may not: the e2e harness grants the variables it passes).
 * Off, every hook is one test of a constant; on, a hook is one or two `performance.now()` calls
 * and a map update — well under a microsecond against the hundreds a put costs.
 *
 * Every stage is measured within one thread (no clock is compared across threads or
 * processes); what lies between two threads is found by subtracting one stage from another
 * (see the bench's table).
 *
 * Invariants: a thread's figures only grow (the bench subtracts two dumps); the marks waiting
 * for their answer are bounded by STAGE_CLOCK_MARKS_MAX, the oldest forgotten first.
 *
 * @module
 */

import {
  STAGE_CLOCK_BUCKETS,
  STAGE_CLOCK_DUMP_INTERVAL_MS,
  STAGE_CLOCK_LAG_PROBE_MS,
  STAGE_CLOCK_MARKS_MAX,
} from "../../constants.ts";
import type { KvEngine, WriteBatch } from "../../engine/types.ts";
import { assert } from "../../util/assert.ts";

/** The environment variable that turns stage clocks on (value "1"). */
export const PUT_STAGES_ENV = "BASALT_PUT_STAGES";
/** The log message of a thread's dump; its field `figures` holds `StageSnapshot` as JSON. */
export const PUT_STAGES_LOG_MESSAGE = "put stages";

function readFlag(): boolean {
  try {
    return Deno.env.get(PUT_STAGES_ENV) === "1";
  } catch {
    return false; // Not allowed to read it: off.
  }
}

/** Whether this process's stage clocks run (read once, when the module loads). */
export const stagesOn: boolean = readFlag();

/** The duration histogram bucket of `ms`: bucket i holds durations up to 10 µs × 2^(i/2). */
export function bucketOf(ms: number): number {
  if (!(ms > 0.01)) return 0;
  const bucket = Math.ceil(2 * Math.log2(ms / 0.01));
  return Math.min(bucket, STAGE_CLOCK_BUCKETS - 1);
}

/** The upper bound, ms, of bucket `bucket`. */
export function bucketUpperMs(bucket: number): number {
  return 0.01 * 2 ** (bucket / 2);
}

/** One stage's cumulative figures. */
export interface StageFigures {
  count: number;
  sumMs: number;
  /** Counts per `bucketOf` bucket. */
  buckets: number[];
}

/** What a thread's clock has measured so far. */
export interface StageSnapshot {
  stages: Record<string, StageFigures>;
  counters: Record<string, number>;
}

/** One thread's stage durations, counters and pending marks (see the module header). */
export class StageClock {
  readonly #stages = new Map<string, StageFigures>();
  readonly #counters = new Map<string, number>();
  /** Start times waiting for the event that ends their stage, by key (insertion order). */
  readonly #marks = new Map<string, number>();
  /** Start times of proposals not yet in a log write, oldest first. */
  #proposed: number[] = [];

  /** Adds one duration to `stage`. */
  record(stage: string, ms: number): void {
    let figures = this.#stages.get(stage);
    if (figures === undefined) {
      figures = { count: 0, sumMs: 0, buckets: new Array(STAGE_CLOCK_BUCKETS).fill(0) };
      this.#stages.set(stage, figures);
    }
    figures.count++;
    figures.sumMs += ms;
    figures.buckets[bucketOf(ms)]!++;
  }

  /** Adds `n` to counter `name`. */
  count(name: string, n = 1): void {
    this.#counters.set(name, (this.#counters.get(name) ?? 0) + n);
  }

  /** Remembers that `key`'s stage started at `at` (the oldest mark goes when too many wait). */
  mark(key: string, at: number): void {
    if (this.#marks.size >= STAGE_CLOCK_MARKS_MAX && !this.#marks.has(key)) {
      const oldest = this.#marks.keys().next().value!;
      this.#marks.delete(oldest);
    }
    this.#marks.set(key, at);
  }

  /** Ends `key`'s stage at `at`: records it under `stage` if it was marked; true if it was. */
  end(key: string, stage: string, at: number): boolean {
    const start = this.#marks.get(key);
    if (start === undefined) return false;
    this.#marks.delete(key);
    this.record(stage, at - start);
    return true;
  }

  /** A proposal entered the store at `at` (its log write start ends its stage). */
  proposed(at: number): void {
    if (this.#proposed.length >= STAGE_CLOCK_MARKS_MAX) this.#proposed.shift();
    this.#proposed.push(at);
  }

  /** A log write starts at `at`: every proposal waiting went into it (`stage`). */
  logWriteStarts(stage: string, at: number): void {
    const proposed = this.#proposed;
    if (proposed.length === 0) return;
    this.#proposed = [];
    for (const start of proposed) this.record(stage, at - start);
  }

  /** The figures so far (copies). */
  snapshot(): StageSnapshot {
    const stages: Record<string, StageFigures> = {};
    for (const [name, f] of this.#stages) {
      stages[name] = { count: f.count, sumMs: f.sumMs, buckets: [...f.buckets] };
    }
    return { stages, counters: Object.fromEntries(this.#counters) };
  }
}

/** This thread's clock. */
export const stageClock = new StageClock();

/** Milliseconds on this thread's monotonic clock. */
export function stageNow(): number {
  return performance.now();
}

/** How late this thread's lag probe fired (`startStageDump`). */
export const LOOP_LAG_STAGE = "loop.lag";

/** Stage names of the engine's writes (`timedEngine`). */
export const ENGINE_STAGES = {
  /** A synced write (group commit + fsync), call to settle. */
  syncedWrite: "engine.syncedWrite",
  /** An unsynced write (memtable and WAL buffer only). */
  write: "engine.write",
  /** Proposal handed to the store → the synced write that carries it starts. */
  proposeToLogWrite: "leader.proposeToLogWrite",
} as const;

/**
 * `engine` with its writes timed: synced writes (the log's fsyncs) and unsynced ones, and every
 * proposal waiting is ended by the next synced write (`ENGINE_STAGES`). Calls go to `engine`
 * itself (`this` bound to it), so its private state works; only for a clock that is on, as the
 * proxy costs every engine call a trap.
 */
export function timedEngine(engine: KvEngine): KvEngine {
  const writeDurable = async (batch: WriteBatch): Promise<void> => {
    const start = stageNow();
    stageClock.logWriteStarts(ENGINE_STAGES.proposeToLogWrite, start);
    await engine.writeDurable(batch);
    stageClock.record(ENGINE_STAGES.syncedWrite, stageNow() - start);
  };
  const write = (batch: WriteBatch): void => {
    const start = stageNow();
    engine.write(batch);
    stageClock.record(ENGINE_STAGES.write, stageNow() - start);
  };
  return new Proxy(engine, {
    get(target, property) {
      if (property === "writeDurable") return writeDurable;
      if (property === "write") return write;
      const value = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/**
 * Logs this thread's figures every STAGE_CLOCK_DUMP_INTERVAL_MS while stage clocks are on (a
 * no-op otherwise); returns the function that stops it.
 */
export function startStageDump(
  log: (message: string, fields: Record<string, string>) => void,
  thread: string,
): () => void {
  if (!stagesOn) return () => {};
  assert(thread.length > 0, "a stage dump names its thread");
  const dump = () =>
    log(PUT_STAGES_LOG_MESSAGE, { thread, figures: JSON.stringify(stageClock.snapshot()) });
  dump();
  const timer = setInterval(dump, STAGE_CLOCK_DUMP_INTERVAL_MS);
  // How late a timer fires: how long this thread's event loop was busy (or the thread waited
  // for a core) when something arrived.
  let expected = stageNow() + STAGE_CLOCK_LAG_PROBE_MS;
  const probe = setInterval(() => {
    const now = stageNow();
    stageClock.record(LOOP_LAG_STAGE, Math.max(0, now - expected));
    expected = now + STAGE_CLOCK_LAG_PROBE_MS;
  }, STAGE_CLOCK_LAG_PROBE_MS);
  return () => {
    clearInterval(timer);
    clearInterval(probe);
  };
}
