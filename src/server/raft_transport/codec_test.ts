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
import { decodeBatch, decodeEnvelope, encodeEnvelope, frameBatch } from "./codec.ts";

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
