import assert from "node:assert/strict";
import { kvrpcpb } from "../../../proto/mod.ts";
import { MemoryEngine } from "../../engine/memory_engine.ts";
import { fromUtf8, utf8 } from "../../util/bytes.ts";
import { standaloneRegion } from "../region.ts";
import { Latches } from "./latches.ts";
import { newTxnStore } from "../txn/store.ts";
import { COMMANDS_BY_NAME } from "../commands.ts";
import { runCommand } from "../respond.ts";
import type { StoreServices } from "../services.ts";
import { crc64 } from "./crc64.ts";

const CONTEXT = { regionId: 1n, regionEpoch: { confVer: 1n, version: 1n } };

function newServices(): { services: StoreServices; clock: { now: number } } {
  const clock = { now: 1_000_000 };
  const region = standaloneRegion();
  const engine = new MemoryEngine();
  const services: StoreServices = {
    raw: {
      engine,
      latches: new Latches(),
      syncLog: false,
      nowUnixSeconds: () => clock.now,
    },
    txn: newTxnStore(engine, { syncLog: false, latestTs: 1n }),
    regions: new Map([[region.id, region]]),
  };
  return { services, clock };
}

function call(
  services: StoreServices,
  name: string,
  request: Record<string, unknown>,
  // deno-lint-ignore no-explicit-any
): Promise<any> {
  const command = COMMANDS_BY_NAME.get(name)!;
  // Round-trip through the codec, as the gRPC edge does.
  const decoded = command.requestCodec.decode(
    command.requestCodec.encode({ context: CONTEXT, ...request }).finish(),
  );
  return runCommand(services, command, decoded);
}

Deno.test("RawPut with ttl: readable before expiry, invisible to get, scan and checksum after", async () => {
  const { services, clock } = newServices();
  await call(services, "RawPut", { key: utf8("k"), value: utf8("v"), ttl: 10n });
  assert.equal(fromUtf8((await call(services, "RawGet", { key: utf8("k") })).value), "v");
  assert.equal((await call(services, "RawGetKeyTTL", { key: utf8("k") })).ttl, 10n);
  clock.now += 10;
  assert.equal((await call(services, "RawGet", { key: utf8("k") })).notFound, true);
  assert.deepEqual((await call(services, "RawScan", { limit: 10 })).kvs, []);
  assert.equal((await call(services, "RawChecksum", { ranges: [{}] })).totalKvs, 0n);
  assert.equal((await call(services, "RawGetKeyTTL", { key: utf8("k") })).notFound, true);
});

Deno.test("RawScan reverse: start_key is the exclusive upper bound, end_key the inclusive lower", async () => {
  const { services } = newServices();
  const pairs = ["a", "b", "c", "d"].map((k) => ({ key: utf8(k), value: utf8(k) }));
  await call(services, "RawBatchPut", { pairs });
  const keys = async (request: Record<string, unknown>) =>
    (await call(services, "RawScan", request)).kvs.map((p: kvrpcpb.KvPair) => fromUtf8(p.key));
  assert.deepEqual(
    await keys({ startKey: utf8("d"), endKey: utf8("b"), limit: 10, reverse: true }),
    [
      "c",
      "b",
    ],
  );
  assert.deepEqual(await keys({ limit: 2, reverse: true }), ["d", "c"]);
  assert.deepEqual(await keys({ startKey: utf8("b"), endKey: utf8("d"), limit: 10 }), ["b", "c"]);
});

Deno.test("RawCompareAndSwap succeeds only against the current value", async () => {
  const { services } = newServices();
  const first = await call(services, "RawCompareAndSwap", {
    key: utf8("k"),
    value: utf8("1"),
    previousNotExist: true,
  });
  assert.equal(first.succeed, true);
  const stale = await call(services, "RawCompareAndSwap", {
    key: utf8("k"),
    value: utf8("2"),
    previousValue: utf8("0"),
  });
  assert.equal(stale.succeed, false);
  assert.equal(fromUtf8(stale.previousValue), "1");
});

Deno.test("RawChecksum is the XOR of CRC-64/XZ over key then value, with totals", async () => {
  const { services } = newServices();
  await call(services, "RawBatchPut", {
    pairs: [{ key: utf8("a"), value: utf8("xy") }, { key: utf8("b"), value: utf8("z") }],
  });
  const response = await call(services, "RawChecksum", { ranges: [{}] });
  assert.equal(response.checksum, crc64(utf8("axy")) ^ crc64(utf8("bz")));
  assert.equal(response.totalKvs, 2n);
  assert.equal(response.totalBytes, 5n);
});

Deno.test("a request for an unknown region gets region_not_found; a stale epoch gets epoch_not_match", async () => {
  const { services } = newServices();
  const command = COMMANDS_BY_NAME.get("RawGet")!;
  const missing = await runCommand(services, command, {
    context: { regionId: 7n },
    key: utf8("k"),
  });
  assert.equal((missing as kvrpcpb.RawGetResponse).regionError?.regionNotFound?.regionId, 7n);
  const stale = await runCommand(services, command, {
    context: { regionId: 1n, regionEpoch: { confVer: 1n, version: 0n } },
    key: utf8("k"),
  });
  const current = (stale as kvrpcpb.RawGetResponse).regionError?.epochNotMatch?.currentRegions;
  assert.equal(current?.[0]?.regionEpoch?.version, 1n);
});

Deno.test("a key outside the region gets key_not_in_region", async () => {
  const { services } = newServices();
  services.regions = new Map([[1n, { ...standaloneRegion(), endKey: utf8("m") }]]);
  const response = await call(services, "RawPut", { key: utf8("z"), value: utf8("v") });
  assert.equal(fromUtf8(response.regionError.keyNotInRegion.key), "z");
});

Deno.test("an oversized key or entry is refused in the error field; a bad cf too", async () => {
  const { services } = newServices();
  const bigKey = await call(services, "RawPut", { key: new Uint8Array(8 * 1024 + 1) });
  assert.match(bigKey.error, /key is too large/);
  const bigValue = await call(services, "RawPut", {
    key: utf8("k"),
    value: new Uint8Array(8 * 1024 * 1024),
  });
  assert.match(bigValue.error, /entry is too large/);
  const badCf = await call(services, "RawScan", { cf: "raft", limit: 1 });
  assert.match(badCf.kvs[0].error.abort, /invalid column family "raft"/);
});

Deno.test("RawBatchScan: a range without an end stops at the next range's start, as TiKV", async () => {
  const { services } = newServices();
  for (const key of ["s1", "s2", "s3", "s4", "s5"]) {
    await call(services, "RawPut", { key: utf8(key), value: utf8(key) });
  }
  const answer = await call(services, "RawBatchScan", {
    ranges: [{ startKey: utf8("s1") }, { startKey: utf8("s4") }],
    eachLimit: 10,
  });
  assert.deepEqual(answer.kvs.map((kv: { key: Uint8Array }) => fromUtf8(kv.key)), [
    "s1",
    "s2",
    "s3",
    "s4",
    "s5",
  ]);
});
