/**
 * The bank through the real transactional client (issue #13 item 2): `BANK_ACCOUNTS` accounts
 * spread over the key space the scheduler splits, `TxnKV` (src/client) on the simulated clock
 * over `SimLinks`, a region source (`SimPdView`, or the real PD's through src/client's
 * `PdRegionSource`) and `SimTso`, and these clients:
 *
 * - transfer clients, one per commit mode — 2PC, async commit, 1PC (adjacent accounts, so the
 *   keys often share a region; the client falls back to 2PC when they do not) and one mixing
 *   them — each moving a random amount between two accounts and writing, in the same
 *   transaction, a record of the transfer (`<from>~t<client>.<seq>`, beside the source account);
 * - two readers: a snapshot `batchGet` of every account, and a snapshot `scan` of the key space;
 * - in seeds with `hotKeyProbe`, a hot-key client (`PROBE_KEYS`, apart from the accounts): it
 *   begins a blind write of a key, reads the key in a snapshot taken after, and the run moves
 *   the key's region leader to another store right after that read returned (`afterRead`, the
 *   fault schedule's "leader transfer right after a read at a high ts on the old leader");
 *   then the write commits by 1PC, which takes its commit ts from the new leader's max_ts.
 *
 * What it checks (Percolator's snapshot isolation, as the bank shows it):
 * 1. every snapshot read sees every account and sums to the total (no fractured read, no
 *    transfer half seen);
 * 2. at the end, read at a fresh timestamp (resolving the locks in its way): the sum is
 *    the total; replaying the transfer records from the initial balances gives every balance
 *    (no lost update: each committed transfer's effect is there, and nothing else); every
 *    transfer the client acknowledged has its record, none the client reported failed has one
 *    (an undetermined one may or may not);
 * 3. no lock left after recovery (the final read, then the client's lock sweep, `sweepLocks`):
 *    `lockedKeys` lists the lock CF of every caught-up replica;
 * 4. no commit below a snapshot already read (for the probe's key as for the accounts): a transfer's commit ts is above the read ts of
 *    every snapshot read that returned before the transfer began to commit. Each such read saw
 *    both of the transfer's accounts without the transfer; a commit ts at or below its read ts
 *    would make that snapshot one that misses a committed write. This is what the max_ts of
 *    the stores is for (async commit and 1PC take their commit ts from it, TiKV's
 *    `min_commit_ts`), and what a new leader's max_ts sync from PD keeps across leader moves.
 *
 * A client call that throws anything but a `ClientError`/`TxnError` is a client bug, and ends
 * the run as one.
 *
 * @module
 */

import {
  CachedRegionResolver,
  ClientError,
  CommitUndeterminedError,
  TxnError,
  TxnKV,
} from "../../src/client/mod.ts";
import { keyId } from "../../src/client/keys.ts";
import type { Cluster } from "../../src/raftstore/testing/cluster.ts";
import { keyInRegion } from "../../src/raftstore/command.ts";
import { toHex, utf8 } from "../../src/util/bytes.ts";
import type { SeededRandom } from "../../src/util/random.ts";
import { regionMap } from "./region_map.ts";
import { ROUND_MS, type SimClock } from "./sim_clock.ts";
import type { SimLinks } from "./sim_link.ts";
import type { RegionSource } from "../../src/client/cached_resolver.ts";
import type { SimTso } from "./sim_pd.ts";

/** The accounts: one key near each of several split letters (scheduler.ts splits at a..m). */
export const BANK_ACCOUNTS = ["a1", "b2", "d3", "e4", "g5", "h6", "j7", "l8"];
/** Every account's balance at the start. */
export const BANK_INITIAL_BALANCE = 100;
/** The commit modes of the transfer clients, one client each. */
export const BANK_MODES = ["2pc", "async", "1pc", "mixed"] as const;
/** Deadline of one client call, ms of simulated time (retries and lock waits included). */
export const BANK_CALL_TIMEOUT_MS = 8_000;
/** Lock TTL of the bank's transactions, ms (a dead transaction's locks expire after it). */
export const BANK_LOCK_TTL_MS = 1_000;
/** Most simulated ms a client pauses between two transactions. */
const THINK_MAX_MS = 150;
/** How many times longer the scan reader pauses than the other clients. */
const SCAN_THINK_FACTOR = 4;
/** Largest amount of one transfer. */
const MAX_AMOUNT = 20;
/**
 * The hot-key probe's keys, one near each of four split letters; the suffix keeps them out of
 * the accounts and the transfer records (`isProbeKey`).
 */
export const PROBE_KEYS = ["c0~probe", "f0~probe", "i0~probe", "k0~probe"];
/** Most rounds the probe waits between its read and its commit (the leader moves meanwhile). */
const PROBE_MAX_WAIT_ROUNDS = 4;

/** Whether `key` is one of the hot-key probe's (not an account, not a transfer record). */
export function isProbeKey(key: string): boolean {
  return key.endsWith("~probe");
}

type Mode = typeof BANK_MODES[number];
type Outcome = "committed" | "failed" | "undetermined";

/** Counts of what the bank did. */
export interface BankStats {
  transfers: number;
  committed: number;
  failed: number;
  undetermined: number;
  /** Commits by the mode the client used in the end ("2pc", "async", "1pc", "empty"). */
  modes: Record<string, number>;
  snapshotsChecked: number;
  readsFailed: number;
}

const TOTAL = BANK_ACCOUNTS.length * BANK_INITIAL_BALANCE;
const decoder = new TextDecoder();

/** The bank's clients and checks (module header). */
export class BankWorkload {
  readonly client: TxnKV;
  readonly stats: BankStats = {
    transfers: 0,
    committed: 0,
    failed: 0,
    undetermined: 0,
    modes: {},
    snapshotsChecked: 0,
    readsFailed: 0,
  };
  /** The first snapshot-isolation violation seen, if any. */
  violation: string | undefined;
  /** The first client bug seen (a client call threw what no client failure is), if any. */
  clientBug: string | undefined;
  /** Transfer records by key: what the client said of each. */
  readonly #outcomes = new Map<string, Outcome>();
  /** The highest read ts of a snapshot read that returned (check 4). */
  #highestReadTs = 0n;
  #issuing = true;
  #running = 0;

  constructor(
    readonly parts: {
      c: Cluster;
      clock: SimClock;
      links: SimLinks;
      pd: RegionSource;
      tso: SimTso;
      random: SeededRandom;
      trace: (line: string) => void;
      /**
       * The hot-key probe (module header): its own random source, and the run's leader move of
       * a key's region, called right after a read of the key returned.
       */
      hotKeyProbe?: { random: SeededRandom; afterRead: (key: string) => void };
    },
  ) {
    const { clock, links, pd, tso } = parts;
    this.client = new TxnKV(new CachedRegionResolver(pd, { clock }), tso, {
      clock,
      timeoutMs: BANK_CALL_TIMEOUT_MS,
      transport: { link: (address) => links.link(address) },
      transaction: { lockTtlMs: BANK_LOCK_TTL_MS },
    });
  }

  /** Writes the initial balances (2PC, retried until committed); resolves when done. */
  async setUp(): Promise<void> {
    for (let attempt = 1;; attempt++) {
      try {
        const txn = await this.client.begin();
        for (const account of BANK_ACCOUNTS) txn.set(account, String(BANK_INITIAL_BALANCE));
        await txn.commit();
        this.parts.trace(`bank: accounts set up (attempt ${attempt})`);
        return;
      } catch (error) {
        this.#expected(error, "set-up");
        if (error instanceof CommitUndeterminedError) {
          const seen = await this.client.snapshot().then((s) =>
            s.batchGet(BANK_ACCOUNTS.map(utf8))
          );
          if (seen.size === BANK_ACCOUNTS.length) return;
          if (seen.size > 0) throw new Error(`bank set-up half applied: ${seen.size} accounts`);
        }
      }
    }
  }

  /** Starts every client (their loops run until `stopIssuing`). */
  start(): void {
    BANK_MODES.forEach((mode, i) => this.#loop(() => this.#transfer(i, mode)));
    this.#loop(() => this.#readAll("batchGet"));
    // A scan reads every transfer record too (they lie beside the accounts): less often.
    this.#loop(() => this.#readAll("scan"), SCAN_THINK_FACTOR);
    const probe = this.parts.hotKeyProbe;
    if (probe !== undefined) this.#loop(() => this.#probe(probe), SCAN_THINK_FACTOR);
  }

  /** No new transaction from now on. */
  stopIssuing(): void {
    this.#issuing = false;
  }

  /** True once every client loop has ended. */
  idle(): boolean {
    return this.#running === 0;
  }

  #loop(step: () => Promise<void>, thinkFactor = 1): void {
    this.#running++;
    (async () => {
      while (this.#issuing && this.violation === undefined && this.clientBug === undefined) {
        await step();
        await this.parts.clock.sleep(thinkFactor * this.parts.random.int(THINK_MAX_MS));
      }
    })().catch((error) => {
      this.clientBug ??= `a client loop threw ${describe(error)}`;
    }).finally(() => this.#running--);
  }

  /** A thrown value that is not an expected client failure is a client bug. */
  #expected(error: unknown, what: string): void {
    if (error instanceof ClientError || error instanceof TxnError) return;
    this.clientBug ??= `${what} threw ${describe(error)}`;
  }

  async #transfer(client: number, clientMode: Mode): Promise<void> {
    const { random, trace } = this.parts;
    const mode = clientMode === "mixed"
      ? random.pick(["2pc", "async", "1pc"] as const)
      : clientMode;
    const seq = ++this.stats.transfers;
    let from: string, to: string;
    if (mode === "1pc") {
      const i = random.int(BANK_ACCOUNTS.length - 1);
      [from, to] = random.chance(0.5)
        ? [BANK_ACCOUNTS[i]!, BANK_ACCOUNTS[i + 1]!]
        : [BANK_ACCOUNTS[i + 1]!, BANK_ACCOUNTS[i]!];
    } else {
      from = random.pick(BANK_ACCOUNTS);
      to = random.pick(BANK_ACCOUNTS.filter((a) => a !== from));
    }
    const record = `${from}~t${client}.${seq}`;
    const what = `bank c${client} #${seq} ${mode} ${from}->${to}`;
    let outcome: Outcome = "failed";
    let prewriting = false;
    try {
      const txn = await this.client.begin({ asyncCommit: mode !== "2pc", onePc: mode === "1pc" });
      const values = await txn.batchGet([from, to]);
      const balance = (key: string) => {
        const pair = values.find((p) => decoder.decode(p.key) === key);
        if (pair === undefined) throw new Error(`${what}: account ${key} missing`);
        return Number(decoder.decode(pair.value));
      };
      const [a, b] = [balance(from), balance(to)];
      const amount = Math.min(a, 1 + random.int(MAX_AMOUNT));
      txn.set(from, String(a - amount));
      txn.set(to, String(b + amount));
      txn.set(record, `${from} ${to} ${amount}`);
      prewriting = true;
      const readBefore = this.#highestReadTs;
      const result = await txn.commit();
      outcome = "committed";
      if (result.mode !== "empty" && result.commitTs <= readBefore) {
        this.violation ??= `snapshot isolation: ${what} committed (${result.mode}) at ` +
          `${result.commitTs}, at or below ${readBefore}, the read ts of a snapshot read that ` +
          `returned before the transfer began to commit (and so missed it)`;
      }
      this.stats.modes[result.mode] = (this.stats.modes[result.mode] ?? 0) + 1;
      trace(`${what} ${amount}: committed (${result.mode} at ${result.commitTs})`);
    } catch (error) {
      this.#expected(error, what);
      outcome = error instanceof CommitUndeterminedError ? "undetermined" : "failed";
      trace(`${what}: ${outcome}: ${describe(error).slice(0, 160)}`);
    }
    this.stats[outcome]++;
    if (prewriting || outcome !== "failed") this.#outcomes.set(record, outcome);
  }

  /**
   * One round of the hot-key probe: a blind write begun (start ts s), a snapshot read of its
   * key at a later ts R on the key's leader, the leader moved, then the write's 1PC commit —
   * whose commit ts must be above R (check 4): the read returned before the commit began.
   */
  async #probe(probe: { random: SeededRandom; afterRead: (key: string) => void }): Promise<void> {
    const { clock, trace } = this.parts;
    const key = probe.random.pick(PROBE_KEYS);
    const what = `bank probe ${key}`;
    try {
      const writer = await this.client.begin({ asyncCommit: true, onePc: true });
      const snapshot = await this.client.snapshot();
      const seen = await snapshot.get(utf8(key));
      probe.afterRead(key);
      const value = `${seen === null ? 0 : Number(decoder.decode(seen)) + 1}`;
      writer.set(key, value);
      await clock.sleep(probe.random.int(PROBE_MAX_WAIT_ROUNDS + 1) * ROUND_MS);
      const result = await writer.commit();
      if (result.mode !== "empty" && result.commitTs <= snapshot.readTs) {
        this.violation ??= `snapshot isolation: ${what}: a write begun at ${writer.startTs} ` +
          `committed (${result.mode}) at ${result.commitTs}, at or below ${snapshot.readTs}, ` +
          `the read ts of a snapshot read of the key that returned before the commit began ` +
          `(and so missed it)`;
      }
      trace(
        `${what}: read at ${snapshot.readTs}, wrote ${value}: committed (${result.mode} ` +
          `at ${result.commitTs})`,
      );
    } catch (error) {
      this.#expected(error, what);
      trace(`${what}: ${describe(error).slice(0, 160)}`);
    }
  }

  async #readAll(how: "batchGet" | "scan"): Promise<void> {
    try {
      const snapshot = await this.client.snapshot();
      const balances = await this.#balancesAt(snapshot, how);
      this.#checkSnapshot(balances, `${how} at ${snapshot.readTs}`);
      if (snapshot.readTs > this.#highestReadTs) this.#highestReadTs = snapshot.readTs;
    } catch (error) {
      this.#expected(error, `bank ${how} read`);
      this.stats.readsFailed++;
    }
  }

  async #balancesAt(
    snapshot: Awaited<ReturnType<TxnKV["snapshot"]>>,
    how: "batchGet" | "scan",
  ): Promise<Map<string, number>> {
    const balances = new Map<string, number>();
    if (how === "batchGet") {
      const found = await snapshot.batchGet(BANK_ACCOUNTS.map(utf8));
      for (const account of BANK_ACCOUNTS) {
        const value = found.get(keyId(utf8(account)));
        if (value !== undefined) balances.set(account, Number(decoder.decode(value)));
      }
    } else {
      for (const pair of await snapshot.scan(utf8("a"), utf8("m"))) {
        const key = decoder.decode(pair.key);
        if (!key.includes("~")) balances.set(key, Number(decoder.decode(pair.value)));
      }
    }
    return balances;
  }

  #checkSnapshot(balances: Map<string, number>, what: string): void {
    this.stats.snapshotsChecked++;
    const sum = [...balances.values()].reduce((s, v) => s + v, 0);
    if (balances.size !== BANK_ACCOUNTS.length || sum !== TOTAL) {
      this.violation ??= `snapshot isolation: the ${what} saw ${balances.size} accounts summing ` +
        `to ${sum}, not ${BANK_ACCOUNTS.length} summing to ${TOTAL}: ${describeBalances(balances)}`;
    }
    this.parts.trace(`bank ${what}: ${describeBalances(balances)} sum ${sum}`);
  }

  /**
   * The final read and checks 2 (module header): a sentence naming the violation, or
   * undefined. Needs the run to keep ticking while it reads.
   */
  async finalCheck(): Promise<string | undefined> {
    await this.client.flush();
    let pairs;
    for (let attempt = 1;; attempt++) {
      try {
        const snapshot = await this.client.snapshot();
        pairs = await snapshot.scan(new Uint8Array(0), new Uint8Array(0));
        break;
      } catch (error) {
        this.#expected(error, "bank final read");
        if (this.clientBug !== undefined) return `client bug: ${this.clientBug}`;
        if (attempt >= 5) return `bank: the final read failed 5 times: ${describe(error)}`;
      }
    }
    const balances = new Map<string, number>();
    const replayed = new Map(BANK_ACCOUNTS.map((a) => [a, BANK_INITIAL_BALANCE]));
    const records = new Set<string>();
    for (const pair of pairs) {
      const key = decoder.decode(pair.key);
      const value = decoder.decode(pair.value);
      if (isProbeKey(key)) continue;
      if (!key.includes("~")) {
        balances.set(key, Number(value));
        continue;
      }
      records.add(key);
      const [from, to, amount] = value.split(" ");
      replayed.set(from!, replayed.get(from!)! - Number(amount));
      replayed.set(to!, replayed.get(to!)! + Number(amount));
    }
    this.#checkSnapshot(balances, "final read");
    if (this.violation !== undefined) return this.violation;
    for (const account of BANK_ACCOUNTS) {
      if (balances.get(account) !== replayed.get(account)) {
        return `lost update: account ${account} holds ${balances.get(account)} but its ` +
          `${records.size} transfer records make ${replayed.get(account)}`;
      }
    }
    for (const [record, outcome] of this.#outcomes) {
      if (outcome === "committed" && !records.has(record)) {
        return `lost commit: transfer ${record} was acknowledged, its record is gone`;
      }
      if (outcome === "failed" && records.has(record)) {
        return `phantom commit: transfer ${record} was reported failed, its record is there`;
      }
    }
    for (const record of records) {
      if (!this.#outcomes.has(record)) return `unknown record ${record}`;
    }
    this.parts.trace(
      `bank final: ${describeBalances(balances)}, ${records.size} transfer records replayed`,
    );
    return undefined;
  }

  /**
   * Before check 3: the locks no reader resolved, resolved by the client's sweep
   * (`TxnKV.resolveLocks`, what TiDB's GC worker runs before it raises the safe point). Readers
   * leave some on purpose: a small transaction's first lock met is resolved, its other locks
   * are read through. A sentence naming the failure, or undefined.
   */
  async sweepLocks(): Promise<string | undefined> {
    for (let attempt = 1;; attempt++) {
      try {
        const met = await this.client.resolveLocks(await this.client.currentTimestamp());
        this.parts.trace(`bank: the lock sweep met ${met} locks`);
        return undefined;
      } catch (error) {
        this.#expected(error, "bank lock sweep");
        if (this.clientBug !== undefined) return `client bug: ${this.clientBug}`;
        if (attempt >= 5) return `bank: the lock sweep failed 5 times: ${describe(error)}`;
      }
    }
  }
}

/**
 * Check 3 (module header): every lock in the lock CF of a caught-up replica (applied as far as
 * its region's leader), as "store N region R key K" lines.
 */
export function lockedKeys(c: Cluster): string[] {
  const found: string[] = [];
  for (const region of regionMap(c)) {
    const leader = c.leader(region.id);
    if (leader === undefined) continue;
    const range = leader.region();
    for (const peer of c.peers(region.id)) {
      if (!peer.isInitialized() || peer.appliedIndex() !== leader.appliedIndex()) continue;
      using it = c.engine(peer.meta.storeId).iterator("lock");
      for (it.seekToFirst(); it.valid(); it.next()) {
        if (keyInRegion(it.key(), range)) {
          found.push(`store ${peer.meta.storeId} region ${region.id} key ${toHex(it.key())}`);
        }
      }
    }
  }
  return found;
}

function describeBalances(balances: Map<string, number>): string {
  return BANK_ACCOUNTS.map((a) => `${a}=${balances.get(a) ?? "∅"}`).join(" ");
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  if (error instanceof ClientError || error instanceof TxnError) {
    return `${error.name}: ${error.message}`;
  }
  const top = (error.stack ?? "").split("\n").slice(1, 3).map((l) => l.trim()).join(" ");
  return `${error.name}: ${error.message} ${top}`;
}
