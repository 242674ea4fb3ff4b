/**
 * Region split at the raftstore level over the harness (issue #12 item 1): BatchSplit through
 * the log, the epoch's version bumped, new replicas on every store of the parent, leaders for
 * the new regions, requests that raced the split refused with EpochNotMatch, and the split
 * surviving restarts. A store that has not applied the split yet never makes a replica of a
 * new region out of the new region's messages (the overlap check): it makes it when it applies
 * the split.
 */
import assert from "node:assert/strict";
import { raft_cmdpb } from "../../proto/mod.ts";
import { utf8 } from "../util/bytes.ts";
import { writeCommand } from "./command.ts";
import { PeerState } from "./local_state.ts";
import { peerConfig } from "./peer_config.ts";
import { readRegionState } from "./region_state.ts";
import { Cluster, FIRST_REGION_ID, put, replacer } from "./testing/cluster.ts";
import { delayWhen, dropWhen } from "./testing/memory_transport.ts";

const show = (value: unknown) => JSON.stringify(value, replacer);
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

Deno.test("a split at m makes two regions on every store, each with its own leader; the parent's version goes up by one and every key reads back (seed 41)", async () => {
  const c = await Cluster.start({ storeCount: 3, seed: 41 });
  for (const k of ["a", "f", "m", "q", "z"]) await c.mustPut(k, `v-${k}`);
  const result = await c.split(["m"]);
  assert.ok(result.ok, show(result));
  const regions = result.ok ? result.adminResponse?.splits?.regions ?? [] : [];
  assert.deepEqual(regions.map((r) => [text(r.startKey!), text(r.endKey!)]), [["", "m"], [
    "m",
    "",
  ]]);
  assert.equal(regions[0]!.id, FIRST_REGION_ID, "without right-derive the parent keeps the left");
  const right = regions[1]!.id!;
  await c.waitUntil(
    "every store runs both regions",
    () =>
      c.storeIds.every((id) =>
        c.store(id).peer(FIRST_REGION_ID)?.region().regionEpoch.version === 2n &&
        c.store(id).peer(right)?.isInitialized() === true
      ),
  );
  for (const id of c.storeIds) {
    const r = c.store(id).peer(right)!.region();
    assert.equal(r.regionEpoch.version, 2n);
    assert.equal(text(r.startKey), "m");
    assert.deepEqual(r.peers.map((p) => p.storeId), [1n, 2n, 3n]);
  }
  await c.waitLeader(right);
  assert.equal(c.regionOfKey("a"), FIRST_REGION_ID);
  assert.equal(c.regionOfKey("q"), right);
  for (const k of ["a", "f", "m", "q", "z"]) {
    const got = await c.get(k);
    assert.ok(got.ok && got.value === `v-${k}`, `${k}: ${show(got)}`);
  }
  // Both regions take writes, each through its own log.
  await c.mustPut("b", "after");
  await c.mustPut("n", "after");
  for (const id of c.storeIds) {
    await c.waitUntil(
      `store ${id} applied both`,
      () => c.valueOn(id, "b") === "after" && c.valueOn(id, "n") === "after",
    );
  }
  // The two leaders are independent: moving one does not move the other.
  const leftLeader = c.leader(FIRST_REGION_ID)!;
  const rightLeader = c.leader(right)!;
  const target = c.peers(right).find((p) => p.meta.storeId !== rightLeader.meta.storeId)!;
  c.store(rightLeader.meta.storeId).transferLeader(right, target.meta.id);
  await c.waitUntil(
    "the right region's leader moved",
    () => c.leader(right)?.meta.id === target.meta.id,
  );
  assert.equal(c.leader(FIRST_REGION_ID)?.meta.id, leftLeader.meta.id);
});

Deno.test("a write proposed under the epoch before a split is refused with EpochNotMatch and changes nothing; retried under the new epoch it applies (seed 43)", async () => {
  const c = await Cluster.start({ storeCount: 3, seed: 43 });
  const leader = await c.waitLeader();
  const before = leader.region();
  assert.ok((await c.split(["m"])).ok);
  const stale = writeCommand(before, leader.meta, [put("a", "stale")]);
  const refused = await c.propose(leader.meta.storeId, stale);
  assert.ok(!refused.ok && refused.error.code === "EpochNotMatch", show(refused));
  assert.equal(c.valueOn(leader.meta.storeId, "a"), undefined);
  await c.mustPut("a", "fresh");
  assert.equal(c.valueOn(c.leader()!.meta.storeId, "a"), "fresh");
});

Deno.test("a batch split with right-derive cuts at three keys: the parent keeps the last part, the new regions take the others in order, and all survive a restart of every store (seed 47)", async () => {
  const c = await Cluster.start({ storeCount: 3, seed: 47 });
  for (const k of ["a", "d", "g", "l", "x"]) await c.mustPut(k, k);
  const result = await c.split(["c", "f", "k"], { rightDerive: true });
  assert.ok(result.ok, show(result));
  const regions = result.ok ? result.adminResponse!.splits!.regions! : [];
  assert.deepEqual(regions.map((r) => text(r.startKey!)), ["", "c", "f", "k"]);
  assert.equal(regions[3]!.id, FIRST_REGION_ID, "right-derive: the parent keeps the last part");
  assert.ok(regions.every((r) => r.regionEpoch?.version === 4n), "version + 3 on every region");
  const ids = regions.map((r) => r.id!);
  await c.waitUntil(
    "every store runs the four regions",
    () => c.storeIds.every((s) => ids.every((id) => c.store(s).peer(id)?.isInitialized() === true)),
  );
  for (const id of ids) await c.waitLeader(id);
  for (const s of c.storeIds) c.crash(s);
  for (const s of c.storeIds) c.restart(s);
  for (const id of ids) await c.waitLeader(id);
  for (const s of c.storeIds) {
    for (const [i, id] of ids.entries()) {
      const state = readRegionState(c.engine(s), id)!;
      assert.equal(state.state, PeerState.Normal);
      assert.equal(text(state.region.startKey), text(regions[i]!.startKey!));
    }
  }
  for (const k of ["a", "d", "g", "l", "x"]) {
    const got = await c.get(k);
    assert.ok(got.ok && got.value === k, `${k}: ${show(got)}`);
  }
  assert.equal(c.regionOfKey("d"), ids[1]);
  await c.mustPut("e", "after-restart");
});

Deno.test("a store cut off while the split commits makes no replica of the new region from its messages; once it hears of the split it makes it from its own parent replica (seed 53)", async () => {
  const c = await Cluster.start({ storeCount: 3, seed: 53 });
  await c.mustPut("q", "before");
  const leader = await c.waitLeader();
  const lagging = c.storeIds.find((id) => id !== leader.meta.storeId)!;
  // The lagging store hears only messages of new regions (not of the parent): what would make
  // it create a new region's replica out of a message if the overlap check were missing.
  const parentOnly = c.transport.addFilter(
    dropWhen(
      "parent messages to the lagging store",
      (e) => e.toPeer.storeId === lagging && e.regionId === FIRST_REGION_ID,
    ),
  );
  const result = await c.split(["m"]);
  assert.ok(result.ok, show(result));
  const right = result.ok ? result.adminResponse!.splits!.regions![1]!.id! : 0n;
  await c.waitLeader(right);
  await c.mustPut("r", "new-region");
  await c.tick(30);
  assert.equal(c.store(lagging).peer(right), undefined, "no replica made from a message");
  assert.ok(c.store(lagging).stats.messagesDropped > 0, "the new region's messages were dropped");
  c.transport.removeFilter(parentOnly);
  await c.waitUntil(
    "the lagging store applied the split",
    () => c.store(lagging).peer(right)?.isInitialized() === true,
  );
  await c.waitUntil(
    "it caught up with the new region",
    () => c.valueOn(lagging, "r") === "new-region",
  );
  assert.equal(c.valueOn(lagging, "q"), "before");
});

Deno.test("a split key outside the region, or not ascending, is refused by the leader and changes nothing (seed 59)", async () => {
  const c = await Cluster.start({ storeCount: 1, seed: 59 });
  assert.ok((await c.split(["m"])).ok);
  const leader = await c.waitLeader(FIRST_REGION_ID);
  const bad = [["z"], ["d", "c"], [""]];
  for (const keys of bad) {
    const cmd = {
      header: writeCommand(leader.region(), leader.meta, []).header,
      adminRequest: {
        cmdType: raft_cmdpb.AdminCmdType.BatchSplit,
        splits: {
          requests: keys.map((k) => ({
            splitKey: utf8(k),
            newRegionId: c.allocPeerId(),
            newPeerIds: [c.allocPeerId()],
          })),
        },
      },
    };
    const refused = await c.propose(leader.meta.storeId, cmd);
    assert.ok(!refused.ok && refused.error.code === "InvalidCommand", show(refused));
  }
  assert.equal(c.store(1n).peer(FIRST_REGION_ID)!.region().regionEpoch.version, 2n);
  assert.equal(c.store(1n).peers().length, 2);
});

Deno.test("the new region's first leader is elected within a few ticks of the split, not an election timeout: vote requests that came before a store applied the split are kept and replayed (seed 61)", async () => {
  const c = await Cluster.start({ storeCount: 3, seed: 61 });
  await assertSplitElectsQuickly(c);
});

Deno.test("a vote request that reaches a store before the split it is for is kept and replayed when the split applies there: the new region elects without an election timeout (seed 67)", async () => {
  const c = await Cluster.start({ storeCount: 3, seed: 67 });
  const leader = await c.waitLeader();
  // The parent's messages to the followers come late: the new region's vote requests, sent once
  // the leader applied the split, reach them before they learn that the split committed.
  c.transport.addFilter(
    delayWhen(
      6,
      (e) => e.regionId === FIRST_REGION_ID && e.toPeer.storeId !== leader.meta.storeId,
    ),
  );
  await assertSplitElectsQuickly(c);
});

/** Splits at m and asserts the new region has a leader within half an election timeout. */
async function assertSplitElectsQuickly(c: Cluster): Promise<void> {
  const electionTimeout = peerConfig().electionTimeoutTicks;
  const result = await c.split(["m"]);
  assert.ok(result.ok, show(result));
  const right = result.ok ? result.adminResponse!.splits!.regions![1]!.id! : 0n;
  let ticks = 0;
  while (c.leader(right) === undefined && ticks < 3 * electionTimeout) {
    await c.tick();
    ticks++;
  }
  assert.ok(c.leader(right) !== undefined, "the new region has a leader");
  assert.ok(
    ticks < electionTimeout / 2,
    `elected after ${ticks} ticks; an election timeout is ${electionTimeout}`,
  );
}
