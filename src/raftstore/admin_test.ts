/**
 * Admin operations at the peer level over the harness: membership change (add learner → promote
 * → remove, single step, Raft thesis §4.1), removed replicas going away for good, log compaction
 * (CompactLog below the slowest follower, bounded by the count limit), a promotion refused until the
 * learner has caught up, and replicas catching up by snapshot.
 */
import assert from "node:assert/strict";
import { metapb } from "../../proto/mod.ts";
import { ConfChangeType, MessageType } from "../raft/mod.ts";
import { PeerState } from "./local_state.ts";
import { readRegionState } from "./region_state.ts";
import { raftLogRange } from "./keys.ts";
import { Cluster, FIRST_REGION_ID, replacer } from "./testing/cluster.ts";
import { dropWhen, isType } from "./testing/memory_transport.ts";

const show = (value: unknown) => JSON.stringify(value, replacer);

function logKeys(c: Cluster, storeId: bigint): number {
  const { start, end } = raftLogRange(FIRST_REGION_ID);
  let n = 0;
  using iter = c.engine(storeId).iterator("raft", { lowerBound: start, upperBound: end });
  for (iter.seekToFirst(); iter.valid(); iter.next()) n++;
  return n;
}

Deno.test("a peer is removed, becomes Tombstone with its data and log gone, and is added back under a new peer id via learner → voter (seed 21)", async () => {
  const c = await Cluster.start({ storeCount: 3, seed: 21 });
  for (let i = 0; i < 10; i++) assert.ok((await c.put(`k${i}`, "v")).ok);
  const victim = c.peers().find((p) => !p.isLeader())!;
  const store = victim.meta.storeId;
  const removed = await c.changePeer(ConfChangeType.RemoveNode, victim.meta);
  assert.ok(removed.ok, show(removed));
  await c.waitUntil(
    "the removed replica destroyed",
    () => c.store(store).peer(FIRST_REGION_ID) === undefined,
  );
  assert.equal(readRegionState(c.engine(store), FIRST_REGION_ID)?.state, PeerState.Tombstone);
  assert.equal(c.valueOn(store, "k0"), undefined);
  assert.equal(logKeys(c, store), 0);
  assert.ok((await c.put("after-remove", "v")).ok);
  assert.equal(c.valueOn(store, "after-remove"), undefined);

  // Back, as a learner with a new id: it has no log, so it is sent a snapshot.
  const fresh = { id: c.allocPeerId(), storeId: store, role: metapb.PeerRole.Learner };
  const added = await c.changePeer(ConfChangeType.AddLearnerNode, fresh);
  assert.ok(added.ok, show(added));
  await c.waitUntil("the learner caught up", () => c.valueOn(store, "after-remove") === "v");
  assert.equal(c.valueOn(store, "k9"), "v");
  const promoted = await c.changePeer(ConfChangeType.AddNode, {
    ...fresh,
    role: metapb.PeerRole.Voter,
  });
  assert.ok(promoted.ok, show(promoted));
  assert.ok((await c.put("after-promote", "v")).ok);
  await c.waitUntil("the new voter applied", () => c.valueOn(store, "after-promote") === "v");
  const peer = c.store(store).peer(FIRST_REGION_ID)!;
  assert.equal(peer.meta.id, fresh.id);
  assert.equal(peer.region().peers.find((p) => p.id === fresh.id)?.role, metapb.PeerRole.Voter);
  assert.equal(peer.region().regionEpoch.confVer, 1n + 3n);
  // The new voter counts in the quorum: with another store down, writes still commit.
  c.crash(c.storeIds.find((id) => id !== store && id !== c.leader()!.meta.storeId)!);
  await c.mustPut("with-new-voter", "v");
});

Deno.test("a learner's promotion waits until it has caught up, and is refused if it never does: promoted unanswered it would lose the region's leader for good (seed 27)", async () => {
  // One voter; the learner on store 2 is uninitialized (no snapshot yet) and answers nothing.
  const waitTicks = 30;
  const c = await Cluster.start({
    storeCount: 2,
    seed: 27,
    initialStores: [1n],
    config: { voterCatchUpWaitTicks: waitTicks },
  });
  for (let i = 0; i < 5; i++) assert.ok((await c.put(`k${i}`, "v")).ok);
  const mute = c.transport.addFilter(dropWhen("mute store 2", (e) => e.fromPeer.storeId === 2n));
  const learner = { id: c.allocPeerId(), storeId: 2n, role: metapb.PeerRole.Learner };
  assert.ok((await c.changePeer(ConfChangeType.AddLearnerNode, learner)).ok);
  const voter = { ...learner, role: metapb.PeerRole.Voter };
  const startTick = c.ticks;
  const refused = await c.changePeer(ConfChangeType.AddNode, voter);
  assert.ok(!refused.ok && refused.error.code === "ServerIsBusy", show(refused));
  assert.match(show(refused), /needs a snapshot first/);
  assert.ok(c.ticks - startTick >= waitTicks, `refused after ${c.ticks - startTick} ticks`);
  // Had it been promoted, check quorum would have deposed the leader, and an uninitialized
  // replica never votes: no leader ever again. Refused, the region keeps its leader.
  await c.tick(40);
  assert.equal(c.leader()?.meta.storeId, 1n);
  assert.equal(c.store(2n).peer(FIRST_REGION_ID)?.isInitialized(), false);
  // Heard again, the learner gets its snapshot; a promotion asked meanwhile waits for it.
  c.transport.removeFilter(mute);
  const promoted = await c.changePeer(ConfChangeType.AddNode, voter);
  assert.ok(promoted.ok, show(promoted));
  assert.equal(c.valueOn(2n, "k4"), "v");
  await c.mustPut("after-promote", "v");
  await c.waitUntil("the new voter applied", () => c.valueOn(2n, "after-promote") === "v");
});

Deno.test("a learner promoted in a two-voter region waits for its snapshot, so once promoted the loss of the first store for good still leaves a quorum (seed 28)", async () => {
  const c = await Cluster.start({ storeCount: 3, seed: 28, initialStores: [1n, 2n] });
  for (let i = 0; i < 5; i++) assert.ok((await c.put(`k${i}`, "v")).ok);
  const deaf = c.transport.addFilter(dropWhen("deaf store 3", (e) => e.toPeer.storeId === 3n));
  const learner = { id: c.allocPeerId(), storeId: 3n, role: metapb.PeerRole.Learner };
  assert.ok((await c.changePeer(ConfChangeType.AddLearnerNode, learner)).ok);
  const leader = c.leader()!;
  const promotion = c.startChangePeer(leader.meta.storeId, {
    changeType: ConfChangeType.AddNode,
    peer: { ...learner, role: metapb.PeerRole.Voter },
  });
  // The two voters could commit the promotion without store 3, but it is held: store 3 has
  // nothing yet, and as a voter that never votes it would leave no quorum once one more is lost.
  await c.tick(10);
  assert.equal(promotion.result, undefined);
  const role = leader.region().peers.find((p) => p.id === learner.id)?.role;
  assert.equal(role, metapb.PeerRole.Learner);
  c.transport.removeFilter(deaf);
  await c.waitUntil("the promotion answered", () => promotion.result !== undefined);
  assert.ok(promotion.result!.ok, show(promotion.result));
  assert.equal(c.valueOn(3n, "k4"), "v");
  // The first leader's store goes for good: the two left elect a leader and take writes.
  c.crash(leader.meta.storeId);
  await c.mustPut("after-loss", "v");
  await c.waitUntil("store 3 applied it", () => c.valueOn(3n, "after-loss") === "v");
});

Deno.test("a removed replica that never heard of its removal is told to go when it campaigns, and never comes back (seed 22)", async () => {
  const c = await Cluster.start({ storeCount: 3, seed: 22 });
  assert.ok((await c.put("k", "v")).ok);
  const victim = c.peers().find((p) => !p.isLeader())!;
  const store = victim.meta.storeId;
  // The victim hears nothing more from the others, so it never applies its removal.
  const deaf = c.transport.addFilter(dropWhen("deaf victim", (e) => e.toPeer.storeId === store));
  const removed = await c.changePeer(ConfChangeType.RemoveNode, victim.meta);
  assert.ok(removed.ok, show(removed));
  assert.ok(c.store(store).peer(FIRST_REGION_ID) !== undefined);
  c.transport.removeFilter(deaf);
  // It times out, pre-campaigns with its stale epoch, and is answered with a tombstone.
  let tombstonesToVictim = 0;
  c.transport.addFilter(dropWhen("count tombstones", (e) => {
    if (e.isTombstone && e.toPeer.id === victim.meta.id) tombstonesToVictim++;
    return false;
  }));
  await c.waitUntil(
    "the stale replica destroyed",
    () => c.store(store).peer(FIRST_REGION_ID) === undefined,
  );
  assert.ok(tombstonesToVictim > 0);
  assert.equal(readRegionState(c.engine(store), FIRST_REGION_ID)?.state, PeerState.Tombstone);
  // Heartbeats from the old configuration never recreate it (the leader no longer sends any),
  // and a restart keeps it gone.
  c.crash(store);
  c.restart(store);
  await c.tick(30);
  assert.equal(c.store(store).peer(FIRST_REGION_ID), undefined);
  assert.equal(c.store(store).stats.peersCreated, 0);
});

Deno.test("a proposal to remove the leader itself is refused; a second conf change waits for the first to apply", async () => {
  const c = await Cluster.start({ storeCount: 3, seed: 23 });
  const leader = c.leader()!;
  const refused = await c.changePeer(ConfChangeType.RemoveNode, leader.meta);
  assert.ok(!refused.ok && refused.error.code === "InvalidCommand", show(refused));
  assert.match(show(refused), /transfer leadership/);
  // Two changes proposed in the same round: the second is refused while the first is pending.
  const store = c.store(leader.meta.storeId);
  const answers: string[] = [];
  const learnerA = { id: c.allocPeerId(), storeId: 9n, role: metapb.PeerRole.Learner };
  const learnerB = { id: c.allocPeerId(), storeId: 10n, role: metapb.PeerRole.Learner };
  for (const peer of [learnerA, learnerB]) {
    store.propose(FIRST_REGION_ID, {
      header: {
        regionId: FIRST_REGION_ID,
        peer: leader.meta,
        regionEpoch: leader.region().regionEpoch,
      },
      adminRequest: { cmdType: 1, changePeer: { changeType: ConfChangeType.AddLearnerNode, peer } },
    }, (r) => answers.push(r.ok ? "ok" : r.error.code));
  }
  await c.waitUntil("both answered", () => answers.length === 2);
  assert.deepEqual(answers.sort(), ["ServerIsBusy", "ok"]);
});

Deno.test("log compaction truncates every replica's log once it passes the count threshold, and writes keep working (seed 24)", async () => {
  const c = await Cluster.start({
    storeCount: 3,
    seed: 24,
    config: { raftLogGcCountLimit: 20, raftLogGcCheckTicks: 2 },
  });
  for (let i = 0; i < 100; i++) assert.ok((await c.put(`k${i}`, `v${i}`)).ok);
  await c.tick(6);
  for (const peer of c.peers()) {
    const first = peer.storage.firstIndex();
    assert.ok(first > 60n, `store ${peer.meta.storeId}: first index ${first}`);
    assert.ok(
      logKeys(c, peer.meta.storeId) < 50,
      `store ${peer.meta.storeId}: ${logKeys(c, peer.meta.storeId)} log keys`,
    );
  }
  for (let i = 100; i < 150; i++) assert.ok((await c.put(`k${i}`, `v${i}`)).ok);
  // A restarted replica loads its compacted log and keeps going.
  const follower = c.peers().find((p) => !p.isLeader())!.meta.storeId;
  c.crash(follower, { powerLoss: true });
  c.restart(follower);
  await c.mustPut("last", "v");
  await c.waitUntil(
    "the restarted follower applied 'last'",
    () => c.valueOn(follower, "last") === "v",
  );
  assert.equal(c.valueOn(follower, "k0"), "v0");
});

Deno.test("log compaction keeps a down follower's entries while it is less than half the count limit behind, so it catches up by log (seed 25)", async () => {
  const c = await Cluster.start({
    storeCount: 3,
    seed: 25,
    config: { raftLogGcCountLimit: 20, raftLogGcCheckTicks: 1 },
  });
  let snapshots = 0;
  c.transport.addFilter(dropWhen("count snapshots", (e) => {
    if (isType(MessageType.MsgSnapshot)(e)) snapshots++;
    return false;
  }));
  for (let i = 0; i < 30; i++) assert.ok((await c.put(`a${i}`, "v")).ok);
  const follower = c.peers().find((p) => !p.isLeader())!;
  // What the follower's log holds (it may not have applied all of it: a leader tells its
  // followers a new commit index with its next append or heartbeat).
  const match = follower.raw.raft.log.lastIndex();
  c.crash(follower.meta.storeId);
  // 8 writes: fewer than half the limit (10) behind, whatever the leader compacts meanwhile.
  for (let i = 0; i < 8; i++) assert.ok((await c.put(`b${i}`, "v")).ok);
  await c.tick(5);
  const leader = c.leader()!;
  assert.ok(
    leader.storage.firstIndex() <= match + 1n,
    `leader compacted to ${leader.storage.firstIndex()} past ${match}`,
  );
  c.restart(follower.meta.storeId);
  await c.waitUntil(
    "the follower caught up",
    () => c.valueOn(follower.meta.storeId, "b7") === "v",
  );
  assert.equal(snapshots, 0);
});

Deno.test("log compaction passes a follower more than half the count limit behind: the log stays within the limit and the follower catches up by snapshot (seed 25)", async () => {
  const limit = 10;
  const c = await Cluster.start({
    storeCount: 3,
    seed: 25,
    config: { raftLogGcCountLimit: limit, raftLogGcCheckTicks: 1 },
  });
  let snapshots = 0;
  c.transport.addFilter(dropWhen("count snapshots", (e) => {
    if (isType(MessageType.MsgSnapshot)(e)) snapshots++;
    return false;
  }));
  for (let i = 0; i < 20; i++) assert.ok((await c.put(`a${i}`, "v")).ok);
  const follower = c.peers().find((p) => !p.isLeader())!;
  const match = follower.appliedIndex();
  c.crash(follower.meta.storeId);
  for (let i = 0; i < 60; i++) assert.ok((await c.put(`b${i}`, "v")).ok);
  await c.tick(5);
  const leader = c.leader()!;
  assert.ok(
    leader.storage.firstIndex() > match + 1n,
    `leader kept its log from ${leader.storage.firstIndex()} for the follower at ${match}`,
  );
  const kept = logKeys(c, leader.meta.storeId);
  assert.ok(kept <= limit, `the leader keeps ${kept} log entries; the limit is ${limit}`);
  assert.equal(snapshots, 0, "no snapshot while the follower is down");
  c.restart(follower.meta.storeId);
  await c.waitUntil(
    "the follower caught up",
    () => c.valueOn(follower.meta.storeId, "b59") === "v",
  );
  assert.ok(snapshots >= 1, "the follower was sent a snapshot");
  assert.equal(c.valueOn(follower.meta.storeId, "a0"), "v");
});

Deno.test("log compaction also starts when the bytes appended pass the size threshold (seed 26)", async () => {
  const c = await Cluster.start({
    storeCount: 3,
    seed: 26,
    config: { raftLogGcCountLimit: 100_000, raftLogGcSizeLimitBytes: 4096, raftLogGcCheckTicks: 1 },
  });
  const big = "v".repeat(500);
  for (let i = 0; i < 6; i++) assert.ok((await c.put(`k${i}`, big)).ok);
  await c.tick(3);
  assert.equal(
    c.leader()!.storage.firstIndex(),
    6n,
    "below the size threshold nothing is compacted",
  );
  for (let i = 6; i < 20; i++) assert.ok((await c.put(`k${i}`, big)).ok);
  await c.tick(3);
  for (const peer of c.peers()) {
    assert.ok(
      peer.storage.firstIndex() > 15n,
      `store ${peer.meta.storeId}: first index ${peer.storage.firstIndex()}`,
    );
  }
});
