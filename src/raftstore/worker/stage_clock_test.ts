import assert from "node:assert/strict";
import { STAGE_CLOCK_BUCKETS, STAGE_CLOCK_MARKS_MAX } from "../../constants.ts";
import { MemoryEngine } from "../../engine/memory_engine.ts";
import {
  bucketOf,
  bucketUpperMs,
  ENGINE_STAGES,
  StageClock,
  stageClock,
  timedEngine,
} from "./stage_clock.ts";

Deno.test("bucketOf puts a duration in the first bucket whose bound holds it", () => {
  for (const ms of [0, 0.005, 0.01, 0.0101, 0.5, 1, 2.5, 40, 1_000]) {
    const bucket = bucketOf(ms);
    assert.ok(ms <= bucketUpperMs(bucket), `${ms} ms ≤ bound of bucket ${bucket}`);
    if (bucket > 0) assert.ok(ms > bucketUpperMs(bucket - 1), `${ms} ms > bound below`);
  }
  assert.equal(bucketOf(1e9), STAGE_CLOCK_BUCKETS - 1, "the last bucket holds everything longer");
  assert.equal(bucketOf(-1), 0);
});

Deno.test("a stage clock sums durations per stage, counts, and its snapshots are copies", () => {
  const clock = new StageClock();
  clock.record("a", 1);
  clock.record("a", 3);
  clock.count("n", 2);
  const before = clock.snapshot();
  clock.record("a", 5);
  clock.count("n");
  assert.equal(before.stages.a!.count, 2);
  assert.equal(before.stages.a!.sumMs, 4);
  assert.equal(before.counters.n, 2);
  const after = clock.snapshot();
  assert.equal(after.stages.a!.count, 3);
  assert.equal(after.stages.a!.sumMs, 9);
  assert.equal(after.stages.a!.buckets.reduce((x, y) => x + y, 0), 3);
  assert.equal(after.counters.n, 3);
});

Deno.test("a mark ends once, under the stage it is ended with; an unmarked end records nothing", () => {
  const clock = new StageClock();
  clock.mark("k", 10);
  assert.equal(clock.end("k", "rtt", 12.5), true);
  assert.equal(clock.end("k", "rtt", 13), false, "ended already");
  assert.equal(clock.end("other", "rtt", 13), false);
  assert.deepEqual(
    { count: clock.snapshot().stages.rtt!.count, sumMs: clock.snapshot().stages.rtt!.sumMs },
    { count: 1, sumMs: 2.5 },
  );
});

Deno.test("at most STAGE_CLOCK_MARKS_MAX marks wait; the oldest is forgotten first", () => {
  const clock = new StageClock();
  for (let i = 0; i <= STAGE_CLOCK_MARKS_MAX; i++) clock.mark(`k${i}`, i);
  assert.equal(clock.end("k0", "s", 1e6), false, "the oldest went");
  assert.equal(clock.end("k1", "s", 1e6), true);
  assert.equal(clock.end(`k${STAGE_CLOCK_MARKS_MAX}`, "s", 1e6), true);
});

Deno.test("a log write ends the stage of every proposal waiting, and only once", () => {
  const clock = new StageClock();
  clock.proposed(1);
  clock.proposed(2);
  clock.logWriteStarts("p", 5);
  clock.logWriteStarts("p", 9);
  const figures = clock.snapshot().stages.p!;
  assert.deepEqual({ count: figures.count, sumMs: figures.sumMs }, { count: 2, sumMs: 7 });
  for (let i = 0; i <= STAGE_CLOCK_MARKS_MAX; i++) clock.proposed(i);
  clock.logWriteStarts("q", 1e4);
  assert.equal(clock.snapshot().stages.q!.count, STAGE_CLOCK_MARKS_MAX, "bounded");
});

Deno.test("timedEngine times synced and unsynced writes and still writes them", async () => {
  const engine = new MemoryEngine();
  const timed = timedEngine(engine);
  const countOf = (stage: string) => stageClock.snapshot().stages[stage]?.count ?? 0;
  const synced = countOf(ENGINE_STAGES.syncedWrite);
  const unsynced = countOf(ENGINE_STAGES.write);
  const batch = timed.newWriteBatch();
  batch.put("default", new Uint8Array([1]), new Uint8Array([2]));
  await timed.writeDurable(batch);
  batch.clear();
  batch.put("default", new Uint8Array([3]), new Uint8Array([4]));
  timed.write(batch);
  batch.destroy();
  assert.equal(countOf(ENGINE_STAGES.syncedWrite), synced + 1);
  assert.equal(countOf(ENGINE_STAGES.write), unsynced + 1);
  assert.deepEqual(engine.get("default", new Uint8Array([1])), new Uint8Array([2]));
  assert.deepEqual(timed.get("default", new Uint8Array([3])), new Uint8Array([4]));
  engine.close();
});
