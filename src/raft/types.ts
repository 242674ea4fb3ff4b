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

/** Encodes a ConfChange into entry data (a fixed little-endian layout, not protobuf). */
export function encodeConfChange(cc: ConfChange): Uint8Array {
  const out = new Uint8Array(1 + 8 + 8 + cc.context.length);
  const view = new DataView(out.buffer);
  view.setUint8(0, cc.changeType);
  view.setBigUint64(1, cc.id, true);
  view.setBigUint64(9, cc.nodeId, true);
  out.set(cc.context, 17);
  return out;
}

/** Decodes what `encodeConfChange` wrote. */
export function decodeConfChange(data: Uint8Array): ConfChange {
  assert(data.length >= 17, `conf change data too short: ${data.length} bytes`);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const changeType = view.getUint8(0);
  assert(changeType in ConfChangeType, `unknown ConfChangeType ${changeType}`);
  return {
    changeType: changeType as ConfChangeType,
    id: view.getBigUint64(1, true),
    nodeId: view.getBigUint64(9, true),
    context: data.slice(17),
  };
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
