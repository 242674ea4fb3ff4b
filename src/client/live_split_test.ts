/**
 * Splits under live traffic, at the client level: raw and transactional clients run batch
 * puts, gets, deletes, delete ranges, scans, reverse scans, checksums and transactions (2PC,
 * async commit, 1PC) while
 * the fake cluster splits regions again and again (at raw keys and at encoded transactional
 * keys) and moves leaders between its two stores. Every call must succeed — a region error
 * (EpochNotMatch, NotLeader, KeyNotInRegion) never escapes the client — and everything written
 * reads back afterwards.
 *
 * The splitter's choices come from a seeded PRNG (`SEED=…` replays them); the interleaving with
 * the clients' calls is the event loop's, so a failure prints the seed and the failing call.
 */
import assert from "node:assert/strict";
import { encodeKey } from "../codec/key.ts";
import { fromUtf8, utf8 } from "../util/bytes.ts";
import { SeededRandom, seedFromEnv } from "../util/random.ts";
import { PdResolver } from "./pd_resolver.ts";
import { RawKV } from "./raw.ts";
import { FakeCluster, fakePairChecksum, FakeTso } from "./testing/fake_cluster.ts";
import { TxnKV } from "./txn/txn_kv.ts";

const TEST = { sanitizeOps: false, sanitizeResources: false };
const RAW_WORKERS = 3;
const RAW_ROUNDS = 40;
const TXN_WORKERS = 2;
const TXN_ROUNDS = 30;
/** The splitter goes on while the workers run, at most this many rounds. */
const SPLITTER_MAX_ROUNDS = 1_000;

const pad = (n: number) => String(n).padStart(3, "0");
const rawKey = (worker: number, round: number, item: number) => `r${worker}-${pad(round)}-${item}`;
const txnKey = (worker: number, round: number, item: number) => `t${worker}-${pad(round)}-${item}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Labels a failure with the call that failed. */
async function step<T>(what: string, work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (error) {
    throw new Error(`${what} failed: ${error}`, { cause: error });
  }
}

/** One raw worker: every round a batch put, then reads of everything it wrote so far. */
async function rawWorker(client: RawKV, worker: number): Promise<void> {
  for (let round = 0; round < RAW_ROUNDS; round++) {
    const pairs = [0, 1, 2, 3].map((item) => {
      const key = rawKey(worker, round, item);
      return { key, value: `v-${key}` };
    });
    await step(`raw ${worker}/${round} batchPut`, client.batchPut(pairs));
    await step(`raw ${worker}/${round} put`, client.put(rawKey(worker, round, 9), "single"));
    const got = await step(
      `raw ${worker}/${round} batchGet`,
      client.batchGet(pairs.map((p) => p.key)),
    );
    assert.deepEqual(got.map((p) => fromUtf8(p.value)), pairs.map((p) => p.value));
    assert.equal(fromUtf8((await client.get(rawKey(worker, round, 9)))!), "single");
    // Scratch keys on both sides of the other workers' keys, removed by one delete range.
    const scratch = [`d${worker}-${pad(round)}`, `r${worker}-${pad(round)}-5`, `s${worker}`];
    await step(
      `raw ${worker}/${round} scratch`,
      client.batchPut(scratch.map((key) => ({ key, value: "x" }))),
    );
    await step(
      `raw ${worker}/${round} batchDelete`,
      client.batchDelete([`r${worker}-${pad(round)}-5`]),
    );
    await step(
      `raw ${worker}/${round} deleteRange`,
      client.deleteRange(`d${worker}-`, `d${worker}.`),
    );
    assert.deepEqual(await client.scan(`d${worker}-`, `d${worker}.`), []);
    const prefix = `r${worker}-`;
    const end = `r${worker}.`;
    const expected = (round + 1) * 5;
    if (round % 4 === 0) {
      const all = await step(
        `raw ${worker}/${round} scan`,
        client.scan(prefix, end, { limit: 10_000 }),
      );
      assert.equal(all.length, expected, `worker ${worker} round ${round}: scan`);
      const back = await step(
        `raw ${worker}/${round} reverseScan`,
        client.reverseScan(prefix, end),
      );
      assert.deepEqual(back.map((p) => fromUtf8(p.key)), all.map((p) => fromUtf8(p.key)).reverse());
      const sum = await step(`raw ${worker}/${round} checksum`, client.checksum(prefix, end));
      assert.equal(sum.totalKvs, BigInt(expected));
    }
  }
}

/** One transactional worker: every round a transaction over keys that span regions. */
async function txnWorker(client: TxnKV, worker: number): Promise<void> {
  for (let round = 0; round < TXN_ROUNDS; round++) {
    const options = { asyncCommit: round % 3 === 1, onePc: round % 3 === 2 };
    await step(
      `txn ${worker}/${round} commit`,
      client.withRetry(async (txn) => {
        if (round > 0) {
          const previous = await txn.get(txnKey(worker, round - 1, 0));
          assert.equal(previous === null ? null : fromUtf8(previous), `${round - 1}`);
        }
        // Item 2 sorts after the other workers' keys: the transaction spans regions.
        for (const item of [0, 1]) txn.set(txnKey(worker, round, item), `${round}`);
        txn.set(`z${txnKey(worker, round, 2)}`, `${round}`);
      }, options),
    );
    if (round % 5 === 0) {
      const reader = await client.begin();
      const all = await step(
        `txn ${worker}/${round} scan`,
        reader.scan(`t${worker}-`, `t${worker}.`, { limit: 10_000 }),
      );
      assert.equal(all.length, (round + 1) * 2);
    }
  }
}

/**
 * Splits at keys the workers use (raw, and encoded transactional) and moves leaders until
 * `workers` settle; returns how many splits happened.
 */
async function splitter(
  cluster: FakeCluster,
  how: { random: SeededRandom; workers: Promise<unknown> },
): Promise<number> {
  const { random } = how;
  let done = false;
  how.workers.finally(() => done = true).catch(() => {});
  let splits = 0;
  for (let i = 0; i < SPLITTER_MAX_ROUNDS && !done; i++) {
    const worker = random.int(Math.max(RAW_WORKERS, TXN_WORKERS));
    const round = random.int(Math.max(RAW_ROUNDS, TXN_ROUNDS));
    const key = random.chance(0.5)
      ? utf8(rawKey(worker, round, random.int(4)))
      : encodeKey(utf8(txnKey(worker, round, random.int(2))));
    if (cluster.trySplit(key)) splits++;
    if (random.chance(0.3)) {
      const region = cluster.regionOf(key);
      cluster.transferLeader(region.id, region.leaderStoreId === 1n ? 2n : 1n);
    }
    await sleep(1 + random.int(8));
  }
  return splits;
}

Deno.test({
  name: "splits under live traffic: no region error escapes the client, and all data reads back",
  ...TEST,
  fn: async () => {
    const seed = seedFromEnv();
    const random = new SeededRandom(seed);
    const cluster = await FakeCluster.start({ stores: 2, splitKeys: ["r1", "t1"] });
    const raw = new RawKV(await PdResolver.connect([cluster.pdAddress]), { timeoutMs: 15_000 });
    const txn = new TxnKV(await PdResolver.connect([cluster.pdAddress]), new FakeTso(), {
      timeoutMs: 15_000,
    });
    try {
      const workers = Promise.all([
        ...Array.from({ length: RAW_WORKERS }, (_, w) => rawWorker(raw, w)),
        ...Array.from({ length: TXN_WORKERS }, (_, w) => txnWorker(txn, w)),
      ]);
      const [splits] = await Promise.all([splitter(cluster, { random, workers }), workers])
        .catch((error) => {
          throw new Error(`seed ${seed}: ${error.message}`, { cause: error });
        });
      // The traffic did meet the splits and leader moves, raw and transactional alike.
      const refused = (kind: string, prefix: string) =>
        cluster.served.filter((r) => r.refusedWith === kind && r.cmd.startsWith(prefix)).length;
      const counts = {
        splits,
        rawEpochNotMatch: refused("epochNotMatch", "Raw"),
        rawNotLeader: refused("notLeader", "Raw"),
        txnEpochNotMatch: refused("epochNotMatch", "") - refused("epochNotMatch", "Raw"),
        txnNotLeader: refused("notLeader", "") - refused("notLeader", "Raw"),
      };
      console.log(`seed ${seed}: ${JSON.stringify(counts)}`);
      assert.ok(splits >= 20, `seed ${seed}: only ${splits} splits happened`);
      for (const [name, count] of Object.entries(counts)) {
        assert.ok(count > 0, `seed ${seed}: no ${name}`);
      }

      // Everything reads back, through a fresh client and a fresh cache.
      await txn.flush();
      const keys: string[] = [];
      for (let w = 0; w < RAW_WORKERS; w++) {
        for (let r = 0; r < RAW_ROUNDS; r++) {
          for (const item of [0, 1, 2, 3, 9]) keys.push(rawKey(w, r, item));
        }
      }
      const fresh = new RawKV(await PdResolver.connect([cluster.pdAddress]), { timeoutMs: 5000 });
      try {
        const got = await fresh.batchGet(keys);
        assert.equal(got.length, keys.length, `seed ${seed}: raw keys lost`);
        const sum = await fresh.checksum("r", "s");
        assert.deepEqual(await fresh.scan("d", "e"), [], "delete range left nothing");
        const expected = [...cluster.data.entries()].filter(([key]) => key >= "r" && key < "s")
          .reduce(
            (x, [key, entry]) =>
              x ^ fakePairChecksum(Uint8Array.from(key, (c) => c.charCodeAt(0)), entry.value),
            0n,
          );
        assert.deepEqual(sum, { ...sum, checksum: expected, totalKvs: BigInt(keys.length) });
      } finally {
        fresh.close();
      }
      const reader = await txn.begin();
      const all = await reader.scan("", null, { limit: 100_000 });
      assert.equal(all.length, TXN_WORKERS * TXN_ROUNDS * 3, `seed ${seed}: txn keys lost`);
      assert.equal(cluster.txn.locks.size, 0, "no lock left behind");
    } finally {
      raw.close();
      await txn.close();
      await cluster.stop();
    }
  },
});
