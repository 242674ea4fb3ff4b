/** RawGetKeyTTL: seconds left before a key expires (0 = never), or `not_found`. */
import { kvrpcpb } from "../../../proto/mod.ts";
import { type Command, refuse } from "../command.ts";
import { rawReader, resolveColumnFamily } from "./store.ts";
import { liveValue } from "./value.ts";

/** RawGetKeyTTL. */
export const rawGetKeyTtl: Command<
  kvrpcpb.RawGetKeyTTLRequest,
  kvrpcpb.RawGetKeyTTLResponse.$Properties
> = {
  name: "RawGetKeyTTL",
  batchName: null,
  requestCodec: kvrpcpb.RawGetKeyTTLRequest,
  responseCodec: kvrpcpb.RawGetKeyTTLResponse,
  errorField: "error",
  keyApi: "raw",
  keysOf: (request) => [request.key],
  execute({ raw: store }, request, { region }) {
    const cf = resolveColumnFamily(request.cf);
    if (typeof cf !== "string") return Promise.resolve(refuse(cf));
    const now = store.nowUnixSeconds();
    const value = liveValue(rawReader(store, region).get(cf, request.key), now);
    if (value === null) return Promise.resolve({ notFound: true });
    const left = value.expireUnixSeconds === 0 ? 0 : value.expireUnixSeconds - now;
    return Promise.resolve({ ttl: BigInt(left) });
  },
};
