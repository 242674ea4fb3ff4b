/**
 * Order-preserving key encoding as TiKV uses it: memcomparable bytes, fixed-width 64-bit
 * integers ascending and descending, varints, and MVCC keys with a descending timestamp.
 *
 * @example
 * ```ts
 * import { compareBytes, decodeKeyWithTs, encodeKeyWithTs } from "./mod.ts";
 * const k = new TextEncoder().encode("k");
 * const newer = encodeKeyWithTs(k, 20n);
 * const older = encodeKeyWithTs(k, 10n);
 * compareBytes(newer, older) < 0; // true: newest version first
 * decodeKeyWithTs(newer).ts; // 20n
 * ```
 *
 * @module
 */

export { CodecError, type CodecErrorCode } from "./codec_error.ts";
export { compareBytes } from "./compare.ts";
export {
  decodeBytes,
  decodeBytesDesc,
  type DecodedBytes,
  encodeBytes,
  encodeBytesDesc,
  encodedBytesLength,
  encodedBytesSpan,
  MEMCOMPARABLE_GROUP_SIZE,
  writeBytes,
} from "./memcomparable.ts";
export {
  decodeI64,
  decodeI64Desc,
  decodeU64,
  decodeU64Desc,
  encodeI64,
  encodeI64Desc,
  encodeU64,
  encodeU64Desc,
  I64_MAX,
  I64_MIN,
  U64_MAX,
  U64_SIZE,
  writeI64,
  writeI64Desc,
  writeU64,
  writeU64Desc,
} from "./number.ts";
export {
  type DecodedVarint,
  decodeVarI64,
  decodeVarU64,
  decodeVarUint,
  encodeVarI64,
  encodeVarU64,
  encodeVarUint,
  MAX_VARINT64_LENGTH,
  varI64Length,
  varU64Length,
  varUintLength,
  writeVarI64,
  writeVarU64,
  writeVarUint,
} from "./varint.ts";
export {
  appendTs,
  type DecodedKeyWithTs,
  decodeKey,
  decodeKeyWithTs,
  decodeTs,
  encodeKey,
  encodeKeyWithTs,
  isUserKeyEq,
  keyWithTsLength,
  type SplitKey,
  splitOnTs,
  truncateTs,
  writeKeyWithTs,
} from "./key.ts";
