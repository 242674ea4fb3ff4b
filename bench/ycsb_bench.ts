/**
 * YCSB benchmark (`deno task bench --only ycsb`): workloads A–F (`ycsb_workloads.ts`) against
 * one store process, through the transactional client (`TxnKV`) and through `RawKV` on the same
 * store in the same run, each with its own key space ("t/…" and "r/…") loaded with the same
 * records. Prints ops/s and p99 per workload and client, and the ratio txn/raw.
 *
 * - Transactional operations are whole transactions: a read is begin (a TSO timestamp) + KvGet;
 *   an update or insert is a one-key transaction committed with 1PC (async commit enabled, as
 *   TiDB runs them); a read-modify-write reads and writes in one transaction; updates and
 *   read-modify-writes that meet a write conflict are retried (`withRetry`) and count as one
 *   operation with the latency of all attempts. Row "A (2PC)" runs workload A with plain
 *   Percolator two-phase commit for comparison.
 * - Raw operations are RawGet, RawPut, RawScan; a read-modify-write is RawGet then RawPut.
 * - 64 requests in flight (YCSB threads), the same seeded request sequence for both clients,
 *   workloads in YCSB's recommended order (A, B, C, F, D, E: inserts last).
 *
 * Target (issue #4): transactional YCSB-A ≥ 30% of raw YCSB-A. The machine is shared: read
 * the ratio, not the absolute figures.
 */
import { RawKV } from "../src/client/raw.ts";
import { type TransactionOptions, TxnKV } from "../src/client/txn/mod.ts";
import { SeededRandom } from "../src/util/random.ts";
import { startServer } from "../tests/e2e/lib.ts";
import { printTable } from "./report.ts";
import { type LoadResult, runClosedLoop } from "./server_load.ts";
import {
  KeySpace,
  recordKey,
  RequestStream,
  VALUE_BYTES,
  type Workload,
  WORKLOADS,
  type YcsbStore,
} from "./ycsb_workloads.ts";

/** Parameters of a YCSB run. */
export interface YcsbBenchOptions {
  /** Records loaded into each key space (YCSB `recordcount`). */
  records: number;
  /** Requests per workload and client (YCSB `operationcount`). */
  operations: number;
  /** Requests in flight (YCSB `threadcount`); default 64. */
  inFlight?: number;
  /** Seed of the request sequences; default 42. */
  seed?: number;
}

const IN_FLIGHT = 64;
const LOAD_BATCH = 50;
const LOAD_IN_FLIGHT = 8;
const WORKLOAD_MAX_MS = 60_000;
const TARGET_A_RATIO = 0.3;
const RETRY_ATTEMPTS = 20;

const describe = (error: unknown) => error instanceof Error ? error.message : String(error);

/** YCSB's operations over RawKV. */
export function rawStore(client: RawKV, end: Uint8Array): YcsbStore {
  return {
    read: async (key) => (await client.get(key), null),
    update: async (key, value) => (await client.put(key, value), null),
    insert: async (key, value) => (await client.put(key, value), null),
    scan: async (key, count) => (await client.scan(key, end, { limit: count }), null),
    readModifyWrite: async (key, value) => {
      await client.get(key);
      await client.put(key, value);
      return null;
    },
  };
}

/** YCSB's operations as transactions of a TxnKV. */
export function txnStore(client: TxnKV, end: Uint8Array, options: TransactionOptions): YcsbStore {
  const retry = { ...options, attempts: RETRY_ATTEMPTS };
  return {
    read: async (key) => {
      const txn = await client.begin(options);
      await txn.get(key);
      await txn.commit();
      return null;
    },
    update: async (key, value) => {
      await client.withRetry((txn) => Promise.resolve(txn.set(key, value)), retry);
      return null;
    },
    insert: async (key, value) => {
      const txn = await client.begin(options);
      txn.insert(key, value);
      await txn.commit();
      return null;
    },
    scan: async (key, count) => {
      const txn = await client.begin(options);
      await txn.scan(key, end, { limit: count });
      await txn.commit();
      return null;
    },
    readModifyWrite: async (key, value) => {
      await client.withRetry(async (txn) => {
        await txn.get(key);
        txn.set(key, value);
      }, retry);
      return null;
    },
  };
}

/** Guards a store so a rejection becomes an error description (counted, not fatal). */
export function guarded(store: YcsbStore): YcsbStore {
  const wrap =
    <A extends unknown[]>(call: (...args: A) => Promise<string | null>) => (...args: A) =>
      call(...args).catch(describe);
  return {
    read: wrap(store.read),
    update: wrap(store.update),
    insert: wrap(store.insert),
    scan: wrap(store.scan),
    readModifyWrite: wrap(store.readModifyWrite),
  };
}

/** Loads every record of `keys` in batches through `put`; returns records per second. */
async function loadRecords(
  keys: KeySpace,
  put: (batch: Uint8Array[]) => Promise<void>,
): Promise<number> {
  const started = performance.now();
  const batches = Math.ceil(keys.records / LOAD_BATCH);
  let next = 0;
  const worker = async () => {
    while (next < batches) {
      const batch = next++;
      const numbers = Array.from(
        { length: Math.min(LOAD_BATCH, keys.records - batch * LOAD_BATCH) },
        (_, i) => batch * LOAD_BATCH + i,
      );
      await put(numbers.map((n) => recordKey(keys.prefix, n)));
    }
  };
  await Promise.all(Array.from({ length: LOAD_IN_FLIGHT }, worker));
  return keys.records / ((performance.now() - started) / 1000);
}

interface Row {
  name: string;
  txn: LoadResult;
  raw: LoadResult;
}

async function runWorkload(
  workload: Workload,
  how: { store: YcsbStore; keys: KeySpace; value: Uint8Array; options: YcsbBenchOptions },
): Promise<LoadResult> {
  const { options } = how;
  const expectedInserts = Math.ceil(options.operations * (workload.mix.insert ?? 0));
  const stream = new RequestStream(
    workload,
    how.keys,
    new SeededRandom(options.seed ?? 42),
    expectedInserts,
  );
  return await runClosedLoop(() => stream.run(how.store, how.value), {
    ops: options.operations,
    inFlight: options.inFlight ?? IN_FLIGHT,
    maxMs: WORKLOAD_MAX_MS,
  });
}

/** Runs the YCSB section and prints its table. */
export async function benchYcsb(options: YcsbBenchOptions): Promise<void> {
  const server = await startServer();
  const raw = await RawKV.connect({ host: server.grpcAddr });
  const txn = await TxnKV.connect({ host: server.grpcAddr });
  const value = new SeededRandom(7).bytes(VALUE_BYTES);
  const rawKeys = new KeySpace("r/", options.records);
  const txnKeys = new KeySpace("t/", options.records);
  const fast: TransactionOptions = { asyncCommit: true, onePc: true };
  const stores = {
    raw: guarded(rawStore(raw, new TextEncoder().encode("r0"))),
    txn: guarded(txnStore(txn, new TextEncoder().encode("t0"), fast)),
    txn2pc: guarded(txnStore(txn, new TextEncoder().encode("t0"), {})),
  };
  try {
    console.log(
      `ycsb: ${options.records.toLocaleString("en-US")} records of ${VALUE_BYTES} B, ` +
        `${options.operations.toLocaleString("en-US")} ops per workload, ` +
        `${options.inFlight ?? IN_FLIGHT} in flight; loading…`,
    );
    const rawLoad = await loadRecords(
      rawKeys,
      (keys) => raw.batchPut(keys.map((key) => ({ key, value }))),
    );
    const txnLoad = await loadRecords(txnKeys, async (keys) => {
      const load = await txn.begin();
      for (const key of keys) load.set(key, value);
      await load.commit();
    });
    console.log(
      `ycsb: loaded at ${Math.round(rawLoad)} records/s (raw), ${Math.round(txnLoad)} (txn)`,
    );
    const rows: Row[] = [];
    const order = ["A", "B", "C", "F", "D", "E"];
    for (const name of order) {
      const workload = WORKLOADS.find((w) => w.name === name)!;
      const how = { value, options };
      const txnResult = await runWorkload(workload, { ...how, store: stores.txn, keys: txnKeys });
      const rawResult = await runWorkload(workload, { ...how, store: stores.raw, keys: rawKeys });
      rows.push({ name, txn: txnResult, raw: rawResult });
      if (name === "A") {
        const plain = await runWorkload(workload, {
          ...how,
          store: stores.txn2pc,
          keys: txnKeys,
        });
        rows.push({ name: "A (2PC)", txn: plain, raw: rawResult });
      }
    }
    printRows(rows);
  } finally {
    await txn.close();
    raw.close();
    await server.stop();
  }
}

function printRows(rows: Row[]): void {
  const fmt = (n: number) => Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "n/a";
  const ms = (n: number) => Number.isFinite(n) ? n.toFixed(1) : "n/a";
  printTable(
    "YCSB: transactional client vs RawKV on the same store (ops/s, p99 ms)",
    ["workload", "txn ops/s", "txn p99", "raw ops/s", "raw p99", "txn/raw", "errors txn/raw"],
    rows.map((row) => [
      row.name,
      fmt(row.txn.opsPerSecond),
      ms(row.txn.p99Ms),
      fmt(row.raw.opsPerSecond),
      ms(row.raw.p99Ms),
      `${(row.txn.opsPerSecond / row.raw.opsPerSecond).toFixed(2)}×`,
      `${row.txn.errors}/${row.raw.errors}`,
    ]),
  );
  for (const row of rows) {
    const first = row.txn.firstError ?? row.raw.firstError;
    if (first !== undefined) console.log(`  ${row.name}: first error: ${first}`);
  }
  const a = rows.find((row) => row.name === "A")!;
  const ratio = a.txn.opsPerSecond / a.raw.opsPerSecond;
  console.log(
    `target: transactional YCSB-A ≥ ${TARGET_A_RATIO * 100}% of raw YCSB-A: ` +
      `${(ratio * 100).toFixed(0)}% — ${ratio >= TARGET_A_RATIO ? "met" : "NOT met"} ` +
      "(shared machine: absolute figures wander ±2×, the ratio holds better)",
  );
}

if (import.meta.main) {
  const { parseArgs } = await import("node:util");
  const { values } = parseArgs({
    options: {
      num: { type: "string", default: "10000" },
      ops: { type: "string" },
      "in-flight": { type: "string", default: String(IN_FLIGHT) },
    },
  });
  await benchYcsb({
    records: Number(values.num),
    operations: Number(values.ops ?? values.num),
    inFlight: Number(values["in-flight"]),
  });
}
