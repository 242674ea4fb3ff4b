/** The chaos nemesis's schedule: a pure function of the seed, within the suite's bounds. */
import assert from "node:assert/strict";
import {
  CHAOS_FAULT_HOLD_MAX_MS,
  CHAOS_FAULT_HOLD_MIN_MS,
  CHAOS_MAX_FAULTS,
  CHAOS_QUIET_MAX_MS,
  CHAOS_QUIET_MIN_MS,
  planFaults,
} from "./nemesis.ts";

const SHAPE = { stores: 3, pdMembers: 3, rawSplitKeys: ["r1", "r2"], txnSplitKeys: ["t1"] };

Deno.test("nemesis: the same seed plans the same faults, another seed others", () => {
  assert.deepEqual(planFaults(7, SHAPE), planFaults(7, SHAPE));
  assert.notDeepEqual(planFaults(7, SHAPE).slice(0, 20), planFaults(8, SHAPE).slice(0, 20));
});

Deno.test("nemesis: every fault names existing stores and members, holds and quiets are bounded", () => {
  const plan = planFaults(1, { ...SHAPE, stores: 5 });
  assert.equal(plan.length, CHAOS_MAX_FAULTS);
  const kinds = new Set<string>();
  for (const { fault, quietMs } of plan) {
    kinds.add(fault.kind);
    assert.ok(quietMs >= CHAOS_QUIET_MIN_MS && quietMs <= CHAOS_QUIET_MAX_MS);
    if ("holdMs" in fault) {
      assert.ok(fault.holdMs >= CHAOS_FAULT_HOLD_MIN_MS && fault.holdMs <= CHAOS_FAULT_HOLD_MAX_MS);
    }
    if ("store" in fault) assert.ok(fault.store >= 0 && fault.store < 5);
    if (fault.kind === "cut-link") {
      assert.notEqual(fault.a, fault.b);
      assert.ok(fault.b >= 0 && fault.b < 5);
    }
    if (fault.kind === "kill-pd") assert.ok(fault.member >= 0 && fault.member < 3);
    if (fault.kind === "split") {
      assert.ok((fault.transactional ? ["t1"] : ["r1", "r2"]).includes(fault.key));
    }
  }
  assert.equal(kinds.size, 8, `every kind of fault is drawn: ${[...kinds]}`);
});

Deno.test("nemesis: a cluster the nemesis could take a quorum from is refused", () => {
  assert.throws(() => planFaults(1, { ...SHAPE, stores: 2 }), /needs 3 stores/);
  assert.throws(() => planFaults(1, { ...SHAPE, pdMembers: 1 }), /needs 3 PD members/);
});
