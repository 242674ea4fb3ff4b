/**
 * The bytes of a Raft log entry as eraftpb.Entry (entry_type 1, term 2, index 3, data 4,
 * context 6; proto3: zero fields omitted) — what TiKV and raft-rs write. One encoder for both
 * logs of the tree: the raftstore's (src/raftstore/local_state.ts, which checks the entry
 * first) and a replicated PD's (src/pd/raft_records.ts).
 *
 * Written by hand into one exactly sized array: every proposal is encoded once, and a generic
 * protobuf writer cost several times as much (measured: the log's share of a put's CPU).
 * `src/raftstore/entry_codec_test.ts` checks the bytes against protobufjs's, `raft_entry_test`
 * against src/raft's wire writer.
 *
 * @module
 */
import type { Entry } from "../raft/mod.ts";
import { assert } from "../util/assert.ts";
import { varU64Length, varUintLength, writeVarU64, writeVarUint } from "./varint.ts";

/** The eraftpb.Entry bytes of `e` (module header). */
export function encodeRaftEntry(e: Entry): Uint8Array {
  const type = e.entryType as number;
  const data = e.data;
  const context = e.context;
  const size = (type === 0 ? 0 : 1 + varUintLength(type)) +
    (e.term === 0n ? 0 : 1 + varU64Length(e.term)) +
    (e.index === 0n ? 0 : 1 + varU64Length(e.index)) +
    (data.length === 0 ? 0 : 1 + varUintLength(data.length) + data.length) +
    (context.length === 0 ? 0 : 1 + varUintLength(context.length) + context.length);
  const out = new Uint8Array(size);
  let at = 0;
  if (type !== 0) {
    out[at++] = 1 << 3;
    at = writeVarUint(out, at, type);
  }
  if (e.term !== 0n) {
    out[at++] = 2 << 3;
    at = writeVarU64(out, at, e.term);
  }
  if (e.index !== 0n) {
    out[at++] = 3 << 3;
    at = writeVarU64(out, at, e.index);
  }
  if (data.length !== 0) {
    out[at++] = 4 << 3 | 2;
    at = writeVarUint(out, at, data.length);
    out.set(data, at);
    at += data.length;
  }
  if (context.length !== 0) {
    out[at++] = 6 << 3 | 2;
    at = writeVarUint(out, at, context.length);
    out.set(context, at);
    at += context.length;
  }
  if (at !== size) assert(false, `encodeRaftEntry: wrote ${at} of ${size} bytes`);
  return out;
}
