/**
 * The raftstore of a region-group worker over the memory engine: writes go through the log
 * (entry in CF raft, applied state advanced, data in place), a restart replays from disk, the
 * write path copies what it is handed, a replica that does not lead refuses with the leader it
 * knows, a fenced engine refuses before anything enters the log, and the real-time driver never
 * stalls between writes.
 */
import assert from "node:assert/strict";
import { metapb } from "../../proto/mod.ts";
import { ConfChangeType } from "../raft/mod.ts";
import { MemoryEngine } from "../engine/memory_engine.ts";
import { applyStateKey, raftLogRange } from "../raftstore/keys.ts";
import { RegionWriteError } from "../raftstore/errors.ts";
import { decodeRaftApplyState, PeerState } from "../raftstore/local_state.ts";
import { LOCAL_CF, writeRegionState } from "../raftstore/region_state.ts";
import type { Modification } from "../storage/modification.ts";
import { utf8 } from "../util/bytes.ts";
import { standaloneRegion } from "./region.ts";
import { bootstrapRegions, recordedRegions } from "./store_regions.ts";
import { WorkerRaftstore } from "./worker_raftstore.ts";

const WAIT_MS = 5_000;

function put(key: string, value: Uint8Array | string): Modification {
  return {
    type: "put",
    cf: "default",
    key: utf8(key),
    value: typeof value === "string" ? utf8(value) : value,
  };
}

function open(engine: MemoryEngine, options: { refusal?: () => Error | null } = {}) {
  const bugs: unknown[] = [];
  const raftstore = new WorkerRaftstore({
    storeId: 1n,
    engine,
    regionIds: new Set([1n]),
    send: () => {},
    onBug: (error) => bugs.push(error),
    refusal: options.refusal,
  });
  return { raftstore, bugs };
}

async function until(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** `promise`, or a failure naming `what` after WAIT_MS: a stalled driver fails, never hangs. */
async function within<T>(what: string, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), WAIT_MS);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

function appliedIndex(engine: MemoryEngine): bigint {
  const key = applyStateKey(1n);
  return decodeRaftApplyState(engine.get(LOCAL_CF, key)!, { regionId: 1n, key }).appliedIndex;
}

function logEntries(engine: MemoryEngine): number {
  const range = raftLogRange(1n);
  using it = engine.iterator(LOCAL_CF, { lowerBound: range.start, upperBound: range.end });
  let count = 0;
  for (it.seekToFirst(); it.valid(); it.next()) count++;
  return count;
}

Deno.test("a standalone store's write goes through the log: an entry, the applied index, the data", async () => {
  const engine = new MemoryEngine();
  await bootstrapRegions(engine, [standaloneRegion()]);
  const { raftstore, bugs } = open(engine);
  try {
    await until("the lone voter to lead", () => raftstore.store.peer(1n)?.leaseReadable() === true);
    const region = raftstore.regions.get(1n)!;
    const entriesBefore = logEntries(engine);
    const appliedBefore = appliedIndex(engine);
    await within("a write", raftstore.writes.write(region, [put("a", "1"), put("b", "2")]));
    assert.equal(logEntries(engine), entriesBefore + 1, "one entry for one write");
    assert.equal(appliedIndex(engine), appliedBefore + 1n);
    assert.equal(new TextDecoder().decode(engine.get("default", utf8("b"))!), "2");
    assert.equal(raftstore.gate(region), null, "the leader under its lease reads at once");
    assert.deepEqual(bugs, []);
  } finally {
    await raftstore.stop();
  }
});

Deno.test("the driver never stalls: writes spaced by idle gaps and in bursts all settle", async () => {
  const engine = new MemoryEngine();
  await bootstrapRegions(engine, [standaloneRegion()]);
  const { raftstore } = open(engine);
  try {
    await until("the lone voter to lead", () => raftstore.store.peer(1n)?.leaseReadable() === true);
    const region = raftstore.regions.get(1n)!;
    for (let i = 0; i < 5; i++) {
      await within("a write", raftstore.writes.write(region, [put(`gap${i}`, "v")]));
      await new Promise((resolve) => setTimeout(resolve, 3));
    }
    const burst = Array.from(
      { length: 200 },
      (_, i) => raftstore.writes.write(region, [put(`b${i}`, "v")]),
    );
    await within("a burst of writes", Promise.all(burst));
    assert.notEqual(engine.get("default", utf8("b199")), null);
  } finally {
    await raftstore.stop();
  }
});

Deno.test("a restarted worker replays from disk: data, applied index and leadership come back", async () => {
  const engine = new MemoryEngine();
  await bootstrapRegions(engine, [standaloneRegion()]);
  const first = open(engine).raftstore;
  await until("the lone voter to lead", () => first.store.peer(1n)?.isLeader() === true);
  await within("a write", first.writes.write(first.regions.get(1n)!, [put("kept", "yes")]));
  const applied = appliedIndex(engine);
  await first.stop();
  const second = open(engine).raftstore;
  try {
    assert.deepEqual(recordedRegions(engine, 1n).map((r) => r.id), [1n]);
    await until("the lone voter to lead again", () => second.store.peer(1n)?.isLeader() === true);
    assert.ok(second.store.peer(1n)!.appliedIndex() >= applied);
    await within(
      "a write",
      second.writes.write(second.regions.get(1n)!, [put("after", "restart")]),
    );
    assert.equal(new TextDecoder().decode(engine.get("default", utf8("kept"))!), "yes");
  } finally {
    await second.stop();
  }
});

Deno.test("the write path copies keys and values on call: a buffer reused at once changes nothing", async () => {
  const engine = new MemoryEngine();
  await bootstrapRegions(engine, [standaloneRegion()]);
  const { raftstore } = open(engine);
  try {
    await until("the lone voter to lead", () => raftstore.store.peer(1n)?.leaseReadable() === true);
    const value = utf8("original");
    const written = raftstore.writes.write(raftstore.regions.get(1n)!, [put("k", value)]);
    value.fill(0x7a); // "zzzzzzzz", before the round that proposes the write
    await within("the write", written);
    assert.equal(new TextDecoder().decode(engine.get("default", utf8("k"))!), "original");
  } finally {
    await raftstore.stop();
  }
});

Deno.test("a fenced engine refuses a write before it enters the log", async () => {
  const engine = new MemoryEngine();
  await bootstrapRegions(engine, [standaloneRegion()]);
  let fenced = false;
  const { raftstore } = open(engine, {
    refusal: () => fenced ? new Error("disk almost full") : null,
  });
  try {
    await until("the lone voter to lead", () => raftstore.store.peer(1n)?.leaseReadable() === true);
    const region = raftstore.regions.get(1n)!;
    const entries = logEntries(engine);
    fenced = true;
    let released = 0;
    await assert.rejects(
      raftstore.writes.write(region, [put("x", "1")], { release: () => released++ }),
      /disk almost full/,
    );
    assert.equal(released, 1, "the latches are given back");
    assert.equal(logEntries(engine), entries, "nothing was proposed");
    fenced = false;
    await within("a write", raftstore.writes.write(region, [put("x", "1")]));
  } finally {
    await raftstore.stop();
  }
});

Deno.test("a replica that does not lead refuses reads and writes with NotLeader", async () => {
  const engine = new MemoryEngine();
  // Region 1 with two voters, the other on store 2 (never started): store 1 cannot win alone.
  await bootstrapRegions(engine, [standaloneRegion()]);
  const batch = engine.newWriteBatch();
  writeRegionState(batch, {
    state: PeerState.Normal,
    region: {
      id: 1n,
      startKey: new Uint8Array(0),
      endKey: new Uint8Array(0),
      regionEpoch: { confVer: 2n, version: 1n },
      peers: [
        { id: 2n, storeId: 1n, role: metapb.PeerRole.Voter },
        { id: 3n, storeId: 2n, role: metapb.PeerRole.Voter },
      ],
    },
  });
  engine.write(batch);
  batch.destroy();
  const { raftstore } = open(engine);
  try {
    const region = raftstore.regions.get(1n)!;
    assert.equal(region.confVer, 2n);
    const refused = await raftstore.gate(region);
    assert.equal(refused?.code, "NotLeader");
    const error = await within(
      "a write",
      raftstore.writes.write(region, [put("x", "1")]).then(
        () => null,
        (e) => e,
      ),
    );
    assert.ok(error instanceof RegionWriteError, String(error));
    assert.equal(error.error.code, "NotLeader");
  } finally {
    await raftstore.stop();
  }
});

Deno.test("a new leader's max_ts is unsynced until a PD timestamp for its term arrives (clustered)", async () => {
  const engine = new MemoryEngine();
  await bootstrapRegions(engine, [standaloneRegion()]);
  const asked: [bigint, bigint][] = [];
  const raftstore = new WorkerRaftstore({
    storeId: 1n,
    engine,
    regionIds: new Set([1n]),
    send: () => {},
    onBug: (error) => {
      throw error;
    },
    requestMaxTs: (regionId, term) => asked.push([regionId, term]),
  });
  try {
    await until("the lone voter to lead", () => raftstore.store.peer(1n)?.leaseReadable() === true);
    assert.equal(asked.length, 1, "one request for the term it leads in");
    const [regionId, term] = asked[0]!;
    assert.equal(regionId, 1n);
    assert.equal(raftstore.maxTsSynced(1n), false);
    raftstore.maxTsFetched(1n, term - 1n); // an answer for an older term changes nothing
    assert.equal(raftstore.maxTsSynced(1n), false);
    raftstore.maxTsFetched(1n, term);
    assert.equal(raftstore.maxTsSynced(1n), true);
  } finally {
    await raftstore.stop();
  }
});

Deno.test("a leader whose range grew by a merge is unsynced until a PD timestamp asked after the merge arrives (TiKV's on_ready_commit_merge; sim bank seed 67)", async () => {
  // Two lone-voter regions on store 1: [, m) and [m, ). The right one merges into the left; the
  // left's leader keeps its term, but reads of [m, ) were served by the right's leader (on
  // another store in a real cluster), so max_ts must rise past them before a 1PC commit ts.
  const engine = new MemoryEngine();
  const region = (id: bigint, startKey: string, endKey: string) => ({
    id,
    startKey: utf8(startKey),
    endKey: utf8(endKey),
    confVer: 1n,
    version: 1n,
    peerId: id + 100n,
    storeId: 1n,
  });
  await bootstrapRegions(engine, [region(1n, "", "m"), region(3n, "m", "")]);
  const asked: [bigint, bigint][] = [];
  const raftstore = new WorkerRaftstore({
    storeId: 1n,
    engine,
    regionIds: new Set([1n, 3n]),
    send: () => {},
    onBug: (error) => {
      throw error;
    },
    requestMaxTs: (regionId, term) => asked.push([regionId, term]),
  });
  try {
    await until(
      "both lone voters to lead",
      () => [1n, 3n].every((id) => raftstore.store.peer(id)?.leaseReadable() === true),
    );
    assert.deepEqual(asked.map(([id]) => id).sort(), [1n, 3n]);
    for (const [id, term] of asked.splice(0)) raftstore.maxTsFetched(id, term);
    assert.ok(raftstore.maxTsSynced(1n) && raftstore.maxTsSynced(3n));
    const term = raftstore.store.peer(1n)!.raw.raft.term;
    const outcome = await within(
      "PrepareMerge",
      new Promise<string>((resolve) =>
        raftstore.operator(3n, { merge: { target: raftstore.store.peer(1n)!.region() } }, resolve)
      ),
    );
    assert.equal(outcome, "merge prepared");
    await until(
      "the merge to commit into region 1",
      () => raftstore.regions.get(1n)?.endKey.length === 0 && !raftstore.regions.has(3n),
    );
    assert.equal(raftstore.store.peer(1n)!.raw.raft.term, term, "the target kept its term");
    assert.deepEqual(asked, [[1n, term]], "a timestamp asked for the merged region");
    assert.equal(raftstore.maxTsSynced(1n), false);
    raftstore.maxTsFetched(1n, term);
    assert.equal(raftstore.maxTsSynced(1n), true);
  } finally {
    await raftstore.stop();
  }
});

Deno.test("without a PD (standalone) max_ts needs no sync", async () => {
  const engine = new MemoryEngine();
  await bootstrapRegions(engine, [standaloneRegion()]);
  const { raftstore } = open(engine);
  try {
    await until("the lone voter to lead", () => raftstore.store.peer(1n)?.leaseReadable() === true);
    assert.equal(raftstore.maxTsSynced(1n), true);
  } finally {
    await raftstore.stop();
  }
});

Deno.test("a PD operator on the leader goes through the log: add a learner, the region (and its epoch) changes and is reported", async () => {
  const engine = new MemoryEngine();
  await bootstrapRegions(engine, [standaloneRegion()]);
  const reported: bigint[][] = [];
  const sent: RaftEnvelopeLike[] = [];
  const raftstore = new WorkerRaftstore({
    storeId: 1n,
    engine,
    regionIds: new Set([1n]),
    send: (envelopes) => sent.push(...envelopes),
    onBug: (error) => {
      throw error;
    },
    onRegionsChanged: (changed) => {
      for (const region of changed) reported.push((region.peers ?? []).map((p) => p.id));
    },
  });
  try {
    await until("the lone voter to lead", () => raftstore.store.peer(1n)?.leaseReadable() === true);
    const outcome = await within(
      "the operator",
      new Promise<string>((resolve) =>
        raftstore.operator(1n, {
          changePeer: {
            changeType: ConfChangeType.AddLearnerNode,
            peer: { id: 9n, storeId: 2n, role: metapb.PeerRole.Learner },
          },
        }, resolve)
      ),
    );
    assert.equal(outcome, "applied");
    const region = raftstore.regions.get(1n)!;
    assert.equal(region.confVer, 2n);
    assert.deepEqual(region.peers?.map((p) => [p.id, p.storeId]), [[2n, 1n], [9n, 2n]]);
    assert.deepEqual(reported.at(-1), [2n, 9n], "the change was reported to the main thread");
    await until("a message to the new learner", () => sent.some((e) => e.toPeer.id === 9n));
    // A follower (or a region not here) does nothing.
    const refused = await new Promise<string>((resolve) =>
      raftstore.operator(5n, { transferLeader: { peerId: 9n } }, resolve)
    );
    assert.equal(refused, "not the leader here");
  } finally {
    await raftstore.stop();
  }
});

type RaftEnvelopeLike = { toPeer: { id: bigint } };
