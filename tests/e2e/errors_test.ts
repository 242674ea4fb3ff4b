/** Error paths: each is answered, and the server keeps serving afterwards. */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { kvrpcpb } from "../../proto/mod.ts";
import { fromUtf8, utf8 } from "../../src/util/bytes.ts";
import { TikvClient, withServer } from "./lib.ts";

const E2E = { sanitizeOps: false, sanitizeResources: false };
const codecs = { request: kvrpcpb.RawPutRequest, response: kvrpcpb.RawPutResponse };
const getCodecs = { request: kvrpcpb.RawGetRequest, response: kvrpcpb.RawGetResponse };
const good = { regionId: 1n, regionEpoch: { confVer: 1n, version: 1n } };

Deno.test({
  name:
    "e2e: region errors, size limits, malformed payloads and unknown RPCs leave the server serving",
  ...E2E,
  fn: () =>
    withServer(async (server) => {
      const client = new TikvClient(server.grpcAddr);
      try {
        const put = (request: kvrpcpb.RawPutRequest.$Properties) =>
          client.call<kvrpcpb.RawPutRequest.$Properties, kvrpcpb.RawPutResponse>(
            "RawPut",
            codecs,
            request,
          );
        const missing = await put({ context: { regionId: 9n }, key: utf8("k"), value: utf8("v") });
        assert.equal(missing.regionError?.regionNotFound?.regionId, 9n);
        const stale = await put({ context: { regionId: 1n }, key: utf8("k"), value: utf8("v") });
        assert.equal(stale.regionError?.epochNotMatch?.currentRegions?.[0]?.id, 1n);
        const bigKey = await put({
          context: good,
          key: new Uint8Array(8 * 1024 + 1),
          value: utf8("v"),
        });
        assert.match(bigKey.error, /key is too large/);
        const bigEntry = await put({
          context: good,
          key: utf8("k"),
          value: new Uint8Array(8 * 1024 * 1024),
        });
        assert.match(bigEntry.error, /entry is too large/);

        await assert.rejects(
          client.callBytes("RawGet", new Uint8Array([0x0a, 0xff, 0xff, 0xff])),
          (error: grpc.ServiceError) => error.code === grpc.status.INVALID_ARGUMENT,
        );
        await assert.rejects(
          client.callBytes("KvImport", new Uint8Array(0)),
          (error: grpc.ServiceError) => error.code === grpc.status.UNIMPLEMENTED,
        );
        await assert.rejects(
          client.callBytes("NoSuchMethod", new Uint8Array(0)),
          (error: grpc.ServiceError) => error.code === grpc.status.UNIMPLEMENTED,
        );

        await put({ context: good, key: utf8("after"), value: utf8("ok") });
        const after = await client.call<kvrpcpb.RawGetRequest.$Properties, kvrpcpb.RawGetResponse>(
          "RawGet",
          getCodecs,
          { context: good, key: utf8("after") },
        );
        assert.equal(fromUtf8(after.value), "ok");
      } finally {
        client.close();
      }
    }),
});

Deno.test({
  name: "e2e: BatchCommands answers every sub-request by request id, unsupported ones included",
  ...E2E,
  fn: () =>
    withServer(async (server) => {
      const client = new TikvClient(server.grpcAddr);
      const stream = client.batchCommands();
      try {
        const puts = Array.from({ length: 64 }, (_, i) => ({
          RawPut: { context: good, key: utf8(`k${i}`), value: utf8(`v${i}`) },
        }));
        const ids = puts.map((_, i) => BigInt(1000 + i));
        const first = await stream.send({ requests: puts, requestIds: ids });
        assert.deepEqual(first.requestIds, ids);
        assert.ok(first.responses.every((r) => r.cmd === "RawPut" && r.RawPut?.error === ""));

        const second = await stream.send({
          requests: [
            { RawGet: { context: good, key: utf8("k7") } },
            { Import: { commitVersion: 1n } },
            { Empty: { testId: 42n } },
            { RawGet: { context: { regionId: 5n }, key: utf8("k7") } },
          ],
          requestIds: [1n, 2n, 3n, 4n],
        });
        // deno-lint-ignore no-explicit-any
        const [get, unsupported, empty, wrongRegion] = second.responses as any[];
        assert.equal(fromUtf8(get!.RawGet!.value), "v7");
        assert.match(unsupported!.Import!.regionError!.message, /not supported/);
        assert.equal(empty!.Empty!.testId, 42n);
        assert.equal(wrongRegion!.RawGet!.regionError!.regionNotFound!.regionId, 5n);

        const third = await stream.send({
          requests: [{ RawGet: { context: good, key: utf8("k63") } }],
          requestIds: [9n],
        });
        assert.equal(fromUtf8(third.responses[0]!.RawGet!.value!), "v63");
      } finally {
        stream.close();
        client.close();
      }
    }),
});
