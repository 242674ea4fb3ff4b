import assert, { deepEqual as assertEquals } from "node:assert/strict";
import { MemoryStorage } from "./memory_storage.ts";
import { StorageError } from "./storage.ts";
import { newConfState, newEntry } from "./types.ts";

function filled(n: number): MemoryStorage {
  const s = new MemoryStorage();
  s.append(Array.from({ length: n }, (_, i) => newEntry({ term: 1n, index: BigInt(i + 1) })));
  return s;
}

Deno.test("storage: compaction keeps the term of the compacted index and refuses reads below it", () => {
  const s = filled(5);
  s.compact(3n);
  assertEquals(s.firstIndex(), 4n);
  assertEquals(s.term(3n), 1n);
  assert.throws(
    () => s.term(2n),
    (e: unknown) => e instanceof StorageError && e.code === "Compacted",
  );
  assert.throws(
    () => s.entries({ lo: 3n, hi: 5n }),
    (e: unknown) => e instanceof StorageError && e.code === "Compacted",
  );
  assertEquals(s.entries({ lo: 4n, hi: 6n }).length, 2);
});

Deno.test("storage: an append overwrites the conflicting suffix", () => {
  const s = filled(5);
  s.append([newEntry({ term: 2n, index: 3n })]);
  assertEquals(s.lastIndex(), 3n);
  assertEquals(s.term(3n), 2n);
});

Deno.test("storage: applying a snapshot replaces the log and raises the commit index", () => {
  const s = filled(3);
  s.applySnapshot({
    data: new Uint8Array([1]),
    metadata: { index: 10n, term: 4n, confState: newConfState({ voters: [1n] }) },
  });
  assertEquals(s.firstIndex(), 11n);
  assertEquals(s.lastIndex(), 10n);
  assertEquals(s.term(10n), 4n);
  assertEquals(s.initialState().hardState.commit, 10n);
});

Deno.test("storage: reading past the end is Unavailable", () => {
  const s = filled(2);
  assert.throws(
    () => s.term(3n),
    (e: unknown) => e instanceof StorageError && e.code === "Unavailable",
  );
});
