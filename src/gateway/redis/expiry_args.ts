/**
 * Expiry arguments as Redis 7 reads them: EX/PX/EXAT/PXAT values to an absolute Unix ms, with
 * its overflow checks and "invalid expire time in '<command>' command" error.
 */
import { ERRORS, RedisError } from "./command.ts";
import { INT64_MAX, parseInt64 } from "./numbers.ts";

/** The units of an expiry argument. */
export type ExpiryUnit = "EX" | "PX" | "EXAT" | "PXAT";

/**
 * The absolute expiry (Unix ms) of `unit value` read by `command` at `nowMs`. Refuses a
 * non-positive value (as SET and GETEX do), an overflow, and (a Basalt limit) a time past
 * 2^53 ms, which the record's header cannot hold exactly.
 */
export function expireAtOf(
  unit: ExpiryUnit,
  value: Uint8Array,
  how: { nowMs: number; command: string },
): number {
  const amount = parseInt64(value);
  if (amount === null) throw new RedisError(ERRORS.notInteger);
  const invalid = () => new RedisError(`ERR invalid expire time in '${how.command}' command`);
  if (amount <= 0n) throw invalid();
  const relative = unit === "EX" || unit === "PX";
  const seconds = unit === "EX" || unit === "EXAT";
  if (seconds && amount > INT64_MAX / 1000n) throw invalid();
  const ms = seconds ? amount * 1000n : amount;
  const base = relative ? BigInt(how.nowMs) : 0n;
  if (ms > INT64_MAX - base) throw invalid();
  return checkedTime(ms + base, invalid);
}

/** `ms` as a number, refused past what a record's expiry holds exactly. */
export function checkedTime(ms: bigint, invalid: () => RedisError): number {
  if (ms > BigInt(Number.MAX_SAFE_INTEGER)) throw invalid();
  return Math.max(1, Number(ms)); // 0 means "no expiry" in a record: the past is 1
}
