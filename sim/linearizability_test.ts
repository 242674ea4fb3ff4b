import assert, { deepEqual as assertEquals } from "node:assert/strict";
import { checkLinearizable, type KvOperation } from "./linearizability.ts";

function put(clientId: number, value: string, call: number, ret: number, key = "x"): KvOperation {
  return { clientId, kind: "put", key, value, call, ret };
}

function get(
  clientId: number,
  value: string | undefined,
  call: number,
  ret: number,
  key = "x",
): KvOperation {
  return { clientId, kind: "get", key, value, call, ret };
}

Deno.test("linearizability: sequential put then get of the same value is linearizable", () => {
  assert(checkLinearizable([put(1, "a", 0, 1), get(2, "a", 2, 3)]).ok);
});

Deno.test("linearizability: a read of an absent key before any write is linearizable", () => {
  assert(checkLinearizable([get(1, undefined, 0, 1), put(2, "a", 2, 3)]).ok);
});

Deno.test("linearizability: a stale read after a completed write is not linearizable", () => {
  const r = checkLinearizable([put(1, "a", 0, 1), put(1, "b", 2, 3), get(2, "a", 4, 5)]);
  assertEquals(r.ok, false);
  assertEquals(r.key, "x");
});

Deno.test("linearizability: a read concurrent with a write may see either value", () => {
  const h = [put(1, "a", 0, 1), put(1, "b", 2, 6)];
  assert(checkLinearizable([...h, get(2, "a", 3, 4)]).ok);
  assert(checkLinearizable([...h, get(2, "b", 3, 4)]).ok);
});

Deno.test("linearizability: reads may not go back in time (new value, then old value)", () => {
  // Both reads overlap the write, but once one read saw "b" a later read cannot see "a".
  const r = checkLinearizable([
    put(1, "a", 0, 1),
    put(1, "b", 2, 10),
    get(2, "b", 3, 4),
    get(3, "a", 5, 6),
  ]);
  assertEquals(r.ok, false);
});

Deno.test("linearizability: a write with unknown outcome may have taken effect, or not", () => {
  const pending = put(1, "b", 2, Infinity);
  assert(checkLinearizable([put(1, "a", 0, 1), pending, get(2, "b", 5, 6)]).ok);
  assert(checkLinearizable([put(1, "a", 0, 1), pending, get(2, "a", 5, 6)]).ok);
  // ... but not both, in that order.
  assertEquals(
    checkLinearizable([put(1, "a", 0, 1), pending, get(2, "b", 5, 6), get(2, "a", 7, 8)]).ok,
    false,
  );
});

Deno.test("linearizability: a value never written cannot be read", () => {
  assertEquals(checkLinearizable([put(1, "a", 0, 1), get(2, "zzz", 2, 3)]).ok, false);
});

Deno.test("linearizability: keys are checked independently (P-compositionality)", () => {
  const ok = [
    put(1, "a", 0, 1, "k1"),
    put(2, "b", 0, 1, "k2"),
    get(3, "a", 2, 3, "k1"),
    get(3, "b", 4, 5, "k2"),
  ];
  assert(checkLinearizable(ok).ok);
  const bad = [...ok, get(3, "a", 6, 7, "k2")];
  assertEquals(checkLinearizable(bad).key, "k2");
});

Deno.test("linearizability: many concurrent writers with a consistent reader", () => {
  const h: KvOperation[] = [];
  for (let i = 0; i < 8; i++) h.push(put(i, `v${i}`, 0, 100));
  h.push(get(9, "v3", 101, 102), get(9, "v3", 103, 104));
  assert(checkLinearizable(h).ok);
  h.push(get(9, "v5", 105, 106));
  assertEquals(checkLinearizable(h).ok, false);
});
