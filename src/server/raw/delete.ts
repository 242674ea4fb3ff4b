/** RawDelete and RawBatchDelete. Deleting an absent key succeeds. */
import { kvrpcpb } from "../../../proto/mod.ts";
import { type Command, refuse } from "../command.ts";
import { latchedWrite, resolveColumnFamily } from "./store.ts";

/** RawDelete: removes one key. */
export const rawDelete: Command<
  kvrpcpb.RawDeleteRequest,
  kvrpcpb.RawDeleteResponse.$Properties
> = {
  name: "RawDelete",
  batchName: "RawDelete",
  requestCodec: kvrpcpb.RawDeleteRequest,
  responseCodec: kvrpcpb.RawDeleteResponse,
  errorField: "error",
  keyApi: "raw",
  blindWrite: true,
  keysOf: (request) => [request.key],
  async execute({ raw: store }, request, { region }) {
    const cf = resolveColumnFamily(request.cf);
    if (typeof cf !== "string") return refuse(cf);
    await latchedWrite(store, region, { cf, mutations: [{ kind: "delete", key: request.key }] });
    return {};
  },
};

/** RawBatchDelete: removes every key atomically. */
export const rawBatchDelete: Command<
  kvrpcpb.RawBatchDeleteRequest,
  kvrpcpb.RawBatchDeleteResponse.$Properties
> = {
  name: "RawBatchDelete",
  batchName: "RawBatchDelete",
  requestCodec: kvrpcpb.RawBatchDeleteRequest,
  responseCodec: kvrpcpb.RawBatchDeleteResponse,
  errorField: "error",
  keyApi: "raw",
  blindWrite: true,
  keysOf: (request) => request.keys,
  async execute({ raw: store }, request, { region }) {
    const cf = resolveColumnFamily(request.cf);
    if (typeof cf !== "string") return refuse(cf);
    // The key count and bytes were checked on arrival (`request_limits.ts`).
    const mutations = request.keys.map((key) => ({ kind: "delete" as const, key }));
    await latchedWrite(store, region, { cf, mutations });
    return {};
  },
};
