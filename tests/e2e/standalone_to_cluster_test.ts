/**
 * From standalone to a cluster on the same data directory (issue #12 item 6): a store that ran
 * standalone — raw and transactional data, regions split — restarts with `--pd` pointing at a
 * fresh PD, which adopts its cluster id, regions, timestamps and ids (`src/pd/adoption.ts`,
 * `src/server/standalone_adoption.ts`); two more stores join and PD brings every region to three
 * voters; every key reads back through a PD-routed client, a new transaction starts above every
 * standalone timestamp, and the data survives a new store's SIGKILL. The directory is then a
 * clustered store's: a start without `--pd` is refused, one with it is an ordinary restart.
 * A PD that runs another cluster refuses the store with one line naming both cluster ids, and
 * the data directory is left as it was.
 */
import assert from "node:assert/strict";
import { PdClient } from "../../src/client/pd_client.ts";
import { RawKV } from "../../src/client/raw.ts";
import { TxnKV } from "../../src/client/txn/txn_kv.ts";
import { loadClusterIdentity } from "../../src/server/pd/cluster_identity.ts";
import { VALUE_FILES } from "../../src/server/pd/file_storage.ts";
import { FileValueStore, TSO_LOGICAL_BITS } from "../../src/tso/mod.ts";
import { fromUtf8 } from "../../src/util/bytes.ts";
import { Cluster, waitFor } from "./cluster.ts";
import { freeLoopbackPort, startServer, type TestServer } from "./lib.ts";
import { startPd } from "./pd_lib.ts";
import { E2E, REPLICATION_FAILOVER_MS } from "./replication_lib.ts";

/** How long PD may take to bring every region of the adopted store to three voters. */
const ADOPTED_THREE_VOTERS_TIMEOUT_MS = 90_000;
/** Deadline of a client call (retries included) while leaders move or fail over. */
const CLIENT_TIMEOUT_MS = 30_000;

const RAW_KEYS = Array.from({ length: 60 }, (_, i) => `raw-${String(i).padStart(3, "0")}`);
const TXN_KEYS = Array.from({ length: 30 }, (_, i) => `txn-${String(i).padStart(3, "0")}`);
/** Split points: raw keys and transactional user keys (the store encodes the latter). */
const RAW_SPLITS = ["raw-020", "raw-040"];
const TXN_SPLITS = ["txn-015"];

const text = (bytes: Uint8Array | null | undefined) => bytes == null ? null : fromUtf8(bytes);

interface Identity {
  storeId: number;
  clusterId?: string;
  adoptedAt?: string;
}

function identityOf(dataDir: string): Identity {
  return JSON.parse(Deno.readTextFileSync(`${dataDir}/basalt.json`));
}

/** The standalone store's cluster id, from its embedded PD's files. */
function standaloneClusterId(dataDir: string): bigint {
  const identity = loadClusterIdentity(`${dataDir}/pd/cluster`);
  assert.ok(identity !== null, `${dataDir}/pd/cluster is missing`);
  return identity.clusterId;
}

/** Every file under `dir` (recursively) with its size and modification time. */
function listing(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (path: string) => {
    for (const entry of Deno.readDirSync(path)) {
      const full = `${path}/${entry.name}`;
      if (entry.isDirectory) walk(full);
      else {
        const stat = Deno.statSync(full);
        out.set(full.slice(dir.length), `${stat.size}@${stat.mtime?.getTime()}`);
      }
    }
  };
  walk(dir);
  return out;
}

/**
 * Runs a standalone store on `dataDir`: raw and transactional keys, splits, more writes, then a
 * clean stop. Answers the largest commit ts it saw and how many regions it made.
 */
async function runStandalone(dataDir: string): Promise<{ lastCommitTs: bigint; regions: number }> {
  const server = await startServer({ dataDir });
  let raw: RawKV | null = null;
  let txn: TxnKV | null = null;
  let pd: PdClient | null = null;
  try {
    raw = await RawKV.connect({ host: server.grpcAddr, timeoutMs: CLIENT_TIMEOUT_MS });
    txn = await TxnKV.connect({ host: server.grpcAddr, timeoutMs: CLIENT_TIMEOUT_MS });
    for (const key of RAW_KEYS.slice(0, 30)) await raw.put(key, `v-${key}`);
    let lastCommitTs = 0n;
    const commit = async (keys: string[]) => {
      const transaction = await txn!.begin();
      for (const key of keys) transaction.set(key, `v-${key}`);
      const { commitTs } = await transaction.commit();
      assert.ok(commitTs > lastCommitTs);
      lastCommitTs = commitTs;
    };
    await commit(TXN_KEYS.slice(0, 10));
    await raw.splitRegions(RAW_SPLITS);
    await txn.splitRegions(TXN_SPLITS);
    // Writes on every side of the splits, raw and transactional (two-phase, several regions).
    for (const key of RAW_KEYS.slice(30)) await raw.put(key, `v-${key}`);
    await commit(TXN_KEYS.slice(10, 20));
    await commit(TXN_KEYS.slice(20));
    pd = await PdClient.connect([server.grpcAddr]);
    const regions = (await pd.scanRegions({
      startKey: new Uint8Array(0),
      endKey: new Uint8Array(0),
      limit: 0,
    })).length;
    assert.ok(regions >= 4, `the splits made ${regions} regions, not at least 4`);
    return { lastCommitTs, regions };
  } finally {
    pd?.close();
    raw?.close();
    await txn?.close();
    assert.equal(await server.stop(), 0, "the standalone store stops cleanly");
  }
}

/** Every raw and transactional key reads back with its value through PD-routed clients. */
async function readEverything(raw: RawKV, txn: TxnKV): Promise<void> {
  const pairs = await raw.scan("raw-", "raw.", { limit: 1000 });
  assert.deepEqual(pairs.map((p) => text(p.key)), RAW_KEYS);
  for (const pair of pairs) assert.equal(text(pair.value), `v-${text(pair.key)}`);
  const snapshot = await txn.begin();
  try {
    const found = await snapshot.batchGet(TXN_KEYS);
    assert.deepEqual(found.map((p) => text(p.key)).sort(), TXN_KEYS);
    for (const pair of found) assert.equal(text(pair.value), `v-${text(pair.key)}`);
  } finally {
    await snapshot.rollback();
  }
}

Deno.test({
  name:
    "standalone to cluster: a fresh PD adopts the store's cluster id, regions and timestamps; two more stores make every region three voters; every key reads back, new timestamps follow the old ones, and a new store's SIGKILL loses nothing",
  ...E2E,
  fn: async () => {
    // PD first (fresh, never contacted), then the standalone store where the harness puts
    // store 0's data directory, so that `addStore` restarts it there with --pd.
    const cluster = await Cluster.create({});
    let failed = true;
    let pd: PdClient | null = null;
    let raw: RawKV | null = null;
    let txn: TxnKV | null = null;
    try {
      const dataDir = `${cluster.root}/store0`;
      const { lastCommitTs, regions } = await runStandalone(dataDir);
      const clusterId = standaloneClusterId(dataDir);
      assert.equal(identityOf(dataDir).clusterId, undefined, "still a standalone directory");
      const tso = VALUE_FILES.tso;
      const tsoBoundMs = new FileValueStore(`${dataDir}/pd/${tso.name}`, tso).load();
      assert.ok(tsoBoundMs !== null);

      assert.equal(await cluster.addStore(), 0);
      pd = await PdClient.connect([cluster.pdAddr]);
      assert.equal(pd.clusterId, clusterId, "PD took the standalone store's cluster id");
      const identity = identityOf(dataDir);
      assert.equal(identity.clusterId, String(clusterId), "the directory is the cluster's now");
      assert.equal(identity.storeId, 1);
      assert.ok(identity.adoptedAt !== undefined);
      await cluster.addStore();
      await cluster.addStore();
      assert.deepEqual([1, 2].map((i) => cluster.storeId(i) > 1n), [true, true]);

      const connected = pd;
      await waitFor(
        `PD to know all ${regions} regions, each with three voters`,
        async () => {
          const known = await connected.scanRegions({
            startKey: new Uint8Array(0),
            endKey: new Uint8Array(0),
            limit: 0,
          });
          return known.length === regions &&
            known.every((r) =>
              (r.region.peers ?? []).filter((p) => (p.role ?? 0) === 0).length === 3
            );
        },
        ADOPTED_THREE_VOTERS_TIMEOUT_MS,
      );

      raw = await RawKV.connect({ pd: [cluster.pdAddr], timeoutMs: CLIENT_TIMEOUT_MS });
      txn = await TxnKV.connect({ pd: [cluster.pdAddr], timeoutMs: CLIENT_TIMEOUT_MS });
      await readEverything(raw, txn);
      // Timestamps go on above every one the standalone store handed out.
      const fresh = await txn.begin();
      assert.ok(fresh.startTs > lastCommitTs, `${fresh.startTs} follows ${lastCommitTs}`);
      assert.ok(fresh.startTs >> BigInt(TSO_LOGICAL_BITS) >= tsoBoundMs, "above the TSO bound");
      fresh.set("txn-after", "v-after");
      const { commitTs } = await fresh.commit();
      assert.ok(commitTs > fresh.startTs);

      // A new store dies: every region keeps two of three voters, and everything reads back.
      await cluster.kill(2);
      await waitFor("the reads to succeed with store 2 dead", async () => {
        await readEverything(raw!, txn!);
        return true;
      }, REPLICATION_FAILOVER_MS + CLIENT_TIMEOUT_MS);
      assert.equal(text(await (await txn.begin()).get("txn-after")), "v-after");

      // The directory is a clustered store's: a start without --pd is refused.
      assert.equal(await cluster.stopStore(0), 0);
      const log = `${dataDir}.server.log`;
      await Deno.writeTextFile(log, "");
      await assert.rejects(startServer({ dataDir }));
      assert.match(await Deno.readTextFile(log), /start it with --pd/);
      // …and one with --pd is an ordinary clustered restart: same store, same data.
      await cluster.restart(0);
      assert.equal(cluster.storeId(0), 1n);
      await waitFor("the reads to succeed after store 1's restart", async () => {
        await readEverything(raw!, txn!);
        return true;
      }, REPLICATION_FAILOVER_MS + CLIENT_TIMEOUT_MS);
      failed = false;
    } finally {
      raw?.close();
      await txn?.close();
      pd?.close();
      await cluster.stop({ keepLogs: failed });
    }
  },
});

Deno.test({
  name:
    "standalone to cluster: a PD that runs another cluster refuses the standalone store with one line naming both cluster ids, and the data directory is untouched",
  ...E2E,
  fn: async () => {
    const root = await Deno.makeTempDir({ prefix: "basalt_adopt_refused_" });
    const pd = await startPd({ dataDir: `${root}/pd` });
    const parts: TestServer[] = [];
    let failed = true;
    try {
      // Another store bootstraps the PD: it runs its own cluster now.
      const port = freeLoopbackPort();
      const other = await startServer({
        dataDir: `${root}/other`,
        args: ["--addr", `127.0.0.1:${port}`, "--advertise-addr", `127.0.0.1:${port}`]
          .concat(["--pd", pd.clientAddr]),
      });
      parts.push(other);
      const client = await PdClient.connect([pd.clientAddr]);
      const pdClusterId = client.clusterId;
      client.close();

      const dataDir = `${root}/standalone`;
      const standalone = await startServer({ dataDir });
      const raw = await RawKV.connect({ host: standalone.grpcAddr });
      await raw.put("kept", "as it was");
      raw.close();
      assert.equal(await standalone.stop(), 0);
      const clusterId = standaloneClusterId(dataDir);
      const before = listing(dataDir);

      const ownPort = freeLoopbackPort();
      const command = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          new URL("../../src/server/main.ts", import.meta.url).pathname,
          ...["--data-dir", dataDir, "--status-addr", "127.0.0.1:0"],
          ...["--addr", `127.0.0.1:${ownPort}`, "--advertise-addr", `127.0.0.1:${ownPort}`],
          ...["--pd", pd.clientAddr, "--log-file", `${root}/refused.server.log`],
        ],
        stdout: "piped",
        stderr: "piped",
      });
      const output = await command.output();
      const stderr = new TextDecoder().decode(output.stderr).trim();
      assert.equal(output.code, 1, `exit code (stderr: ${stderr})`);
      assert.equal(stderr.split("\n").length, 1, `one line: ${stderr}`);
      assert.match(
        stderr,
        new RegExp(
          `^basalt: standalone store 1 of cluster ${clusterId} cannot join PD at \\S+: ` +
            `PD already runs cluster ${pdClusterId} \\(bootstrapped\\); nothing was changed`,
        ),
      );
      assert.deepEqual(listing(dataDir), before, "no file of the data directory changed");
      assert.equal(identityOf(dataDir).clusterId, undefined);

      // Standalone again, its data as it was.
      const again = await startServer({ dataDir });
      parts.push(again);
      const check = await RawKV.connect({ host: again.grpcAddr });
      try {
        assert.equal(text(await check.get("kept")), "as it was");
      } finally {
        check.close();
      }
      failed = false;
    } finally {
      for (const server of parts) await server.stop().catch(() => {});
      await pd.stop().catch(() => {});
      if (failed) console.error(`e2e: kept the refused adoption's files in ${root}`);
      else await Deno.remove(root, { recursive: true });
    }
  },
});
