/**
 * The peer's stated limits (pending proposals, pending reads, ReadIndex timeout, inline snapshot
 * size) are enforced, and the harness's transport filters do what they say.
 */
import assert from "node:assert/strict";
import { metapb } from "../../proto/mod.ts";
import { ConfChangeType, MessageType, newMessage } from "../raft/mod.ts";
import { RAFTSTORE_MAX_INBOX } from "../constants.ts";
import { writeCommand } from "./command.ts";
import type { RegionError } from "./errors.ts";
import { Cluster, FIRST_REGION_ID, put, replacer } from "./testing/cluster.ts";
import {
  delayWhen,
  dropWhen,
  isolate,
  isType,
  MemoryTransport,
  partition,
} from "./testing/memory_transport.ts";
import type { RaftEnvelope } from "./transport.ts";

const show = (value: unknown) => JSON.stringify(value, replacer);

Deno.test("a leader with maxPendingProposals waiting refuses the next proposal as ServerIsBusy", async () => {
  const c = await Cluster.start({ storeCount: 3, seed: 41, config: { maxPendingProposals: 3 } });
  const leader = c.leader()!;
  // Followers hear nothing, so nothing commits and proposals stay pending.
  c.transport.addFilter(isolate(leader.meta.storeId));
  const codes: string[] = [];
  for (let i = 0; i < 4; i++) {
    c.store(leader.meta.storeId).propose(
      FIRST_REGION_ID,
      writeCommand(leader.region(), leader.meta, [put(`k${i}`, "v")]),
      (r) => codes.push(r.ok ? "ok" : r.error.code),
    );
  }
  await c.round();
  assert.deepEqual(codes, ["ServerIsBusy"]);
  assert.equal(leader.pendingCounts().proposals, 3);
});

Deno.test("reads beyond maxPendingReads are refused, and a ReadIndex unanswered for readIndexTimeoutTicks fails", async () => {
  const c = await Cluster.start({
    storeCount: 3,
    seed: 42,
    config: { maxPendingReads: 2, readIndexTimeoutTicks: 6 },
  });
  const leader = c.leader()!;
  // No heartbeat answers: the lease runs out and ReadIndex rounds never finish.
  c.transport.addFilter(dropWhen("no heartbeat answers", isType(MessageType.MsgHeartbeatResponse)));
  await c.waitUntil("the lease ran out", () => !leader.raw.raft.leaseValid());
  const errors: RegionError["code"][] = [];
  for (let i = 0; i < 3; i++) {
    c.store(leader.meta.storeId).read(
      FIRST_REGION_ID,
      (r) => errors.push(r.ok ? "ok" as never : r.error.code),
    );
  }
  await c.round();
  assert.deepEqual(errors, ["ServerIsBusy"]);
  await c.waitUntil("the reads timed out", () => errors.length === 3, 20);
  assert.deepEqual(errors.slice(1), ["ReadIndexTimeout", "ReadIndexTimeout"]);
});

Deno.test("a store refuses requests once its inbox holds RAFTSTORE_MAX_INBOX items", async () => {
  const c = await Cluster.start({ storeCount: 1, seed: 43 });
  const store = c.store(1n);
  const envelope: RaftEnvelope = {
    regionId: 99n,
    fromPeer: { id: 9n, storeId: 9n, role: metapb.PeerRole.Voter },
    toPeer: { id: 8n, storeId: 1n, role: metapb.PeerRole.Voter },
    regionEpoch: { confVer: 1n, version: 1n },
    startKey: new Uint8Array(0),
    endKey: new Uint8Array(0),
    message: newMessage({ msgType: MessageType.MsgRequestVote, to: 8n, from: 9n, term: 1n }),
    isTombstone: false,
  };
  for (let i = 0; i < RAFTSTORE_MAX_INBOX; i++) store.receive(envelope);
  let refused: string | undefined;
  store.read(FIRST_REGION_ID, (r) => (refused = r.ok ? "ok" : r.error.code));
  assert.equal(refused, "ServerIsBusy");
  store.receive(envelope);
  assert.equal(store.stats.messagesDropped, 1);
  await c.round();
  assert.equal(store.peer(99n), undefined, "a vote request never creates a replica");
});

Deno.test("a region larger than snapshotMaxBytes is not snapshotted to a new replica until the limit allows it", async () => {
  const c = await Cluster.start({
    storeCount: 3,
    seed: 44,
    initialStores: [1n, 2n],
    config: { snapshotMaxBytes: 64 },
  });
  for (let i = 0; i < 10; i++) assert.ok((await c.put(`key-${i}`, "a value of some length")).ok);
  const learner = { id: c.allocPeerId(), storeId: 3n, role: metapb.PeerRole.Learner };
  let snapshots = 0;
  c.transport.addFilter(dropWhen("count snapshots", (e) => {
    if (isType(MessageType.MsgSnapshot)(e)) snapshots++;
    return false;
  }));
  assert.ok((await c.changePeer(ConfChangeType.AddLearnerNode, learner)).ok);
  await c.tick(30);
  assert.equal(snapshots, 0);
  assert.equal(c.valueOn(3n, "key-0"), undefined);
  assert.equal(c.store(3n).peer(FIRST_REGION_ID)?.isInitialized(), false);
});

Deno.test("a new learner on a store that never had the region catches up by snapshot, then by log (seed 45)", async () => {
  const c = await Cluster.start({ storeCount: 4, seed: 45, initialStores: [1n, 2n, 3n] });
  for (let i = 0; i < 10; i++) assert.ok((await c.put(`k${i}`, "v")).ok);
  const learner = { id: c.allocPeerId(), storeId: 4n, role: metapb.PeerRole.Learner };
  const added = await c.changePeer(ConfChangeType.AddLearnerNode, learner);
  assert.ok(added.ok, show(added));
  await c.waitUntil("the learner has the data", () => c.valueOn(4n, "k9") === "v");
  assert.ok((await c.put("later", "v")).ok);
  await c.waitUntil("the learner applied a later write", () => c.valueOn(4n, "later") === "v");
  // A learner never votes and never leads: with two voters down nothing commits.
  assert.equal(c.store(4n).peer(FIRST_REGION_ID)?.raw.raft.promotable(), false);
  // It survives a restart as an initialized replica.
  c.crash(4n, { powerLoss: true });
  c.restart(4n);
  assert.equal(c.store(4n).peer(FIRST_REGION_ID)?.isInitialized(), true);
  assert.ok((await c.put("after-restart", "v")).ok);
  await c.waitUntil("the restarted learner applied", () => c.valueOn(4n, "after-restart") === "v");
});

function envelope(from: bigint, to: bigint): RaftEnvelope {
  return {
    regionId: 1n,
    fromPeer: { id: from, storeId: from, role: metapb.PeerRole.Voter },
    toPeer: { id: to, storeId: to, role: metapb.PeerRole.Voter },
    regionEpoch: { confVer: 1n, version: 1n },
    startKey: new Uint8Array(0),
    endKey: new Uint8Array(0),
    message: newMessage({ msgType: MessageType.MsgHeartbeat, to, from }),
    isTombstone: false,
  };
}

Deno.test("transport filters: partition, isolate, drop and delay by rounds", () => {
  const t = new MemoryTransport();
  const got: string[] = [];
  for (const id of [1n, 2n, 3n]) t.register(id, (e) => got.push(`${e.fromPeer.storeId}>${id}`));
  const p = t.addFilter(partition([[1n], [2n, 3n]]));
  t.send(envelope(1n, 2n));
  t.send(envelope(2n, 3n));
  t.removeFilter(p);
  const i = t.addFilter(isolate(3n));
  t.send(envelope(2n, 3n));
  t.send(envelope(1n, 2n));
  t.removeFilter(i);
  t.addFilter(delayWhen(2, (e) => e.toPeer.storeId === 1n));
  t.send(envelope(3n, 1n));
  assert.deepEqual(got, ["2>3", "1>2"]);
  t.advanceRound();
  assert.deepEqual(got, ["2>3", "1>2"]);
  t.advanceRound();
  assert.deepEqual(got, ["2>3", "1>2", "3>1"]);
  t.clearFilters();
  t.unregister(2n);
  t.send(envelope(1n, 2n));
  assert.deepEqual(t.stats, { sent: 6, delivered: 3, dropped: 3, delayed: 1 });
});

Deno.test("a lost snapshot is sent again by the same leader (seed 46)", async () => {
  const c = await Cluster.start({ storeCount: 4, seed: 46, initialStores: [1n, 2n, 3n] });
  for (let i = 0; i < 5; i++) assert.ok((await c.put(`k${i}`, "v")).ok);
  const leader = c.leader()!.meta.id;
  let lost = 0;
  c.transport.addFilter(dropWhen("lose two snapshots", (e) => {
    if (!isType(MessageType.MsgSnapshot)(e) || lost >= 2) return false;
    lost++;
    return true;
  }));
  const learner = { id: c.allocPeerId(), storeId: 4n, role: metapb.PeerRole.Learner };
  assert.ok((await c.changePeer(ConfChangeType.AddLearnerNode, learner)).ok);
  await c.waitUntil("the learner caught up", () => c.valueOn(4n, "k4") === "v", 100);
  assert.equal(lost, 2);
  assert.equal(c.leader()!.meta.id, leader, "no leader change was needed");
});

Deno.test("an uninitialized replica is not kept across a restart, and is created again by the leader's next message (seed 47)", async () => {
  const c = await Cluster.start({ storeCount: 4, seed: 47, initialStores: [1n, 2n, 3n] });
  assert.ok((await c.put("k", "v")).ok);
  const noSnapshots = c.transport.addFilter(
    dropWhen("no snapshots", isType(MessageType.MsgSnapshot)),
  );
  const learner = { id: c.allocPeerId(), storeId: 4n, role: metapb.PeerRole.Learner };
  assert.ok((await c.changePeer(ConfChangeType.AddLearnerNode, learner)).ok);
  await c.waitUntil(
    "an uninitialized replica on store 4",
    () => c.store(4n).peer(FIRST_REGION_ID) !== undefined,
  );
  assert.equal(c.store(4n).peer(FIRST_REGION_ID)!.isInitialized(), false);
  c.crash(4n, { powerLoss: true });
  c.restart(4n);
  assert.equal(c.store(4n).peer(FIRST_REGION_ID), undefined);
  c.transport.removeFilter(noSnapshots);
  await c.waitUntil("the learner caught up after all", () => c.valueOn(4n, "k") === "v");
  assert.equal(c.store(4n).peer(FIRST_REGION_ID)!.meta.id, learner.id);
});
