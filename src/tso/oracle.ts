/**
 * The timestamp oracle (TSO): hands out TiKV-format timestamps, `physical_ms << 18 | logical`,
 * each strictly greater than every one handed out before — within a process, across restarts,
 * and while the wall clock steps backwards. Pure: the clock and the durable cell are arguments.
 *
 * Invariants (checked after every change):
 * 1. Issued timestamps strictly increase: the physical part never decreases, and within one
 *    physical millisecond the logical part only grows.
 * 2. `physical < savedBound`: every issued physical millisecond lies below the bound that was
 *    durably saved before it was issued (PD's "the physical time is always less than the saved
 *    timestamp").
 * 3. The saved bound never decreases.
 *
 * So a restart that begins above the saved bound can never repeat a timestamp, whatever the
 * wall clock says. This is PD's window scheme (`pkg/tso/tso.go`): save `physical + 3 s`, issue
 * below it, renew it before it runs out. Unlike PD, `next()` also moves the physical part up to
 * the wall clock itself rather than waiting for the 50 ms tick, so timestamps track the clock
 * closely; `tick()` keeps the window renewed while no requests arrive.
 *
 * @example
 * ```ts
 * import { MemoryValueStore, TimestampOracle } from "./mod.ts";
 * const oracle = TimestampOracle.open({ clock: { nowMs: () => Date.now() }, store: new MemoryValueStore() });
 * const batch = oracle.next(10); // ten timestamps; batch.last is the largest
 * ```
 *
 * @module
 */
import {
  TSO_CLOCK_STEP_TOLERANCE_MS,
  TSO_LOGICAL_BITS,
  TSO_MAX_COUNT,
  TSO_MAX_LOGICAL,
  TSO_MAX_PHYSICAL_MS,
  TSO_RENEW_MARGIN_MS,
  TSO_SAVE_WINDOW_MS,
  TSO_UPDATE_GUARD_MS,
} from "./constants.ts";
import type { Clock, ValueStore, WarnLog } from "./types.ts";
import { assert } from "../util/assert.ts";

/** An expected refusal of the oracle, with a stable code. */
export class TsoError extends Error {
  constructor(
    readonly code: "InvalidCount" | "PhysicalOverflow" | "InvalidSavedBound",
    message: string,
  ) {
    super(message);
    this.name = "TsoError";
  }
}

/** `count` consecutive timestamps, all in one physical millisecond. */
export interface TsoBatch {
  physicalMs: bigint;
  /** The logical part of the last (largest) timestamp. */
  logical: bigint;
  count: number;
  /** The smallest timestamp of the batch. */
  first: bigint;
  /** The largest timestamp of the batch: what PD returns in `TsoResponse.timestamp`. */
  last: bigint;
}

/** How a timestamp oracle is opened. */
export interface TsoOptions {
  clock: Clock;
  /** Holds the saved bound: a physical millisecond no issued timestamp reaches. */
  store: ValueStore;
  /** How far ahead of the physical part the bound is saved; default `TSO_SAVE_WINDOW_MS`. */
  saveWindowMs?: number;
  log?: WarnLog;
}

/** Builds `physicalMs << 18 | logical`. */
export function composeTimestamp(physicalMs: number, logical: number): bigint {
  return (BigInt(physicalMs) << BigInt(TSO_LOGICAL_BITS)) | BigInt(logical);
}

const silent: WarnLog = { warn() {} };

/**
 * Whether the clock stepped back since the last save. The saved bound runs a window ahead of
 * the clock by design, and further after quick restarts (each begins above the last bound), so
 * a clock below the bound is no sign of trouble. A clock behind the time the store recorded
 * for the save is; without that record, a clock behind the bound's own save time (bound minus
 * one window) is the best sign left.
 */
function clockSteppedBack(
  options: Required<TsoOptions>,
  reading: { nowMs: number; lastBoundMs: number },
): boolean {
  const savedAtMs = options.store.savedAtMs?.() ?? null;
  if (savedAtMs !== null) return reading.nowMs < savedAtMs - TSO_CLOCK_STEP_TOLERANCE_MS;
  return reading.nowMs < reading.lastBoundMs - options.saveWindowMs;
}

function readClock(clock: Clock): number {
  const nowMs = clock.nowMs();
  assert(Number.isSafeInteger(nowMs) && nowMs >= 0, "the clock returns ms since the epoch", {
    nowMs,
  });
  return nowMs;
}

/** A timestamp oracle over a clock and a durable saved bound. */
export class TimestampOracle {
  readonly #clock: Clock;
  readonly #store: ValueStore;
  readonly #windowMs: number;
  readonly #log: WarnLog;
  #physicalMs: number;
  #logical = 0;
  #savedBoundMs: number;
  /** The wall clock's latest reading, to tell a backward step from a TSO ahead by design. */
  #lastClockMs: number;

  private constructor(
    options: Required<TsoOptions>,
    start: { physicalMs: number; savedBoundMs: number; clockMs: number },
  ) {
    this.#clock = options.clock;
    this.#store = options.store;
    this.#windowMs = options.saveWindowMs;
    this.#log = options.log;
    this.#physicalMs = start.physicalMs;
    this.#savedBoundMs = start.savedBoundMs;
    this.#lastClockMs = start.clockMs;
  }

  /**
   * Loads the saved bound, begins above it (or at the wall clock, whichever is later) and saves
   * a new window before anything is issued. Throws what the store throws (a corrupt file).
   */
  static open(options: TsoOptions): TimestampOracle {
    const full: Required<TsoOptions> = {
      clock: options.clock,
      store: options.store,
      saveWindowMs: options.saveWindowMs ?? TSO_SAVE_WINDOW_MS,
      log: options.log ?? silent,
    };
    assert(
      Number.isSafeInteger(full.saveWindowMs) && full.saveWindowMs > TSO_RENEW_MARGIN_MS,
      "the save window exceeds the renew margin",
      { saveWindowMs: full.saveWindowMs, renewMarginMs: TSO_RENEW_MARGIN_MS },
    );
    const loaded = full.store.load();
    if (loaded !== null && (loaded < 0n || loaded > BigInt(TSO_MAX_PHYSICAL_MS))) {
      throw new TsoError("InvalidSavedBound", `saved TSO bound ${loaded} is not a physical ms`);
    }
    const lastBoundMs = loaded === null ? null : Number(loaded);
    const nowMs = readClock(full.clock);
    let physicalMs = nowMs;
    if (lastBoundMs !== null && nowMs - lastBoundMs < TSO_UPDATE_GUARD_MS) {
      // The wall clock is behind the window a previous run may have used up: begin past it.
      physicalMs = lastBoundMs + TSO_UPDATE_GUARD_MS;
    }
    if (lastBoundMs !== null && clockSteppedBack(full, { nowMs, lastBoundMs })) {
      full.log.warn("system time may be incorrect: the clock is behind the last TSO save", {
        savedBoundMs: lastBoundMs,
        savedAtMs: full.store.savedAtMs?.() ?? undefined,
        wallClockMs: nowMs,
        behindMs: physicalMs - nowMs,
      });
    }
    const savedBoundMs = physicalMs + full.saveWindowMs;
    if (savedBoundMs > TSO_MAX_PHYSICAL_MS) {
      throw new TsoError("PhysicalOverflow", `TSO physical part would pass ${TSO_MAX_PHYSICAL_MS}`);
    }
    full.store.save(BigInt(savedBoundMs));
    return new TimestampOracle(full, { physicalMs, savedBoundMs, clockMs: nowMs });
  }

  /** The bound most recently saved; every issued physical part is below it. */
  get savedBoundMs(): number {
    return this.#savedBoundMs;
  }

  /** The largest timestamp issued so far, or the starting point if none was. */
  get lastIssued(): bigint {
    return composeTimestamp(this.#physicalMs, this.#logical);
  }

  /**
   * Issues `count` consecutive timestamps and returns the batch; `last` is the largest, as PD's
   * Tso returns it. Throws `TsoError` for a count outside [1, TSO_MAX_COUNT], and what the store
   * throws if a window renewal cannot be saved (then nothing is issued).
   */
  next(count = 1): TsoBatch {
    if (!Number.isSafeInteger(count) || count < 1 || count > TSO_MAX_COUNT) {
      throw new TsoError("InvalidCount", `tso count must be in [1, ${TSO_MAX_COUNT}]: ${count}`);
    }
    const before = this.lastIssued;
    const nowMs = readClock(this.#clock);
    this.#noteClock(nowMs);
    let target = Math.max(this.#physicalMs, nowMs);
    if (target === this.#physicalMs && this.#logical + count >= TSO_MAX_LOGICAL) {
      // Logical overflow within this millisecond: borrow the next one, ahead of the wall clock
      // if need be (PD waits for its tick instead; we cannot sleep in a pure core).
      target = this.#physicalMs + 1;
    }
    if (target > this.#physicalMs) this.#moveTo(target);
    this.#logical += count;
    const last = this.lastIssued;
    assert(last - BigInt(count) >= before, "a batch starts above the last one issued", {
      last,
      count,
      before,
    });
    assert(this.#logical < TSO_MAX_LOGICAL, "the logical part stays below its maximum", {
      logical: this.#logical,
    });
    return {
      physicalMs: BigInt(this.#physicalMs),
      logical: BigInt(this.#logical),
      count,
      first: last - BigInt(count - 1),
      last,
    };
  }

  /**
   * The periodic update (PD's `updateTimestamp`, every `TSO_TICK_INTERVAL_MS`): follows the wall
   * clock, moves on a millisecond when more than half the logical space is used, and so renews
   * the saved window ahead of need even while no requests arrive. Throws what the store throws.
   */
  tick(): void {
    const nowMs = readClock(this.#clock);
    this.#noteClock(nowMs);
    if (nowMs > this.#physicalMs) this.#moveTo(nowMs);
    else if (this.#logical > TSO_MAX_LOGICAL / 2) this.#moveTo(this.#physicalMs + 1);
  }

  /**
   * Moves the physical part up to `physicalMs` when it is below (a PD adopting a standalone
   * store's cluster, whose timestamps all lie below that millisecond: `src/pd/adoption.ts`), so
   * every timestamp issued afterwards is above `physicalMs << 18`. Saves a new window first
   * when needed; throws `TsoError` past `TSO_MAX_PHYSICAL_MS`, and what the store throws.
   */
  advanceTo(physicalMs: number): void {
    assert(Number.isSafeInteger(physicalMs) && physicalMs >= 0, "a physical ms to advance to", {
      physicalMs,
    });
    if (physicalMs > this.#physicalMs) this.#moveTo(physicalMs);
  }

  /** Moves the physical part up to `targetMs`, saving a new window first when it is close. */
  #moveTo(targetMs: number): void {
    assert(targetMs > this.#physicalMs, "the physical part only moves up", {
      physicalMs: this.#physicalMs,
      targetMs,
    });
    if (this.#savedBoundMs - targetMs <= TSO_RENEW_MARGIN_MS) {
      const boundMs = targetMs + this.#windowMs;
      if (boundMs > TSO_MAX_PHYSICAL_MS) {
        throw new TsoError(
          "PhysicalOverflow",
          `TSO physical part would pass ${TSO_MAX_PHYSICAL_MS}`,
        );
      }
      // Saved before the physical part moves: if the save throws, nothing has changed.
      this.#store.save(BigInt(boundMs));
      this.#savedBoundMs = boundMs;
    }
    this.#physicalMs = targetMs;
    this.#logical = 0;
    assert(this.#physicalMs < this.#savedBoundMs, "the physical part stays below the saved bound", {
      physicalMs: this.#physicalMs,
      savedBoundMs: this.#savedBoundMs,
    });
  }

  /**
   * Warns when the wall clock steps back from its previous reading. The physical part itself
   * may run ahead of the clock by design (a restart begins above the saved bound, a logical
   * overflow borrows the next millisecond), which is no reason to warn.
   */
  #noteClock(nowMs: number): void {
    if (nowMs < this.#lastClockMs - TSO_UPDATE_GUARD_MS) {
      this.#log.warn("wall clock stepped back; timestamps keep increasing from the TSO", {
        wallClockMs: nowMs,
        previousWallClockMs: this.#lastClockMs,
        physicalMs: this.#physicalMs,
        behindMs: this.#physicalMs - nowMs,
      });
    }
    this.#lastClockMs = nowMs;
  }
}
