/** Prometheus text parsing and histogram_quantile estimates. */
import assert from "node:assert/strict";
import { histogramQuantile, parsePrometheusText } from "./prometheus.ts";

Deno.test("parses names, labels (with escapes), values and skips comments", () => {
  const samples = parsePrometheusText([
    "# HELP x help",
    "# TYPE x counter",
    'x_total{rpc="RawGet",outcome="ok"} 12',
    "",
    "up 1",
    'odd{path="a\\"b\\\\c",le="+Inf"} +Inf',
    'spaced{ a="1" , b="2" } 3.5e2 1700000000',
  ].join("\n"));
  assert.deepEqual(samples, [
    { name: "x_total", labels: { rpc: "RawGet", outcome: "ok" }, value: 12 },
    { name: "up", labels: {}, value: 1 },
    { name: "odd", labels: { path: 'a"b\\c', le: "+Inf" }, value: Infinity },
    { name: "spaced", labels: { a: "1", b: "2" }, value: 350 },
  ]);
  assert.throws(() => parsePrometheusText('bad{rpc="x} 1'), /metrics line 1/);
  assert.throws(() => parsePrometheusText("novalue"), /bad value/);
});

Deno.test("histogramQuantile interpolates inside the bucket that holds the rank", () => {
  const buckets = [
    { le: 0.001, count: 0 },
    { le: 0.002, count: 50 },
    { le: 0.004, count: 90 },
    { le: 0.008, count: 100 },
    { le: Infinity, count: 100 },
  ];
  // Rank 50 is the top of (0.001, 0.002]; rank 99 lies 9/10 into (0.004, 0.008].
  assert.ok(Math.abs(histogramQuantile(0.5, buckets)! - 0.002) < 1e-12);
  assert.ok(Math.abs(histogramQuantile(0.99, buckets)! - 0.0076) < 1e-12);
  assert.ok(Math.abs(histogramQuantile(0.25, buckets)! - 0.0015) < 1e-12);
  assert.equal(histogramQuantile(0.5, [{ le: Infinity, count: 0 }]), null);
  // Observations beyond the last finite bound: the largest finite bound.
  assert.equal(histogramQuantile(0.99, [{ le: 1, count: 1 }, { le: Infinity, count: 10 }]), 1);
});
