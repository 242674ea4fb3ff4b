/**
 * Helpers of the core's tests: a node of a group over fresh memory storage, and an election
 * won by one peer's grants, driven by hand (pure, like the rest of the folder: a failure
 * throws, no assertion library).
 */
import { MemoryStorage } from "./memory_storage.ts";
import { type RaftConfig, StateRole } from "./raft.ts";
import { RawNode } from "./raw_node.ts";
import { MessageType, newMessage } from "./types.ts";

/**
 * Node `id` of a group of `voters` over a fresh storage: election timeout 10 ticks, a
 * heartbeat every tick, no randomness; `config` adds to (or overrides) that.
 */
export function testNode(
  id: bigint,
  voters: bigint[],
  config: Partial<Omit<RaftConfig, "id" | "storage">> = {},
): { node: RawNode; storage: MemoryStorage } {
  const storage = MemoryStorage.withVoters(voters);
  const node = new RawNode({
    id,
    storage,
    electionTimeoutTicks: 10,
    heartbeatIntervalTicks: 1,
    random: { nextInt: () => 0 },
    ...config,
  });
  return { node, storage };
}

/**
 * `node` campaigns and wins by `voter`'s grants alone (of a pre-vote, then of the vote), its
 * hard state persisted as it goes; throws unless it leads then.
 */
export function electBy(node: RawNode, storage: MemoryStorage, voter: bigint): void {
  node.campaign();
  for (let i = 0; i < 3 && node.raft.state !== StateRole.Leader; i++) {
    const rd = node.ready();
    if (rd.hardState !== undefined) storage.setHardState(rd.hardState);
    node.advance(rd);
    for (const m of rd.messages) {
      if (m.to !== voter) continue;
      const msgType = m.msgType === MessageType.MsgRequestPreVote
        ? MessageType.MsgRequestPreVoteResponse
        : MessageType.MsgRequestVoteResponse;
      node.step(newMessage({ msgType, from: voter, to: node.raft.id, term: m.term }));
    }
  }
  if (node.raft.state !== StateRole.Leader) {
    throw new Error(`raft test: node ${node.raft.id} did not win with ${voter}'s grants`);
  }
}
