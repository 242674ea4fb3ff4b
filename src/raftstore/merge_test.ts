/**
 * Region merge at the raftstore level over the harness (issue #12 item 2, TiKV's protocol):
 * PrepareMerge on the source, CommitMerge on the target (proposed by the store where the
 * target leads, carrying the source's entries after the merge's min index), the source's
 * replicas Tombstone with their data kept as the target's, RollbackMerge when the target moved
 * on, a lagging source replica caught up by the entries CommitMerge carries, and the merged
 * region surviving restarts.
 */
import assert from "node:assert/strict";
import { metapb, raft_cmdpb } from "../../proto/mod.ts";
import { decodeCommand, writeCommand } from "./command.ts";
import { PeerState } from "./local_state.ts";
import type { Peer } from "./peer.ts";
import type { PeerConfig } from "./peer_config.ts";
import { readRegionState } from "./region_state.ts";
import { Cluster, ConfChangeType, FIRST_REGION_ID, put, replacer } from "./testing/cluster.ts";
import { dropWhen } from "./testing/memory_transport.ts";

const COMPACT_LOG = raft_cmdpb.AdminCmdType.CompactLog;
const show = (value: unknown) => JSON.stringify(value, replacer);
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** Three stores, one region split at m: [, m) is FIRST_REGION_ID, [m, ) the returned id. */
async function splitCluster(
  seed: number,
  config?: Partial<PeerConfig>,
): Promise<{ c: Cluster; right: bigint }> {
  const c = await Cluster.start({ storeCount: 3, seed, config });
  for (const k of ["a", "f", "p", "x"]) await c.mustPut(k, `v-${k}`);
  const result = await c.split(["m"]);
  assert.ok(result.ok, show(result));
  const right = result.ok ? result.adminResponse!.splits!.regions![1]!.id! : 0n;
  await c.waitLeader(right);
  return { c, right };
}

Deno.test("a merge of [m, +inf) into [, m): the target covers every key on every store, the source is Tombstone with its data kept, and writes to the merged range apply (seed 71)", async () => {
  const { c, right } = await splitCluster(71);
  const prepared = await c.prepareMerge("p", "a");
  assert.ok(prepared.ok, show(prepared));
  await c.waitUntil(
    "every store merged",
    () =>
      c.storeIds.every((s) =>
        c.store(s).peer(right) === undefined &&
        c.store(s).peer(FIRST_REGION_ID)?.region().endKey.length === 0
      ),
  );
  for (const s of c.storeIds) {
    const target = c.store(s).peer(FIRST_REGION_ID)!.region();
    assert.equal(text(target.startKey), "");
    assert.equal(target.regionEpoch.version, 4n, "max(3 after prepare, 2) + 1");
    assert.equal(readRegionState(c.engine(s), right)?.state, PeerState.Tombstone);
    assert.equal(c.valueOn(s, "p"), "v-p", "the source's data is the target's now");
  }
  assert.equal(c.regionOfKey("x"), FIRST_REGION_ID);
  for (const k of ["a", "f", "p", "x"]) {
    const got = await c.get(k);
    assert.ok(got.ok && got.value === `v-${k}`, `${k}: ${show(got)}`);
  }
  await c.mustPut("q", "after-merge");
  for (const s of c.storeIds) {
    await c.waitUntil(`store ${s} applied the write`, () => c.valueOn(s, "q") === "after-merge");
  }
  // The merged region is what every store rebuilds after a restart.
  for (const s of c.storeIds) c.crash(s);
  for (const s of c.storeIds) c.restart(s);
  await c.waitLeader(FIRST_REGION_ID);
  const got = await c.get("x");
  assert.ok(got.ok && got.value === "v-x", show(got));
  assert.ok(c.storeIds.every((s) => c.store(s).peer(right) === undefined));
});

Deno.test("a merging source refuses writes and reads (ServerIsBusy) until the merge ends; a write proposed under the epoch before PrepareMerge is refused (seed 73)", async () => {
  const { c, right } = await splitCluster(73);
  const leader = await c.waitLeader(right);
  const before = leader.region();
  // The target's group cannot commit anything: CommitMerge waits, the source stays Merging.
  const block = c.transport.addFilter(
    dropWhen("target messages", (e) => e.regionId === FIRST_REGION_ID),
  );
  const prepared = await c.prepareMerge("p", "a");
  assert.ok(prepared.ok, show(prepared));
  const source = c.store(leader.meta.storeId).peer(right)!;
  assert.ok(source.isMerging());
  // The command path's fast gate (`readGate`) asks the lease first: a merging source leader
  // holding its lease still reads nothing under it.
  await c.waitUntil("the source leader's lease", () => source.raw.raft.leaseValid());
  assert.ok(source.isLeader() && !source.leaseReadable(), "a merging source reads nothing");
  const write = await c.propose(
    leader.meta.storeId,
    writeCommand(source.region(), source.meta, [put("p", "during")]),
  );
  assert.ok(!write.ok && write.error.code === "ServerIsBusy", show(write));
  const read = await c.get("p");
  assert.ok(!read.ok && read.error.code === "ServerIsBusy", show(read));
  const stale = await c.propose(
    leader.meta.storeId,
    writeCommand(before, leader.meta, [put("p", "stale")]),
  );
  assert.ok(!stale.ok && stale.error.code !== "StaleCommand", show(stale));
  c.transport.removeFilter(block);
  await c.waitUntil(
    "the merge ended",
    () => c.storeIds.every((s) => c.store(s).peer(right) === undefined),
  );
  for (const s of c.storeIds) assert.equal(c.valueOn(s, "p"), "v-p");
});

Deno.test("a source replica cut off while the source prepares is caught up by the entries CommitMerge carries: its store has every write of the source (seed 79)", async () => {
  const { c, right } = await splitCluster(79);
  const leader = await c.waitLeader(right);
  const lagging = c.storeIds.find((s) => s !== leader.meta.storeId)!;
  // The lagging store hears nothing of the source region: its writes and its PrepareMerge.
  const cut = c.transport.addFilter(
    dropWhen(
      "source messages to the lagging store",
      (e) => e.regionId === right && e.toPeer.storeId === lagging,
    ),
  );
  await c.mustPut("r", "late-write");
  // PrepareMerge needs every peer's log known: the lagging one's match is behind its last
  // write, but PrepareMerge's min index is that match, so the leader can still prepare.
  const prepared = await c.prepareMerge("p", "a");
  assert.ok(prepared.ok, show(prepared));
  await c.waitUntil(
    "the target merged on the lagging store",
    () =>
      c.store(lagging).peer(right) === undefined &&
      c.store(lagging).peer(FIRST_REGION_ID)?.region().endKey.length === 0,
  );
  c.transport.removeFilter(cut);
  assert.equal(c.valueOn(lagging, "r"), "late-write", "caught up through CommitMerge's entries");
  assert.equal(readRegionState(c.engine(lagging), right)?.state, PeerState.Tombstone);
});

Deno.test("a merge whose target split after the source's leader last saw it is rolled back: the source serves again with a newer version, and the target is untouched (seed 83)", async () => {
  const { c, right } = await splitCluster(83);
  const seen = c.peers(FIRST_REGION_ID).find((p) => p.isInitialized())!.region();
  // The target splits; the merge is then prepared against the target as it was before.
  const split = await c.split(["c"]);
  assert.ok(split.ok, show(split));
  await c.waitUntil(
    "every store applied the split",
    () => c.storeIds.every((s) => text(c.store(s).peer(FIRST_REGION_ID)!.region().endKey) === "c"),
  );
  const prepared = await c.prepareMerge("p", seen);
  assert.ok(prepared.ok, show(prepared));
  await c.waitUntil("the source is Normal again on every store", () =>
    c.storeIds.every((s) => {
      const p = c.store(s).peer(right);
      return p !== undefined && !p.isMerging();
    }));
  for (const s of c.storeIds) {
    const source = c.store(s).peer(right)!.region();
    assert.equal(source.regionEpoch.version, 4n, "2, +1 at PrepareMerge, +1 at RollbackMerge");
    // The split left the target [, c) (the harness splits without right-derive).
    assert.equal(text(c.store(s).peer(FIRST_REGION_ID)!.region().endKey), "c");
  }
  await c.mustPut("q", "after-rollback");
  assert.equal(c.regionOfKey("q"), right);
  const got = await c.get("p");
  assert.ok(got.ok && got.value === "v-p", show(got));
});

Deno.test("a CommitMerge whose source replica runs in another group of the store waits (nothing applied from it on) until that replica is opened here, then merges (seed 89)", async () => {
  const { c, right } = await splitCluster(89);
  await c.waitLeader(FIRST_REGION_ID);
  const sourceLeader = await c.waitLeader(right);
  const targetLeader = c.leader(FIRST_REGION_ID)!;
  const other =
    c.storeIds.find((s) => s !== sourceLeader.meta.storeId && s !== targetLeader.meta.storeId) ??
      c.storeIds.find((s) => s !== targetLeader.meta.storeId)!;
  // On `other`, the source's replica leaves this store's group (as if another worker ran it).
  const store = c.store(other);
  if (store.peer(right)?.isLeader()) {
    const to = c.peers(right).find((p) => p.meta.storeId !== other)!;
    await c.transferLeader(to.meta.id);
  }
  store.closePeer(right);
  // Its messages go to the other group, not to this store's (the harness has one group a store).
  const elsewhere = c.transport.addFilter(
    dropWhen(
      "the source's messages to its other group",
      (e) => e.regionId === right && e.toPeer.storeId === other,
    ),
  );
  const prepared = await c.prepareMerge("p", "a");
  assert.ok(prepared.ok, show(prepared));
  await c.waitUntil(
    "the other stores merged",
    () => c.storeIds.filter((s) => s !== other).every((s) => c.store(s).peer(right) === undefined),
  );
  await c.tick(5);
  const waiting = store.peer(FIRST_REGION_ID)!;
  assert.equal(waiting.applyBlockedOn, right, "the target's apply waits for the source");
  assert.equal(text(waiting.region().endKey), "m", "nothing applied from the CommitMerge on");
  assert.ok(store.openPeer(right), "the source's replica runs here again");
  c.transport.removeFilter(elsewhere);
  await c.waitUntil(
    "the waiting store merged",
    () =>
      store.peer(right) === undefined && store.peer(FIRST_REGION_ID)!.region().endKey.length === 0,
  );
  assert.equal(c.valueOn(other, "x"), "v-x");
  assert.equal(readRegionState(c.engine(other), right)?.state, PeerState.Tombstone);
});

/** The index of an admin command of `cmdType` in `peer`'s log beyond its applied index, if any. */
function unappliedAdmin(
  peer: Peer | undefined,
  cmdType: raft_cmdpb.AdminCmdType,
): bigint | undefined {
  if (peer === undefined) return undefined;
  const { storage } = peer;
  const lo = storage.appliedIndex() + 1n;
  if (lo > storage.lastIndex()) return undefined;
  for (const e of storage.entries({ lo, hi: storage.lastIndex() + 1n })) {
    if (e.data.length === 0) continue;
    const admin = decodeCommand(e.data).adminRequest;
    if (admin?.cmdType === cmdType) return e.index;
  }
  return undefined;
}

Deno.test("a lagging source replica whose log holds a CompactLog it has not applied is caught up by CommitMerge: the CompactLog applies with the terms of the entries handed over, not the log's (found by the cluster simulator, seed 78)", async () => {
  const { c, right } = await splitCluster(97, { raftLogGcCountLimit: 6, raftLogGcCheckTicks: 1 });
  const leader = await c.waitLeader(right);
  const lagging = c.storeIds.find((s) => s !== leader.meta.storeId)!;
  // The lagging store gets the source's entries up to a CompactLog, then nothing more: it never
  // learns that the CompactLog committed, nor sees the PrepareMerge (the latch never opens).
  let cut = false;
  const filter = c.transport.addFilter(
    dropWhen("the source's messages to the lagging store, once it holds a CompactLog", (e) => {
      if (e.regionId !== right || e.toPeer.storeId !== lagging) return false;
      cut ||= unappliedAdmin(c.store(lagging).peer(right), COMPACT_LOG) !== undefined;
      return cut;
    }),
  );
  for (let i = 0; i < 12 && !cut; i++) await c.mustPut("r", `w${i}`);
  await c.waitUntil("the lagging store holds an unapplied CompactLog", () => cut);
  const behind = c.store(lagging).peer(right)!.storage;
  const compactAt = unappliedAdmin(c.store(lagging).peer(right), COMPACT_LOG)!;
  assert.ok(behind.appliedIndex() < compactAt, "the CompactLog is not applied there");
  const lastHeld = behind.lastIndex();
  const prepared = await c.prepareMerge("p", "a");
  assert.ok(prepared.ok, show(prepared));
  assert.ok(prepared.index > lastHeld, "the lagging replica's log lacks the PrepareMerge");
  await c.waitUntil(
    "the target merged on the lagging store",
    () =>
      c.store(lagging).peer(right) === undefined &&
      c.store(lagging).peer(FIRST_REGION_ID)?.region().endKey.length === 0,
  );
  c.transport.removeFilter(filter);
  assert.equal(readRegionState(c.engine(lagging), right)?.state, PeerState.Tombstone);
  for (const s of c.storeIds) {
    await c.waitUntil(`store ${s} holds every write`, () => c.valueOn(s, "r") !== undefined);
  }
  const last = c.valueOn(leader.meta.storeId, "r");
  assert.equal(c.valueOn(lagging, "r"), last, "the lagging store applied the source's writes");
});

Deno.test("a source leader whose own replica of the target lags behind the merge's target waits for it, never rolls back: the target's leader elsewhere commits the merge, and the lagging store merges once it hears the target again (seed 101)", async () => {
  // Source [, m) (FIRST_REGION_ID), target [m, +inf).
  const { c, right } = await splitCluster(101);
  const sourceLeader = await c.waitLeader(FIRST_REGION_ID);
  const behind = sourceLeader.meta.storeId;
  const targetLeader = await c.waitLeader(right);
  if (targetLeader.meta.storeId === behind) {
    const to = c.peers(right).find((p) => p.meta.storeId !== behind)!;
    c.store(behind).transferLeader(right, to.meta.id);
    await c.waitUntil("the target led elsewhere", () => c.leader(right)?.meta.id === to.meta.id);
  }
  // The source leader's store stops hearing the target: its target replica keeps the old epoch.
  const cut = c.transport.addFilter(
    dropWhen(
      "the target's messages to the source leader's store",
      (e) => e.regionId === right && e.toPeer.storeId === behind,
    ),
  );
  const split = await c.split(["t"]);
  assert.ok(split.ok, show(split));
  const target = c.leader(right)!.region();
  assert.equal(target.regionEpoch.version, 3n, "the target split: [m, t) now");
  assert.equal(c.store(behind).peer(right)!.region().regionEpoch.version, 2n);
  const prepared = await c.prepareMerge("a", target);
  assert.ok(prepared.ok, show(prepared));
  const others = c.storeIds.filter((s) => s !== behind);
  await c.waitUntil(
    "the other stores merged [, m) into [m, t)",
    () =>
      others.every((s) =>
        c.store(s).peer(FIRST_REGION_ID) === undefined &&
        c.store(s).peer(right)?.region().startKey.length === 0
      ),
  );
  const waiting = c.store(behind).peer(FIRST_REGION_ID)!;
  assert.ok(waiting.isMerging(), "the source here still waits for the merge, not rolled back");
  c.transport.removeFilter(cut);
  await c.waitUntil(
    "the source leader's store merged too",
    () =>
      c.store(behind).peer(FIRST_REGION_ID) === undefined &&
      c.store(behind).peer(right)?.region().startKey.length === 0,
  );
  for (const s of c.storeIds) {
    assert.equal(readRegionState(c.engine(s), FIRST_REGION_ID)?.state, PeerState.Tombstone);
    assert.equal(c.valueOn(s, "a"), "v-a");
  }
  const got = await c.get("f");
  assert.ok(got.ok && got.value === "v-f", show(got));
});

Deno.test("a lagging source replica whose log holds a split it has not applied is caught up by CommitMerge: the region the split made runs on that store too (seed 103)", async () => {
  const { c, right } = await splitCluster(103);
  const leader = await c.waitLeader(right);
  const lagging = c.storeIds.find((s) => s !== leader.meta.storeId)!;
  const split = raft_cmdpb.AdminCmdType.BatchSplit;
  // The lagging store gets the source's entries up to its split at t, then nothing more.
  let cut = false;
  const filter = c.transport.addFilter(
    dropWhen("the source's messages to the lagging store, once it holds a split", (e) => {
      if (e.regionId !== right || e.toPeer.storeId !== lagging) return false;
      cut ||= unappliedAdmin(c.store(lagging).peer(right), split) !== undefined;
      return cut;
    }),
  );
  const splitResult = await c.split(["t"]);
  assert.ok(splitResult.ok, show(splitResult));
  const made = splitResult.ok ? splitResult.adminResponse!.splits!.regions![1]!.id! : 0n;
  // It learns the split committed from the leader's next message, which the filter drops.
  await c.waitUntil("the lagging store holds the split, unapplied", () => cut);
  assert.equal(c.store(lagging).peer(made), undefined, "the split's region is not made there");
  const prepared = await c.prepareMerge("p", "a");
  assert.ok(prepared.ok, show(prepared));
  await c.waitUntil(
    "[m, t) merged into [, m) on the lagging store",
    () =>
      c.store(lagging).peer(right) === undefined &&
      text(c.store(lagging).peer(FIRST_REGION_ID)!.region().endKey) === "t",
  );
  assert.ok(c.store(lagging).peer(made)?.isInitialized(), "the split's region runs there");
  c.transport.removeFilter(filter);
  await c.mustPut("x", "after");
  await c.waitUntil(
    "the lagging store applied a write to [t, +inf)",
    () => c.valueOn(lagging, "x") === "after",
  );
  for (const s of c.storeIds) assert.equal(c.valueOn(s, "p"), "v-p");
});

Deno.test("a source replica a merge left behind — Merging, its store's target replica removed before it heard the CommitMerge — goes once a merged store answers its campaign with the merge's target, so the target can be added back on that store (found by the cluster simulator, seed 207)", async () => {
  // Target [, m) (FIRST_REGION_ID), source [m, +inf).
  const { c, right } = await splitCluster(107);
  const leaders = [await c.waitLeader(FIRST_REGION_ID), await c.waitLeader(right)];
  const behind = c.storeIds.find((s) => leaders.every((l) => l.meta.storeId !== s))!;
  const cut = c.transport.addFilter(
    dropWhen(
      "the target's messages to the store left behind",
      (e) => e.regionId === FIRST_REGION_ID && e.toPeer.storeId === behind,
    ),
  );
  const prepared = await c.prepareMerge("p", "a");
  assert.ok(prepared.ok, show(prepared));
  const others = c.storeIds.filter((s) => s !== behind);
  await c.waitUntil(
    "the other stores merged [m, +inf) into [, m)",
    () =>
      others.every((s) =>
        c.store(s).peer(right) === undefined &&
        c.store(s).peer(FIRST_REGION_ID)?.region().endKey.length === 0
      ),
  );
  await c.waitUntil(
    "the source replica left behind applied PrepareMerge",
    () => c.store(behind).peer(right)?.isMerging() === true,
  );
  // The target's replica there is removed before it hears the CommitMerge: no replica on that
  // store will ever apply it, so the source replica there stays Merging and campaigns.
  const removed = await c.changePeer(
    ConfChangeType.RemoveNode,
    c.store(behind).peer(FIRST_REGION_ID)!.meta,
  );
  assert.ok(removed.ok, show(removed));
  c.transport.removeFilter(cut);
  await c.waitUntil(
    "the source replica left behind went",
    () => c.store(behind).peer(right) === undefined,
  );
  assert.equal(readRegionState(c.engine(behind), right)?.state, PeerState.Tombstone);
  assert.equal(readRegionState(c.engine(behind), FIRST_REGION_ID)?.state, PeerState.Tombstone);
  // Its range no longer blocks a new replica of the merged region there.
  const learner = { id: c.allocPeerId(), storeId: behind, role: metapb.PeerRole.Learner };
  const added = await c.changePeer(ConfChangeType.AddLearnerNode, learner);
  assert.ok(added.ok, show(added));
  await c.waitUntil(
    "the merged region's new replica holds every key on the store left behind",
    () =>
      c.store(behind).peer(FIRST_REGION_ID)?.region().endKey.length === 0 &&
      ["a", "f", "p", "x"].every((k) => c.valueOn(behind, k) === `v-${k}`),
  );
});
