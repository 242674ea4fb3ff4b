/**
 * The bytes of a write command (`raft_cmdpb.RaftCmdRequest` of Put, Delete and DeleteRange
 * requests), written and read by hand. Every write is encoded once at the write path and decoded
 * once per replica at apply; protobufjs's generic writer and reader (an object per request, a
 * fork per sub-message, a string decode per column family) were a large share of a put's CPU.
 *
 * Invariants:
 * - `encodeWriteCommand(header, modifications)` returns exactly the bytes protobufjs's generated
 *   encoder returns for `{ header, requests: modifications.map(modificationToRaftRequest) }`
 *   (fields in field-number order, proto3 zero values omitted, an empty sub-message still
 *   written when it is set), so a log holds the same bytes whichever encoder wrote them.
 *   `cmd_codec_test.ts` checks it byte for byte.
 * - `decodeWriteCommand(bytes)` returns what `raft_cmdpb.RaftCmdRequest.decode(bytes)` returns
 *   (the same generated classes, the same own fields) or `undefined`, never something else: it
 *   reads only the shapes this encoder writes (a header of region id, peer, epoch, term and
 *   sync_log; Put/Delete/DeleteRange requests of a known column family) and gives up on
 *   anything else — admin and status requests, unknown or repeated sub-messages, non-minimal
 *   long varints, a truncated or malformed field. `decodeCommandFast` then asks the generated
 *   decoder, which decodes the rest or throws its own error: malformed bytes fail exactly as
 *   they did before.
 * - Decoding never reads outside the input: every read is checked against the end of the
 *   message it is in.
 * - Decoded keys and values are views into the input (`subarray`), not copies, as protobufjs's
 *   are: the caller must not reuse the input's buffer while it holds the command.
 *
 * @example
 * ```ts
 * const bytes = encodeWriteCommand(
 *   { regionId: 2n, peer: { id: 3n, storeId: 1n, role: 0 }, regionEpoch: { confVer: 1n, version: 1n } },
 *   [{ type: "put", cf: "default", key, value }],
 * );
 * const cmd = decodeCommandFast(bytes); // cmd.requests[0].put.key: a view into `bytes`
 * ```
 *
 * @module
 */

import { metapb, raft_cmdpb } from "../../proto/mod.ts";
import {
  RAFT_COMMAND_MAX_BYTES,
  RAFT_COMMAND_SLAB_BYTES,
  RAFT_COMMAND_SLAB_MAX_COMMAND_BYTES,
} from "../constants.ts";
import type { ColumnFamily } from "../engine/types.ts";
import type { Modification } from "../storage/modification.ts";
import { assert, unreachable } from "../util/assert.ts";
import type { RaftCmd } from "./command.ts";
import type { PeerMeta, RegionEpoch } from "./local_state.ts";

/**
 * The header of a write command: what `commandHeader` (command.ts) and the write path fill,
 * plus TiKV's `term` and `sync_log` (omitted when absent, zero or false, as protobufjs omits
 * them).
 */
export interface WriteCommandHeader {
  regionId: bigint;
  /** The proposing peer; null writes no peer field. */
  peer: PeerMeta | null;
  /** Always written, even when both numbers are zero (a set sub-message). */
  regionEpoch: RegionEpoch;
  term?: bigint;
  syncLog?: boolean;
}

// Wire tags: field number << 3 | wire type (0 varint, 2 length-delimited). Field numbers are
// kvproto's (proto/raft_cmdpb.proto, proto/metapb.proto).
const VARINT = 0;
const LENGTH = 2;
const tag = (field: number, wireType: number) => field << 3 | wireType;

const CMD_HEADER = tag(1, LENGTH);
const CMD_REQUESTS = tag(2, LENGTH);
const HEADER_REGION_ID = tag(1, VARINT);
const HEADER_PEER = tag(2, LENGTH);
const HEADER_REGION_EPOCH = tag(5, LENGTH);
const HEADER_TERM = tag(6, VARINT);
const HEADER_SYNC_LOG = tag(7, VARINT);
const PEER_ID = tag(1, VARINT);
const PEER_STORE_ID = tag(2, VARINT);
const PEER_ROLE = tag(3, VARINT);
const PEER_IS_WITNESS = tag(4, VARINT);
const EPOCH_CONF_VER = tag(1, VARINT);
const EPOCH_VERSION = tag(2, VARINT);
const REQUEST_CMD_TYPE = tag(1, VARINT);
const REQUEST_PUT = tag(4, LENGTH);
const REQUEST_DELETE = tag(5, LENGTH);
const REQUEST_DELETE_RANGE = tag(8, LENGTH);
// PutRequest, DeleteRequest and DeleteRangeRequest share their first fields' numbers and types.
const CF = tag(1, LENGTH);
const KEY = tag(2, LENGTH); // PutRequest.key, DeleteRequest.key, DeleteRangeRequest.start_key
const VALUE = tag(3, LENGTH); // PutRequest.value, DeleteRangeRequest.end_key
const NOTIFY_ONLY = tag(4, VARINT); // DeleteRangeRequest.notify_only

const U32_MAX = 0xffff_ffffn;
const U64_MAX = 0xffff_ffff_ffff_ffffn;
const INT32_MAX = 0x7fff_ffff;

/** Each column family's name as the bytes of `cf` (never empty: protobufjs writes "default"). */
const CF_NAMES: Readonly<Record<ColumnFamily, Uint8Array>> = {
  default: utf8("default"),
  lock: utf8("lock"),
  write: utf8("write"),
  raft: utf8("raft"),
};

function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

// ---------------------------------------------------------------------------------------------
// Encoding

/**
 * The bytes of a write command: `header` and one request per modification, in order — the
 * bytes protobufjs writes for `writeCommand`'s object (module header). Keys and values are
 * copied, so the caller may reuse its buffers at once. A command of at most
 * RAFT_COMMAND_SLAB_MAX_COMMAND_BYTES is a view of a slab it shares with others (protobufjs's
 * `finish()` does the same): never transfer or detach its `.buffer` — copy it first.
 */
export function encodeWriteCommand(
  header: WriteCommandHeader,
  modifications: readonly Modification[],
): Uint8Array {
  // Assertions on this path read `if (broken) assert(false, …)`, so that their fields objects
  // are built only when they fail.
  const headerSize = writeHeader(headerScratch, header);
  if (headerSize > HEADER_MAX_BYTES) assert(false, "a header fits its scratch", { headerSize });
  let size = 2 + headerSize;
  for (const m of modifications) size += fieldSize(requestBodySize(m));
  if (size > RAFT_COMMAND_MAX_BYTES) {
    assert(false, "a write command fits RAFT_COMMAND_MAX_BYTES", {
      size,
      count: modifications.length,
    });
  }
  const out = allocate(size);
  out[0] = CMD_HEADER;
  out[1] = headerSize;
  for (let i = 0; i < headerSize; i++) out[2 + i] = headerScratch[i]!;
  let at = 2 + headerSize;
  for (const m of modifications) at = writeRequest(out, at, m);
  if (at !== size) assert(false, "encodeWriteCommand wrote the size it computed", { at, size });
  return out;
}

/**
 * The bytes of `commands` (each from `encodeWriteCommand`) as one command: the first one's
 * header, then every command's requests in order — what `encodeWriteCommand` writes for that
 * header and all their modifications. Every command must carry the same header bytes
 * (`sameWriteHeader`): a merged command is checked and applied as one, so its writes meet one
 * epoch check together. Returns a new array (never a slab's view).
 */
export function mergeWriteCommands(commands: readonly Uint8Array[]): Uint8Array {
  const first = commands[0];
  assert(first !== undefined, "merges at least one command");
  const prefix = writeHeaderPrefixBytes(first);
  let size = prefix;
  for (const command of commands) {
    if (!sameWriteHeader(first, command)) {
      assert(false, "merged write commands share one header", { prefix });
    }
    size += command.length - prefix;
  }
  const out = new Uint8Array(size);
  out.set(first.subarray(0, prefix));
  let at = prefix;
  for (const command of commands) {
    out.set(command.subarray(prefix), at);
    at += command.length - prefix;
  }
  return out;
}

/** Whether two commands from `encodeWriteCommand` carry the same header bytes. */
export function sameWriteHeader(a: Uint8Array, b: Uint8Array): boolean {
  const prefix = writeHeaderPrefixBytes(a);
  if (b.length < prefix || b[0] !== CMD_HEADER || b[1] !== a[1]) return false;
  for (let i = 2; i < prefix; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Bytes of the header field `encodeWriteCommand` writes first (tag, one-byte length, body). */
function writeHeaderPrefixBytes(command: Uint8Array): number {
  const size = command[1] ?? 0x80;
  if (command[0] !== CMD_HEADER || size >= 0x80 || command.length < 2 + size) {
    assert(false, "a write command from encodeWriteCommand", { length: command.length });
  }
  return 2 + size;
}

/** The slab small commands are carved from, and where its free part starts. */
let slab = new Uint8Array(0);
let slabUsedBytes = 0;

/**
 * `size` bytes for one command: a view of the shared slab when the command is small (a new slab
 * when the current one is full), else an array of its own. Views never overlap: each is handed
 * out once, and the slab is never written again through anything else.
 */
function allocate(size: number): Uint8Array {
  if (size > RAFT_COMMAND_SLAB_MAX_COMMAND_BYTES) return new Uint8Array(size);
  if (size > slab.length - slabUsedBytes) {
    slab = new Uint8Array(RAFT_COMMAND_SLAB_BYTES);
    slabUsedBytes = 0;
  }
  const view = slab.subarray(slabUsedBytes, slabUsedBytes + size);
  slabUsedBytes += size;
  return view;
}

/** Bytes of a length-delimited field (one-byte tag) whose body is `bodySize` bytes. */
function fieldSize(bodySize: number): number {
  return 1 + varint32Size(bodySize) + bodySize;
}

/** Bytes of a `bytes` field holding `length` bytes: none when empty (proto3). */
function bytesFieldSize(length: number): number {
  return length === 0 ? 0 : fieldSize(length);
}

/** Bytes of a varint of `value` (a non-negative integer below 2^35). */
function varint32Size(value: number): number {
  if (value < 0x80) return 1;
  if (value < 0x4000) return 2;
  if (value < 0x20_0000) return 3;
  if (value < 0x1000_0000) return 4;
  return 5;
}

/** Bytes of the Request of `m`: cmd_type (2 bytes), then its Put/Delete/DeleteRange message. */
function requestBodySize(m: Modification): number {
  return 2 + fieldSize(operationBodySize(m));
}

/** Bytes of `m`'s PutRequest, DeleteRequest or DeleteRangeRequest. */
function operationBodySize(m: Modification): number {
  const name = CF_NAMES[m.cf];
  if (name === undefined) assert(false, "a modification of a known column family", { cf: m.cf });
  const cf = 2 + name.length;
  switch (m.type) {
    case "put":
      return cf + bytesFieldSize(m.key.length) + bytesFieldSize(m.value.length);
    case "delete":
      return cf + bytesFieldSize(m.key.length);
    case "deleteRange":
      return cf + bytesFieldSize(m.startKey.length) + bytesFieldSize(m.endKey.length);
    default:
      return unreachable(m, "a modification of a known type");
  }
}

/** Writes `value` (a non-negative integer below 2^32) as a varint at `at`; returns the end. */
function writeVarint32(out: Uint8Array, at: number, value: number): number {
  let v = value;
  while (v > 0x7f) {
    out[at++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  out[at++] = v;
  return at;
}

/**
 * Writes a u64 field unless it is zero (proto3). Below 2^32 the value is written from a number;
 * above, from its two 32-bit halves with protobufjs's loop.
 */
function writeU64Field(out: Uint8Array, at: number, fieldTag: number, value: bigint): number {
  if (value === 0n) return at;
  out[at++] = fieldTag;
  if (typeof value === "bigint" && value > 0n && value <= U32_MAX) {
    return writeVarint32(out, at, Number(value));
  }
  if (!(typeof value === "bigint" && value > 0n && value <= U64_MAX)) {
    assert(false, "a u64", { value });
  }
  let low = Number(value & U32_MAX);
  let high = Number(value >> 32n);
  while (high !== 0) {
    out[at++] = (low & 0x7f) | 0x80;
    low = ((low >>> 7) | (high << 25)) >>> 0;
    high >>>= 7;
  }
  return writeVarint32(out, at, low);
}

/** Writes a `bytes` field unless `bytes` is empty. */
function writeBytesField(
  out: Uint8Array,
  at: number,
  fieldTag: number,
  bytes: Uint8Array,
): number {
  const length = bytes.length;
  if (length === 0) return at;
  out[at] = fieldTag;
  at = writeVarint32(out, at + 1, length);
  out.set(bytes, at); // Faster than a loop even for 16 bytes (measured: ~15 ns against ~58).
  return at + length;
}

/**
 * A header's body is written here first, in one pass, and then copied: its size is known only
 * once its u64s are written, and BigInt arithmetic is most of a header's cost, so a separate
 * sizing pass over them cost more than the copy (measured: ~190 ns of a ~350 ns put).
 * Every length inside a header is below 128, one byte: its body is at most HEADER_MAX_BYTES.
 */
const HEADER_MAX_BYTES = 11 + (2 + 11 + 11 + 6) + (2 + 11 + 11) + 11 + 2;
const headerScratch = new Uint8Array(HEADER_MAX_BYTES);

/**
 * RaftRequestHeader's body — region_id 1, peer 2 { id 1, store_id 2, role 3 }, region_epoch 5
 * { conf_ver 1, version 2 }, term 6, sync_log 7 — at the start of `out`; returns its size.
 */
function writeHeader(out: Uint8Array, header: WriteCommandHeader): number {
  const { peer, regionEpoch } = header;
  let at = writeU64Field(out, 0, HEADER_REGION_ID, header.regionId);
  if (peer !== null) {
    out[at] = HEADER_PEER;
    const body = at + 2;
    at = writeU64Field(out, body, PEER_ID, peer.id);
    at = writeU64Field(out, at, PEER_STORE_ID, peer.storeId);
    const role = peer.role as number;
    if (role !== 0) {
      if (!(Number.isInteger(role) && role > 0 && role <= INT32_MAX)) {
        assert(false, "a PeerRole", { role });
      }
      out[at] = PEER_ROLE;
      at = writeVarint32(out, at + 1, role);
    }
    out[body - 1] = at - body;
  }
  out[at] = HEADER_REGION_EPOCH;
  const body = at + 2;
  at = writeU64Field(out, body, EPOCH_CONF_VER, regionEpoch.confVer);
  at = writeU64Field(out, at, EPOCH_VERSION, regionEpoch.version);
  out[body - 1] = at - body;
  if (header.term !== undefined) at = writeU64Field(out, at, HEADER_TERM, header.term);
  if (header.syncLog === true) {
    out[at++] = HEADER_SYNC_LOG;
    out[at++] = 1;
  }
  return at;
}

/**
 * One `requests` field: Request { cmd_type 1, then put 4, delete 5 or delete_range 8 }, whose
 * message holds cf 1 and its keys and value (2, 3).
 */
function writeRequest(out: Uint8Array, at: number, m: Modification): number {
  const operationSize = operationBodySize(m);
  out[at] = CMD_REQUESTS;
  at = writeVarint32(out, at + 1, 2 + fieldSize(operationSize));
  out[at++] = REQUEST_CMD_TYPE;
  if (m.type === "put") {
    out[at++] = raft_cmdpb.CmdType.Put;
    out[at++] = REQUEST_PUT;
  } else if (m.type === "delete") {
    out[at++] = raft_cmdpb.CmdType.Delete;
    out[at++] = REQUEST_DELETE;
  } else {
    out[at++] = raft_cmdpb.CmdType.DeleteRange;
    out[at++] = REQUEST_DELETE_RANGE;
  }
  at = writeVarint32(out, at, operationSize);
  at = writeBytesField(out, at, CF, CF_NAMES[m.cf]);
  if (m.type === "put") {
    at = writeBytesField(out, at, KEY, m.key);
    return writeBytesField(out, at, VALUE, m.value);
  }
  if (m.type === "delete") return writeBytesField(out, at, KEY, m.key);
  at = writeBytesField(out, at, KEY, m.startKey);
  return writeBytesField(out, at, VALUE, m.endKey);
}

// ---------------------------------------------------------------------------------------------
// Decoding

/**
 * Thrown inside the decoder when the bytes are not a shape it reads exactly; caught at its one
 * entry and turned into `undefined`. One preallocated object without a stack: giving up on an
 * admin command or a damaged entry costs no more than a return, and each reader stays a plain
 * function of the bytes instead of checking a result after every field.
 */
class NotAWriteCommand {}
const GIVE_UP = new NotAWriteCommand();

/**
 * The command in `data`, decoded by hand when it is a write command this module reads (module
 * header), else by protobufjs's generated decoder — which throws its own error for bytes that
 * are no RaftCmdRequest. The result equals `raft_cmdpb.RaftCmdRequest.decode(data)` either way;
 * its keys and values are views into `data` (no copies).
 */
export function decodeCommandFast(data: Uint8Array): RaftCmd {
  return decodeWriteCommand(data) ?? raft_cmdpb.RaftCmdRequest.decode(data);
}

/**
 * The write command in `data` when it has only the shapes this module reads, else `undefined`
 * (the caller decodes it with the generated decoder: `decodeCommandFast`). Never throws for
 * any input. A result equals `raft_cmdpb.RaftCmdRequest.decode(data)`, and its keys and values
 * are views into `data` (no copies).
 */
export function decodeWriteCommand(data: Uint8Array): RaftCmd | undefined {
  const reader = new Reader(data);
  try {
    return readCommand(reader);
  } catch (error) {
    if (error === GIVE_UP) return undefined;
    throw error;
  }
}

/** A position in the bytes; every read is bounded by the end of its message (`end`). */
class Reader {
  pos = 0;
  constructor(readonly buf: Uint8Array) {}

  /** A varint below 2^28 (four bytes at most: longer ones are left to protobufjs). */
  varint28(end: number): number {
    const buf = this.buf;
    let value = 0;
    for (let shift = 0; shift < 28; shift += 7) {
      if (this.pos >= end) throw GIVE_UP;
      const byte = buf[this.pos++]!;
      value |= (byte & 0x7f) << shift;
      if (byte < 0x80) return value;
    }
    throw GIVE_UP;
  }

  /** A u64 below 2^49 (seven bytes at most: longer ones are left to protobufjs). */
  u64(end: number): bigint {
    const buf = this.buf;
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 7; i++) {
      if (this.pos >= end) throw GIVE_UP;
      const byte = buf[this.pos++]!;
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return BigInt(value);
      scale *= 0x80;
    }
    throw GIVE_UP;
  }

  /** A bool in one byte (protobufjs reads longer ones too; they are left to it). */
  bool(end: number): boolean {
    if (this.pos >= end) throw GIVE_UP;
    const byte = this.buf[this.pos++]!;
    if (byte >= 0x80) throw GIVE_UP;
    return byte !== 0;
  }

  /** The end of the length-delimited field starting here (its length read), inside `end`. */
  fieldEnd(end: number): number {
    const length = this.varint28(end);
    if (length > end - this.pos) throw GIVE_UP;
    return this.pos + length;
  }

  /** A `bytes` field's value: a view, or undefined when empty (protobufjs omits it). */
  bytes(end: number): Uint8Array | undefined {
    const fieldEnd = this.fieldEnd(end);
    const start = this.pos;
    this.pos = fieldEnd;
    return fieldEnd === start ? undefined : this.buf.subarray(start, fieldEnd);
  }

  /** A `cf` field: one of Basalt's column families, or undefined when empty. */
  cf(end: number): ColumnFamily | undefined {
    const fieldEnd = this.fieldEnd(end);
    const start = this.pos;
    this.pos = fieldEnd;
    if (fieldEnd === start) return undefined;
    for (const name of ["default", "lock", "write", "raft"] as const) {
      if (bytesEqualAt(this.buf, start, fieldEnd, CF_NAMES[name])) return name;
    }
    throw GIVE_UP; // Any other name, valid UTF-8 or not, is protobufjs's to read.
  }
}

function bytesEqualAt(buf: Uint8Array, start: number, end: number, name: Uint8Array): boolean {
  if (end - start !== name.length) return false;
  for (let i = 0; i < name.length; i++) if (buf[start + i] !== name[i]) return false;
  return true;
}

function readCommand(reader: Reader): RaftCmd {
  const cmd = new raft_cmdpb.RaftCmdRequest();
  const end = reader.buf.length;
  while (reader.pos < end) {
    const fieldTag = reader.buf[reader.pos++];
    if (fieldTag === CMD_REQUESTS) {
      cmd.requests.push(readRequest(reader, reader.fieldEnd(end)));
    } else if (fieldTag === CMD_HEADER && cmd.header === null) {
      // A second header merges into the first in protobufjs: left to it.
      cmd.header = readHeader(reader, reader.fieldEnd(end));
    } else {
      throw GIVE_UP;
    }
  }
  return cmd;
}

/**
 * A header's fields. A scalar seen twice takes its last value, and a zero value removes the
 * field, as protobufjs reads them; a sub-message seen twice is left to protobufjs (it merges).
 */
function readHeader(reader: Reader, end: number): raft_cmdpb.RaftRequestHeader {
  const header = new raft_cmdpb.RaftRequestHeader();
  let regionId = 0n;
  let term = 0n;
  let syncLog = false;
  let peer: metapb.Peer | undefined;
  let regionEpoch: metapb.RegionEpoch | undefined;
  while (reader.pos < end) {
    const fieldTag = reader.buf[reader.pos++];
    if (fieldTag === HEADER_REGION_ID) regionId = reader.u64(end);
    else if (fieldTag === HEADER_PEER && peer === undefined) {
      peer = readPeer(reader, reader.fieldEnd(end));
    } else if (fieldTag === HEADER_REGION_EPOCH && regionEpoch === undefined) {
      regionEpoch = readRegionEpoch(reader, reader.fieldEnd(end));
    } else if (fieldTag === HEADER_TERM) term = reader.u64(end);
    else if (fieldTag === HEADER_SYNC_LOG) syncLog = reader.bool(end);
    else throw GIVE_UP;
  }
  if (regionId !== 0n) header.regionId = regionId;
  if (peer !== undefined) header.peer = peer;
  if (regionEpoch !== undefined) header.regionEpoch = regionEpoch;
  if (term !== 0n) header.term = term;
  if (syncLog) header.syncLog = true;
  return header;
}

function readPeer(reader: Reader, end: number): metapb.Peer {
  const peer = new metapb.Peer();
  let id = 0n;
  let storeId = 0n;
  let role = 0;
  let isWitness = false;
  while (reader.pos < end) {
    const fieldTag = reader.buf[reader.pos++];
    if (fieldTag === PEER_ID) id = reader.u64(end);
    else if (fieldTag === PEER_STORE_ID) storeId = reader.u64(end);
    else if (fieldTag === PEER_ROLE) role = reader.varint28(end);
    else if (fieldTag === PEER_IS_WITNESS) isWitness = reader.bool(end);
    else throw GIVE_UP;
  }
  if (id !== 0n) peer.id = id;
  if (storeId !== 0n) peer.storeId = storeId;
  if (role !== 0) peer.role = role;
  if (isWitness) peer.isWitness = true;
  return peer;
}

function readRegionEpoch(reader: Reader, end: number): metapb.RegionEpoch {
  const epoch = new metapb.RegionEpoch();
  let confVer = 0n;
  let version = 0n;
  while (reader.pos < end) {
    const fieldTag = reader.buf[reader.pos++];
    if (fieldTag === EPOCH_CONF_VER) confVer = reader.u64(end);
    else if (fieldTag === EPOCH_VERSION) version = reader.u64(end);
    else throw GIVE_UP;
  }
  if (confVer !== 0n) epoch.confVer = confVer;
  if (version !== 0n) epoch.version = version;
  return epoch;
}

/** A Request of cmd_type and put/delete/delete_range (any mix, as protobufjs reads them). */
function readRequest(reader: Reader, end: number): raft_cmdpb.Request {
  const request = new raft_cmdpb.Request();
  let cmdType = 0;
  let put: raft_cmdpb.PutRequest | undefined;
  let deletion: raft_cmdpb.DeleteRequest | undefined;
  let deleteRange: raft_cmdpb.DeleteRangeRequest | undefined;
  while (reader.pos < end) {
    const fieldTag = reader.buf[reader.pos++];
    if (fieldTag === REQUEST_CMD_TYPE) cmdType = reader.varint28(end);
    else if (fieldTag === REQUEST_PUT && put === undefined) {
      put = readPut(reader, reader.fieldEnd(end));
    } else if (fieldTag === REQUEST_DELETE && deletion === undefined) {
      deletion = readDelete(reader, reader.fieldEnd(end));
    } else if (fieldTag === REQUEST_DELETE_RANGE && deleteRange === undefined) {
      deleteRange = readDeleteRange(reader, reader.fieldEnd(end));
    } else {
      throw GIVE_UP;
    }
  }
  if (cmdType !== 0) request.cmdType = cmdType;
  if (put !== undefined) request.put = put;
  if (deletion !== undefined) request.delete = deletion;
  if (deleteRange !== undefined) request.deleteRange = deleteRange;
  return request;
}

function readPut(reader: Reader, end: number): raft_cmdpb.PutRequest {
  const put = new raft_cmdpb.PutRequest();
  let cf: ColumnFamily | undefined;
  let key: Uint8Array | undefined;
  let value: Uint8Array | undefined;
  while (reader.pos < end) {
    const fieldTag = reader.buf[reader.pos++];
    if (fieldTag === CF) cf = reader.cf(end);
    else if (fieldTag === KEY) key = reader.bytes(end);
    else if (fieldTag === VALUE) value = reader.bytes(end);
    else throw GIVE_UP;
  }
  if (cf !== undefined) put.cf = cf;
  if (key !== undefined) put.key = key;
  if (value !== undefined) put.value = value;
  return put;
}

function readDelete(reader: Reader, end: number): raft_cmdpb.DeleteRequest {
  const deletion = new raft_cmdpb.DeleteRequest();
  let cf: ColumnFamily | undefined;
  let key: Uint8Array | undefined;
  while (reader.pos < end) {
    const fieldTag = reader.buf[reader.pos++];
    if (fieldTag === CF) cf = reader.cf(end);
    else if (fieldTag === KEY) key = reader.bytes(end);
    else throw GIVE_UP;
  }
  if (cf !== undefined) deletion.cf = cf;
  if (key !== undefined) deletion.key = key;
  return deletion;
}

/** Kinds of `WriteOps`' operations. */
export const WRITE_OP_PUT = 1;
export const WRITE_OP_DELETE = 2;
export const WRITE_OP_DELETE_RANGE = 3;

/**
 * A plain write command read without an object per request (`readWriteOps`): its header and,
 * per request, its kind, column family, key (a DeleteRange's start key) and value (a
 * DeleteRange's end key; empty for a Delete) as views into the command's bytes. One instance
 * is reused command after command (apply is not re-entrant); `count` says how many are this
 * command's.
 */
export class WriteOps {
  header: raft_cmdpb.RaftRequestHeader | null = null;
  count = 0;
  readonly kinds: number[] = [];
  readonly cfs: ColumnFamily[] = [];
  readonly keys: Uint8Array[] = [];
  readonly values: Uint8Array[] = [];

  push(kind: number, cf: ColumnFamily, key: Uint8Array, value: Uint8Array): void {
    const i = this.count++;
    this.kinds[i] = kind;
    this.cfs[i] = cf;
    this.keys[i] = key;
    this.values[i] = value;
  }
}

const NO_BYTES: Uint8Array = new Uint8Array(0);

/**
 * Reads `data` into `ops` when it is a plain write command this module reads exactly — a header
 * and requests each of Put, Delete or DeleteRange (not notify-only) whose `cmd_type` names its
 * one sub-message — and returns true; returns false for anything else (an admin command, other
 * request types, shapes `decodeWriteCommand` gives up on), which the caller decodes the general
 * way. What it reads is what `decodeCommandFast` followed by `raftRequestToModification` would
 * make of the same bytes: absent keys and values are empty, an absent column family "default".
 */
export function readWriteOps(data: Uint8Array, ops: WriteOps): boolean {
  ops.header = null;
  ops.count = 0;
  const reader = new Reader(data);
  try {
    const end = data.length;
    while (reader.pos < end) {
      const fieldTag = data[reader.pos++];
      if (fieldTag === CMD_REQUESTS) readWriteOp(reader, reader.fieldEnd(end), ops);
      else if (fieldTag === CMD_HEADER && ops.header === null) {
        ops.header = readHeader(reader, reader.fieldEnd(end));
      } else {
        throw GIVE_UP;
      }
    }
    return true;
  } catch (error) {
    if (error === GIVE_UP) return false;
    throw error;
  }
}

function readWriteOp(reader: Reader, end: number, ops: WriteOps): void {
  let cmdType = 0;
  let kind = 0;
  let cf: ColumnFamily = "default";
  let key: Uint8Array = NO_BYTES;
  let value: Uint8Array = NO_BYTES;
  while (reader.pos < end) {
    const fieldTag = reader.buf[reader.pos++];
    if (fieldTag === REQUEST_CMD_TYPE) {
      cmdType = reader.varint28(end);
      continue;
    }
    if (kind !== 0) throw GIVE_UP; // A second sub-message: the general path's.
    if (fieldTag === REQUEST_PUT) kind = WRITE_OP_PUT;
    else if (fieldTag === REQUEST_DELETE) kind = WRITE_OP_DELETE;
    else if (fieldTag === REQUEST_DELETE_RANGE) kind = WRITE_OP_DELETE_RANGE;
    else throw GIVE_UP;
    const subEnd = reader.fieldEnd(end);
    while (reader.pos < subEnd) {
      const subTag = reader.buf[reader.pos++];
      if (subTag === CF) cf = reader.cf(subEnd) ?? "default";
      else if (subTag === KEY) key = reader.bytes(subEnd) ?? NO_BYTES;
      else if (subTag === VALUE && kind !== WRITE_OP_DELETE) {
        value = reader.bytes(subEnd) ?? NO_BYTES;
      } else if (subTag === NOTIFY_ONLY && kind === WRITE_OP_DELETE_RANGE) {
        if (reader.bool(subEnd)) throw GIVE_UP; // Notify-only: refused by the general path.
      } else {
        throw GIVE_UP;
      }
    }
  }
  const named = kind === WRITE_OP_PUT
    ? raft_cmdpb.CmdType.Put
    : kind === WRITE_OP_DELETE
    ? raft_cmdpb.CmdType.Delete
    : kind === WRITE_OP_DELETE_RANGE
    ? raft_cmdpb.CmdType.DeleteRange
    : -1;
  if (cmdType !== named) throw GIVE_UP;
  ops.push(kind, cf, key, value);
}

function readDeleteRange(reader: Reader, end: number): raft_cmdpb.DeleteRangeRequest {
  const range = new raft_cmdpb.DeleteRangeRequest();
  let cf: ColumnFamily | undefined;
  let startKey: Uint8Array | undefined;
  let endKey: Uint8Array | undefined;
  let notifyOnly = false;
  while (reader.pos < end) {
    const fieldTag = reader.buf[reader.pos++];
    if (fieldTag === CF) cf = reader.cf(end);
    else if (fieldTag === KEY) startKey = reader.bytes(end);
    else if (fieldTag === VALUE) endKey = reader.bytes(end);
    else if (fieldTag === NOTIFY_ONLY) notifyOnly = reader.bool(end);
    else throw GIVE_UP;
  }
  if (cf !== undefined) range.cf = cf;
  if (startKey !== undefined) range.startKey = startKey;
  if (endKey !== undefined) range.endKey = endKey;
  if (notifyOnly) range.notifyOnly = true;
  return range;
}
