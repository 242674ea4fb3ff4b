/**
 * The bytes of a replicated PD (`pd_member.ts`): what its Raft log entries carry, what a
 * snapshot of PD's state holds, and how the log, hard state and snapshot are kept in the
 * engine.
 *
 * - A command (the data of a normal entry) is one atomic batch of `PdWrite`s, as JSON:
 *   `{"w":[[key,value],[key,null],…]}` (`null` deletes). PD's keys and values are text
 *   (`storage.ts`), so JSON carries them unchanged and a log is readable by eye.
 * - A snapshot's data is every pair of PD's state at the snapshot's index, as JSON
 *   `{"pairs":[[key,value],…]}` in key order.
 * - Entries, hard states and snapshots are stored in eraftpb's protobuf encoding (the bytes
 *   TiKV and raft-rs write), built with src/raft's small wire writer: src/pd imports no
 *   generated protobuf code (`purity_test.ts`).
 *
 * Decoding checks shape and fails an assertion on bytes this module did not write: they come
 * from the member's own engine or from the Raft log, never from a client.
 *
 * @module
 */
import type { ConfState, Entry, EntryType, HardState, Snapshot } from "../raft/mod.ts";
import { newConfState } from "../raft/mod.ts";
import { ProtoReader, ProtoWriter } from "../raft/wire.ts";
import { assert } from "../util/assert.ts";
import type { PdWrite } from "./storage.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

// --- PD commands and snapshot data -----------------------------------------------------------

/** The entry data of one atomic batch of PD writes. */
export function encodeCommand(batch: readonly PdWrite[]): Uint8Array {
  assert(batch.length > 0, "a PD command writes something");
  const pairs = batch.map((op) => [op.key, op.kind === "put" ? op.value : null]);
  return encoder.encode(JSON.stringify({ w: pairs }));
}

/** The batch an entry's data carries. */
export function decodeCommand(data: Uint8Array): PdWrite[] {
  const parsed = JSON.parse(decoder.decode(data)) as { w?: unknown };
  assert(Array.isArray(parsed.w), "a PD command holds a list of writes");
  return parsed.w.map((pair: unknown): PdWrite => {
    assert(Array.isArray(pair) && typeof pair[0] === "string", "a PD write names its key");
    const [key, value] = pair as [string, unknown];
    if (value === null) return { kind: "delete", key };
    assert(typeof value === "string", "a PD write puts a string", { key });
    return { kind: "put", key, value };
  });
}

/** Snapshot data: every pair of PD's state. */
export function encodeStateSnapshot(pairs: ReadonlyArray<readonly [string, string]>): Uint8Array {
  return encoder.encode(JSON.stringify({ pairs }));
}

/** The pairs a snapshot's data holds. */
export function decodeStateSnapshot(data: Uint8Array): Array<[string, string]> {
  const parsed = JSON.parse(decoder.decode(data)) as { pairs?: unknown };
  assert(Array.isArray(parsed.pairs), "a PD snapshot holds a list of pairs");
  for (const pair of parsed.pairs) {
    assert(
      Array.isArray(pair) && typeof pair[0] === "string" && typeof pair[1] === "string",
      "a PD snapshot pair is two strings",
    );
  }
  return parsed.pairs as Array<[string, string]>;
}

// --- eraftpb records -------------------------------------------------------------------------

/** eraftpb.Entry: entry_type 1, term 2, index 3, data 4, context 6 (the tree's one encoder). */
export { encodeRaftEntry as encodeEntry } from "../codec/raft_entry.ts";

export function decodeEntry(bytes: Uint8Array): Entry {
  const entry: Entry = {
    entryType: 0 as EntryType,
    term: 0n,
    index: 0n,
    data: new Uint8Array(0),
    context: new Uint8Array(0),
  };
  readFields(bytes, (field, reader) => {
    if (field === 1) entry.entryType = Number(reader.varint()) as EntryType;
    else if (field === 2) entry.term = reader.varint();
    else if (field === 3) entry.index = reader.varint();
    else if (field === 4) entry.data = reader.bytes().slice();
    else if (field === 6) entry.context = reader.bytes().slice();
    else return false;
    return true;
  });
  assert(entry.index > 0n && entry.term > 0n, "a stored entry has an index and a term", {
    index: entry.index,
    term: entry.term,
  });
  return entry;
}

/** eraftpb.HardState: term 1, vote 2, commit 3. */
export function encodeHardState(state: HardState): Uint8Array {
  return new ProtoWriter().uint64(1, state.term).uint64(2, state.vote).uint64(3, state.commit)
    .finish();
}

export function decodeHardState(bytes: Uint8Array): HardState {
  const state: HardState = { term: 0n, vote: 0n, commit: 0n };
  readFields(bytes, (field, reader) => {
    if (field === 1) state.term = reader.varint();
    else if (field === 2) state.vote = reader.varint();
    else if (field === 3) state.commit = reader.varint();
    else return false;
    return true;
  });
  return state;
}

/** eraftpb.ConfState: voters 1, learners 2 (one varint field per id, unpacked). */
function encodeConfState(state: ConfState): Uint8Array {
  const writer = new ProtoWriter();
  for (const id of state.voters) writer.uint64(1, id);
  for (const id of state.learners) writer.uint64(2, id);
  return writer.finish();
}

function decodeConfState(bytes: Uint8Array): ConfState {
  const voters: bigint[] = [];
  const learners: bigint[] = [];
  readFields(bytes, (field, reader) => {
    if (field === 1) voters.push(reader.varint());
    else if (field === 2) learners.push(reader.varint());
    else return false;
    return true;
  });
  return newConfState({ voters, learners });
}

/** eraftpb.Snapshot: data 1, metadata 2 { conf_state 1, index 2, term 3 }. */
export function encodeSnapshot(snapshot: Snapshot): Uint8Array {
  const { metadata } = snapshot;
  const meta = new ProtoWriter()
    .bytes(1, encodeConfState(metadata.confState))
    .uint64(2, metadata.index)
    .uint64(3, metadata.term)
    .finish();
  return new ProtoWriter().bytes(1, snapshot.data).bytes(2, meta).finish();
}

export function decodeSnapshot(bytes: Uint8Array): Snapshot {
  const snapshot: Snapshot = {
    data: new Uint8Array(0),
    metadata: { confState: newConfState(), index: 0n, term: 0n },
  };
  readFields(bytes, (field, reader) => {
    if (field === 1) snapshot.data = reader.bytes().slice();
    else if (field === 2) {
      readFields(reader.bytes(), (inner, metaReader) => {
        if (inner === 1) snapshot.metadata.confState = decodeConfState(metaReader.bytes());
        else if (inner === 2) snapshot.metadata.index = metaReader.varint();
        else if (inner === 3) snapshot.metadata.term = metaReader.varint();
        else return false;
        return true;
      });
    } else return false;
    return true;
  });
  return snapshot;
}

/** Reads every field; `read` returns false for a field it does not know (then skipped). */
function readFields(
  bytes: Uint8Array,
  read: (field: number, reader: ProtoReader) => boolean,
): void {
  const reader = new ProtoReader(bytes);
  while (!reader.done()) {
    const { field, wireType } = reader.tag();
    if (!read(field, reader)) reader.skip(wireType);
  }
}
