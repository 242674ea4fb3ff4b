/**
 * KvGC (drop versions older than a safe point, keeping the newest one visible at it) and
 * KvDeleteRange (remove every version, lock and value of a key range). The same GC pass runs
 * in the background when the store learns a newer safe point (`runGc`). Both stay inside the
 * region they run for: GC walks the region's snapshot, and a delete-range reaching past the
 * region is cut at its bounds (region bounds are data keys: encoded user keys here, see
 * src/storage/region_range.ts).
 */
import { kvrpcpb } from "../../../proto/mod.ts";
import { truncateTs } from "../../codec/key.ts";
import { compareBytes } from "../../codec/compare.ts";
import { mvccErrorToKeyError } from "../../mvcc/mod.ts";
import {
  clampToRegion,
  DATA_KEYS_END,
  type Modification,
  type RegionMeta,
  RegionSnapshot,
} from "../../storage/mod.ts";
import { gcKeys } from "../../txn/actions/gc.ts";
import { Key, type TimeStamp } from "../../txn_types/mod.ts";
import { bytesEqual, successor } from "../../util/bytes.ts";
import type { Command } from "../command.ts";
import { executeWrite, SlicePacer } from "./scheduler.ts";
import type { TxnStore } from "./store.ts";

/** Keys collected per GC round (each round is one latched write). */
const GC_KEYS_PER_ROUND = 256;

/** What a GC pass did. */
export interface GcPassResult {
  keys: number;
  deletedVersions: number;
}

/**
 * Up to `limit` distinct user keys of `region` with write records, from `from` (an encoded
 * key; null = the region's first key) on.
 */
function keysWithWrites(
  scope: { store: TxnStore; region: RegionMeta },
  from: Uint8Array | null,
  limit: number,
): Key[] {
  const keys: Key[] = [];
  using snapshot = RegionSnapshot.take(scope.store.engine, scope.region);
  using cursor = snapshot.iterator("write", from !== null ? { lowerBound: from } : {});
  let previous: Uint8Array | null = null;
  for (cursor.seekToFirst(); cursor.valid() && keys.length < limit; cursor.next()) {
    const encoded = truncateTs(cursor.key());
    if (previous !== null && bytesEqual(previous, encoded)) continue;
    previous = encoded.slice();
    keys.push(Key.fromEncoded(previous));
  }
  return keys;
}

/** GC of every key of `region` at `safePoint`, in rounds. */
export async function runGc(
  store: TxnStore,
  region: RegionMeta,
  safePoint: TimeStamp,
): Promise<GcPassResult> {
  const total: GcPassResult = { keys: 0, deletedVersions: 0 };
  let from: Uint8Array | null = null;
  const pacer = new SlicePacer();
  for (;;) {
    const keys = keysWithWrites({ store, region }, from, GC_KEYS_PER_ROUND);
    if (keys.length === 0) return total;
    let pending: readonly Key[] = keys;
    while (pending.length > 0) {
      const result = await executeWrite(
        store,
        { region, keys: pending, startTs: 0n },
        ({ reader, txn }) => gcKeys(txn, reader, { keys: pending, safePoint }),
      );
      if (!result.ok) {
        throw new Error(`gc: ${mvccErrorToKeyError(result.error).abort ?? result.error.kind}`);
      }
      total.deletedVersions += result.value.info.deletedVersions;
      const resume = result.value.resumeKey;
      pending = resume === null
        ? []
        : pending.slice(pending.findIndex((key) => key.equals(resume)));
    }
    total.keys += keys.length;
    await pacer.advance(keys.length);
    // Past every version of the last key: its oldest possible version, then one byte more.
    from = successor(keys[keys.length - 1]!.appendTs(0n));
  }
}

/** KvGC: GC of the request's region at `safe_point`. */
export const kvGc: Command<kvrpcpb.GCRequest, kvrpcpb.GCResponse.$Properties> = {
  name: "KvGC",
  batchName: "GC",
  requestCodec: kvrpcpb.GCRequest,
  responseCodec: kvrpcpb.GCResponse,
  errorField: "keyError",
  keyApi: "txn",
  keysOf: () => [],
  async execute({ txn: store }, request, { region }) {
    await runGc(store, region, request.safePoint);
    return {};
  },
};

/**
 * KvDeleteRange: deletes every lock, write record and value of the keys in [start_key,
 * end_key) that lie in the request's region (an empty end_key: to the region's end).
 * `notify_only` deletes nothing (TiKV uses it to tell observers only).
 */
export const kvDeleteRange: Command<
  kvrpcpb.DeleteRangeRequest,
  kvrpcpb.DeleteRangeResponse.$Properties
> = {
  name: "KvDeleteRange",
  batchName: "DeleteRange",
  requestCodec: kvrpcpb.DeleteRangeRequest,
  responseCodec: kvrpcpb.DeleteRangeResponse,
  errorField: "error",
  keyApi: "txn",
  keysOf: (request) => [request.startKey],
  async execute({ txn: store }, request, { region }) {
    if (request.notifyOnly) return {};
    if (request.endKey.length > 0) {
      const order = compareBytes(request.startKey, request.endKey);
      if (order === 0) return {};
      if (order > 0) return { error: "KvDeleteRange: start_key is after end_key" };
    }
    const start = Key.fromRaw(request.startKey).encoded;
    const range = clampToRegion(region, {
      lower: start,
      upper: request.endKey.length === 0 ? DATA_KEYS_END : Key.fromRaw(request.endKey).encoded,
    });
    if (range === null) return {};
    const startKey = range.lower ?? start;
    const endKey = range.upper ?? DATA_KEYS_END;
    const modifications: Modification[] = (["lock", "write", "default"] as const).map((cf) => ({
      type: "deleteRange",
      cf,
      startKey,
      endKey,
    }));
    await store.writes.write(region, modifications);
    return {};
  },
};
