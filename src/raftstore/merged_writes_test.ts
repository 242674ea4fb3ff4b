/**
 * Writes proposed together are merged into one log entry (peer.ts `flushProposals`, TiKV's
 * `cmd-batch`): one entry, every write answered with its result, all applied on every store and
 * after a restart; a merged entry meets the epoch check at apply as one (all its writes refused,
 * none applied); writes under different headers, or past RAFT_WRITE_MERGE_MAX_BYTES, are
 * entries of their own. The writes go in as the write path hands them over: checked commands
 * with their encoded bytes (write_path.ts).
 */
import assert from "node:assert/strict";
import { RAFT_WRITE_MERGE_MAX_BYTES } from "../constants.ts";
import type { Modification } from "../storage/modification.ts";
import type { CmdResult } from "./apply.ts";
import { encodeWriteCommand, type WriteCommandHeader } from "./cmd_codec.ts";
import { batchSplitCommand, writeCommand } from "./command.ts";
import type { Peer } from "./peer.ts";
import { Cluster, FIRST_REGION_ID, put, replacer } from "./testing/cluster.ts";

const show = (value: unknown) => JSON.stringify(value, replacer);

/**
 * Hands `modifications` to the leader's store as the write path does (its command and bytes,
 * under `header` or the write path's own); returns where the answer lands.
 */
function proposeEncoded(
  c: Cluster,
  leader: Peer,
  modifications: Modification[],
  header?: WriteCommandHeader,
): { result: CmdResult | undefined } {
  const region = leader.region();
  const bytes = encodeWriteCommand(
    header ?? { regionId: region.id, peer: { ...leader.meta }, regionEpoch: region.regionEpoch },
    modifications,
  );
  const handle: { result: CmdResult | undefined } = { result: undefined };
  c.store(leader.meta.storeId).propose(
    region.id,
    writeCommand(region, leader.meta, modifications),
    (result) => handle.result = result,
    bytes,
  );
  return handle;
}

async function answered(c: Cluster, handles: { result: CmdResult | undefined }[]) {
  await c.waitUntil("every write answered", () => handles.every((h) => h.result !== undefined));
  return handles.map((h) => h.result!);
}

/** Waits until every store's replica of the first region applied `index`. */
async function appliedEverywhere(c: Cluster, index: bigint): Promise<void> {
  await c.waitUntil(
    `every store applied ${index}`,
    () =>
      c.storeIds.every((id) => c.store(id).peer(FIRST_REGION_ID)!.storage.appliedIndex() >= index),
  );
}

Deno.test("writes proposed together become one log entry: each is answered at that entry's index, all apply on every store and survive a restart of every store (seed 71)", async () => {
  const c = await Cluster.start({ storeCount: 3, seed: 71 });
  const leader = await c.waitLeader();
  const before = leader.raw.raft.log.lastIndex();
  const keys = ["a", "b", "c", "d", "e"];
  const handles = keys.map((k) => proposeEncoded(c, leader, [put(k, `v-${k}`)]));
  const results = await answered(c, handles);
  for (const result of results) assert.ok(result.ok, show(result));
  const indexes = new Set(results.map((r) => r.ok ? r.index : -1n));
  assert.deepEqual([...indexes], [before + 1n], "one entry holds the five writes");
  assert.equal(leader.raw.raft.log.lastIndex(), before + 1n);
  await c.waitUntil(
    "every store applied the entry",
    () =>
      c.storeIds.every((id) => c.store(id).peer(FIRST_REGION_ID)!.storage.appliedIndex() > before),
  );
  for (const id of c.storeIds) {
    for (const k of keys) assert.equal(c.valueOn(id, k), `v-${k}`, `store ${id} key ${k}`);
  }
  for (const id of c.storeIds) c.crash(id);
  for (const id of c.storeIds) c.restart(id);
  await c.waitLeader();
  for (const id of c.storeIds) {
    for (const k of keys) assert.equal(c.valueOn(id, k), `v-${k}`, `after restart: store ${id}`);
  }
});

Deno.test("without their encoded bytes (a command other than the write path's) writes stay an entry each (seed 71)", async () => {
  const c = await Cluster.start({ storeCount: 3, seed: 71 });
  const leader = await c.waitLeader();
  const before = leader.raw.raft.log.lastIndex();
  const handles = ["a", "b", "c"].map((k) =>
    c.startPropose(leader.meta.storeId, writeCommand(leader.region(), leader.meta, [put(k, k)]))
  );
  const results = await answered(c, handles);
  assert.deepEqual(results.map((r) => r.ok ? r.index : -1n), [1n, 2n, 3n].map((i) => before + i));
});

Deno.test("a merged entry behind a split meets the epoch check at apply as one: every write of it is refused with EpochNotMatch and none is applied (seed 73)", async () => {
  const c = await Cluster.start({ storeCount: 3, seed: 73 });
  const leader = await c.waitLeader();
  const before = leader.raw.raft.log.lastIndex();
  // The split goes to Raft first; the writes, checked under the epoch it has not changed yet,
  // wait for the round's batch and follow it in one entry.
  const split = c.startPropose(
    leader.meta.storeId,
    batchSplitCommand(leader, [{
      splitKey: new TextEncoder().encode("m"),
      newRegionId: c.allocPeerId(),
      newPeerIds: leader.region().peers.map(() => c.allocPeerId()),
    }], false),
  );
  const keys = ["a", "q", "z"];
  const handles = keys.map((k) => proposeEncoded(c, leader, [put(k, k)]));
  const results = await answered(c, [split, ...handles]);
  assert.ok(results[0]!.ok, show(results[0]));
  const writes = results.slice(1);
  for (const result of writes) {
    assert.ok(!result.ok && result.error.code === "EpochNotMatch", show(result));
  }
  assert.equal(leader.raw.raft.log.lastIndex(), before + 2n, "the split, then one merged entry");
  for (const id of c.storeIds) for (const k of keys) assert.equal(c.valueOn(id, k), undefined);
});

Deno.test("writes under different headers, or that would pass RAFT_WRITE_MERGE_MAX_BYTES together, are entries of their own (seed 79)", async () => {
  const c = await Cluster.start({ storeCount: 3, seed: 79 });
  const leader = await c.waitLeader();
  const before = leader.raw.raft.log.lastIndex();
  const big = "x".repeat(RAFT_WRITE_MERGE_MAX_BYTES / 2);
  const handles = [
    proposeEncoded(c, leader, [put("a", big)]),
    proposeEncoded(c, leader, [put("b", big)]), // together past the bound: a new entry
    proposeEncoded(c, leader, [put("c", "small")]), // joins "b"
  ];
  // The same region under another header: no peer field (the header differs only there, so
  // the proposal passes every check and only the merge tells them apart).
  const region = leader.region();
  const header = { regionId: region.id, peer: null, regionEpoch: region.regionEpoch };
  const odd = proposeEncoded(c, leader, [put("d", "other-header")], header);
  handles.push(proposeEncoded(c, leader, [put("e", "after")])); // a third header run
  const results = await answered(c, [...handles.slice(0, 3), odd, handles[3]!]);
  for (const result of results) assert.ok(result.ok, show(result));
  assert.deepEqual(
    results.map((r) => r.ok ? r.index - before : -1n),
    [1n, 2n, 2n, 3n, 4n],
    "a | b c | d | e",
  );
  await appliedEverywhere(c, before + 4n);
  for (const id of c.storeIds) {
    assert.equal(c.valueOn(id, "c"), "small");
    assert.equal(c.valueOn(id, "d"), "other-header");
    assert.equal(c.valueOn(id, "e"), "after");
  }
});
