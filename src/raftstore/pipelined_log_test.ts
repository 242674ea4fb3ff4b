/**
 * A store with a pipelined log (`PeerConfig.pipelineLog`, store.ts): a round's write returns
 * before its fsync, and what the fsync covers is answered, applied and told to other stores
 * only once it ends. Over an engine whose fsyncs end when the test says so.
 */
import assert from "node:assert/strict";
import { metapb } from "../../proto/mod.ts";
import { writeCommand } from "./command.ts";
import type { RegionMeta } from "./local_state.ts";
import type { CmdResult } from "./apply.ts";
import { Store } from "./store.ts";
import { CrashableMemoryEngine, HeldSyncEngine } from "./testing/crash_engine.ts";
import { put } from "./testing/cluster.ts";
import type { RaftEnvelope } from "./transport.ts";

const REGION: RegionMeta = {
  id: 2n,
  startKey: new Uint8Array(),
  endKey: new Uint8Array(),
  regionEpoch: { confVer: 1n, version: 1n },
  peers: [{ id: 3n, storeId: 1n, role: metapb.PeerRole.Voter }],
};

function start(engine: CrashableMemoryEngine, sent: RaftEnvelope[] = []): Store {
  return Store.start({
    storeId: 1n,
    engine,
    transport: { send: (envelope) => sent.push(envelope) },
    random: { nextInt: () => 0 },
    config: { pipelineLog: true },
  });
}

/** Rounds, each fsync released after it, until the store has nothing to do. */
async function settle(store: Store, engine: HeldSyncEngine): Promise<void> {
  for (let i = 0; i < 20; i++) {
    const worked = await store.round();
    engine.release();
    await drain();
    if (!worked && engine.held === 0 && !store.hasWork()) return;
  }
  assert.fail("the store did not settle in 20 rounds");
}

/** Lets every microtask run (a released fsync's callbacks). */
const drain = () => new Promise((resolve) => setTimeout(resolve, 0));

function value(engine: CrashableMemoryEngine, key: string): string | undefined {
  const bytes = engine.get("default", new TextEncoder().encode(key));
  return bytes === null ? undefined : new TextDecoder().decode(bytes);
}

async function leaderStore(engine: HeldSyncEngine): Promise<Store> {
  const store = start(engine);
  await store.bootstrapRegion(REGION);
  store.campaignLoneVoters();
  await settle(store, engine);
  assert.ok(store.peer(REGION.id)!.isLeader());
  return store;
}

Deno.test("pipelined log: a write is answered, applied and visible only once its round's fsync ends", async () => {
  const engine = new HeldSyncEngine();
  const store = await leaderStore(engine);
  const peer = store.peer(REGION.id)!;
  const answers: CmdResult[] = [];
  store.propose(REGION.id, writeCommand(peer.region(), peer.meta, [put("k", "v")]), (r) => {
    answers.push(r);
  });
  assert.equal(await store.round(), true);
  assert.equal(engine.held, 1, "the round started its fsync and went on");
  assert.equal(store.syncsInFlight, 1);
  assert.equal(answers.length, 0, "not answered before the fsync ends");
  assert.equal(value(engine, "k"), undefined, "not applied before the fsync ends");
  const entry = peer.raw.raft.log.lastIndex();
  assert.ok(peer.raw.raft.log.committed < entry, "not committed: its only copy is not durable");
  // A power loss now loses the write, which no one was told of.
  const lost = engine.powerLoss();
  assert.equal(lost.get("default", new TextEncoder().encode("k")), null);
  engine.release();
  await drain();
  assert.equal(store.syncsInFlight, 0);
  await store.round();
  assert.deepEqual(answers.map((a) => a.ok), [true]);
  assert.equal(value(engine, "k"), "v");
  // Acknowledged, it survives a power loss (its entry is durable; a restart applies it again).
  const after = engine.powerLoss();
  const restarted = start(after);
  restarted.campaignLoneVoters();
  for (let i = 0; i < 5 && value(after, "k") === undefined; i++) await restarted.round();
  assert.equal(value(after, "k"), "v");
});

Deno.test("pipelined log: later rounds write while an fsync runs, at most RAFTSTORE_SYNCS_IN_FLIGHT_MAX of them", async () => {
  const engine = new HeldSyncEngine();
  const store = await leaderStore(engine);
  const peer = store.peer(REGION.id)!;
  const answered: string[] = [];
  const write = (key: string) =>
    store.propose(REGION.id, writeCommand(peer.region(), peer.meta, [put(key, key)]), (r) => {
      if (r.ok) answered.push(key);
    });
  write("a");
  await store.round();
  write("b");
  await store.round();
  assert.equal(engine.held, 2, "the second round wrote while the first fsync ran");
  write("c");
  let third = false;
  const round = store.round().then(() => (third = true));
  await Promise.resolve();
  assert.equal(third, false, "a third round waits for the oldest fsync");
  engine.release();
  await round;
  await settle(store, engine);
  assert.deepEqual(answered, ["a", "b", "c"]);
});

Deno.test("pipelined log: a failed fsync fails the next round (the worker is rebuilt from disk)", async () => {
  const engine = new HeldSyncEngine();
  const store = await leaderStore(engine);
  const peer = store.peer(REGION.id)!;
  engine.syncWal = () => Promise.reject(new Error("fsync: input/output error"));
  store.propose(REGION.id, writeCommand(peer.region(), peer.meta, [put("k", "v")]), () => {});
  await store.round();
  await drain();
  await assert.rejects(() => store.round(), /input\/output error/);
});
