/** The status HTTP server of a running store. */
import assert from "node:assert/strict";
import { kvrpcpb } from "../../proto/mod.ts";
import { utf8 } from "../../src/util/bytes.ts";
import { TikvClient, withServer } from "./lib.ts";

const E2E = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name: "e2e: /health, /metrics (per-RPC counts and latency), /config and /regions answer",
  ...E2E,
  fn: () =>
    withServer(async (server) => {
      const client = new TikvClient(server.grpcAddr);
      try {
        await client.call("RawPut", {
          request: kvrpcpb.RawPutRequest,
          response: kvrpcpb.RawPutResponse,
        }, {
          context: { regionId: 1n, regionEpoch: { confVer: 1n, version: 1n } },
          key: utf8("k"),
          value: utf8("v"),
        });
      } finally {
        client.close();
      }
      const get = async (path: string) => {
        const response = await fetch(`http://${server.statusAddr}${path}`);
        return { status: response.status, text: await response.text() };
      };
      assert.deepEqual(await get("/health"), { status: 200, text: "ok\n" });
      const metrics = (await get("/metrics")).text;
      assert.match(metrics, /basalt_grpc_requests_total\{rpc="RawPut",outcome="ok"\} 1/);
      assert.match(metrics, /basalt_grpc_request_duration_seconds_count\{rpc="RawPut"\} 1/);
      assert.match(metrics, /basalt_grpc_requests_in_flight 0/);
      assert.match(metrics, /basalt_rocksdb_estimate_num_keys\{cf="default"\}/);
      assert.match(metrics, /basalt_process_resident_memory_bytes \d+/);
      // The raftstore's figures reach the main thread every second: the put went through a
      // round with a synced write, and the one region's peer is awake or asleep.
      let raftstore = "";
      for (
        let i = 0;
        i < 50 && !/basalt_raftstore_synced_writes_total [1-9]/.test(raftstore);
        i++
      ) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        raftstore = (await get("/metrics")).text;
      }
      assert.match(
        raftstore,
        /# TYPE basalt_raftstore_rounds_total counter\nbasalt_raftstore_rounds_total [1-9]/,
      );
      assert.match(raftstore, /basalt_raftstore_synced_writes_total [1-9]/);
      const awake = Number(/basalt_raftstore_peers_awake (\d+)/.exec(raftstore)?.[1]);
      const asleep = Number(/basalt_raftstore_peers_asleep (\d+)/.exec(raftstore)?.[1]);
      assert.equal(awake + asleep, 1, "one region, one peer, awake or asleep");
      assert.match(raftstore, /# TYPE basalt_raftstore_peers_awake gauge/);
      assert.match(raftstore, /basalt_raftstore_messages_dropped_malformed_total 0/);
      const config = JSON.parse((await get("/config")).text);
      assert.equal(config.storage.dataDir, server.dataDir);
      const regions = JSON.parse((await get("/regions")).text);
      assert.equal(regions.regions[0].id, "1");
      assert.equal(regions.regions[0].worker, 0, "each region names the worker serving it");
      assert.equal((await get("/nope")).status, 404);
    }),
});
