/**
 * PD's invariant check: a failed assertion is a bug, so it throws an `Error` naming what broke
 * and the state that matters, and the process around PD lets it end the process.
 *
 * @module
 */

/** Throws when `condition` is false: PD's own state broke an invariant. */
export function assert(condition: boolean, what: string): asserts condition {
  if (!condition) throw new Error(`PD invariant broken: ${what}`);
}
