/**
 * RawChecksum with TiKV's `Crc64_Xor`: for each live pair, CRC-64/XZ over the key then the user
 * value; the checksum is the XOR over pairs; total_bytes counts key and user value bytes.
 * Ranges are scanned forward over the default column family, as TiKV does.
 */
import { kvrpcpb } from "../../../proto/mod.ts";
import { type Command, refuse } from "../command.ts";
import { Crc64Digest } from "./crc64.ts";
import { decodeRawValue, isExpired } from "./value.ts";
import type { IterOptions, Readable } from "../../engine/types.ts";
import { rawReader } from "./store.ts";

/** The checksum of one range [start, end) (empty end = no upper bound) read from `reader`. */
function checksumRange(
  reader: Readable,
  range: { startKey: Uint8Array; endKey: Uint8Array; nowUnixSeconds: number },
): { checksum: bigint; totalKvs: bigint; totalBytes: bigint } {
  const bounds: IterOptions = { lowerBound: range.startKey };
  if (range.endKey.length > 0) bounds.upperBound = range.endKey;
  let checksum = 0n;
  let totalKvs = 0n;
  let totalBytes = 0n;
  using iterator = reader.iterator("default", bounds);
  for (iterator.seekToFirst(); iterator.valid(); iterator.next()) {
    const value = decodeRawValue(iterator.value());
    if (isExpired(value.expireUnixSeconds, range.nowUnixSeconds)) continue;
    const key = iterator.key();
    checksum ^= new Crc64Digest().update(key).update(value.userValue).sum();
    totalKvs += 1n;
    totalBytes += BigInt(key.length + value.userValue.length);
  }
  return { checksum, totalKvs, totalBytes };
}

/** RawChecksum. */
export const rawChecksum: Command<
  kvrpcpb.RawChecksumRequest,
  kvrpcpb.RawChecksumResponse.$Properties
> = {
  name: "RawChecksum",
  batchName: null,
  requestCodec: kvrpcpb.RawChecksumRequest,
  responseCodec: kvrpcpb.RawChecksumResponse,
  errorField: "error",
  keyApi: "raw",
  keysOf: (request) => request.ranges.map((r) => r.startKey ?? new Uint8Array(0)),
  execute({ raw: store }, request, { region }) {
    if (request.algorithm !== kvrpcpb.ChecksumAlgorithm.Crc64_Xor) {
      const message = `unknown checksum algorithm ${request.algorithm}`;
      return Promise.resolve(refuse({ code: "InvalidArgument", message }));
    }
    // The range count was checked on arrival (`request_limits.ts`); the answer is three numbers.
    const total = { checksum: 0n, totalKvs: 0n, totalBytes: 0n };
    const nowUnixSeconds = store.nowUnixSeconds();
    // The region's view: a range reaching past the region counts only the region's keys.
    const reader = rawReader(store, region);
    for (const range of request.ranges) {
      const part = checksumRange(reader, {
        startKey: range.startKey ?? new Uint8Array(0),
        endKey: range.endKey ?? new Uint8Array(0),
        nowUnixSeconds,
      });
      total.checksum ^= part.checksum;
      total.totalKvs += part.totalKvs;
      total.totalBytes += part.totalBytes;
    }
    return Promise.resolve(total);
  },
};
