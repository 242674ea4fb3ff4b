/**
 * The transactional commands as the gRPC edge runs them (decode → region check → scheduler →
 * response), on the in-memory engine: each case is a protocol exchange a TiKV client makes.
 */
import assert from "node:assert/strict";
import { kvrpcpb } from "../../../proto/mod.ts";
import { MemoryEngine } from "../../engine/memory_engine.ts";
import { fromUtf8, utf8 } from "../../util/bytes.ts";
import { COMMANDS_BY_NAME } from "../commands.ts";
import { Latches } from "../raw/latches.ts";
import { standaloneRegion } from "../region.ts";
import { runCommand } from "../respond.ts";
import type { StoreServices } from "../services.ts";
import { newTxnStore } from "./store.ts";

const CONTEXT = { regionId: 1n, regionEpoch: { confVer: 1n, version: 1n } };
/** A timestamp at physical time `ms` (TTLs are measured on the physical part). */
const ts = (ms: number, logical = 0) => (BigInt(ms) << 18n) + BigInt(logical);

function newServices(): StoreServices {
  const engine = new MemoryEngine();
  const region = standaloneRegion();
  return {
    regions: new Map([[region.id, region]]),
    raw: { engine, latches: new Latches(), syncLog: false, nowUnixSeconds: () => 0 },
    txn: newTxnStore(engine, { syncLog: false, latestTs: 1n }),
  };
}

// deno-lint-ignore no-explicit-any
type Answer = any;

/** Runs RPC `name` with `request` round-tripped through its codecs, as the worker does. */
async function call(services: StoreServices, name: string, request: object): Promise<Answer> {
  const command = COMMANDS_BY_NAME.get(name);
  if (command === undefined) throw new Error(`no command ${name}`);
  const decoded = command.requestCodec.decode(
    command.requestCodec.encode({ context: CONTEXT, ...request }).finish(),
  );
  const response = await runCommand(services, command, decoded);
  return command.responseCodec.decode(command.responseCodec.encode(response).finish());
}

const put = (key: string, value: string) => ({
  op: kvrpcpb.Op.Put,
  key: utf8(key),
  value: utf8(value),
});

async function commitTxn(
  services: StoreServices,
  options: { start: bigint; commit: bigint; pairs: [string, string][] },
): Promise<void> {
  const prewrite = await call(services, "KvPrewrite", {
    mutations: options.pairs.map(([k, v]) => put(k, v)),
    primaryLock: utf8(options.pairs[0]![0]),
    startVersion: options.start,
    lockTtl: 3000n,
  });
  assert.deepEqual(prewrite.errors, []);
  const commit = await call(services, "KvCommit", {
    keys: options.pairs.map(([k]) => utf8(k)),
    startVersion: options.start,
    commitVersion: options.commit,
  });
  assert.equal(commit.error, null);
}

async function get(services: StoreServices, key: string, version: bigint): Promise<Answer> {
  return await call(services, "KvGet", { key: utf8(key), version });
}

Deno.test("2PC: a prewritten key blocks readers above its start ts until commit", async () => {
  const services = newServices();
  const prewrite = await call(services, "KvPrewrite", {
    mutations: [put("a", "1"), put("b", "2")],
    primaryLock: utf8("a"),
    startVersion: ts(1000),
    lockTtl: 3000n,
  });
  assert.deepEqual(prewrite.errors, []);
  const blocked = await get(services, "b", ts(1001));
  assert.equal(blocked.error.locked.lockVersion, ts(1000));
  assert.equal(fromUtf8(blocked.error.locked.primaryLock), "a");
  assert.equal((await get(services, "b", ts(999))).notFound, true, "below the start ts: absent");

  await call(services, "KvCommit", {
    keys: [utf8("a"), utf8("b")],
    startVersion: ts(1000),
    commitVersion: ts(1002),
  });
  assert.equal(fromUtf8((await get(services, "b", ts(1002))).value), "2");
  assert.equal((await get(services, "b", ts(1001))).notFound, true, "below the commit ts");

  const batch = await call(services, "KvBatchGet", {
    keys: [utf8("a"), utf8("b"), utf8("c")],
    version: ts(2000),
  });
  assert.deepEqual(batch.pairs.map((p: Answer) => fromUtf8(p.value)), ["1", "2"]);
  const scan = await call(services, "KvScan", {
    startKey: utf8("a"),
    limit: 10,
    version: ts(2000),
  });
  assert.deepEqual(scan.pairs.map((p: Answer) => fromUtf8(p.key)), ["a", "b"]);
  const reverse = await call(services, "KvScan", {
    startKey: utf8("b"),
    limit: 10,
    version: ts(2000),
    reverse: true,
  });
  assert.deepEqual(
    reverse.pairs.map((p: Answer) => fromUtf8(p.key)),
    ["a"],
    "reverse: [end, start)",
  );

  const info = await call(services, "MvccGetByKey", { key: utf8("a") });
  assert.equal(info.info.lock, null);
  assert.deepEqual(info.info.writes.map((w: Answer) => [w.startTs, w.commitTs]), [[
    ts(1000),
    ts(1002),
  ]]);
  const byTxn = await call(services, "MvccGetByStartTs", { startTs: ts(1000) });
  assert.equal(fromUtf8(byTxn.key), "a");
});

Deno.test("a write conflict, a commit after rollback and a retried commit answer as TiKV", async () => {
  const services = newServices();
  await commitTxn(services, { start: ts(10), commit: ts(20), pairs: [["k", "v1"]] });
  const late = await call(services, "KvPrewrite", {
    mutations: [put("k", "v2")],
    primaryLock: utf8("k"),
    startVersion: ts(15),
    lockTtl: 3000n,
  });
  assert.equal(late.errors[0].conflict.conflictCommitTs, ts(20));
  // Committing again (a retry) succeeds; committing a rolled-back txn fails.
  const retried = await call(services, "KvCommit", {
    keys: [utf8("k")],
    startVersion: ts(10),
    commitVersion: ts(20),
  });
  assert.equal(retried.error, null);
  await call(services, "KvBatchRollback", { keys: [utf8("x")], startVersion: ts(30) });
  const refused = await call(services, "KvCommit", {
    keys: [utf8("x")],
    startVersion: ts(30),
    commitVersion: ts(31),
  });
  assert.ok(refused.error.txnLockNotFound ?? refused.error.abort, "commit after rollback refused");
  const cleanup = await call(services, "KvCleanup", { key: utf8("k"), startVersion: ts(10) });
  assert.equal(cleanup.commitVersion, ts(20), "cleanup of a committed txn answers its commit ts");
  const bad = await call(services, "KvPrewrite", {
    mutations: [{ op: kvrpcpb.Op.Rollback, key: utf8("z") }],
    primaryLock: utf8("z"),
    startVersion: ts(40),
  });
  assert.match(bad.errors[0].abort, /not supported/);
});

Deno.test("async commit: min_commit_ts is above every read ts seen; recovery via secondaries", async () => {
  const services = newServices();
  await get(services, "other", ts(5000)); // a reader pushes max_ts
  const prewrite = await call(services, "KvPrewrite", {
    mutations: [put("p", "1"), put("s", "2")],
    primaryLock: utf8("p"),
    startVersion: ts(4000),
    lockTtl: 100n,
    useAsyncCommit: true,
    secondaries: [utf8("s")],
  });
  assert.deepEqual(prewrite.errors, []);
  assert.ok(prewrite.minCommitTs > ts(5000), `min_commit_ts ${prewrite.minCommitTs}`);
  const secondaries = await call(services, "KvCheckSecondaryLocks", {
    keys: [utf8("s")],
    startVersion: ts(4000),
  });
  assert.equal(secondaries.locks.length, 1);
  assert.equal(secondaries.locks[0].useAsyncCommit, true);
  // Every lock is there: the transaction is committed at min_commit_ts by the resolver.
  const resolved = await call(services, "KvResolveLock", {
    startVersion: ts(4000),
    commitVersion: prewrite.minCommitTs,
  });
  assert.equal(resolved.error, null);
  assert.equal(fromUtf8((await get(services, "s", ts(9000))).value), "2");
  assert.equal(fromUtf8((await get(services, "p", ts(9000))).value), "1");
});

Deno.test("1PC commits in the prewrite: no lock is left, the value is visible", async () => {
  const services = newServices();
  const prewrite = await call(services, "KvPrewrite", {
    mutations: [put("one", "pc")],
    primaryLock: utf8("one"),
    startVersion: ts(100),
    lockTtl: 3000n,
    tryOnePc: true,
  });
  assert.deepEqual(prewrite.errors, []);
  assert.ok(prewrite.onePcCommitTs > ts(100));
  const locks = await call(services, "KvScanLock", { maxVersion: ts(10_000), limit: 10 });
  assert.equal(locks.locks.length, 0);
  assert.equal(fromUtf8((await get(services, "one", prewrite.onePcCommitTs)).value), "pc");
});

Deno.test("check_txn_status rolls back an expired primary; scan_lock and resolve_lock clean up", async () => {
  const services = newServices();
  await call(services, "KvPrewrite", {
    mutations: [put("p", "1"), put("s1", "2"), put("s2", "3")],
    primaryLock: utf8("p"),
    startVersion: ts(1000),
    lockTtl: 50n,
    minCommitTs: ts(1000) + 1n, // as clients send it; a 0 cannot be pushed
  });
  const alive = await call(services, "KvCheckTxnStatus", {
    primaryKey: utf8("p"),
    lockTs: ts(1000),
    callerStartTs: ts(1010),
    currentTs: ts(1010),
  });
  assert.equal(alive.lockTtl, 50n);
  assert.equal(alive.action, kvrpcpb.Action.MinCommitTSPushed);
  const expired = await call(services, "KvCheckTxnStatus", {
    primaryKey: utf8("p"),
    lockTs: ts(1000),
    callerStartTs: ts(2000),
    currentTs: ts(2000),
  });
  assert.equal(expired.action, kvrpcpb.Action.TTLExpireRollback);
  const locks = await call(services, "KvScanLock", { maxVersion: ts(3000), limit: 10 });
  assert.deepEqual(locks.locks.map((l: Answer) => fromUtf8(l.key)), ["s1", "s2"]);
  await call(services, "KvResolveLock", { startVersion: ts(1000), commitVersion: 0n });
  assert.equal((await call(services, "KvScanLock", { maxVersion: ts(3000) })).locks.length, 0);
  assert.equal((await get(services, "s1", ts(3000))).notFound, true);
  const heartbeat = await call(services, "KvTxnHeartBeat", {
    primaryLock: utf8("p"),
    startVersion: ts(1000),
    adviseLockTtl: 10_000n,
  });
  assert.ok(heartbeat.error.txnNotFound, "no heartbeat for a rolled-back transaction");
});

Deno.test("pessimistic locks: a waiter gets the key when the holder rolls back", async () => {
  const services = newServices();
  const lock = (start: number, key: string, waitTimeout = -1n) =>
    call(services, "KvPessimisticLock", {
      mutations: [{ op: kvrpcpb.Op.PessimisticLock, key: utf8(key) }],
      primaryLock: utf8(key),
      startVersion: ts(start),
      forUpdateTs: ts(start),
      lockTtl: 3000n,
      waitTimeout,
    });
  assert.deepEqual((await lock(100, "k")).errors, []);
  const noWait = await lock(200, "k");
  assert.equal(noWait.errors[0].locked.lockVersion, ts(100));
  const waiting = lock(300, "k", 5000n);
  await new Promise((resolve) => setTimeout(resolve, 20));
  await call(services, "KVPessimisticRollback", {
    keys: [utf8("k")],
    startVersion: ts(100),
    forUpdateTs: ts(100),
  });
  assert.deepEqual((await waiting).errors, [], "the waiter locked the key after the rollback");
  const info = await call(services, "MvccGetByKey", { key: utf8("k") });
  assert.equal(info.info.lock.startTs, ts(300));
  assert.equal(info.info.lock.type, kvrpcpb.Op.PessimisticLock);
});

Deno.test("pessimistic locks: a cycle of waits is answered with Deadlock", async () => {
  const services = newServices();
  const lock = (start: number, key: string, primary: string, waitTimeout: bigint) =>
    call(services, "KvPessimisticLock", {
      mutations: [{ op: kvrpcpb.Op.PessimisticLock, key: utf8(key) }],
      primaryLock: utf8(primary),
      startVersion: ts(start),
      forUpdateTs: ts(start),
      lockTtl: 3000n,
      waitTimeout,
      isFirstLock: false,
    });
  assert.deepEqual((await lock(10, "a", "a", -1n)).errors, []);
  assert.deepEqual((await lock(20, "b", "b", -1n)).errors, []);
  const first = lock(10, "b", "a", 3000n); // txn 10 waits for txn 20
  await new Promise((resolve) => setTimeout(resolve, 20));
  const second = await lock(20, "a", "b", 3000n); // txn 20 would wait for txn 10
  assert.equal(second.errors[0].deadlock.lockTs, ts(10));
  await call(services, "KVPessimisticRollback", {
    keys: [utf8("b")],
    startVersion: ts(20),
    forUpdateTs: ts(20),
  });
  assert.deepEqual((await first).errors, []);
});

Deno.test("GC keeps the newest version visible at the safe point; delete range removes all", async () => {
  const services = newServices();
  for (const [start, commit, value] of [[10, 11, "a"], [20, 21, "b"], [30, 31, "c"]] as const) {
    await commitTxn(services, { start: ts(start), commit: ts(commit), pairs: [["g", value]] });
  }
  await call(services, "KvGC", { safePoint: ts(25) });
  const info = await call(services, "MvccGetByKey", { key: utf8("g") });
  assert.deepEqual(info.info.writes.map((w: Answer) => w.commitTs), [ts(31), ts(21)]);
  assert.equal(fromUtf8((await get(services, "g", ts(25))).value), "b");
  await call(services, "KvDeleteRange", { startKey: utf8("g"), endKey: utf8("h") });
  assert.equal((await get(services, "g", ts(100))).notFound, true);
  assert.equal((await call(services, "MvccGetByKey", { key: utf8("g") })).info.writes.length, 0);
});

Deno.test("bounds that cross, and a 1PC prewrite of nothing, are answered, not failed (found by the fuzzer)", async () => {
  const services = newServices();
  await commitTxn(services, { start: ts(10), commit: ts(11), pairs: [["b", "1"], ["c", "2"]] });
  const crossed = await call(services, "KvScan", {
    startKey: utf8("d"),
    endKey: utf8("a"),
    limit: 10,
    version: ts(20),
  });
  assert.deepEqual([crossed.pairs, crossed.error ?? null], [[], null]);
  const reverseCrossed = await call(services, "KvScan", {
    startKey: utf8("a"),
    endKey: utf8("d"),
    limit: 10,
    version: ts(20),
    reverse: true,
  });
  assert.deepEqual(reverseCrossed.pairs, []);
  const backwards = await call(services, "KvDeleteRange", {
    startKey: utf8("d"),
    endKey: utf8("a"),
  });
  assert.equal(backwards.error, "KvDeleteRange: start_key is after end_key");
  const empty = await call(services, "KvDeleteRange", { startKey: utf8("b"), endKey: utf8("b") });
  assert.equal(empty.error, "");
  const onePcOfNothing = await call(services, "KvPrewrite", {
    mutations: [],
    primaryLock: utf8("b"),
    startVersion: ts(30),
    lockTtl: 3000n,
    tryOnePc: true,
  });
  assert.deepEqual([onePcOfNothing.errors, onePcOfNothing.onePcCommitTs], [[], 0n]);
  const still = await call(services, "KvScan", { startKey: utf8("a"), limit: 10, version: ts(40) });
  assert.deepEqual(still.pairs.map((pair: Answer) => fromUtf8(pair.key)), ["b", "c"]);
});

Deno.test("async commit and 1PC: a read started at any microtask during the prewrite sees its lock or is ordered before its commit ts", async () => {
  // Percolator with async commit: a prewrite reads max_ts, computes min_commit_ts above it and
  // publishes its memory locks with no await in between, so a reader either raised max_ts first
  // (and the commit ts lands above its read ts), meets the lock, or comes after the commit and
  // reads the value. Each round starts the read
  // one microtask later, sweeping every interleaving point of the two commands.
  for (const onePc of [false, true]) {
    for (let delay = 0; delay < 40; delay++) {
      const services = newServices();
      const prewriting = call(services, "KvPrewrite", {
        mutations: [put("k", "new")],
        primaryLock: utf8("k"),
        startVersion: ts(100),
        lockTtl: 3000n,
        useAsyncCommit: !onePc,
        tryOnePc: onePc,
        secondaries: [],
      });
      for (let i = 0; i < delay; i++) await Promise.resolve();
      const reading = get(services, "k", ts(200));
      const [prewrite, read] = await Promise.all([prewriting, reading]);
      assert.deepEqual(prewrite.errors, [], `delay ${delay}`);
      const commitTs: bigint = onePc ? prewrite.onePcCommitTs : prewrite.minCommitTs;
      const sawLock = read.error !== null && read.error !== undefined;
      const sawCommit = !sawLock && read.value.length > 0 && fromUtf8(read.value) === "new";
      assert.ok(
        sawLock || sawCommit || commitTs > ts(200),
        `onePc=${onePc} delay ${delay}: the read at ts(200) missed the lock, and the txn ` +
          `commits at ${commitTs} below it`,
      );
    }
  }
});

Deno.test("a leader whose max_ts is not synced refuses async-commit and 1PC prewrites with MaxTimestampNotSynced, not 2PC", async () => {
  let synced = false;
  const services: StoreServices = { ...newServices(), maxTsSynced: () => synced };
  for (const mode of [{ useAsyncCommit: true, secondaries: [] }, { tryOnePc: true }]) {
    const refused = await call(services, "KvPrewrite", {
      mutations: [put("mts", "v")],
      primaryLock: utf8("mts"),
      startVersion: ts(1000),
      lockTtl: 3000n,
      ...mode,
    });
    assert.ok(refused.regionError?.maxTimestampNotSynced != null, JSON.stringify(mode));
  }
  const twoPc = await call(services, "KvPrewrite", {
    mutations: [put("mts", "v")],
    primaryLock: utf8("mts"),
    startVersion: ts(1000),
    lockTtl: 3000n,
  });
  assert.deepEqual([twoPc.regionError, twoPc.errors], [null, []]);
  synced = true;
  const onePc = await call(services, "KvPrewrite", {
    mutations: [put("mts2", "v")],
    primaryLock: utf8("mts2"),
    startVersion: ts(2000),
    lockTtl: 3000n,
    tryOnePc: true,
  });
  assert.equal(onePc.regionError, null);
  assert.notEqual(onePc.onePcCommitTs, 0n);
});
