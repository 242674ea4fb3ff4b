/**
 * The interfaces the timestamp oracle is built on: a wall clock and a durable cell holding one
 * u64. They import nothing of any implementation, so the oracle runs equally on a file, on a
 * Raft-replicated cell (PD members), or on the simulator's disk and clock.
 *
 * @module
 */

/** A wall clock. */
export interface Clock {
  /** Milliseconds since the Unix epoch, an integer. May step backwards. */
  nowMs(): number;
}

/**
 * One durable u64 (the TSO's saved bound, the id allocator's window end, the GC safe point).
 *
 * Contract: `save(value)` returns only once `value` survives a crash, and a later `load()` (in
 * this process or the next) returns the last value saved. `load()` returns `null` when nothing
 * was ever saved, and throws, naming what it read, when the stored value is unreadable: a
 * corrupt cell must never read as "nothing saved", or the allocators built on it would reissue.
 */
export interface ValueStore {
  load(): bigint | null;
  save(value: bigint): void;
  /**
   * The wall-clock time of the last save as the store recorded it (a file's modification
   * time), or null when unknown. The TSO compares it with the clock when it opens: a clock
   * behind it has stepped back, while a clock merely behind the saved bound is normal.
   */
  savedAtMs?(): number | null;
}

/** Fields attached to a log line (the server's `Logger` accepts these). */
export type LogFields = Record<string, string | number | bigint | boolean | undefined>;

/** The part of a logger the pure cores use to report what an operator should see. */
export interface WarnLog {
  warn(message: string, fields?: LogFields): void;
}
