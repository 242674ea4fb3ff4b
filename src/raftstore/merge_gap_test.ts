/**
 * PrepareMerge refuses a source whose log, after the merge's min index, holds an admin command
 * (found by `deno task sim -- --cluster`, seeds 78 and 97): a lagging source replica is caught up
 * by the entries CommitMerge carries, applied in the target's apply, where a split would make
 * regions no peer of that store runs and a log compaction would need terms that replica lacks.
 * Once the lagging replica has caught up, the same merge goes through.
 */
import assert from "node:assert/strict";
import { prepareMergeCommand } from "./command.ts";
import { Cluster, FIRST_REGION_ID, replacer } from "./testing/cluster.ts";
import { dropWhen } from "./testing/memory_transport.ts";

const show = (value: unknown) => JSON.stringify(value, replacer);

Deno.test("PrepareMerge is refused while a lagging source replica lacks a split of the source; once it caught up, the merge completes on every store (seed 83)", async () => {
  const c = await Cluster.start({ storeCount: 3, seed: 83 });
  for (const k of ["a", "f", "p", "x"]) await c.mustPut(k, `v-${k}`);
  const first = await c.split(["m"]);
  assert.ok(first.ok, show(first));
  const source = c.regionOfKey("p");
  const leader = await c.waitLeader(source);
  const lagging = c.storeIds.find((s) => s !== leader.meta.storeId)!;
  const cut = c.transport.addFilter(
    dropWhen("source messages to the lagging store", (e) => e.toPeer.storeId === lagging),
  );
  // The split is committed by the two others; the lagging replica's match stays before it.
  const second = await c.split(["t"]);
  assert.ok(second.ok, show(second));
  assert.equal(c.regionOfKey("p"), source, "the left part keeps the source's id");
  const refused = await c.prepareMerge("p", "a");
  assert.ok(!refused.ok, `a merge over a split the lagging replica lacks: ${show(refused)}`);
  assert.match(show(refused.error), /admin command BatchSplit/);
  assert.ok(!c.store(leader.meta.storeId).peer(source)!.isMerging());

  c.transport.removeFilter(cut);
  await c.waitUntil(
    "the lagging store applied the split",
    () => c.store(lagging).peer(source)?.region().endKey.length === 1,
  );
  await c.tick(20); // the leader learns the lagging replica's match
  const prepared = await c.prepareMerge("p", "a");
  assert.ok(prepared.ok, show(prepared));
  await c.waitUntil(
    "every store merged [m, t) into [, m)",
    () =>
      c.storeIds.every((s) =>
        c.store(s).peer(source) === undefined &&
        new TextDecoder().decode(c.store(s).peer(FIRST_REGION_ID)?.region().endKey) === "t"
      ),
  );
  for (const s of c.storeIds) assert.equal(c.valueOn(s, "p"), "v-p");
});

Deno.test("a leader proposes nothing after its PrepareMerge until it applies — no write, no CompactLog (the fence; sim --cluster seed 3) — and the merge then completes (seed 85)", async () => {
  const c = await Cluster.start({
    storeCount: 3,
    seed: 85,
    config: { raftLogGcCountLimit: 3, raftLogGcCheckTicks: 10 },
  });
  for (const k of ["a", "f", "p", "x"]) await c.mustPut(k, `v-${k}`);
  const first = await c.split(["m"]);
  assert.ok(first.ok, show(first));
  const source = c.regionOfKey("p");
  const leader = await c.waitLeader(source);
  // The source's log holds more applied entries than its count limit, not compacted yet: the
  // next log-GC check would propose a CompactLog.
  for (const k of ["q", "r", "s", "t"]) await c.mustPut(k, `v-${k}`);
  await c.waitUntil(
    "the followers matched",
    () => leader.mergeMinIndex() === leader.raw.raft.log.lastIndex(),
  );
  // The source's group cannot commit: its PrepareMerge stays proposed, unapplied.
  const block = c.transport.addFilter(
    dropWhen("source messages", (e) => e.regionId === source),
  );
  const target = c.peers(FIRST_REGION_ID).find((p) => p.isInitialized())!.region();
  const prepare = c.startPropose(
    leader.meta.storeId,
    prepareMergeCommand(leader, { minIndex: leader.mergeMinIndex(), target }),
  );
  await c.tick(1);
  assert.equal(prepare.result, undefined, "the PrepareMerge is not applied yet");
  assert.ok(leader.prepareMergeFenced());
  const lastBefore = leader.raw.raft.log.lastIndex();
  const write = await c.put("q", "after-prepare", 5).catch((e) => e);
  assert.ok(!write.ok, `a write behind the fence: ${show(write)}`);
  assert.match(show(write.error), /merging/);
  await c.tick(12); // a log-GC check runs, and the log is past its count limit
  assert.equal(leader.raw.raft.log.lastIndex(), lastBefore, "nothing proposed behind the fence");
  c.transport.removeFilter(block);
  await c.waitUntil(
    "every store merged [m, +inf) into [, m)",
    () =>
      c.storeIds.every((s) =>
        c.store(s).peer(source) === undefined &&
        c.store(s).peer(FIRST_REGION_ID)?.region().endKey.length === 0
      ),
  );
  for (const s of c.storeIds) assert.equal(c.valueOn(s, "p"), "v-p");
});
