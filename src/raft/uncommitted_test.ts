/**
 * The leader's uncommitted budget (`RaftConfig.maxUncommittedSizeBytes`), checked against
 * etcd/raft's behaviour (raft.go `increaseUncommittedSize` / `reduceUncommittedSize`, and its
 * `TestUncommittedEntryLimit`): proposals beyond the budget are dropped with ErrProposalDropped;
 * entries handed out for apply give their bytes back; one proposal larger than the whole
 * budget is accepted when nothing is outstanding; an entry without data always is; the count
 * starts from zero on every role change.
 */
import assert, { deepEqual as assertEquals } from "node:assert/strict";
import type { MemoryStorage } from "./memory_storage.ts";
import { StateRole } from "./raft.ts";
import type { RawNode } from "./raw_node.ts";
import { testNode } from "./testing.ts";
import { type Entry, type Message, MessageType, newEntry, newMessage } from "./types.ts";

const TEST_DATA = new TextEncoder().encode("testdata");
const MAX_ENTRIES = 1024;
const BUDGET_BYTES = MAX_ENTRIES * TEST_DATA.length;

function entriesOf(count: number): Entry[] {
  return Array.from({ length: count }, () => newEntry({ term: 0n, index: 0n, data: TEST_DATA }));
}

/** Duties 1, 2 and 4 of every pending Ready (applying is a no-op here); returns the messages. */
function drain(node: RawNode, storage: MemoryStorage): Message[] {
  const messages: Message[] = [];
  for (let round = 0; round < 100 && node.hasReady(); round++) {
    const rd = node.ready();
    storage.append(rd.entries);
    if (rd.hardState !== undefined) storage.setHardState(rd.hardState);
    messages.push(...rd.messages);
    node.advance(rd);
  }
  assert.ok(!node.hasReady(), "drain: a Ready was still pending after 100 rounds");
  return messages;
}

/** Node 1 of {1, 2, 3}, leader of `term` by 2's vote; 2 and 3 never answer unless told. */
function leader(): { node: RawNode; storage: MemoryStorage } {
  const { node, storage } = testNode(1n, [1n, 2n, 3n], {
    maxUncommittedSizeBytes: BUDGET_BYTES,
    // Flow control of appends must not be what stops proposals here.
    maxInflightMsgs: 2 * MAX_ENTRIES,
  });
  elect(node, storage);
  return { node, storage };
}

function elect(node: RawNode, storage: MemoryStorage): void {
  node.campaign();
  drain(node, storage);
  const term = node.raft.term;
  node.step(newMessage({ msgType: MessageType.MsgRequestVoteResponse, from: 2n, to: 1n, term }));
  assertEquals(node.raft.state, StateRole.Leader);
  drain(node, storage);
}

/**
 * Follower 2 acknowledges every append the leader sends it until the whole log is committed
 * and handed out for apply.
 */
function commitAll(node: RawNode, storage: MemoryStorage): void {
  let messages = drain(node, storage);
  // Probe then replicate: the leader may need a heartbeat round to send again.
  node.step(newMessage({
    msgType: MessageType.MsgHeartbeatResponse,
    from: 2n,
    to: 1n,
    term: node.raft.term,
  }));
  messages.push(...drain(node, storage));
  for (let round = 0; round < 100 && node.raft.log.applied < storage.lastIndex(); round++) {
    const appends = messages.filter((m) => m.msgType === MessageType.MsgAppend && m.to === 2n);
    messages = [];
    for (const m of appends) {
      node.step(newMessage({
        msgType: MessageType.MsgAppendResponse,
        from: 2n,
        to: 1n,
        term: node.raft.term,
        index: m.index + BigInt(m.entries.length),
      }));
      messages.push(...drain(node, storage));
    }
  }
  assertEquals(node.raft.log.applied, storage.lastIndex());
}

Deno.test("etcd/raft TestUncommittedEntryLimit: proposals past the uncommitted budget are dropped until entries apply", () => {
  const { node, storage } = leader();
  // The new leader's empty entry carries no data: it does not count.
  assertEquals(node.raft.uncommittedSize(), 0);
  for (let i = 0; i < MAX_ENTRIES; i++) {
    assertEquals(node.propose(TEST_DATA), undefined, `proposal ${i} fits the budget`);
  }
  assertEquals(node.raft.uncommittedSize(), BUDGET_BYTES);
  const lastBefore = node.raft.log.lastIndex();
  assertEquals(node.propose(TEST_DATA), "ProposalDropped");
  assertEquals(node.raft.log.lastIndex(), lastBefore, "a dropped proposal is not appended");
  drain(node, storage); // Persisted but not committed: still outstanding.
  assertEquals(node.propose(TEST_DATA), "ProposalDropped");
  commitAll(node, storage);
  assertEquals(node.raft.uncommittedSize(), 0, "applied entries return their bytes");

  // The same budget taken by one batch of entries in one proposal.
  assertEquals(node.proposeEntries(entriesOf(MAX_ENTRIES)), undefined);
  assertEquals(node.proposeEntries(entriesOf(1)), "ProposalDropped");
  commitAll(node, storage);
  assertEquals(node.raft.uncommittedSize(), 0);
});

Deno.test("etcd/raft: one proposal larger than the whole budget is accepted when nothing is outstanding", () => {
  const { node, storage } = leader();
  assertEquals(node.proposeEntries(entriesOf(2 * MAX_ENTRIES)), undefined);
  assertEquals(node.raft.uncommittedSize(), 2 * BUDGET_BYTES);
  assertEquals(node.propose(TEST_DATA), "ProposalDropped");
  // An entry without data is never refused (etcd: "Empty payloads are never refused").
  assertEquals(node.propose(new Uint8Array(0)), undefined);
  assertEquals(node.raft.uncommittedSize(), 2 * BUDGET_BYTES);
  commitAll(node, storage);
  assertEquals(node.raft.uncommittedSize(), 0);
});

Deno.test("etcd/raft: the uncommitted count starts from zero when a node becomes leader again", () => {
  const { node, storage } = leader();
  assertEquals(node.proposeEntries(entriesOf(MAX_ENTRIES)), undefined);
  assertEquals(node.propose(TEST_DATA), "ProposalDropped");
  drain(node, storage);
  // A higher term from node 3 deposes the leader; its outstanding entries stop counting.
  const term = node.raft.term + 1n;
  node.step(newMessage({ msgType: MessageType.MsgHeartbeat, from: 3n, to: 1n, term }));
  assertEquals(node.raft.state, StateRole.Follower);
  assertEquals(node.raft.uncommittedSize(), 0);
  drain(node, storage);
  elect(node, storage);
  assertEquals(node.raft.uncommittedSize(), 0);
  assertEquals(node.propose(TEST_DATA), undefined, "a new leader has its whole budget");
});

Deno.test("a follower does not count: the proposals it forwards are counted by the leader", () => {
  const { node } = testNode(2n, [1n, 2n, 3n], { maxUncommittedSizeBytes: 8 });
  node.step(newMessage({ msgType: MessageType.MsgHeartbeat, from: 1n, to: 2n, term: 1n }));
  for (let i = 0; i < 4; i++) assertEquals(node.propose(TEST_DATA), undefined);
  assertEquals(node.raft.uncommittedSize(), 0);
});
