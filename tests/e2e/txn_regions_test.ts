/**
 * Transactions across regions on a three-store cluster (issue #12 item 7, after gookv's
 * multi-region suite): real `src/server/main.ts` processes behind one PD (`cluster.ts`), the
 * TypeScript client (`TxnKV`) routed through PD, the key space split into five regions whose
 * leaders sit on different stores.
 *
 * - Routing: every region holds exactly its keys, read at its own leader; a transaction
 *   writing one key per region commits (2PC, async commit) and reads back whole.
 * - Percolator across a failover (§2.2, "secondary lock resolved by primary"): a store leading
 *   one region is SIGKILLed between prewrite and commit. The transaction ends committed at one
 *   commit ts on every key, or rolled back on every key; a snapshot never sees part of it.
 * - Async commit recovery (TiKV's `CheckSecondaryLocks`): a client dead after prewriting keys in
 *   five regions left a transaction that IS committed; a reader finds it so and commits it.
 * - KvScanLock region by region finds every lock left in every region; KvResolveLock (after
 *   KvCheckTxnStatus on each transaction's primary, as GC's lock resolution does) clears them.
 * - The bank workload (tests/txn/bank.ts) while regions split again and again.
 *
 * Invariants: every wait has a deadline (`waitFor`, the clients' request timeout); every loop
 * is bounded; everything started is stopped in `finally` (`withReplicatedCluster`, the
 * clients' `close`).
 */
import assert from "node:assert/strict";
import { kvrpcpb } from "../../proto/mod.ts";
import { encodeKey } from "../../src/codec/key.ts";
import type { PdClient, PdRegion } from "../../src/client/pd_client.ts";
import { PdResolver } from "../../src/client/pd_resolver.ts";
import type { KvPair } from "../../src/client/raw.ts";
import { regionContains, type RegionInfo } from "../../src/client/region.ts";
import { StoreConnection } from "../../src/client/transport.ts";
import {
  type CommitHooks,
  type CommitResult,
  CommitUndeterminedError,
  type Transaction,
  TxnKV,
} from "../../src/client/txn/mod.ts";
import { firstUserKeyAtOrAfter } from "../../src/client/txn/region_keys.ts";
import { RETRY, TxnConnectionPool, TxnRpc } from "../../src/client/txn/rpc.ts";
import { fromUtf8, utf8 } from "../../src/util/bytes.ts";
import { seedFromEnv } from "../../src/util/random.ts";
import { runBank } from "../txn/bank.ts";
import { waitFor } from "./cluster.ts";
import {
  E2E,
  indexOf,
  type ReplicatedCluster,
  REPLICATION_LEADER_MOVE_TIMEOUT_MS,
  REPLICATION_READ_TIMEOUT_MS,
  REPLICATION_THREE_VOTERS_TIMEOUT_MS,
  withReplicatedCluster,
} from "./replication_lib.ts";

/** Where the key space is split: five regions ["", b) [b, d) [d, f) [f, h) [h, ""). */
const SPLIT_KEYS = ["b", "d", "f", "h"];
const REGION_COUNT = SPLIT_KEYS.length + 1;
/** One key in each region, in region order (the first is every transaction's primary). */
const ONE_PER_REGION = ["a1", "b1", "d1", "f1", "h1"];
/** Two keys in each region, in key order. */
const TWO_PER_REGION = ["a1", "a2", "b1", "c1", "d1", "e1", "f1", "g1", "h1", "z1"];
/** Deadline of every client request (retries, lock waits and failovers included). */
const CLIENT_TIMEOUT_MS = 30_000;
/** TTL of the locks a dead client leaves: short, so readers may resolve them soon. */
const SHORT_LOCK_TTL_MS = 1_000;
/** Longest wait for readers to resolve every lock of a transaction its client left. */
const LOCK_RESOLVE_TIMEOUT_MS = 20_000;
/** Pause between two rounds of such reads. */
const LOCK_RESOLVE_POLL_MS = 200;
/** How often `placeLeaders` adds its transfer-leader operator again while it waits. */
const OPERATOR_RETRY_MS = 1_000;
/** Most regions a whole-space listing reads. */
const REGION_LIST_LIMIT = 1_000;
/** Most locks one KvScanLock returns here (every test leaves far fewer). */
const SCAN_LOCK_LIMIT = 1_000;
/** Most pairs one scan here reads (every test writes far fewer). */
const SCAN_LIMIT = 1_000;

const EMPTY = new Uint8Array(0);
const text = (bytes: Uint8Array | null | undefined) => bytes == null ? null : fromUtf8(bytes);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const abandon = () => Promise.resolve("abandon" as const);
const show = (value: unknown) =>
  JSON.stringify(value, (_key, v) => typeof v === "bigint" ? String(v) : v);

function connectTxn(rc: ReplicatedCluster): Promise<TxnKV> {
  return TxnKV.connect({ pd: [rc.cluster.pdAddr], timeoutMs: CLIENT_TIMEOUT_MS });
}

/** Runs `body` with a fresh `TxnKV` of the cluster, closed afterwards. */
async function withTxn<T>(rc: ReplicatedCluster, body: (client: TxnKV) => Promise<T>): Promise<T> {
  const client = await connectTxn(rc);
  try {
    return await body(client);
  } finally {
    await client.close();
  }
}

/** Every region PD knows, in key order. */
function allRegions(pd: PdClient): Promise<PdRegion[]> {
  return pd.scanRegions({ startKey: EMPTY, endKey: EMPTY, limit: REGION_LIST_LIMIT });
}

/** The region PD says holds transactional key `key` (regions are bounded by encoded keys). */
async function regionOfKey(pd: PdClient, key: string): Promise<PdRegion> {
  const located = await pd.getRegion(encodeKey(utf8(key)));
  if (located === null) throw new Error(`PD knows no region holding "${key}"`);
  return located;
}

/** The harness index of the store PD says leads the region holding `key`. */
async function leaderIndexOfKey(rc: ReplicatedCluster, key: string): Promise<number> {
  const { region, leader } = await regionOfKey(rc.pd, key);
  if (leader === null) throw new Error(`PD knows no leader of region ${region.id} ("${key}")`);
  return indexOf(rc.cluster, leader.storeId ?? 0n);
}

/**
 * Splits the key space at SPLIT_KEYS (SplitRegion of transactional keys) and waits until PD
 * knows the five regions, bounded by the encoded split keys, each with three voters and a
 * leader. Returns them in key order.
 */
async function splitIntoRegions(rc: ReplicatedCluster, client: TxnKV): Promise<PdRegion[]> {
  const made = await client.splitRegions(SPLIT_KEYS);
  assert.equal(made.length, REGION_COUNT, `the split made ${made.length} regions`);
  let regions: PdRegion[] = [];
  await waitFor(`PD to know ${REGION_COUNT} regions with three voters and a leader`, async () => {
    regions = await allRegions(rc.pd);
    return regions.length === REGION_COUNT &&
      regions.every(({ region, leader }) =>
        leader !== null && (region.peers ?? []).filter((p) => (p.role ?? 0) === 0).length === 3
      );
  }, REPLICATION_THREE_VOTERS_TIMEOUT_MS);
  const starts = regions.map(({ region }) =>
    fromUtf8(firstUserKeyAtOrAfter(region.startKey ?? EMPTY))
  );
  assert.deepEqual(starts, ["", ...SPLIT_KEYS], "the regions start at the split keys");
  return regions;
}

/**
 * Moves region i's leadership to store i % 3 with PD's transfer-leader operator, added again
 * every OPERATOR_RETRY_MS for each region PD does not report led there, until PD reports every
 * region where it belongs with no operator running on any (PD's balance-leader moves leaders
 * too while the spread is uneven, and one it started may still be under way; the spread asked
 * for is even, so once it is reached balance-leader leaves it alone). Returns the harness index
 * of each region's leader, in region order.
 */
async function placeLeaders(rc: ReplicatedCluster, regions: PdRegion[]): Promise<number[]> {
  const targets = regions.map((_, i) => i % rc.cluster.storeCount);
  const addedAt = regions.map(() => 0);
  let refusal = "";
  await waitFor("every region led by its store, no operator running", async () => {
    const listed = await rc.admin.admin("ListOperators");
    const running = new Set(
      (listed.operators as { regionId: string }[]).map((op) => BigInt(op.regionId)),
    );
    let placed = 0;
    for (const [i, { region }] of regions.entries()) {
      const storeId = rc.cluster.storeId(targets[i]!);
      const now = await rc.pd.getRegionById(region.id!);
      if (now?.leader?.storeId === storeId) {
        if (!running.has(region.id!)) placed++;
        continue;
      }
      if (running.has(region.id!) || Date.now() - addedAt[i]! < OPERATOR_RETRY_MS) continue;
      addedAt[i] = Date.now();
      const added = await rc.admin.admin("AddOperator", {
        action: "transfer-leader",
        regionId: String(region.id),
        storeId: String(storeId),
      });
      if ("error" in added) refusal = `region ${region.id}: ${JSON.stringify(added.error)}`;
    }
    return placed === regions.length;
  }, REPLICATION_LEADER_MOVE_TIMEOUT_MS).catch((error) => {
    throw new Error(`${(error as Error).message}; last operator refusal: ${refusal || "none"}`);
  });
  return targets;
}

/** Splits into five regions and spreads their leaders over the three stores (PD-checked). */
async function fiveRegionsOnThreeLeaders(
  rc: ReplicatedCluster,
  client: TxnKV,
): Promise<PdRegion[]> {
  const regions = await splitIntoRegions(rc, client);
  const targets = await placeLeaders(rc, regions);
  const leaders = await Promise.all(ONE_PER_REGION.map((key) => leaderIndexOfKey(rc, key)));
  assert.deepEqual(leaders, targets, "PD reports every region led where it was moved");
  assert.equal(new Set(leaders).size, 3, "the regions' leaders are on three different stores");
  return regions;
}

/** Commits `pairs` in one transaction; returns its commit ts. */
async function put(client: TxnKV, pairs: Record<string, string>): Promise<bigint> {
  const txn = await client.begin({ awaitSecondaries: true });
  for (const [key, value] of Object.entries(pairs)) txn.set(key, value);
  const { commitTs } = await txn.commit();
  assert.ok(commitTs > txn.startTs);
  return commitTs;
}

/** `keys` each set to `value`. */
const all = (keys: readonly string[], value: string) =>
  Object.fromEntries(keys.map((key) => [key, value]));

/** The values of `keys` in one snapshot at `readTs` (default: a fresh ts), absent as null. */
async function readAt(
  client: TxnKV,
  keys: readonly string[],
  readTs?: bigint,
): Promise<(string | null)[]> {
  const snapshot = await client.snapshot(readTs);
  const found = await snapshot.batchGet(keys.map(utf8));
  return keys.map((key) => text(found.get(fromUtf8(utf8(key))) ?? null));
}

/** The values of `keys`, each read by its own `get` of one transaction (locks resolved). */
async function getEach(client: TxnKV, keys: readonly string[]): Promise<(string | null)[]> {
  const txn = await client.begin();
  try {
    const values: (string | null)[] = [];
    for (const key of keys) values.push(text(await txn.get(key)));
    return values;
  } finally {
    await txn.rollback();
  }
}

/** A scan of [start, end) in one transaction, as [key, value] pairs. */
async function scanPairs(client: TxnKV, start: string, end: string | null): Promise<string[][]> {
  const txn: Transaction = await client.begin();
  try {
    const pairs: KvPair[] = await txn.scan(start, end, { limit: SCAN_LIMIT });
    return pairs.map((pair) => [fromUtf8(pair.key), fromUtf8(pair.value)]);
  } finally {
    await txn.rollback();
  }
}

/** How a transaction ended on its keys. */
type Outcome = { committed: true; commitTs: bigint } | { committed: false };

/** Whether every value of `values` is `value`, or none is (a snapshot sees all or nothing). */
function assertAllOrNone(values: (string | null)[], value: string, what: string): void {
  const written = values.filter((v) => v === value).length;
  assert.ok(
    written === 0 || written === values.length,
    `${what} saw part of the transaction: ${JSON.stringify(values)}`,
  );
}

/**
 * Reads `keys` (one snapshot, then a `get` of each in one transaction: every lock of the
 * transaction `startTs` is met, and resolved once its primary is decided) until none of them is
 * locked by it, at most LOCK_RESOLVE_TIMEOUT_MS; every snapshot must see all of its writes or
 * none. Returns what the last transaction's gets returned.
 */
async function readUntilResolved(
  client: TxnKV,
  keys: readonly string[],
  written: { startTs: bigint; value: string },
): Promise<(string | null)[]> {
  const deadline = Date.now() + LOCK_RESOLVE_TIMEOUT_MS;
  for (let round = 1;; round++) {
    assertAllOrNone(await readAt(client, keys), written.value, `snapshot ${round}`);
    const seen = await getEach(client, keys);
    assertAllOrNone(seen, written.value, `transaction ${round}`);
    const locked: string[] = [];
    for (const key of keys) {
      const lock = (await client.mvccGetByKey(key)).lock;
      if (lock?.startTs === written.startTs) locked.push(key);
    }
    if (locked.length === 0) return seen;
    if (Date.now() >= deadline) {
      throw new Error(`after ${round} rounds of reads, ${locked.join(",")} still locked`);
    }
    await sleep(LOCK_RESOLVE_POLL_MS);
  }
}

/**
 * What became of the transaction `startTs` that wrote `value` to every key of `keys` (each of
 * which held another value before): read until readers resolved its every lock
 * (`readUntilResolved`), then checked record by record. Fails unless it ended the same way on
 * every key — committed at one commit ts (a snapshot just below it sees none of the keys
 * written, one at it sees all), or rolled back (no key written).
 */
async function outcomeOnEveryKey(
  client: TxnKV,
  keys: readonly string[],
  written: { startTs: bigint; value: string },
): Promise<Outcome> {
  const seen = await readUntilResolved(client, keys, written);
  const commitTsOf: (bigint | null)[] = [];
  for (const key of keys) {
    const info = await client.mvccGetByKey(key);
    assert.notEqual(info.lock?.startTs, written.startTs, `${key} is still locked`);
    const puts = (info.writes ?? []).filter((w) =>
      w.startTs === written.startTs && w.type === kvrpcpb.Op.Put
    );
    assert.ok(puts.length <= 1, `${key} has ${puts.length} commit records of one transaction`);
    commitTsOf.push(puts[0]?.commitTs ?? null);
  }
  const snapshot = await readAt(client, keys);
  const newValues = snapshot.filter((value) => value === written.value).length;
  const detail = `keys ${keys.join(",")}: read ${JSON.stringify(snapshot)}, ` +
    `got ${JSON.stringify(seen)}, commit ts ${commitTsOf.map(String).join(",")}`;
  if (commitTsOf.every((ts) => ts === null)) {
    assert.equal(newValues, 0, `rolled back, yet visible: ${detail}`);
    return { committed: false };
  }
  const commitTs = commitTsOf[0];
  assert.ok(
    commitTsOf.every((ts) => ts !== null && ts === commitTs),
    `partly committed: ${detail}`,
  );
  assert.equal(newValues, keys.length, `committed, yet not all visible: ${detail}`);
  assert.deepEqual(seen, keys.map(() => written.value), detail);
  const before = await readAt(client, keys, commitTs! - 1n);
  assert.ok(before.every((value) => value !== written.value), `seen before commit: ${before}`);
  assert.deepEqual(await readAt(client, keys, commitTs!), keys.map(() => written.value));
  return { committed: true, commitTs: commitTs! };
}

/**
 * The pairs a KvScan of `located`'s whole range, sent only to the store PD names its leader,
 * returns at `version`; null when that store answers a region error (it no longer leads).
 */
async function scanAtLeader(
  rc: ReplicatedCluster,
  located: PdRegion,
  version: bigint,
): Promise<string[][] | null> {
  const { region, leader } = located;
  assert.ok(leader !== null, `region ${region.id} has no leader`);
  const connection = new StoreConnection(
    rc.cluster.storeAddr(indexOf(rc.cluster, leader.storeId!)),
  );
  try {
    const response = await connection.send("Scan", {
      context: { regionId: region.id, regionEpoch: region.regionEpoch, peer: leader },
      startKey: firstUserKeyAtOrAfter(region.startKey ?? EMPTY),
      endKey: (region.endKey?.length ?? 0) === 0 ? EMPTY : firstUserKeyAtOrAfter(region.endKey!),
      limit: SCAN_LIMIT,
      version,
    }, { timeoutMs: REPLICATION_READ_TIMEOUT_MS });
    if (response.regionError != null) return null;
    assert.equal(response.error ?? null, null, `scan of region ${region.id}`);
    return response.pairs.map((pair) => [fromUtf8(pair.key!), fromUtf8(pair.value!)]);
  } finally {
    connection.close();
  }
}

Deno.test({
  name:
    "txn regions: five regions led by three stores; each region holds exactly its keys at its own leader, and 2PC and async-commit transactions over all of them commit and read back whole",
  ...E2E,
  fn: () =>
    withReplicatedCluster({}, async (rc) => {
      await withTxn(rc, async (client) => {
        await fiveRegionsOnThreeLeaders(rc, client);
        const twoPc = await put(client, all(TWO_PER_REGION, "2pc"));
        assert.deepEqual(await readAt(client, TWO_PER_REGION), TWO_PER_REGION.map(() => "2pc"));

        // Every region, asked at the store PD names its leader, holds exactly its own two keys.
        const version = await client.currentTimestamp();
        let regions: PdRegion[] = [];
        const perRegion: string[][][] = [];
        await waitFor("every region's leader to serve a scan of its range", async () => {
          regions = await allRegions(rc.pd);
          perRegion.length = 0;
          for (const located of regions) {
            const pairs = await scanAtLeader(rc, located, version);
            if (pairs === null) return false;
            perRegion.push(pairs);
          }
          return true;
        }, REPLICATION_LEADER_MOVE_TIMEOUT_MS);
        assert.equal(regions.length, REGION_COUNT);
        assert.deepEqual(
          perRegion,
          Array.from(
            { length: REGION_COUNT },
            (_, i) => TWO_PER_REGION.slice(2 * i, 2 * i + 2).map((key) => [key, "2pc"]),
          ),
        );

        // A key of the first region sent to the second is refused: the client routed each.
        const second = regions[1]!;
        const leader = second.leader!;
        const wrong = new StoreConnection(
          rc.cluster.storeAddr(indexOf(rc.cluster, leader.storeId!)),
        );
        try {
          const refused = await wrong.send("Get", {
            context: {
              regionId: second.region.id,
              regionEpoch: second.region.regionEpoch,
              peer: leader,
            },
            key: utf8("a1"),
            version,
          }, { timeoutMs: REPLICATION_READ_TIMEOUT_MS });
          assert.ok(
            refused.regionError?.keyNotInRegion != null,
            show(refused.regionError),
          );
        } finally {
          wrong.close();
        }

        // Async commit across the five regions: its commit ts is above the 2PC one, every key
        // reads it, and the one-region 1PC transaction commits in its own region.
        const txn = await client.begin({ asyncCommit: true, awaitSecondaries: true });
        for (const key of TWO_PER_REGION) txn.set(key, "async");
        const asyncCommit = await txn.commit();
        assert.equal(asyncCommit.mode, "async");
        assert.ok(asyncCommit.commitTs > twoPc);
        assert.deepEqual(await getEach(client, TWO_PER_REGION), TWO_PER_REGION.map(() => "async"));
        const onePc = await client.begin({ onePc: true });
        onePc.set("d1", "1pc");
        onePc.set("e1", "1pc");
        assert.equal((await onePc.commit()).mode, "1pc");
        assert.deepEqual(
          await scanPairs(client, "", null),
          TWO_PER_REGION.map((key) => [key, key === "d1" || key === "e1" ? "1pc" : "async"]),
        );
        for (const key of TWO_PER_REGION) {
          assert.equal((await client.mvccGetByKey(key)).lock ?? null, null, `${key} unlocked`);
        }
      });
    }),
});

/** What `killBetweenPrewriteAndCommit` did and what the commit answered. */
interface KilledCommit {
  startTs: bigint;
  /** The commit's result, or what it threw. */
  result: CommitResult | Error;
  /** The harness index of the store killed. */
  killed: number;
}

/**
 * A 2PC transaction setting every key of ONE_PER_REGION (one per region; "a1" the primary) to
 * `value`; once every key is prewritten (checked), the store PD names leader of `victimKey`'s
 * region is SIGKILLed — for a secondary's region, a store checked not to lead the primary's.
 * Then the client goes on, or dies (`clientDies`).
 */
async function killBetweenPrewriteAndCommit(
  rc: ReplicatedCluster,
  client: TxnKV,
  how: { victimKey: string; value: string; clientDies: boolean },
): Promise<KilledCommit> {
  const txn = await client.begin({ awaitSecondaries: true, lockTtlMs: SHORT_LOCK_TTL_MS });
  for (const key of ONE_PER_REGION) txn.set(key, how.value);
  let killed = -1;
  const hooks: CommitHooks = {
    afterPrewrite: async () => {
      for (const key of ONE_PER_REGION) {
        const info = await client.mvccGetByKey(key);
        assert.equal(info.lock?.startTs, txn.startTs, `${key} is prewritten`);
      }
      killed = await leaderIndexOfKey(rc, how.victimKey);
      if (how.victimKey !== ONE_PER_REGION[0]) {
        assert.notEqual(killed, await leaderIndexOfKey(rc, ONE_PER_REGION[0]!));
      }
      await rc.cluster.kill(killed);
      return how.clientDies ? "abandon" : undefined;
    },
  };
  const result = await txn.commit({ hooks }).catch((error: Error) => error);
  assert.ok(killed >= 0, `the hook ran (${result instanceof Error ? result.message : "ok"})`);
  return { startTs: txn.startTs, result, killed };
}

/**
 * The client itself committed every key of ONE_PER_REGION at `commitTs` (checked before any
 * reader met a lock: none is left, each key has the commit record).
 */
async function assertCommittedByClient(
  client: TxnKV,
  txn: { startTs: bigint; commitTs: bigint },
): Promise<void> {
  for (const key of ONE_PER_REGION) {
    const info = await client.mvccGetByKey(key);
    assert.equal(info.lock ?? null, null, `${key} still locked after the commit`);
    const write = (info.writes ?? []).find((w) => w.startTs === txn.startTs);
    assert.equal(write?.commitTs, txn.commitTs, `${key}'s commit record`);
  }
}

Deno.test({
  name:
    "txn regions: a secondary region's leader killed between prewrite and commit — the client commits every key at one commit ts once a new leader is elected",
  ...E2E,
  fn: () =>
    withReplicatedCluster({}, async (rc) => {
      await withTxn(rc, async (client) => {
        await fiveRegionsOnThreeLeaders(rc, client);
        await put(client, all(ONE_PER_REGION, "0"));
        const { startTs, result, killed } = await killBetweenPrewriteAndCommit(rc, client, {
          victimKey: "b1",
          value: "1",
          clientDies: false,
        });
        if (result instanceof Error) throw result;
        assert.equal(result.mode, "2pc");
        assert.equal(result.abandonedAfter, undefined);
        await assertCommittedByClient(client, { startTs, commitTs: result.commitTs });
        await withTxn(rc, async (reader) => {
          const outcome = await outcomeOnEveryKey(reader, ONE_PER_REGION, { startTs, value: "1" });
          assert.deepEqual(outcome, { committed: true, commitTs: result.commitTs });
        });
        assert.ok(!rc.cluster.isRunning(killed));
      });
    }),
});

Deno.test({
  name:
    "txn regions: the primary region's leader killed between prewrite and commit — a client that goes on commits every key at one commit ts (or, unsure, leaves all or nothing)",
  ...E2E,
  fn: () =>
    withReplicatedCluster({}, async (rc) => {
      await withTxn(rc, async (client) => {
        await fiveRegionsOnThreeLeaders(rc, client);
        await put(client, all(ONE_PER_REGION, "0"));
        const { startTs, result } = await killBetweenPrewriteAndCommit(rc, client, {
          victimKey: "a1",
          value: "1",
          clientDies: false,
        });
        if (!(result instanceof Error)) {
          await assertCommittedByClient(client, { startTs, commitTs: result.commitTs });
        }
        // A transaction the client could not decide is decided by readers (readUntilResolved).
        const outcome = await withTxn(
          rc,
          (reader) => outcomeOnEveryKey(reader, ONE_PER_REGION, { startTs, value: "1" }),
        );
        if (result instanceof CommitUndeterminedError) {
          console.log(
            `the commit was undetermined (${result.message}); readers found ${show(outcome)}`,
          );
          return;
        }
        if (result instanceof Error) throw result;
        assert.deepEqual(outcome, { committed: true, commitTs: result.commitTs });
      });
    }),
});

Deno.test({
  name:
    "txn regions: the primary region's leader killed between prewrite and commit and the client dead — readers roll the transaction back on every key, never seeing part of it",
  ...E2E,
  fn: () =>
    withReplicatedCluster({}, async (rc) => {
      await withTxn(rc, async (client) => {
        await fiveRegionsOnThreeLeaders(rc, client);
        await put(client, all(ONE_PER_REGION, "0"));
        const { startTs, result } = await killBetweenPrewriteAndCommit(rc, client, {
          victimKey: "a1",
          value: "1",
          clientDies: true,
        });
        if (result instanceof Error) throw result;
        assert.equal(result.abandonedAfter, "prewrite");
        await withTxn(rc, async (reader) => {
          // At once: the primary's new leader says the transaction still runs; readers read
          // around it (its commit ts is pushed past theirs), one snapshot all old.
          assert.deepEqual(await getEach(reader, ONE_PER_REGION), ONE_PER_REGION.map(() => "0"));
          const outcome = await outcomeOnEveryKey(reader, ONE_PER_REGION, { startTs, value: "1" });
          assert.deepEqual(outcome, { committed: false });
          const primary = await reader.mvccGetByKey(ONE_PER_REGION[0]!);
          assert.ok(
            (primary.writes ?? []).some((w) =>
              w.startTs === startTs && w.type === kvrpcpb.Op.Rollback
            ),
            "the primary has a rollback record",
          );
          // The keys take new writes.
          await put(reader, all(ONE_PER_REGION, "2"));
          assert.deepEqual(await readAt(reader, ONE_PER_REGION), ONE_PER_REGION.map(() => "2"));
        });
      });
    }),
});

/** An async-commit transaction setting `keys` to `value`, its client dead after prewrite. */
async function abandonedAsyncCommit(
  client: TxnKV,
  keys: readonly string[],
  value: string,
): Promise<bigint> {
  const txn = await client.begin({ asyncCommit: true, lockTtlMs: SHORT_LOCK_TTL_MS });
  for (const key of keys) txn.set(key, value);
  const result = await txn.commit({ hooks: { afterPrewrite: abandon } });
  // Every prewrite succeeded (else the commit would have thrown): the transaction IS committed.
  assert.equal(result.mode, "async");
  assert.equal(result.abandonedAfter, "prewrite");
  for (const key of keys) {
    const lock = (await client.mvccGetByKey(key)).lock;
    assert.equal(lock?.startTs, txn.startTs, `${key} is locked by the transaction`);
    assert.equal(lock?.useAsyncCommit, true, `${key}'s lock is an async-commit lock`);
  }
  return txn.startTs;
}

Deno.test({
  name:
    "txn regions: an async-commit client dead after prewriting in five regions — a reader's get, then a scan after a secondary region's leader is killed, find it committed through CheckSecondaryLocks",
  ...E2E,
  fn: () =>
    withReplicatedCluster({}, async (rc) => {
      await withTxn(rc, async (client) => {
        await fiveRegionsOnThreeLeaders(rc, client);
        await put(client, all(TWO_PER_REGION, "0"));

        const first = await abandonedAsyncCommit(client, TWO_PER_REGION, "first");
        await sleep(SHORT_LOCK_TTL_MS);
        await withTxn(rc, async (reader) => {
          // A secondary in the middle first: its primary's lock expired, so the reader asks
          // every secondary's region (CheckSecondaryLocks): all locked, so committed.
          assert.equal(text(await (await reader.begin()).get("e1")), "first");
          const stats = reader.lockResolver.stats;
          assert.ok(stats.checkSecondaryLocks >= 1, show(stats));
          const outcome = await outcomeOnEveryKey(reader, TWO_PER_REGION, {
            startTs: first,
            value: "first",
          });
          assert.ok(outcome.committed && outcome.commitTs > first);
        });

        const second = await abandonedAsyncCommit(client, TWO_PER_REGION, "second");
        const victim = await leaderIndexOfKey(rc, "d1");
        assert.notEqual(victim, await leaderIndexOfKey(rc, "a1"), "d1 is led away from a1");
        await rc.cluster.kill(victim);
        await sleep(SHORT_LOCK_TTL_MS);
        await withTxn(rc, async (reader) => {
          assert.deepEqual(
            await scanPairs(reader, "", null),
            TWO_PER_REGION.map((key) => [key, "second"]),
          );
          assert.ok(reader.lockResolver.stats.checkSecondaryLocks >= 1);
          const outcome = await outcomeOnEveryKey(reader, TWO_PER_REGION, {
            startTs: second,
            value: "second",
          });
          assert.ok(outcome.committed && outcome.commitTs > second);
        });
      });
    }),
});

/** The locks KvScanLock found in one region. */
interface RegionLocks {
  region: RegionInfo;
  locks: kvrpcpb.LockInfo.$Properties[];
}

/**
 * KvScanLock over the whole key space, region by region (each region's range sent to its
 * leader; a region error locates the cursor's region again): every lock with start ts ≤
 * `maxVersion`, by region, in key order.
 */
async function scanLocksByRegion(rpc: TxnRpc, maxVersion: bigint): Promise<RegionLocks[]> {
  const backoffer = rpc.backoffer(CLIENT_TIMEOUT_MS);
  const found: RegionLocks[] = [];
  let cursor: Uint8Array = EMPTY;
  for (let page = 0; page < REGION_LIST_LIMIT; page++) {
    const region = await rpc.locate(cursor, backoffer);
    const next = rpc.keyAfterRegion(region);
    const response = await rpc.sendToRegion("ScanLock", region, {
      maxVersion,
      startKey: cursor,
      endKey: next ?? EMPTY,
      limit: SCAN_LOCK_LIMIT,
    }, { backoffer, idempotent: true });
    if (response === RETRY) continue;
    assert.equal(response.error ?? null, null, `ScanLock of region ${region.id}`);
    assert.ok(response.locks.length < SCAN_LOCK_LIMIT, "more locks than one scan returns");
    found.push({ region, locks: response.locks });
    if (next === null) return found;
    cursor = next;
  }
  throw new Error(`ScanLock visited ${REGION_LIST_LIMIT} regions without reaching the end`);
}

/** `found`'s locked keys, each with its transaction's start ts. */
const lockedKeys = (found: RegionLocks[]) =>
  found.flatMap(({ locks }) => locks.map((lock) => `${fromUtf8(lock.key!)}@${lock.lockVersion}`));

/**
 * The commit ts of transaction `startTs` (0: rolled back) by KvCheckTxnStatus on its primary,
 * as GC's lock resolution asks: no reader to push for (caller_start_ts 0), roll back an
 * expired lock or a missing primary. Fails while the primary is locked and alive.
 */
async function decideByPrimary(
  rpc: TxnRpc,
  lock: { primary: Uint8Array; startTs: bigint; currentTs: bigint },
): Promise<bigint> {
  const response = await rpc.sendToKey("CheckTxnStatus", lock.primary, () => ({
    primaryKey: lock.primary,
    lockTs: lock.startTs,
    callerStartTs: 0n,
    currentTs: lock.currentTs,
    rollbackIfNotExist: true,
  }), { backoffer: rpc.backoffer(CLIENT_TIMEOUT_MS), idempotent: true });
  assert.equal(response.error ?? null, null, `CheckTxnStatus of ${lock.startTs}`);
  assert.equal(response.lockTtl, 0n, `transaction ${lock.startTs} is still alive`);
  return response.commitVersion;
}

Deno.test({
  name:
    "txn regions: KvScanLock region by region finds the locks left in all five regions (and only those at or below max_version); KvResolveLock by each transaction's status clears them",
  ...E2E,
  fn: () =>
    withReplicatedCluster({}, async (rc) => {
      const resolver = await PdResolver.connect([rc.cluster.pdAddr]);
      const rpc = new TxnRpc(resolver, new TxnConnectionPool());
      try {
        await withTxn(rc, async (client) => {
          await splitIntoRegions(rc, client);
          await put(client, all(TWO_PER_REGION, "0"));
          // A: prewritten only (regions 0-3), its client dead. B: primary committed, its
          // client dead before the secondaries (regions 2-4 keep locks).
          const a = await client.begin({ lockTtlMs: SHORT_LOCK_TTL_MS });
          for (const key of ["a2", "c1", "e1", "g1"]) a.set(key, "A");
          await a.commit({ hooks: { afterPrewrite: abandon } });
          const b = await client.begin();
          for (const key of ["b1", "d1", "f1", "z1"]) b.set(key, "B");
          const bResult = await b.commit({ hooks: { afterPrimaryCommit: abandon } });
          assert.equal(bResult.abandonedAfter, "primaryCommit");

          const now = await client.currentTimestamp();
          const found = await scanLocksByRegion(rpc, now);
          assert.equal(found.length, REGION_COUNT, "one ScanLock per region");
          for (const { region, locks } of found) {
            for (const lock of locks) {
              assert.ok(
                regionContains(region, encodeKey(lock.key!)),
                `${text(lock.key)} in ${region.id}`,
              );
            }
          }
          assert.deepEqual(
            found.map(({ locks }) => locks.length),
            [1, 1, 2, 2, 1],
            `locks per region: ${lockedKeys(found)}`,
          );
          assert.deepEqual(
            lockedKeys(found).sort(),
            [
              ...["a2", "c1", "e1", "g1"].map((key) => `${key}@${a.startTs}`),
              ...["d1", "f1", "z1"].map((key) => `${key}@${b.startTs}`),
            ].sort(),
          );
          // max_version below B's start ts: only A's locks.
          assert.deepEqual(
            lockedKeys(await scanLocksByRegion(rpc, b.startTs - 1n)).sort(),
            ["a2", "c1", "e1", "g1"].map((key) => `${key}@${a.startTs}`).sort(),
          );

          // Decide each transaction at its primary (A's lock has expired by then), then
          // resolve every region that holds locks, region-wide.
          await sleep(SHORT_LOCK_TTL_MS);
          const currentTs = await client.currentTimestamp();
          const status = new Map<bigint, bigint>();
          for (const { locks } of found) {
            for (const lock of locks) {
              const startTs = lock.lockVersion!;
              if (status.has(startTs)) continue;
              const primary = lock.primaryLock!;
              status.set(startTs, await decideByPrimary(rpc, { primary, startTs, currentTs }));
            }
          }
          assert.deepEqual(status, new Map([[a.startTs, 0n], [b.startTs, bResult.commitTs]]));
          const txnInfos = [...status].map(([txn, commitTs]) => ({ txn, status: commitTs }));
          for (const { region, locks } of found) {
            if (locks.length === 0) continue;
            const response = await rpc.sendToKey(
              "ResolveLock",
              firstUserKeyAtOrAfter(region.startKey),
              () => ({ txnInfos }),
              { backoffer: rpc.backoffer(CLIENT_TIMEOUT_MS), idempotent: true },
            );
            assert.equal(response.error ?? null, null, `ResolveLock of region ${region.id}`);
          }
          const left = await scanLocksByRegion(rpc, await client.currentTimestamp());
          assert.deepEqual(lockedKeys(left), [], "no lock left");
          for (const key of ["d1", "f1", "z1"]) {
            const info = await client.mvccGetByKey(key);
            const write = (info.writes ?? []).find((w) => w.startTs === b.startTs);
            assert.equal(write?.commitTs, bResult.commitTs, `${key} committed at B's ts`);
          }
          assert.deepEqual(
            await scanPairs(client, "", null),
            TWO_PER_REGION.map((key) => [key, ["b1", "d1", "f1", "z1"].includes(key) ? "B" : "0"]),
          );
        });
      } finally {
        rpc.pool.close();
        resolver.close();
      }
    }),
});

/** Where the bank test splits its accounts' region, one key at a time, in this order. */
const BANK_SPLIT_KEYS = [
  "acct/10",
  "acct/05",
  "acct/15",
  "acct/02",
  "acct/08",
  "acct/12",
  "acct/17",
  "acct/07",
  "acct/13",
  "acct/01",
];
/** Transactions begun between two splits of the bank test. */
const BANK_TXNS_PER_SPLIT = 20;
/** Longest wait for the bank's next BANK_TXNS_PER_SPLIT transactions. */
const BANK_PROGRESS_TIMEOUT_MS = 30_000;

Deno.test({
  name:
    "txn regions: the bank workload's total holds while its accounts' region splits ten times under it; only retriable conflicts end a transfer",
  ...E2E,
  fn: () =>
    withReplicatedCluster({}, async (rc) => {
      const seed = seedFromEnv();
      let begun = 0;
      // Counts the transactions the bank's clients begin, so the splits land among them.
      const connect = async () => {
        const client = await connectTxn(rc);
        const begin = client.begin.bind(client);
        client.begin = (options) => {
          begun++;
          return begin(options);
        };
        return client;
      };
      const splitter = await connectTxn(rc);
      const splitAt: number[] = [];
      const splitting = (async () => {
        for (const [i, key] of BANK_SPLIT_KEYS.entries()) {
          const due = (i + 1) * BANK_TXNS_PER_SPLIT;
          await waitFor(`the bank to begin ${due} transactions`, () =>
            begun >= due, BANK_PROGRESS_TIMEOUT_MS);
          const made = await splitter.splitRegions([key]);
          assert.equal(made.length, 2, `the split at ${key} made ${made.length} regions`);
          splitAt.push(begun);
        }
      })().then(() =>
        null, (error: Error) =>
        error);
      try {
        // Half-way, the bank waits for the splits to end before its last checks.
        const tally = await runBank({ connect, midway: () => splitting.then(() => {}) }, seed)
          .catch((error) => {
            console.error(`bank under splits failed with SEED=${seed}`);
            throw error;
          });
        const splitError = await splitting;
        if (splitError !== null) throw splitError;
        assert.equal(splitAt.length, BANK_SPLIT_KEYS.length);
        const regions = await allRegions(rc.pd);
        assert.ok(regions.length > BANK_SPLIT_KEYS.length, `${regions.length} regions`);
        console.log(
          `bank under splits SEED=${seed}: ${show(tally)}; splits after ${splitAt.join(",")} ` +
            `of ${begun} transactions; ${regions.length} regions`,
        );
      } finally {
        await splitting;
        await splitter.close();
      }
    }),
});
