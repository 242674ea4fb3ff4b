/**
 * The embedded PD's state directory: created on first start, kept across restarts, and refused
 * — naming the file — when a piece of it is missing or damaged, never silently reset.
 */
import assert from "node:assert/strict";
import { CorruptFileError, TSO_LOGICAL_BITS } from "../../tso/mod.ts";
import { openStandalonePd, PdDataError } from "./standalone.ts";

function withDataDir(body: (dataDir: string) => void): void {
  const dataDir = Deno.makeTempDirSync({ prefix: "basalt-pd-" });
  try {
    body(dataDir);
  } finally {
    Deno.removeSync(dataDir, { recursive: true });
  }
}

function clockAt(ms: number) {
  const clock = { ms, nowMs: () => clock.ms };
  return clock;
}

const quiet = { tickIntervalMs: null };

Deno.test("first start creates pd/ beside db/, with a cluster id of creation seconds and 32 random bits", () => {
  withDataDir((dataDir) => {
    const clock = clockAt(1_700_000_123_456);
    const pd = openStandalonePd(dataDir, { ...quiet, clock, randomUint32: () => 0xabcdef01 });
    pd.close();
    assert.equal(pd.dir, `${dataDir}/pd`);
    const names = [...Deno.readDirSync(pd.dir)].map((entry) => entry.name).sort();
    assert.deepEqual(names, ["cluster", "gc_safe_point", "ids", "meta", "tso"]);
    assert.equal(pd.clusterId, (1_700_000_123n << 32n) + 0xabcdef01n);
    assert.notEqual(pd.memberId, 0n);
  });
});

Deno.test("a restart keeps the cluster id and continues TSO, ids and safe point, with the clock behind", () => {
  withDataDir((dataDir) => {
    const clock = clockAt(1_700_000_000_000);
    const first = openStandalonePd(dataDir, { ...quiet, clock });
    const lastTs = first.oracle.next(10).last;
    const lastId = first.driver.allocId(3);
    first.driver.updateGcSafePoint(lastTs);
    first.close();

    clock.ms -= 3_600_000; // the clock stepped an hour back across the restart
    const second = openStandalonePd(dataDir, { ...quiet, clock, randomUint32: () => 7 });
    second.close();
    assert.equal(second.clusterId, first.clusterId);
    assert.equal(second.memberId, first.memberId);
    const nextTs = second.oracle.next();
    assert.ok(nextTs.first > lastTs);
    assert.ok(Number(nextTs.physicalMs) > Number(lastTs >> BigInt(TSO_LOGICAL_BITS)));
    assert.ok(second.driver.allocId(1) > lastId);
    assert.equal(second.safePoint.value, lastTs);
  });
});

Deno.test("a data directory of an earlier version (no pd/meta) opens: same cluster, TSO and ids continue, store 1 and region 1 made again", () => {
  withDataDir((dataDir) => {
    const clock = clockAt(1_700_000_000_000);
    const first = openStandalonePd(dataDir, { ...quiet, clock });
    const lastTs = first.oracle.next(5).last;
    const lastId = first.driver.allocId(1);
    first.close();
    Deno.removeSync(`${dataDir}/pd/meta`); // the four files an earlier version kept
    const second = openStandalonePd(dataDir, { ...quiet, clock });
    second.close();
    assert.equal(second.clusterId, first.clusterId);
    assert.ok(second.oracle.next().first > lastTs);
    assert.ok((second.driver.allocId(1) as bigint) > (lastId as bigint));
    assert.equal(second.driver.isBootstrapped(), true);
    const region = second.driver.getRegion(new TextEncoder().encode("any key"));
    assert.ok(region !== null && !("code" in region));
    assert.deepEqual([region.meta.id, region.leader?.id, region.leader?.storeId], [1n, 2n, 1n]);
    assert.ok(exists(`${dataDir}/pd/meta`), "pd/meta is written again");
  });
});

Deno.test("the store registers its addresses: PutStore only when they change, kept in pd/meta", () => {
  withDataDir((dataDir) => {
    const pd = openStandalonePd(dataDir, quiet);
    const view = {
      clientUrls: ["http://127.0.0.1:1234"],
      version: "8.5.0",
      store: { address: "127.0.0.1:1234", statusAddress: "127.0.0.1:1235", version: "8.5.0" },
    };
    pd.register(view);
    const written = Deno.statSync(`${dataDir}/pd/meta`).mtime;
    pd.register(view);
    assert.deepEqual(Deno.statSync(`${dataDir}/pd/meta`).mtime, written, "no rewrite");
    pd.close();
    const again = openStandalonePd(dataDir, quiet);
    again.close();
    const store = again.driver.getStore(1n);
    assert.ok(!("code" in store));
    assert.deepEqual([store.meta.address, store.meta.statusAddress], [
      "127.0.0.1:1234",
      "127.0.0.1:1235",
    ]);
  });
});

Deno.test("a missing pd/tso of an initialized PD is refused, naming the file", () => {
  withDataDir((dataDir) => {
    openStandalonePd(dataDir, quiet).close();
    Deno.removeSync(`${dataDir}/pd/tso`);
    assert.throws(
      () => openStandalonePd(dataDir, quiet),
      (error: unknown) =>
        error instanceof PdDataError && error.path === `${dataDir}/pd/tso` &&
        /missing/.test(error.message),
    );
    assert.ok(!exists(`${dataDir}/pd/tso`), "nothing was recreated");
  });
});

Deno.test("a truncated pd/tso is refused with an error naming it and is left untouched", () => {
  withDataDir((dataDir) => {
    openStandalonePd(dataDir, quiet).close();
    const path = `${dataDir}/pd/tso`;
    const truncated = Deno.readTextFileSync(path).slice(0, 30);
    Deno.writeTextFileSync(path, truncated);
    assert.throws(
      () => openStandalonePd(dataDir, quiet),
      (error: unknown) => error instanceof CorruptFileError && error.message.includes(path),
    );
    assert.equal(Deno.readTextFileSync(path), truncated);
  });
});

Deno.test("a corrupt pd/cluster is refused rather than replaced by a new cluster id", () => {
  withDataDir((dataDir) => {
    openStandalonePd(dataDir, quiet).close();
    const path = `${dataDir}/pd/cluster`;
    Deno.writeTextFileSync(
      path,
      Deno.readTextFileSync(path).replace(/"clusterId":"\d/, '"clusterId":"9'),
    );
    assert.throws(
      () => openStandalonePd(dataDir, quiet),
      (error: unknown) => error instanceof CorruptFileError && error.path === path,
    );
  });
});

Deno.test("a first start interrupted before pd/cluster was written starts over, keeping the TSO bound", () => {
  withDataDir((dataDir) => {
    const clock = clockAt(1_700_000_000_000);
    const first = openStandalonePd(dataDir, { ...quiet, clock });
    const lastTs = first.oracle.next().last;
    first.close();
    Deno.removeSync(`${dataDir}/pd/cluster`); // as if the crash came just before it
    clock.ms -= 60_000;
    const second = openStandalonePd(dataDir, { ...quiet, clock });
    second.close();
    assert.ok(second.oracle.next().first > lastTs);
  });
});

Deno.test("a data directory that does not exist is refused", () => {
  assert.throws(
    () => openStandalonePd("/nonexistent/basalt-data", quiet),
    (error: unknown) => error instanceof PdDataError && /does not exist/.test(error.message),
  );
});

Deno.test("the tick timer keeps the TSO window ahead of the wall clock while idle", async () => {
  const dataDir = Deno.makeTempDirSync({ prefix: "basalt-pd-" });
  const clock = clockAt(1_700_000_000_000);
  const pd = openStandalonePd(dataDir, { clock, tickIntervalMs: 5 });
  try {
    const boundBefore = pd.oracle.savedBoundMs;
    clock.ms += 2_500; // within the renew margin of the saved bound
    const deadline = Date.now() + 5_000;
    while (pd.oracle.savedBoundMs === boundBefore && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    assert.ok(pd.oracle.savedBoundMs > boundBefore, "renewed without any request");
    assert.ok(pd.oracle.savedBoundMs >= clock.ms + 2_000);
  } finally {
    pd.close();
    Deno.removeSync(dataDir, { recursive: true });
  }
});

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}
