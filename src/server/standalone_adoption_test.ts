/**
 * The store's side of a fresh PD adopting its standalone cluster (`standalone_adoption.ts`), on
 * a real standalone data directory (identity, embedded PD files, RocksDB with split regions)
 * and a fake PD: what is read and sent, the directory marked afterwards, a repeat after a crash
 * between PD's answer and the marking, and the refusals that leave every file as it was.
 */
import assert from "node:assert/strict";
import { RocksDbEngine } from "../engine/rocksdb_engine.ts";
import { adoptionFromJson } from "../pd/server/adoption_wire.ts";
import type { StandaloneAdoption } from "../pd/adoption.ts";
import { utf8 } from "../util/bytes.ts";
import { prepareDataDir, readDataDirIdentity } from "./data_dir.ts";
import { Logger } from "./log.ts";
import { openStandalonePd } from "./pd/standalone.ts";
import { STANDALONE } from "./region.ts";
import {
  type AdoptionCalls,
  AdoptionRefused,
  adoptStandaloneDataDir,
  readStandaloneRegions,
  readStandaloneState,
} from "./standalone_adoption.ts";
import { recordRegions } from "./store_regions.ts";

/** A standalone directory as a store leaves it after splitting region 1 at "m" (region 9, peer 10). */
async function standaloneDir(): Promise<{ dir: string; clusterId: bigint; tsoBoundMs: bigint }> {
  const dir = `${await Deno.makeTempDir({ prefix: "basalt_adoption_" })}/data`;
  const { dbPath } = prepareDataDir(dir, { storeId: Number(STANDALONE.storeId), now: new Date() });
  const pd = openStandalonePd(dir, { tickIntervalMs: null });
  pd.oracle.next(5);
  const clusterId = pd.clusterId;
  const tsoBoundMs = BigInt(pd.oracle.savedBoundMs);
  pd.close();
  const engine = RocksDbEngine.open(dbPath);
  try {
    const common = { confVer: 1n, version: 2n, storeId: STANDALONE.storeId };
    await recordRegions(engine, [
      { ...common, id: 9n, peerId: 10n, startKey: new Uint8Array(0), endKey: utf8("m") },
      { ...common, id: 1n, peerId: 2n, startKey: utf8("m"), endKey: new Uint8Array(0) },
    ]);
  } finally {
    engine.close();
  }
  return { dir, clusterId, tsoBoundMs };
}

function snapshotOf(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (path: string) => {
    for (const entry of Deno.readDirSync(path)) {
      const full = `${path}/${entry.name}`;
      if (entry.isDirectory) walk(full);
      else out.set(full, `${Deno.statSync(full).size}@${Deno.statSync(full).mtime?.getTime()}`);
    }
  };
  walk(dir);
  return out;
}

/** A fake PD: fresh with cluster id 77 unless told otherwise; records what it was asked. */
function fakePd(options: { bootstrapped?: boolean; clusterId?: bigint; refuse?: string } = {}) {
  const sent: StandaloneAdoption[] = [];
  const calls: AdoptionCalls = {
    clusterId: options.clusterId ?? 77n,
    address: "127.0.0.1:2379",
    isBootstrapped: () => Promise.resolve(options.bootstrapped ?? false),
    storeKnown: () => Promise.resolve(true),
    adopt: (json) => {
      sent.push(adoptionFromJson(JSON.parse(JSON.stringify(json))));
      return Promise.resolve(options.refuse ?? null);
    },
  };
  return { calls, sent };
}

async function withDir(body: (parts: Awaited<ReturnType<typeof standaloneDir>>) => Promise<void>) {
  const parts = await standaloneDir();
  try {
    await body(parts);
  } finally {
    await Deno.remove(parts.dir.replace(/\/data$/, ""), { recursive: true });
  }
}

const store = { id: 1n, address: "127.0.0.1:20160" };

Deno.test("adoption (store): PD is sent the cluster id, the TSO bound, ids above every region and peer, and the first region", async () => {
  await withDir(async ({ dir, clusterId, tsoBoundMs }) => {
    const state = readStandaloneState(dir);
    assert.ok(state !== null);
    assert.equal(state.clusterId, clusterId);
    assert.equal(state.tsoBoundMs, tsoBoundMs);
    const regions = readStandaloneRegions(dir, 1n);
    assert.deepEqual(regions.map((r) => r.id), [9n, 1n], "in key order");
    const { calls, sent } = fakePd();
    const recorded: bigint[] = [];
    const log = new Logger({ level: "error", file: "" });
    const outcome = await adoptStandaloneDataDir(dir, {
      state,
      calls,
      store,
      log,
      recordFirstRegion: (region) => recorded.push(region.id),
    });
    assert.equal(outcome, "adopted");
    assert.equal(sent.length, 1);
    const request = sent[0]!;
    assert.equal(request.clusterId, clusterId);
    assert.equal(request.tsoBoundMs, tsoBoundMs);
    assert.equal(request.region.id, 9n, "the region holding the empty key");
    assert.deepEqual(request.region.peers.map((p) => [p.id, p.storeId]), [[10n, 1n]]);
    assert.ok(request.idBound >= 10n, `id bound ${request.idBound} covers peer 10`);
    assert.deepEqual(recorded, [9n]);
    const identity = readDataDirIdentity(dir);
    assert.equal(identity?.clusterId, String(clusterId), "marked as the cluster's");
    assert.equal(readStandaloneState(dir), null, "no longer a standalone directory");
    assert.throws(
      () => prepareDataDir(dir, { storeId: 1, now: new Date() }),
      /start it with --pd/,
      "a start without --pd is refused",
    );
  });
});

Deno.test("adoption (store): PD running another cluster is refused by both ids and no file changes", async () => {
  await withDir(async ({ dir, clusterId }) => {
    const before = snapshotOf(dir);
    const state = readStandaloneState(dir)!;
    const { calls, sent } = fakePd({ bootstrapped: true, clusterId: 77n });
    const log = new Logger({ level: "error", file: "" });
    await assert.rejects(
      adoptStandaloneDataDir(dir, { state, calls, store, log, recordFirstRegion: () => {} }),
      (error: unknown) => {
        assert.ok(error instanceof AdoptionRefused);
        assert.match(
          error.message,
          new RegExp(
            `cluster ${clusterId} cannot join PD .*: PD already runs cluster 77 \\(bootstrapped\\)`,
          ),
        );
        return true;
      },
    );
    assert.equal(sent.length, 0);
    assert.deepEqual(snapshotOf(dir), before);
  });
});

Deno.test("adoption (store): PD's own refusal (a race) is passed on and the directory stays standalone", async () => {
  await withDir(async ({ dir }) => {
    const state = readStandaloneState(dir)!;
    const { calls } = fakePd({ refuse: "ALREADY_BOOTSTRAPPED: PD already runs cluster 5" });
    const log = new Logger({ level: "error", file: "" });
    await assert.rejects(
      adoptStandaloneDataDir(dir, { state, calls, store, log, recordFirstRegion: () => {} }),
      /PD already runs cluster 5; nothing was changed/,
    );
    assert.equal(readDataDirIdentity(dir)?.clusterId, undefined);
  });
});

Deno.test("adoption (store): after a crash between PD's answer and the marking, the next start only marks", async () => {
  await withDir(async ({ dir, clusterId }) => {
    const state = readStandaloneState(dir)!;
    const { calls, sent } = fakePd({ bootstrapped: true, clusterId });
    const log = new Logger({ level: "error", file: "" });
    const outcome = await adoptStandaloneDataDir(dir, {
      state,
      calls,
      store,
      log,
      recordFirstRegion: () => {},
    });
    assert.equal(outcome, "adopted-before");
    assert.equal(sent.length, 0, "PD is not asked again");
    assert.equal(readDataDirIdentity(dir)?.clusterId, String(clusterId));
  });
});

Deno.test("adoption (store): a standalone directory missing its TSO file is refused by name", async () => {
  await withDir(({ dir }) => {
    Deno.removeSync(`${dir}/pd/tso`);
    assert.throws(() => readStandaloneState(dir), /pd\/tso is missing though pd\/cluster exists/);
    return Promise.resolve();
  });
});
