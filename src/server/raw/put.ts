/** RawPut and RawBatchPut: writes with an optional TTL (seconds, 0 = forever). */
import { kvrpcpb } from "../../../proto/mod.ts";
import { type Command, refuse } from "../command.ts";
import { checkEntrySize, latchedWrite, type RawMutation, resolveColumnFamily } from "./store.ts";
import { expiryFor } from "./value.ts";

/** RawPut: stores one value. */
export const rawPut: Command<kvrpcpb.RawPutRequest, kvrpcpb.RawPutResponse.$Properties> = {
  name: "RawPut",
  batchName: "RawPut",
  requestCodec: kvrpcpb.RawPutRequest,
  responseCodec: kvrpcpb.RawPutResponse,
  errorField: "error",
  keyApi: "raw",
  blindWrite: true,
  keysOf: (request) => [request.key],
  async execute({ raw: store }, request, { region }) {
    const cf = resolveColumnFamily(request.cf);
    if (typeof cf !== "string") return refuse(cf);
    const tooLarge = checkEntrySize(request.key, request.value);
    if (tooLarge !== null) return refuse(tooLarge);
    const expireUnixSeconds = expiryFor({
      ttlSeconds: request.ttl,
      nowUnixSeconds: store.nowUnixSeconds(),
    });
    const mutation: RawMutation = {
      kind: "put",
      key: request.key,
      userValue: request.value,
      expireUnixSeconds,
    };
    await latchedWrite(store, region, { cf, mutations: [mutation] });
    return {};
  },
};

/** The TTL of pair `index`: one per pair, one for all, or the deprecated single field. */
function ttlOf(request: kvrpcpb.RawBatchPutRequest, index: number): bigint {
  if (request.ttls.length === 0) return request.ttl;
  return request.ttls.length === 1 ? request.ttls[0]! : request.ttls[index]!;
}

/** RawBatchPut: stores every pair atomically. */
export const rawBatchPut: Command<
  kvrpcpb.RawBatchPutRequest,
  kvrpcpb.RawBatchPutResponse.$Properties
> = {
  name: "RawBatchPut",
  batchName: "RawBatchPut",
  requestCodec: kvrpcpb.RawBatchPutRequest,
  responseCodec: kvrpcpb.RawBatchPutResponse,
  errorField: "error",
  keyApi: "raw",
  blindWrite: true,
  keysOf: (request) => request.pairs.map((pair) => pair.key ?? new Uint8Array(0)),
  async execute({ raw: store }, request, { region }) {
    const cf = resolveColumnFamily(request.cf);
    if (typeof cf !== "string") return refuse(cf);
    // The pair count and bytes were checked on arrival (`request_limits.ts`).
    const count = request.pairs.length;
    if (request.ttls.length > 1 && request.ttls.length !== count) {
      const message = `${request.ttls.length} ttls for ${count} pairs: give one, or one per pair`;
      return refuse({ code: "InvalidArgument", message });
    }
    const now = store.nowUnixSeconds();
    const mutations: RawMutation[] = [];
    for (const [i, pair] of request.pairs.entries()) {
      const key = pair.key ?? new Uint8Array(0);
      const userValue = pair.value ?? new Uint8Array(0);
      const tooLarge = checkEntrySize(key, userValue);
      if (tooLarge !== null) return refuse(tooLarge);
      const expireUnixSeconds = expiryFor({ ttlSeconds: ttlOf(request, i), nowUnixSeconds: now });
      mutations.push({ kind: "put", key, userValue, expireUnixSeconds });
    }
    await latchedWrite(store, region, { cf, mutations });
    return {};
  },
};
