/**
 * Size limits every engine enforces before a write reaches storage, so an over-limit key or
 * value is refused with a clear error and nothing stored is touched.
 */
import { ENGINE_MAX_KEY_BYTES, ENGINE_MAX_VALUE_BYTES } from "../constants.ts";
import { compareBytes } from "../util/bytes.ts";

/** An engine write whose key or value exceeds the engine's limits. */
export class EntryTooLargeError extends Error {
  constructor(readonly what: "key" | "value", readonly sizeBytes: number, readonly limit: number) {
    super(`${what} of ${sizeBytes} bytes exceeds the engine limit of ${limit} bytes`);
    this.name = "EntryTooLargeError";
  }
}

/** Throws `EntryTooLargeError` if `key` or `value` is over the engine's limits. */
export function assertEntrySize(key: Uint8Array, value?: Uint8Array): void {
  if (key.length > ENGINE_MAX_KEY_BYTES) {
    throw new EntryTooLargeError("key", key.length, ENGINE_MAX_KEY_BYTES);
  }
  if (value !== undefined && value.length > ENGINE_MAX_VALUE_BYTES) {
    throw new EntryTooLargeError("value", value.length, ENGINE_MAX_VALUE_BYTES);
  }
}

/** Throws unless start <= end: a reversed range is a caller's bug, refused by every engine. */
export function assertRange(start: Uint8Array, end: Uint8Array): void {
  assertEntrySize(start);
  assertEntrySize(end);
  if (compareBytes(start, end) > 0) throw new RangeError("deleteRange: start key is after end key");
}
