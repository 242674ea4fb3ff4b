/**
 * The executor's job order (`src/gateway/redis/job_order.ts`) and its batches in flight, without
 * a store: the order's invariants, a seeded random run checked against them, and the executor's
 * bound on batches running at once (jobs that need no transaction never touch the client).
 */
import assert from "node:assert/strict";
import type { TxnKV } from "../../src/client/mod.ts";
import { REDIS_BATCHES_IN_FLIGHT_MAX } from "../../src/constants.ts";
import { Executor, type Job } from "../../src/gateway/redis/executor.ts";
import { JobOrder, type OrderNode } from "../../src/gateway/redis/job_order.ts";
import { Session } from "../../src/gateway/redis/session.ts";
import { GatewayState } from "../../src/gateway/redis/state.ts";
import { SeededRandom } from "../../src/util/random.ts";

const anySize = () => true;
const items = (nodes: OrderNode<string>[]) => nodes.map((node) => node.item);

Deno.test("job order: jobs on different names share a batch; one on a running name waits", () => {
  const order = new JobOrder<string>();
  order.submit("a1", ["a"]);
  order.submit("b1", ["b"]);
  const first = order.nextBatch(anySize);
  assert.deepEqual(items(first), ["a1", "b1"]);
  order.submit("a2", ["a"]);
  order.submit("c1", ["c"]);
  // a2 waits for a1 (running); c1 does not.
  const second = order.nextBatch(anySize);
  assert.deepEqual(items(second), ["c1"]);
  assert.deepEqual(items(order.nextBatch(anySize)), []);
  order.finish(first);
  assert.deepEqual(items(order.nextBatch(anySize)), ["a2"]);
});

Deno.test("job order: a chain on one name joins one batch, in submission order", () => {
  const order = new JobOrder<string>();
  for (let i = 0; i < 5; i++) order.submit(`incr${i}`, ["counter"]);
  assert.deepEqual(items(order.nextBatch(anySize)), ["incr0", "incr1", "incr2", "incr3", "incr4"]);
});

Deno.test("job order: an 'all' job runs after everything before it and before everything after", () => {
  const order = new JobOrder<string>();
  order.submit("a1", ["a"]);
  const first = order.nextBatch(anySize);
  order.submit("b1", ["b"]);
  order.submit("keys", "all");
  order.submit("c1", ["c"]);
  // b1 may go; KEYS waits for a1 (running), c1 waits for KEYS.
  const second = order.nextBatch(anySize);
  assert.deepEqual(items(second), ["b1"]);
  order.finish(first);
  assert.deepEqual(items(order.nextBatch(anySize)), []);
  order.finish(second);
  const third = order.nextBatch(anySize);
  assert.deepEqual(items(third), ["keys", "c1"]);
  order.finish(third);
  assert.equal(order.unfinished, 0);
  assert.equal(order.trackedNames, 0);
});

Deno.test("job order: a batch stops at its limit; what is left goes next, in order", () => {
  const order = new JobOrder<string>();
  for (let i = 0; i < 5; i++) order.submit(`k${i}`, [`k${i}`]);
  const two = (_: string, taken: readonly string[]) => taken.length < 2;
  assert.deepEqual(items(order.nextBatch(two)), ["k0", "k1"]);
  assert.deepEqual(items(order.nextBatch(two)), ["k2", "k3"]);
  assert.deepEqual(items(order.nextBatch(two)), ["k4"]);
});

Deno.test("job order: a seeded random run keeps every name's order and disjoint running batches", () => {
  const seed = 20261206;
  const random = new SeededRandom(seed);
  const order = new JobOrder<{ id: number; names: string[] | "all" }>();
  const running: OrderNode<{ id: number; names: string[] | "all" }>[][] = [];
  const ranOn = new Map<string, number[]>(); // name → job ids in the order they ran
  const submittedOn = new Map<string, number[]>();
  let nextId = 0;
  for (let step = 0; step < 5_000; step++) {
    const action = random.int(10);
    if (action < 5) {
      const id = nextId++;
      const names = random.chance(0.03)
        ? "all"
        : Array.from({ length: 1 + random.int(3) }, () => `n${random.int(12)}`);
      order.submit({ id, names }, names);
      for (const name of names === "all" ? ["*"] : names) {
        submittedOn.set(name, [...(submittedOn.get(name) ?? []), id]);
      }
    } else if (action < 8 && running.length < 4) {
      const batch = order.nextBatch((_, taken) => taken.length < 1 + random.int(6));
      if (batch.length === 0) continue;
      // Invariant 2: a running batch shares no name with another (an "all" job shares all).
      const names = (nodes: typeof batch) =>
        nodes.flatMap((node) => node.item.names === "all" ? ["*"] : node.item.names);
      for (const other of running) {
        const theirs = new Set(names(other));
        for (const name of names(batch)) {
          assert(
            !theirs.has(name) && !theirs.has("*") && name !== "*",
            `seed ${seed} step ${step}: ${name} in two running batches`,
          );
        }
      }
      running.push(batch);
      for (const node of batch) {
        for (const name of node.item.names === "all" ? ["*"] : node.item.names) {
          ranOn.set(name, [...(ranOn.get(name) ?? []), node.item.id]);
        }
      }
    } else if (running.length > 0) {
      order.finish(running.splice(random.int(running.length), 1)[0]!);
    }
  }
  for (const batch of running) order.finish(batch);
  for (;;) {
    const batch = order.nextBatch(anySize);
    if (batch.length === 0) break;
    for (const node of batch) {
      for (const name of node.item.names === "all" ? ["*"] : node.item.names) {
        ranOn.set(name, [...(ranOn.get(name) ?? []), node.item.id]);
      }
    }
    order.finish(batch);
  }
  assert.equal(order.unfinished, 0, `seed ${seed}: every job ran`);
  // Invariant 1: on every name, jobs ran in the order they were submitted.
  for (const [name, ids] of submittedOn) {
    assert.deepEqual(ranOn.get(name), ids, `seed ${seed}: order on ${name}`);
  }
});

/** A job needing no transaction that holds its batch until `release` is called. */
function gatedJob(session: Session, key: string, log: string[]) {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => release = resolve);
  const job: Job = {
    session,
    needsTxn: false,
    keys: [new TextEncoder().encode(key)],
    storageKeys: [],
    global: false,
    writes: true,
    argumentBytes: 8,
    run: async () => {
      log.push(`start ${key}`);
      await gate;
      log.push(`end ${key}`);
      return "OK";
    },
  };
  return { job, release };
}

Deno.test("executor: at most REDIS_BATCHES_IN_FLIGHT_MAX batches run at once; one key waits its turn", async () => {
  const state = new GatewayState(null as unknown as TxnKV, 10);
  const executor = new Executor(state);
  const log: string[] = [];
  const jobs = [];
  const replies = [];
  // One job per macrotask: each forms its own batch while slots are free.
  for (let i = 0; i < REDIS_BATCHES_IN_FLIGHT_MAX + 3; i++) {
    const gated = gatedJob(new Session(i + 1, "test"), `k${i}`, log);
    jobs.push(gated);
    replies.push(executor.submit(gated.job));
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  const sameKey = gatedJob(new Session(100, "test"), "k0", log);
  replies.push(executor.submit(sameKey.job));
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(executor.running, REDIS_BATCHES_IN_FLIGHT_MAX);
  assert.equal(executor.queued, 4);
  assert(!log.includes("start k0") || log.filter((line) => line === "start k0").length === 1);
  for (const gated of jobs) gated.release();
  sameKey.release();
  assert.deepEqual(await Promise.all(replies), replies.map(() => "OK"));
  // The second job on k0 started only after the first ended.
  const ends = log.indexOf("end k0");
  assert(ends >= 0 && log.lastIndexOf("start k0") > ends, log.join(", "));
  await executor.stop();
});
