/**
 * RawDeleteRange: removes every key in [start_key, end_key); an empty end_key means "to the
 * last key". It takes no latches (a range has no finite key set): a compare-and-swap racing it
 * is ordered by the engine, either before or after the whole range deletion.
 */
import { kvrpcpb } from "../../../proto/mod.ts";
import { MAX_KEY_BYTES } from "../../constants.ts";
import { compareBytes } from "../../util/bytes.ts";
import { type Command, refuse } from "../command.ts";
import { resolveColumnFamily } from "./store.ts";

/** A key above every key the API admits: MAX_KEY_BYTES + 1 bytes of 0xff. */
const PAST_LAST_KEY = new Uint8Array(MAX_KEY_BYTES + 1).fill(0xff);

/** RawDeleteRange. */
export const rawDeleteRange: Command<
  kvrpcpb.RawDeleteRangeRequest,
  kvrpcpb.RawDeleteRangeResponse.$Properties
> = {
  name: "RawDeleteRange",
  batchName: "RawDeleteRange",
  requestCodec: kvrpcpb.RawDeleteRangeRequest,
  responseCodec: kvrpcpb.RawDeleteRangeResponse,
  errorField: "error",
  keysOf: (request) => [request.startKey],
  async execute({ raw: store }, request) {
    const cf = resolveColumnFamily(request.cf);
    if (typeof cf !== "string") return refuse(cf);
    const end = request.endKey.length === 0 ? PAST_LAST_KEY : request.endKey;
    if (compareBytes(request.startKey, end) > 0) {
      return refuse({
        code: "InvalidArgument",
        message: "invalid range: start_key is after end_key",
      });
    }
    const batch = store.engine.newWriteBatch();
    try {
      batch.deleteRange(cf, request.startKey, end);
      if (store.syncLog) await store.engine.writeDurable(batch);
      else store.engine.write(batch);
    } finally {
      batch.destroy();
    }
    return {};
  },
};
