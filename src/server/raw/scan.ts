/**
 * RawScan and RawBatchScan, with TiKV's raw scan semantics:
 * - forward: keys in [start_key, end_key), smallest first; empty end_key = no upper bound;
 * - reverse: keys in [end_key, start_key), largest first — `start_key` is the exclusive upper
 *   bound and `end_key` the inclusive lower bound; an empty start_key = no upper bound;
 * - at most `limit` live pairs (clamped to RAW_SCAN_MAX_LIMIT); expired pairs are skipped and
 *   not counted; `key_only` leaves values empty;
 * - only keys of the request's region: the scan reads through the region's view, so a range
 *   reaching past the region stops at its end (the client goes on in the next region);
 * - the pairs' bytes are taken from the answer budget as they are gathered (RawBatchScan's
 *   ranges all from one): a scan the budget refuses answers `AnswerTooLarge`, never a short
 *   page, which a client would read as the end of the region (see `answer_budget.ts`).
 */
import { kvrpcpb } from "../../../proto/mod.ts";
import { RAW_SCAN_MAX_LIMIT } from "../../constants.ts";
import type { ColumnFamily, IterOptions } from "../../engine/types.ts";
import type { AnswerBudget } from "../answer_budget.ts";
import { type Command, refuse } from "../command.ts";
import { rawReader, type RawStore, resolveColumnFamily } from "./store.ts";
import type { RegionMeta } from "../../storage/mod.ts";
import { decodeRawValue, isExpired } from "./value.ts";
import { compareBytes } from "../../util/bytes.ts";

/** One scan over one column family. */
export interface ScanOptions {
  cf: ColumnFamily;
  startKey: Uint8Array;
  endKey: Uint8Array;
  limit: number;
  keyOnly: boolean;
  reverse: boolean;
}

function boundsOf(options: ScanOptions): IterOptions {
  const [lower, upper] = options.reverse
    ? [options.endKey, options.startKey]
    : [options.startKey, options.endKey];
  const bounds: IterOptions = {};
  if (lower.length > 0) bounds.lowerBound = lower;
  if (upper.length > 0) bounds.upperBound = upper;
  return bounds;
}

/**
 * Appends the live pairs of one scan of `region` to `pairs`, in scan order, taking each pair's
 * bytes from `budget` first; false when the budget refused a pair (the scan stopped there).
 */
export function scanPairs(
  scope: { store: RawStore; region: RegionMeta },
  options: ScanOptions,
  into: { pairs: kvrpcpb.KvPair.$Properties[]; budget: AnswerBudget },
): boolean {
  const { store, region } = scope;
  const { pairs, budget } = into;
  const limit = Math.min(options.limit, RAW_SCAN_MAX_LIMIT);
  const bounds = boundsOf(options);
  const { lowerBound, upperBound } = bounds;
  if (limit === 0) return true;
  if (lowerBound && upperBound && compareBytes(lowerBound, upperBound) >= 0) return true;
  const now = store.nowUnixSeconds();
  using iterator = rawReader(store, region).iterator(options.cf, bounds);
  if (options.reverse) iterator.seekToLast();
  else iterator.seekToFirst();
  for (let found = 0; iterator.valid() && found < limit;) {
    const value = decodeRawValue(iterator.value());
    if (!isExpired(value.expireUnixSeconds, now)) {
      const key = iterator.key();
      const userValue = options.keyOnly ? new Uint8Array(0) : value.userValue;
      if (!budget.takeEntry(key.length, userValue.length)) return false;
      pairs.push({ key: key.slice(), value: userValue.slice() });
      found++;
    }
    if (options.reverse) iterator.prev();
    else iterator.next();
  }
  return true;
}

/** RawScan. */
export const rawScan: Command<kvrpcpb.RawScanRequest, kvrpcpb.RawScanResponse.$Properties> = {
  name: "RawScan",
  batchName: "RawScan",
  requestCodec: kvrpcpb.RawScanRequest,
  responseCodec: kvrpcpb.RawScanResponse,
  errorField: "kvs",
  keyApi: "raw",
  keysOf: (request) => request.reverse ? [] : [request.startKey],
  execute({ raw: store }, request, { region, budget }) {
    const cf = resolveColumnFamily(request.cf);
    if (typeof cf !== "string") return Promise.resolve(refuse(cf));
    const kvs: kvrpcpb.KvPair.$Properties[] = [];
    const complete = scanPairs({ store, region }, {
      cf,
      startKey: request.startKey,
      endKey: request.endKey,
      limit: request.limit,
      keyOnly: request.keyOnly,
      reverse: request.reverse,
    }, { pairs: kvs, budget });
    if (!complete) return Promise.resolve(refuse(budget.refusal("RawScan", kvs.length)));
    return Promise.resolve({ kvs });
  },
};

/**
 * RawBatchScan: each range scanned as RawScan would, up to `each_limit` pairs per range; a
 * range with an empty end_key stops at the next range's start_key. All ranges gather within
 * one answer budget (the request's range count is bounded in `request_limits.ts`).
 */
export const rawBatchScan: Command<
  kvrpcpb.RawBatchScanRequest,
  kvrpcpb.RawBatchScanResponse.$Properties
> = {
  name: "RawBatchScan",
  batchName: "RawBatchScan",
  requestCodec: kvrpcpb.RawBatchScanRequest,
  responseCodec: kvrpcpb.RawBatchScanResponse,
  errorField: "kvs",
  keyApi: "raw",
  keysOf: (request) =>
    request.reverse ? [] : request.ranges.map((r) => r.startKey ?? new Uint8Array(0)),
  execute({ raw: store }, request, { region, budget }) {
    const cf = resolveColumnFamily(request.cf);
    if (typeof cf !== "string") return Promise.resolve(refuse(cf));
    const kvs: kvrpcpb.KvPair.$Properties[] = [];
    for (const [i, range] of request.ranges.entries()) {
      // As TiKV: a range without an end ends where the next range starts (the last one is open).
      const complete = scanPairs({ store, region }, {
        cf,
        startKey: range.startKey ?? new Uint8Array(0),
        endKey: (range.endKey?.length ?? 0) > 0
          ? range.endKey!
          : request.ranges[i + 1]?.startKey ?? new Uint8Array(0),
        limit: request.eachLimit,
        keyOnly: request.keyOnly,
        reverse: request.reverse,
      }, { pairs: kvs, budget });
      if (!complete) return Promise.resolve(refuse(budget.refusal("RawBatchScan", kvs.length)));
    }
    return Promise.resolve({ kvs });
  },
};
