import assert, { deepEqual as assertEquals } from "node:assert/strict";
import { eraftpb } from "../../proto/mod.ts";
import { SeededRandom, seedFromEnv } from "../util/random.ts";
import {
  type ConfChange,
  ConfChangeType,
  decodeConfChange,
  encodeConfChange,
  RaftAssertionError,
} from "./types.ts";
import { ProtoReader, ProtoWriter, WireFormatError } from "./wire.ts";

const hex = (bytes: Uint8Array) =>
  Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

function generated(cc: ConfChange): Uint8Array {
  return eraftpb.ConfChange.encode({
    id: cc.id,
    changeType: cc.changeType as number as eraftpb.ConfChangeType,
    nodeId: cc.nodeId,
    context: cc.context,
  }).finish();
}

// eraftpb.ConfChange{id (1): 0, change_type (2): AddLearnerNode = 2, node_id (3): 4}:
//   10 02  18 04  (id and context are proto3 defaults and are omitted)
Deno.test("a ConfChange entry holds eraftpb.ConfChange's protobuf bytes, as TiKV writes them", () => {
  const cc = {
    id: 0n,
    changeType: ConfChangeType.AddLearnerNode,
    nodeId: 4n,
    context: new Uint8Array(0),
  };
  assertEquals(hex(encodeConfChange(cc)), "10021804");
  assertEquals(decodeConfChange(encodeConfChange(cc)), cc);
});

Deno.test("ConfChange encoding agrees with protobufjs's eraftpb.ConfChange on random values", () => {
  const seed = seedFromEnv();
  const random = new SeededRandom(seed);
  const u64 = () =>
    random.pick([0n, 1n, 127n, 128n, 2n ** 63n, 2n ** 64n - 1n, BigInt(random.nextUint32())]);
  for (let i = 0; i < 500; i++) {
    const cc: ConfChange = {
      id: u64(),
      changeType: random.pick([
        ConfChangeType.AddNode,
        ConfChangeType.RemoveNode,
        ConfChangeType.AddLearnerNode,
      ]),
      nodeId: u64(),
      context: random.bytes(random.pick([0, 1, 127, 128, 300])),
    };
    const ours = encodeConfChange(cc);
    assertEquals(hex(ours), hex(generated(cc)), `SEED=${seed} case ${i}`);
    assertEquals(decodeConfChange(generated(cc)), cc, `SEED=${seed} case ${i}`);
  }
});

Deno.test("ConfChange decoding skips fields it does not know, of every wire type", () => {
  const known = encodeConfChange({
    id: 7n,
    changeType: ConfChangeType.RemoveNode,
    nodeId: 3n,
    context: new Uint8Array([9]),
  });
  // field 9 varint 1; field 10 fixed64; field 11 bytes "ab"; field 12 fixed32.
  const unknown = [
    0x48,
    0x01,
    0x51,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    0x5a,
    0x02,
    0x61,
    0x62,
    0x65,
    1,
    2,
    3,
    4,
  ];
  const data = new Uint8Array([...unknown, ...known]);
  assertEquals(decodeConfChange(data), {
    id: 7n,
    changeType: ConfChangeType.RemoveNode,
    nodeId: 3n,
    context: new Uint8Array([9]),
  });
});

Deno.test("malformed ConfChange bytes fail an assertion that says what they are not", () => {
  const good = encodeConfChange({
    id: 1n,
    changeType: ConfChangeType.AddNode,
    nodeId: 300n,
    context: new Uint8Array([1, 2, 3]),
  });
  // 08 01 | 18 ac 02 | 22 03 01 02 03: a cut at a field boundary (2, 5) leaves a valid message.
  assertEquals(hex(good), "0801" + "18ac02" + "2203010203");
  for (const cut of [1, 3, 4, 6, 7, 8, 9]) {
    assert.throws(
      () => decodeConfChange(good.subarray(0, cut)),
      (e: unknown) =>
        e instanceof RaftAssertionError && /not an eraftpb.ConfChange/.test(e.message),
      `cut at ${cut}`,
    );
  }
  // change_type 9 is no ConfChangeType.
  assert.throws(() => decodeConfChange(new Uint8Array([0x10, 0x09])), /unknown ConfChangeType 9/);
  // A group (wire type 3) is refused rather than misread.
  assert.throws(() => decodeConfChange(new Uint8Array([0x0b])), /wire type 3/);
});

Deno.test("varints: 64 bits at most, ten bytes at most; a uint64 above 2^64-1 is refused", () => {
  const max = new ProtoWriter().uint64(1, 2n ** 64n - 1n).finish();
  assertEquals(hex(max), "08ffffffffffffffffff01");
  const reader = new ProtoReader(max);
  assertEquals(reader.tag(), { field: 1, wireType: 0 });
  assertEquals(reader.varint(), 2n ** 64n - 1n);
  assert.ok(reader.done());
  assert.throws(() => new ProtoWriter().uint64(1, 2n ** 64n), RangeError);
  const tooBig = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]);
  assert.throws(() => new ProtoReader(tooBig).varint(), WireFormatError);
  const tooLong = new Uint8Array(11).fill(0x80);
  assert.throws(() => new ProtoReader(tooLong).varint(), /longer than 10 bytes/);
});
