/**
 * The cluster benchmark's judgement: medians over runs, and each target of issue #10 item 11
 * met or missed at its bound (a cell with failed requests never meets one).
 */
import assert from "node:assert/strict";
import {
  CLUSTER_TARGETS,
  clusterVerdicts,
  logVerdict,
  summarize,
  type Summary,
} from "./cluster_bench.ts";
import type { MeasuredCell } from "./cluster_standalone.ts";

function summary(fields: Partial<Summary>): Summary {
  return {
    opsPerSecond: 0,
    p50Ms: 1,
    p99Ms: 1,
    errors: 0,
    cpuUsPerOp: [],
    benchCpuUsPerOp: 0,
    ...fields,
  };
}

function cell(fields: Partial<MeasuredCell>): MeasuredCell {
  return {
    ops: 100,
    seconds: 1,
    opsPerSecond: 100,
    p50Ms: 1,
    p99Ms: 2,
    errors: 0,
    cpuUsPerOp: [10, 20],
    benchCpuUsPerOp: 5,
    ...fields,
  };
}

Deno.test("cluster bench: put and get throughput targets apply at 256 in flight, met at the bound", () => {
  const at = (op: "put" | "get", inFlight: number, opsPerSecond: number) =>
    clusterVerdicts(op, inFlight, summary({ opsPerSecond }));
  const puts = CLUSTER_TARGETS.putsPerSecondAt256;
  const gets = CLUSTER_TARGETS.getsPerSecondAt256;
  assert.equal(at("put", 256, puts)[0]!.met, true);
  assert.equal(at("put", 256, puts - 1)[0]!.met, false);
  assert.equal(at("get", 256, gets)[0]!.met, true);
  assert.equal(at("get", 256, gets - 1)[0]!.met, false);
  assert.deepEqual(at("put", 1, 1e9), []);
  assert.deepEqual(at("get", 16, 1e9), []);
});

Deno.test("cluster bench: the p99 target applies at 64 in flight and is strict", () => {
  const bound = CLUSTER_TARGETS.p99MsAt64;
  const [under] = clusterVerdicts("put", 64, summary({ p99Ms: bound - 0.01 }));
  const [at] = clusterVerdicts("get", 64, summary({ p99Ms: bound }));
  assert.equal(under!.met, true);
  assert.equal(at!.met, false);
});

Deno.test("cluster bench: a cell with failed requests misses its target however fast it ran", () => {
  const fast = summary({ opsPerSecond: 1e9, p99Ms: 0.1, errors: 1 });
  assert.deepEqual(clusterVerdicts("put", 256, fast).map((v) => v.met), [false]);
  assert.deepEqual(clusterVerdicts("put", 64, fast).map((v) => v.met), [false]);
  assert.equal(logVerdict(256, summary({ opsPerSecond: 100 }), fast).met, false);
});

Deno.test("cluster bench: log ÷ direct meets the target at 0.8× and not below, nor without a direct figure", () => {
  const direct = summary({ opsPerSecond: 1000 });
  const ratio = CLUSTER_TARGETS.logOverDirectAtLeast;
  assert.equal(logVerdict(1, direct, summary({ opsPerSecond: 1000 * ratio })).met, true);
  assert.equal(logVerdict(1, direct, summary({ opsPerSecond: 1000 * ratio - 1 })).met, false);
  assert.equal(logVerdict(1, direct, summary({ opsPerSecond: 1000 * ratio })).measured, "0.80×");
  const none = logVerdict(1, summary({ opsPerSecond: 0 }), summary({ opsPerSecond: 0 }));
  assert.equal(none.met, false);
  assert.equal(none.measured, "n/a");
});

Deno.test("cluster bench: a summary takes medians over runs, per process, and sums the errors", () => {
  const result = summarize([
    cell({ opsPerSecond: 300, p99Ms: 9, cpuUsPerOp: [30, 3] }),
    cell({ opsPerSecond: 100, p99Ms: 1, cpuUsPerOp: [10, 1], errors: 2, firstError: "NotLeader" }),
    cell({ opsPerSecond: 200, p99Ms: 5, cpuUsPerOp: [20, 2], errors: 1 }),
  ]);
  assert.equal(result.opsPerSecond, 200);
  assert.equal(result.p99Ms, 5);
  assert.deepEqual(result.cpuUsPerOp, [20, 2]);
  assert.equal(result.errors, 3);
  assert.equal(result.firstError, "NotLeader");
});
