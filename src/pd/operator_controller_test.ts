/**
 * The operator controller's rules (PD `operator_controller.go`): one operator per region,
 * limits in flight, timeouts, stale operators cancelled, finished ones remembered for a while.
 */
import assert from "node:assert/strict";
import {
  PD_OPERATOR_FAST_STEP_TIMEOUT_MS,
  PD_OPERATOR_RECORD_TTL_MS,
  PD_OPERATOR_RECORDS_MAX,
} from "../constants.ts";
import { emptyInfo } from "./cluster.ts";
import { scheduleConfig } from "./config.ts";
import { addVoterSteps, type OpStep } from "./operator.ts";
import { OperatorController, type OperatorRequest } from "./operator_controller.ts";
import type { RegionInfo } from "./types.ts";

function regionInfo(
  id: bigint,
  stores: bigint[],
  epoch = { confVer: 1n, version: 1n },
): RegionInfo {
  const info = emptyInfo({
    id,
    startKey: new Uint8Array(0),
    endKey: new Uint8Array(0),
    regionEpoch: epoch,
    peers: stores.map((storeId) => ({ id: id * 100n + storeId, storeId, role: "Voter" })),
  });
  info.leader = info.meta.peers[0]!;
  return info;
}

function request(
  region: RegionInfo,
  kind: OperatorRequest["kind"],
  steps: OpStep[],
): OperatorRequest {
  return { region, desc: `test-${kind}`, kind, steps };
}

const transfer = (
  from: bigint,
  to: bigint,
): OpStep[] => [{ type: "TransferLeader", fromStoreId: from, toStoreId: to }];

Deno.test("one operator per region; a replica repair replaces a balance operator", () => {
  const controller = new OperatorController(scheduleConfig());
  const region = regionInfo(1n, [1n, 2n, 3n]);
  const balance = controller.add(request(region, "leader", transfer(1n, 2n)), 0);
  assert.equal(typeof balance, "object");
  assert.equal(typeof controller.add(request(region, "leader", transfer(1n, 3n)), 0), "string");
  const repair = controller.add(request(region, "replica", addVoterSteps(4n, 9n)), 0);
  assert.equal(typeof repair, "object");
  assert.equal(controller.get(1n, 0), repair);
  assert.equal(balance !== null && typeof balance === "object" && balance.status, "REPLACE");
  assert.equal(
    typeof controller.add(request(region, "replica", addVoterSteps(5n, 10n)), 0),
    "string",
  );
});

Deno.test("limits in flight: per kind and per store", () => {
  const controller = new OperatorController(
    scheduleConfig({ leaderScheduleLimit: 2, storeOperatorLimit: 1 }),
  );
  for (let id = 1n; id <= 2n; id++) {
    assert.equal(
      typeof controller.add(request(regionInfo(id, [1n, 2n]), "leader", transfer(1n, 2n)), 0),
      "object",
    );
  }
  assert.match(
    String(controller.add(request(regionInfo(3n, [1n, 2n]), "leader", transfer(1n, 2n)), 0)),
    /no room/,
  );
  assert.equal(
    typeof controller.add(request(regionInfo(4n, [1n, 2n]), "region", addVoterSteps(5n, 1n)), 0),
    "object",
  );
  assert.match(
    String(controller.add(request(regionInfo(5n, [1n, 2n]), "region", addVoterSteps(5n, 2n)), 0)),
    /store 5/,
  );
  assert.equal(controller.countOf("leader"), 2);
});

Deno.test("dispatch: each step goes out in turn; the operator succeeds once the region shows it", () => {
  const controller = new OperatorController(scheduleConfig());
  const region = regionInfo(1n, [1n, 2n]);
  controller.add(request(region, "replica", addVoterSteps(3n, 7n)), 0);
  const first = controller.dispatch(region, 1);
  assert.deepEqual(first?.changePeer, {
    peer: { id: 7n, storeId: 3n, role: "Learner" },
    changeType: "AddLearnerNode",
  });
  assert.equal(first?.targetPeer, region.leader);
  const withLearner = regionInfo(1n, [1n, 2n], { confVer: 2n, version: 1n });
  withLearner.meta.peers.push({ id: 7n, storeId: 3n, role: "Learner" });
  assert.equal(controller.dispatch(withLearner, 2)?.changePeer?.changeType, "AddNode");
  const promoted = regionInfo(1n, [1n, 2n], { confVer: 3n, version: 1n });
  promoted.meta.peers.push({ id: 7n, storeId: 3n, role: "Voter" });
  assert.equal(controller.dispatch(promoted, 3), null);
  assert.equal(controller.get(1n, 3)?.status, "SUCCESS");
});

Deno.test("a split or an unexplained membership change cancels the operator as stale", () => {
  const controller = new OperatorController(scheduleConfig());
  controller.add(request(regionInfo(1n, [1n, 2n]), "replica", addVoterSteps(3n, 7n)), 0);
  assert.equal(
    controller.dispatch(regionInfo(1n, [1n, 2n], { confVer: 1n, version: 2n }), 1),
    null,
  );
  assert.match(controller.get(1n, 1)!.reason, /version moved from 1 to 2/);
  assert.equal(controller.get(1n, 1)!.status, "CANCEL");
  controller.add(request(regionInfo(2n, [1n, 2n]), "replica", addVoterSteps(3n, 8n)), 0);
  assert.equal(
    controller.dispatch(regionInfo(2n, [1n, 2n], { confVer: 2n, version: 1n }), 1),
    null,
  );
  assert.match(controller.get(2n, 1)!.reason, /conf_ver moved from 1 to 2 after 0/);
});

Deno.test("a step running past its timeout ends the operator TIMEOUT", () => {
  const controller = new OperatorController(scheduleConfig());
  controller.add(request(regionInfo(1n, [1n, 2n]), "leader", transfer(1n, 2n)), 0);
  assert.deepEqual(controller.checkTimeouts(PD_OPERATOR_FAST_STEP_TIMEOUT_MS), []);
  const ended = controller.checkTimeouts(PD_OPERATOR_FAST_STEP_TIMEOUT_MS + 1);
  assert.equal(ended.length, 1);
  assert.equal(ended[0]!.status, "TIMEOUT");
  assert.deepEqual(controller.running(), []);
});

Deno.test(`finished operators stay visible for a while, at most ${PD_OPERATOR_RECORDS_MAX}`, () => {
  const controller = new OperatorController(scheduleConfig({ leaderScheduleLimit: 1 }));
  for (let id = 1n; id <= BigInt(PD_OPERATOR_RECORDS_MAX) + 1n; id++) {
    const region = regionInfo(id, [1n, 2n]);
    controller.add(request(region, "leader", transfer(1n, 2n)), 0);
    assert.ok(controller.cancel(id, "test", 0));
  }
  assert.equal(controller.get(1n, 0), null, "the oldest record went first");
  assert.equal(controller.get(2n, 0)?.status, "CANCEL");
  assert.equal(controller.get(2n, PD_OPERATOR_RECORD_TTL_MS + 1), null, "records expire");
});

Deno.test("a learner added and still pending (waiting for its snapshot) keeps its operator running, not cancelled as stale; promotion follows once it is caught up", () => {
  const controller = new OperatorController(scheduleConfig());
  const region = regionInfo(1n, [1n, 2n, 3n]);
  const op = controller.add(request(region, "replica", addVoterSteps(4n, 9n)), 0);
  assert.equal(typeof op, "object");
  // The AddLearner is in force (conf_ver +1) but the learner is pending.
  const added = regionInfo(1n, [1n, 2n, 3n], { confVer: 2n, version: 1n });
  const learner = { id: 9n, storeId: 4n, role: "Learner" as const };
  added.meta.peers.push(learner);
  added.pendingPeers = [learner];
  assert.equal(controller.dispatch(added, 10)?.changePeer?.changeType, "AddLearnerNode");
  assert.equal(controller.get(1n, 10)?.status, "RUNNING");
  // Caught up: the next step is the promotion.
  added.pendingPeers = [];
  assert.equal(controller.dispatch(added, 20)?.changePeer?.changeType, "AddNode");
  // A conf change the operator did not make still cancels it.
  const moved = regionInfo(1n, [1n, 2n, 3n], { confVer: 4n, version: 1n });
  moved.meta.peers.push(learner);
  assert.equal(controller.dispatch(moved, 30), null);
  assert.equal(controller.get(1n, 30)?.status, "CANCEL");
});

Deno.test("an operator that still needs a Down store (a replica added or promoted there, leadership moved there) ends CANCEL and frees its store's room; one removing a replica there stays", () => {
  const controller = new OperatorController(scheduleConfig({ storeOperatorLimit: 1 }));
  const add = controller.add(
    request(regionInfo(1n, [1n, 2n, 3n]), "region", addVoterSteps(4n, 9n)),
    0,
  );
  const lead = controller.add(request(regionInfo(2n, [1n, 2n, 4n]), "leader", transfer(1n, 4n)), 0);
  const remove: OpStep[] = [{ type: "RemovePeer", storeId: 5n, peerId: 305n }];
  const repair = controller.add(request(regionInfo(3n, [1n, 2n, 5n]), "replica", remove), 0);
  assert.ok(typeof add === "object" && typeof lead === "object" && typeof repair === "object");
  // Store 4's room is taken by the learner being added there.
  assert.equal(controller.storeHasRoom(4n), false);
  assert.deepEqual(controller.cancelTowards(new Set([7n]), 1), []);
  const cancelled = controller.cancelTowards(new Set([4n, 5n]), 1);
  assert.deepEqual(cancelled.map((op) => [op.regionId, op.status, op.reason]), [
    [1n, "CANCEL", "store 4 is down"],
    [2n, "CANCEL", "store 4 is down"],
  ]);
  assert.equal(controller.storeHasRoom(4n), true);
  assert.equal(controller.get(3n, 1)?.status, "RUNNING");
});
