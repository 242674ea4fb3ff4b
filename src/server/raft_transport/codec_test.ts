/**
 * The envelope codec: round trips of every field src/raft's `Message` holds, the field numbers
 * checked against bytes built independently in kvproto's layout (raft-rs's eraftpb.proto,
 * kvproto's raft_serverpb.proto and tikvpb.proto), and malformed input as values.
 */
import assert from "node:assert/strict";
import { metapb, raft_serverpb, tikvpb } from "../../../proto/mod.ts";
import {
  ConfChangeType,
  encodeConfChange,
  EntryType,
  type Message,
  MessageType,
  newConfState,
  newEntry,
  newMessage,
} from "../../raft/mod.ts";
import { ProtoWriter } from "../../raft/wire.ts";
import type { RaftEnvelope } from "../../raftstore/transport.ts";
import { isAssertionError } from "../../util/assert.ts";
import { utf8 } from "../../util/bytes.ts";
import { SeededRandom, seedFromEnv } from "../../util/random.ts";
import {
  decodeBatch,
  decodeEnvelope,
  encodeEnvelope,
  frameBatch,
  peekKeyRange,
  peekRegionId,
  splitBatch,
} from "./codec.ts";

function envelope(message: Message, fields: Partial<RaftEnvelope> = {}): RaftEnvelope {
  return {
    regionId: 7n,
    fromPeer: { id: 11n, storeId: 1n, role: metapb.PeerRole.Voter },
    toPeer: { id: 12n, storeId: 2n, role: metapb.PeerRole.Learner },
    regionEpoch: { confVer: 3n, version: 5n },
    startKey: utf8("a"),
    endKey: utf8("z"),
    message,
    isTombstone: false,
    ...fields,
  };
}

/** A MsgAppend with every scalar field set and entries of both supported types. */
function fullAppend(): Message {
  const cc = encodeConfChange({
    id: 1n,
    changeType: ConfChangeType.AddLearnerNode,
    nodeId: 13n,
    context: utf8("ctx"),
  });
  return newMessage({
    msgType: MessageType.MsgAppend,
    to: 12n,
    from: 11n,
    term: 9n,
    logTerm: 8n,
    index: 100n,
    entries: [
      newEntry({ term: 9n, index: 101n, data: utf8("put k v"), context: utf8("c1") }),
      newEntry({ term: 9n, index: 102n, entryType: EntryType.EntryConfChange, data: cc }),
      newEntry({ term: 9n, index: 103n }), // An empty entry (a new leader's).
    ],
    commit: 99n,
    commitTerm: 8n,
    requestSnapshot: 4n,
    reject: true,
    rejectHint: 0xffff_ffff_ffff_fff0n,
    context: utf8("read-index-ctx"),
    priority: 2n,
  });
}

function decodeOk(bytes: Uint8Array): RaftEnvelope {
  const decoded = decodeEnvelope(bytes);
  assert.ok(decoded.ok, decoded.ok ? "" : decoded.problem);
  return decoded.value;
}

Deno.test("codec: an envelope with entries and every message field survives the round trip", () => {
  const sent = envelope(fullAppend());
  assert.deepEqual(decodeOk(encodeEnvelope(sent)), sent);
});

Deno.test("codec: a snapshot's metadata, membership and data survive the round trip", () => {
  const snapshot = {
    data: utf8("region pairs"),
    metadata: {
      confState: { ...newConfState({ voters: [11n, 12n], learners: [13n] }), autoLeave: false },
      index: 50n,
      term: 4n,
    },
  };
  const sent = envelope(
    newMessage({ msgType: MessageType.MsgSnapshot, to: 12n, from: 11n, term: 4n, snapshot }),
  );
  const received = decodeOk(encodeEnvelope(sent));
  assert.deepEqual(received, sent);
  // A plain Uint8Array (protobufjs hands out Buffers, whose slice() does not copy).
  assert.equal(Object.getPrototypeOf(received.message.snapshot!.data), Uint8Array.prototype);
});

Deno.test("codec: a tombstone, with or without a Raft message, round trips as a tombstone", () => {
  const sent = envelope(newMessage({ msgType: MessageType.MsgHeartbeat, to: 12n, from: 11n }), {
    isTombstone: true,
  });
  assert.deepEqual(decodeOk(encodeEnvelope(sent)), sent);
  // TiKV may send a tombstone with no message at all.
  const bare = raft_serverpb.RaftMessage.encode({
    regionId: 7n,
    fromPeer: { id: 11n, storeId: 1n },
    toPeer: { id: 12n, storeId: 2n },
    isTombstone: true,
  }).finish();
  const received = decodeOk(bare);
  assert.equal(received.isTombstone, true);
  assert.equal(received.message.to, 12n);
});

Deno.test("codec: a GC tombstone naming a merge's target (kvproto merge_target) round trips with it", () => {
  const mergeTarget = {
    id: 9n,
    startKey: utf8("z"),
    endKey: new Uint8Array(),
    regionEpoch: { confVer: 4n, version: 3n },
    peers: [
      { id: 91n, storeId: 1n, role: metapb.PeerRole.Voter },
      { id: 92n, storeId: 2n, role: metapb.PeerRole.Voter },
    ],
  };
  const sent = envelope(newMessage({ msgType: MessageType.MsgHeartbeat, to: 12n, from: 11n }), {
    isTombstone: true,
    mergeTarget,
  });
  const received = decodeOk(encodeEnvelope(sent));
  assert.deepEqual(received, sent);
  assert.deepEqual(received.mergeTarget, mergeTarget);
  // Without one, none is decoded (a plain GC destroys on a newer conf_ver alone).
  const plain = decodeOk(encodeEnvelope(envelope(sent.message, { isTombstone: true })));
  assert.equal(plain.mergeTarget, undefined);
});

Deno.test("codec: a stale check (kvproto ExtraMessage MsgCheckStalePeer) round trips, with or without a Raft message; other envelopes carry none", () => {
  const sent = envelope(newMessage({ msgType: MessageType.MsgHeartbeat, to: 12n, from: 11n }), {
    checkStale: true,
  });
  const bytes = encodeEnvelope(sent);
  assert.equal(
    raft_serverpb.RaftMessage.decode(bytes).extraMsg?.type,
    raft_serverpb.ExtraMessageType.MsgCheckStalePeer,
  );
  assert.deepEqual(decodeOk(bytes), sent);
  const bare = raft_serverpb.RaftMessage.encode({
    regionId: 7n,
    fromPeer: { id: 11n, storeId: 1n },
    toPeer: { id: 12n, storeId: 2n },
    extraMsg: { type: raft_serverpb.ExtraMessageType.MsgCheckStalePeer },
  }).finish();
  assert.equal(decodeOk(bare).checkStale, true);
  const plain = encodeEnvelope(envelope(sent.message));
  assert.equal(raft_serverpb.RaftMessage.decode(plain).extraMsg, null);
  assert.equal(decodeOk(plain).checkStale, undefined);
});

Deno.test("codec: decoded bytes are copies, so a reused receive buffer cannot change them", () => {
  const bytes = encodeEnvelope(envelope(fullAppend()));
  const received = decodeOk(bytes);
  bytes.fill(0);
  assert.deepEqual(received.message.entries[0]!.data, utf8("put k v"));
  assert.deepEqual(received.startKey, utf8("a"));
  assert.deepEqual(received.message.context, utf8("read-index-ctx"));
});

Deno.test("codec: field numbers are kvproto's (bytes built by hand in TiKV's layout decode)", () => {
  // raft-rs eraftpb.Entry: entry_type=1 term=2 index=3 data=4 context=6.
  const entry = new ProtoWriter().uint64(2, 5n).uint64(3, 21n).bytes(4, utf8("d"))
    .bytes(6, utf8("c")).finish();
  // raft-rs eraftpb.Message: msg_type=1 to=2 from=3 term=4 log_term=5 index=6 entries=7
  // commit=8 reject=10 reject_hint=11 context=12 request_snapshot=13 deprecated_priority=14
  // commit_term=15.
  const message = new ProtoWriter().enumValue(1, MessageType.MsgAppend).uint64(2, 12n)
    .uint64(3, 11n).uint64(4, 5n).uint64(5, 4n).uint64(6, 20n).bytes(7, entry).uint64(8, 19n)
    .uint64(10, 1n).uint64(11, 17n).bytes(12, utf8("x")).uint64(13, 3n).uint64(14, 6n)
    .uint64(15, 4n).finish();
  const peer = (id: bigint, store: bigint, role: number) =>
    new ProtoWriter().uint64(1, id).uint64(2, store).enumValue(3, role).finish();
  // kvproto raft_serverpb.RaftMessage: region_id=1 from_peer=2 to_peer=3 message=4
  // region_epoch=5 is_tombstone=6 start_key=7 end_key=8; metapb.RegionEpoch conf_ver=1 version=2.
  const raftMessage = new ProtoWriter().uint64(1, 7n).bytes(2, peer(11n, 1n, 0))
    .bytes(3, peer(12n, 2n, 1)).bytes(4, message)
    .bytes(5, new ProtoWriter().uint64(1, 3n).uint64(2, 5n).finish())
    .bytes(7, utf8("a")).bytes(8, utf8("z")).finish();
  const expected = envelope(newMessage({
    msgType: MessageType.MsgAppend,
    to: 12n,
    from: 11n,
    term: 5n,
    logTerm: 4n,
    index: 20n,
    entries: [newEntry({ term: 5n, index: 21n, data: utf8("d"), context: utf8("c") })],
    commit: 19n,
    commitTerm: 4n,
    reject: true,
    rejectHint: 17n,
    context: utf8("x"),
    requestSnapshot: 3n,
    priority: 6n,
  }));
  assert.deepEqual(decodeOk(raftMessage), expected);
  // And the other way: our encoding is byte for byte the hand-built one.
  assert.deepEqual(new Uint8Array(encodeEnvelope(expected)), raftMessage);
  // tikvpb.BatchRaftMessage: msgs=1.
  const batch = new ProtoWriter().bytes(1, raftMessage).bytes(1, raftMessage).finish();
  const decoded = decodeBatch(batch);
  assert.ok(decoded.ok);
  assert.deepEqual(decoded.value, [expected, expected]);
});

Deno.test("codec: frameBatch is tikvpb.BatchRaftMessage's encoding of the same messages", () => {
  const a = envelope(fullAppend());
  const b = envelope(newMessage({ msgType: MessageType.MsgHeartbeat, to: 12n, from: 11n }));
  const framed = frameBatch([encodeEnvelope(a), encodeEnvelope(b)]);
  const reference = tikvpb.BatchRaftMessage.encode({
    msgs: [
      raft_serverpb.RaftMessage.decode(encodeEnvelope(a)),
      raft_serverpb.RaftMessage.decode(encodeEnvelope(b)),
    ],
  }).finish();
  assert.deepEqual(new Uint8Array(framed), new Uint8Array(reference));
  const decoded = decodeBatch(framed);
  assert.ok(decoded.ok);
  assert.deepEqual(decoded.value, [a, b]);
  const empty = decodeBatch(frameBatch([]));
  assert.ok(empty.ok);
  assert.deepEqual(empty.value, []);
});

/** The problem `bytes` are refused with. */
function problemOf(bytes: Uint8Array): string {
  const decoded = decodeEnvelope(bytes);
  assert.ok(!decoded.ok, "refused");
  return decoded.problem;
}

function withMessage(fields: Record<string, unknown>, outer: Record<string, unknown> = {}) {
  return raft_serverpb.RaftMessage.encode({
    regionId: 7n,
    fromPeer: { id: 11n, storeId: 1n },
    toPeer: { id: 12n, storeId: 2n },
    message: { msgType: MessageType.MsgHeartbeat, ...fields },
    ...outer,
  }).finish();
}

Deno.test("codec: envelopes the raftstore must not see are refused, naming the problem", () => {
  assert.match(
    problemOf(withMessage({ msgType: MessageType.MsgHup })),
    /local message type MsgHup/,
  );
  assert.match(problemOf(withMessage({ msgType: 99 })), /unknown message type 99/);
  assert.match(
    problemOf(withMessage({ entries: [{ entryType: EntryType.EntryConfChangeV2, index: 4n }] })),
    /entry 4 is a ConfChangeV2/,
  );
  assert.match(
    problemOf(withMessage({ entries: [{ entryType: 7, index: 4n }] })),
    /unknown type 7/,
  );
  assert.match(problemOf(withMessage({ msgType: MessageType.MsgSnapshot })), /without snapshot/);
  assert.match(problemOf(withMessage({}, { regionId: 0n })), /region id is 0/);
  assert.match(problemOf(withMessage({}, { toPeer: null })), /no to_peer/);
  assert.match(
    problemOf(withMessage({}, { fromPeer: { id: 11n } })),
    /from_peer is peer 11 on store 0/,
  );
  assert.match(problemOf(withMessage({}, { toPeer: { id: 12n, storeId: 2n, role: 9 } })), /role 9/);
  assert.match(problemOf(withMessage({}, { message: null })), /no Raft message/);
});

Deno.test("codec: malformed bytes are a value, never an exception (truncations and noise)", () => {
  const seed = seedFromEnv();
  const random = new SeededRandom(seed);
  const valid = frameBatch([encodeEnvelope(envelope(fullAppend()))]);
  let refused = 0;
  for (let cut = 1; cut < valid.length; cut++) {
    const decoded = decodeBatch(valid.subarray(0, cut));
    if (!decoded.ok) refused++;
  }
  assert.ok(refused > 0, `truncations refused (seed ${seed})`);
  for (let i = 0; i < 2000; i++) {
    const noise = random.chance(0.5) ? random.bytes(random.int(64)) : flip(valid, random);
    try {
      decodeBatch(noise);
      decodeEnvelope(noise);
    } catch (error) {
      assert.fail(`seed ${seed}, case ${i}: decoding threw ${error}`);
    }
  }
  assert.match(problemOfBatch(new Uint8Array([0x0a, 0x05, 0x01])), /not a BatchRaftMessage/);
});

function problemOfBatch(bytes: Uint8Array): string {
  const decoded = decodeBatch(bytes);
  assert.ok(!decoded.ok);
  return decoded.problem;
}

function flip(bytes: Uint8Array, random: SeededRandom): Uint8Array {
  const out = Uint8Array.from(bytes);
  for (let n = 1 + random.int(4); n > 0; n--) {
    out[random.int(out.length)] = random.nextUint32() & 0xff;
  }
  return out;
}

Deno.test("codec: an outbound envelope without a region or receiving store is a bug", () => {
  const message = newMessage({ msgType: MessageType.MsgHeartbeat, to: 12n, from: 11n });
  assert.throws(() => encodeEnvelope(envelope(message, { regionId: 0n })), isAssertionError);
  assert.throws(
    () => encodeEnvelope(envelope(message, { toPeer: { id: 12n, storeId: 0n, role: 0 } })),
    isAssertionError,
  );
});

// ---------------------------------------------------------------------------------------------
// What the main thread reads without decoding (issue #10): the batch's framing, a message's
// region id and keys. The region worker decodes the rest.

Deno.test("codec: splitBatch hands back N messages' bytes, equal to the N encoded messages", () => {
  // Plain copies: protobufjs hands out Buffers, which deepEqual tells from Uint8Arrays.
  const messages = [1n, 2n, 3n, 4n, 5n].map((regionId) =>
    new Uint8Array(
      encodeEnvelope(envelope(regionId === 3n ? fullAppend() : heartbeatMessage(), { regionId })),
    )
  );
  const split = splitBatch(frameBatch(messages));
  assert.ok(split.ok, split.ok ? "" : split.problem);
  assert.equal(split.value.length, 5);
  split.value.forEach((bytes, i) => assert.deepEqual(new Uint8Array(bytes), messages[i]));
  // A field besides msgs (last_observed_time, 13) is skipped as decode skips it.
  const withTime = tikvpb.BatchRaftMessage.encode({
    msgs: messages.map((bytes) => raft_serverpb.RaftMessage.decode(bytes)),
    lastObservedTime: 12345n,
  }).finish();
  const split2 = splitBatch(withTime);
  assert.ok(split2.ok);
  assert.deepEqual(split2.value.map((bytes) => new Uint8Array(bytes)), messages);
  assert.deepEqual(splitBatch(frameBatch([])), { ok: true, value: [] });
});

Deno.test("codec: splitBatch refuses a batch whose framing is broken, naming it", () => {
  const good = encodeEnvelope(envelope(heartbeatMessage()));
  const cases: [string, Uint8Array][] = [
    ["a message longer than the batch", new Uint8Array([0x0a, 0x40, 0x01, 0x02])],
    ["a truncated batch", frameBatch([good]).subarray(0, good.length)],
    ["field number 0", new Uint8Array([0x02, 0x00])],
    ["wire type 7", new Uint8Array([0x0f])],
    ["a length varint cut short", new Uint8Array([0x0a, 0x80])],
  ];
  for (const [what, bytes] of cases) {
    const split = splitBatch(bytes);
    assert.ok(!split.ok, `${what} is refused`);
    assert.match(split.problem, /not a BatchRaftMessage/, what);
    // The full decoder refuses them too: the split is no more lenient than decode.
    assert.throws(() => tikvpb.BatchRaftMessage.decode(bytes), what);
  }
});

Deno.test("codec: peekRegionId reads a message's region id without decoding it; absent or 0 is a problem", () => {
  assert.deepEqual(peekRegionId(encodeEnvelope(envelope(fullAppend(), { regionId: 77n }))), {
    ok: true,
    value: 77n,
  });
  const max = 0xffff_ffff_ffff_ffffn;
  assert.deepEqual(peekRegionId(withMessage({}, { regionId: max })), { ok: true, value: max });
  // Absent (protobuf writes no field for 0) and explicitly 0 are both refused.
  assert.deepEqual(peekRegionId(withMessage({}, { regionId: 0n })), {
    ok: false,
    problem: "region id is 0",
  });
  assert.deepEqual(peekRegionId(new Uint8Array([0x08, 0x00])), {
    ok: false,
    problem: "region id is 0",
  });
  // Repeated: the last value wins, as in decode.
  const twice = new Uint8Array([...withMessage({}, { regionId: 5n }), 0x08, 0x09]);
  assert.deepEqual(peekRegionId(twice), { ok: true, value: 9n });
  assert.equal(decodeOk(twice).regionId, 9n);
  // Broken framing of the message itself.
  const truncated = withMessage({}).subarray(0, 6);
  const peeked = peekRegionId(truncated);
  assert.ok(!peeked.ok);
  assert.match(peeked.problem, /not a RaftMessage/);
  // What lies inside is not checked here: a local message type passes the peek, and the
  // region worker's decode refuses it.
  const local = withMessage({ msgType: MessageType.MsgHup });
  assert.deepEqual(peekRegionId(local), { ok: true, value: 7n });
  assert.match(problemOf(local), /local message type MsgHup/);
});

Deno.test("codec: peekKeyRange reads a message's start and end keys as views, empty when absent", () => {
  const bytes = encodeEnvelope(envelope(heartbeatMessage()));
  const range = peekKeyRange(bytes);
  assert.ok(range.ok);
  assert.deepEqual(new Uint8Array(range.value.startKey), utf8("a"));
  assert.deepEqual(new Uint8Array(range.value.endKey), utf8("z"));
  assert.equal(range.value.startKey.buffer, bytes.buffer, "a view, not a copy");
  const open = peekKeyRange(
    encodeEnvelope(envelope(heartbeatMessage(), { startKey: utf8(""), endKey: utf8("") })),
  );
  assert.ok(open.ok);
  assert.equal(open.value.startKey.length + open.value.endKey.length, 0);
  assert.ok(!peekKeyRange(new Uint8Array([0x3a, 0x05, 0x61])).ok, "a key longer than the message");
});

Deno.test("codec: the split and the peek agree with the full decoders on noise (never throwing)", () => {
  const seed = seedFromEnv();
  const random = new SeededRandom(seed);
  const valid = frameBatch([
    encodeEnvelope(envelope(fullAppend())),
    encodeEnvelope(envelope(heartbeatMessage(), { regionId: 300n })),
  ]);
  let decodedBatches = 0;
  for (let i = 0; i < 3000; i++) {
    const noise = random.chance(0.5) ? random.bytes(random.int(64)) : flip(valid, random);
    let split: ReturnType<typeof splitBatch>;
    let peeked: ReturnType<typeof peekRegionId>;
    try {
      split = splitBatch(noise);
      peeked = peekRegionId(noise);
    } catch (error) {
      return assert.fail(`seed ${seed}, case ${i}: threw ${error}`);
    }
    let batch: tikvpb.BatchRaftMessage | null = null;
    try {
      batch = tikvpb.BatchRaftMessage.decode(noise);
    } catch {
      // Refused by the full decoder: the split may refuse it or not (it does not look inside).
    }
    if (batch !== null) {
      decodedBatches++;
      assert.ok(split.ok, `seed ${seed}, case ${i}: decode takes what the split refused`);
      assert.equal(split.value.length, batch.msgs.length, `seed ${seed}, case ${i}`);
    }
    const decoded = decodeEnvelope(noise);
    if (decoded.ok) {
      assert.deepEqual(peeked, { ok: true, value: decoded.value.regionId }, `seed ${seed}, ${i}`);
    }
  }
  assert.ok(decodedBatches > 0, `some noise decodes (seed ${seed})`);
});

function heartbeatMessage(): Message {
  return newMessage({ msgType: MessageType.MsgHeartbeat, to: 12n, from: 11n, term: 3n });
}
