/**
 * Region-group workers seen from outside: requests run in the worker of their region, a
 * BatchCommands message is answered as its sub-requests complete, and expired raw values are
 * deleted from disk by the workers' sweep.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { kvrpcpb, tikvpb } from "../../proto/mod.ts";
import { RocksDbEngine } from "../../src/engine/rocksdb_engine.ts";
import { fromUtf8, utf8 } from "../../src/util/bytes.ts";
import { TikvClient, withServer } from "./lib.ts";

const E2E = { sanitizeOps: false, sanitizeResources: false };
const good = { regionId: 1n, regionEpoch: { confVer: 1n, version: 1n } };

async function configFile(toml: string): Promise<string> {
  const path = await Deno.makeTempFile({ prefix: "basalt_e2e_config_", suffix: ".toml" });
  await Deno.writeTextFile(path, toml);
  return path;
}

Deno.test({
  name: "e2e: with 3 region workers, region 1 is served and other ids are refused by theirs",
  ...E2E,
  fn: async () => {
    const config = await configFile("[raftstore]\nstore-pool-size = 3\n");
    try {
      await withServer(async (server) => {
        const client = new TikvClient(server.grpcAddr);
        try {
          const put = { request: kvrpcpb.RawPutRequest, response: kvrpcpb.RawPutResponse };
          const get = { request: kvrpcpb.RawGetRequest, response: kvrpcpb.RawGetResponse };
          await client.call("RawPut", put, { context: good, key: utf8("k"), value: utf8("v") });
          for (const regionId of [0n, 2n, 3n, 4n]) {
            const answer = await client.call<unknown, kvrpcpb.RawGetResponse>(
              "RawGet",
              get,
              { context: { regionId }, key: utf8("k") },
            );
            assert.equal(answer.regionError?.regionNotFound?.regionId, regionId);
          }
          const answer = await client.call<unknown, kvrpcpb.RawGetResponse>("RawGet", get, {
            context: good,
            key: utf8("k"),
          });
          assert.equal(fromUtf8(answer.value), "v");
        } finally {
          client.close();
        }
      }, { args: ["--config", config] });
    } finally {
      await Deno.remove(config);
    }
  },
});

Deno.test({
  name: "e2e: BatchCommands answers quick sub-requests before a slow one of the same message",
  ...E2E,
  fn: () =>
    withServer(async (server) => {
      const client = new grpc.Client(server.grpcAddr, grpc.credentials.createInsecure());
      const stream = client.makeBidiStreamRequest<Uint8Array, Uint8Array>(
        "/tikvpb.Tikv/BatchCommands",
        (bytes) => Buffer.from(bytes),
        (buffer) => new Uint8Array(buffer),
      );
      const messages: { atMs: number; message: tikvpb.BatchCommandsResponse }[] = [];
      const startMs = performance.now();
      const allAnswered = new Promise<void>((resolve, reject) => {
        let answered = 0;
        stream.on("data", (bytes: Uint8Array) => {
          const message = tikvpb.BatchCommandsResponse.decode(bytes);
          messages.push({ atMs: performance.now() - startMs, message });
          answered += message.requestIds.length;
          if (answered === 3) resolve();
        });
        stream.on("error", reject);
      });
      try {
        stream.write(
          tikvpb.BatchCommandsRequest.encode({
            requests: [
              { Empty: { testId: 1n, delayTime: 600n } },
              { RawPut: { context: good, key: utf8("a"), value: utf8("1") } },
              { RawGet: { context: good, key: utf8("missing") } },
            ],
            requestIds: [11n, 12n, 13n],
          }).finish(),
        );
        await allAnswered;
        const slow = messages.find((m) => m.message.requestIds.includes(11n))!;
        const quick = messages.filter((m) => !m.message.requestIds.includes(11n));
        assert.ok(quick.length >= 1, "the quick answers came in a message of their own");
        for (const m of quick) assert.ok(m.atMs < slow.atMs, "quick answers came first");
        assert.ok(slow.atMs >= 550, `the Empty waited its delay (${slow.atMs} ms)`);
        const byId = new Map(
          messages.flatMap((m) =>
            m.message.requestIds.map((id, i) => [id, m.message.responses[i]!])
          ),
        );
        assert.equal(byId.get(12n)!.cmd, "RawPut");
        assert.equal(byId.get(13n)!.RawGet!.notFound, true);
        assert.equal(byId.get(11n)!.Empty!.testId, 1n);
      } finally {
        stream.end();
        client.close();
      }
    }),
});

Deno.test({
  name: "e2e: expired raw values are deleted from disk by the sweep, live ones stay",
  ...E2E,
  fn: async () => {
    const config = await configFile('[storage]\nttl-check-poll-interval = "200ms"\n');
    try {
      await withServer(async (server) => {
        const client = new TikvClient(server.grpcAddr);
        const put = { request: kvrpcpb.RawBatchPutRequest, response: kvrpcpb.RawBatchPutResponse };
        try {
          await client.call("RawBatchPut", put, {
            context: good,
            pairs: [
              { key: utf8("brief"), value: utf8("x") },
              { key: utf8("lasting"), value: utf8("y") },
            ],
            ttls: [1n, 3600n],
          });
          // Expiry has one-second resolution: "brief" is gone within 2 s, then swept.
          await new Promise((resolve) => setTimeout(resolve, 2_600));
        } finally {
          client.close();
        }
        assert.equal(await server.stop(), 0);
        const engine = RocksDbEngine.open(`${server.dataDir}/db`, { createIfMissing: false });
        try {
          assert.equal(engine.get("default", utf8("brief")), null, "the expired value was deleted");
          assert.notEqual(engine.get("default", utf8("lasting")), null);
        } finally {
          engine.close();
        }
      }, { args: ["--config", config] });
    } finally {
      await Deno.remove(config);
    }
  },
});
