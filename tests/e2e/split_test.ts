/**
 * Region split end to end (issue #12 item 1): `tikvpb.Tikv/SplitRegion` on a standalone store
 * and on a three-store cluster — the new regions on every store, PD (embedded or not) knowing
 * them, every key read back through a client that routes by region, writes to both sides, a
 * request under the old epoch answered EpochNotMatch with the current regions, and the new
 * region surviving the loss of its leader's store.
 */
import assert from "node:assert/strict";
import { kvrpcpb, metapb } from "../../proto/mod.ts";
import { PdClient } from "../../src/client/pd_client.ts";
import { RawKV } from "../../src/client/raw.ts";
import { fromUtf8, utf8 } from "../../src/util/bytes.ts";
import { waitFor } from "./cluster.ts";
import { TikvClient, withServer } from "./lib.ts";
import {
  E2E,
  indexOf,
  REPLICATION_FAILOVER_MS,
  REPLICATION_THREE_VOTERS_TIMEOUT_MS,
  startWriters,
  withReplicatedCluster,
} from "./replication_lib.ts";

const SPLIT = { request: kvrpcpb.SplitRegionRequest, response: kvrpcpb.SplitRegionResponse };
const RAW_PUT = { request: kvrpcpb.RawPutRequest, response: kvrpcpb.RawPutResponse };
const show = (value: unknown) =>
  JSON.stringify(value, (_k, v) => typeof v === "bigint" ? String(v) : v);
const text = (bytes: Uint8Array | null | undefined) => bytes == null ? "" : fromUtf8(bytes);
const KEYS = Array.from({ length: 26 }, (_, i) => String.fromCharCode(97 + i).repeat(3));

function contextOf(
  region: metapb.Region.$Properties,
  storeId: bigint,
): kvrpcpb.Context.$Properties {
  return {
    regionId: region.id,
    regionEpoch: region.regionEpoch,
    peer: region.peers?.find((p) => p.storeId === storeId),
  };
}

Deno.test({
  name:
    "standalone SplitRegion: two regions, the embedded PD knows both, every key reads back, a write under the old epoch gets EpochNotMatch with the current regions",
  ...E2E,
  fn: () =>
    withServer(async (server) => {
      const client = await RawKV.connect({ host: server.grpcAddr });
      const tikv = new TikvClient(server.grpcAddr);
      try {
        for (const key of KEYS) await client.put(key, `v-${key}`);
        const region1 = {
          id: 1n,
          regionEpoch: { confVer: 1n, version: 1n },
          peers: [{ id: 2n, storeId: 1n }],
        };
        const split = await tikv.call<
          kvrpcpb.SplitRegionRequest.$Properties,
          kvrpcpb.SplitRegionResponse
        >(
          "SplitRegion",
          SPLIT,
          { context: contextOf(region1, 1n), splitKeys: [utf8("mmm")], isRawKv: true },
        );
        assert.equal(split.regionError, null, show(split.regionError));
        assert.deepEqual(split.regions.map((r) => [text(r.startKey), text(r.endKey)]), [
          ["", "mmm"],
          ["mmm", ""],
        ]);
        assert.equal(text(split.left?.endKey), "mmm");
        // The old epoch is refused, naming the regions as they are now.
        const stale = await tikv.call<kvrpcpb.RawPutRequest.$Properties, kvrpcpb.RawPutResponse>(
          "RawPut",
          RAW_PUT,
          { context: contextOf(region1, 1n), key: utf8("aaa"), value: utf8("stale") },
        );
        assert.ok(stale.regionError?.epochNotMatch != null, show(stale.regionError));
        // The region as it is now, and the one its split made (TiKV's sibling regions).
        assert.deepEqual(
          (stale.regionError.epochNotMatch.currentRegions ?? []).map((r) => text(r.startKey)),
          ["mmm", ""],
        );
        // The embedded PD answers GetRegion with the new regions.
        const pd = await PdClient.connect([server.grpcAddr]);
        try {
          await waitFor("the embedded PD to know the new region", async () => {
            const located = await pd.getRegion(utf8("qqq"));
            return text(located?.region.startKey) === "mmm";
          }, 10_000);
        } finally {
          pd.close();
        }
        // A client routing by region (it starts from the one region and follows the errors).
        const pairs = await client.scan("", "", { limit: 1000 });
        assert.deepEqual(pairs.map((p) => text(p.key)), KEYS);
        await client.put("bbb", "left-after");
        await client.put("ppp", "right-after");
        assert.equal(text(await client.get("bbb")), "left-after");
        assert.equal(text(await client.get("ppp")), "right-after");
      } finally {
        tikv.close();
        client.close();
      }
    }),
});

Deno.test({
  name:
    "cluster SplitRegion: both regions get three replicas and leaders, PD knows them, keys route to each, and the new region survives its leader's store being killed",
  ...E2E,
  fn: () =>
    withReplicatedCluster({}, async ({ cluster, pd, client }) => {
      for (const key of KEYS) await client.put(key, `v-${key}`);
      const first = await pd.getRegion(new Uint8Array(0));
      assert.ok(first !== null && first.leader !== null);
      const leaderIndex = indexOf(cluster, first.leader!.storeId!);
      const tikv = new TikvClient(cluster.storeAddr(leaderIndex));
      try {
        const split = await tikv.call<
          kvrpcpb.SplitRegionRequest.$Properties,
          kvrpcpb.SplitRegionResponse
        >(
          "SplitRegion",
          SPLIT,
          {
            context: contextOf(first.region, first.leader!.storeId!),
            splitKeys: [utf8("mmm")],
            isRawKv: true,
          },
        );
        assert.equal(split.regionError, null, show(split.regionError));
        assert.equal(split.regions.length, 2);
      } finally {
        tikv.close();
      }
      let right: Awaited<ReturnType<typeof pd.getRegion>> = null;
      let left: Awaited<ReturnType<typeof pd.getRegion>> = null;
      await waitFor("PD to know both regions with three voters and a leader each", async () => {
        right = await pd.getRegion(utf8("qqq"));
        left = await pd.getRegion(utf8("aaa"));
        return right !== null && text(right.region.startKey) === "mmm" &&
          (right.region.peers ?? []).length === 3 && right.leader !== null &&
          left !== null && text(left.region.endKey) === "mmm" && left.leader !== null;
      }, REPLICATION_THREE_VOTERS_TIMEOUT_MS);
      assert.notEqual(left!.region.id, right!.region.id);
      const pairs = await client.scan("", "", { limit: 1000 });
      assert.deepEqual(pairs.map((p) => text(p.key)), KEYS);
      // Kill the right region's leader's store: the region elects another and takes writes.
      const victim = indexOf(cluster, right!.leader!.storeId!);
      await cluster.kill(victim);
      const deadline = Date.now() + REPLICATION_FAILOVER_MS * 2;
      let written = false;
      while (!written && Date.now() < deadline) {
        try {
          await client.put("zzz-after-kill", "v");
          written = true;
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      }
      assert.ok(written, "the right region took a write after its leader's store was killed");
      assert.equal(text(await client.get("qqq")), "v-qqq");
      assert.equal(text(await client.get("aaa")), "v-aaa");
    }),
});

Deno.test({
  name:
    "cluster split checker: under live raw writes a region past region-max-keys splits by itself, again and again; no write fails and every acknowledged key reads back",
  ...E2E,
  fn: () =>
    withReplicatedCluster({
      config: [
        "[coprocessor]",
        "region-split-keys = 200",
        "[raftstore]",
        'split-region-check-tick-interval = "500ms"',
        "",
      ].join("\n"),
    }, async ({ pd, client }) => {
      const writers = startWriters(client, { prefix: "live-", count: 4 });
      let regions = 0;
      try {
        await waitFor("the split checker to make at least four regions", async () => {
          const empty = new Uint8Array(0);
          regions = (await pd.scanRegions({ startKey: empty, endKey: empty, limit: 1000 })).length;
          return regions >= 4;
        }, REPLICATION_THREE_VOTERS_TIMEOUT_MS * 2);
      } finally {
        await writers.stop();
      }
      assert.equal(writers.failures(), 0, `a write failed: ${writers.lastError()}`);
      const acknowledged = new Set(writers.acknowledged);
      assert.ok(acknowledged.size >= 600, `only ${acknowledged.size} writes`);
      const found = new Set(
        (await client.scan("live-", "live.", { limit: 100_000 })).map((p) => text(p.key)),
      );
      const missing = [...acknowledged].filter((key) => !found.has(key));
      assert.deepEqual(missing.slice(0, 5), [], `${missing.length} acknowledged keys missing`);
      console.log(`split checker: ${regions} regions, ${acknowledged.size} writes, none failed`);
    }),
});
