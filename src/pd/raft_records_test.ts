/**
 * The replicated PD's records read back as written: commands, snapshot data, and the eraftpb
 * entry, hard state and snapshot a member keeps in its engine (`raft_records.ts`).
 */
import assert from "node:assert/strict";
import { EntryType, newConfState, newEntry } from "../raft/mod.ts";
import {
  decodeCommand,
  decodeEntry,
  decodeHardState,
  decodeSnapshot,
  decodeStateSnapshot,
  encodeCommand,
  encodeEntry,
  encodeHardState,
  encodeSnapshot,
  encodeStateSnapshot,
} from "./raft_records.ts";
import type { PdWrite } from "./storage.ts";

Deno.test("a PD command (puts and deletes, in order) reads back as written", () => {
  const batch: PdWrite[] = [
    { kind: "put", key: "store/00000000000000000001", value: '{"id":"1"}' },
    { kind: "delete", key: "region/00000000000000000002" },
    { kind: "put", key: "tso", value: "1700000003000" },
  ];
  assert.deepEqual(decodeCommand(encodeCommand(batch)), batch);
  assert.throws(() => encodeCommand([]), /writes something/);
});

Deno.test("snapshot data, entries, hard states and snapshots read back as written", () => {
  const pairs: Array<[string, string]> = [["alloc_id", "1000"], ["cluster_id", "42"]];
  assert.deepEqual(decodeStateSnapshot(encodeStateSnapshot(pairs)), pairs);
  const entry = newEntry({
    term: 3n,
    index: 1n << 40n,
    entryType: EntryType.EntryNormal,
    data: new Uint8Array([1, 2, 3]),
  });
  assert.deepEqual(decodeEntry(encodeEntry(entry)), entry);
  const hardState = { term: 7n, vote: (1n << 64n) - 1n, commit: 0n };
  assert.deepEqual(decodeHardState(encodeHardState(hardState)), hardState);
  const snapshot = {
    data: encodeStateSnapshot(pairs),
    metadata: { confState: newConfState({ voters: [5n, 6n, 7n] }), index: 99n, term: 4n },
  };
  assert.deepEqual(decodeSnapshot(encodeSnapshot(snapshot)), snapshot);
});
