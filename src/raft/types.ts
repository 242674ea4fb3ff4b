/**
 * eraftpb shapes, as TypeScript values.
 *
 * These mirror kvproto's `eraftpb.proto` (the raft-rs flavour TiKV ships) so that a message
 * built here can be copied field by field into a `raft_serverpb.RaftMessage` later. Field names
 * are the proto names in lowerCamelCase, the mapping every JS protobuf library uses
 * (`entry_type` → `entryType`, `log_term` → `logTerm`, `reject_hint` → `rejectHint`).
 * Enum values are eraftpb's numbers. Every u64 of the protocol (term, index, node id) is a
 * `bigint`.
 *
 * Invariants: messages and entries are plain data with no methods; the core never mutates an
 * entry after it has been handed out in a `Ready`.
 *
 * @module
 */

import { ProtoReader, ProtoWriter, WireFormatError } from "./wire.ts";

/** eraftpb.EntryType. */
export enum EntryType {
  EntryNormal = 0,
  EntryConfChange = 1,
  EntryConfChangeV2 = 2,
}

/** eraftpb.MessageType, with eraftpb's enum values. */
export enum MessageType {
  MsgHup = 0,
  MsgBeat = 1,
  MsgPropose = 2,
  MsgAppend = 3,
  MsgAppendResponse = 4,
  MsgRequestVote = 5,
  MsgRequestVoteResponse = 6,
  MsgSnapshot = 7,
  MsgHeartbeat = 8,
  MsgHeartbeatResponse = 9,
  MsgUnreachable = 10,
  MsgSnapStatus = 11,
  MsgCheckQuorum = 12,
  MsgTransferLeader = 13,
  MsgTimeoutNow = 14,
  MsgReadIndex = 15,
  MsgReadIndexResp = 16,
  MsgRequestPreVote = 17,
  MsgRequestPreVoteResponse = 18,
}

/** eraftpb.ConfChangeType (raft-rs numbering: AddLearnerNode is 2). */
export enum ConfChangeType {
  AddNode = 0,
  RemoveNode = 1,
  AddLearnerNode = 2,
}

/** eraftpb.Entry: `entry_type`=1, `term`=2, `index`=3, `data`=4, `context`=6. */
export interface Entry {
  entryType: EntryType;
  term: bigint;
  index: bigint;
  data: Uint8Array;
  context: Uint8Array;
}

/** eraftpb.HardState: what must be durable before any message of the same Ready is sent. */
export interface HardState {
  term: bigint;
  vote: bigint;
  commit: bigint;
}

/**
 * eraftpb.ConfState. `votersOutgoing`, `learnersNext` and `autoLeave` exist for wire
 * compatibility with joint consensus; this implementation only uses single-step changes, so
 * they are always empty/false (see README.md, "Membership change").
 */
export interface ConfState {
  voters: bigint[];
  learners: bigint[];
  votersOutgoing: bigint[];
  learnersNext: bigint[];
  autoLeave: boolean;
}

/** eraftpb.SnapshotMetadata. */
export interface SnapshotMetadata {
  confState: ConfState;
  index: bigint;
  term: bigint;
}

/** eraftpb.Snapshot: opaque state-machine data plus the log position it covers. */
export interface Snapshot {
  data: Uint8Array;
  metadata: SnapshotMetadata;
}

/** eraftpb.ConfChange. */
export interface ConfChange {
  id: bigint;
  changeType: ConfChangeType;
  nodeId: bigint;
  context: Uint8Array;
}

/**
 * eraftpb.Message. `snapshot` is present only on MsgSnapshot. `commitTerm` and `priority`
 * are carried for compatibility and left zero.
 */
export interface Message {
  msgType: MessageType;
  to: bigint;
  from: bigint;
  term: bigint;
  logTerm: bigint;
  index: bigint;
  entries: Entry[];
  commit: bigint;
  commitTerm: bigint;
  snapshot: Snapshot | undefined;
  requestSnapshot: bigint;
  reject: boolean;
  rejectHint: bigint;
  context: Uint8Array;
  priority: bigint;
}

/** The id meaning "no node": no leader known, no vote cast. */
export const NONE = 0n;

const EMPTY_BYTES = new Uint8Array(0);

/** Builds a message with every field defaulted to zero/empty, then `fields` applied. */
export function newMessage(fields: Partial<Message> & { msgType: MessageType }): Message {
  return {
    to: NONE,
    from: NONE,
    term: 0n,
    logTerm: 0n,
    index: 0n,
    entries: [],
    commit: 0n,
    commitTerm: 0n,
    snapshot: undefined,
    requestSnapshot: 0n,
    reject: false,
    rejectHint: 0n,
    context: EMPTY_BYTES,
    priority: 0n,
    ...fields,
  };
}

/** Builds an entry; `data` and `context` default to empty, `entryType` to EntryNormal. */
export function newEntry(fields: Partial<Entry> & { term: bigint; index: bigint }): Entry {
  return { entryType: EntryType.EntryNormal, data: EMPTY_BYTES, context: EMPTY_BYTES, ...fields };
}

/** An empty ConfState. */
export function newConfState(
  fields: { voters?: bigint[]; learners?: bigint[] } = {},
): ConfState {
  return {
    voters: fields.voters ?? [],
    learners: fields.learners ?? [],
    votersOutgoing: [],
    learnersNext: [],
    autoLeave: false,
  };
}

/** An empty snapshot at index 0, term 0. */
export function emptySnapshot(): Snapshot {
  return { data: EMPTY_BYTES, metadata: { confState: newConfState(), index: 0n, term: 0n } };
}

/** True for the message types that never leave a node (eraftpb "local" messages). */
export function isLocalMessage(t: MessageType): boolean {
  return t === MessageType.MsgHup || t === MessageType.MsgBeat ||
    t === MessageType.MsgUnreachable || t === MessageType.MsgSnapStatus ||
    t === MessageType.MsgCheckQuorum;
}

/** True for responses, which a node accepts from any term-current peer. */
export function isResponseMessage(t: MessageType): boolean {
  return t === MessageType.MsgAppendResponse || t === MessageType.MsgRequestVoteResponse ||
    t === MessageType.MsgHeartbeatResponse || t === MessageType.MsgUnreachable ||
    t === MessageType.MsgRequestPreVoteResponse;
}

/** The vote response type that answers a vote request type. */
export function voteResponseType(t: MessageType): MessageType {
  if (t === MessageType.MsgRequestVote) return MessageType.MsgRequestVoteResponse;
  assert(t === MessageType.MsgRequestPreVote, `not a vote request: ${MessageType[t]}`);
  return MessageType.MsgRequestPreVoteResponse;
}

// eraftpb.ConfChange field numbers (kvproto's include/eraftpb.proto).
const CONF_CHANGE_ID = 1;
const CONF_CHANGE_TYPE = 2;
const CONF_CHANGE_NODE_ID = 3;
const CONF_CHANGE_CONTEXT = 4;

/**
 * Encodes a ConfChange into entry data as protobuf `eraftpb.ConfChange`, the bytes TiKV and
 * raft-rs put in an EntryConfChange entry (fields in number order, defaults omitted).
 */
export function encodeConfChange(cc: ConfChange): Uint8Array {
  return new ProtoWriter()
    .uint64(CONF_CHANGE_ID, cc.id)
    .enumValue(CONF_CHANGE_TYPE, cc.changeType)
    .uint64(CONF_CHANGE_NODE_ID, cc.nodeId)
    .bytes(CONF_CHANGE_CONTEXT, cc.context)
    .finish();
}

/**
 * Decodes an `eraftpb.ConfChange` from entry data; unknown fields are skipped. Data that is not
 * one, or names an unknown change type, fails an assertion: conf-change entries are built by
 * `encodeConfChange` and reach the core only through the log, so bad bytes here are a bug or
 * corruption, never an expected error.
 */
export function decodeConfChange(data: Uint8Array): ConfChange {
  const cc: ConfChange = {
    id: 0n,
    changeType: ConfChangeType.AddNode,
    nodeId: NONE,
    context: EMPTY_BYTES,
  };
  try {
    const reader = new ProtoReader(data);
    while (!reader.done()) {
      const { field, wireType } = reader.tag();
      const expected = field === CONF_CHANGE_CONTEXT ? 2 : 0;
      if (field > CONF_CHANGE_CONTEXT || wireType !== expected) {
        reader.skip(wireType);
      } else if (field === CONF_CHANGE_ID) cc.id = reader.varint();
      else if (field === CONF_CHANGE_NODE_ID) cc.nodeId = reader.varint();
      else if (field === CONF_CHANGE_CONTEXT) cc.context = reader.bytes();
      else cc.changeType = confChangeTypeOf(reader.varint());
    }
  } catch (error) {
    if (!(error instanceof WireFormatError)) throw error;
    assert(false, `conf change entry data is not an eraftpb.ConfChange: ${error.message}`);
  }
  return cc;
}

function confChangeTypeOf(value: bigint): ConfChangeType {
  const n = Number(BigInt.asIntN(32, value)); // An enum is an int32 on the wire.
  assert(n in ConfChangeType, `unknown ConfChangeType ${n}`);
  return n as ConfChangeType;
}

/** Thrown when an invariant of the Raft core does not hold: always a bug, never handled. */
export class RaftAssertionError extends Error {
  override name = "RaftAssertionError";
}

/** Asserts an invariant; kept on in production (a failure is a bug, never an expected error). */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new RaftAssertionError(message);
}

/** Smaller of two bigints. */
export function minBig(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

/** Larger of two bigints. */
export function maxBig(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}
