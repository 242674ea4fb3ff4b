/**
 * A merge's two operators in the controller (PD's `CreateMergeRegionOperator`, TiKV's
 * PrepareMerge → CommitMerge / RollbackMerge): what each leader is told, when both end, and
 * `merge-schedule-limit`. The checker's rules are in `testdata/merge*.txt`.
 */
import assert from "node:assert/strict";
import {
  PD_OPERATOR_FAST_STEP_TIMEOUT_MS,
  PD_OPERATOR_MERGE_STEP_TIMEOUT_MS,
} from "../constants.ts";
import { emptyInfo } from "./cluster.ts";
import { scheduleConfig } from "./config.ts";
import { addVoterSteps, type OpStep } from "./operator.ts";
import { type MergeRequest, OperatorController } from "./operator_controller.ts";
import type { RegionEpoch, RegionInfo } from "./types.ts";

const key = (text: string) => new TextEncoder().encode(text);

/** Region `id` over [start, end) on stores 1, 2, 3, led from store 1. */
function regionInfo(
  id: bigint,
  range: [string, string],
  epoch: RegionEpoch = { confVer: 1n, version: 5n },
): RegionInfo {
  const info = emptyInfo({
    id,
    startKey: key(range[0]),
    endKey: key(range[1]),
    regionEpoch: epoch,
    peers: [1n, 2n, 3n].map((storeId) => ({ id: id * 100n + storeId, storeId, role: "Voter" })),
  });
  info.leader = info.meta.peers[0]!;
  return info;
}

const SOURCE = regionInfo(1n, ["a", "m"]);
const TARGET = regionInfo(2n, ["m", "z"]);

function mergeRequest(
  source = SOURCE,
  target = TARGET,
  before: OpStep[] = [],
): MergeRequest {
  const step: OpStep = {
    type: "MergeRegion",
    source: source.meta,
    target: target.meta,
    passive: false,
    timeoutMs: PD_OPERATOR_MERGE_STEP_TIMEOUT_MS,
  };
  return {
    source: { region: source, desc: "merge-region", kind: "merge", steps: [...before, step] },
    target,
  };
}

function added(controller: OperatorController, request = mergeRequest(), nowMs = 0) {
  const ops = controller.addMerge(request, nowMs);
  assert.ok(Array.isArray(ops), `merge refused: ${ops}`);
  return ops;
}

Deno.test("merge: the source's leader is told to merge into the target as PD knew it; the target's leader is told nothing", () => {
  const controller = new OperatorController(scheduleConfig());
  const [source, target] = added(controller);
  assert.equal(source.kind, "merge");
  assert.equal(source.desc, "merge-region");
  assert.equal(source.mergePartner, 2n);
  assert.equal(target.mergePartner, 1n);
  const told = controller.dispatch(SOURCE, 1);
  assert.deepEqual(told?.merge, { target: TARGET.meta });
  assert.equal(told?.changePeer, undefined);
  assert.deepEqual(told?.regionEpoch, SOURCE.meta.regionEpoch);
  assert.equal(controller.dispatch(TARGET, 1), null);
  assert.equal(controller.get(2n, 1)?.status, "RUNNING");
});

Deno.test("merge: both halves succeed once the target's heartbeat covers the source at a higher version (CommitMerge), not before", () => {
  const controller = new OperatorController(scheduleConfig());
  added(controller);
  // PrepareMerge on the source: version and conf_ver one up; it is still told to merge.
  const prepared = regionInfo(1n, ["a", "m"], { confVer: 2n, version: 6n });
  assert.ok(controller.dispatch(prepared, 1)?.merge !== undefined);
  assert.equal(controller.dispatch(TARGET, 2), null);
  assert.equal(controller.get(1n, 2)?.status, "RUNNING");
  const merged = regionInfo(2n, ["a", "z"], { confVer: 1n, version: 7n });
  assert.equal(controller.dispatch(merged, 3), null);
  assert.equal(controller.get(2n, 3)?.status, "SUCCESS");
  assert.equal(controller.get(1n, 3)?.status, "SUCCESS", "the source's half ends with it");
  assert.deepEqual(controller.running(), []);
});

Deno.test("merge: a rollback (the source's version one up after PrepareMerge) cancels both halves", () => {
  const controller = new OperatorController(scheduleConfig());
  added(controller);
  const rolledBack = regionInfo(1n, ["a", "m"], { confVer: 2n, version: 7n });
  assert.equal(controller.dispatch(rolledBack, 1), null);
  assert.equal(controller.get(1n, 1)?.status, "CANCEL");
  assert.match(
    controller.get(1n, 1)!.reason,
    /version moved from 5 to 7 \(the merge was rolled back/,
  );
  assert.equal(controller.get(2n, 1)?.status, "CANCEL");
  assert.match(controller.get(2n, 1)!.reason, /region 1's half of the merge ended CANCEL/);
});

Deno.test("merge: the source's range changing (a split) or the target's epoch moving otherwise cancels both", () => {
  const split = new OperatorController(scheduleConfig());
  added(split);
  split.dispatch(regionInfo(1n, ["g", "m"], { confVer: 1n, version: 6n }), 1);
  assert.match(split.get(1n, 1)!.reason, /range changed while it was to merge/);
  assert.equal(split.get(2n, 1)?.status, "CANCEL");

  const targetSplit = new OperatorController(scheduleConfig());
  added(targetSplit);
  targetSplit.dispatch(regionInfo(2n, ["m", "t"], { confVer: 1n, version: 6n }), 1);
  assert.equal(targetSplit.get(2n, 1)?.status, "CANCEL");
  assert.match(targetSplit.get(2n, 1)!.reason, /version moved from 5 to 6/);
  assert.equal(targetSplit.get(1n, 1)?.status, "CANCEL");
});

Deno.test("merge: a source whose peers are no longer on the target's stores is cancelled", () => {
  const controller = new OperatorController(scheduleConfig());
  added(controller);
  const moved = regionInfo(1n, ["a", "m"], { confVer: 1n, version: 5n });
  moved.meta.peers[2] = { id: 104n, storeId: 4n, role: "Voter" };
  assert.equal(controller.dispatch(moved, 1), null);
  assert.match(controller.get(1n, 1)!.reason, /stores 1,2,4, region 2's on stores 1,2,3/);
  assert.equal(controller.get(2n, 1)?.status, "CANCEL");
});

Deno.test(`merge: a merge step times out after ${PD_OPERATOR_MERGE_STEP_TIMEOUT_MS} ms; its target's half is cancelled with it`, () => {
  const controller = new OperatorController(scheduleConfig());
  added(controller);
  assert.deepEqual(controller.checkTimeouts(PD_OPERATOR_MERGE_STEP_TIMEOUT_MS), []);
  const ended = controller.checkTimeouts(PD_OPERATOR_MERGE_STEP_TIMEOUT_MS + 1);
  assert.equal(ended.length, 1, "one times out, the other is cancelled by it");
  assert.equal(ended[0]!.status, "TIMEOUT");
  const other = controller.get(ended[0]!.mergePartner!, PD_OPERATOR_MERGE_STEP_TIMEOUT_MS + 1);
  assert.equal(other?.status, "CANCEL");
  assert.deepEqual(controller.running(), []);
});

Deno.test("merge: the target's half waits as long as all of the source's steps may take", () => {
  const controller = new OperatorController(scheduleConfig());
  const handOver: OpStep[] = [{ type: "TransferLeader", fromStoreId: 1n, toStoreId: 2n }];
  const [, target] = added(controller, mergeRequest(SOURCE, TARGET, handOver));
  const step = target.steps[0]!;
  assert.ok(step.type === "MergeRegion" && step.passive);
  assert.equal(
    step.timeoutMs,
    PD_OPERATOR_FAST_STEP_TIMEOUT_MS + PD_OPERATOR_MERGE_STEP_TIMEOUT_MS,
  );
  // The transfer ends late; the source's merge step starts then, and the target's half, which
  // started with the operator, is still within its time when a merge step alone would not be.
  const handedOver = regionInfo(1n, ["a", "m"]);
  handedOver.leader = handedOver.meta.peers[1]!;
  const lateMs = PD_OPERATOR_FAST_STEP_TIMEOUT_MS - 1;
  assert.ok(controller.dispatch(handedOver, lateMs)?.merge !== undefined);
  assert.deepEqual(controller.checkTimeouts(PD_OPERATOR_MERGE_STEP_TIMEOUT_MS + 1), []);
  const ended = controller.checkTimeouts(lateMs + PD_OPERATOR_MERGE_STEP_TIMEOUT_MS + 1);
  assert.deepEqual(ended.map((op) => [op.regionId, op.status]), [[1n, "TIMEOUT"]]);
});

Deno.test("merge: a replica repair replacing one half cancels the other", () => {
  const controller = new OperatorController(scheduleConfig());
  added(controller);
  const repair = controller.add({
    region: TARGET,
    desc: "replace-down-replica",
    kind: "replica",
    steps: addVoterSteps(4n, 9n),
  }, 1);
  assert.equal(typeof repair, "object");
  assert.equal(controller.get(1n, 1)?.status, "CANCEL");
  assert.match(controller.get(1n, 1)!.reason, /region 2's half of the merge ended REPLACE/);
  assert.deepEqual(controller.running().map((op) => op.desc), ["replace-down-replica"]);
});

Deno.test("merge: a region with an operator is neither source nor target; balance operators do not replace a merge", () => {
  const controller = new OperatorController(scheduleConfig());
  added(controller);
  const third = regionInfo(3n, ["z", ""]);
  assert.match(String(controller.addMerge(mergeRequest(third, TARGET), 0)), /region 2/);
  assert.match(String(controller.addMerge(mergeRequest(TARGET, third), 0)), /no room/);
  const balance = controller.add({
    region: SOURCE,
    desc: "balance-leader",
    kind: "leader",
    steps: [{ type: "TransferLeader", fromStoreId: 1n, toStoreId: 2n }],
  }, 0);
  assert.match(String(balance), /no room/);
});

Deno.test("merge-schedule-limit counts both halves of each merge (as PD); 0 allows none", () => {
  const controller = new OperatorController(scheduleConfig({ mergeScheduleLimit: 3 }));
  added(controller, mergeRequest(regionInfo(1n, ["a", "b"]), regionInfo(2n, ["b", "c"])));
  added(controller, mergeRequest(regionInfo(3n, ["c", "d"]), regionInfo(4n, ["d", "e"])));
  assert.equal(controller.countOf("merge"), 4);
  const third = controller.addMerge(
    mergeRequest(regionInfo(5n, ["e", "f"]), regionInfo(6n, ["f", "g"])),
    0,
  );
  assert.match(String(third), /no room for a merge operator/);
  const off = new OperatorController(scheduleConfig({ mergeScheduleLimit: 0 }));
  assert.match(String(off.addMerge(mergeRequest(), 0)), /no room/);
});
