/**
 * Transactional write commands cost O(N) over N keys (issue #9), and a request over many keys
 * lets its worker's event loop run between slices of `TXN_WRITE_SLICE_KEYS` keys.
 *
 * Linearity is checked without an absolute clock: each command runs over N and 8N keys on
 * RocksDB (whose per-key cost does not grow with these sizes; the in-memory engine's sorted
 * arrays do), best of five, and the ratio of the process CPU time the two took must stay
 * below 32. A linear command gives ~8 (less with fixed costs); one that is quadratic in its
 * keys — as the pending-lock lookup of `MvccTxn` was — gives ~64. CPU time rather than wall
 * time: on a loaded machine a short run often gets a core to itself while a long one never
 * does, which skews wall-time ratios several-fold.
 */
import assert from "node:assert/strict";
import process from "node:process";
import { kvrpcpb } from "../../../proto/mod.ts";
import { TXN_WRITE_SLICE_KEYS } from "../../constants.ts";
import { RocksDbEngine } from "../../engine/rocksdb_engine.ts";
import { MvccTxn } from "../../mvcc/txn.ts";
import { Key } from "../../txn_types/key.ts";
import { newLock } from "../../txn_types/lock.ts";
import { COMMANDS_BY_NAME } from "../commands.ts";
import { Latches } from "../raw/latches.ts";
import { standaloneRegion } from "../region.ts";
import { runCommand } from "../respond.ts";
import type { StoreServices } from "../services.ts";
import { utf8 } from "../../util/bytes.ts";
import { executeWrite } from "./scheduler.ts";
import { newTxnStore } from "./store.ts";

const CONTEXT = { regionId: 1n, regionEpoch: { confVer: 1n, version: 1n } };
const SMALL_KEYS = 200;
const GROWTH = 8;
/**
 * Half of quadratic growth (64) for 8× the keys, four times linear (8): room for the noise of a
 * loaded machine, whose CPU time per key wanders up to ~2–3× between runs. (Before the fix,
 * a commit of 1600 keys took over 100× the CPU time of 200.)
 */
const MAX_TIME_RATIO = 32;
const REPEATS = 5;
const LOCK_TTL_MS = 60_000n;

// deno-lint-ignore no-explicit-any
type Answer = any;

async function call(services: StoreServices, name: string, request: object): Promise<Answer> {
  const command = COMMANDS_BY_NAME.get(name);
  if (command === undefined) throw new Error(`no command ${name}`);
  const decoded = command.requestCodec.decode(
    command.requestCodec.encode({ context: CONTEXT, ...request }).finish(),
  );
  return await runCommand(services, command, decoded);
}

/** Calls `name` and fails on any error in the answer. */
async function callOk(services: StoreServices, name: string, request: object): Promise<Answer> {
  const answer = await call(services, name, request);
  const errors = [answer.error, ...(answer.errors ?? []), answer.regionError].filter(
    (e) => e !== undefined && e !== null && e !== "",
  );
  assert.deepEqual(errors, [], `${name} answered an error`);
  return answer;
}

/** Runs `body` with services over a fresh RocksDB in a temporary directory. */
async function withStore(body: (services: StoreServices) => Promise<void>): Promise<void> {
  const directory = await Deno.makeTempDir({ prefix: "basalt-linear-" });
  const engine = RocksDbEngine.open(directory, { blockCacheBytes: 8 << 20 });
  try {
    const region = standaloneRegion();
    await body({
      regions: new Map([[region.id, region]]),
      raw: { engine, latches: new Latches(), syncLog: false, nowUnixSeconds: () => 0 },
      txn: newTxnStore(engine, { syncLog: false, latestTs: 1n }),
    });
  } finally {
    engine.close();
    await Deno.remove(directory, { recursive: true });
  }
}

const value = new Uint8Array(32).fill(1);

/** One transaction's keys and start ts; every run gets fresh ones. */
interface Run {
  keys: Uint8Array[];
  startTs: bigint;
}

const prewrite = (services: StoreServices, run: Run, extra: object = {}) =>
  callOk(services, "KvPrewrite", {
    mutations: run.keys.map((key) => ({ op: kvrpcpb.Op.Put, key, value })),
    primaryLock: run.keys[0],
    startVersion: run.startTs,
    lockTtl: LOCK_TTL_MS,
    ...extra,
  });

const pessimisticLock = (services: StoreServices, run: Run) =>
  callOk(services, "KvPessimisticLock", {
    mutations: run.keys.map((key) => ({ op: kvrpcpb.Op.PessimisticLock, key })),
    primaryLock: run.keys[0],
    startVersion: run.startTs,
    forUpdateTs: run.startTs,
    lockTtl: LOCK_TTL_MS,
    waitTimeout: -1n,
  });

/** A command over a transaction's keys: what it needs first (untimed), then the timed part. */
interface Scenario {
  name: string;
  setup?(services: StoreServices, run: Run): Promise<unknown>;
  timed(services: StoreServices, run: Run): Promise<unknown>;
  /** Keys of the small run, when the command must stay within one slice. */
  smallKeys?: number;
}

const SCENARIOS: Scenario[] = [
  { name: "KvPrewrite", timed: (s, run) => prewrite(s, run) },
  {
    name: "KvPrewrite (async commit, within one slice)",
    smallKeys: Math.floor(TXN_WRITE_SLICE_KEYS / GROWTH),
    timed: (s, run) => prewrite(s, run, { useAsyncCommit: true, secondaries: run.keys.slice(1) }),
  },
  {
    name: "KvCommit",
    setup: (s, run) => prewrite(s, run),
    timed: (s, run) =>
      callOk(s, "KvCommit", {
        keys: run.keys,
        startVersion: run.startTs,
        commitVersion: run.startTs + 1n,
      }),
  },
  {
    name: "KvBatchRollback",
    setup: (s, run) => prewrite(s, run),
    timed: (s, run) => callOk(s, "KvBatchRollback", { keys: run.keys, startVersion: run.startTs }),
  },
  {
    name: "KvResolveLock with keys, rollback (cleanup of each key)",
    setup: (s, run) => prewrite(s, run),
    timed: (s, run) =>
      callOk(s, "KvResolveLock", { keys: run.keys, startVersion: run.startTs, commitVersion: 0n }),
  },
  {
    name: "KvResolveLock of a whole region, commit",
    setup: (s, run) => prewrite(s, run),
    timed: (s, run) =>
      callOk(s, "KvResolveLock", {
        txnInfos: [{ txn: run.startTs, status: run.startTs + 1n }],
      }),
  },
  {
    name: "KvCheckSecondaryLocks",
    setup: (s, run) => prewrite(s, run, { useAsyncCommit: false }),
    timed: async (s, run) => {
      const answer = await callOk(s, "KvCheckSecondaryLocks", {
        keys: run.keys,
        startVersion: run.startTs,
      });
      assert.equal(answer.locks.length, run.keys.length, "every key is still locked");
    },
  },
  { name: "KvPessimisticLock", timed: (s, run) => pessimisticLock(s, run) },
  {
    name: "KVPessimisticRollback with keys",
    setup: (s, run) => pessimisticLock(s, run),
    timed: (s, run) =>
      callOk(s, "KVPessimisticRollback", {
        keys: run.keys,
        startVersion: run.startTs,
        forUpdateTs: run.startTs,
      }),
  },
  {
    name: "KVPessimisticRollback of a whole region",
    setup: (s, run) => pessimisticLock(s, run),
    timed: (s, run) =>
      callOk(s, "KVPessimisticRollback", { startVersion: run.startTs, forUpdateTs: run.startTs }),
  },
];

let nextTxn = 0;

/** Fresh keys (their own prefix) and a fresh start ts for one run of `count` keys. */
function newRun(count: number): Run {
  const txn = ++nextTxn;
  const keys = Array.from(
    { length: count },
    (_, i) => new TextEncoder().encode(`t${String(txn).padStart(4, "0")}/${i}`),
  );
  return { keys, startTs: BigInt(txn) * 100n };
}

/** CPU time of this process (all threads), in ms. */
function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/**
 * The process's CPU ms and the wall-clock ms of one run. Under `deno test --parallel` other test
 * files run on other threads of this process: their CPU counts in the first, their competition
 * for the cores in the second, each now and then; a quadratic cost inflates both at every run.
 */
interface Cost {
  cpuMs: number;
  wallMs: number;
}

async function timeOnce(scenario: Scenario, count: number): Promise<Cost> {
  let cost: Cost = { cpuMs: 0, wallMs: 0 };
  await withStore(async (services) => {
    const run = newRun(count);
    await scenario.setup?.(services, run);
    const cpu = cpuMs();
    const wall = performance.now();
    await scenario.timed(services, run);
    cost = { cpuMs: cpuMs() - cpu, wallMs: performance.now() - wall };
  });
  return cost;
}

/** The best (least) of each measure over runs. */
function best(a: Cost, b: Cost): Cost {
  return { cpuMs: Math.min(a.cpuMs, b.cpuMs), wallMs: Math.min(a.wallMs, b.wallMs) };
}

const NO_COST: Cost = { cpuMs: Infinity, wallMs: Infinity };

/**
 * Fails unless growing the keys by GROWTH grew the best cost by less than MAX_TIME_RATIO in CPU
 * or in wall-clock time (the better of the two ratios: either can be spoiled by other tests).
 */
function assertLinear(what: string, sizes: [number, number], small: Cost, large: Cost): void {
  const cpuRatio = large.cpuMs / small.cpuMs;
  const wallRatio = large.wallMs / small.wallMs;
  assert.ok(
    Math.min(cpuRatio, wallRatio) < MAX_TIME_RATIO,
    `${what}: ${sizes[1]} keys took ${large.cpuMs.toFixed(1)} ms of CPU ` +
      `(${large.wallMs.toFixed(1)} ms wall), ${sizes[0]} keys ${small.cpuMs.toFixed(1)} ms ` +
      `(${small.wallMs.toFixed(1)} ms): ${cpuRatio.toFixed(1)}× / ${wallRatio.toFixed(1)}× ` +
      `(linear ≈ ${GROWTH}×)`,
  );
}

for (const scenario of SCENARIOS) {
  Deno.test(`${scenario.name} over ${GROWTH}× the keys takes less than ${MAX_TIME_RATIO}× the time`, async () => {
    const small = scenario.smallKeys ?? SMALL_KEYS;
    const large = small * GROWTH;
    await timeOnce(scenario, small); // warm up: compilation, caches
    let smallCost = NO_COST;
    let largeCost = NO_COST;
    for (let i = 0; i < REPEATS; i++) {
      smallCost = best(smallCost, await timeOnce(scenario, small));
      largeCost = best(largeCost, await timeOnce(scenario, large));
    }
    assertLinear(scenario.name, [small, large], smallCost, largeCost);
  });
}

/** Best-of-`REPEATS` costs of `body` at `small` and at GROWTH × `small`. */
function bestCosts(small: number, body: (count: number) => void): [Cost, Cost] {
  body(small); // warm up
  let smallCost = NO_COST;
  let largeCost = NO_COST;
  const measure = (count: number): Cost => {
    const cpu = cpuMs();
    const wall = performance.now();
    body(count);
    return { cpuMs: cpuMs() - cpu, wallMs: performance.now() - wall };
  };
  for (let i = 0; i < REPEATS; i++) {
    smallCost = best(smallCost, measure(small));
    largeCost = best(largeCost, measure(small * GROWTH));
  }
  return [smallCost, largeCost];
}

Deno.test("MvccTxn: buffering and finding the pending locks of 8× the keys takes less than 32× the time", () => {
  // Without the engine a key costs ~1 µs, so even a cheap scan of the buffer per key (~10 ns a
  // modification) shows as quadratic here, where the commands above would hide it.
  const small = 2000;
  const keys = Array.from({ length: small * GROWTH }, (_, i) => Key.fromRaw(utf8(`m/${i}`)));
  const lock = newLock({ lockType: "Put", primary: utf8("m/0"), startTs: 10n, ttlMs: 5n });
  const [smallCost, largeCost] = bestCosts(small, (count) => {
    const txn = new MvccTxn(10n);
    for (let i = 0; i < count; i++) {
      const key = keys[i]!;
      assert.equal(txn.pendingLock(key), null);
      txn.putLock(key, lock, true);
      assert.notEqual(txn.pendingLock(key), null);
      txn.unlockKey(key, false, 11n);
      assert.equal(txn.pendingLock(key), "deleted");
    }
  });
  assertLinear("MvccTxn", [small, small * GROWTH], smallCost, largeCost);
});

Deno.test("a write over several slices lets timers run before it finishes", async () => {
  await withStore(async (services) => {
    const run = newRun(3 * TXN_WRITE_SLICE_KEYS);
    await prewrite(services, run);
    let finished = false;
    let timerSawUnfinished: boolean | null = null;
    const timer = new Promise<void>((resolve) =>
      setTimeout(() => {
        timerSawUnfinished = !finished;
        resolve();
      }, 0)
    );
    await callOk(services, "KvCommit", {
      keys: run.keys,
      startVersion: run.startTs,
      commitVersion: run.startTs + 1n,
    });
    finished = true;
    await timer;
    assert.equal(timerSawUnfinished, true, "the timer ran only after the commit had finished");
  });
});

Deno.test("async-commit and 1PC prewrites over one slice of keys are answered as 2PC", async () => {
  await withStore(async (services) => {
    const within = newRun(TXN_WRITE_SLICE_KEYS);
    const asyncWithin = await prewrite(services, within, {
      useAsyncCommit: true,
      secondaries: within.keys.slice(1),
    });
    assert.ok(asyncWithin.minCommitTs > 0n, "within one slice, async commit proceeds");

    const over = newRun(TXN_WRITE_SLICE_KEYS + 1);
    const asyncOver = await prewrite(services, over, {
      useAsyncCommit: true,
      secondaries: over.keys.slice(1),
    });
    assert.equal(BigInt(asyncOver.minCommitTs ?? 0n), 0n, "min_commit_ts 0: finish in 2PC");
    const scan = await callOk(services, "KvScanLock", {
      maxVersion: over.startTs,
      startKey: over.keys[0],
      limit: 2,
    });
    assert.equal(scan.locks.length, 2);
    for (const lock of scan.locks) assert.equal(lock.useAsyncCommit ?? false, false);

    const onePc = newRun(TXN_WRITE_SLICE_KEYS + 1);
    const onePcOver = await prewrite(services, onePc, { tryOnePc: true });
    assert.equal(BigInt(onePcOver.onePcCommitTs ?? 0n), 0n, "one_pc_commit_ts 0: not committed");
    assert.equal(BigInt(onePcOver.minCommitTs ?? 0n), 0n);
    const committed = await callOk(services, "KvCommit", {
      keys: onePc.keys,
      startVersion: onePc.startTs,
      commitVersion: onePc.startTs + 1n,
    });
    assert.equal(committed.error ?? null, null, "the 2PC locks commit");
  });
});

Deno.test("the scheduler refuses to run a memory-lock command over more than one slice", async () => {
  await withStore(async (services) => {
    const keys = newRun(TXN_WRITE_SLICE_KEYS + 1).keys.map((raw) => Key.fromRaw(raw));
    await assert.rejects(
      executeWrite(services.txn, {
        region: standaloneRegion(),
        keys,
        startTs: 10n,
        memoryLocks: true,
      }, () => {
        throw new Error("the action must not run");
      }),
      /exceeds one slice/,
    );
  });
});
