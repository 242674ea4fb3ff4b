/**
 * RawDeleteRange: removes every key in [start_key, end_key) of the request's region; an empty
 * end_key means "to the last key". A range reaching past the region is cut at the region's end
 * (TiKV's delete-range stays in the region it was sent to; the client sends the rest to the
 * next one). It takes no latches (a range has no finite key set): a compare-and-swap racing it
 * is ordered by the write path, either before or after the whole range deletion.
 */
import { kvrpcpb } from "../../../proto/mod.ts";
import { MAX_KEY_BYTES } from "../../constants.ts";
import { compareBytes } from "../../util/bytes.ts";
import { type Command, refuse } from "../command.ts";
import { clampToRegion } from "../../storage/mod.ts";
import { resolveColumnFamily, writePathOf } from "./store.ts";

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
  keyApi: "raw",
  blindWrite: true,
  keysOf: (request) => [request.startKey],
  async execute({ raw: store }, request, { region }) {
    const cf = resolveColumnFamily(request.cf);
    if (typeof cf !== "string") return refuse(cf);
    const end = request.endKey.length === 0 ? PAST_LAST_KEY : request.endKey;
    if (compareBytes(request.startKey, end) > 0) {
      return refuse({
        code: "InvalidArgument",
        message: "invalid range: start_key is after end_key",
      });
    }
    const range = clampToRegion(region, { lower: request.startKey, upper: end });
    if (range === null) return {};
    await writePathOf(store).write(region, [
      {
        type: "deleteRange",
        cf,
        startKey: range.lower ?? request.startKey,
        endKey: range.upper ?? end,
      },
    ]);
    return {};
  },
};
