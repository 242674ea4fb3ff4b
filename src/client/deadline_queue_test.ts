/** DeadlineQueue against a sorted-array model: pops in deadline order, removes any entry. */
import assert from "node:assert/strict";
import { type DeadlineEntry, DeadlineQueue } from "./deadline_queue.ts";
import { SeededRandom } from "../util/random.ts";

Deno.test("DeadlineQueue pops due items earliest first and leaves later ones", () => {
  const queue = new DeadlineQueue<string>();
  queue.push(30, "c");
  queue.push(10, "a");
  queue.push(20, "b");
  assert.equal(queue.peekDeadline(), 10);
  assert.deepEqual(queue.popDue(20), ["a", "b"]);
  assert.equal(queue.peekDeadline(), 30);
  assert.deepEqual(queue.popDue(29), []);
  assert.deepEqual(queue.clear(), ["c"]);
  assert.equal(queue.peekDeadline(), null);
});

Deno.test("DeadlineQueue removal of any entry keeps the heap order (random ops vs a model)", () => {
  for (let seed = 1; seed <= 20; seed++) {
    const random = new SeededRandom(seed);
    const queue = new DeadlineQueue<number>();
    const model: { deadline: number; id: number; entry: DeadlineEntry<number> }[] = [];
    let nextId = 0;
    for (let step = 0; step < 500; step++) {
      const op = random.int(10);
      if (op < 5) {
        const deadline = random.int(1000);
        const id = nextId++;
        model.push({ deadline, id, entry: queue.push(deadline, id) });
      } else if (op < 8 && model.length > 0) {
        const [removed] = model.splice(random.int(model.length), 1);
        queue.remove(removed!.entry);
        queue.remove(removed!.entry); // a second removal is a no-op
      } else {
        const now = random.int(1000);
        const expected = model.filter((m) => m.deadline <= now).sort((a, b) =>
          a.deadline - b.deadline
        );
        const popped = queue.popDue(now);
        assert.deepEqual(
          popped.map((id) => model.find((m) => m.id === id)!.deadline),
          expected.map((m) => m.deadline),
          `seed ${seed} step ${step}`,
        );
        for (const id of popped) model.splice(model.findIndex((m) => m.id === id), 1);
      }
      assert.equal(queue.size, model.length, `seed ${seed} step ${step}`);
      const earliest = model.length === 0 ? null : Math.min(...model.map((m) => m.deadline));
      assert.equal(queue.peekDeadline(), earliest, `seed ${seed} step ${step}`);
    }
  }
});
