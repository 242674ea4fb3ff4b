/**
 * The heartbeat answer's encoding: a merge step travels as `pdpb.RegionHeartbeatResponse.merge`
 * (`pdpb.Merge{target}`) and the store's decoding (`operatorOf`) reads back the target.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { pdpb } from "../../../proto/mod.ts";
import { operatorOf } from "../../server/pd_operator.ts";
import type { HeartbeatInstruction } from "../operator.ts";
import { instructionToProto } from "./convert.ts";

Deno.test("a merge instruction is encoded as pdpb.Merge{target} and the store decodes the target region", () => {
  const target = {
    id: 12n,
    startKey: new TextEncoder().encode("m"),
    endKey: new Uint8Array(0),
    regionEpoch: { confVer: 3n, version: 9n },
    peers: [
      { id: 121n, storeId: 1n, role: "Voter" as const },
      { id: 122n, storeId: 2n, role: "Voter" as const },
    ],
  };
  const instruction: HeartbeatInstruction = {
    regionId: 11n,
    regionEpoch: { confVer: 2n, version: 8n },
    targetPeer: { id: 111n, storeId: 1n, role: "Voter" },
    merge: { target },
  };
  const bytes = pdpb.RegionHeartbeatResponse.encode(instructionToProto(instruction)).finish();
  const response = pdpb.RegionHeartbeatResponse.decode(Buffer.from(bytes));
  assert.equal(response.changePeer, null);
  assert.equal(response.transferLeader, null);
  const operator = operatorOf(response);
  assert.equal(operator?.changePeer, undefined);
  assert.equal(operator?.merge?.target.id, 12n);
  assert.deepEqual(operator?.merge?.target.startKey, target.startKey);
  assert.deepEqual(operator?.merge?.target.endKey, target.endKey);
  assert.deepEqual(operator?.merge?.target.regionEpoch, target.regionEpoch);
  assert.deepEqual(
    operator?.merge?.target.peers.map((peer) => [peer.id, peer.storeId]),
    [[121n, 1n], [122n, 2n]],
  );
});

Deno.test("an answer with no step decodes to no operator", () => {
  const response = pdpb.RegionHeartbeatResponse.decode(
    Buffer.from(pdpb.RegionHeartbeatResponse.encode({ regionId: 5n }).finish()),
  );
  assert.equal(operatorOf(response), null);
});
