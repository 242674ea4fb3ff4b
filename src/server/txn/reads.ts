/** KvGet, KvBatchGet and KvScan: snapshot reads at a timestamp that report the locks they meet. */
import { kvrpcpb } from "../../../proto/mod.ts";
import { mvccErrorToKeyError, PointGetter, type ScanEntry, Scanner } from "../../mvcc/mod.ts";
import { Key } from "../../txn_types/mod.ts";
import { type Command, refuse } from "../command.ts";
import { RAW_BATCH_MAX_KEYS } from "../../constants.ts";
import { MVCC_SCAN_MAX_LIMIT } from "../../mvcc/mod.ts";
import { checkMemoryLocks, readOptionsOf } from "./read_options.ts";

/** KvGet: the value of one key at `version`, or the lock in the way. */
export const kvGet: Command<kvrpcpb.GetRequest, kvrpcpb.GetResponse.$Properties> = {
  name: "KvGet",
  batchName: "Get",
  requestCodec: kvrpcpb.GetRequest,
  responseCodec: kvrpcpb.GetResponse,
  errorField: "keyError",
  keysOf: (request) => [request.key],
  execute({ txn: store }, request) {
    const options = readOptionsOf(request.context, request.version);
    const key = Key.fromRaw(request.key);
    const blocked = checkMemoryLocks(store, options, { key });
    if (blocked !== undefined) return Promise.resolve({ error: mvccErrorToKeyError(blocked) });
    using snapshot = store.engine.snapshot();
    using getter = new PointGetter(snapshot, options);
    const result = getter.getEntry(key);
    if (!result.ok) return Promise.resolve({ error: mvccErrorToKeyError(result.error) });
    if (result.value === null) return Promise.resolve({ notFound: true });
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
  keysOf: (request) => request.keys,
  execute({ txn: store }, request) {
    if (request.keys.length > RAW_BATCH_MAX_KEYS) {
      const message = `${request.keys.length} keys exceed the batch limit of ${RAW_BATCH_MAX_KEYS}`;
      return Promise.resolve(refuse({ code: "InvalidArgument", message }));
    }
    const options = readOptionsOf(request.context, request.version);
    using snapshot = store.engine.snapshot();
    using getter = new PointGetter(snapshot, options);
    const pairs: kvrpcpb.IKvPair[] = [];
    for (const raw of request.keys) {
      const key = Key.fromRaw(raw);
      const blocked = checkMemoryLocks(store, options, { key });
      if (blocked !== undefined) {
        pairs.push({ key: raw, error: mvccErrorToKeyError(blocked) });
        continue;
      }
      const result = getter.getEntry(key);
      if (!result.ok) pairs.push({ key: raw, error: mvccErrorToKeyError(result.error) });
      else if (result.value !== null) {
        pairs.push({
          key: raw,
          value: result.value.value,
          commitTs: request.needCommitTs ? result.value.commitTs ?? 0n : 0n,
        });
      }
    }
    return Promise.resolve({ pairs });
  },
};

/**
 * KvScan: up to `limit` visible pairs. Forward it reads [start_key, end_key); reverse it reads
 * [end_key, start_key) from the largest key down (an empty end_key is open). A locked key
 * appears as a pair carrying its lock error, and the scan goes on.
 */
export const kvScan: Command<kvrpcpb.ScanRequest, kvrpcpb.ScanResponse.$Properties> = {
  name: "KvScan",
  batchName: "Scan",
  requestCodec: kvrpcpb.ScanRequest,
  responseCodec: kvrpcpb.ScanResponse,
  errorField: "keyError",
  keysOf: (request) => request.reverse ? [] : [request.startKey],
  execute({ txn: store }, request) {
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
    const lowerBound = low.length === 0 ? null : Key.fromRaw(low);
    const upperBound = high.length === 0 ? null : Key.fromRaw(high);
    const blocked = checkMemoryLocks(store, options, {
      startKey: lowerBound?.encoded,
      endKey: upperBound?.encoded,
    });
    if (blocked !== undefined) return Promise.resolve({ error: mvccErrorToKeyError(blocked) });
    using snapshot = store.engine.snapshot();
    using scanner = new Scanner(snapshot, {
      ...options,
      lowerBound,
      upperBound,
      desc: request.reverse,
      keyOnly: request.keyOnly,
    });
    // With sample_step n, only every n-th entry is returned (TiKV's sampling scan).
    const step = Math.max(request.sampleStep, 1);
    const entries: ScanEntry[] = [];
    for (let i = 0; entries.length < request.limit; i++) {
      const entry = scanner.next();
      if (entry === null) break;
      if (i % step === 0) entries.push(entry);
    }
    return Promise.resolve({
      pairs: entries.map((entry) =>
        entry.error === undefined
          ? { key: entry.key, value: entry.value }
          : { key: entry.key, error: mvccErrorToKeyError(entry.error) }
      ),
    });
  },
};
