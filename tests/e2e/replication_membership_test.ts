/**
 * Membership through PD's operators, as an operator runs them with `basalt-ctl` (issue #10
 * item 10: "remove a peer and add it back").
 *
 * The leader's own peer is removed (`operator add remove-peer`: PD moves leadership away first,
 * then removes it); its store stops serving the region with that peer (its `/regions` no longer
 * lists it). The store gets a replica again under a new peer id (PD's admin `add-peer`
 * operator, or PD's replica checker when it comes first: it restores three replicas by itself,
 * and only that store can take one). Writes go on meanwhile; made leader, the new replica
 * serves every write, those made after the removal included (it caught up by snapshot: a new
 * replica has no log).
 */
import assert from "node:assert/strict";
import { waitFor } from "./cluster.ts";
import { ctl } from "./ctl.ts";
import {
  E2E,
  leadAndScan,
  leaderIndex,
  missingFrom,
  putKeys,
  regionView,
  REPLICATION_THREE_VOTERS_TIMEOUT_MS,
  withReplicatedCluster,
} from "./replication_lib.ts";

/** Writes before the removal, and while the store holds no replica. */
const WRITES_PER_PHASE = 100;

/** Whether the store's status port lists region `regionId` with peer `peerId` among its peers. */
async function servesWithPeer(statusAddr: string, regionId: bigint, peerId: bigint) {
  const response = await fetch(`http://${statusAddr}/regions`);
  const body = await response.json() as {
    regions: { id: string; peers: { id: string }[] }[];
  };
  return body.regions.some((r) =>
    r.id === regionId.toString() && r.peers.some((p) => p.id === peerId.toString())
  );
}

Deno.test({
  name:
    "replication: the leader's peer removed by a PD operator (ctl) leaves its store, and added back under a new peer id it catches up by snapshot and serves every write",
  ...E2E,
  fn: () =>
    withReplicatedCluster({}, async (rc) => {
      const pdFlag = ["--pd", rc.cluster.pdAddr];
      const before = await putKeys(rc.client, { prefix: "before-", count: WRITES_PER_PHASE });
      const target = await leaderIndex(rc);
      const storeId = rc.cluster.storeId(target);
      const view = await regionView(rc.pd);
      const regionId = view.regionId;
      const oldPeer = view.region.peers!.find((p) => p.storeId === storeId)!.id!;

      const removal = await ctl([
        ...pdFlag,
        ...["operator", "add", "remove-peer", `${regionId}`, `${storeId}`],
      ]);
      assert.equal(removal.code, 0, `ctl remove-peer: ${removal.stderr}`);
      // As soon as PD has dropped the peer, add one back on the store (admin API, in process, to
      // come before PD's replica checker, which runs once a second and would add it too).
      let addedBy = "";
      await waitFor(`PD to drop peer ${oldPeer} of region ${regionId}`, async () => {
        const peers = (await regionView(rc.pd)).region.peers ?? [];
        if (peers.some((p) => p.id === oldPeer)) return false;
        if (peers.some((p) => p.storeId === storeId)) {
          addedBy = "PD's replica checker";
          return true;
        }
        const added = await rc.admin.admin("AddOperator", {
          action: "add-peer",
          regionId: regionId.toString(),
          storeId: storeId.toString(),
        });
        const error = added.error as { message?: string } | undefined;
        if (error === undefined) addedBy = "the admin API's add-peer operator";
        else {
          assert.match(error.message ?? "", /already has peer|no room for/, JSON.stringify(error));
          addedBy = "PD's replica checker";
        }
        return true;
      }, REPLICATION_THREE_VOTERS_TIMEOUT_MS);
      const statusAddr = rc.cluster.statusAddr(target);
      await waitFor(
        `store ${storeId} to stop serving region ${regionId} with peer ${oldPeer}`,
        async () => !(await servesWithPeer(statusAddr, regionId, oldPeer)),
      );
      const during = await putKeys(rc.client, { prefix: "during-", count: WRITES_PER_PHASE });
      let newPeer = 0n;
      await waitFor(`a voter on store ${storeId} again`, async () => {
        const peers = (await regionView(rc.pd)).region.peers ?? [];
        const peer = peers.find((p) => p.storeId === storeId && (p.role ?? 0) === 0);
        newPeer = peer?.id ?? 0n;
        return peer !== undefined;
      }, REPLICATION_THREE_VOTERS_TIMEOUT_MS);
      assert.notEqual(newPeer, oldPeer, "the replica added back has a new peer id");

      assert.notEqual(addedBy, "");
      const pairs = await leadAndScan(rc, target);
      const missing = missingFrom(pairs, [...before, ...during]);
      assert.deepEqual(missing.slice(0, 5), [], `${missing.length} writes missing on the new peer`);
      console.log(
        `replication: peer ${oldPeer} on store ${storeId} removed; peer ${newPeer} added back ` +
          `(by ${addedBy}); ${before.length + during.length} writes read from it as leader`,
      );
    }),
});
