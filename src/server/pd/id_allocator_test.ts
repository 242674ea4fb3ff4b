/** PD's id allocator (`pkg/id/id.go`): consecutive ids, windows saved before use, no reuse. */
import assert from "node:assert/strict";
import { MemoryValueStore } from "../../tso/mod.ts";
import { PD_ID_ALLOC_MAX_COUNT } from "./constants.ts";
import { IdAllocator, IdAllocError } from "./id_allocator.ts";

Deno.test("alloc() hands out consecutive ids after the reserved ones, returning the last", () => {
  const store = new MemoryValueStore();
  const ids = IdAllocator.open({ store, reservedThrough: 2n, step: 10n });
  assert.deepEqual(store.saves, [12n], "a window is saved before any id is handed out");
  assert.equal(ids.alloc(), 3n);
  assert.equal(ids.alloc(), 4n);
  assert.equal(ids.alloc(5), 9n); // ids 5..9
  assert.equal(ids.alloc(5), 14n); // 10..14 need a new window, saved first
  assert.deepEqual(store.saves, [12n, 24n]);
});

Deno.test("a reopened allocator begins at the saved window end: no id is handed out twice", () => {
  const store = new MemoryValueStore();
  const first = IdAllocator.open({ store, step: 100n });
  const before = [first.alloc(), first.alloc(3), first.alloc()];
  const second = IdAllocator.open({ store, step: 100n });
  const after = second.alloc();
  assert.equal(after, 101n, "ids up to the saved end (100) are skipped, as in PD");
  assert.ok(before.every((id) => id < after));
  // A reserved floor below the saved end does not move the allocator back.
  assert.equal(IdAllocator.open({ store, reservedThrough: 5n }).alloc(), 201n);
});

Deno.test("a count outside [1, PD_ID_ALLOC_MAX_COUNT] is refused and hands out nothing", () => {
  const ids = IdAllocator.open({ store: new MemoryValueStore() });
  for (const count of [0, -3, 2.5, PD_ID_ALLOC_MAX_COUNT + 1]) {
    assert.throws(
      () => ids.alloc(count),
      (error: unknown) => error instanceof IdAllocError && error.code === "InvalidCount",
    );
  }
  assert.equal(ids.alloc(), 1n);
});

Deno.test("the id space ends at u64 max with IdExhausted, never wrapping", () => {
  const store = new MemoryValueStore((1n << 64n) - 5n);
  assert.throws(
    () => IdAllocator.open({ store }),
    (error: unknown) => error instanceof IdAllocError && error.code === "IdExhausted",
  );
});

Deno.test("a failed window save hands out nothing", () => {
  const store = new MemoryValueStore();
  const ids = IdAllocator.open({ store, step: 2n });
  assert.equal(ids.alloc(2), 2n);
  store.failNextSave = true;
  assert.throws(() => ids.alloc(), /injected/);
  assert.equal(ids.lastId, 2n);
  assert.equal(ids.alloc(), 3n);
});
