/**
 * The hand-written log-entry encoder (`local_state.ts` `encodeEntry`) writes exactly the bytes
 * protobufjs's generated eraftpb.Entry encoder writes, and decodes back to the same entry.
 */
import assert from "node:assert/strict";
import { eraftpb } from "../../proto/mod.ts";
import { EntryType } from "../raft/mod.ts";
import { SeededRandom } from "../util/random.ts";
import { decodeEntry, encodeEntry } from "./local_state.ts";

function bytes(random: SeededRandom, max: number): Uint8Array {
  return Uint8Array.from({ length: random.int(max + 1) }, () => random.int(256));
}

Deno.test("encodeEntry writes protobufjs's bytes for eraftpb.Entry, and decodes back", () => {
  const random = new SeededRandom(20261206);
  const edges = [1n, 127n, 128n, 16_383n, 16_384n, (1n << 53n) + 1n, (1n << 64n) - 1n];
  for (let i = 0; i < 2000; i++) {
    const entry = {
      entryType: [EntryType.EntryNormal, EntryType.EntryConfChange][random.int(2)]!,
      term: i < edges.length ? edges[i]! : BigInt(1 + random.int(1 << 30)),
      index: i < edges.length ? edges[edges.length - 1 - i]! : BigInt(random.int(1 << 30)),
      data: bytes(random, i % 50 === 0 ? 70_000 : 300),
      context: bytes(random, random.int(4) === 0 ? 20 : 0),
    };
    const ours = encodeEntry(entry);
    const theirs = eraftpb.Entry.encode({
      entryType: entry.entryType as number as eraftpb.EntryType,
      term: entry.term,
      index: entry.index,
      data: entry.data,
      context: entry.context,
    }).finish();
    assert.deepEqual(ours, new Uint8Array(theirs), `entry ${i}`);
    const back = decodeEntry(ours, { regionId: 1n, key: new Uint8Array(0), index: entry.index });
    assert.deepEqual(
      [back.entryType, back.term, back.index, back.data, back.context],
      [entry.entryType, entry.term, entry.index, entry.data, entry.context],
    );
  }
});
