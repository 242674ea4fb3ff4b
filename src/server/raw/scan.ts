/**
 * RawScan and RawBatchScan, with TiKV's raw scan semantics:
 * - forward: keys in [start_key, end_key), smallest first; empty end_key = no upper bound;
 * - reverse: keys in [end_key, start_key), largest first — `start_key` is the exclusive upper
 *   bound and `end_key` the inclusive lower bound; an empty start_key = no upper bound;
 * - at most `limit` live pairs (clamped to RAW_SCAN_MAX_LIMIT); expired pairs are skipped and
 *   not counted; `key_only` leaves values empty.
 */
import { kvrpcpb } from "../../../proto/mod.ts";
import { RAW_MAX_RANGES, RAW_SCAN_MAX_LIMIT } from "../../constants.ts";
import type { ColumnFamily, IterOptions } from "../../engine/types.ts";
import { type Command, refuse } from "../command.ts";
import { type RawStore, resolveColumnFamily } from "./store.ts";
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

/** The live pairs of one scan, in scan order. */
export function scanPairs(store: RawStore, options: ScanOptions): kvrpcpb.KvPair.$Properties[] {
  const limit = Math.min(options.limit, RAW_SCAN_MAX_LIMIT);
  const pairs: kvrpcpb.KvPair.$Properties[] = [];
  const bounds = boundsOf(options);
  const { lowerBound, upperBound } = bounds;
  if (limit === 0) return pairs;
  if (lowerBound && upperBound && compareBytes(lowerBound, upperBound) >= 0) return pairs;
  const now = store.nowUnixSeconds();
  using iterator = store.engine.iterator(options.cf, bounds);
  if (options.reverse) iterator.seekToLast();
  else iterator.seekToFirst();
  while (iterator.valid() && pairs.length < limit) {
    const value = decodeRawValue(iterator.value());
    if (!isExpired(value.expireUnixSeconds, now)) {
      pairs.push({
        key: iterator.key().slice(),
        value: options.keyOnly ? new Uint8Array(0) : value.userValue.slice(),
      });
    }
    if (options.reverse) iterator.prev();
    else iterator.next();
  }
  return pairs;
}

/** RawScan. */
export const rawScan: Command<kvrpcpb.RawScanRequest, kvrpcpb.RawScanResponse.$Properties> = {
  name: "RawScan",
  batchName: "RawScan",
  requestCodec: kvrpcpb.RawScanRequest,
  responseCodec: kvrpcpb.RawScanResponse,
  errorField: "kvs",
  keysOf: (request) => request.reverse ? [] : [request.startKey],
  execute({ raw: store }, request) {
    const cf = resolveColumnFamily(request.cf);
    if (typeof cf !== "string") return Promise.resolve(refuse(cf));
    const kvs = scanPairs(store, {
      cf,
      startKey: request.startKey,
      endKey: request.endKey,
      limit: request.limit,
      keyOnly: request.keyOnly,
      reverse: request.reverse,
    });
    return Promise.resolve({ kvs });
  },
};

/**
 * RawBatchScan: each range scanned as RawScan would, up to `each_limit` pairs per range; a
 * range with an empty end_key stops at the next range's start_key.
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
  keysOf: (request) =>
    request.reverse ? [] : request.ranges.map((r) => r.startKey ?? new Uint8Array(0)),
  execute({ raw: store }, request) {
    const cf = resolveColumnFamily(request.cf);
    if (typeof cf !== "string") return Promise.resolve(refuse(cf));
    if (request.ranges.length > RAW_MAX_RANGES) {
      const message = `${request.ranges.length} ranges exceed the limit of ${RAW_MAX_RANGES}`;
      return Promise.resolve(refuse({ code: "InvalidArgument", message }));
    }
    // As TiKV: a range without an end ends where the next range starts (the last one is open).
    const kvs = request.ranges.flatMap((range, i) =>
      scanPairs(store, {
        cf,
        startKey: range.startKey ?? new Uint8Array(0),
        endKey: (range.endKey?.length ?? 0) > 0
          ? range.endKey!
          : request.ranges[i + 1]?.startKey ?? new Uint8Array(0),
        limit: request.eachLimit,
        keyOnly: request.keyOnly,
        reverse: request.reverse,
      })
    );
    return Promise.resolve({ kvs });
  },
};
