/**
 * PD's allocators and safe points across restarts: ids never repeat (PD `pkg/id`), timestamps
 * never go back (PD `pkg/tso`: a saved window, begun above after a restart), the GC safe point
 * never goes back and service safe points bound it (PD `pkg/gc`), and which calls need a
 * bootstrapped cluster.
 */
import assert from "node:assert/strict";
import {
  PD_ID_ALLOC_MAX_COUNT,
  PD_ID_ALLOC_STEP,
  PD_SERVICE_SAFE_POINTS_MAX,
} from "../constants.ts";
import { MemoryEngine } from "../engine/memory_engine.ts";
import { TSO_LOGICAL_BITS, TSO_MAX_LOGICAL } from "../tso/mod.ts";
import { SeededRandom } from "../util/random.ts";
import { EngineStorage } from "./engine_storage.ts";
import { PdError } from "./errors.ts";
import { PlacementDriver } from "./placement_driver.ts";
import { GC_WORKER_SERVICE_ID } from "./safe_point.ts";

const START_MS = 1_700_000_000_000;

function open(engine: MemoryEngine, clock: { nowMs: number }, bootstrap = true) {
  const pd = PlacementDriver.open({
    storage: new EngineStorage({ engine }),
    clock: { nowMs: () => clock.nowMs },
    random: new SeededRandom(3),
  });
  if (bootstrap && !pd.isBootstrapped()) {
    const refused = pd.bootstrap({
      store: { id: 1n, address: "s1" },
      region: {
        id: 2n,
        startKey: new Uint8Array(0),
        endKey: new Uint8Array(0),
        regionEpoch: { confVer: 1n, version: 1n },
        peers: [{ id: 3n, storeId: 1n, role: "Voter" }],
      },
    });
    assert.equal(refused, null);
  }
  return pd;
}

function value<T>(result: T | PdError): T {
  assert.ok(!(result instanceof PdError), `unexpected ${String(result)}`);
  return result;
}

Deno.test("AllocID: ids never repeat across a restart, and the window is saved before use", () => {
  const engine = new MemoryEngine();
  const clock = { nowMs: START_MS };
  const first = open(engine, clock, false);
  const issued = [value(first.allocId(1)), value(first.allocId(10)), value(first.allocId(0))];
  const saved = BigInt(new EngineStorage({ engine }).get("alloc_id")!);
  assert.ok(issued.every((id) => id <= saved), "every id handed out lies within the saved window");
  assert.equal(saved, 1n + PD_ID_ALLOC_STEP, "one save: the first id plus a step ahead");
  const second = open(engine, clock, false);
  const next = value(second.allocId(1));
  assert.ok(next > issued[2]!, `after a restart ${next} follows ${issued[2]}`);
  assert.equal(next, saved + 1n, "a restart begins at the saved window end (PD skips the rest)");
  assert.equal((second.allocId(PD_ID_ALLOC_MAX_COUNT + 1) as PdError).code, "InvalidRequest");
  assert.equal(value(second.allocId(PD_ID_ALLOC_MAX_COUNT)), next + BigInt(PD_ID_ALLOC_MAX_COUNT));
});

Deno.test("TSO: timestamps never go back across a restart, even with the clock stepped back", () => {
  const engine = new MemoryEngine();
  const clock = { nowMs: START_MS };
  const first = open(engine, clock, false);
  let last = value(first.tso(1)).last;
  clock.nowMs += 2_000;
  last = value(first.tso(100)).last;
  // Restart with the wall clock 10 s behind.
  clock.nowMs -= 10_000;
  const second = open(engine, clock, false);
  const after = value(second.tso(1));
  assert.ok(after.first > last, `${after.first} must follow ${last}`);
  assert.ok(after.physicalMs > BigInt(START_MS + 2_000), "it begins above the saved window");
  assert.equal(after.last >> BigInt(TSO_LOGICAL_BITS), after.physicalMs);
});

Deno.test("TSO: a logical overflow moves to the next millisecond, as PD's overflow update does", () => {
  // PD before 2026 slept one update interval (50 ms) and retried; PD now (`tso.go`,
  // `updateTimestamp(overflowUpdate)`) moves the physical part on by 1 ms inside the saved
  // window at once. src/tso's oracle does the latter; timestamps still only increase.
  const clock = { nowMs: START_MS };
  const pd = open(new MemoryEngine(), clock, false);
  const firstBatch = value(pd.tso(TSO_MAX_LOGICAL - 10));
  const overflowing = value(pd.tso(100));
  assert.equal(overflowing.physicalMs, firstBatch.physicalMs + 1n);
  assert.ok(overflowing.first > firstBatch.last);
  assert.equal(overflowing.logical, 100n);
  assert.equal((pd.tso(0) as PdError).code, "InvalidRequest");
  assert.equal((pd.tso(TSO_MAX_LOGICAL) as PdError).code, "InvalidRequest");
});

Deno.test("GC safe point: it never goes back", () => {
  const pd = open(new MemoryEngine(), { nowMs: START_MS });
  assert.equal(value(pd.updateGcSafePoint(100n)), 100n);
  assert.equal(value(pd.updateGcSafePoint(50n)), 100n, "an older safe point answers the current");
  assert.equal(value(pd.getGcSafePoint()), 100n);
});

Deno.test("service safe points bound the GC safe point until their TTL runs out", () => {
  const clock = { nowMs: START_MS };
  const engine = new MemoryEngine();
  const pd = open(engine, clock);
  const br = value(pd.updateServiceGcSafePoint({ serviceId: "br", ttlSec: 60, safePoint: 500n }));
  // Before any other, gc_worker is made at 0 (PD's LoadMinServiceGCSafePoint): it is the
  // minimum, so the answer names it and br's point is saved above it.
  assert.deepEqual(br, {
    serviceId: GC_WORKER_SERVICE_ID,
    ttlSec: null,
    minSafePoint: 0n,
    updated: true,
  });
  assert.equal(value(pd.updateGcSafePoint(800n)), 500n, "br holds the GC safe point at 500");
  // The GC worker's own entry is not a bound on itself.
  value(
    pd.updateServiceGcSafePoint({
      serviceId: GC_WORKER_SERVICE_ID,
      ttlSec: 2 ** 62,
      safePoint: 900n,
    }),
  );
  assert.equal(value(pd.updateGcSafePoint(800n)), 500n);
  // After a restart the bound is still there.
  const again = open(engine, clock);
  assert.equal(value(again.updateGcSafePoint(800n)), 500n);
  clock.nowMs += 61_000;
  assert.equal(value(again.updateGcSafePoint(800n)), 800n, "br's TTL ran out");
});

Deno.test("a service safe point below the minimum is refused; TTL <= 0 removes one", () => {
  const clock = { nowMs: START_MS };
  const pd = open(new MemoryEngine(), clock);
  value(
    pd.updateServiceGcSafePoint({
      serviceId: GC_WORKER_SERVICE_ID,
      ttlSec: 2 ** 62,
      safePoint: 300n,
    }),
  );
  const cdc = value(pd.updateServiceGcSafePoint({ serviceId: "cdc", ttlSec: 30, safePoint: 400n }));
  assert.equal(cdc.updated, true);
  assert.equal(cdc.minSafePoint, 300n);
  const low = value(pd.updateServiceGcSafePoint({ serviceId: "br", ttlSec: 30, safePoint: 200n }));
  assert.deepEqual([low.updated, low.serviceId, low.minSafePoint], [
    false,
    GC_WORKER_SERVICE_ID,
    300n,
  ]);
  value(pd.updateServiceGcSafePoint({ serviceId: "cdc", ttlSec: 0, safePoint: 0n }));
  assert.deepEqual(pd.safePoints.services.map((s) => s.serviceId), [GC_WORKER_SERVICE_ID]);
  const long = "x".repeat(257);
  assert.equal(
    (pd.updateServiceGcSafePoint({ serviceId: long, ttlSec: 1, safePoint: 900n }) as PdError).code,
    "InvalidRequest",
  );
});

Deno.test(`at most ${PD_SERVICE_SAFE_POINTS_MAX} service safe points are kept`, () => {
  const pd = open(new MemoryEngine(), { nowMs: START_MS });
  // gc_worker is one of them.
  for (let i = 1; i < PD_SERVICE_SAFE_POINTS_MAX; i++) {
    value(pd.updateServiceGcSafePoint({ serviceId: `s${i}`, ttlSec: 600, safePoint: 10n }));
  }
  const refused = pd.updateServiceGcSafePoint({
    serviceId: "one-more",
    ttlSec: 600,
    safePoint: 10n,
  });
  assert.equal((refused as PdError).code, "LimitExceeded");
  value(pd.updateServiceGcSafePoint({ serviceId: "s1", ttlSec: 600, safePoint: 11n }));
});

Deno.test("calls before Bootstrap answer NOT_BOOTSTRAPPED; TSO and AllocID work", () => {
  const pd = open(new MemoryEngine(), { nowMs: START_MS }, false);
  const notBootstrapped = [
    pd.putStore({ id: 1n, address: "s1" }),
    pd.getStore(1n),
    pd.getAllStores({ excludeTombstone: false }),
    pd.getRegion(new Uint8Array(0)),
    pd.getRegionById(2n),
    pd.scanRegions({ startKey: new Uint8Array(0), endKey: new Uint8Array(0), limit: 0 }),
    pd.getGcSafePoint(),
    pd.updateGcSafePoint(1n),
    pd.getOperator(2n),
  ];
  for (const answer of notBootstrapped) assert.equal((answer as PdError).code, "NotBootstrapped");
  value(pd.tso(1));
  value(pd.allocId(1));
  assert.deepEqual(pd.scheduleRound(), { added: [], timedOut: [], cancelled: [], buried: [] });
});

Deno.test("GetOperator names a region with no operator REGION_NOT_FOUND", () => {
  const pd = open(new MemoryEngine(), { nowMs: START_MS });
  assert.equal((pd.getOperator(2n) as PdError).code, "RegionNotFound");
});
