import assert from "node:assert/strict";
import { Latches, type Release } from "./latches.ts";

const key = (text: string) => new TextEncoder().encode(text);
const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

Deno.test("an uncontended lock is held at once, without a promise", () => {
  const latches = new Latches();
  const release = latches.lock("default", [key("a"), key("b")]);
  assert.equal(typeof release, "function");
  assert.equal(latches.size, 2);
  (release as Release)();
  assert.equal(latches.size, 0);
});

Deno.test("waiters for one key are served first come, first served", async () => {
  const latches = new Latches();
  const first = latches.lock("default", [key("k")]) as Release;
  const order: number[] = [];
  const waiters = [1, 2, 3].map((n) =>
    latches.acquire("default", [key("k")]).then((release) => {
      order.push(n);
      return release;
    })
  );
  await tick();
  assert.deepEqual(order, []);
  first();
  (await waiters[0]!)();
  (await waiters[1]!)();
  (await waiters[2]!)();
  assert.deepEqual(order, [1, 2, 3]);
  assert.equal(latches.size, 0);
});

Deno.test("one key in two column families takes two latches", () => {
  const latches = new Latches();
  const a = latches.lock("default", [key("k")]);
  const b = latches.lock("write", [key("k")]);
  assert.equal(typeof a, "function");
  assert.equal(typeof b, "function");
  (a as Release)();
  (b as Release)();
});

Deno.test("writes over overlapping key sets in opposite orders never deadlock", async () => {
  const latches = new Latches();
  const keys = ["a", "b", "c", "d", "e"].map(key);
  const holder = latches.lock("default", keys) as Release;
  let finished = 0;
  const writes = Array.from({ length: 50 }, async (_, i) => {
    const mine = i % 2 === 0
      ? [keys[i % 5]!, keys[(i + 2) % 5]!]
      : [keys[(i + 2) % 5]!, keys[i % 5]!];
    const release = await latches.acquire("default", mine);
    await tick();
    release();
    finished++;
  });
  holder();
  await Promise.all(writes);
  assert.equal(finished, 50);
  assert.equal(latches.size, 0);
});

Deno.test("a duplicated key is latched once", () => {
  const latches = new Latches();
  const release = latches.lock("default", [key("k"), key("k")]);
  assert.equal(typeof release, "function");
  assert.equal(latches.size, 1);
  (release as Release)();
});

Deno.test("releasing twice is a bug and throws", () => {
  const latches = new Latches();
  const release = latches.lock("default", [key("k")]) as Release;
  release();
  assert.throws(release, /released twice/);
});
