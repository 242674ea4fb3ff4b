/**
 * The bank workload of `tests/txn/bank.ts` run for a time under the nemesis: clients move money
 * between accounts (every commit mode, aborts, clients that "crash" mid-commit), a reader checks
 * that every snapshot sums to the total, and at the end the total is checked again by a scan
 * and by a batch read.
 *
 * Under faults, transfers and snapshot reads may fail (unavailable, deadline, an undetermined
 * commit): those are counted, not verdicts. A verdict fails only on what SI forbids: a snapshot
 * whose sum is off or an account that cannot be read (`bank.ts`'s assertions, caught here as
 * `AssertionError`s and recorded).
 */
import { AssertionError } from "node:assert";
import type { TxnKV } from "../../src/client/txn/mod.ts";
import { SeededRandom } from "../../src/util/random.ts";
import { ALL, checkTotal, INITIAL_BALANCE, type Tally, transfer } from "../txn/bank.ts";
import { CHAOS_CLIENT_MAX_OPS, CHAOS_FINAL_READ_TIMEOUT_MS } from "./register.ts";

/** Pause between two snapshot checks of the reader. */
export const CHAOS_BANK_CHECK_PAUSE_MS = 50;
/** How long the accounts' set-up may take, retries included. */
export const CHAOS_BANK_SETUP_TIMEOUT_MS = 30_000;

/** What the bank workload saw. */
export interface BankState {
  tally: Tally;
  /** Transfers that failed with an error a fault explains (unavailable, deadline, undetermined). */
  failed: number;
  /** Snapshot checks that could not read (a fault), not a wrong sum. */
  checkFailures: number;
  lastError: string;
  /** What SI forbids, as seen: a wrong sum, an unreadable account. */
  violations: string[];
  /** Accounts with a lock left after the final reads (a client gave up on it; not a verdict). */
  locksLeft: number;
}

export function newBankState(): BankState {
  return {
    tally: { committed: 0, aborted: 0, crashed: 0, conflicts: 0, undetermined: 0, checks: 0 },
    failed: 0,
    checkFailures: 0,
    lastError: "",
    violations: [],
    locksLeft: 0,
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const message = (error: unknown) => String((error as Error)?.message ?? error).slice(0, 200);

/** Writes every account's initial balance in one transaction (retried until it commits). */
export async function setUpAccounts(client: TxnKV): Promise<void> {
  const deadlineMs = Date.now() + CHAOS_BANK_SETUP_TIMEOUT_MS;
  let last = "";
  while (Date.now() < deadlineMs) {
    const txn = await client.begin();
    try {
      for (const key of ALL) txn.set(key, String(INITIAL_BALANCE));
      await txn.commit();
      return;
    } catch (error) {
      last = message(error);
      await txn.rollback().catch(() => {});
      await sleep(200);
    }
  }
  throw new Error(`setting up the bank's accounts failed until its deadline: ${last}`);
}

/** Runs `step`, recording an SI violation (an assertion of bank.ts) or counting a failure. */
async function guarded(
  bank: BankState,
  step: () => Promise<void>,
  onFailure: () => void,
): Promise<void> {
  try {
    await step();
  } catch (error) {
    if (error instanceof AssertionError) {
      bank.violations.push(error.message.split("\n")[0]!);
      return;
    }
    onFailure();
    bank.lastError = message(error);
  }
}

/** One transferring client, until `running()` turns false. */
export async function bankClient(
  options: { client: TxnKV; bank: BankState; seed: number; running: () => boolean },
): Promise<void> {
  const { client, bank, running } = options;
  const random = new SeededRandom(options.seed >>> 0);
  for (let n = 0; n < CHAOS_CLIENT_MAX_OPS && running(); n++) {
    await guarded(bank, () => transfer(client, random, bank.tally), () => bank.failed++);
  }
}

/** The snapshot reader, until `running()` turns false. */
export async function bankChecker(
  options: { client: TxnKV; bank: BankState; seed: number; running: () => boolean },
): Promise<void> {
  const { client, bank, running } = options;
  const random = new SeededRandom((options.seed ^ 0x5eed) >>> 0);
  for (let n = 0; n < CHAOS_CLIENT_MAX_OPS && running(); n++) {
    const viaScan = random.chance(0.5);
    await guarded(bank, async () => {
      await checkTotal(client, viaScan);
      bank.tally.checks++;
    }, () => bank.checkFailures++);
    await sleep(CHAOS_BANK_CHECK_PAUSE_MS);
  }
}

/**
 * The final checks, once every fault is healed: the total by a scan and by a batch read (each
 * retried while it cannot read), then every account read alone and its lock, if any, counted.
 */
export async function finalBankChecks(client: TxnKV, bank: BankState): Promise<void> {
  const deadlineMs = Date.now() + CHAOS_FINAL_READ_TIMEOUT_MS;
  for (const viaScan of [true, false]) {
    let done = false;
    while (!done && Date.now() < deadlineMs) {
      const before = bank.violations.length;
      let failed = false;
      await guarded(bank, () => checkTotal(client, viaScan), () => (failed = true));
      done = !failed || bank.violations.length > before;
      if (!done) await sleep(200);
    }
    if (!done) bank.violations.push(`final total unreadable until the deadline: ${bank.lastError}`);
  }
  for (const key of ALL) {
    await guarded(bank, async () => {
      const txn = await client.begin();
      await txn.get(key);
      await txn.rollback();
      const info = await client.mvccGetByKey(key);
      if ((info.lock ?? null) !== null) bank.locksLeft++;
    }, () => {});
  }
}
