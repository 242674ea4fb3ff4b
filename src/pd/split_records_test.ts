/**
 * `split-merge-interval`'s memory (PD's merge checker `splitCache`, filled from AskBatchSplit):
 * which regions split lately, for how long, and at most how many.
 */
import assert from "node:assert/strict";
import { MemoryEngine } from "../engine/memory_engine.ts";
import { SeededRandom } from "../util/random.ts";
import { PdCluster } from "./cluster.ts";
import { EngineStorage } from "./engine_storage.ts";
import { PdError } from "./errors.ts";
import { SplitRecords } from "./split_records.ts";
import type { RegionMeta } from "./types.ts";

const INTERVAL_MS = 60_000;

Deno.test("split records: a region is recently split for split-merge-interval, then not", () => {
  const records = new SplitRecords();
  records.record([7n, 8n], { nowMs: 1_000, intervalMs: INTERVAL_MS });
  const at = (nowMs: number) => ({ nowMs, intervalMs: INTERVAL_MS });
  assert.ok(records.recentlySplit(7n, at(1_000)));
  assert.ok(records.recentlySplit(8n, at(1_000 + INTERVAL_MS - 1)));
  assert.ok(!records.recentlySplit(8n, at(1_000 + INTERVAL_MS)));
  assert.ok(!records.recentlySplit(9n, at(1_000)));
  // Recording again later forgets the expired ones.
  records.record([9n], at(1_000 + INTERVAL_MS));
  assert.equal(records.size, 1);
});

Deno.test("split records: at most maxEntries are kept, the oldest forgotten first", () => {
  const records = new SplitRecords({ maxEntries: 3 });
  const at = { nowMs: 0, intervalMs: INTERVAL_MS };
  records.record([1n, 2n], at);
  records.record([3n, 4n], at);
  assert.equal(records.size, 3);
  assert.ok(!records.recentlySplit(1n, at), "the oldest went first");
  assert.ok(records.recentlySplit(2n, at) && records.recentlySplit(4n, at));
});

Deno.test("AskBatchSplit records the region asking and every new region; ReportBatchSplit records the regions reported", () => {
  let nowMs = 1_700_000_000_000;
  const cluster = PdCluster.open({
    storage: new EngineStorage({ engine: new MemoryEngine() }),
    clock: { nowMs: () => nowMs },
    random: new SeededRandom(7),
    config: { splitMergeIntervalMs: INTERVAL_MS },
  });
  const whole: RegionMeta = {
    id: 2n,
    startKey: new Uint8Array(0),
    endKey: new Uint8Array(0),
    regionEpoch: { confVer: 1n, version: 1n },
    peers: [{ id: 3n, storeId: 1n, role: "Voter" }],
  };
  assert.equal(cluster.bootstrap({ store: { id: 1n, address: "s1" }, region: whole }), null);
  const ids = cluster.askBatchSplit({ region: whole, splitCount: 2 });
  assert.ok(!(ids instanceof PdError));
  const at = { nowMs, intervalMs: INTERVAL_MS };
  for (const id of [2n, ...ids.map((split) => split.newRegionId)]) {
    assert.ok(cluster.recentSplits.recentlySplit(id, at), `region ${id} recorded`);
  }
  nowMs += INTERVAL_MS;
  const later = { nowMs, intervalMs: INTERVAL_MS };
  assert.ok(!cluster.recentSplits.recentlySplit(2n, later));
  const split = new TextEncoder().encode("m");
  const left = { ...whole, id: 40n, endKey: split };
  const right = { ...whole, startKey: split };
  assert.equal(cluster.reportBatchSplit([left, right]), null);
  assert.ok(cluster.recentSplits.recentlySplit(40n, later));
  assert.ok(cluster.recentSplits.recentlySplit(2n, later));
});
