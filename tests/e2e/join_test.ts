/**
 * A store joining a PD process (`--pd`, `--advertise-addr`): it gets its store id from PD,
 * bootstraps the cluster's first region when it is the first store, registers and heartbeats,
 * is routed to through PD, and serves `tikvpb.Tikv` only — `pdpb.PD` is PD's. Restarted, it
 * finds its identity and region on disk. A second store gets another id and no region; a data
 * directory of another cluster, or of a standalone store, is refused by name.
 */
import assert from "node:assert/strict";
import { metapb, pdpb } from "../../proto/mod.ts";
import { PdResolver } from "../../src/client/pd_resolver.ts";
import { RawKV } from "../../src/client/raw.ts";
import { fromUtf8, utf8 } from "../../src/util/bytes.ts";
import { freeLoopbackPort, startServer, type TestServer } from "./lib.ts";
import { PdRpc, startPd, type TestPd } from "./pd_lib.ts";

const E2E = { sanitizeOps: false, sanitizeResources: false };
/** How long PD may take to learn the region's leader from the first region heartbeat. */
const HEARTBEAT_WAIT_MS = 15_000;

/** A store joining `pd`, listening on and advertising a fixed loopback port. */
function joinArgs(pd: TestPd, port = freeLoopbackPort()): string[] {
  return [
    "--addr",
    `127.0.0.1:${port}`,
    "--advertise-addr",
    `127.0.0.1:${port}`,
    "--pd",
    pd.clientAddr,
  ];
}

function identityOf(server: TestServer): { storeId: number; clusterId?: string } {
  return JSON.parse(Deno.readTextFileSync(`${server.dataDir}/basalt.json`));
}

async function allStores(rpc: PdRpc): Promise<metapb.Store.$Properties[]> {
  const response = await rpc.call<pdpb.GetAllStoresResponse>(
    "GetAllStores",
    { request: pdpb.GetAllStoresRequest, response: pdpb.GetAllStoresResponse },
    {},
  );
  return response.stores;
}

/** PD's region for `key` once it names a leader (a region heartbeat arrived), within the wait. */
async function regionWithLeader(rpc: PdRpc, key: string): Promise<pdpb.GetRegionResponse> {
  const deadline = Date.now() + HEARTBEAT_WAIT_MS;
  for (;;) {
    const response = await rpc.call<pdpb.GetRegionResponse>(
      "GetRegion",
      { request: pdpb.GetRegionRequest, response: pdpb.GetRegionResponse },
      { regionKey: utf8(key) },
    );
    if ((response.leader?.id ?? 0n) !== 0n) return response;
    if (Date.now() > deadline) {
      throw new Error(`PD named no leader for "${key}" within ${HEARTBEAT_WAIT_MS} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** PD's stats of store `storeId` once its first StoreHeartbeat arrived, within the wait. */
async function storeStats(rpc: PdRpc, storeId: bigint): Promise<pdpb.StoreStats.$Properties> {
  const deadline = Date.now() + HEARTBEAT_WAIT_MS;
  for (;;) {
    const response = await rpc.call<pdpb.GetStoreResponse>(
      "GetStore",
      { request: pdpb.GetStoreRequest, response: pdpb.GetStoreResponse },
      { storeId },
    );
    if ((response.stats?.capacity ?? 0n) > 0n) return response.stats!;
    if (Date.now() > deadline) {
      throw new Error(`no store heartbeat of store ${storeId} within ${HEARTBEAT_WAIT_MS} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Starts a store expected to refuse to start; returns what it logged (`--log-file`). */
async function refusedStart(dataDir: string, args: string[]): Promise<string> {
  const logPath = `${dataDir}.server.log`;
  await Deno.writeTextFile(logPath, "");
  // The store exits before its ready line (startServer rejects; how depends on the timing).
  await assert.rejects(startServer({ dataDir, args }));
  return await Deno.readTextFile(logPath);
}

async function cleanUp(parts: { servers: TestServer[]; pds: TestPd[]; dirs: string[] }) {
  for (const server of parts.servers) {
    try {
      await server.stop();
    } catch { /* already stopped */ }
  }
  for (const pd of parts.pds) {
    try {
      await pd.stop();
    } catch { /* already stopped */ }
  }
  for (const dir of parts.dirs) await Deno.remove(dir, { recursive: true }).catch(() => {});
}

Deno.test({
  name:
    "join: the first store gets its id from PD, bootstraps region over every key, is routed to through PD, serves no pdpb.PD, and keeps id, region and data across a restart",
  ...E2E,
  fn: async () => {
    const pd = await startPd();
    const rpc = await new PdRpc(pd.clientAddr).connect();
    const port = freeLoopbackPort();
    const parts = {
      servers: [] as TestServer[],
      pds: [pd],
      dirs: [pd.dataDir.replace(/\/pd$/, "")],
    };
    try {
      const store = await startServer({ args: joinArgs(pd, port) });
      parts.servers.push(store);
      parts.dirs.push(store.dataDir.replace(/\/data$/, ""));
      const identity = identityOf(store);
      assert.equal(identity.clusterId, String(rpc.clusterId));
      assert.ok(identity.storeId > 0);

      const stores = await allStores(rpc);
      assert.deepEqual(
        stores.map((s) => [s.id, s.address]),
        [[BigInt(identity.storeId), `127.0.0.1:${port}`]],
      );
      assert.equal(stores[0]!.statusAddress, store.statusAddr);
      // The first StoreHeartbeat leaves at registration: disk space and the one region.
      const stats = await storeStats(rpc, BigInt(identity.storeId));
      assert.ok((stats.available ?? 0n) > 0n && (stats.capacity ?? 0n) >= (stats.available ?? 0n));
      assert.equal(stats.regionCount, 1);

      const first = await regionWithLeader(rpc, "any");
      assert.equal(first.region?.startKey?.length ?? 0, 0);
      assert.equal(first.region?.endKey?.length ?? 0, 0);
      assert.equal(first.region?.peers?.length, 1);
      assert.equal(first.leader?.storeId, BigInt(identity.storeId));
      assert.equal(first.leader?.id, first.region?.peers?.[0]?.id);

      // PD is PD's process: the store answers pdpb.PD with UNIMPLEMENTED.
      const notPd = new PdRpc(store.grpcAddr);
      try {
        await assert.rejects(notPd.connect(), (error: { code?: number }) => error.code === 12);
      } finally {
        notPd.close();
      }

      const resolver = await PdResolver.connect([pd.clientAddr]);
      const client = new RawKV(resolver);
      try {
        await client.put("joined", "yes");
        assert.equal(fromUtf8((await client.get("joined"))!), "yes");
      } finally {
        client.close();
      }

      assert.equal(await store.stop(), 0);
      await store.restart();
      assert.deepEqual(identityOf(store), identity);
      assert.equal((await allStores(rpc)).length, 1);
      const again = await regionWithLeader(rpc, "any");
      assert.equal(again.region?.id, first.region?.id);
      const resolver2 = await PdResolver.connect([pd.clientAddr]);
      const client2 = new RawKV(resolver2);
      try {
        assert.equal(fromUtf8((await client2.get("joined"))!), "yes");
        await client2.put("after-restart", "too");
        assert.equal(fromUtf8((await client2.get("after-restart"))!), "too");
      } finally {
        client2.close();
      }
    } finally {
      rpc.close();
      await cleanUp(parts);
    }
  },
});

Deno.test({
  name:
    "join: a second store gets another id and no region; another cluster's or a standalone store's data directory is refused by name",
  ...E2E,
  fn: async () => {
    const pd = await startPd();
    const otherPd = await startPd();
    const rpc = await new PdRpc(pd.clientAddr).connect();
    const other = await new PdRpc(otherPd.clientAddr).connect();
    const parts = {
      servers: [] as TestServer[],
      pds: [pd, otherPd],
      dirs: [pd.dataDir.replace(/\/pd$/, ""), otherPd.dataDir.replace(/\/pd$/, "")],
    };
    try {
      assert.notEqual(rpc.clusterId, other.clusterId);
      const first = await startServer({ args: joinArgs(pd) });
      parts.servers.push(first);
      parts.dirs.push(first.dataDir.replace(/\/data$/, ""));
      const second = await startServer({ args: joinArgs(pd) });
      parts.servers.push(second);
      parts.dirs.push(second.dataDir.replace(/\/data$/, ""));
      const firstId = BigInt(identityOf(first).storeId);
      const secondId = BigInt(identityOf(second).storeId);
      assert.notEqual(firstId, secondId);
      assert.deepEqual(
        (await allStores(rpc)).map((s) => s.id).sort(),
        [firstId, secondId].sort(),
      );
      const region = await regionWithLeader(rpc, "k");
      assert.equal(region.leader?.storeId, firstId);
      const served = async (store: TestServer) =>
        (await (await fetch(`http://${store.statusAddr}/regions`)).json()).regions.length;
      assert.deepEqual([await served(first), await served(second)], [1, 0]);

      // The second store's data directory is cluster `rpc`'s: the other PD's cluster refuses it.
      assert.equal(await second.stop(), 0);
      const log = await refusedStart(second.dataDir, joinArgs(otherPd));
      assert.match(
        log,
        new RegExp(`belongs to PD cluster ${rpc.clusterId}, not to cluster ${other.clusterId}`),
      );
      // …and so does a standalone start.
      const standaloneLog = await refusedStart(second.dataDir, []);
      assert.match(standaloneLog, /start it with --pd/);

      // A standalone store's data directory joins only a fresh PD (standalone_to_cluster_test.ts):
      // this one runs a cluster already.
      const standalone = await startServer();
      parts.dirs.push(standalone.dataDir.replace(/\/data$/, ""));
      assert.equal(await standalone.stop(), 0);
      const convertLog = await refusedStart(standalone.dataDir, joinArgs(pd));
      assert.match(
        convertLog,
        new RegExp(
          `standalone store 1 of cluster \\d+ cannot join PD at \\S+: PD already runs cluster ${rpc.clusterId} \\(bootstrapped\\)`,
        ),
      );
    } finally {
      rpc.close();
      other.close();
      await cleanUp(parts);
    }
  },
});
