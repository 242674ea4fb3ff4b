/** The GC safe point only moves forward, durably, and answers as PD's UpdateGCSafePoint does. */
import assert from "node:assert/strict";
import { MemoryValueStore } from "../../tso/mod.ts";
import { GcSafePoint } from "./gc_safe_point.ts";

Deno.test("update() moves forward only and returns the safe point in force", () => {
  const store = new MemoryValueStore();
  const safePoint = GcSafePoint.open(store);
  assert.equal(safePoint.value, 0n);
  assert.deepEqual(store.saves, [0n], "the cell exists from the first start");
  assert.equal(safePoint.update(100n), 100n);
  assert.equal(safePoint.update(50n), 100n, "a smaller one is refused: PD answers the old one");
  assert.equal(safePoint.update(100n), 100n);
  assert.deepEqual(store.saves, [0n, 100n], "only forward moves are written");
  assert.equal(GcSafePoint.open(store).value, 100n, "it survives a restart");
});

Deno.test("a failed save leaves the safe point where it was", () => {
  const store = new MemoryValueStore(7n);
  const safePoint = GcSafePoint.open(store);
  store.failNextSave = true;
  assert.throws(() => safePoint.update(9n), /injected/);
  assert.equal(safePoint.value, 7n);
});
