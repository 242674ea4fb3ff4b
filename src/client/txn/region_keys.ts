/**
 * Transactional keys against region bounds (TiKV API V1, client-go's "codec" region cache):
 * a region's bounds are data keys, and a transactional key `u` is stored under
 * `memcomparable(u)` (`src/storage/region_range.ts`), so the client locates and groups
 * transactional keys by their encoded form and turns a region's bound back into a user key to
 * page a scan.
 *
 * A bound need not be a valid encoded key: a raw split key can fall inside the transactional
 * key space. `firstUserKeyAtOrAfter` is defined for every byte string — the smallest user key
 * whose encoding sorts at or after the bound — so the keys of a region `[s, e)` are exactly the
 * user keys in `[firstUserKeyAtOrAfter(s), firstUserKeyAtOrAfter(e))`, whatever `s` and `e`.
 */
import { encodeKey } from "../../codec/key.ts";
import { MEMCOMPARABLE_GROUP_SIZE } from "../../codec/memcomparable.ts";
import type { RegionKeySpace } from "../region_rpc.ts";

/** One encoded group: the data bytes and a marker byte. */
const GROUP_BYTES = MEMCOMPARABLE_GROUP_SIZE + 1;
/** The marker of a full group that more groups follow. */
const MARKER_CONTINUES = 0xff;

/**
 * The smallest user key `u` with `memcomparable(u) >= bound` (bytewise). For a valid encoded
 * key this is its decoding.
 *
 * The encoding writes `u` in groups of 8 data bytes, each followed by a marker: 0xff when more
 * groups follow, else `0xff - pad` after a last group padded with `pad` (1..8) zero bytes. The
 * walk copies the bound's full 0xff-marked groups into `u`; at the first other group it picks
 * the smallest group sorting at or after the bound's remaining bytes.
 */
export function firstUserKeyAtOrAfter(bound: Uint8Array): Uint8Array {
  const out: number[] = [];
  for (let offset = 0;; offset += GROUP_BYTES) {
    const rest = bound.subarray(offset);
    if (rest.length === 0) return Uint8Array.from(out);
    const data = rest.subarray(0, MEMCOMPARABLE_GROUP_SIZE);
    if (
      rest.length > MEMCOMPARABLE_GROUP_SIZE && rest[MEMCOMPARABLE_GROUP_SIZE] === MARKER_CONTINUES
    ) {
      out.push(...data);
      continue;
    }
    out.push(...data.subarray(0, data.length - lastGroupPad(rest)));
    return Uint8Array.from(out);
  }
}

/**
 * How many trailing data bytes of `rest`'s first group (at most 8, without the 0xff marker)
 * the smallest user key at or after `rest` leaves off: a last group padded with `pad` zeros
 * sorts at or after `rest` when the stripped bytes are zeros and its marker `0xff - pad` is
 * above `rest`'s marker — or equal to it, when `rest` ends there. More padding sorts lower, so
 * the largest such `pad` wins; with none, the key keeps every data byte (a full group).
 */
function lastGroupPad(rest: Uint8Array): number {
  const data = rest.subarray(0, MEMCOMPARABLE_GROUP_SIZE);
  let zeros = 0;
  while (zeros < data.length && data[data.length - 1 - zeros] === 0) zeros++;
  if (rest.length <= MEMCOMPARABLE_GROUP_SIZE) return zeros; // the bound ends inside the data
  const markerPad = MARKER_CONTINUES - rest[MEMCOMPARABLE_GROUP_SIZE]!; // 1..255
  const endsHere = rest.length === GROUP_BYTES;
  return Math.min(zeros, endsHere ? markerPad : markerPad - 1);
}

/** The transactional key space: keys routed by their encoding, bounds turned back into keys. */
export const TXN_KEY_SPACE: RegionKeySpace = {
  regionKey: encodeKey,
  firstKeyAtOrAfter: firstUserKeyAtOrAfter,
};
