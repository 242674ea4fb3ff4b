/**
 * RawCompareAndSwap: writes `value` (or deletes, with `delete`) only if the key's live value is
 * `previous_value` — or the key is absent, with `previous_not_exist`. Atomic against every
 * other raw write: the key's latch is held from the read until the write is durable.
 */
import { kvrpcpb } from "../../../proto/mod.ts";
import { bytesEqual } from "../../util/bytes.ts";
import { type Command, refuse } from "../command.ts";
import {
  applyMutations,
  checkEntrySize,
  type RawMutation,
  rawReader,
  resolveColumnFamily,
} from "./store.ts";
import { expiryFor, liveValue } from "./value.ts";

/** RawCompareAndSwap. */
export const rawCompareAndSwap: Command<
  kvrpcpb.RawCASRequest,
  kvrpcpb.RawCASResponse.$Properties
> = {
  name: "RawCompareAndSwap",
  batchName: null,
  requestCodec: kvrpcpb.RawCASRequest,
  responseCodec: kvrpcpb.RawCASResponse,
  errorField: "error",
  keyApi: "raw",
  keysOf: (request) => [request.key],
  async execute({ raw: store }, request, { region }) {
    const cf = resolveColumnFamily(request.cf);
    if (typeof cf !== "string") return refuse(cf);
    const tooLarge = checkEntrySize(request.key, request.value);
    if (tooLarge !== null) return refuse(tooLarge);
    const release = await store.latches.acquire(cf, [request.key]);
    try {
      const now = store.nowUnixSeconds();
      const current = liveValue(rawReader(store, region).get(cf, request.key), now);
      const succeed = request.previousNotExist
        ? current === null
        : current !== null && bytesEqual(current.userValue, request.previousValue);
      if (succeed) {
        const mutation: RawMutation = request.delete ? { kind: "delete", key: request.key } : {
          kind: "put",
          key: request.key,
          userValue: request.value,
          expireUnixSeconds: expiryFor({ ttlSeconds: request.ttl, nowUnixSeconds: now }),
        };
        await applyMutations(store, region, { cf, mutations: [mutation] });
      }
      return {
        succeed,
        previousNotExist: current === null,
        previousValue: current?.userValue ?? new Uint8Array(0),
      };
    } finally {
      release();
    }
  },
};
