import assert, { deepEqual as assertEquals } from "node:assert/strict";
import { EventQueue } from "./event_queue.ts";
import { Prng } from "./prng.ts";

Deno.test("prng: the same seed gives the same sequence; another seed another one", () => {
  const a = new Prng(1);
  const b = new Prng(1);
  const c = new Prng(2);
  const sa = Array.from({ length: 16 }, () => a.nextU32());
  assertEquals(sa, Array.from({ length: 16 }, () => b.nextU32()));
  assert(sa.join() !== Array.from({ length: 16 }, () => c.nextU32()).join());
});

Deno.test("prng: nextInt stays in range and covers it", () => {
  const p = new Prng(9);
  const seen = new Set<number>();
  for (let i = 0; i < 1000; i++) {
    const v = p.nextInt(7);
    assert(v >= 0 && v < 7);
    seen.add(v);
  }
  assertEquals(seen.size, 7);
});

Deno.test("event queue: earlier times first, and equal times in scheduling order", () => {
  const q = new EventQueue<string>();
  q.push(5, "c");
  q.push(1, "a");
  q.push(5, "d");
  q.push(3, "b");
  q.push(5, "e");
  const out: string[] = [];
  for (let e = q.pop(); e !== undefined; e = q.pop()) out.push(e.event);
  assertEquals(out, ["a", "b", "c", "d", "e"]);
});
