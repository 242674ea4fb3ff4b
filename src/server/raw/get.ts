/** RawGet and RawBatchGet: point reads of live (unexpired) values. */
import { kvrpcpb } from "../../../proto/mod.ts";
import { RAW_BATCH_MAX_KEYS } from "../../constants.ts";
import { type Command, refuse } from "../command.ts";
import { resolveColumnFamily } from "./store.ts";
import { liveValue } from "./value.ts";

/** RawGet: the value of one key, or `not_found`. */
export const rawGet: Command<kvrpcpb.RawGetRequest, kvrpcpb.RawGetResponse.$Properties> = {
  name: "RawGet",
  batchName: "RawGet",
  requestCodec: kvrpcpb.RawGetRequest,
  responseCodec: kvrpcpb.RawGetResponse,
  errorField: "error",
  keysOf: (request) => [request.key],
  execute({ raw: store }, request) {
    const cf = resolveColumnFamily(request.cf);
    if (typeof cf !== "string") return Promise.resolve(refuse(cf));
    const value = liveValue(store.engine.get(cf, request.key), store.nowUnixSeconds());
    return Promise.resolve(value === null ? { notFound: true } : { value: value.userValue });
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
  keysOf: (request) => request.keys,
  execute({ raw: store }, request) {
    const cf = resolveColumnFamily(request.cf);
    if (typeof cf !== "string") return Promise.resolve(refuse(cf));
    if (request.keys.length > RAW_BATCH_MAX_KEYS) {
      const message = `${request.keys.length} keys exceed the batch limit of ${RAW_BATCH_MAX_KEYS}`;
      return Promise.resolve(refuse({ code: "InvalidArgument", message }));
    }
    const now = store.nowUnixSeconds();
    const stored = store.engine.multiGet(cf, request.keys);
    const pairs: kvrpcpb.KvPair.$Properties[] = [];
    stored.forEach((bytes, i) => {
      const value = liveValue(bytes, now);
      if (value !== null) pairs.push({ key: request.keys[i]!, value: value.userValue });
    });
    return Promise.resolve({ pairs });
  },
};
