/**
 * The PD benchmark's tables: one PD's and three members' figures side by side with their ratio
 * (3 ÷ 1), and a side that failed part-way printing n/a for what it never measured (rather than
 * a figure from the other side, or a crash).
 */
import assert from "node:assert/strict";
import {
  type BurstResult,
  burstRows,
  metricValue,
  type PdFigures,
  ratio,
  type TimedResult,
  timedRows,
} from "./pd_bench.ts";

function timed(fields: Partial<TimedResult>): TimedResult {
  return { name: "w", perSecond: 1000, latenciesMs: [1, 2, 3, 4], raftEntries: NaN, ...fields };
}

function burst(fields: Partial<BurstResult>): BurstResult {
  return { seconds: 1, raftEntries: NaN, cpuSeconds: [0.5], ...fields };
}

Deno.test("ratio() is 3 members ÷ 1 member, n/a when either is missing", () => {
  assert.equal(ratio(1000, 250), "0.25×");
  assert.equal(ratio(NaN, 250), "n/a");
  assert.equal(ratio(0, 0), "n/a");
});

Deno.test("timedRows() puts both sides of a workload in one row with the ratio and Raft entries", () => {
  const [row] = timedRows(
    [timed({ name: "one Tso stream, count=1", perSecond: 4000, latenciesMs: [1, 1, 1, 9] })],
    [timed({ perSecond: 1000, latenciesMs: [2, 2, 2, 30], raftEntries: 3 })],
  );
  assert.deepEqual(row, [
    "one Tso stream, count=1",
    "4,000",
    "1,000",
    "0.25×",
    "1.00 / 2.00",
    "9.00 / 30.0",
    "9.00 / 30.0",
    "3",
  ]);
});

Deno.test("timedRows() prints n/a for the workloads a failed side never ran", () => {
  const rows = timedRows([timed({ name: "a" }), timed({ name: "b" })], [timed({ name: "a" })]);
  assert.equal(rows.length, 2);
  assert.deepEqual(rows[1], [
    "b",
    "1,000",
    "n/a",
    "n/a",
    "2.00 / n/a",
    "4.00 / n/a",
    "4.00 / n/a",
    "n/a",
  ]);
});

Deno.test("burstRows() gives heartbeats/s, heartbeats per Raft entry and CPU per heartbeat", () => {
  const single: PdFigures = {
    tso: [],
    fresh: burst({ seconds: 2, cpuSeconds: [1] }),
    unchanged: burst({ seconds: 0.5 }),
  };
  // The group failed after its first burst: the unchanged row is n/a on its side.
  const group: PdFigures = {
    tso: [],
    fresh: burst({ seconds: 20, raftEntries: 500, cpuSeconds: [4, 2, 3] }),
    failure: "PD ended store 1's heartbeat stream mid-burst",
  };
  const [fresh, unchanged] = burstRows(single, group, 1000);
  assert.deepEqual(fresh, [
    "new regions (each persisted)",
    "500",
    "50",
    "0.10×",
    "2.00 / 20.0",
    "500",
    "2",
    "1,000 / 4,000 / 2,500",
  ]);
  assert.deepEqual(unchanged?.slice(1, 6), ["2,000", "n/a", "n/a", "0.50 / n/a", "n/a"]);
});

Deno.test("metricValue() reads a labelled line, and answers the fallback for an absent one", () => {
  const text = 'basalt_pd_region_heartbeats_total{outcome="kept"} 42\nbasalt_pd_regions 7\n';
  assert.equal(metricValue(text, 'basalt_pd_region_heartbeats_total{outcome="kept"}'), 42);
  assert.equal(metricValue(text, "basalt_pd_member_applied_index"), 0);
  assert.ok(Number.isNaN(metricValue(text, "basalt_pd_member_applied_index", NaN)));
});
