import assert, { deepEqual as assertEquals } from "node:assert/strict";
import { MemoryStorage } from "./memory_storage.ts";
import { type RaftTestingBugs, StateRole } from "./raft.ts";
import { RawNode } from "./raw_node.ts";
import {
  ConfChangeType,
  encodeConfChange,
  EntryType,
  type Message,
  MessageType,
  newEntry,
  newMessage,
} from "./types.ts";

const ET = 10;

function node(
  id: bigint,
  storage: MemoryStorage,
  opts: { checkQuorum?: boolean; bugs?: RaftTestingBugs } = {},
): RawNode {
  return new RawNode({
    id,
    storage,
    electionTimeoutTicks: ET,
    heartbeatIntervalTicks: 1,
    random: { nextInt: () => 0 },
    checkQuorum: opts.checkQuorum ?? false,
    testingBugs: opts.bugs,
  });
}

/** Carries out duty 1 (persist) and returns the messages of every pending Ready. */
function drain(n: RawNode, storage: MemoryStorage): Message[] {
  const out: Message[] = [];
  while (n.hasReady()) {
    const rd = n.ready();
    if (rd.snapshot !== undefined) storage.applySnapshot(rd.snapshot);
    storage.append(rd.entries);
    if (rd.hardState !== undefined) storage.setHardState(rd.hardState);
    out.push(...rd.messages);
    n.advance(rd);
  }
  return out;
}

function voteRequest(from: bigint, to: bigint, term: bigint): Message {
  return newMessage({
    msgType: MessageType.MsgRequestVote,
    from,
    to,
    term,
    index: 10n,
    logTerm: 10n,
  });
}

/** Node 1 with log [1@1, 2@2] at term 3; it campaigns for term 4 and wins with 2's vote. */
function figure8Leader(bugs: RaftTestingBugs = {}): { leader: RawNode; storage: MemoryStorage } {
  const storage = MemoryStorage.withVoters([1n, 2n, 3n]);
  storage.append([newEntry({ term: 1n, index: 1n }), newEntry({ term: 2n, index: 2n })]);
  storage.setHardState({ term: 3n, vote: 0n, commit: 1n });
  const leader = node(1n, storage, { bugs });
  leader.campaign();
  drain(leader, storage);
  leader.step(
    newMessage({ msgType: MessageType.MsgRequestVoteResponse, from: 2n, to: 1n, term: 4n }),
  );
  drain(leader, storage);
  assertEquals(leader.raft.state, StateRole.Leader);
  assertEquals(leader.raft.term, 4n);
  return { leader, storage };
}

function ackUpTo(leader: RawNode, from: bigint, index: bigint): void {
  leader.step(
    newMessage({
      msgType: MessageType.MsgAppendResponse,
      from,
      to: 1n,
      term: leader.raft.term,
      index,
    }),
  );
}

Deno.test("Raft §5.4.2 (Figure 8): a leader does not commit a previous-term entry by counting replicas", () => {
  const { leader } = figure8Leader();
  // Followers 2 and 3 hold entry 2 (term 2) but not yet the new leader's entry 3 (term 4).
  ackUpTo(leader, 2n, 2n);
  ackUpTo(leader, 3n, 2n);
  assertEquals(leader.raft.log.committed, 1n);
  // Once a quorum holds an entry of the current term, everything before it commits too.
  ackUpTo(leader, 2n, 3n);
  assertEquals(leader.raft.log.committed, 3n);
});

Deno.test("the commitPreviousTermByCount test bug does commit by counting (so the sweep can catch it)", () => {
  const { leader } = figure8Leader({ commitPreviousTermByCount: true });
  ackUpTo(leader, 2n, 2n);
  assertEquals(leader.raft.log.committed, 2n);
});

Deno.test("Raft §5.2: a vote is durable — after a restart the node refuses a second candidate in that term", () => {
  const storage = MemoryStorage.withVoters([1n, 2n, 3n]);
  const n = node(2n, storage);
  n.step(voteRequest(1n, 2n, 5n));
  const granted = drain(n, storage);
  assertEquals(granted.map((m) => [m.msgType, m.reject]), [[
    MessageType.MsgRequestVoteResponse,
    false,
  ]]);
  const restarted = node(2n, storage);
  restarted.step(voteRequest(3n, 2n, 5n));
  const refused = drain(restarted, storage);
  assertEquals(refused.map((m) => [m.msgType, m.reject]), [[
    MessageType.MsgRequestVoteResponse,
    true,
  ]]);
});

Deno.test("Ready contract: a granted vote travels in the same Ready as the hard state recording it", () => {
  const storage = MemoryStorage.withVoters([1n, 2n, 3n]);
  const n = node(2n, storage);
  n.step(voteRequest(1n, 2n, 5n));
  const rd = n.ready();
  assertEquals(rd.hardState, { term: 5n, vote: 1n, commit: 0n });
  assert(rd.mustSync);
  assertEquals(rd.messages.length, 1);
  n.advance(rd);
});

Deno.test("Lease safety (thesis §6.4.1): a restarted follower with check-quorum ignores votes for one election timeout", () => {
  const storage = MemoryStorage.withVoters([1n, 2n, 3n]);
  storage.setHardState({ term: 3n, vote: 1n, commit: 0n });
  const n = node(2n, storage, { checkQuorum: true });
  n.step(voteRequest(3n, 2n, 4n));
  assertEquals(drain(n, storage), []);
  assertEquals(n.raft.term, 3n);
  for (let i = 0; i < ET; i++) n.tick();
  drain(n, storage);
  n.step(voteRequest(3n, 2n, 5n));
  const out = drain(n, storage).filter((m) => m.msgType === MessageType.MsgRequestVoteResponse);
  assertEquals(out.map((m) => m.reject), [false]);
});

Deno.test("Raft thesis §4.1: a configuration takes effect when appended and reverts when its entry is overwritten", () => {
  const storage = MemoryStorage.withVoters([1n, 2n, 3n]);
  storage.append([newEntry({ term: 1n, index: 1n })]);
  const n = node(2n, storage);
  const add4 = newEntry({
    term: 1n,
    index: 2n,
    entryType: EntryType.EntryConfChange,
    data: encodeConfChange({
      id: 0n,
      changeType: ConfChangeType.AddNode,
      nodeId: 4n,
      context: new Uint8Array(0),
    }),
  });
  n.step(
    newMessage({
      msgType: MessageType.MsgAppend,
      from: 1n,
      to: 2n,
      term: 1n,
      index: 1n,
      logTerm: 1n,
      entries: [add4],
    }),
  );
  assert(n.raft.tracker.isVoter(4n));
  // A new leader of term 2 never had the change: its entry 2 replaces it.
  n.step(newMessage({
    msgType: MessageType.MsgAppend,
    from: 3n,
    to: 2n,
    term: 2n,
    index: 1n,
    logTerm: 1n,
    entries: [newEntry({ term: 2n, index: 2n })],
  }));
  assert(!n.raft.tracker.isVoter(4n));
  assertEquals(n.raft.currentConfig().voters, [1n, 2n, 3n]);
});

Deno.test("Raft thesis §4.1 (2015 fix): a new leader refuses a membership change before committing an entry of its term", () => {
  const { leader } = figure8Leader();
  const cc = {
    id: 0n,
    changeType: ConfChangeType.AddLearnerNode,
    nodeId: 4n,
    context: new Uint8Array(0),
  };
  assertEquals(leader.proposeConfChange(cc), "ProposalDropped");
  ackUpTo(leader, 2n, 3n);
  assertEquals(leader.raft.log.committed, 3n);
  assertEquals(leader.proposeConfChange(cc), undefined);
});

Deno.test("Raft thesis §6.4: a new leader holds ReadIndex requests until it commits an entry of its term", () => {
  const { leader, storage } = figure8Leader();
  leader.readIndex(new TextEncoder().encode("r"));
  assertEquals(
    drain(leader, storage).filter((m) => m.msgType === MessageType.MsgHeartbeat).length,
    0,
  );
  ackUpTo(leader, 2n, 3n);
  const beats = drain(leader, storage).filter((m) => m.msgType === MessageType.MsgHeartbeat);
  assertEquals(beats.length, 2);
  assertEquals(new TextDecoder().decode(beats[0]!.context), "r");
});

Deno.test("Raft §5.1: a node that sees a higher term becomes a follower of that term", () => {
  const { leader, storage } = figure8Leader();
  leader.step(newMessage({ msgType: MessageType.MsgAppendResponse, from: 2n, to: 1n, term: 9n }));
  drain(leader, storage);
  assertEquals(leader.raft.state, StateRole.Follower);
  assertEquals(leader.raft.term, 9n);
});

Deno.test("Raft thesis §4.1: restart with the applied membership — replaying the log's changes over it gives the same configuration", () => {
  const change = (index: bigint, changeType: ConfChangeType, nodeId: bigint) =>
    newEntry({
      term: 1n,
      index,
      entryType: EntryType.EntryConfChange,
      data: encodeConfChange({ id: 0n, changeType, nodeId, context: new Uint8Array(0) }),
    });
  // Add learner 4, promote it, remove 3, re-add 3 as a learner, then one unapplied change.
  const log = [
    newEntry({ term: 1n, index: 1n }),
    change(2n, ConfChangeType.AddLearnerNode, 4n),
    change(3n, ConfChangeType.AddNode, 4n),
    change(4n, ConfChangeType.RemoveNode, 3n),
    change(5n, ConfChangeType.AddLearnerNode, 3n),
    change(6n, ConfChangeType.RemoveNode, 2n),
  ];
  // The membership after applying each prefix of the log (index 0: the bootstrap one).
  const applied = [
    { voters: [1n, 2n, 3n], learners: [] },
    { voters: [1n, 2n, 3n], learners: [] },
    { voters: [1n, 2n, 3n], learners: [4n] },
    { voters: [1n, 2n, 3n, 4n], learners: [] },
    { voters: [1n, 2n, 4n], learners: [] },
    { voters: [1n, 2n, 4n], learners: [3n] },
  ];
  const configs = applied.map((base) => {
    const storage = MemoryStorage.withVoters(base.voters, base.learners);
    storage.append(log);
    storage.setHardState({ term: 1n, vote: 1n, commit: 5n });
    const restarted = node(1n, storage);
    return restarted.raft.currentConfig();
  });
  for (const config of configs) {
    assertEquals(config.voters, [1n, 4n]);
    assertEquals(config.learners, [3n]);
  }
});
