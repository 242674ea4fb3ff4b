/**
 * Asynchronous persistence (`RaftConfig.asyncPersist`, raw_node.ts): the application advances
 * before a Ready's entries are durable and reports them with `onPersisted`; committed entries
 * are handed out for apply only up to what is durable here.
 */
import assert from "node:assert/strict";
import type { MemoryStorage } from "./memory_storage.ts";
import { StateRole } from "./raft.ts";
import type { RawNode } from "./raw_node.ts";
import { electBy, testNode } from "./testing.ts";
import { type Entry, MessageType, newEntry, newMessage } from "./types.ts";

const DATA = new TextEncoder().encode("x");

/** Writes a Ready's entries and hard state, advances, and returns the Ready's last entry. */
function writeAndAdvance(
  node: RawNode,
  storage: MemoryStorage,
): { entries: Entry[]; applied: Entry[] } {
  const rd = node.ready();
  storage.append(rd.entries);
  if (rd.hardState !== undefined) storage.setHardState(rd.hardState);
  node.advance(rd);
  return { entries: rd.entries, applied: rd.committedEntries };
}

/** The leader of a group of one. */
function lone(asyncPersist: boolean): { node: RawNode; storage: MemoryStorage } {
  const { node, storage } = testNode(1n, [1n], { asyncPersist });
  node.campaign();
  assert.equal(node.raft.state, StateRole.Leader);
  return { node, storage };
}

Deno.test("async persistence: a lone voter's entry is committed and applied only once reported durable", () => {
  const { node, storage } = lone(true);
  const first = writeAndAdvance(node, storage); // the leader's empty entry
  assert.deepEqual(first.applied, [], "nothing applies before it is durable");
  const last = first.entries.at(-1)!;
  node.onPersisted({ index: last.index, term: last.term });
  assert.deepEqual(writeAndAdvance(node, storage).applied.map((e) => e.index), [last.index]);
  node.propose(DATA);
  const written = writeAndAdvance(node, storage);
  const entry = written.entries.at(-1)!;
  assert.equal(node.raft.log.committed, entry.index - 1n, "its only copy is not durable yet");
  assert.deepEqual(written.applied, []);
  assert.equal(node.hasReady(), false, "nothing to do until the write is durable");
  node.onPersisted({ index: entry.index, term: entry.term });
  assert.equal(node.raft.log.committed, entry.index);
  assert.equal(node.hasReady(), true);
  assert.deepEqual(writeAndAdvance(node, storage).applied.map((e) => e.index), [entry.index]);
});

/** Node 1 of voters 1, 2, 3, elected by node 2's votes. */
function leaderOfThree(asyncPersist: boolean): { node: RawNode; storage: MemoryStorage } {
  const { node, storage } = testNode(1n, [1n, 2n, 3n], { asyncPersist });
  electBy(node, storage, 2n);
  return { node, storage };
}

for (const asyncPersist of [true, false]) {
  Deno.test(`async persistence ${asyncPersist ? "on" : "off"}: a leader counts its own copy of an entry toward the quorum ${asyncPersist ? "only once reported durable" : "once written"}`, () => {
    const { node, storage } = leaderOfThree(asyncPersist);
    const entry = writeAndAdvance(node, storage).entries.at(-1)!; // the leader's empty entry
    node.step(newMessage({
      msgType: MessageType.MsgAppendResponse,
      from: 2n,
      to: 1n,
      term: node.raft.term,
      index: entry.index,
    }));
    if (!asyncPersist) {
      assert.equal(node.raft.log.committed, entry.index, "written is durable: two copies of three");
      return;
    }
    // One durable copy of three: a power loss here could leave it on node 2 only, and nodes 1
    // and 3 could elect a leader without it — so it must not commit (node 2 might apply it).
    assert.ok(node.raft.log.committed < entry.index, `committed ${node.raft.log.committed}`);
    node.onPersisted({ index: entry.index, term: entry.term });
    assert.equal(node.raft.log.committed, entry.index);
    const rd = node.ready();
    assert.ok(
      rd.messages.some((m) => m.msgType === MessageType.MsgAppend && m.commit === entry.index),
      "the followers are told the new commit index",
    );
  });
}

Deno.test("async persistence off: the same entry is handed out for apply with its own Ready, as before", () => {
  const { node, storage } = lone(false);
  writeAndAdvance(node, storage);
  node.propose(DATA);
  const written = writeAndAdvance(node, storage);
  assert.deepEqual(written.applied.map((e) => e.index), [written.entries.at(-1)!.index]);
  assert.throws(() => node.onPersisted({ index: 1n, term: 1n }), /without asyncPersist/);
});

Deno.test("async persistence: a report for entries replaced since is ignored, and an append that replaces entries lowers what is durable", () => {
  const { node, storage } = testNode(2n, [1n, 2n, 3n], { asyncPersist: true });
  const log = node.raft.log;
  const append = (term: bigint, index: bigint, logTerm: bigint, count: number, commit: bigint) =>
    node.step(newMessage({
      msgType: MessageType.MsgAppend,
      from: 1n,
      to: 2n,
      term,
      index,
      logTerm,
      commit,
      entries: Array.from(
        { length: count },
        (_, i) => newEntry({ term, index: index + 1n + BigInt(i), data: DATA }),
      ),
    }));
  append(1n, 0n, 0n, 3, 0n); // entries 1..3 of term 1
  writeAndAdvance(node, storage);
  assert.equal(log.persisted, 0n, "written, not yet reported durable");
  // A new leader of term 2 replaces entries 2..3, before the report for 1..3 of term 1 comes.
  append(2n, 1n, 1n, 2, 0n);
  assert.equal(log.lastIndex(), 3n);
  node.onPersisted({ index: 3n, term: 1n });
  assert.equal(log.persisted, 0n, "entry 3 is of term 2 now: the report says nothing of it");
  writeAndAdvance(node, storage);
  node.onPersisted({ index: 3n, term: 2n });
  assert.equal(log.persisted, 3n);
  // Committed 3 by the leader, with entry 4 appended: apply reaches 3.
  append(2n, 3n, 2n, 1, 3n);
  const rd = writeAndAdvance(node, storage);
  assert.deepEqual(rd.applied.map((e) => e.index), [1n, 2n, 3n]);
  node.onPersisted({ index: 4n, term: 2n });
  assert.equal(log.persisted, 4n);
  // A leader of term 3 replaces entry 4: what is known durable falls back below it.
  append(3n, 3n, 2n, 1, 3n);
  assert.equal(log.term(4n), 3n);
  assert.equal(log.persisted, 3n);
});
