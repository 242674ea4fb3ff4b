/**
 * What a store reads in PD's RegionHeartbeatResponse: the operator step it carries out on the
 * region (a membership change, a leadership transfer, a merge). Pure (no gRPC, no FFI), so the
 * cluster simulator reads PD's answers with it too.
 *
 * @module
 */
import { metapb, type pdpb } from "../../proto/mod.ts";
import { ConfChangeType } from "../raft/mod.ts";
import { regionFromProto as metaFromProto } from "../raftstore/local_state.ts";
import type { RegionOperator } from "./worker_raftstore.ts";

/** The operator a RegionHeartbeatResponse carries that a store carries out, or null. */
export function operatorOf(response: pdpb.RegionHeartbeatResponse): RegionOperator | null {
  const change = response.changePeer;
  if (change?.peer != null) {
    const changeType = (change.changeType ?? 0) as number as ConfChangeType;
    return {
      changePeer: {
        changeType,
        peer: {
          id: change.peer.id ?? 0n,
          storeId: change.peer.storeId ?? 0n,
          // The role follows from the change (PD's peer may leave it unset).
          role: changeType === ConfChangeType.AddLearnerNode
            ? metapb.PeerRole.Learner
            : metapb.PeerRole.Voter,
        },
      },
    };
  }
  const transfer = response.transferLeader;
  if (transfer?.peer != null) return { transferLeader: { peerId: transfer.peer.id ?? 0n } };
  if (response.merge?.target != null) {
    return { merge: { target: metaFromProto(response.merge.target) } };
  }
  return null;
}
