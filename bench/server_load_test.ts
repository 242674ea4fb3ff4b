/** The server benchmark's pieces that can be checked without a server. */
import assert from "node:assert/strict";
import { benchKey, quantile, runClosedLoop, scatteredIndex } from "./server_load.ts";
import { parseRedisBenchmarkCsv } from "./server_redis.ts";

Deno.test("scatteredIndex visits every index of the key space once", () => {
  for (const keySpace of [1000, 100_000]) {
    const seen = new Uint8Array(keySpace);
    for (let i = 0; i < keySpace; i++) seen[scatteredIndex(i, keySpace)]! += 1;
    assert.ok(seen.every((count) => count === 1), `a permutation of [0, ${keySpace})`);
  }
  assert.notEqual(scatteredIndex(1, 1000), 1, "the walk is scattered, not sequential");
});

Deno.test("benchKey is 16 bytes and orders as its index", () => {
  assert.equal(benchKey(0).length, 16);
  assert.equal(benchKey(99_999_999_999_999).length, 16);
  assert.equal(new TextDecoder().decode(benchKey(42)), "bk00000000000042");
});

Deno.test("quantile is the nearest rank", () => {
  const sorted = Float64Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(quantile(sorted, 0.5), 50);
  assert.equal(quantile(sorted, 0.99), 99);
  assert.equal(quantile(sorted, 1), 100);
  assert.ok(Number.isNaN(quantile(new Float64Array(0), 0.5)));
});

Deno.test("runClosedLoop keeps exactly inFlight requests outstanding and counts errors", async () => {
  let outstanding = 0;
  let most = 0;
  const result = await runClosedLoop(async (i) => {
    outstanding++;
    most = Math.max(most, outstanding);
    await new Promise((resolve) => setTimeout(resolve, 1));
    outstanding--;
    if (i === 7) throw new Error("boom");
    return i % 10 === 3 ? "odd answer" : null;
  }, { ops: 200, inFlight: 16, maxMs: 10_000 });
  assert.equal(most, 16);
  assert.equal(result.ops, 200);
  assert.equal(result.errors, 20 + 1);
  assert.equal(result.firstError, "odd answer");
  assert.ok(result.p50Ms >= 1 && result.p99Ms >= result.p50Ms);
});

Deno.test("runClosedLoop stops at maxMs", async () => {
  const result = await runClosedLoop(async () => {
    await new Promise((resolve) => setTimeout(resolve, 5));
    return null;
  }, { ops: 1_000_000, inFlight: 1, maxMs: 100 });
  assert.ok(result.ops > 0 && result.ops < 100, `${result.ops} ops in 100 ms`);
});

Deno.test("parseRedisBenchmarkCsv reads redis-benchmark 7's --csv", () => {
  const csv = [
    `"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"`,
    `"SET","378787.88","1.963","0.496","1.655","3.671","5.103","7.919"`,
    `"GET","617283.94","1.180","0.496","1.183","1.519","1.671","2.383"`,
  ].join("\n");
  const parsed = parseRedisBenchmarkCsv(csv);
  assert.deepEqual(parsed.get("SET"), { rps: 378787.88, p50Ms: 1.655, p99Ms: 5.103 });
  assert.deepEqual(parsed.get("GET"), { rps: 617283.94, p50Ms: 1.183, p99Ms: 1.671 });
  assert.throws(() => parseRedisBenchmarkCsv("SET: 1000 requests per second"), /unexpected/);
});
