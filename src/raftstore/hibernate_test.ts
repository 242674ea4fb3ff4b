/**
 * Hibernation of idle regions (hibernate.ts) on the in-process harness: quiet groups stop being
 * ticked; proposals, messages and reads wake them; a leader that dies while its group sleeps is
 * replaced; reads stay linearizable across sleep and wake (Raft thesis §6.4.1: a lease is only
 * as good as the clock that measures it); splits still work.
 */
import assert from "node:assert/strict";
import { writeCommand } from "./command.ts";
import { MessageType, newMessage } from "../raft/mod.ts";
import { Cluster, FIRST_REGION_ID, type GetResult, put, replacer } from "./testing/cluster.ts";
import { dropWhen, isolate } from "./testing/memory_transport.ts";
import type { PeerConfig } from "./peer_config.ts";
import { HIBERNATE_LEADER_CHECK_ELECTION_TIMEOUTS } from "../constants.ts";

const ELECTION_TIMEOUT_TICKS = 10;
/** Ticks between a store's leader checks with the harness's election timeout. */
const CHECK_TICKS = HIBERNATE_LEADER_CHECK_ELECTION_TIMEOUTS * ELECTION_TIMEOUT_TICKS;
/**
 * Most ticks from a quiet group's last write until all its peers sleep: the leader's quiet
 * window (one election timeout) and a heartbeat round, then the followers' quiet ticks.
 */
const FALL_ASLEEP_TICKS = 3 * ELECTION_TIMEOUT_TICKS;

function show(value: unknown): string {
  return JSON.stringify(value, replacer);
}

async function start(seed: number, config: Partial<PeerConfig> = {}): Promise<Cluster> {
  return await Cluster.start({
    storeCount: 3,
    seed,
    config: { electionTimeoutTicks: ELECTION_TIMEOUT_TICKS, heartbeatIntervalTicks: 2, ...config },
  });
}

function allAsleep(c: Cluster, regionId = FIRST_REGION_ID): boolean {
  const peers = c.peers(regionId);
  return peers.length > 0 && peers.every((p) => p.asleep);
}

function peerTicks(c: Cluster): number {
  return c.storeIds.filter((id) => c.isUp(id)).reduce(
    (sum, id) => sum + c.store(id).hibernation().peerTicks,
    0,
  );
}

async function waitAsleep(c: Cluster, regionId = FIRST_REGION_ID): Promise<void> {
  await c.waitUntil(`every peer of region ${regionId} asleep`, () => allAsleep(c, regionId), 200);
}

Deno.test("a quiet region's peers all fall asleep after its last write and are then not ticked between leader checks", async () => {
  const c = await start(1);
  assert.ok((await c.put("k", "v")).ok);
  const wroteAt = c.ticks;
  await waitAsleep(c);
  assert.ok(c.ticks - wroteAt <= FALL_ASLEEP_TICKS, `asleep after ${c.ticks - wroteAt} ticks`);
  // Up to the next leader check nothing is ticked and no round has work.
  const ticksBefore = peerTicks(c);
  const roundsBefore = c.storeIds.map((id) => c.store(id).stats.rounds);
  const untilCheck = CHECK_TICKS - (c.ticks % CHECK_TICKS) - 1;
  assert.ok(untilCheck > 0);
  await c.tick(untilCheck);
  assert.equal(peerTicks(c), ticksBefore);
  assert.deepEqual(c.storeIds.map((id) => c.store(id).stats.rounds), roundsBefore);
  await c.tick(CHECK_TICKS);
  const checks = c.storeIds.reduce((n, id) => n + c.store(id).hibernation().leaderChecks, 0);
  assert.equal(checks, 2, "one leader check on each follower's store");
  await waitAsleep(c);
});

Deno.test("the ticks sleeping regions cost come from leader checks, one region per leading store, not from every region", async () => {
  const c = await start(8);
  const keys = Array.from({ length: 19 }, (_, i) => `k${String(i).padStart(2, "0")}`);
  assert.ok((await c.split(keys)).ok);
  const regions = ["a", ...keys].map((k) => c.regionOfKey(k));
  assert.equal(new Set(regions).size, 20);
  for (const id of regions) await waitAsleep(c, id);
  const checksBefore = leaderChecks(c);
  const ticksBefore = peerTicks(c);
  await c.tick(10 * CHECK_TICKS);
  const spent = peerTicks(c) - ticksBefore;
  const checks = leaderChecks(c) - checksBefore;
  const awakeCost = 20 * 3 * 10 * CHECK_TICKS;
  // A check wakes a follower, its leader and the leader's other follower for about a quiet
  // window and a half: at most three peers for two election timeouts.
  // Each store checks each other store that leads some of its sleeping followers.
  assert.ok(checks <= 3 * 2 * 10, `${checks} leader checks`);
  assert.ok(
    spent <= checks * 3 * 2 * ELECTION_TIMEOUT_TICKS,
    `${spent} ticks for ${checks} checks`,
  );
  assert.ok(spent < awakeCost / 20, `${spent} peer ticks of ${awakeCost} without hibernation`);
});

function leaderChecks(c: Cluster): number {
  return c.storeIds.reduce((n, id) => n + c.store(id).hibernation().leaderChecks, 0);
}

Deno.test("with hibernate-regions off every peer is ticked every tick", async () => {
  const c = await start(1, { hibernateRegions: false });
  assert.ok((await c.put("k", "v")).ok);
  const before = peerTicks(c);
  await c.tick(100);
  assert.equal(peerTicks(c) - before, 300);
  assert.ok(c.peers().every((p) => !p.asleep));
});

Deno.test("a proposal to a sleeping group wakes it and commits on every replica promptly", async () => {
  const c = await start(2);
  assert.ok((await c.put("k", "1")).ok);
  await waitAsleep(c);
  const leader = c.leader()!;
  assert.ok(leader.asleep);
  const sentAt = c.ticks;
  const write = c.startPropose(
    leader.meta.storeId,
    writeCommand(leader.region(), leader.meta, [put("k", "2")]),
  );
  await c.waitUntil("the write's answer", () => write.result !== undefined, 3);
  assert.ok(write.result?.ok, show(write.result));
  assert.ok(c.ticks - sentAt <= 1, `answered after ${c.ticks - sentAt} ticks`);
  await c.waitUntil(
    "k=2 on every replica",
    () => c.storeIds.every((id) => c.valueOn(id, "k") === "2"),
    3,
  );
  // …and the group goes back to sleep.
  await waitAsleep(c);
});

Deno.test("a message wakes a sleeping follower; a read at a follower wakes it and its probe wakes the leader", async () => {
  const c = await start(3);
  assert.ok((await c.put("k", "1")).ok);
  await waitAsleep(c);
  const [f1, f2] = c.peers().filter((p) => !p.isLeader());
  // A message: the leader's append wakes both followers.
  assert.ok((await c.put("k", "2")).ok);
  assert.ok(!f1!.asleep && !f2!.asleep);
  await waitAsleep(c);
  // A client at a follower: answered NotLeader at once; the follower wakes and its ReadIndex
  // probe wakes the leader, which answers with a heartbeat round.
  const read = c.startGet(f1!.meta.storeId, "k");
  await c.settle();
  assert.ok(read.result !== undefined && !read.result.ok, show(read.result));
  assert.equal(read.result.error.code, "NotLeader");
  assert.ok(!f1!.asleep);
  await c.tick(2);
  assert.ok(!c.leader()!.asleep, "the follower's probe woke the leader");
  await waitAsleep(c);
  // No election came of it.
  assert.equal(c.leader()!.raw.raft.term, f1!.raw.raft.term);
});

/** Ticks from killing a sleeping group's leader until another leads (the module header's bound). */
async function replaceSleepingLeader(seed: number): Promise<number> {
  const c = await start(seed);
  assert.ok((await c.put("k", "1")).ok);
  await waitAsleep(c);
  const old = c.leader()!;
  c.crash(old.meta.storeId);
  const crashedAt = c.ticks;
  await c.waitUntil("a new leader", () => c.leader() !== undefined, 400);
  const took = c.ticks - crashedAt;
  assert.ok((await c.put("k", "2")).ok, "the new leader takes writes");
  return took;
}

Deno.test("a leader that dies while its group sleeps is replaced within a leader check and six election timeouts (seeds 1–8)", async () => {
  const bound = CHECK_TICKS + 6 * ELECTION_TIMEOUT_TICKS;
  const took: number[] = [];
  for (let seed = 1; seed <= 8; seed++) took.push(await replaceSleepingLeader(seed));
  assert.ok(took.every((t) => t <= bound), `ticks to a new leader: ${took} (bound ${bound})`);
});

Deno.test("a write acknowledged before a read is visible to it across sleep and wake; the first read after waking is not a lease read", async () => {
  const c = await start(4);
  for (let i = 0; i < 3; i++) {
    assert.ok((await c.put("k", `v${i}`)).ok);
    await waitAsleep(c);
    const r = await c.get("k");
    assert.deepEqual(r.ok && [r.value, r.viaLease], [`v${i}`, false], show(r));
    // Once a heartbeat sent after the wake is acknowledged, the lease serves again.
    await c.tick(3);
    const again = await c.get("k");
    assert.deepEqual(again.ok && [again.value, again.viaLease], [`v${i}`, true], show(again));
  }
});

/**
 * The hibernation hazard: a sleeping leader is cut off, its followers elect a successor (the
 * leader check), the successor acknowledges a write, then a read reaches the old leader — which
 * never ticked, so still believes it leads, with a lease clock that stood still.
 */
async function readAtSleepingDeposedLeader(leaseSurvivesSleep: boolean): Promise<GetResult> {
  const c = await start(5, { testingBugs: { leaseSurvivesSleep } });
  assert.ok((await c.put("k", "old")).ok);
  await waitAsleep(c);
  const old = c.leader()!;
  c.transport.addFilter(isolate(old.meta.storeId));
  await c.waitUntil(
    "a second leader",
    () => c.peers().some((p) => p !== old && p.isLeader()),
    2 * CHECK_TICKS,
  );
  const fresh = c.peers().find((p) => p !== old && p.isLeader())!;
  const write = c.startPropose(
    fresh.meta.storeId,
    writeCommand(fresh.region(), fresh.meta, [put("k", "new")]),
  );
  await c.settle();
  assert.ok(write.result?.ok, show(write.result));
  assert.ok(old.isLeader() && old.asleep, "the old leader sleeps believing it leads");
  const read = c.startGet(old.meta.storeId, "k");
  await c.waitUntil("the old leader's answer", () => read.result !== undefined);
  return read.result!;
}

Deno.test("a sleeping leader cut off from the others never serves a read older than its successor's acknowledged write", async () => {
  const r = await readAtSleepingDeposedLeader(false);
  assert.ok(!r.ok || r.value === "new", `a stale read: ${show(r)}`);
});

Deno.test("…and the same scenario shows a stale read when the lease survives sleep (planted bug)", async () => {
  const r = await readAtSleepingDeposedLeader(true);
  assert.deepEqual(r.ok && [r.value, r.viaLease], ["old", true], show(r));
});

Deno.test("regions made by a split fall asleep, wake on writes, and split again while asleep", async () => {
  const c = await start(6);
  assert.ok((await c.put("a", "1")).ok);
  const split = await c.split(["b", "c"]);
  assert.ok(split.ok, show(split));
  const regions = ["a", "b", "c"].map((k) => c.regionOfKey(k));
  assert.equal(new Set(regions).size, 3);
  for (const id of regions) await waitAsleep(c, id);
  for (const key of ["a", "b", "c"]) assert.ok((await c.put(key, `${key}2`)).ok);
  for (const id of regions) await waitAsleep(c, id);
  const again = await c.split(["d"]);
  assert.ok(again.ok, show(again));
  assert.notEqual(c.regionOfKey("d"), c.regionOfKey("c"));
  for (const key of ["a", "b", "c", "d"]) {
    const r = await c.get(key);
    assert.deepEqual(r.ok && r.value, key === "d" ? undefined : `${key}2`, show(r));
  }
  for (const id of [...regions, c.regionOfKey("d")]) await waitAsleep(c, id);
});

Deno.test("a follower store restarted while its groups sleep rejoins, and the group sleeps again", async () => {
  const c = await start(7);
  assert.ok((await c.put("k", "1")).ok);
  await waitAsleep(c);
  const follower = c.peers().find((p) => !p.isLeader())!;
  c.crash(follower.meta.storeId);
  c.restart(follower.meta.storeId);
  await c.waitUntil(
    "the restarted replica follows the leader",
    () => c.store(follower.meta.storeId).peer(FIRST_REGION_ID)?.leader() !== undefined,
    100,
  );
  assert.ok((await c.put("k", "2")).ok);
  await c.waitUntil(
    "k=2 on the restarted store",
    () => c.valueOn(follower.meta.storeId, "k") === "2",
  );
  await waitAsleep(c);
});

// ---------------------------------------------------------------------------------------------
// The cascade (hibernate.ts, 5): a won pre-vote against a store wakes every follower it led.

/** Split keys of the cascade tests: 12 regions, all led from the first region's leader store. */
const MANY_KEYS = ["b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"];

/** A cluster of 12 sleeping regions led from one store; returns it and that store. */
async function manySleeping(seed: number): Promise<{ c: Cluster; regions: bigint[]; led: bigint }> {
  const c = await start(seed);
  assert.ok((await c.put("a", "1")).ok);
  const split = await c.split(MANY_KEYS);
  assert.ok(split.ok, show(split));
  const regions = ["a", ...MANY_KEYS].map((k) => c.regionOfKey(k));
  assert.equal(new Set(regions).size, MANY_KEYS.length + 1);
  for (const id of regions) await waitAsleep(c, id);
  const led = c.leader(regions[0])!.meta.storeId;
  assert.ok(
    regions.every((id) => c.leader(id)?.meta.storeId === led),
    "a split's regions are led where their parent was",
  );
  return { c, regions, led };
}

Deno.test("a store that dies leading 12 sleeping regions is replaced in all of them within a leader check and eight election timeouts (the cascade; seeds 1–4)", async () => {
  // Without the cascade each live store finds one region a leader check: 6 checks, 300 ticks.
  const bound = CHECK_TICKS + 8 * ELECTION_TIMEOUT_TICKS;
  for (let seed = 1; seed <= 4; seed++) {
    const { c, regions, led } = await manySleeping(seed);
    c.crash(led);
    const crashedAt = c.ticks;
    const ledElsewhere = () =>
      regions.every((id) => {
        const leader = c.leader(id);
        return leader !== undefined && leader.meta.storeId !== led;
      });
    await c.waitUntil("every region led from a live store", ledElsewhere, 400);
    const took = c.ticks - crashedAt;
    assert.ok(took <= bound, `seed ${seed}: ${took} ticks to lead every region (bound ${bound})`);
    const cascades = c.storeIds.filter((id) => c.isUp(id))
      .reduce((n, id) => n + c.store(id).hibernation().cascades, 0);
    assert.ok(cascades >= 1, `seed ${seed}: no cascade woke the followers`);
  }
});

Deno.test("a store cut off from the leaders' store alone wakes none of its other sleeping followers: its pre-votes are refused while the third store hears the leader", async () => {
  const { c, regions, led } = await manySleeping(5);
  const cut = c.storeIds.find((id) => id !== led)!;
  const between = (e: { fromPeer: { storeId: bigint }; toPeer: { storeId: bigint } }) =>
    (e.fromPeer.storeId === cut && e.toPeer.storeId === led) ||
    (e.fromPeer.storeId === led && e.toPeer.storeId === cut);
  c.transport.addFilter(dropWhen(`cut ${cut}–${led}`, between));
  const terms = regions.map((id) => c.leader(id)!.raw.raft.term);
  const checks = 3;
  await c.tick(checks * CHECK_TICKS);
  const h = c.store(cut).hibernation();
  assert.equal(h.cascades, 0, `store ${cut} woke every follower led from ${led}`);
  // Only the followers its leader checks woke (one per check) are awake; the rest sleep.
  const awake = regions.filter((id) => !c.store(cut).peer(id)!.asleep).length;
  assert.ok(awake <= checks + 1, `${awake} of ${regions.length} followers on store ${cut} awake`);
  // No election came of it.
  assert.deepEqual(regions.map((id) => c.leader(id)?.raw.raft.term), terms);
});

Deno.test("a late acknowledgement reaching a sleeping leader is taken without waking it (no heartbeat round follows, the followers sleep on)", async () => {
  const c = await start(6);
  assert.ok((await c.put("k", "1")).ok);
  await waitAsleep(c);
  const leader = c.leader()!;
  const follower = c.peers().find((p) => p !== leader)!;
  const wakesBefore = c.storeIds.map((id) => c.store(id).hibernation().wakes);
  for (const msgType of [MessageType.MsgHeartbeatResponse, MessageType.MsgAppendResponse]) {
    const ack = newMessage({
      msgType,
      to: leader.meta.id,
      from: follower.meta.id,
      term: leader.raw.raft.term,
      index: leader.raw.raft.log.lastIndex(),
    });
    c.store(leader.meta.storeId).receive(follower.envelope(leader.meta, ack, false));
    await c.settle();
    assert.ok(leader.asleep, `a ${MessageType[msgType]} woke the sleeping leader`);
  }
  await c.tick(2);
  assert.ok(c.peers().every((p) => p.asleep), "a follower was woken");
  assert.deepEqual(c.storeIds.map((id) => c.store(id).hibernation().wakes), wakesBefore);
});

Deno.test("an append rejection from a follower wakes a sleeping leader, which sends it entries and sleeps again", async () => {
  const c = await start(7);
  assert.ok((await c.put("k", "1")).ok);
  await waitAsleep(c);
  const leader = c.leader()!;
  const follower = c.peers().find((p) => p !== leader)!;
  // An append answer saying the follower lacks the last entry: the leader sends it again.
  const behind = newMessage({
    msgType: MessageType.MsgAppendResponse,
    to: leader.meta.id,
    from: follower.meta.id,
    term: leader.raw.raft.term,
    index: leader.raw.raft.log.lastIndex() - 1n,
    reject: true,
    rejectHint: leader.raw.raft.log.lastIndex() - 1n,
  });
  c.store(leader.meta.storeId).receive(follower.envelope(leader.meta, behind, false));
  await c.settle();
  assert.ok(!leader.asleep, "the leader sleeps with a follower to catch up");
  await waitAsleep(c);
});
