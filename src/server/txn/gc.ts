/**
 * KvGC (drop versions older than a safe point, keeping the newest one visible at it) and
 * KvDeleteRange (remove every version, lock and value of a key range). The same GC pass runs
 * in the background when the store learns a newer safe point (`runGc`).
 */
import { kvrpcpb } from "../../../proto/mod.ts";
import { truncateTs } from "../../codec/key.ts";
import { compareBytes } from "../../codec/compare.ts";
import { mvccErrorToKeyError } from "../../mvcc/mod.ts";
import { gcKeys } from "../../txn/actions/gc.ts";
import { Key, type TimeStamp } from "../../txn_types/mod.ts";
import { bytesEqual, successor } from "../../util/bytes.ts";
import type { Command } from "../command.ts";
import { MAX_KEY_BYTES } from "../../constants.ts";
import type { Region } from "../region.ts";
import { executeWrite, SlicePacer } from "./scheduler.ts";
import type { TxnStore } from "./store.ts";

/** Keys collected per GC round (each round is one latched write). */
const GC_KEYS_PER_ROUND = 256;

/** What a GC pass did. */
export interface GcPassResult {
  keys: number;
  deletedVersions: number;
}

/** Up to `limit` distinct user keys with write records, from `from` (an encoded key) on. */
function keysWithWrites(
  store: TxnStore,
  from: Uint8Array | null,
  end: Uint8Array | null,
  limit: number,
): Key[] {
  const keys: Key[] = [];
  using snapshot = store.engine.snapshot();
  using cursor = snapshot.iterator("write", {
    ...(from !== null ? { lowerBound: from } : {}),
    ...(end !== null ? { upperBound: end } : {}),
  });
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
  region: Region,
  safePoint: TimeStamp,
): Promise<GcPassResult> {
  const total: GcPassResult = { keys: 0, deletedVersions: 0 };
  const end = region.endKey.length === 0 ? null : Key.fromRaw(region.endKey).encoded;
  let from: Uint8Array | null = region.startKey.length === 0
    ? null
    : Key.fromRaw(region.startKey).encoded;
  const pacer = new SlicePacer();
  for (;;) {
    const keys = keysWithWrites(store, from, end, GC_KEYS_PER_ROUND);
    if (keys.length === 0) return total;
    let pending: readonly Key[] = keys;
    while (pending.length > 0) {
      const result = await executeWrite(
        store,
        { keys: pending, startTs: 0n },
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

/** Above every encoded key (keys are at most MAX_KEY_BYTES, 9/8 of that encoded). */
const END_OF_KEYS = new Uint8Array(2 * MAX_KEY_BYTES + 64).fill(0xff);

/** KvGC: GC of the whole region at `safe_point`. */
export const kvGc: Command<kvrpcpb.GCRequest, kvrpcpb.GCResponse.$Properties> = {
  name: "KvGC",
  batchName: "GC",
  requestCodec: kvrpcpb.GCRequest,
  responseCodec: kvrpcpb.GCResponse,
  errorField: "keyError",
  keysOf: () => [],
  async execute({ txn: store, regions }, request) {
    for (const region of regions.values()) await runGc(store, region, request.safePoint);
    return {};
  },
};

/**
 * KvDeleteRange: deletes every lock, write record and value of the keys in [start_key,
 * end_key). `notify_only` deletes nothing (TiKV uses it to tell observers only).
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
  keysOf: (request) => [request.startKey],
  async execute({ txn: store }, request) {
    if (request.notifyOnly) return {};
    if (request.endKey.length > 0) {
      const order = compareBytes(request.startKey, request.endKey);
      if (order === 0) return {};
      if (order > 0) return { error: "KvDeleteRange: start_key is after end_key" };
    }
    const start = Key.fromRaw(request.startKey).encoded;
    const end = request.endKey.length === 0 ? END_OF_KEYS : Key.fromRaw(request.endKey).encoded;
    const batch = store.engine.newWriteBatch();
    try {
      for (const cf of ["lock", "write", "default"] as const) batch.deleteRange(cf, start, end);
      if (store.syncLog) await store.engine.writeDurable(batch);
      else store.engine.write(batch);
    } finally {
      batch.destroy();
    }
    return {};
  },
};
