/**
 * The chaos suite's register checking: the compare-and-swap model added to the simulator's
 * linearizability checker (`sim/linearizability.ts`), believed because it rejects planted
 * violations, and `pruneUnobservedWrites`, which must leave every violation in place.
 */
import assert from "node:assert/strict";
import { checkLinearizable, type KvOperation } from "../../sim/linearizability.ts";
import { checkRegisters, pruneUnobservedWrites, type RecordedOp } from "./register.ts";

const put = (value: string, call: number, ret: number): KvOperation => ({
  clientId: 1,
  kind: "put",
  key: "x",
  value,
  call,
  ret,
});
const get = (value: string | undefined, call: number, ret: number): KvOperation => ({
  clientId: 2,
  kind: "get",
  key: "x",
  value,
  call,
  ret,
});
const cas = (
  expected: string | undefined,
  value: string,
  outcome: { swapped?: boolean; previous?: string },
  call: number,
  ret: number,
): KvOperation => ({ clientId: 3, kind: "cas", key: "x", value, expected, ...outcome, call, ret });

Deno.test("cas model: a swap from the value held is linearizable, and the next read sees it", () => {
  assert.ok(
    checkLinearizable([put("a", 0, 1), cas("a", "b", { swapped: true }, 2, 3), get("b", 4, 5)]).ok,
  );
});

Deno.test("cas model: a swap that expected a value the key did not hold is a violation", () => {
  const result = checkLinearizable([put("a", 0, 1), cas("z", "b", { swapped: true }, 2, 3)]);
  assert.equal(result.ok, false);
  assert.match(result.explanation ?? "", /cas\(z -> b\) swapped/);
});

Deno.test("cas model: a refusal must report the value held, and only when it differs", () => {
  const before = put("a", 0, 1);
  assert.ok(checkLinearizable([before, cas("z", "b", { swapped: false, previous: "a" }, 2, 3)]).ok);
  // Refused though the key held what it expected: a lost swap.
  assert.equal(
    checkLinearizable([before, cas("a", "b", { swapped: false, previous: "a" }, 2, 3)]).ok,
    false,
  );
  // Refused reporting a value the key no longer held: a stale read.
  assert.equal(
    checkLinearizable([
      before,
      put("c", 2, 3),
      cas("z", "b", { swapped: false, previous: "a" }, 4, 5),
    ]).ok,
    false,
  );
});

Deno.test("cas model: an absent key is expected as undefined", () => {
  assert.ok(checkLinearizable([cas(undefined, "a", { swapped: true }, 0, 1), get("a", 2, 3)]).ok);
  assert.equal(
    checkLinearizable([put("a", 0, 1), cas(undefined, "b", { swapped: true }, 2, 3)]).ok,
    false,
  );
});

Deno.test("cas model: a cas of unknown outcome swaps or not, but not both in turn", () => {
  const unknown = cas("a", "b", {}, 2, Infinity);
  assert.ok(checkLinearizable([put("a", 0, 1), unknown, get("b", 4, 5)]).ok);
  assert.ok(checkLinearizable([put("a", 0, 1), unknown, get("a", 4, 5)]).ok);
  assert.equal(
    checkLinearizable([put("a", 0, 1), unknown, get("b", 4, 5), get("a", 6, 7)]).ok,
    false,
  );
  // It cannot swap from a value the key never held when it could take effect.
  assert.equal(
    checkLinearizable([put("c", 0, 1), cas("a", "b", {}, 2, Infinity), get("b", 4, 5)]).ok,
    false,
  );
});

Deno.test("pruning: unknown writes nobody observed go, observed ones stay", () => {
  const history = [
    put("a", 0, 1),
    put("lost", 2, Infinity),
    put("seen", 2, Infinity),
    cas("a", "never", {}, 3, Infinity),
    get("seen", 4, 5),
  ];
  const kept = pruneUnobservedWrites(history).map((op) => op.value);
  assert.deepEqual(kept, ["a", "seen", "seen"]);
});

Deno.test("pruning keeps a violation: a value read back after a later acknowledged write", () => {
  const history = [
    put("a", 0, 1),
    put("b", 2, Infinity),
    put("unseen", 2, Infinity),
    get("b", 3, 4),
    put("c", 5, 6),
    get("b", 7, 8),
  ];
  assert.equal(checkLinearizable(history).ok, false);
  assert.equal(checkLinearizable(pruneUnobservedWrites(history)).ok, false);
});

Deno.test("checkRegisters: failed operations are left out, a stale read fails the verdict", () => {
  const op = (fields: Partial<RecordedOp>): RecordedOp => ({
    clientId: 1,
    kind: "get",
    key: "x",
    value: undefined,
    call: 0,
    ret: 1,
    doneAt: 1,
    outcome: "ok",
    ...fields,
  });
  const ok = [
    op({ kind: "put", value: "a", call: 0, ret: 1 }),
    op({ kind: "put", value: "b", call: 2, ret: 3, outcome: "fail" }),
    op({ kind: "get", value: "a", call: 4, ret: 5 }),
  ];
  assert.ok(checkRegisters(ok).ok);
  const stale = [
    ...ok,
    op({ kind: "put", value: "c", call: 6, ret: 7 }),
    op({ kind: "get", value: "a", call: 8, ret: 9 }),
  ];
  const verdict = checkRegisters(stale);
  assert.equal(verdict.ok, false);
  assert.match(verdict.detail, /key x has no linearization/);
});
