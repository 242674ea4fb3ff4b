/**
 * A replicated PD (`pd_member.ts`) in one process: three members over memory engines, a
 * simulated network that delivers, drops or cuts messages, and a simulated clock. Checks the
 * design's promises: only the leader serves; a failover loses no metadata and repeats no
 * timestamp (every timestamp every member handed out, in the order handed out, strictly
 * increases); a member that was down catches up from the log, or from a snapshot once the log
 * was compacted past it (Raft §7); a deposed leader's waiting answers fail with NotLeader.
 * Region writes are soft (design 6): heartbeats share entries and their answers wait for no
 * commit; a new leader that missed the last batch is repaired by heartbeats, refuses a stale
 * one (epoch, PD's `core.check`) and cancels an operator made on its stale view.
 *
 * Runs are deterministic: the seed of the members' random sources is printed and fixed.
 */
import assert from "node:assert/strict";
import { PD_RAFT_UNCOMMITTED_MAX_ENTRIES, PD_REGION_WRITES_BATCH_MAX } from "../constants.ts";
import { MemoryEngine } from "../engine/memory_engine.ts";
import { type Message, MessageType, StateRole } from "../raft/mod.ts";
import { SeededRandom } from "../util/random.ts";
import { EngineStorage } from "./engine_storage.ts";
import { PdError } from "./errors.ts";
import { PlacementDriver } from "./placement_driver.ts";
import { PdMember, type PdMemberOptions } from "./pd_member.ts";
import { decodeRegion } from "./records.ts";
import { regionKey } from "./storage.ts";
import type { RegionMeta } from "./types.ts";

const START_MS = 1_700_000_000_000;
const TICK_MS = 100;
/** Bound of every wait below, in simulated ticks (20 s of simulated time). */
const MAX_TICKS = 200;
const SEED = 11;
const IDS = [1n, 2n, 3n];

/** Three members, a network between them and a clock; `step()` is one tick of everything. */
class SimCluster {
  readonly clock = { nowMs: START_MS };
  readonly engines = new Map<bigint, MemoryEngine>();
  readonly members = new Map<bigint, PdMember>();
  /** Members that are down: they neither tick nor receive. */
  readonly down = new Set<bigint>();
  /** When set, a message it refuses is lost. */
  deliverable: ((message: Message) => boolean) | null = null;
  #queue: Message[] = [];
  #seed = SEED;

  constructor(readonly options: Partial<PdMemberOptions> = {}) {
    console.log(`pd_member_test: seed ${SEED}`);
    for (const id of IDS) {
      this.engines.set(id, new MemoryEngine());
      this.start(id);
    }
  }

  /** (Re)opens member `id` over its engine. */
  start(id: bigint): PdMember {
    const member = PdMember.open({
      ...this.options,
      id,
      voters: IDS,
      engine: this.engines.get(id)!,
      clock: { nowMs: () => this.clock.nowMs },
      random: new SeededRandom(this.#seed++),
      transport: { send: (messages) => this.#queue.push(...messages) },
    });
    this.members.set(id, member);
    this.down.delete(id);
    return member;
  }

  /** Stops member `id` (its engine keeps what it wrote, as a killed process's disk does). */
  async kill(id: bigint): Promise<void> {
    this.down.add(id);
    await this.members.get(id)!.settled();
  }

  /** One tick: the clock, every live member, then every message in flight. */
  async step(): Promise<void> {
    this.clock.nowMs += TICK_MS;
    for (const [id, member] of this.members) if (!this.down.has(id)) member.tick();
    await this.settle();
  }

  /** Delivers messages until none is in flight and every member is idle. */
  async settle(): Promise<void> {
    for (let round = 0; round < 1000; round++) {
      await Promise.all([...this.members.values()].map((member) => member.settled()));
      const queue = this.#queue;
      this.#queue = [];
      if (queue.length === 0) return;
      for (const message of queue) {
        if (this.down.has(message.to) || this.down.has(message.from)) continue;
        if (this.deliverable !== null && !this.deliverable(message)) continue;
        this.members.get(message.to)!.step(message);
      }
    }
    throw new Error("the simulated network did not go quiet in 1000 rounds");
  }

  /** Ticks until one live member serves; answers it (fails naming the wait after MAX_TICKS). */
  async leader(): Promise<PdMember> {
    for (let tick = 0; tick < MAX_TICKS; tick++) {
      const serving = [...this.members.values()].filter((m) =>
        !this.down.has(m.id) && m.driver !== null
      );
      assert.ok(serving.length <= 1, `two members serve at once: ${serving.map((m) => m.id)}`);
      if (serving.length === 1) return serving[0]!;
      await this.step();
    }
    throw new Error(`no PD member served within ${MAX_TICKS} ticks`);
  }

  /** Ticks until `done()` holds (fails naming `what` after MAX_TICKS). */
  async until(what: string, done: () => boolean): Promise<void> {
    for (let tick = 0; tick < MAX_TICKS && !done(); tick++) await this.step();
    const statuses = [...this.members.values()].map((m) => m.status());
    assert.ok(done(), `not within ${MAX_TICKS} ticks: ${what}; ${Deno.inspect(statuses)}`);
  }
}

/** Takes `count` timestamps from the serving member; answers them after their commit. */
async function timestamps(cluster: SimCluster, member: PdMember, count: number) {
  const out: bigint[] = [];
  for (let i = 0; i < count; i++) {
    const batch = member.driver!.tso(1 + (i % 3));
    assert.ok(!(batch instanceof PdError), String(batch));
    const waiting = member.barrier();
    if (waiting !== null) {
      await cluster.settle();
      assert.equal(await waiting, null);
    }
    for (let ts = batch.first; ts <= batch.last; ts++) out.push(ts);
    cluster.clock.nowMs += 7; // time passes between requests
    if (i % 10 === 0) await cluster.step();
  }
  return out;
}

async function committed<T>(cluster: SimCluster, member: PdMember, answer: T): Promise<T> {
  assert.ok(!(answer instanceof PdError), String(answer));
  const waiting = member.barrier();
  if (waiting !== null) {
    await cluster.settle();
    assert.equal(await waiting, null);
  }
  return answer;
}

function firstRegion(storeId: bigint): RegionMeta {
  return {
    id: 2n,
    startKey: new Uint8Array(0),
    endKey: new Uint8Array(0),
    regionEpoch: { confVer: 1n, version: 1n },
    peers: [{ id: 3n, storeId, role: "Voter" }],
  };
}

function assertIncreasing(list: readonly bigint[]): void {
  for (let i = 1; i < list.length; i++) {
    assert.ok(list[i]! > list[i - 1]!, `timestamp ${i} (${list[i]}) <= ${list[i - 1]}`);
  }
}

Deno.test("PD members: one leader serves; followers refuse with NotLeader naming it", async () => {
  const cluster = new SimCluster();
  const leader = await cluster.leader();
  for (const member of cluster.members.values()) {
    if (member === leader) {
      assert.equal(member.notServing(), null);
      continue;
    }
    const refusal = member.notServing();
    assert.ok(refusal instanceof PdError && refusal.code === "NotLeader");
    assert.match(refusal.message, new RegExp(`the leader is member ${leader.id}`));
    assert.equal(member.driver, null);
  }
  // Every member learned the cluster id the first leader made.
  await cluster.step();
  for (const member of cluster.members.values()) {
    assert.equal(member.clusterId, leader.clusterId);
  }
});

Deno.test("PD members: leader loss — a new leader serves, no timestamp repeats, metadata survives", async () => {
  const cluster = new SimCluster();
  const first = await cluster.leader();
  const driver = first.driver!;
  assert.equal(
    driver.bootstrap({ store: { id: 1n, address: "s1" }, region: firstRegion(1n) }),
    null,
  );
  assert.equal(driver.putStore({ id: 4n, address: "s4" }), null);
  const ids = await committed(cluster, first, driver.allocId(5));
  assert.equal(typeof ids, "bigint");
  const handedOut = await timestamps(cluster, first, 50);

  await cluster.kill(first.id);
  cluster.clock.nowMs -= 10_000; // the next leader's clock is behind: only the saved window helps
  const second = await cluster.leader();
  assert.notEqual(second.id, first.id);
  handedOut.push(...await timestamps(cluster, second, 50));
  // The metadata the first leader wrote is the second's.
  const store = second.driver!.getStore(4n);
  assert.ok(!(store instanceof PdError) && store.meta.address === "s4");
  assert.ok(second.driver!.isBootstrapped());
  const region = second.driver!.getRegionById(2n);
  assert.ok(region !== null && !(region instanceof PdError) && region.meta.peers.length === 1);
  const next = await committed(cluster, second, second.driver!.allocId(1));
  assert.ok(typeof next === "bigint" && next > (ids as bigint), `id ${next} after ${ids}`);

  // The old leader comes back as a follower, and a third failover still repeats nothing.
  cluster.start(first.id);
  await cluster.kill(second.id);
  const third = await cluster.leader();
  handedOut.push(...await timestamps(cluster, third, 50));
  assertIncreasing(handedOut);
  assert.equal(new Set(handedOut).size, handedOut.length);
});

Deno.test("PD members: a leader cut off loses leadership and its waiting answers get NotLeader", async () => {
  const cluster = new SimCluster();
  const first = await cluster.leader();
  assert.equal(
    first.driver!.bootstrap({ store: { id: 1n, address: "s1" }, region: firstRegion(1n) }),
    null,
  );
  const firstBatch = first.driver!.tso(1);
  assert.ok(!(firstBatch instanceof PdError));
  await committed(cluster, first, null);
  // A write whose answer waits for its commit, then the leader is cut off before it commits.
  assert.equal(first.driver!.putStore({ id: 9n, address: "s9" }), null);
  const waiting = first.barrier();
  assert.ok(waiting !== null);
  cluster.down.add(first.id); // no messages in or out, but it keeps ticking below
  const settled: { outcome: PdError | null | "pending" } = { outcome: "pending" };
  waiting.then((value) => settled.outcome = value);
  for (let tick = 0; tick < MAX_TICKS && settled.outcome === "pending"; tick++) {
    cluster.clock.nowMs += TICK_MS;
    first.tick(); // check-quorum: it steps down on its own
    await cluster.step();
  }
  const { outcome } = settled;
  assert.ok(outcome instanceof PdError && outcome.code === "NotLeader", String(outcome));
  assert.equal(first.driver, null);
  const second = await cluster.leader();
  const later = second.driver!.tso(1);
  assert.ok(!(later instanceof PdError) && later.first > firstBatch.last);
});

Deno.test("PD members: a member that was down catches up from the log", async () => {
  const cluster = new SimCluster();
  const leader = await cluster.leader();
  const lagging = IDS.find((id) => id !== leader.id)!;
  await cluster.kill(lagging);
  const driver = leader.driver!;
  assert.equal(
    driver.bootstrap({ store: { id: 1n, address: "s1" }, region: firstRegion(1n) }),
    null,
  );
  for (let i = 0; i < 20; i++) {
    await committed(
      cluster,
      leader,
      driver.putStore({ id: 10n + BigInt(i), address: `store-${i}` }),
    );
  }
  const member = cluster.start(lagging);
  await cluster.until(
    "the restarted member applied the stores",
    () => member.state.scan("store/").length === 21,
  );
  assert.equal(member.status().firstIndex, 1n, "no compaction happened: caught up from the log");
});

Deno.test("PD members: a member behind the compacted log catches up from a snapshot", async () => {
  const cluster = new SimCluster({ logCompactEntries: 20, logKeepEntries: 5 });
  const leader = await cluster.leader();
  const lagging = IDS.find((id) => id !== leader.id)!;
  await cluster.kill(lagging);
  const driver = leader.driver!;
  assert.equal(
    driver.bootstrap({ store: { id: 1n, address: "s1" }, region: firstRegion(1n) }),
    null,
  );
  for (let i = 0; i < 60; i++) {
    await committed(
      cluster,
      leader,
      driver.putStore({ id: 10n + BigInt(i), address: `store-${i}` }),
    );
  }
  assert.ok(leader.status().firstIndex > 2n, "the leader compacted its log");
  const member = cluster.start(lagging);
  await cluster.until(
    "the restarted member installed the snapshot",
    () => member.state.scan("store/").length === 61,
  );
  assert.ok(member.status().firstIndex > 2n, "it began past the compacted entries");
  // A restart of that member from its engine finds the snapshot and the log after it.
  await cluster.kill(lagging);
  const again = cluster.start(lagging);
  assert.equal(again.state.scan("store/").length, 61);
  assert.equal(again.status().applied, member.status().applied);
});

Deno.test("PD members: all members restarted keep the state and the TSO goes on above", async () => {
  const cluster = new SimCluster();
  const leader = await cluster.leader();
  assert.equal(
    leader.driver!.bootstrap({ store: { id: 1n, address: "s1" }, region: firstRegion(1n) }),
    null,
  );
  const before = await timestamps(cluster, leader, 10);
  const clusterId = leader.clusterId;
  for (const id of IDS) await cluster.kill(id);
  cluster.clock.nowMs -= 60_000; // the wall clock even stepped back
  for (const id of IDS) cluster.start(id);
  const next = await cluster.leader();
  assert.equal(next.clusterId, clusterId);
  assert.ok(next.driver!.isBootstrapped());
  const after = await timestamps(cluster, next, 10);
  assertIncreasing([...before, ...after]);
});

Deno.test("PD members: a new leader serves only after applying what the old one committed (its last TSO window)", async () => {
  const cluster = new SimCluster();
  const first = await cluster.leader();
  assert.equal(
    first.driver!.bootstrap({ store: { id: 1n, address: "s1" }, region: firstRegion(1n) }),
    null,
  );
  const handedOut = await timestamps(cluster, first, 5);
  // The clock jumps: the next timestamp needs a new TSO window, saved at the next index.
  cluster.clock.nowMs += 60_000;
  const windowIndex = first.status().lastIndex + 1n;
  // The followers receive the window's entry and acknowledge it, but never hear that it
  // committed: the leader's messages announcing it are lost, then the leader dies.
  cluster.deliverable = (message) => message.from !== first.id || message.commit < windowIndex;
  const jumped = await committed(cluster, first, first.driver!.tso(1));
  assert.ok(!(jumped instanceof PdError));
  handedOut.push(jumped.first);
  for (const member of cluster.members.values()) {
    if (member !== first) assert.ok(member.status().applied < windowIndex, "followers lag");
  }
  await cluster.kill(first.id);
  cluster.deliverable = null;
  cluster.clock.nowMs -= 60_000; // the new leader's clock is where it was before the jump
  const second = await cluster.leader();
  handedOut.push(...await timestamps(cluster, second, 5));
  assertIncreasing(handedOut);
});

Deno.test("PD members: an engine holding a single PD's state is refused, naming why", async () => {
  const engine = new MemoryEngine();
  const single = new EngineStorage({ engine });
  PlacementDriver.open({
    storage: single,
    clock: { nowMs: () => START_MS },
    random: new SeededRandom(SEED),
  });
  assert.throws(
    () =>
      PdMember.open({
        id: 1n,
        voters: IDS,
        engine,
        clock: { nowMs: () => START_MS },
        random: new SeededRandom(SEED),
        transport: { send: () => {} },
      }),
    /holds the state of a single PD member/,
  );
  await Promise.resolve();
});

// --- Soft region writes (design 6) -------------------------------------------------------------

/** Region `100 + index`: the key range [r<index>, r<index+1>), one voter on store 1. */
function splitRegion(index: number, version = 2n): RegionMeta {
  const key = (i: number) => new TextEncoder().encode(`r${String(i).padStart(6, "0")}`);
  const id = 100n + BigInt(index);
  return {
    id,
    startKey: key(index),
    endKey: key(index + 1),
    regionEpoch: { confVer: 1n, version },
    peers: [{ id: 10_000n + id, storeId: 1n, role: "Voter" }],
  };
}

/** A heartbeat of `region` from its only peer; its answer. */
function heartbeat(member: PdMember, region: RegionMeta) {
  return member.driver!.regionHeartbeat({ region, leader: region.peers[0]!, term: 5n });
}

/** A serving leader of a bootstrapped cluster, its bootstrap committed. */
async function bootstrapped(cluster: SimCluster): Promise<PdMember> {
  const leader = await cluster.leader();
  const answer = leader.driver!.bootstrap({
    store: { id: 1n, address: "s1" },
    region: firstRegion(1n),
  });
  await committed(cluster, leader, answer);
  return leader;
}

Deno.test("PD members: heartbeats arriving together share Raft entries, and their answers wait for no commit", async () => {
  const cluster = new SimCluster();
  const leader = await bootstrapped(cluster);
  const before = leader.status().lastIndex;
  const count = 2 * PD_REGION_WRITES_BATCH_MAX + 500;
  for (let i = 0; i < count; i++) {
    assert.equal(heartbeat(leader, splitRegion(i)), null);
    // The edge answers once this settles: no promise means the answer leaves at once.
    assert.equal(leader.barrier(), null, `heartbeat ${i}'s answer waits for a commit`);
  }
  await leader.settled(); // its log persisted what it proposed (no message delivered yet)
  const proposed = Number(leader.status().lastIndex - before);
  assert.equal(proposed, 2, "full batches are proposed at once, the rest waits for a tick");
  // The first heartbeat also deleted the bootstrap region, which every new one overlaps.
  assert.equal(leader.status().bufferedWrites, count + 1 - 2 * PD_REGION_WRITES_BATCH_MAX);
  const follower = [...cluster.members.values()].find((m) => m !== leader)!;
  assert.equal(follower.state.scan("region/").length, 1, "nothing committed without the network");
  await cluster.step(); // one tick: the last, partial batch is proposed; the network commits all
  await cluster.until(
    "a follower applied every region",
    () => follower.state.scan("region/").length === count,
  );
  const entries = Number(leader.status().lastIndex - before);
  assert.equal(entries, 3, `${count} heartbeats made ${entries} entries`);
  assert.equal(leader.status().bufferedWrites, 0);
});

Deno.test("PD members: a hard write carries the buffered region writes in its entry, and its answer waits", async () => {
  const cluster = new SimCluster();
  const leader = await bootstrapped(cluster);
  for (let i = 0; i < 10; i++) assert.equal(heartbeat(leader, splitRegion(i)), null);
  assert.equal(leader.barrier(), null);
  const before = leader.status().lastIndex;
  assert.equal(leader.driver!.putStore({ id: 4n, address: "s4" }), null);
  const waiting = leader.barrier();
  assert.ok(waiting !== null, "a store's write is answered once committed");
  await leader.settled();
  assert.equal(leader.status().lastIndex, before + 1n, "one entry: the regions, then the store");
  await cluster.settle();
  assert.equal(await waiting, null);
  const follower = [...cluster.members.values()].find((m) => m !== leader)!;
  await cluster.until(
    "a follower applied the store",
    () => follower.state.scan("store/").length === 2,
  );
  assert.equal(follower.state.scan("region/").length, 10, "the regions before it came with it");
});

Deno.test("PD members: past PD_RAFT_UNCOMMITTED_MAX_ENTRIES proposals in flight, answers wait for the log", async () => {
  const cluster = new SimCluster();
  const leader = await bootstrapped(cluster);
  // Nothing commits (no append is acknowledged); heartbeats still keep the leader's quorum.
  cluster.deliverable = (message) => message.msgType !== MessageType.MsgAppendResponse;
  let index = 0;
  for (let entry = 0; entry <= PD_RAFT_UNCOMMITTED_MAX_ENTRIES; entry++) {
    assert.equal(leader.barrier(), null, `answers wait already after ${entry} entries`);
    heartbeat(leader, splitRegion(index++));
    await cluster.step(); // a tick proposes the one buffered write as its own entry
  }
  const waiting = leader.barrier();
  assert.ok(waiting !== null, "the leader's log is too far behind: answers wait");
  cluster.deliverable = null;
  await cluster.step();
  assert.equal(await waiting, null);
  assert.equal(leader.barrier(), null);
});

Deno.test("PD members: a new leader misses the last region batch; heartbeats repair it and an operator made on the stale view is cancelled", async () => {
  const cluster = new SimCluster();
  const first = await bootstrapped(cluster);
  await committed(cluster, first, first.driver!.putStore({ id: 4n, address: "s4" }));
  for (let i = 0; i < 5; i++) heartbeat(first, splitRegion(i));
  await cluster.step(); // the batch is proposed and committed
  // Region 102 splits (version 3) and region 200 is new: buffered, then the leader dies.
  const changed = splitRegion(2, 3n);
  const born = { ...splitRegion(100), id: 200n };
  assert.equal(heartbeat(first, changed), null);
  assert.equal(heartbeat(first, born), null);
  assert.equal(first.barrier(), null);
  await cluster.kill(first.id);

  const second = await cluster.leader();
  const driver = second.driver!;
  const known = driver.getRegionById(changed.id);
  assert.ok(
    known !== null && !(known instanceof PdError),
    "the committed batch is the new leader's",
  );
  assert.equal(known.meta.regionEpoch.version, 2n, "the lost batch's view is not");
  assert.equal(known.leader, null, "no leader until a heartbeat: no scheduler acts on it");
  assert.equal(driver.getRegionById(born.id), null);
  assert.equal(driver.instructionFor(changed.id), null);
  // An operator made on the stale view is bound to its epoch ...
  const op = driver.addOperator({ action: "add-peer", regionId: changed.id, storeId: 4n });
  assert.ok(!(op instanceof PdError), String(op));
  assert.equal(op.regionEpoch.version, 2n);

  // ... and the region's next heartbeat, at its real epoch, cancels it and updates the region.
  assert.equal(heartbeat(second, changed), null, "no step of a stale operator is sent");
  const ended = driver.getOperator(changed.id);
  assert.ok(!(ended instanceof PdError) && ended.status === "CANCEL", Deno.inspect(ended));
  assert.equal(heartbeat(second, born), null);
  for (const region of [changed, born]) {
    const now = driver.getRegionById(region.id);
    assert.ok(now !== null && !(now instanceof PdError) && now.leader !== null);
    assert.equal(now.meta.regionEpoch.version, region.regionEpoch.version);
  }
  // A heartbeat older than what PD knows changes nothing.
  const stale = heartbeat(second, splitRegion(2, 2n));
  assert.ok(stale instanceof PdError && stale.code === "StaleRegion", String(stale));
  const after = driver.getRegionById(changed.id);
  assert.ok(after !== null && !(after instanceof PdError));
  assert.equal(after.meta.regionEpoch.version, 3n);
  // The repaired regions reach the group's state with the next batch.
  await cluster.step();
  const follower = [...cluster.members.values()].find((m) =>
    m !== second && !cluster.down.has(m.id)
  )!;
  const stored = (id: bigint) => {
    const text = follower.state.get(regionKey(id));
    return text === null ? null : decodeRegion(regionKey(id), text);
  };
  await cluster.until(
    "a follower applied the repaired regions",
    () => stored(born.id) !== null && stored(changed.id)?.regionEpoch.version === 3n,
  );
});

Deno.test("PD members: a log past logCompactBytes of entries is compacted, however few its entries", async () => {
  const cluster = new SimCluster({ logCompactBytes: 100_000, logKeepEntries: 1 });
  const leader = await bootstrapped(cluster);
  assert.equal(leader.status().firstIndex, 1n);
  const entries = 3;
  for (let i = 0; i < entries * PD_REGION_WRITES_BATCH_MAX; i++) heartbeat(leader, splitRegion(i));
  await cluster.step();
  const follower = [...cluster.members.values()].find((m) => m !== leader)!;
  await cluster.until(
    "a follower applied every region",
    () => follower.state.scan("region/").length === entries * PD_REGION_WRITES_BATCH_MAX,
  );
  for (const member of [leader, follower]) {
    const { firstIndex, lastIndex } = member.status();
    assert.ok(lastIndex - firstIndex < 3n, `member ${member.id} keeps ${firstIndex}..${lastIndex}`);
    assert.ok(lastIndex < 2n * BigInt(entries) + 3n, "few entries, yet compacted");
  }
});

Deno.test("PD members: a leader cut off stops handing out timestamps (its lease lapsed) before another member may lead", async () => {
  const cluster = new SimCluster();
  const first = await cluster.leader();
  await cluster.until("the leader holds its lease", () => first.leaseLapsed() === null);
  const others = [...cluster.members.values()].filter((m) => m !== first);
  // Cut off: no message to or from it, but it keeps ticking (a partition, not a crash).
  cluster.deliverable = (m) => m.from !== first.id && m.to !== first.id;
  let ticks = 0;
  let servedAfterOtherLed = false;
  for (; ticks < MAX_TICKS; ticks++) {
    await cluster.step();
    const otherLeads = others.some((m) => m.status().role === StateRole.Leader);
    if (otherLeads) {
      assert.ok(first.leaseLapsed() !== null, `tick ${ticks}: another leads, the lease holds`);
      servedAfterOtherLed ||= first.driver !== null;
    }
    if (otherLeads && first.driver === null) break;
  }
  assert.ok(ticks < MAX_TICKS, "another member leads and the cut-off one stepped down");
  const lapsed = first.leaseLapsed();
  assert.ok(lapsed instanceof PdError && lapsed.code === "NotLeader", String(lapsed));
  // The race the lease closes is there: check-quorum had not yet deposed it when another led.
  assert.ok(servedAfterOtherLed, "the cut-off leader still had its core when another led");
});
