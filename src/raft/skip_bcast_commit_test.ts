/**
 * `RaftConfig.skipBcastCommit`: an answer that moves a leader's commit index sends no append of
 * its own to every follower; they learn the new index from the next append or heartbeat. Still
 * sent at once while a membership change is in the log and not applied.
 */
import assert from "node:assert/strict";
import type { MemoryStorage } from "./memory_storage.ts";
import type { RawNode } from "./raw_node.ts";
import { electBy, testNode } from "./testing.ts";
import { ConfChangeType, type Message, MessageType, newMessage } from "./types.ts";

const DATA = new TextEncoder().encode("x");

/**
 * Node 1 of voters 1, 2, 3, elected by node 2's vote, its empty entry committed and applied
 * with both followers' answers (both replicating now).
 */
function leaderOfThree(skipBcastCommit: boolean): { node: RawNode; storage: MemoryStorage } {
  const { node, storage } = testNode(1n, [1n, 2n, 3n], { skipBcastCommit });
  electBy(node, storage, 2n);
  round(node, storage);
  const empty = node.raft.log.lastIndex();
  ack(node, 2n, empty);
  ack(node, 3n, empty);
  round(node, storage);
  assert.equal(node.raft.log.applied, empty);
  return { node, storage };
}

/** Writes the leader's Ready, applies what it hands out, and returns its messages. */
function round(node: RawNode, storage: MemoryStorage): Message[] {
  const rd = node.ready();
  storage.append(rd.entries);
  if (rd.hardState !== undefined) storage.setHardState(rd.hardState);
  node.advance(rd);
  return rd.messages;
}

/** Node `from` says it holds the leader's log through `index`. */
function ack(node: RawNode, from: bigint, index: bigint): void {
  node.step(newMessage({
    msgType: MessageType.MsgAppendResponse,
    from,
    to: 1n,
    term: node.raft.term,
    index,
  }));
}

/** Appends carrying `commit` and no entries: messages only to say the commit index moved. */
function commitOnly(messages: Message[], commit: bigint): Message[] {
  return messages.filter((m) =>
    m.msgType === MessageType.MsgAppend && m.entries.length === 0 && m.commit === commit
  );
}

for (const skip of [false, true]) {
  Deno.test(`skipBcastCommit ${skip ? "on: the followers learn a new commit index from the next heartbeat" : "off: a new commit index goes to every follower at once"}`, () => {
    const { node, storage } = leaderOfThree(skip);
    node.propose(DATA);
    const last = node.raft.log.lastIndex();
    round(node, storage);
    ack(node, 2n, last);
    assert.equal(node.raft.log.committed, last, "two copies of three");
    const told = commitOnly(round(node, storage), last).map((m) => m.to).sort();
    if (!skip) {
      assert.deepEqual(told, [2n, 3n]);
      return;
    }
    assert.deepEqual(told, [], "no append only to say it");
    node.tick();
    const heartbeats = round(node, storage).filter((m) => m.msgType === MessageType.MsgHeartbeat);
    const to2 = heartbeats.find((m) => m.to === 2n);
    assert.equal(to2?.commit, last, "the next heartbeat carries it");
  });
}

Deno.test("skipBcastCommit on: while a membership change is unapplied, a new commit index goes to every follower at once", () => {
  const { node, storage } = leaderOfThree(true);
  assert.equal(
    node.proposeConfChange({
      id: 0n,
      changeType: ConfChangeType.AddLearnerNode,
      nodeId: 4n,
      context: new Uint8Array(0),
    }),
    undefined,
  );
  const last = node.raft.log.lastIndex();
  round(node, storage);
  ack(node, 2n, last);
  assert.equal(node.raft.log.committed, last);
  // Node 4 too: the learner is in the configuration from the entry's append on.
  assert.deepEqual(commitOnly(round(node, storage), last).map((m) => m.to).sort(), [2n, 3n, 4n]);
});
