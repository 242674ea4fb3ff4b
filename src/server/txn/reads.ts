/**
 * KvGet, KvBatchGet and KvScan: snapshot reads at a timestamp that report the locks they meet.
 * Every pair (or lock error) is taken from the answer budget before it is kept; a read the
 * budget refuses answers `AnswerTooLarge` in its `error`, never a short list: client-go's
 * snapshot scanner reads a page shorter than its limit as the end of the region, and a batch
 * get's caller asked for every key (see `answer_budget.ts`).
 */
import { kvrpcpb } from "../../../proto/mod.ts";
import { clampToRegion, RegionSnapshot } from "../../storage/mod.ts";
import { mvccErrorToKeyError, PointGetter, Scanner } from "../../mvcc/mod.ts";
import { Key } from "../../txn_types/mod.ts";
import { compareBytes } from "../../codec/compare.ts";
import { ANSWER_ENTRY_OVERHEAD_BYTES } from "../../constants.ts";
import type { AnswerBudget } from "../answer_budget.ts";
import { type Command, refuse } from "../command.ts";
import { MVCC_SCAN_MAX_LIMIT } from "../../mvcc/mod.ts";
import { checkMemoryLocks, readOptionsOf } from "./read_options.ts";

/** KvGet: the value of one key at `version`, or the lock in the way. */
export const kvGet: Command<kvrpcpb.GetRequest, kvrpcpb.GetResponse.$Properties> = {
  name: "KvGet",
  batchName: "Get",
  requestCodec: kvrpcpb.GetRequest,
  responseCodec: kvrpcpb.GetResponse,
  errorField: "keyError",
  keyApi: "txn",
  keysOf: (request) => [request.key],
  execute({ txn: store }, request, { region, budget }) {
    const options = readOptionsOf(request.context, request.version);
    const key = Key.fromRaw(request.key);
    const blocked = checkMemoryLocks(store, options, { key });
    if (blocked !== undefined) return Promise.resolve({ error: mvccErrorToKeyError(blocked) });
    using snapshot = RegionSnapshot.take(store.engine, region);
    using getter = new PointGetter(snapshot, options);
    const result = getter.getEntry(key);
    if (!result.ok) return Promise.resolve({ error: mvccErrorToKeyError(result.error) });
    if (result.value === null) return Promise.resolve({ notFound: true });
    if (!budget.takeEntry(request.key.length, result.value.value.length)) {
      return Promise.resolve(refuse(budget.refusal("KvGet", 0)));
    }
    return Promise.resolve({
      value: result.value.value,
      commitTs: request.needCommitTs ? result.value.commitTs ?? 0n : 0n,
    });
  },
};

/** KvBatchGet: the pairs found among `keys`, a lock error per key that is locked. */
export const kvBatchGet: Command<kvrpcpb.BatchGetRequest, kvrpcpb.BatchGetResponse.$Properties> = {
  name: "KvBatchGet",
  batchName: "BatchGet",
  requestCodec: kvrpcpb.BatchGetRequest,
  responseCodec: kvrpcpb.BatchGetResponse,
  errorField: "keyError",
  keyApi: "txn",
  keysOf: (request) => request.keys,
  execute({ txn: store }, request, { region, budget }) {
    // The key count and bytes were checked on arrival (`request_limits.ts`).
    const options = readOptionsOf(request.context, request.version);
    using snapshot = RegionSnapshot.take(store.engine, region);
    using getter = new PointGetter(snapshot, options);
    const pairs: kvrpcpb.IKvPair[] = [];
    for (const raw of request.keys) {
      const key = Key.fromRaw(raw);
      const blocked = checkMemoryLocks(store, options, { key });
      const result = blocked === undefined ? getter.getEntry(key) : null;
      let pair: kvrpcpb.IKvPair;
      if (result === null || !result.ok) {
        pair = { key: raw, error: mvccErrorToKeyError(blocked ?? result!.error!) };
      } else if (result.value === null) {
        continue;
      } else {
        pair = {
          key: raw,
          value: result.value.value,
          commitTs: request.needCommitTs ? result.value.commitTs ?? 0n : 0n,
        };
      }
      if (!takePair(budget, pair)) {
        return Promise.resolve(refuse(budget.refusal("KvBatchGet", pairs.length)));
      }
      pairs.push(pair);
    }
    return Promise.resolve({ pairs });
  },
};

/**
 * KvScan: up to `limit` visible pairs. Forward it reads [start_key, end_key); reverse it reads
 * [end_key, start_key) from the largest key down (an empty end_key is open); either way only
 * the keys of the request's region (its snapshot is clamped to it). A locked key appears as a
 * pair carrying its lock error, and the scan goes on.
 */
export const kvScan: Command<kvrpcpb.ScanRequest, kvrpcpb.ScanResponse.$Properties> = {
  name: "KvScan",
  batchName: "Scan",
  requestCodec: kvrpcpb.ScanRequest,
  responseCodec: kvrpcpb.ScanResponse,
  errorField: "keyError",
  keyApi: "txn",
  keysOf: (request) => request.reverse ? [] : [request.startKey],
  execute({ txn: store }, request, { region, budget }) {
    if (request.limit > MVCC_SCAN_MAX_LIMIT) {
      const message = `scan limit ${request.limit} exceeds ${MVCC_SCAN_MAX_LIMIT}`;
      return Promise.resolve(refuse({ code: "InvalidArgument", message }));
    }
    const options = readOptionsOf(request.context, request.version);
    // As TiKV: a reverse scan's start_key is its upper bound, so an empty one bounds nothing in.
    if (request.reverse && request.startKey.length === 0) return Promise.resolve({ pairs: [] });
    const [low, high] = request.reverse
      ? [request.endKey, request.startKey]
      : [request.startKey, request.endKey];
    // Bounds that cross hold no key: nothing to read (not a fault of the store's).
    if (low.length > 0 && high.length > 0 && compareBytes(low, high) >= 0) {
      return Promise.resolve({ pairs: [] });
    }
    const lowerBound = low.length === 0 ? null : Key.fromRaw(low);
    const upperBound = high.length === 0 ? null : Key.fromRaw(high);
    // The memory locks are the worker's: only the region's part of the range is read.
    const inRegion = clampToRegion(region, {
      lower: lowerBound?.encoded,
      upper: upperBound?.encoded,
    });
    if (inRegion === null) return Promise.resolve({ pairs: [] });
    const blocked = checkMemoryLocks(store, options, {
      startKey: inRegion.lower,
      endKey: inRegion.upper,
    });
    if (blocked !== undefined) return Promise.resolve({ error: mvccErrorToKeyError(blocked) });
    using snapshot = RegionSnapshot.take(store.engine, region);
    using scanner = new Scanner(snapshot, {
      ...options,
      lowerBound,
      upperBound,
      desc: request.reverse,
      keyOnly: request.keyOnly,
    });
    // With sample_step n, only every n-th entry is returned (TiKV's sampling scan).
    const step = Math.max(request.sampleStep, 1);
    const pairs: kvrpcpb.IKvPair[] = [];
    for (let i = 0; pairs.length < request.limit; i++) {
      const entry = scanner.next();
      if (entry === null) break;
      if (i % step !== 0) continue;
      const pair = entry.error === undefined
        ? { key: entry.key, value: entry.value }
        : { key: entry.key, error: mvccErrorToKeyError(entry.error) };
      if (!takePair(budget, pair)) {
        return Promise.resolve(refuse(budget.refusal("KvScan", pairs.length)));
      }
      pairs.push(pair);
    }
    return Promise.resolve({ pairs });
  },
};

/** Takes a pair's bytes from `budget`: key and value, or key and its (rare) lock error. */
function takePair(budget: AnswerBudget, pair: kvrpcpb.IKvPair): boolean {
  const keyBytes = pair.key?.length ?? 0;
  if (pair.error == null) return budget.takeEntry(keyBytes, pair.value?.length ?? 0);
  const errorBytes = kvrpcpb.KeyError.encode(pair.error).finish().length;
  return budget.take(keyBytes + errorBytes + ANSWER_ENTRY_OVERHEAD_BYTES);
}
