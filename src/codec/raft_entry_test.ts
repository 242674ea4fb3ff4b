/**
 * `encodeRaftEntry` writes the bytes src/raft's generic wire writer writes for the same
 * eraftpb.Entry (what a replicated PD wrote before it shared this encoder: its logs on disk read
 * the same), on random entries and every varint length boundary. The raftstore's test of the
 * same bytes against protobufjs is src/raftstore/entry_codec_test.ts.
 */
import assert from "node:assert/strict";
import { EntryType, newEntry } from "../raft/mod.ts";
import { ProtoWriter } from "../raft/wire.ts";
import { SeededRandom } from "../util/random.ts";
import { encodeRaftEntry } from "./raft_entry.ts";

const EDGES = [0n, 1n, 127n, 128n, 16_383n, 16_384n, (1n << 32n) - 1n, 1n << 49n, (1n << 64n) - 1n];

Deno.test("encodeRaftEntry writes the wire writer's bytes for random entries and varint edges", () => {
  const random = new SeededRandom(20261206);
  for (let i = 0; i < 2_000; i++) {
    const bytes = (n: number) => Uint8Array.from({ length: n }, () => random.int(256));
    const entry = newEntry({
      term: EDGES[random.int(EDGES.length)]!,
      index: random.chance(0.5) ? EDGES[random.int(EDGES.length)]! : BigInt(random.int(1 << 30)),
      entryType: [EntryType.EntryNormal, EntryType.EntryConfChange][random.int(2)]!,
      data: bytes(
        random.chance(0.2) ? 0 : random.chance(0.1) ? 200 + random.int(300) : random.int(40),
      ),
      context: bytes(random.chance(0.7) ? 0 : random.int(20)),
    });
    const expected = new ProtoWriter()
      .enumValue(1, entry.entryType)
      .uint64(2, entry.term)
      .uint64(3, entry.index)
      .bytes(4, entry.data)
      .bytes(6, entry.context)
      .finish();
    assert.deepEqual(encodeRaftEntry(entry), expected, `entry ${i}`);
  }
});
