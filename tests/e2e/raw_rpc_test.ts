/** Every raw RPC through real gRPC against a real store process. */
import assert from "node:assert/strict";
import { kvrpcpb } from "../../proto/mod.ts";
import { fromUtf8, utf8 } from "../../src/util/bytes.ts";
import { crc64 } from "../../src/server/raw/crc64.ts";
import { TikvClient, withServer } from "./lib.ts";

const E2E = { sanitizeOps: false, sanitizeResources: false };
const context = {
  regionId: 1n,
  regionEpoch: { confVer: 1n, version: 1n },
  peer: { id: 2n, storeId: 1n },
};

// deno-lint-ignore no-explicit-any
type Any = any;

/** Calls raw method `name` with its kvrpcpb request and response codecs. */
function raw(client: TikvClient, name: string, request: Record<string, unknown>): Promise<Any> {
  const types: Record<string, [string, string]> = {
    RawCompareAndSwap: ["RawCASRequest", "RawCASResponse"],
  };
  const [requestType, responseType] = types[name] ?? [`${name}Request`, `${name}Response`];
  const codecs = kvrpcpb as unknown as Record<string, Any>;
  return client.call(
    name,
    { request: codecs[requestType]!, response: codecs[responseType]! },
    { context, ...request },
  );
}

const keysOf = (pairs: kvrpcpb.KvPair[]) => pairs.map((pair) => fromUtf8(pair.key));

Deno.test({
  name: "e2e: put, get, batch put/get/delete, delete, cf and TTL behave as TiKV's raw API",
  ...E2E,
  fn: () =>
    withServer(async (server) => {
      const client = new TikvClient(server.grpcAddr);
      try {
        const put = await raw(client, "RawPut", { key: utf8("k1"), value: utf8("v1") });
        assert.ok(put.regionError == null && put.error === "", "a clean put has no error");
        assert.equal(fromUtf8((await raw(client, "RawGet", { key: utf8("k1") })).value), "v1");
        assert.equal((await raw(client, "RawGet", { key: utf8("nope") })).notFound, true);
        const pairs = ["a", "b", "c"].map((k) => ({ key: utf8(k), value: utf8(`v${k}`) }));
        await raw(client, "RawBatchPut", { pairs });
        const got = await raw(client, "RawBatchGet", { keys: [utf8("a"), utf8("x"), utf8("c")] });
        assert.deepEqual(keysOf(got.pairs), ["a", "c"]);
        await raw(client, "RawDelete", { key: utf8("a") });
        await raw(client, "RawBatchDelete", { keys: [utf8("b"), utf8("c")] });
        assert.deepEqual(
          (await raw(client, "RawBatchGet", { keys: pairs.map((p) => p.key) })).pairs,
          [],
        );

        await raw(client, "RawPut", { key: utf8("k1"), value: utf8("in-write"), cf: "write" });
        assert.equal(
          fromUtf8((await raw(client, "RawGet", { key: utf8("k1"), cf: "write" })).value),
          "in-write",
        );
        assert.equal(fromUtf8((await raw(client, "RawGet", { key: utf8("k1") })).value), "v1");

        await raw(client, "RawPut", { key: utf8("short"), value: utf8("v"), ttl: 1n });
        await raw(client, "RawPut", { key: utf8("long"), value: utf8("v"), ttl: 100n });
        const ttl = await raw(client, "RawGetKeyTTL", { key: utf8("long") });
        assert.ok(ttl.ttl > 98n && ttl.ttl <= 100n, `ttl ${ttl.ttl}`);
        assert.equal((await raw(client, "RawGetKeyTTL", { key: utf8("k1") })).ttl, 0n);
        await new Promise((resolve) => setTimeout(resolve, 2100));
        assert.equal((await raw(client, "RawGet", { key: utf8("short") })).notFound, true);
        assert.equal((await raw(client, "RawGetKeyTTL", { key: utf8("short") })).notFound, true);
      } finally {
        client.close();
      }
    }),
});

Deno.test({
  name:
    "e2e: scans (forward, reverse, limit, key_only, end_key, batch each_limit), delete range, CAS, checksum",
  ...E2E,
  fn: () =>
    withServer(async (server) => {
      const client = new TikvClient(server.grpcAddr);
      try {
        const pairs = ["a", "b", "c", "d", "e"].map((k) => ({
          key: utf8(k),
          value: utf8(`v${k}`),
        }));
        await raw(client, "RawBatchPut", { pairs });
        const scan = async (request: Record<string, unknown>) =>
          keysOf((await raw(client, "RawScan", request)).kvs);
        assert.deepEqual(await scan({ startKey: utf8("b"), limit: 2 }), ["b", "c"]);
        assert.deepEqual(await scan({ startKey: utf8("b"), endKey: utf8("d"), limit: 10 }), [
          "b",
          "c",
        ]);
        assert.deepEqual(
          await scan({ startKey: utf8("d"), endKey: utf8("b"), limit: 10, reverse: true }),
          ["c", "b"],
        );
        const keyOnly = await raw(client, "RawScan", { limit: 1, keyOnly: true });
        assert.equal(keyOnly.kvs[0].value.length, 0);
        const batch = await raw(client, "RawBatchScan", {
          ranges: [{ startKey: utf8("a"), endKey: utf8("c") }, { startKey: utf8("d") }],
          eachLimit: 1,
        });
        assert.deepEqual(keysOf(batch.kvs), ["a", "d"]);

        const sum = await raw(client, "RawChecksum", { ranges: [{}] });
        const expected = pairs.reduce((x, p) => x ^ crc64(p.key, p.value), 0n);
        assert.equal(sum.checksum, expected);
        assert.equal(sum.totalKvs, 5n);
        assert.equal(sum.totalBytes, 15n);

        await raw(client, "RawDeleteRange", { startKey: utf8("b"), endKey: utf8("d") });
        assert.deepEqual(await scan({ limit: 10 }), ["a", "d", "e"]);

        const cas = (request: Record<string, unknown>) => raw(client, "RawCompareAndSwap", request);
        assert.equal(
          (await cas({ key: utf8("n"), value: utf8("1"), previousNotExist: true })).succeed,
          true,
        );
        const lost = await cas({ key: utf8("n"), value: utf8("2"), previousValue: utf8("0") });
        assert.deepEqual([lost.succeed, fromUtf8(lost.previousValue)], [false, "1"]);
        // Concurrent increments through CAS: exactly one wins each round.
        const attempts = await Promise.all(
          Array.from(
            { length: 8 },
            () => cas({ key: utf8("n"), value: utf8("2"), previousValue: utf8("1") }),
          ),
        );
        assert.equal(attempts.filter((a) => a.succeed).length, 1);
      } finally {
        client.close();
      }
    }),
});
