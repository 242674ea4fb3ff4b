/**
 * A store without a pipelined log answers the writes a round applied while that round's fsync
 * runs (log_writer.ts), when their entries were durable before the round: committed by earlier
 * rounds, on a quorum. Never a lone voter's entry written by the same round. Two real stores,
 * their messages carried by hand, the leader's fsyncs held when the test says so.
 */
import assert from "node:assert/strict";
import { metapb } from "../../proto/mod.ts";
import { writeCommand } from "./command.ts";
import type { RegionMeta } from "./local_state.ts";
import { Store } from "./store.ts";
import { put } from "./testing/cluster.ts";
import { CrashableMemoryEngine, HeldSyncEngine } from "./testing/crash_engine.ts";
import type { RaftEnvelope } from "./transport.ts";

const REGION_ID = 2n;

function region(peers: { id: bigint; storeId: bigint }[]): RegionMeta {
  return {
    id: REGION_ID,
    startKey: new Uint8Array(),
    endKey: new Uint8Array(),
    regionEpoch: { confVer: 1n, version: 1n },
    peers: peers.map((p) => ({ ...p, role: metapb.PeerRole.Voter })),
  };
}

/** A store over `engine` whose messages go to `outbox`. */
function start(
  storeId: bigint,
  engine: CrashableMemoryEngine,
  outbox: RaftEnvelope[],
  timeout: "shortest" | "longest" = "shortest",
): Store {
  return Store.start({
    storeId,
    engine,
    transport: { send: (envelope) => outbox.push(envelope) },
    random: { nextInt: (n) => timeout === "shortest" ? 0 : n - 1 },
  });
}

/** Lets every microtask and timer callback due now run. */
const drain = () => new Promise((resolve) => setTimeout(resolve, 0));

/** Writes `key` through `store`'s replica, recording the answer's outcome in `answers`. */
function write(store: Store, key: string, answers: Map<string, boolean>): void {
  const peer = store.peer(REGION_ID)!;
  store.propose(REGION_ID, writeCommand(peer.region(), peer.meta, [put(key, key)]), (r) => {
    answers.set(key, r.ok);
  });
}

Deno.test("not pipelined: a write committed by an earlier round is answered while the round that applies it waits for its fsync", async () => {
  const leaderEngine = new HeldSyncEngine();
  leaderEngine.holding = false;
  const out1: RaftEnvelope[] = [];
  const out2: RaftEnvelope[] = [];
  const meta = region([{ id: 3n, storeId: 1n }, { id: 4n, storeId: 2n }]);
  const leader = start(1n, leaderEngine, out1);
  const follower = start(2n, new CrashableMemoryEngine(), out2, "longest");
  await leader.bootstrapRegion(meta);
  await follower.bootstrapRegion(meta);
  /** Carries every message across and runs rounds until both stores are quiet. */
  const pump = async () => {
    for (let i = 0; i < 40; i++) {
      for (const e of out1.splice(0)) follower.receive(e);
      for (const e of out2.splice(0)) leader.receive(e);
      const led = await leader.round();
      const followed = await follower.round();
      const worked = led || followed;
      if (!worked && out1.length === 0 && out2.length === 0) return;
    }
    assert.fail("the stores did not settle in 40 rounds");
  };
  // Store 1's election timer fires first (the shortest timeout); store 2 grants once an election
  // timeout passed since it started (a replica that may have voted before a restart waits so).
  for (let i = 0; i < 100 && !leader.peer(REGION_ID)!.isLeader(); i++) {
    leader.tick();
    follower.tick();
    await pump();
  }
  assert.ok(leader.peer(REGION_ID)!.isLeader());

  const answers = new Map<string, boolean>();
  write(leader, "b", answers);
  await leader.round(); // b's entry written (and synced), its append sent
  for (const e of out1.splice(0)) follower.receive(e);
  await follower.round(); // the follower holds b and answers
  write(leader, "c", answers); // so the next round writes an entry of its own
  for (const e of out2.splice(0)) leader.receive(e);
  leaderEngine.holding = true;
  const round = leader.round(); // commits and applies b, writes c, waits for its fsync
  await drain();
  assert.equal(leaderEngine.held, 1, "the round waits for its fsync");
  assert.deepEqual([...answers], [["b", true]], "b answered before the fsync ends, c not");
  leaderEngine.release();
  await round;
  leaderEngine.holding = false;
  await pump();
  assert.deepEqual([...answers], [["b", true], ["c", true]]);
});

Deno.test("not pipelined: a lone voter's write is answered only once the round that wrote its entry is durable", async () => {
  const engine = new HeldSyncEngine();
  engine.holding = false;
  const store = start(1n, engine, []);
  await store.bootstrapRegion(region([{ id: 3n, storeId: 1n }]));
  store.campaignLoneVoters();
  for (let i = 0; i < 10 && store.hasWork(); i++) await store.round();
  assert.ok(store.peer(REGION_ID)!.isLeader());

  const answers = new Map<string, boolean>();
  write(store, "k", answers);
  engine.holding = true;
  const round = store.round(); // writes, commits and applies k in one round
  await drain();
  assert.equal(engine.held, 1, "the round waits for its fsync");
  assert.equal(answers.size, 0, "k's entry is not durable yet: no answer");
  // A power loss now loses k, which no one was told of.
  assert.equal(engine.powerLoss().get("default", new TextEncoder().encode("k")), null);
  engine.release();
  await round;
  assert.deepEqual([...answers], [["k", true]]);
});
