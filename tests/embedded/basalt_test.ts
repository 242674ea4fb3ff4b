/**
 * The embedded API in-process (`Basalt.open`): no store process, no gRPC — every case of
 * `basalt_suite.ts`, then what only an in-process store has: reopening its directory, the
 * reclaimer, close. `basalt_serve_test.ts` serves the same directory as a process afterwards.
 */
import assert from "node:assert/strict";
import { Basalt, BasaltError } from "../../mod.ts";
import { BASALT_CASES } from "./basalt_suite.ts";

async function tempDataDir(): Promise<{ dataDir: string; remove(): Promise<void> }> {
  const root = await Deno.makeTempDir({ prefix: "basalt_embedded_" });
  return { dataDir: `${root}/data`, remove: () => Deno.remove(root, { recursive: true }) };
}

Deno.test("Basalt.open: the key-value API in-process", async (t) => {
  const dir = await tempDataDir();
  const db = await Basalt.open({ dataDir: dir.dataDir, reclaimIntervalMs: 0 });
  try {
    for (const item of BASALT_CASES) await t.step(item.name, () => item.run(db));
  } finally {
    assert.equal(await db.close(), "closed");
    await dir.remove();
  }
});

Deno.test("Basalt.open: data survives close and reopen; a closed database refuses calls", async () => {
  const dir = await tempDataDir();
  try {
    const first = await Basalt.open({ dataDir: dir.dataDir, reclaimIntervalMs: 0 });
    await first.put("kept", "yes");
    await first.put("kept-ttl", "yes", { ttlSeconds: 3600 });
    assert.equal(await first.close(), "closed", "the engine was flushed and closed");
    await assert.rejects(
      first.get("kept"),
      (error: unknown) => error instanceof BasaltError && error.code === "Closed",
    );
    const second = await Basalt.open({ dataDir: dir.dataDir, reclaimIntervalMs: 0 });
    try {
      assert.equal(new TextDecoder().decode((await second.get("kept"))!), "yes");
      const entry = await second.getEntry("kept-ttl");
      assert.ok(entry !== null && entry.expireAtMs > Date.now() + 3_000_000);
    } finally {
      await second.close();
    }
  } finally {
    await dir.remove();
  }
});

Deno.test("Basalt.open: a second opener of the same directory is refused while it is open", async () => {
  const dir = await tempDataDir();
  const db = await Basalt.open({ dataDir: dir.dataDir, reclaimIntervalMs: 0 });
  try {
    await assert.rejects(Basalt.open({ dataDir: dir.dataDir, reclaimIntervalMs: 0 }));
    await db.put("still", "usable");
    assert.ok((await db.get("still")) !== null);
  } finally {
    await db.close();
    await dir.remove();
  }
});

Deno.test("the reclaimer deletes expired pairs from storage and leaves live ones", async () => {
  const dir = await tempDataDir();
  const db = await Basalt.open({ dataDir: dir.dataDir, reclaimIntervalMs: 0 });
  try {
    await db.transaction((txn) => {
      for (let i = 0; i < 5; i++) txn.put(`gone:${i}`, "x", { ttlSeconds: 1 });
      txn.put("live", "x");
    });
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    assert.equal(await db.reclaimExpired(), 5, "five expired pairs deleted");
    assert.equal(await db.reclaimExpired(), 0, "none left (the cursor wrapped to the start)");
    assert.ok((await db.get("live")) !== null);
  } finally {
    await db.close();
    await dir.remove();
  }
});
