/**
 * Commands stay inside the region they were checked against (issue #10 item 0): every raw and
 * transactional write leaves as modifications inside its region, and the commands that work on
 * a whole range — region-wide ResolveLock and PessimisticRollback, GC, KvDeleteRange,
 * RawDeleteRange, scans — leave and read nothing outside it, on a store whose region is not the
 * standalone one. Region bounds are data keys (src/storage/region_range.ts): a raw region
 * [b, d) and a transactional region [enc(b), enc(d)).
 */
import assert from "node:assert/strict";
import { kvrpcpb } from "../../proto/mod.ts";
import { encodeKey } from "../codec/key.ts";
import { MemoryEngine } from "../engine/memory_engine.ts";
import { COLUMN_FAMILIES, type KvEngine } from "../engine/types.ts";
import { GroupCommit, isDataCf, regionContainsKey, type RegionMeta } from "../storage/mod.ts";
import { RecordingWritePath } from "../storage/test_support.ts";
import { compareBytes, fromUtf8, toHex, utf8 } from "../util/bytes.ts";
import { COMMANDS_BY_NAME } from "./commands.ts";
import { newRawStore } from "./raw/store.ts";
import { type Region, standaloneRegion } from "./region.ts";
import { runCommand } from "./respond.ts";
import type { StoreServices } from "./services.ts";
import { newTxnStore } from "./txn/store.ts";

const regionOf = (id: bigint, startKey: Uint8Array, endKey: Uint8Array): Region => ({
  id,
  startKey,
  endKey,
  confVer: 1n,
  version: 1n,
  peerId: id + 100n,
  storeId: 1n,
});
const RAW_REGION = regionOf(2n, utf8("b"), utf8("d"));
const TXN_REGION = regionOf(3n, encodeKey(utf8("b")), encodeKey(utf8("d")));
const ALL_KEYS = standaloneRegion();
const KEYS = ["a", "b", "c", "d", "e"];
/** A timestamp at physical time `ms`. */
const ts = (ms: number) => BigInt(ms) << 18n;

// deno-lint-ignore no-explicit-any
type Answer = any;

/** Services over `engine` serving `regions`, writing through `writes`. */
function servicesOf(engine: KvEngine, regions: Region[], writes: GroupCommit | RecordingWritePath) {
  const raw = newRawStore(engine, { syncLog: false, writes });
  raw.nowUnixSeconds = () => 1_000;
  const services: StoreServices = {
    regions: new Map(regions.map((region) => [region.id, region])),
    raw,
    txn: newTxnStore(engine, { syncLog: false, latestTs: 1n, writes }),
  };
  return services;
}

/**
 * An engine holding raw values and committed transactional data for a..e, and the locks of
 * transaction 80 on every key; a recording store serving the two regions over it.
 */
async function setUp() {
  const engine = new MemoryEngine();
  const seeder = servicesOf(engine, [ALL_KEYS], new GroupCommit(engine, { syncLog: false }));
  const seed = (name: string, request: object) => callOk(seeder, ALL_KEYS, name, request);
  await seed("RawBatchPut", {
    pairs: KEYS.map((k) => ({ key: utf8(k), value: utf8(`raw-${k}`) })),
    ttl: 600n,
  });
  for (const [start, commit] of [[10, 11], [20, 21]] as const) {
    await seed("KvPrewrite", {
      mutations: KEYS.map((k) => ({
        op: kvrpcpb.Op.Put,
        key: utf8(k),
        value: utf8(`${k}@${start}`),
      })),
      primaryLock: utf8("a"),
      startVersion: ts(start),
      lockTtl: 3000n,
    });
    await seed("KvCommit", {
      keys: KEYS.map(utf8),
      startVersion: ts(start),
      commitVersion: ts(commit),
    });
  }
  await seed("KvPrewrite", {
    mutations: KEYS.map((k) => ({ op: kvrpcpb.Op.Put, key: utf8(k), value: utf8(`${k}@80`) })),
    primaryLock: utf8("a"),
    startVersion: ts(80),
    lockTtl: 3000n,
  });
  const recorder = new RecordingWritePath(new GroupCommit(engine, { syncLog: false }));
  const services = servicesOf(engine, [RAW_REGION, TXN_REGION], recorder);
  return { engine, recorder, services };
}

/** Runs RPC `name` in `region` with `request` round-tripped through its codecs. */
async function call(
  services: StoreServices,
  region: Region,
  name: string,
  request: object,
): Promise<Answer> {
  const command = COMMANDS_BY_NAME.get(name);
  if (command === undefined) throw new Error(`no command ${name}`);
  const context = { regionId: region.id, regionEpoch: { confVer: 1n, version: 1n } };
  const decoded = command.requestCodec.decode(
    command.requestCodec.encode({ context, ...request }).finish(),
  );
  const response = await runCommand(services, command, decoded);
  return command.responseCodec.decode(command.responseCodec.encode(response).finish());
}

/** `call`, asserting the answer carries no error of any kind. */
async function callOk(
  services: StoreServices,
  region: Region,
  name: string,
  request: object,
): Promise<Answer> {
  const answer = await call(services, region, name, request);
  const errors = [answer.error, answer.regionError, ...(answer.errors ?? [])].filter(
    (error) => error !== undefined && error !== null && error !== "",
  );
  assert.deepEqual(errors, [], `${name} answered an error`);
  return answer;
}

/** Every entry of the data column families whose data key lies in (or out of) `region`. */
function entries(engine: KvEngine, region: RegionMeta, where: "inside" | "outside"): string[] {
  const found: string[] = [];
  for (const cf of COLUMN_FAMILIES.filter(isDataCf)) {
    using iterator = engine.iterator(cf);
    for (iterator.seekToFirst(); iterator.valid(); iterator.next()) {
      if (regionContainsKey(region, iterator.key()) !== (where === "inside")) continue;
      found.push(`${cf} ${toHex(iterator.key())} ${toHex(iterator.value())}`);
    }
  }
  return found;
}

const outside = (engine: KvEngine, region: RegionMeta) => entries(engine, region, "outside");

function assertInside(region: RegionMeta, modifications: readonly { cf: string }[], what: string) {
  assert.ok(modifications.length > 0, `${what} wrote nothing: the check would prove nothing`);
  for (const modification of modifications as Answer[]) {
    if (!isDataCf(modification.cf)) continue;
    const keys = modification.type === "deleteRange" ? [modification.startKey] : [modification.key];
    for (const key of keys) {
      assert.ok(regionContainsKey(region, key), `${what}: ${modification.type} ${toHex(key)}`);
    }
    if (modification.type === "deleteRange") {
      assert.ok(
        region.endKey.length === 0 || compareBytes(modification.endKey, region.endKey) <= 0,
        `${what}: delete-range ends past the region`,
      );
    }
  }
}

Deno.test("every raw write command writes only inside its region [b, d)", async () => {
  const { engine, recorder, services } = await setUp();
  const before = outside(engine, RAW_REGION);
  const run = async (name: string, request: object) => {
    const from = recorder.writes.length;
    await callOk(services, RAW_REGION, name, request);
    assertInside(RAW_REGION, recorder.modificationsSince(from), name);
  };
  await run("RawPut", { key: utf8("c"), value: utf8("v"), ttl: 60n });
  await run("RawBatchPut", {
    pairs: [{ key: utf8("b"), value: utf8("1") }, { key: utf8("bz"), value: utf8("2") }],
  });
  await run("RawDelete", { key: utf8("bz") });
  await run("RawBatchDelete", { keys: [utf8("b")] });
  await run("RawCompareAndSwap", { key: utf8("c"), previousValue: utf8("v"), value: utf8("w") });
  await run("RawDeleteRange", { startKey: utf8("c"), endKey: utf8("z") });
  await run("RawDeleteRange", { startKey: utf8("b"), endKey: new Uint8Array(0) });
  assert.deepEqual(outside(engine, RAW_REGION), before, "keys outside the region changed");
});

Deno.test("every transactional write command writes only inside its region [enc(b), enc(d))", async () => {
  const { engine, recorder, services } = await setUp();
  const before = outside(engine, TXN_REGION);
  const run = async (name: string, request: object) => {
    const from = recorder.writes.length;
    const answer = await callOk(services, TXN_REGION, name, request);
    assertInside(TXN_REGION, recorder.modificationsSince(from), name);
    return answer;
  };
  const bc = [utf8("b"), utf8("c")];
  const prewrite = (start: number, extra: object = {}) =>
    run("KvPrewrite", {
      mutations: bc.map((key) => ({ op: kvrpcpb.Op.Put, key, value: utf8(`${start}`) })),
      primaryLock: utf8("b"),
      startVersion: ts(start),
      lockTtl: 3000n,
      ...extra,
    });
  // A region-wide resolve first: transaction 80 locks every key a..e.
  await run("KvResolveLock", { startVersion: ts(80), commitVersion: ts(81) });
  await prewrite(100);
  await run("KvCommit", { keys: bc, startVersion: ts(100), commitVersion: ts(101) });
  await prewrite(110, { tryOnePc: true });
  await prewrite(115, { useAsyncCommit: true, secondaries: [utf8("c")] });
  await run("KvCheckSecondaryLocks", { keys: [utf8("bb")], startVersion: ts(115) });
  await run("KvResolveLock", { keys: bc, startVersion: ts(115), commitVersion: 0n });
  await prewrite(120);
  await run("KvTxnHeartBeat", {
    primaryLock: utf8("b"),
    startVersion: ts(120),
    adviseLockTtl: 9000n,
  });
  await run("KvCheckTxnStatus", {
    primaryKey: utf8("b"),
    lockTs: ts(120),
    callerStartTs: ts(125),
    currentTs: ts(1_000_000),
    rollbackIfNotExist: true,
  });
  await run("KvCleanup", { key: utf8("c"), startVersion: ts(120), currentTs: 0n });
  await run("KvPessimisticLock", {
    mutations: bc.map((key) => ({ op: kvrpcpb.Op.PessimisticLock, key })),
    primaryLock: utf8("b"),
    startVersion: ts(130),
    forUpdateTs: ts(130),
    lockTtl: 3000n,
  });
  await run("KVPessimisticRollback", { keys: [], startVersion: ts(130), forUpdateTs: ts(130) });
  await prewrite(140);
  await run("KvBatchRollback", { keys: bc, startVersion: ts(140) });
  await prewrite(150);
  await run("KvResolveLock", { keys: bc, startVersion: ts(150), commitVersion: ts(151) });
  await run("KvGC", { safePoint: ts(1_000) });
  await run("KvDeleteRange", { startKey: utf8("b"), endKey: new Uint8Array(0) });
  assert.deepEqual(outside(engine, TXN_REGION), before, "keys outside the region changed");
});

Deno.test("region-wide ResolveLock, GC and KvDeleteRange on [enc(b), enc(d)) leave every key outside untouched", async () => {
  for (
    const [name, request] of [
      ["KvResolveLock", { startVersion: ts(80), commitVersion: 0n }],
      ["KvResolveLock", {
        txnInfos: [{ txn: ts(80), status: ts(81) }, { txn: ts(70), status: 0n }],
      }],
      ["KvGC", { safePoint: ts(1_000) }],
      ["KvDeleteRange", { startKey: utf8("b"), endKey: new Uint8Array(0) }],
      ["KvDeleteRange", { startKey: utf8("b"), endKey: utf8("z") }],
    ] as const
  ) {
    const { engine, services } = await setUp();
    const before = outside(engine, TXN_REGION);
    const inside = entries(engine, TXN_REGION, "inside");
    await callOk(services, TXN_REGION, name, request);
    assert.deepEqual(outside(engine, TXN_REGION), before, `${name} changed keys outside`);
    assert.notDeepEqual(
      entries(engine, TXN_REGION, "inside"),
      inside,
      `${name} changed nothing inside: the check would prove nothing`,
    );
  }
});

Deno.test("RawDeleteRange on [b, d) leaves every key outside untouched, however far its range reaches", async () => {
  for (const endKey of [new Uint8Array(0), utf8("z"), utf8("d")]) {
    const { engine, services } = await setUp();
    const before = outside(engine, RAW_REGION);
    await callOk(services, RAW_REGION, "RawDeleteRange", { startKey: utf8("b"), endKey });
    assert.deepEqual(outside(engine, RAW_REGION), before);
    assert.equal(engine.get("default", utf8("c")), null, "the region's keys are deleted");
  }
});

Deno.test("scans read only the region's keys, and a key outside it is refused as KeyNotInRegion", async () => {
  const { services } = await setUp();
  await callOk(services, TXN_REGION, "KvResolveLock", { startVersion: ts(80), commitVersion: 0n });
  const raw = await callOk(services, RAW_REGION, "RawScan", { startKey: utf8("b"), limit: 10 });
  assert.deepEqual(raw.kvs.map((pair: Answer) => fromUtf8(pair.key)), ["b", "c"]);
  const reverse = await callOk(services, RAW_REGION, "RawScan", {
    startKey: utf8("z"),
    limit: 10,
    reverse: true,
  });
  assert.deepEqual(reverse.kvs.map((pair: Answer) => fromUtf8(pair.key)), ["c", "b"]);
  const txn = await callOk(services, TXN_REGION, "KvScan", {
    startKey: utf8("b"),
    limit: 10,
    version: ts(50),
  });
  assert.deepEqual(txn.pairs.map((pair: Answer) => fromUtf8(pair.key)), ["b", "c"]);
  const locks = await callOk(services, TXN_REGION, "KvScanLock", {
    startKey: utf8("b"),
    maxVersion: ts(1_000),
  });
  assert.deepEqual(locks.locks, [], "the region's locks were resolved; others are not seen");
  const refused = await call(services, TXN_REGION, "KvGet", { key: utf8("d"), version: ts(50) });
  assert.equal(toHex(refused.regionError.keyNotInRegion.key), toHex(encodeKey(utf8("d"))));
  const rawRefused = await call(services, RAW_REGION, "RawGet", { key: utf8("a") });
  assert.equal(toHex(rawRefused.regionError.keyNotInRegion.key), toHex(utf8("a")));
});
