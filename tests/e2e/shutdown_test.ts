/**
 * Shutdown under load (issue #9, item 5): a SIGTERM while the region workers are busy with
 * durable writes and large scans drains, stops the workers, then closes the engine, in that
 * order. The process exits 0 — never by a signal such as SIGABRT or SIGSEGV from inside
 * RocksDB — and the data directory reopens with every acknowledged write. The quick restarts
 * also check that a restarted store does not warn about the system clock (item 6).
 */
import assert from "node:assert/strict";
import { kvrpcpb } from "../../proto/mod.ts";
import { fromUtf8, utf8 } from "../../src/util/bytes.ts";
import { startServer, TikvClient } from "./lib.ts";

const E2E = { sanitizeOps: false, sanitizeResources: false };
const context = { regionId: 1n, regionEpoch: { confVer: 1n, version: 1n } };
const batchPut = { request: kvrpcpb.RawBatchPutRequest, response: kvrpcpb.RawBatchPutResponse };
const scan = { request: kvrpcpb.RawScanRequest, response: kvrpcpb.RawScanResponse };
const batchGet = { request: kvrpcpb.RawBatchGetRequest, response: kvrpcpb.RawBatchGetResponse };

/** Keys per RawBatchPut, and the size of every value: enough to keep fsyncs and scans busy. */
const KEYS_PER_WRITE = 200;
const VALUE_BYTES = 256;
const WRITERS = 12;
const SCANNERS = 4;
/** Pairs each scan asks for (below RAW_SCAN_MAX_LIMIT). */
const SCAN_LIMIT = 5_000;
/** How long the load runs at least before the SIGTERM. */
const LOAD_BEFORE_SIGTERM_MS = 1_000;
/** How long to look for a moment with requests in flight (the signal follows at once). */
const BUSY_TIMEOUT_MS = 10_000;
const ROUNDS = 3;

function valueOf(key: string): Uint8Array {
  const value = new Uint8Array(VALUE_BYTES).fill(key.length);
  value.set(utf8(key).subarray(0, VALUE_BYTES));
  return value;
}

/** Runs writers and scanners until `running()` turns false or a call fails (the server left). */
function startLoad(addr: string, round: number, running: () => boolean) {
  const client = new TikvClient(addr);
  const acknowledged: string[] = [];
  let scans = 0;
  const writers = Array.from({ length: WRITERS }, async (_, w) => {
    for (let i = 0; running() && i < 100_000; i++) {
      const keys = Array.from({ length: KEYS_PER_WRITE }, (_, k) => `r${round}-w${w}-${i}-${k}`);
      const pairs = keys.map((key) => ({ key: utf8(key), value: valueOf(key) }));
      try {
        const answer = await client.call<unknown, kvrpcpb.RawBatchPutResponse>(
          "RawBatchPut",
          batchPut,
          { context, pairs },
        );
        if (answer.error !== "" || answer.regionError) return;
        acknowledged.push(...keys);
      } catch {
        return; // the server is going away: this write was not acknowledged
      }
    }
  });
  const scanners = Array.from({ length: SCANNERS }, async () => {
    for (let i = 0; running() && i < 100_000; i++) {
      try {
        await client.call("RawScan", scan, { context, limit: SCAN_LIMIT });
        scans++;
      } catch {
        return;
      }
    }
  });
  return {
    acknowledged,
    scans: () => scans,
    async finished() {
      await Promise.all([...writers, ...scanners]);
      client.close();
    },
  };
}

/** The keys of `keys` the store does not hold with their written value. */
async function missing(addr: string, keys: string[]): Promise<string[]> {
  const client = new TikvClient(addr);
  const lost: string[] = [];
  try {
    for (let at = 0; at < keys.length; at += 4096) {
      const chunk = keys.slice(at, at + 4096);
      const answer = await client.call<unknown, kvrpcpb.RawBatchGetResponse>(
        "RawBatchGet",
        batchGet,
        { context, keys: chunk.map(utf8) },
      );
      const found = new Map(answer.pairs.map((pair) => [fromUtf8(pair.key!), pair.value!]));
      for (const key of chunk) {
        const value = found.get(key);
        if (value === undefined || fromUtf8(value) !== fromUtf8(valueOf(key))) lost.push(key);
      }
    }
  } finally {
    client.close();
  }
  return lost;
}

/** Returns once the store reports requests in flight (the caller signals right after). */
async function busy(statusAddr: string): Promise<void> {
  const deadline = Date.now() + BUSY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const metrics = await (await fetch(`http://${statusAddr}/metrics`)).text();
    const inFlight = /^basalt_grpc_requests_in_flight (\d+)$/m.exec(metrics);
    if (Number(inFlight?.[1] ?? 0) > 0) return;
  }
  throw new Error(`no request in flight within ${BUSY_TIMEOUT_MS} ms: the load is not running`);
}

async function configFile(toml: string): Promise<string> {
  const path = await Deno.makeTempFile({ prefix: "basalt_e2e_config_", suffix: ".toml" });
  await Deno.writeTextFile(path, toml);
  return path;
}

Deno.test({
  name: "e2e: SIGTERM while workers write and scan exits 0 and reopens with every acknowledged " +
    `write (${ROUNDS} rounds)`,
  ...E2E,
  fn: async () => {
    const config = await configFile("[raftstore]\nstore-pool-size = 2\n");
    const server = await startServer({ args: ["--config", config] });
    let failed = true;
    try {
      const acknowledged: string[] = [];
      const inFlightAtSignal: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        let running = true;
        const load = startLoad(server.grpcAddr, round, () => running);
        await new Promise((resolve) => setTimeout(resolve, LOAD_BEFORE_SIGTERM_MS));
        await busy(server.statusAddr);
        const code = await server.stop();
        running = false;
        await load.finished();
        assert.equal(code, 0, `round ${round}: exit code ${code} (128+n is death by signal n)`);
        assert.ok(load.acknowledged.length > 0, `round ${round}: writes were acknowledged`);
        assert.ok(load.scans() > 0, `round ${round}: scans ran`);
        acknowledged.push(...load.acknowledged);
        const serverLog = await Deno.readTextFile(`${server.dataDir}.server.log`);
        const stopping = [...serverLog.matchAll(/stopping signal="SIGTERM" inFlight="(\d+)"/g)];
        assert.equal(stopping.length, round + 1);
        inFlightAtSignal.push(Number(stopping.at(-1)![1]));
        assert.doesNotMatch(serverLog, /left the engine to its write-ahead log/);
        const closed = serverLog.match(/INFO stopped engine="closed"/g) ?? [];
        assert.equal(closed.length, round + 1, `round ${round}: the engine was closed`);
        await server.restart();
        const lost = await missing(server.grpcAddr, acknowledged);
        assert.deepEqual(
          lost.slice(0, 5),
          [],
          `round ${round}: ${lost.length} of ${acknowledged.length} acknowledged writes lost`,
        );
      }
      // On a loaded machine a signal can land between requests now and then, never every time.
      assert.ok(inFlightAtSignal.some((n) => n > 0), `in flight at SIGTERM: ${inFlightAtSignal}`);
      // Each restart came within the TSO's saved window (ahead of the clock by design): no
      // clock warning, since the clock never stepped back (issue #9, item 6).
      const serverLog = await Deno.readTextFile(`${server.dataDir}.server.log`);
      assert.equal(serverLog.match(/store started/g)?.length, ROUNDS + 1);
      assert.doesNotMatch(serverLog, /system time may be incorrect|wall clock stepped back/);
      failed = false;
    } finally {
      try {
        await server.stop();
      } catch { /* already stopped by the test */ }
      await Deno.remove(config);
      const parent = server.dataDir.replace(/\/data$/, "");
      if (failed) console.error(`e2e: kept data and logs of the failed test in ${parent}`);
      else await Deno.remove(parent, { recursive: true });
    }
  },
});
