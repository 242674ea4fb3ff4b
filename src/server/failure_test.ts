/**
 * Raftstore region errors reach the client in errorpb's shape, with what it needs to retry:
 * the leader it should go to, the back-off a busy store asks for, the current region.
 */
import assert from "node:assert/strict";
import { metapb } from "../../proto/mod.ts";
import { SERVER_IS_BUSY_BACKOFF_MS } from "../constants.ts";
import type { RegionError } from "../raftstore/errors.ts";
import { failureOfRegionError } from "./failure.ts";
import { regionErrorOf } from "./respond.ts";

const leader = { id: 7n, storeId: 3n, role: metapb.PeerRole.Voter };
const region = {
  id: 2n,
  startKey: new Uint8Array(0),
  endKey: new Uint8Array(0),
  regionEpoch: { confVer: 5n, version: 1n },
  peers: [leader],
};

function answer(error: RegionError) {
  const failure = failureOfRegionError(error);
  assert.notEqual(failure.code, "InvalidArgument");
  // deno-lint-ignore no-explicit-any
  return regionErrorOf(failure as any);
}

Deno.test("region errors map to errorpb: NotLeader names the leader, busy asks a back-off, stale and unknown outcomes say so", () => {
  assert.deepEqual(answer({ code: "NotLeader", regionId: 2n, leader }).notLeader, {
    regionId: 2n,
    leader,
  });
  assert.equal(
    answer({ code: "NotLeader", regionId: 2n, leader: undefined }).notLeader?.leader,
    null,
  );
  const busy = answer({ code: "ServerIsBusy", regionId: 2n, reason: "4096 proposals are waiting" });
  assert.equal(busy.serverIsBusy?.backoffMs, BigInt(SERVER_IS_BUSY_BACKOFF_MS));
  assert.match(busy.serverIsBusy?.reason ?? "", /4096 proposals/);
  // Refused by Raft before it was proposed (too much uncommitted, a transfer): back off and retry.
  assert.ok(answer({ code: "ProposalDropped", regionId: 2n, reason: "x" }).serverIsBusy != null);
  assert.ok(answer({ code: "StaleCommand", regionId: 2n, reason: "overwritten" }).staleCommand);
  assert.ok(answer({ code: "StoreStopped", regionId: 2n, storeId: 1n }).staleCommand);
  assert.equal(
    answer({ code: "ReadIndexTimeout", regionId: 2n, ticks: 20 }).readIndexNotReady?.regionId,
    2n,
  );
  const epoch = answer({
    code: "EpochNotMatch",
    regionId: 2n,
    currentRegion: region,
    atApply: true,
  });
  assert.equal(epoch.epochNotMatch?.currentRegions?.[0]?.regionEpoch?.confVer, 5n);
  assert.equal(epoch.epochNotMatch?.currentRegions?.[0]?.peers?.[0]?.id, 7n);
  assert.equal(answer({ code: "RegionNotFound", regionId: 9n }).regionNotFound?.regionId, 9n);
  // An invalid command is the request's fault, not the region's.
  assert.equal(
    failureOfRegionError({ code: "InvalidCommand", regionId: 2n, reason: "bad" }).code,
    "InvalidArgument",
  );
});
