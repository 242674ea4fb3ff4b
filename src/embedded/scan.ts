/**
 * Scans of the key-value space over any reader at one timestamp (a transaction, or a snapshot):
 * a page of live pairs in [start, end) ∩ prefix, forward or reverse, and a cursor to the next
 * page. Expired pairs are read and skipped.
 *
 * Bounds (src/constants.ts): at most `limit` ≤ KV_SCAN_MAX_LIMIT pairs and about
 * KV_SCAN_MAX_ANSWER_BYTES of values per page (a page always holds one pair); a forward page
 * examines at most KV_SCAN_MAX_EXAMINED stored pairs and then ends early with a cursor. The
 * transactional client scans forward only, so a reverse page is the tail of a forward walk of
 * its range: one that would walk more than KV_REVERSE_SCAN_MAX_EXAMINED stored pairs is
 * refused (RangeTooLarge) rather than run unbounded; narrowing the range (prefix, start, or the
 * cursor of the previous page) makes it cheaper.
 *
 * Cursors are user keys: forward, the next page's `start` (inclusive); reverse, the next page's
 * `end` (exclusive). A cursor is given only when a stored pair lies past the page.
 */
import {
  KV_REVERSE_SCAN_MAX_EXAMINED,
  KV_SCAN_DEFAULT_LIMIT,
  KV_SCAN_MAX_ANSWER_BYTES,
  KV_SCAN_MAX_EXAMINED,
  KV_SCAN_MAX_LIMIT,
  KV_SCAN_PAGE_KEYS,
} from "../constants.ts";
import { keyId } from "../client/keys.ts";
import { compareBytes, successor } from "../util/bytes.ts";
import { assert } from "../util/assert.ts";
import { BasaltError } from "./errors.ts";
import { boundKey, decodeValue, expired, spaceEnd, userKey } from "./layout.ts";

/** A live pair as the API returns it. */
export interface Entry {
  key: Uint8Array;
  value: Uint8Array;
  /** Unix ms at which the pair expires; 0 = never. */
  expireAtMs: number;
}

/** What to scan. Every bound is a user key; they intersect. */
export interface ScanOptions {
  /** Only keys starting with these bytes. */
  prefix?: Uint8Array;
  /** First key (inclusive). */
  start?: Uint8Array;
  /** End key (exclusive); absent or empty: unbounded. */
  end?: Uint8Array;
  /** The cursor of the previous page (see the module header). */
  cursor?: Uint8Array;
  /** Most pairs (default KV_SCAN_DEFAULT_LIMIT, at most KV_SCAN_MAX_LIMIT). */
  limit?: number;
  /** Largest keys first. */
  reverse?: boolean;
}

/** One page of a scan. */
export interface ScanPage {
  entries: Entry[];
  /** Where the next page starts (see the module header); null when the range is done. */
  cursor: Uint8Array | null;
}

/** Reads of stored keys at one timestamp (stored keys in, stored pairs out). */
export interface StoredReader {
  scan(
    start: Uint8Array,
    end: Uint8Array,
    limit: number,
  ): Promise<{ key: Uint8Array; value: Uint8Array }[]>;
  /** Values of `keys` that exist, by `keyId` (src/client/keys.ts). */
  batchGet(keys: Uint8Array[]): Promise<Map<string, Uint8Array>>;
}

interface Range {
  /** Stored keys, [lower, upper). */
  lower: Uint8Array;
  upper: Uint8Array;
  limit: number;
}

/** The first key after every key starting with `prefix`, or null when there is none. */
export function prefixEnd(prefix: Uint8Array): Uint8Array | null {
  let length = prefix.length;
  while (length > 0 && prefix[length - 1] === 0xff) length--;
  if (length === 0) return null;
  const end = prefix.slice(0, length);
  end[length - 1]! += 1;
  return end;
}

function larger(a: Uint8Array, b: Uint8Array): Uint8Array {
  return compareBytes(a, b) >= 0 ? a : b;
}

/** The stored range and limit of `options` (refusing a limit out of bounds). */
function rangeOf(options: ScanOptions): Range {
  const limit = options.limit ?? KV_SCAN_DEFAULT_LIMIT;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > KV_SCAN_MAX_LIMIT) {
    throw new BasaltError(
      "InvalidArgument",
      `limit must be a whole number in [1, ${KV_SCAN_MAX_LIMIT}], not ${limit}`,
      { limit, maxLimit: KV_SCAN_MAX_LIMIT },
    );
  }
  let lower = options.start ?? new Uint8Array(0);
  let upper: Uint8Array | null = options.end !== undefined && options.end.length > 0
    ? options.end
    : null;
  const smaller = (a: Uint8Array | null, b: Uint8Array | null) =>
    a === null ? b : b === null ? a : compareBytes(a, b) <= 0 ? a : b;
  if (options.prefix !== undefined && options.prefix.length > 0) {
    lower = larger(lower, options.prefix);
    upper = smaller(upper, prefixEnd(options.prefix));
  }
  if (options.cursor !== undefined) {
    if (options.reverse) upper = smaller(upper, options.cursor);
    else lower = larger(lower, options.cursor);
  }
  return { lower: boundKey(lower), upper: upper === null ? spaceEnd() : boundKey(upper), limit };
}

/** One page of `options` over `reader`, live pairs only as of `nowMs`. */
export async function scanPage(
  reader: StoredReader,
  options: ScanOptions & { nowMs: number },
): Promise<ScanPage> {
  const range = rangeOf(options);
  if (compareBytes(range.lower, range.upper) >= 0) return { entries: [], cursor: null };
  return options.reverse
    ? await scanReverse(reader, range, options.nowMs)
    : await scanForward(reader, range, options.nowMs);
}

async function scanForward(reader: StoredReader, range: Range, nowMs: number): Promise<ScanPage> {
  const entries: Entry[] = [];
  let bytes = 0;
  let examined = 0;
  let cursor = range.lower;
  for (;;) {
    // One more than the page needs: a pair past the page says whether there is a next page.
    const ask = Math.min(KV_SCAN_PAGE_KEYS, range.limit - entries.length + 1);
    const stored = await reader.scan(cursor, range.upper, ask);
    for (const pair of stored) {
      const key = userKey(pair.key);
      const { value, expireAtMs } = decodeValue(pair.value);
      if (expired(expireAtMs, nowMs)) {
        if (++examined >= KV_SCAN_MAX_EXAMINED) return { entries, cursor: successor(key) };
        continue;
      }
      const full = entries.length >= range.limit ||
        (entries.length > 0 && bytes + value.length > KV_SCAN_MAX_ANSWER_BYTES);
      if (full) return { entries, cursor: key };
      entries.push({ key, value, expireAtMs });
      bytes += value.length;
      if (++examined >= KV_SCAN_MAX_EXAMINED) return { entries, cursor: successor(key) };
    }
    if (stored.length < ask) return { entries, cursor: null };
    cursor = successor(stored[stored.length - 1]!.key);
  }
}

async function scanReverse(reader: StoredReader, range: Range, nowMs: number): Promise<ScanPage> {
  // The largest `limit + 1` live keys of the range: the page, and whether a pair lies below it.
  const keep = range.limit + 1;
  let tail: Uint8Array[] = [];
  let examined = 0;
  let cursor = range.lower;
  for (;;) {
    const stored = await reader.scan(cursor, range.upper, KV_SCAN_PAGE_KEYS);
    examined += stored.length;
    if (examined > KV_REVERSE_SCAN_MAX_EXAMINED) {
      throw new BasaltError(
        "RangeTooLarge",
        `a reverse scan walks its range forward and this one holds more than ` +
          `${KV_REVERSE_SCAN_MAX_EXAMINED} pairs: narrow it (prefix, start, end)`,
        { maxExamined: KV_REVERSE_SCAN_MAX_EXAMINED },
      );
    }
    for (const pair of stored) {
      if (!expired(decodeValue(pair.value).expireAtMs, nowMs)) tail.push(pair.key);
    }
    if (tail.length > 2 * keep) tail = tail.slice(tail.length - keep);
    if (stored.length < KV_SCAN_PAGE_KEYS) break;
    cursor = successor(stored[stored.length - 1]!.key);
  }
  tail = tail.slice(Math.max(0, tail.length - keep));
  const more = tail.length > range.limit;
  const chosen = tail.slice(more ? 1 : 0).reverse();
  // Values of the chosen keys only, at the same timestamp (so the same pairs).
  const values = await reader.batchGet(chosen);
  const entries: Entry[] = [];
  let bytes = 0;
  for (const stored of chosen) {
    const raw = values.get(keyId(stored));
    assert(raw !== undefined, "a key a scan saw is there at the same timestamp", {
      key: stored.length,
    });
    const { value, expireAtMs } = decodeValue(raw);
    if (entries.length > 0 && bytes + value.length > KV_SCAN_MAX_ANSWER_BYTES) {
      return { entries, cursor: entries[entries.length - 1]!.key };
    }
    entries.push({ key: userKey(stored), value, expireAtMs });
    bytes += value.length;
  }
  return { entries, cursor: more ? entries[entries.length - 1]!.key : null };
}
