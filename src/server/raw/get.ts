/**
 * RawGet and RawBatchGet: point reads of live (unexpired) values. Each value found is taken
 * from the answer budget before it is kept; a request the budget refuses answers
 * `AnswerTooLarge` (TiKV has no such bound; a client that asked for the keys explicitly needs
 * all of them or an error, never a silent subset, see `answer_budget.ts`).
 */
import { kvrpcpb } from "../../../proto/mod.ts";
import { ANSWER_ENTRY_OVERHEAD_BYTES, MAX_ENTRY_BYTES } from "../../constants.ts";
import type { AnswerBudget } from "../answer_budget.ts";
import { type Command, refuse } from "../command.ts";
import { rawReader, resolveColumnFamily } from "./store.ts";
import { liveValue } from "./value.ts";

/** RawGet: the value of one key, or `not_found`. */
export const rawGet: Command<kvrpcpb.RawGetRequest, kvrpcpb.RawGetResponse.$Properties> = {
  name: "RawGet",
  batchName: "RawGet",
  requestCodec: kvrpcpb.RawGetRequest,
  responseCodec: kvrpcpb.RawGetResponse,
  errorField: "error",
  keyApi: "raw",
  keysOf: (request) => [request.key],
  execute({ raw: store }, request, { region, budget }) {
    const cf = resolveColumnFamily(request.cf);
    if (typeof cf !== "string") return Promise.resolve(refuse(cf));
    const value = liveValue(rawReader(store, region).get(cf, request.key), store.nowUnixSeconds());
    if (value === null) return Promise.resolve({ notFound: true });
    if (!budget.takeEntry(request.key.length, value.userValue.length)) {
      return Promise.resolve(refuse(budget.refusal("RawGet", 0)));
    }
    return Promise.resolve({ value: value.userValue });
  },
};

/** RawBatchGet: the live pairs among `keys`, in request order; absent keys are omitted. */
export const rawBatchGet: Command<
  kvrpcpb.RawBatchGetRequest,
  kvrpcpb.RawBatchGetResponse.$Properties
> = {
  name: "RawBatchGet",
  batchName: "RawBatchGet",
  requestCodec: kvrpcpb.RawBatchGetRequest,
  responseCodec: kvrpcpb.RawBatchGetResponse,
  errorField: "pairs",
  keyApi: "raw",
  keysOf: (request) => request.keys,
  execute({ raw: store }, request, { region, budget }) {
    const cf = resolveColumnFamily(request.cf);
    if (typeof cf !== "string") return Promise.resolve(refuse(cf));
    const now = store.nowUnixSeconds();
    const reader = rawReader(store, region);
    const pairs: kvrpcpb.KvPair.$Properties[] = [];
    for (let at = 0; at < request.keys.length;) {
      const keys = request.keys.slice(at, at + chunkKeys(budget));
      at += keys.length;
      const stored = reader.multiGet(cf, keys);
      for (const [i, bytes] of stored.entries()) {
        const value = liveValue(bytes, now);
        if (value === null) continue;
        if (!budget.takeEntry(keys[i]!.length, value.userValue.length)) {
          return Promise.resolve(refuse(budget.refusal("RawBatchGet", pairs.length)));
        }
        pairs.push({ key: keys[i]!, value: value.userValue });
      }
    }
    return Promise.resolve({ pairs });
  },
};

/**
 * Keys read by one multi-get: as many as the budget left could hold if every value were the
 * largest a raw write admits (MAX_ENTRY_BYTES), and at least one. So the values read at once
 * (pinned by RocksDB, then copied out) pass the budget by at most one entry, however large the
 * request's key list. (With ANSWER_MAX_BYTES of 60 MiB that is 7 keys per call at first.)
 */
function chunkKeys(budget: AnswerBudget): number {
  const fit = Math.floor(budget.leftBytes() / (MAX_ENTRY_BYTES + ANSWER_ENTRY_OVERHEAD_BYTES));
  return Math.max(fit, 1);
}
