/**
 * The bank workload (Jepsen's "bank", the snapshot-isolation checker of DESIGN.md §5) through a
 * real store: 20 accounts, concurrent clients moving money between two random accounts with
 * every commit mode (2PC, async commit, 1PC, pessimistic), random aborts, and clients that
 * "crash" between prewrite and commit (or right after the primary's commit), leaving locks for
 * later readers to resolve.
 *
 * Checked during the run, by a reader taking snapshots: every account is readable and the
 * balances always sum to the initial total. Checked after: the same, and no lock is left once
 * every account was read after the crashed transactions' TTL.
 *
 * Seeded: `SEED=n` replays the choices (not the interleaving, which the machine decides).
 * `BANK_TXNS=n` (default 400) and `BANK_CLIENTS=n` (default 6) make longer runs.
 */
import assert from "node:assert/strict";
import {
  type CommitHooks,
  CommitUndeterminedError,
  type Transaction,
  TxnError,
  TxnKV,
} from "../../src/client/txn/mod.ts";
import type { KvPair } from "../../src/client/raw.ts";
import { fromUtf8 } from "../../src/util/bytes.ts";
import { SeededRandom } from "../../src/util/random.ts";

const ACCOUNTS = 20;
export const INITIAL_BALANCE = 1_000;
const TOTAL = ACCOUNTS * INITIAL_BALANCE;
const LOCK_TTL_MS = 300;
const TXNS = Number(Deno.env.get("BANK_TXNS") ?? 400);
const CLIENTS = Number(Deno.env.get("BANK_CLIENTS") ?? 6);

const account = (i: number) => `acct/${String(i).padStart(2, "0")}`;
export const ALL = Array.from({ length: ACCOUNTS }, (_, i) => account(i));

type Mode = "2pc" | "async" | "1pc" | "pessimistic";
type Ending = "commit" | "abort" | "crashAfterPrewrite" | "crashAfterPrimary";

export interface Tally {
  committed: number;
  aborted: number;
  crashed: number;
  conflicts: number;
  /** Commits whose outcome the client could not know (an answer lost, then a failure). */
  undetermined: number;
  checks: number;
}

const MODES: readonly Mode[] = ["2pc", "async", "1pc", "pessimistic"];

function ending(random: SeededRandom): Ending {
  const roll = random.next();
  if (roll < 0.08) return "abort";
  if (roll < 0.13) return "crashAfterPrewrite";
  if (roll < 0.16) return "crashAfterPrimary";
  return "commit";
}

function hooksOf(end: Ending): CommitHooks {
  const abandon = () => Promise.resolve("abandon" as const);
  if (end === "crashAfterPrewrite") return { afterPrewrite: abandon };
  if (end === "crashAfterPrimary") return { afterPrimaryCommit: abandon };
  return {};
}

function balanceOf(value: Uint8Array | null, key: string): number {
  assert.ok(value !== null, `account ${key} is not readable`);
  const balance = Number(fromUtf8(value));
  assert.ok(Number.isInteger(balance) && balance >= 0, `account ${key} holds ${fromUtf8(value)}`);
  return balance;
}

/** The two balances, read the way the mode reads them. */
async function readPair(txn: Transaction, from: string, to: string): Promise<[number, number]> {
  if (txn.pessimistic) {
    return [
      balanceOf(await txn.getForUpdate(from), from),
      balanceOf(await txn.getForUpdate(to), to),
    ];
  }
  const pairs = await txn.batchGet([from, to]);
  const byKey = new Map(pairs.map((pair) => [fromUtf8(pair.key), pair.value]));
  return [balanceOf(byKey.get(from) ?? null, from), balanceOf(byKey.get(to) ?? null, to)];
}

/** One transfer; counts its outcome (also used by the chaos suite, tests/chaos/). */
export async function transfer(client: TxnKV, random: SeededRandom, tally: Tally): Promise<void> {
  const mode = random.pick(MODES);
  const from = account(random.int(ACCOUNTS));
  let to = account(random.int(ACCOUNTS - 1));
  if (to >= from) to = account(Number(to.slice(5)) + 1);
  const end = ending(random);
  const amountSeed = random.next();
  const txn = await client.begin({
    pessimistic: mode === "pessimistic",
    asyncCommit: mode === "async",
    onePc: mode === "1pc",
    lockTtlMs: LOCK_TTL_MS,
    managedLockTtlMs: LOCK_TTL_MS,
    lockWaitTimeoutMs: 2_000,
  });
  try {
    const [a, b] = await readPair(txn, from, to);
    const amount = Math.floor(amountSeed * Math.min(a, 100));
    txn.set(from, String(a - amount));
    txn.set(to, String(b + amount));
    if (end === "abort") {
      await txn.rollback();
      tally.aborted++;
      return;
    }
    const result = await txn.commit({ hooks: hooksOf(end) });
    if (result.abandonedAfter !== undefined) tally.crashed++;
    else tally.committed++;
  } catch (error) {
    await txn.rollback();
    // Committed or not, a transfer keeps the total: the checks below judge the outcome.
    if (error instanceof CommitUndeterminedError) return void tally.undetermined++;
    if (!(error instanceof TxnError) || !error.retriable) throw error;
    tally.conflicts++;
  }
}

/** A snapshot of every account must hold the total. */
export async function checkTotal(client: TxnKV, viaScan: boolean): Promise<void> {
  const txn = await client.begin();
  const pairs: KvPair[] = viaScan ? await txn.scan("acct/", "acct0") : await txn.batchGet(ALL);
  await txn.rollback();
  assert.deepEqual(pairs.map((pair) => fromUtf8(pair.key)), ALL, "every account readable");
  const sum = pairs.reduce((total, pair) => total + balanceOf(pair.value, fromUtf8(pair.key)), 0);
  assert.equal(sum, TOTAL, `snapshot at ${txn.startTs} sums to ${sum}`);
}

/** What a bank run needs: clients of one cluster, and an optional fault while it runs. */
export interface BankRun {
  connect: () => Promise<TxnKV>;
  /** Called once when about half the transfers are done (a fault to inject), awaited. */
  midway?: () => Promise<void>;
}

/**
 * The bank workload (module header) against `run`'s cluster; returns the tally. Fails on any
 * snapshot whose total is off, an unreadable account, or a lock left at the end.
 */
export async function runBank(run: BankRun, seed: number): Promise<Tally> {
  const tally: Tally = {
    committed: 0,
    aborted: 0,
    crashed: 0,
    conflicts: 0,
    undetermined: 0,
    checks: 0,
  };
  const clients = await Promise.all(Array.from({ length: CLIENTS + 1 }, () => run.connect()));
  const checker = clients[CLIENTS]!;
  try {
    const setup = await checker.begin();
    for (const key of ALL) setup.set(key, String(INITIAL_BALANCE));
    await setup.commit();

    let remaining = TXNS;
    let running = true;
    let midway: Promise<void> | null = null;
    const workers = Array.from({ length: CLIENTS }, async (_, i) => {
      const random = new SeededRandom((seed + i * 7919) >>> 0);
      while (remaining > 0) {
        remaining--;
        if (remaining === Math.floor(TXNS / 2) && run.midway !== undefined) {
          midway = run.midway();
        }
        await transfer(clients[i]!, random, tally);
      }
    });
    const checking = (async () => {
      const random = new SeededRandom(seed ^ 0x5eed);
      while (running) {
        await checkTotal(checker, random.chance(0.5));
        tally.checks++;
      }
    })();
    try {
      await Promise.all(workers);
      await midway;
    } finally {
      running = false;
      await checking;
    }

    // Let the crashed transactions' locks expire, then read everything once more.
    await new Promise((resolve) => setTimeout(resolve, LOCK_TTL_MS + 100));
    await checkTotal(checker, true);
    await checkTotal(checker, false);
    for (const key of ALL) {
      const single = await checker.begin();
      balanceOf(await single.get(key), key);
      await single.rollback();
      const info = await checker.mvccGetByKey(key);
      assert.equal(info.lock ?? null, null, `a lock is left on ${key}`);
    }
    assert.ok(tally.committed > TXNS / 3, `too few commits: ${JSON.stringify(tally)}`);
    assert.ok(tally.checks > 0);
    return tally;
  } finally {
    await Promise.all(clients.map((client) => client.close()));
  }
}
