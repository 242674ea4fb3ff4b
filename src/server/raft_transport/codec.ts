/**
 * `RaftEnvelope` (src/raftstore/transport.ts) <-> `raft_serverpb.RaftMessage`, and the framing
 * of `tikvpb.BatchRaftMessage`: the bytes two stores exchange over `tikvpb.Tikv/BatchRaft` and
 * `tikvpb.Tikv/Raft`, with kvproto's field numbers so that a TiKV store's stream decodes.
 *
 * This is the one converter between src/raft's `Message` and `eraftpb.Message` (src/raft keeps
 * protobuf out of its core, src/raftstore converts only log entries and local states).
 *
 * It also reads, without decoding, what the main thread routes received messages by
 * (`splitBatch`: a batch's messages as views; `peekRegionId`, `peekKeyRange`): the region
 * workers decode the messages themselves (`src/server/worker_protocol.ts`), and the main thread
 * never builds an envelope of a message it only passes on. Outbound, a worker appends a round's
 * messages to one writer (`appendEnvelope`) and the main thread frames the bytes as they are.
 *
 * Invariants:
 * - Outbound envelopes are ours: one that breaks the protocol's shape (region 0, a receiver
 *   on store 0, a negative priority) is a bug and fails an assertion.
 * - Inbound bytes are a peer's: anything malformed (bad protobuf, unknown message or entry
 *   type, a local message type, a missing peer, a snapshot message without a snapshot) is a
 *   value (`{ ok: false, problem }`) naming what is wrong, never an exception.
 * - The split and the peeks take everything the generated decoders take and read the same
 *   values (a repeated scalar's last value wins; a known field number with another wire type is
 *   an unknown field, skipped), so a message routed by its peeked region id decodes to that
 *   region id or not at all (`codec_test.ts` checks it under seeded noise). They look at the
 *   top level only: what they pass may still fail `decodeEnvelope`.
 * - Decoded envelopes own their small byte fields (keys, contexts, entry data and context are
 *   copies), so that an entry kept in the entry cache does not pin a whole received batch in
 *   memory; a snapshot's data stays a view into the received message (it is the bulk of it,
 *   and is installed and dropped).
 *
 * Where Basalt's `proto/eraftpb.proto` differs from raft-rs's: it names field 15 `priority`
 * (int64) and lacks field 16, while raft-rs has `commit_term = 15` (uint64) and
 * `priority = 16` (int64), `deprecated_priority = 14` (uint64) kept for older peers. The wire
 * is what matters, so `commitTerm` travels in the generated `priority` property (field 15, the
 * same varint bits), and `priority` in `deprecatedPriority` (field 14), which raft-rs reads when
 * field 16 is absent. Both are zero in everything src/raft sends today.
 *
 * @module
 */

import $protobuf from "protobufjs/minimal.js";
import { eraftpb, metapb, raft_serverpb } from "../../../proto/mod.ts";
import {
  type ConfState,
  type Entry,
  EntryType,
  isLocalMessage,
  type Message,
  MessageType,
  newMessage,
  type Snapshot,
} from "../../raft/mod.ts";
import {
  type PeerMeta,
  type RegionEpoch,
  regionFromProto,
  regionToProto,
} from "../../raftstore/local_state.ts";
import type { RaftEnvelope } from "../../raftstore/transport.ts";
import { assert } from "../../util/assert.ts";

/** A decoded value, or what is wrong with the bytes. */
export type Decoded<T> = { ok: true; value: T } | { ok: false; problem: string };

/** `tikvpb.BatchRaftMessage.msgs` is field 1, length-delimited: tag (1 << 3) | 2. */
const BATCH_MSGS_TAG = (1 << 3) | 2;

const EMPTY_BYTES = new Uint8Array(0);

// ---------------------------------------------------------------------------------------------
// Outbound.

/** The envelope in kvproto's shape. */
export function envelopeToProto(envelope: RaftEnvelope): raft_serverpb.RaftMessage.$Properties {
  assert(envelope.regionId !== 0n, "an envelope names its region", { envelope: "region 0" });
  assert(envelope.toPeer.storeId !== 0n, "an envelope names its receiving store", {
    regionId: envelope.regionId,
    toPeer: envelope.toPeer.id,
  });
  return {
    regionId: envelope.regionId,
    fromPeer: peerToProto(envelope.fromPeer),
    toPeer: peerToProto(envelope.toPeer),
    message: messageToProto(envelope.message),
    regionEpoch: { confVer: envelope.regionEpoch.confVer, version: envelope.regionEpoch.version },
    isTombstone: envelope.isTombstone,
    startKey: envelope.startKey,
    endKey: envelope.endKey,
    mergeTarget: envelope.mergeTarget === undefined ? null : regionToProto(envelope.mergeTarget),
    extraMsg: envelope.checkStale === true
      ? { type: raft_serverpb.ExtraMessageType.MsgCheckStalePeer }
      : null,
  };
}

/** The bytes of `raft_serverpb.RaftMessage` for `envelope`. */
export function encodeEnvelope(envelope: RaftEnvelope): Uint8Array {
  return raft_serverpb.RaftMessage.encode(envelopeToProto(envelope)).finish();
}

/**
 * Appends the bytes of `raft_serverpb.RaftMessage` for `envelope` to `writer`, with no length
 * prefix: the messages of a round are written one after another into one buffer (the region
 * worker's post to the main thread), their ends read from `writer.pos`.
 */
export function appendEnvelope(writer: $protobuf.Writer, envelope: RaftEnvelope): void {
  raft_serverpb.RaftMessage.encode(envelopeToProto(envelope), writer);
}

/**
 * The bytes of a `tikvpb.BatchRaftMessage` holding `messages` (each the bytes of one
 * `raft_serverpb.RaftMessage`), framed as protobuf's repeated field 1 so that nothing is
 * encoded twice.
 */
export function frameBatch(messages: readonly Uint8Array[]): Uint8Array {
  const writer = $protobuf.Writer.create();
  for (const message of messages) writer.uint32(BATCH_MSGS_TAG).bytes(message);
  return writer.finish();
}

function peerToProto(peer: PeerMeta): metapb.Peer.$Properties {
  return { id: peer.id, storeId: peer.storeId, role: peer.role };
}

/** src/raft's message in eraftpb's shape (see the module header for fields 14 and 15). */
export function messageToProto(m: Message): eraftpb.Message.$Properties {
  assert(m.priority >= 0n, "a message's priority is not negative", { priority: m.priority });
  return {
    msgType: m.msgType as number as eraftpb.MessageType,
    to: m.to,
    from: m.from,
    term: m.term,
    logTerm: m.logTerm,
    index: m.index,
    entries: m.entries.map(entryToProto),
    commit: m.commit,
    snapshot: m.snapshot === undefined ? null : snapshotToProto(m.snapshot),
    requestSnapshot: m.requestSnapshot,
    reject: m.reject,
    rejectHint: m.rejectHint,
    context: m.context,
    deprecatedPriority: m.priority,
    priority: BigInt.asIntN(64, m.commitTerm),
  };
}

function entryToProto(e: Entry): eraftpb.Entry.$Properties {
  return {
    entryType: e.entryType as number as eraftpb.EntryType,
    term: e.term,
    index: e.index,
    data: e.data,
    context: e.context,
  };
}

function snapshotToProto(s: Snapshot): eraftpb.Snapshot.$Properties {
  const c = s.metadata.confState;
  return {
    data: s.data,
    metadata: {
      confState: {
        voters: c.voters,
        learners: c.learners,
        votersOutgoing: c.votersOutgoing,
        learnersNext: c.learnersNext,
        autoLeave: c.autoLeave,
      },
      index: s.metadata.index,
      term: s.metadata.term,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Inbound.

/**
 * The messages of one `tikvpb.BatchRaftMessage`, undecoded: each a view of `bytes` holding one
 * `raft_serverpb.RaftMessage`, in order; or what is wrong with the batch's framing. Only the
 * framing is read (field 1, length-delimited); other fields (`last_observed_time`) are skipped
 * as `tikvpb.BatchRaftMessage.decode` skips them, and what a message holds is not looked at.
 */
export function splitBatch(bytes: Uint8Array): Decoded<Uint8Array[]> {
  const reader = new $protobuf.Reader(bytes);
  const messages: Uint8Array[] = [];
  try {
    while (reader.pos < reader.len) {
      const tag = reader.tag();
      if (tag !== BATCH_MSGS_TAG) {
        reader.skipType(tag & 7, 0, tag >>> 3);
        continue;
      }
      const length = reader.uint32();
      const start = reader.pos;
      reader.skip(length);
      messages.push(bytes.subarray(start, reader.pos));
    }
  } catch (error) {
    return { ok: false, problem: `not a BatchRaftMessage: ${describeError(error)}` };
  }
  return { ok: true, value: messages };
}

/**
 * The region id of one `raft_serverpb.RaftMessage` (field 1), read without decoding the
 * message: what the main thread routes by. A problem when the message's own framing is broken
 * or the id is absent or 0; what the message holds besides is not checked (`decodeEnvelope`
 * does, in the region worker). Read as `decode` reads it: a repeated field's last value wins,
 * and a field 1 of another wire type is an unknown field, skipped.
 */
export function peekRegionId(bytes: Uint8Array): Decoded<bigint> {
  const scanned = scanRoute(bytes);
  if (typeof scanned === "string") return { ok: false, problem: scanned };
  if (scanned.regionId === 0n) return { ok: false, problem: "region id is 0" };
  return { ok: true, value: scanned.regionId };
}

/**
 * The start and end keys of one `raft_serverpb.RaftMessage` (fields 7 and 8), views of `bytes`,
 * read without decoding it: the main thread routes a message for a region it does not know by
 * them (rare: a new replica, or a region a split here will make). Empty when absent.
 */
export function peekKeyRange(
  bytes: Uint8Array,
): Decoded<{ startKey: Uint8Array; endKey: Uint8Array }> {
  const scanned = scanRoute(bytes);
  if (typeof scanned === "string") return { ok: false, problem: scanned };
  const view = ([start, end]: readonly [number, number]) =>
    start === end ? EMPTY_BYTES : bytes.subarray(start, end);
  return { ok: true, value: { startKey: view(scanned.startKey), endKey: view(scanned.endKey) } };
}

/** `raft_serverpb.RaftMessage`'s fields the main thread routes by. */
const REGION_ID_TAG = (1 << 3) | 0;
const START_KEY_TAG = (7 << 3) | 2;
const END_KEY_TAG = (8 << 3) | 2;

/**
 * One pass over a RaftMessage's top-level fields: its region id and where its keys lie, or the
 * framing problem. Nested messages are skipped by their length, never decoded.
 */
function scanRoute(
  bytes: Uint8Array,
): { regionId: bigint; startKey: [number, number]; endKey: [number, number] } | string {
  const reader = new $protobuf.Reader(bytes) as $protobuf.Reader & { bigU64(): bigint };
  let regionId = 0n;
  let startKey: [number, number] = [0, 0];
  let endKey: [number, number] = [0, 0];
  try {
    while (reader.pos < reader.len) {
      const tag = reader.tag();
      if (tag === REGION_ID_TAG) regionId = reader.bigU64();
      else if (tag === START_KEY_TAG || tag === END_KEY_TAG) {
        const length = reader.uint32();
        const start = reader.pos;
        reader.skip(length);
        if (tag === START_KEY_TAG) startKey = [start, reader.pos];
        else endKey = [start, reader.pos];
      } else reader.skipType(tag & 7, 0, tag >>> 3);
    }
  } catch (error) {
    return `not a RaftMessage: ${describeError(error)}`;
  }
  return { regionId, startKey, endKey };
}

/**
 * The envelopes of one `tikvpb.BatchRaftMessage`, or the first problem of its framing or of a
 * message (tests and tools; the store's service splits and routes bytes, `splitBatch`).
 */
export function decodeBatch(bytes: Uint8Array): Decoded<RaftEnvelope[]> {
  const split = splitBatch(bytes);
  if (!split.ok) return split;
  const envelopes: RaftEnvelope[] = [];
  for (const [i, message] of split.value.entries()) {
    const decoded = decodeEnvelope(message);
    if (!decoded.ok) return { ok: false, problem: `message ${i}: ${decoded.problem}` };
    envelopes.push(decoded.value);
  }
  return { ok: true, value: envelopes };
}

/** The envelope of one `raft_serverpb.RaftMessage`, or what is wrong with it. */
export function decodeEnvelope(bytes: Uint8Array): Decoded<RaftEnvelope> {
  let m: raft_serverpb.RaftMessage;
  try {
    m = raft_serverpb.RaftMessage.decode(bytes);
  } catch (error) {
    return { ok: false, problem: `not a RaftMessage: ${describeError(error)}` };
  }
  return envelopeFromProto(m);
}

/** A decoded `raft_serverpb.RaftMessage` as an envelope, checked (module header). */
export function envelopeFromProto(m: raft_serverpb.RaftMessage.$Properties): Decoded<RaftEnvelope> {
  const regionId = m.regionId ?? 0n;
  if (regionId === 0n) return { ok: false, problem: "region id is 0" };
  const fromPeer = peerFromProto(m.fromPeer, "from_peer");
  if (!fromPeer.ok) return fromPeer;
  const toPeer = peerFromProto(m.toPeer, "to_peer");
  if (!toPeer.ok) return toPeer;
  const isTombstone = m.isTombstone ?? false;
  const checkStale = m.extraMsg?.type === raft_serverpb.ExtraMessageType.MsgCheckStalePeer;
  let message: Message;
  if (m.message === null || m.message === undefined) {
    if (!isTombstone && !checkStale) return { ok: false, problem: "no Raft message" };
    // A tombstone or a stale check needs no Raft message (TiKV may send none); the raftstore
    // never reads it.
    message = newMessage({
      msgType: MessageType.MsgHeartbeat,
      to: toPeer.value.id,
      from: fromPeer.value.id,
    });
  } else {
    const decoded = messageFromProto(m.message);
    if (!decoded.ok) return decoded;
    message = decoded.value;
  }
  const epoch: RegionEpoch = {
    confVer: m.regionEpoch?.confVer ?? 0n,
    version: m.regionEpoch?.version ?? 0n,
  };
  return {
    ok: true,
    value: {
      regionId,
      fromPeer: fromPeer.value,
      toPeer: toPeer.value,
      regionEpoch: epoch,
      startKey: copyOf(m.startKey),
      endKey: copyOf(m.endKey),
      message,
      isTombstone,
      ...(m.mergeTarget == null ? {} : { mergeTarget: regionFromProto(m.mergeTarget) }),
      ...(checkStale ? { checkStale: true } : {}),
    },
  };
}

function peerFromProto(
  p: metapb.Peer.$Properties | null | undefined,
  field: string,
): Decoded<PeerMeta> {
  if (p === null || p === undefined) return { ok: false, problem: `no ${field}` };
  const id = p.id ?? 0n;
  const storeId = p.storeId ?? 0n;
  const role = p.role ?? metapb.PeerRole.Voter;
  if (id === 0n || storeId === 0n) {
    return { ok: false, problem: `${field} is peer ${id} on store ${storeId}` };
  }
  if (metapb.PeerRole[role] === undefined) {
    return { ok: false, problem: `${field} has unknown role ${role}` };
  }
  return { ok: true, value: { id, storeId, role } };
}

/** A decoded `eraftpb.Message` as src/raft's, checked (module header). */
export function messageFromProto(m: eraftpb.Message.$Properties): Decoded<Message> {
  const msgType = (m.msgType ?? 0) as number;
  if (MessageType[msgType] === undefined) {
    return { ok: false, problem: `unknown message type ${msgType}` };
  }
  // Local messages (MsgHup, MsgBeat, …) never leave a node; one from the wire could make a
  // peer campaign or tick at a stranger's word.
  if (isLocalMessage(msgType)) {
    return { ok: false, problem: `local message type ${MessageType[msgType]} from the wire` };
  }
  const entries: Entry[] = [];
  for (const e of m.entries ?? []) {
    const entry = entryFromProto(e);
    if (!entry.ok) return entry;
    entries.push(entry.value);
  }
  let snapshot: Snapshot | undefined;
  if (msgType === MessageType.MsgSnapshot) {
    const decoded = snapshotFromProto(m.snapshot);
    if (!decoded.ok) return decoded;
    snapshot = decoded.value;
  }
  return {
    ok: true,
    value: newMessage({
      msgType,
      to: m.to ?? 0n,
      from: m.from ?? 0n,
      term: m.term ?? 0n,
      logTerm: m.logTerm ?? 0n,
      index: m.index ?? 0n,
      entries,
      commit: m.commit ?? 0n,
      commitTerm: BigInt.asUintN(64, m.priority ?? 0n),
      snapshot,
      requestSnapshot: m.requestSnapshot ?? 0n,
      reject: m.reject ?? false,
      rejectHint: m.rejectHint ?? 0n,
      context: copyOf(m.context),
      priority: BigInt.asIntN(64, m.deprecatedPriority ?? 0n),
    }),
  };
}

function entryFromProto(e: eraftpb.Entry.$Properties): Decoded<Entry> {
  const entryType = (e.entryType ?? 0) as number;
  const index = e.index ?? 0n;
  if (EntryType[entryType] === undefined) {
    return { ok: false, problem: `entry ${index} has unknown type ${entryType}` };
  }
  // src/raft and apply assert that no ConfChangeV2 exists (single-step membership only).
  if (entryType === EntryType.EntryConfChangeV2) {
    return { ok: false, problem: `entry ${index} is a ConfChangeV2, which is not supported` };
  }
  return {
    ok: true,
    value: {
      entryType,
      term: e.term ?? 0n,
      index,
      data: copyOf(e.data),
      context: copyOf(e.context),
    },
  };
}

function snapshotFromProto(s: eraftpb.Snapshot.$Properties | null | undefined): Decoded<Snapshot> {
  if (s === null || s === undefined || s.metadata === null || s.metadata === undefined) {
    return { ok: false, problem: "MsgSnapshot without snapshot metadata" };
  }
  const c = s.metadata.confState;
  const confState: ConfState = {
    voters: [...(c?.voters ?? [])],
    learners: [...(c?.learners ?? [])],
    votersOutgoing: [...(c?.votersOutgoing ?? [])],
    learnersNext: [...(c?.learnersNext ?? [])],
    autoLeave: c?.autoLeave ?? false,
  };
  const data = s.data ?? EMPTY_BYTES;
  return {
    ok: true,
    value: {
      // A plain view (module header): protobufjs hands out Buffers, whose slice() does not copy.
      data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
      metadata: { confState, index: s.metadata.index ?? 0n, term: s.metadata.term ?? 0n },
    },
  };
}

function copyOf(bytes: Uint8Array | null | undefined): Uint8Array {
  return bytes === null || bytes === undefined || bytes.length === 0
    ? EMPTY_BYTES
    : new Uint8Array(bytes);
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
