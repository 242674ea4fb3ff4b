/**
 * Large transactions (`deno task bench -- --only txn-large [--num 100000]`): one transaction
 * over `num` keys, run through the store's command layer (request checks, region check,
 * scheduler, actions) on RocksDB with sync-log on, as a region-group worker runs them. Phases:
 * prewrite → commit, prewrite → batch rollback, pessimistic lock → pessimistic rollback,
 * prewrite → check secondary locks → resolve lock (rollback).
 *
 * Each phase prints its seconds, keys/s, and the longest stall of the event loop it caused
 * (a 1 ms ticker on the same thread: the longest time the worker could serve nothing else).
 * The peer is the same phase at num/8 keys in the same run: a linear command costs the same
 * per key at both sizes, so the column `per-key cost num vs num/8` should be near 1× (a
 * quadratic one would be near 8×).
 *
 * Keys are sent in requests of at most `REQUEST_KEYS`, below any per-request maximum a client
 * meets (TiKV's client sends 16 KiB of keys per request).
 */
import { kvrpcpb } from "../proto/mod.ts";
import { RocksDbEngine } from "../src/engine/rocksdb_engine.ts";
import { COMMANDS_BY_NAME } from "../src/server/commands.ts";
import { Latches } from "../src/server/raw/latches.ts";
import { standaloneRegion } from "../src/server/region.ts";
import { runCommand } from "../src/server/respond.ts";
import type { StoreServices } from "../src/server/services.ts";
import { newTxnStore } from "../src/server/txn/store.ts";
import { printTable } from "./report.ts";

/** Keys per request; a transaction of more keys is sent in several. */
const REQUEST_KEYS = 16 * 1024;
const VALUE_BYTES = 100;
const LOCK_TTL_MS = 60_000n;
const CONTEXT = { regionId: 1n, regionEpoch: { confVer: 1n, version: 1n } };

/** Parameters of a run. */
export interface TxnLargeBenchOptions {
  /** Keys of the large transaction. */
  num: number;
}

/** One phase's outcome. */
interface PhaseResult {
  seconds: number;
  stallMs: number;
}

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

function keyOf(prefix: string, index: number): Uint8Array {
  return new TextEncoder().encode(`${prefix}/${String(index).padStart(10, "0")}`);
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Fails the benchmark on any error answer: a benchmark of failures measures nothing. */
function expectNoError(name: string, answer: Answer): void {
  const errors = [answer.error, ...(answer.errors ?? []), answer.regionError].filter(
    (e) => e !== undefined && e !== null && e !== "",
  );
  if (errors.length > 0) throw new Error(`${name} failed: ${JSON.stringify(errors[0])}`);
}

/** Runs `body`, timing it and the longest gap of a 1 ms ticker on this thread meanwhile. */
async function measure(body: () => Promise<void>): Promise<PhaseResult> {
  let last = performance.now();
  let stallMs = 0;
  const ticker = setInterval(() => {
    const now = performance.now();
    stallMs = Math.max(stallMs, now - last);
    last = now;
  }, 1);
  const start = performance.now();
  try {
    await body();
  } finally {
    clearInterval(ticker);
  }
  const end = performance.now();
  stallMs = Math.max(stallMs, end - last);
  return { seconds: (end - start) / 1000, stallMs };
}

/** Sends `name` once per chunk of `keys`, with `requestOf` building each request. */
async function perChunk(
  services: StoreServices,
  name: string,
  keys: readonly Uint8Array[],
  requestOf: (chunk: Uint8Array[]) => object,
): Promise<void> {
  for (const chunk of chunks(keys, REQUEST_KEYS)) {
    expectNoError(name, await call(services, name, requestOf(chunk)));
  }
}

/** The phases of one transaction of `keys` at `startTs` (each phase: [name, body]). */
function phases(
  services: StoreServices,
  options: { keys: Uint8Array[]; startTs: bigint },
): [string, () => Promise<void>][] {
  const { keys, startTs } = options;
  const value = new Uint8Array(VALUE_BYTES).fill(7);
  const primaryLock = keys[0]!;
  const prewrite = () =>
    perChunk(services, "KvPrewrite", keys, (chunk) => ({
      mutations: chunk.map((key) => ({ op: kvrpcpb.Op.Put, key, value })),
      primaryLock,
      startVersion: startTs,
      lockTtl: LOCK_TTL_MS,
      txnSize: BigInt(keys.length),
    }));
  return [
    ["prewrite", prewrite],
    ["commit", () =>
      perChunk(services, "KvCommit", keys, (chunk) => ({
        keys: chunk,
        startVersion: startTs,
        commitVersion: startTs + 1n,
      }))],
    ["prewrite (2)", () =>
      perChunk(services, "KvPrewrite", keys, (chunk) => ({
        mutations: chunk.map((key) => ({ op: kvrpcpb.Op.Put, key, value })),
        primaryLock,
        startVersion: startTs + 10n,
        lockTtl: LOCK_TTL_MS,
      }))],
    ["batch rollback", () =>
      perChunk(services, "KvBatchRollback", keys, (chunk) => ({
        keys: chunk,
        startVersion: startTs + 10n,
      }))],
    ["pessimistic lock", () =>
      perChunk(services, "KvPessimisticLock", keys, (chunk) => ({
        mutations: chunk.map((key) => ({ op: kvrpcpb.Op.PessimisticLock, key })),
        primaryLock,
        startVersion: startTs + 20n,
        forUpdateTs: startTs + 20n,
        lockTtl: LOCK_TTL_MS,
        waitTimeout: -1n,
      }))],
    ["pessimistic rollback", () =>
      perChunk(services, "KVPessimisticRollback", keys, (chunk) => ({
        keys: chunk,
        startVersion: startTs + 20n,
        forUpdateTs: startTs + 20n,
      }))],
    ["prewrite (3)", () =>
      perChunk(services, "KvPrewrite", keys, (chunk) => ({
        mutations: chunk.map((key) => ({ op: kvrpcpb.Op.Put, key, value })),
        primaryLock,
        startVersion: startTs + 30n,
        lockTtl: LOCK_TTL_MS,
      }))],
    ["check secondary locks", () =>
      perChunk(services, "KvCheckSecondaryLocks", keys, (chunk) => ({
        keys: chunk,
        startVersion: startTs + 30n,
      }))],
    ["resolve lock (rollback)", () =>
      perChunk(services, "KvResolveLock", keys, (chunk) => ({
        keys: chunk,
        startVersion: startTs + 30n,
        commitVersion: 0n,
      }))],
  ];
}

async function runPhases(
  services: StoreServices,
  options: { keys: Uint8Array[]; startTs: bigint },
): Promise<Map<string, PhaseResult>> {
  const results = new Map<string, PhaseResult>();
  for (const [name, body] of phases(services, options)) results.set(name, await measure(body));
  return results;
}

/** Runs the section and prints its table. */
export async function benchTxnLarge(options: TxnLargeBenchOptions): Promise<void> {
  const num = options.num;
  const small = Math.max(1, Math.floor(num / 8));
  const directory = await Deno.makeTempDir({ prefix: "basalt-txn-large-" });
  const engine = RocksDbEngine.open(directory);
  try {
    const region = standaloneRegion();
    const services: StoreServices = {
      regions: new Map([[region.id, region]]),
      raw: { engine, latches: new Latches(), syncLog: true, nowUnixSeconds: () => 0 },
      txn: newTxnStore(engine, { syncLog: true, latestTs: 1n }),
    };
    const smallKeys = Array.from({ length: small }, (_, i) => keyOf("s", i));
    const largeKeys = Array.from({ length: num }, (_, i) => keyOf("l", i));
    const peer = await runPhases(services, { keys: smallKeys, startTs: 1000n });
    const ours = await runPhases(services, { keys: largeKeys, startTs: 2000n });
    const lines = [...ours].map(([name, result]) => {
      const smallResult = peer.get(name)!;
      const perKeyRatio = (result.seconds / num) / (smallResult.seconds / small);
      return [
        name,
        result.seconds.toFixed(2),
        Math.round(num / result.seconds).toLocaleString("en-US"),
        result.stallMs.toFixed(0),
        `${perKeyRatio.toFixed(2)}×`,
      ];
    });
    printTable(
      `Large transaction: ${
        num.toLocaleString("en-US")
      } keys, requests of ≤ ${REQUEST_KEYS} keys, ` +
        `RocksDB, sync-log on (peer: the same at ${small.toLocaleString("en-US")} keys)`,
      ["phase", "seconds", "keys/s", "longest stall ms", "per-key cost num vs num/8"],
      lines,
    );
  } finally {
    engine.close();
    await Deno.remove(directory, { recursive: true });
  }
}
