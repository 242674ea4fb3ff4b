import assert, { deepEqual as assertEquals } from "node:assert/strict";
import { formatResult, runSimulation } from "./simulation.ts";

/** The fixed seed set `deno task test` runs; long sweeps go through `deno task sim --seeds N`. */
const FIXED_SEEDS = Array.from({ length: 24 }, (_, i) => i + 1);
const STEPS = 20_000;

Deno.test("simulator: the same seed gives the same history, byte for byte", () => {
  const a = runSimulation({ seed: 42, steps: 8000, keepFullTrace: true });
  const b = runSimulation({ seed: 42, steps: 8000, keepFullTrace: true });
  assertEquals(a.digest, b.digest);
  assertEquals(a.trace.join("\n"), b.trace.join("\n"));
  assertEquals(a.faults, b.faults);
  assert(a.trace.length > 1000, `a real history, not an empty one (${a.trace.length} lines)`);
  const c = runSimulation({ seed: 43, steps: 8000 });
  assert(c.digest !== a.digest, "a different seed gives a different history");
});

Deno.test("simulator: Raft safety, linearizability and liveness hold on the fixed seed set under faults", () => {
  const failures: string[] = [];
  let faults = 0;
  let writes = 0;
  for (const seed of FIXED_SEEDS) {
    const r = runSimulation({ seed, steps: STEPS });
    faults += r.faults.length;
    writes += r.stats.writes;
    if (!r.ok) failures.push(formatResult(r));
  }
  assertEquals(failures, []);
  assert(faults > FIXED_SEEDS.length * 10, `faults were injected (${faults})`);
  assert(writes > FIXED_SEEDS.length * 50, `clients made progress (${writes} writes)`);
});

Deno.test("simulator: liveness — after faults stop, a leader is elected and a new write commits", () => {
  const r = runSimulation({ seed: 7, steps: STEPS });
  assert(r.ok, formatResult(r));
  assert(r.trace.some((l) => l.includes("liveness: write committed")), "liveness line in trace");
});

Deno.test("simulator: the workload exercises snapshots, membership changes and leadership transfers", () => {
  let snapshots = 0;
  let memberships = 0;
  let transfers = 0;
  let crashes = 0;
  for (const seed of FIXED_SEEDS.slice(0, 12)) {
    const r = runSimulation({ seed, steps: STEPS, keepFullTrace: true });
    snapshots += r.trace.filter((l) => l.includes("MsgSnapshot")).length;
    memberships += r.faults.filter((f) => f.includes("membership:")).length;
    transfers += r.trace.filter((l) => l.includes("MsgTimeoutNow")).length;
    crashes += r.faults.filter((f) => f.includes("crash")).length;
  }
  assert(snapshots > 0, "snapshots sent");
  assert(memberships > 0, "membership changes");
  assert(transfers > 0, "leadership transfers");
  assert(crashes > 0, "crashes");
});
