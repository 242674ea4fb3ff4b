/**
 * The stated maximum of every list a request carries, checked when the request arrives (before
 * its keys are checked or its region looked up): each repeated field of every served request,
 * and of its `Context`, has a most-entries bound, and the keys and values of a request's lists
 * together are bounded by REQUEST_MAX_BYTES. A request over a bound is refused whole with
 * `RequestTooLarge` (in the command's error field, like any refused argument); nothing of it
 * runs. Timestamps that name a transaction must be below u64::MAX. The table is checked against the request types themselves by `request_limits_test.ts`:
 * a repeated field without a bound here fails that test.
 */
import {
  RAW_BATCH_MAX_KEYS,
  RAW_MAX_RANGES,
  REQUEST_MAX_BYTES,
  REQUEST_MAX_ITEMS,
  SPLIT_REGION_MAX_KEYS,
} from "../constants.ts";
import { ASYNC_COMMIT_MAX_SECONDARIES } from "../mvcc/mod.ts";
import type { AnyCommand } from "./command.ts";
import type { RequestFailure } from "./failure.ts";

/** The bound of one repeated field. */
export interface ListLimit {
  /** The field, as protobufjs names it ("keys", "mutations"). */
  field: string;
  /** Most entries. */
  maxItems: number;
  /** Key and value bytes of one entry, counted against REQUEST_MAX_BYTES; none for numbers. */
  // deno-lint-ignore no-explicit-any
  bytesOf?: (item: any) => number;
}

const keyBytes = (key: Uint8Array | null | undefined) => key?.length ?? 0;
const pairBytes = (pair: { key?: Uint8Array | null; value?: Uint8Array | null }) =>
  keyBytes(pair.key) + keyBytes(pair.value);
const rangeBytes = (range: { startKey?: Uint8Array | null; endKey?: Uint8Array | null }) =>
  keyBytes(range.startKey) + keyBytes(range.endKey);
const keys = (maxItems: number): ListLimit => ({ field: "keys", maxItems, bytesOf: keyBytes });
const numbers = (field: string): ListLimit => ({ field, maxItems: REQUEST_MAX_ITEMS });

/** The lists of each request, by gRPC method; a command absent here has none. */
export const REQUEST_LISTS: Readonly<Record<string, readonly ListLimit[]>> = {
  RawBatchGet: [keys(RAW_BATCH_MAX_KEYS)],
  RawBatchPut: [
    { field: "pairs", maxItems: RAW_BATCH_MAX_KEYS, bytesOf: pairBytes },
    { field: "ttls", maxItems: RAW_BATCH_MAX_KEYS },
  ],
  RawBatchDelete: [keys(RAW_BATCH_MAX_KEYS)],
  RawBatchScan: [{ field: "ranges", maxItems: RAW_MAX_RANGES, bytesOf: rangeBytes }],
  RawChecksum: [{ field: "ranges", maxItems: RAW_MAX_RANGES, bytesOf: rangeBytes }],
  KvBatchGet: [keys(REQUEST_MAX_ITEMS)],
  KvPrewrite: [
    { field: "mutations", maxItems: REQUEST_MAX_ITEMS, bytesOf: pairBytes },
    numbers("pessimisticActions"),
    { field: "secondaries", maxItems: ASYNC_COMMIT_MAX_SECONDARIES, bytesOf: keyBytes },
    numbers("forUpdateTsConstraints"),
    numbers("txnFileChunks"),
  ],
  KvCommit: [keys(REQUEST_MAX_ITEMS)],
  KvBatchRollback: [keys(REQUEST_MAX_ITEMS)],
  KvCheckSecondaryLocks: [keys(REQUEST_MAX_ITEMS)],
  KvResolveLock: [numbers("txnInfos"), keys(REQUEST_MAX_ITEMS)],
  KvPessimisticLock: [{ field: "mutations", maxItems: REQUEST_MAX_ITEMS, bytesOf: pairBytes }],
  KVPessimisticRollback: [keys(REQUEST_MAX_ITEMS)],
  SplitRegion: [{ field: "splitKeys", maxItems: SPLIT_REGION_MAX_KEYS, bytesOf: keyBytes }],
};

/** The lists of every request's `Context` (transaction ids a read may pass or read through). */
export const CONTEXT_LISTS: readonly ListLimit[] = [
  numbers("resolvedLocks"),
  numbers("committedLocks"),
];

/**
 * The timestamps of each write request that name a transaction (its start ts) or a commit ts.
 * PD never issues u64::MAX (it is "the latest" to a reader), and a transaction at it has no
 * successor ts to commit at, so a request naming it is refused before anything runs.
 */
export const TRANSACTION_TIMESTAMPS: Readonly<Record<string, readonly string[]>> = {
  KvPrewrite: ["startVersion", "forUpdateTs"],
  KvPessimisticLock: ["startVersion", "forUpdateTs"],
  // Its for_update_ts may be u64::MAX: "every pessimistic lock of the transaction" (TiKV's client
  // sends that when it resolves a dead transaction's locks).
  KVPessimisticRollback: ["startVersion"],
  KvCommit: ["startVersion", "commitVersion"],
  KvBatchRollback: ["startVersion"],
  KvCleanup: ["startVersion"],
  KvTxnHeartBeat: ["startVersion"],
  KvCheckTxnStatus: ["lockTs"],
  KvCheckSecondaryLocks: ["startVersion"],
  KvResolveLock: ["startVersion", "commitVersion"],
};

/**
 * The timestamps that may not be 0 either: a transaction starts and commits at a ts PD issued
 * (never 0). Elsewhere 0 means something (ResolveLock's commit_version 0 is a rollback, and its
 * start_version is ignored when it lists txn_infos).
 */
export const NONZERO_TIMESTAMPS: Readonly<Record<string, readonly string[]>> = {
  KvPrewrite: ["startVersion"],
  KvPessimisticLock: ["startVersion", "forUpdateTs"],
  KvCommit: ["startVersion", "commitVersion"],
};

const U64_MAX = (1n << 64n) - 1n;

/** Checks one list; adds its bytes to `total`. */
function checkList(
  rpc: string,
  // deno-lint-ignore no-explicit-any
  owner: any,
  limit: ListLimit,
  total: { bytes: number },
): RequestFailure | null {
  const items: unknown[] = owner?.[limit.field] ?? [];
  if (items.length > limit.maxItems) {
    return {
      code: "RequestTooLarge",
      rpc,
      what: limit.field,
      size: items.length,
      limit: limit.maxItems,
    };
  }
  if (limit.bytesOf !== undefined) {
    for (const item of items) total.bytes += limit.bytesOf(item);
  }
  return null;
}

/** The first bound `request` passes, or null when it is within all of them. */
// deno-lint-ignore no-explicit-any
export function checkRequestLimits(command: AnyCommand, request: any): RequestFailure | null {
  const total = { bytes: 0 };
  for (const limit of CONTEXT_LISTS) {
    const failure = checkList(command.name, request.context, limit, total);
    if (failure !== null) return failure;
  }
  for (const limit of REQUEST_LISTS[command.name] ?? []) {
    const failure = checkList(command.name, request, limit, total);
    if (failure !== null) return failure;
  }
  if (total.bytes > REQUEST_MAX_BYTES) {
    return {
      code: "RequestTooLarge",
      rpc: command.name,
      what: "bytes of keys and values",
      size: total.bytes,
      limit: REQUEST_MAX_BYTES,
    };
  }
  for (const field of TRANSACTION_TIMESTAMPS[command.name] ?? []) {
    if (request[field] === U64_MAX) {
      const message = `${command.name}: ${field} u64::MAX is not a transaction timestamp`;
      return { code: "InvalidArgument", message };
    }
  }
  for (const field of NONZERO_TIMESTAMPS[command.name] ?? []) {
    if (request[field] === 0n) {
      return { code: "InvalidArgument", message: `${command.name}: ${field} must not be 0` };
    }
  }
  return null;
}
