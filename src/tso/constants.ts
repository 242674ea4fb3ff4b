/**
 * Bounds of the timestamp oracle. They live beside the oracle rather than in `src/constants.ts`
 * only because that file belongs to another concern's owner today; relations between them are
 * asserted when this module loads, as `src/constants.ts` does for its own.
 */
import { assert } from "../util/assert.ts";

/** Bits of a timestamp's logical part (TiKV/PD: `physical_ms << 18 | logical`). */
export const TSO_LOGICAL_BITS = 18;
/** The logical part is always below this (PD's `maxLogical`). */
export const TSO_MAX_LOGICAL = 1 << TSO_LOGICAL_BITS;
/** Most timestamps one request may ask for: a batch must fit one physical millisecond. */
export const TSO_MAX_COUNT = TSO_MAX_LOGICAL - 1;
/** Largest physical part that keeps a timestamp inside a u64 (the year 2527 and a bit). */
export const TSO_MAX_PHYSICAL_MS = 2 ** (64 - TSO_LOGICAL_BITS) - 1;

/**
 * How far ahead of the physical part the persisted bound is written (PD's `tso-save-interval`,
 * 3 s by default). Timestamps are issued only below the saved bound, so a restart that begins
 * above it can never repeat one.
 */
export const TSO_SAVE_WINDOW_MS = 3_000;
/**
 * The window is renewed once the physical part comes this close to the saved bound, so under
 * steady traffic a save happens about every `TSO_SAVE_WINDOW_MS - TSO_RENEW_MARGIN_MS` and never
 * has to wait until the bound is reached.
 */
export const TSO_RENEW_MARGIN_MS = 1_000;
/**
 * A restart whose wall clock is less than this past the saved bound begins at the bound plus
 * this instead (PD's `updateTimestampGuard`).
 */
export const TSO_UPDATE_GUARD_MS = 1;
/**
 * A clock found this far behind the time of the last TSO save (the file's modification time)
 * has stepped back, and the store warns. Less is not worth an operator's attention: time
 * daemons slew such small offsets.
 */
export const TSO_CLOCK_STEP_TOLERANCE_MS = 100;
/** How often the server glue calls `TimestampOracle.tick()` (PD's `tso-update-physical-interval`). */
export const TSO_TICK_INTERVAL_MS = 50;

assert(Number.isSafeInteger(TSO_MAX_PHYSICAL_MS), "physical ms must be a safe integer");
assert(
  TSO_UPDATE_GUARD_MS <= TSO_RENEW_MARGIN_MS && TSO_RENEW_MARGIN_MS < TSO_SAVE_WINDOW_MS,
  "the renew margin must lie inside the save window",
);
assert(
  TSO_TICK_INTERVAL_MS * 3 < TSO_SAVE_WINDOW_MS - TSO_RENEW_MARGIN_MS,
  "several ticks must fit between two window renewals",
);
