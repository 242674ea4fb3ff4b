/** `EngineStorage`: PD's keys under a prefix of a shared engine, scans in order, atomic batches. */
import assert from "node:assert/strict";
import { MemoryEngine } from "../engine/memory_engine.ts";
import { EngineStorage } from "./engine_storage.ts";

const encoder = new TextEncoder();

Deno.test("EngineStorage keeps PD's keys under its prefix and scans one key prefix in order", () => {
  const engine = new MemoryEngine();
  engine.put("default", encoder.encode("pd0"), encoder.encode("not PD's"));
  engine.put("default", encoder.encode("pd/region"), encoder.encode("a key equal to a prefix"));
  const storage = new EngineStorage({ engine });
  storage.write([
    { kind: "put", key: "region/00000000000000000010", value: "b" },
    { kind: "put", key: "region/00000000000000000002", value: "a" },
    { kind: "put", key: "regions", value: "not a region" },
    { kind: "put", key: "store/00000000000000000001", value: "s" },
  ]);
  assert.deepEqual(storage.scan("region/"), [
    ["region/00000000000000000002", "a"],
    ["region/00000000000000000010", "b"],
  ]);
  assert.equal(storage.get("store/00000000000000000001"), "s");
  assert.equal(storage.get("missing"), null);
  assert.equal(new TextDecoder().decode(engine.get("default", encoder.encode("pd0"))!), "not PD's");
  storage.write([{ kind: "delete", key: "regions" }]);
  assert.equal(storage.get("regions"), null);
});

Deno.test("EngineStorage applies a batch whole, and sync() clears needsSync", async () => {
  const engine = new MemoryEngine();
  const storage = new EngineStorage({ engine, prefix: "\u0002pd/" });
  assert.equal(storage.needsSync, false);
  const snapshot = engine.snapshot();
  storage.write([{ kind: "put", key: "a", value: "1" }, { kind: "put", key: "b", value: "2" }]);
  assert.equal(
    snapshot.get("default", encoder.encode("\u0002pd/a")),
    null,
    "an older view sees none of it",
  );
  snapshot.release();
  assert.deepEqual(storage.scan(""), [["a", "1"], ["b", "2"]]);
  assert.equal(storage.needsSync, true);
  await storage.sync();
  assert.equal(storage.needsSync, false);
  assert.deepEqual(storage.scan(""), [["a", "1"], ["b", "2"]], "the sync marker is not a PD key");
});
