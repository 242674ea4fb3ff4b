/**
 * The PD process (`deno task pd`'s `src/pd/server/main.ts`, narrow permissions, loopback, port
 * 0) over real gRPC: the `pdpb.PD` calls a TiKV store and client make, with PD's answers and
 * error types (PD's `server/grpc_service.go`), operators travelling back on the region
 * heartbeat stream, and its state kept across a graceful stop and a SIGKILL.
 */
import assert from "node:assert/strict";
import { pdpb } from "../../proto/mod.ts";
import { PD_ADMIN_REQUEST_MAX_BYTES } from "../../src/constants.ts";
import { TxnKV } from "../../src/client/txn/txn_kv.ts";
import { TSO_LOGICAL_BITS } from "../../src/tso/mod.ts";
import { utf8 } from "../../src/util/bytes.ts";
import { ctl, ok } from "./ctl.ts";
import { withServer } from "./lib.ts";
import { PdRpc, startPd, type TestPd, withPd } from "./pd_lib.ts";

const E2E = { sanitizeOps: false, sanitizeResources: false };

const C = {
  GetMembers: { request: pdpb.GetMembersRequest, response: pdpb.GetMembersResponse },
  IsBootstrapped: { request: pdpb.IsBootstrappedRequest, response: pdpb.IsBootstrappedResponse },
  Bootstrap: { request: pdpb.BootstrapRequest, response: pdpb.BootstrapResponse },
  AllocID: { request: pdpb.AllocIDRequest, response: pdpb.AllocIDResponse },
  GetStore: { request: pdpb.GetStoreRequest, response: pdpb.GetStoreResponse },
  PutStore: { request: pdpb.PutStoreRequest, response: pdpb.PutStoreResponse },
  GetAllStores: { request: pdpb.GetAllStoresRequest, response: pdpb.GetAllStoresResponse },
  StoreHeartbeat: { request: pdpb.StoreHeartbeatRequest, response: pdpb.StoreHeartbeatResponse },
  GetRegion: { request: pdpb.GetRegionRequest, response: pdpb.GetRegionResponse },
  GetPrevRegion: { request: pdpb.GetRegionRequest, response: pdpb.GetRegionResponse },
  GetRegionByID: { request: pdpb.GetRegionByIDRequest, response: pdpb.GetRegionResponse },
  ScanRegions: { request: pdpb.ScanRegionsRequest, response: pdpb.ScanRegionsResponse },
  AskBatchSplit: { request: pdpb.AskBatchSplitRequest, response: pdpb.AskBatchSplitResponse },
  ReportBatchSplit: {
    request: pdpb.ReportBatchSplitRequest,
    response: pdpb.ReportBatchSplitResponse,
  },
  GetGCSafePoint: { request: pdpb.GetGCSafePointRequest, response: pdpb.GetGCSafePointResponse },
  UpdateGCSafePoint: {
    request: pdpb.UpdateGCSafePointRequest,
    response: pdpb.UpdateGCSafePointResponse,
  },
  UpdateServiceGCSafePoint: {
    request: pdpb.UpdateServiceGCSafePointRequest,
    response: pdpb.UpdateServiceGCSafePointResponse,
  },
  GetOperator: { request: pdpb.GetOperatorRequest, response: pdpb.GetOperatorResponse },
  ScatterRegion: { request: pdpb.ScatterRegionRequest, response: pdpb.ScatterRegionResponse },
};

type Call = <Res>(method: keyof typeof C, request: Record<string, unknown>) => Promise<Res>;

function caller(rpc: PdRpc): Call {
  return <Res>(method: keyof typeof C, request: Record<string, unknown>) =>
    rpc.call<Res>(method, C[method] as never, request);
}

const STORE_1 = { id: 1n, address: "127.0.0.1:20160", version: "8.5.0" };
/** Region 2 over every key, one peer (3) on store 1: what a first TiKV store bootstraps. */
const FIRST_REGION = {
  id: 2n,
  startKey: new Uint8Array(0),
  endKey: new Uint8Array(0),
  regionEpoch: { confVer: 1n, version: 1n },
  peers: [{ id: 3n, storeId: 1n }],
};

function errorType(header: pdpb.ResponseHeader.$Properties | null | undefined): string {
  const type = header?.error?.type ?? pdpb.ErrorType.OK;
  return pdpb.ErrorType[type]!;
}

function tsoStream(rpc: PdRpc) {
  const stream = rpc.stream<pdpb.TsoResponse>("Tso", pdpb.TsoResponse);
  return {
    stream,
    next: async (count: number) => {
      stream.send(pdpb.TsoRequest.encode({ header: rpc.header(), count }).finish());
      const response = await stream.next();
      assert.ok(response !== null, "a TsoResponse arrives");
      const { physical, logical } = response.timestamp!;
      return {
        count: response.count,
        last: ((physical ?? 0n) << BigInt(TSO_LOGICAL_BITS)) | (logical ?? 0n),
      };
    },
  };
}

Deno.test({
  name:
    "PD process: NOT_BOOTSTRAPPED until Bootstrap, then ALREADY_BOOTSTRAPPED; TSO counts and never repeats; other clusters refused",
  ...E2E,
  fn: () =>
    withPd(async (pd) => {
      const rpc = await new PdRpc(pd.clientAddr).connect();
      const call = caller(rpc);
      try {
        const members = await call<pdpb.GetMembersResponse>("GetMembers", {});
        assert.equal(members.leader?.name, "pd");
        assert.deepEqual(members.leader?.clientUrls, [`http://${pd.clientAddr}`]);
        assert.notEqual(rpc.clusterId, 0n);
        const before = await call<pdpb.IsBootstrappedResponse>("IsBootstrapped", {});
        assert.equal(before.bootstrapped, false);
        const early = await call<pdpb.GetStoreResponse>("GetStore", { storeId: 1n });
        assert.equal(errorType(early.header), "NOT_BOOTSTRAPPED");
        // A store allocates its ids before it bootstraps.
        const id = await call<pdpb.AllocIDResponse>("AllocID", {});
        assert.ok(id.id > 0n);
        const batch = await call<pdpb.AllocIDResponse>("AllocID", { count: 10 });
        assert.equal(batch.id, id.id + 10n);
        assert.equal(batch.count, 10);

        const tso = tsoStream(rpc);
        const first = await tso.next(1);
        const ten = await tso.next(10);
        const after = await tso.next(1);
        assert.equal(ten.count, 10);
        assert.ok(ten.last - 10n >= first.last, "ten fresh timestamps after the first");
        assert.ok(after.last > ten.last);
        tso.stream.end();

        const boot = await call<pdpb.BootstrapResponse>("Bootstrap", {
          store: STORE_1,
          region: FIRST_REGION,
        });
        assert.equal(errorType(boot.header), "OK");
        const again = await call<pdpb.BootstrapResponse>("Bootstrap", {
          store: STORE_1,
          region: FIRST_REGION,
        });
        assert.equal(errorType(again.header), "ALREADY_BOOTSTRAPPED");
        assert.equal(
          (await call<pdpb.IsBootstrappedResponse>("IsBootstrapped", {})).bootstrapped,
          true,
        );

        await assert.rejects(
          rpc.call("GetStore", C.GetStore as never, {
            header: { clusterId: rpc.clusterId + 1n },
            storeId: 1n,
          }),
          (error: { code: number; details: string }) =>
            error.code === 9 /* FAILED_PRECONDITION */ && /mismatch cluster id/.test(error.details),
        );
        const garbage = rpc.stream("RegionHeartbeat", pdpb.RegionHeartbeatResponse);
        garbage.send(Uint8Array.of(0x12, 0xff));
        assert.equal((await garbage.ended).code, 3 /* INVALID_ARGUMENT */);
        const foreign = rpc.stream("RegionHeartbeat", pdpb.RegionHeartbeatResponse);
        foreign.send(
          pdpb.RegionHeartbeatRequest.encode({
            header: { clusterId: rpc.clusterId + 1n },
            region: FIRST_REGION,
            leader: { id: 3n, storeId: 1n },
          }).finish(),
        );
        const foreignStatus = await foreign.ended;
        assert.equal(foreignStatus.code, 9 /* FAILED_PRECONDITION */);
        assert.match(foreignStatus.details, /mismatch cluster id/);
        await assert.rejects(
          rpc.callBytes("/pdpb.PD/GetStore", Uint8Array.of(0x0a, 0xff)),
          (error: { code: number }) => error.code === 3, /* INVALID_ARGUMENT */
        );
      } finally {
        rpc.close();
      }
    }),
});

/** Bootstraps `pd` with store 1 and region 2, and adds store 2. */
async function bootstrapTwoStores(call: Call): Promise<void> {
  await call("Bootstrap", { store: STORE_1, region: FIRST_REGION });
  const put = await call<pdpb.PutStoreResponse>("PutStore", {
    store: { id: 4n, address: "127.0.0.1:20161", version: "8.5.0" },
  });
  assert.equal(errorType(put.header), "OK");
}

Deno.test({
  name:
    "PD process: stores, region heartbeats (stale epochs ignored), splits, operators pushed on the heartbeat stream, safe points — all kept across a stop and a SIGKILL",
  ...E2E,
  fn: () =>
    withPd(async (pd) => {
      let rpc = await new PdRpc(pd.clientAddr).connect();
      let call = caller(rpc);
      const clusterId = rpc.clusterId;
      await bootstrapTwoStores(call);
      const stores = await call<pdpb.GetAllStoresResponse>("GetAllStores", {});
      assert.deepEqual(stores.stores.map((s) => [s.id, s.address]), [
        [1n, "127.0.0.1:20160"],
        [4n, "127.0.0.1:20161"],
      ]);
      const unknown = await call<pdpb.GetStoreResponse>("GetStore", { storeId: 99n });
      assert.equal(errorType(unknown.header), "UNKNOWN");
      assert.match(unknown.header?.error?.message ?? "", /invalid store ID 99, not found/);
      const beat = await call<pdpb.StoreHeartbeatResponse>("StoreHeartbeat", {
        stats: { storeId: 4n, capacity: 1000n, available: 600n, regionCount: 0 },
      });
      assert.equal(errorType(beat.header), "OK");
      const store4 = await call<pdpb.GetStoreResponse>("GetStore", { storeId: 4n });
      assert.equal(store4.stats?.available, 600n);

      // Region 2 gains a voter on store 4 (as if PD had added it); its leader heartbeats.
      const hb = rpc.stream<pdpb.RegionHeartbeatResponse>(
        "RegionHeartbeat",
        pdpb.RegionHeartbeatResponse,
      );
      const twoPeers = {
        ...FIRST_REGION,
        regionEpoch: { confVer: 2n, version: 1n },
        peers: [{ id: 3n, storeId: 1n }, { id: 5n, storeId: 4n }],
      };
      const heartbeat = (region: object, leader: object, term = 5n) =>
        hb.send(
          pdpb.RegionHeartbeatRequest.encode({
            header: rpc.header(),
            region,
            leader,
            term,
            approximateSize: 1n << 20n,
          }).finish(),
        );
      heartbeat(twoPeers, { id: 3n, storeId: 1n });
      assert.equal(await hb.next(500), null, "no operator, no answer");
      const kept = await call<pdpb.GetRegionResponse>("GetRegionByID", { regionId: 2n });
      assert.equal(kept.region?.peers?.length, 2);
      assert.equal(kept.leader?.id, 3n);

      // A stale epoch (confVer 1 < 2) is answered with an error and changes nothing.
      heartbeat(FIRST_REGION, { id: 3n, storeId: 1n });
      const stale = await hb.next();
      assert.equal(errorType(stale?.header), "UNKNOWN");
      assert.match(stale?.header?.error?.message ?? "", /stale/);
      const still = await call<pdpb.GetRegionResponse>("GetRegionByID", { regionId: 2n });
      assert.equal(still.region?.regionEpoch?.confVer, 2n);

      // An operator added by an administrator is pushed to the leader's stream at once.
      const added = await rpc.admin("AddOperator", {
        action: "transfer-leader",
        regionId: "2",
        storeId: "4",
      });
      assert.ok("operator" in added, JSON.stringify(added));
      const pushed = await hb.next();
      assert.equal(pushed?.regionId, 2n);
      assert.equal(pushed?.transferLeader?.peer?.storeId, 4n);
      const running = await call<pdpb.GetOperatorResponse>("GetOperator", { regionId: 2n });
      assert.equal(pdpb.OperatorStatus[running.status], "RUNNING");
      assert.equal(new TextDecoder().decode(running.desc), "admin-transfer-leader");
      // The new leader's heartbeat finishes it.
      heartbeat(twoPeers, { id: 5n, storeId: 4n }, 6n);
      assert.equal(await hb.next(500), null);
      const done = await call<pdpb.GetOperatorResponse>("GetOperator", { regionId: 2n });
      assert.equal(pdpb.OperatorStatus[done.status], "SUCCESS");
      const none = await call<pdpb.GetOperatorResponse>("GetOperator", { regionId: 77n });
      assert.equal(errorType(none.header), "REGION_NOT_FOUND");

      // Split region 2 at "m": ids from AskBatchSplit, then the two halves heartbeat.
      const ask = await call<pdpb.AskBatchSplitResponse>("AskBatchSplit", {
        region: twoPeers,
        splitCount: 1,
      });
      assert.equal(errorType(ask.header), "OK");
      const split = ask.ids[0] as pdpb.SplitID;
      assert.equal(split.newPeerIds.length, 2);
      const left = {
        id: split.newRegionId,
        startKey: new Uint8Array(0),
        endKey: utf8("m"),
        regionEpoch: { confVer: 2n, version: 2n },
        peers: [
          { id: split.newPeerIds[0]!, storeId: 1n },
          { id: split.newPeerIds[1]!, storeId: 4n },
        ],
      };
      const right = { ...twoPeers, startKey: utf8("m"), regionEpoch: { confVer: 2n, version: 2n } };
      const report = await call<pdpb.ReportBatchSplitResponse>("ReportBatchSplit", {
        regions: [left, right],
      });
      assert.equal(errorType(report.header), "OK");
      heartbeat(right, { id: 5n, storeId: 4n }, 6n);
      heartbeat(left, { id: split.newPeerIds[1]!, storeId: 4n }, 6n);
      assert.equal(await hb.next(500), null);
      const byKey = await call<pdpb.GetRegionResponse>("GetRegion", { regionKey: utf8("a") });
      assert.equal(byKey.region?.id, left.id);
      const prev = await call<pdpb.GetRegionResponse>("GetPrevRegion", {
        regionKey: utf8("x"),
      });
      assert.equal(prev.region?.id, left.id);
      const scan = await call<pdpb.ScanRegionsResponse>("ScanRegions", {
        startKey: new Uint8Array(0),
        limit: 10,
      });
      assert.deepEqual(scan.regions.map((r) => r.region?.id), [left.id, 2n]);
      // The parent's old shape (version 1) is stale against both halves.
      heartbeat(twoPeers, { id: 5n, storeId: 4n }, 6n);
      assert.match((await hb.next())?.header?.error?.message ?? "", /stale/);
      hb.end();

      // GC safe point: forward only; a service safe point bounds it.
      const service = await call<pdpb.UpdateServiceGCSafePointResponse>(
        "UpdateServiceGCSafePoint",
        { serviceId: utf8("br"), TTL: 3600n, safePoint: 500n },
      );
      assert.equal(errorType(service.header), "OK");
      const gc = await call<pdpb.UpdateGCSafePointResponse>("UpdateGCSafePoint", {
        safePoint: 900n,
      });
      assert.equal(gc.newSafePoint, 500n, "held at the service safe point");
      const scatter = await call<pdpb.ScatterRegionResponse>("ScatterRegion", {
        regionsId: [2n],
      });
      assert.equal(scatter.finishedPercentage, 100n);

      const tso = tsoStream(rpc);
      const lastTs = (await tso.next(100)).last;
      tso.stream.end();
      const lastId = (await call<pdpb.AllocIDResponse>("AllocID", {})).id;
      rpc.close();

      const check = async (what: string) => {
        rpc = await new PdRpc(pd.clientAddr).connect();
        call = caller(rpc);
        assert.equal(rpc.clusterId, clusterId, `${what}: same cluster id`);
        const all = await call<pdpb.GetAllStoresResponse>("GetAllStores", {});
        assert.deepEqual(all.stores.map((s) => s.id), [1n, 4n], what);
        const regions = await call<pdpb.ScanRegionsResponse>("ScanRegions", {
          startKey: new Uint8Array(0),
        });
        assert.deepEqual(regions.regions.map((r) => r.region?.id), [left.id, 2n], what);
        const safe = await call<pdpb.GetGCSafePointResponse>("GetGCSafePoint", {});
        assert.equal(safe.safePoint, 500n, what);
        const held = await call<pdpb.UpdateGCSafePointResponse>("UpdateGCSafePoint", {
          safePoint: 900n,
        });
        assert.equal(held.newSafePoint, 500n, `${what}: the service safe point still holds it`);
        const next = tsoStream(rpc);
        assert.ok((await next.next(1)).last > lastTs, `${what}: TSO does not go back`);
        next.stream.end();
        assert.ok((await call<pdpb.AllocIDResponse>("AllocID", {})).id > lastId, what);
        rpc.close();
      };
      assert.equal(await pd.stop(), 0, "a graceful stop exits 0");
      await pd.restart();
      await check("after a stop");
      await pd.kill();
      await pd.restart();
      await check("after SIGKILL");
    }),
});

Deno.test({
  name:
    "PD process: /health, /metrics counting requests, timestamps, stores and regions; --help; a member listed at another peer URL refused",
  ...E2E,
  fn: () =>
    withPd(async (pd) => {
      const rpc = await new PdRpc(pd.clientAddr).connect();
      try {
        const call = caller(rpc);
        await bootstrapTwoStores(call);
        const tso = tsoStream(rpc);
        await tso.next(7);
        tso.stream.end();
        const health = await fetch(`http://${pd.statusAddr}/health`);
        assert.equal(await health.text(), "ok\n");
        const metrics = await (await fetch(`http://${pd.statusAddr}/metrics`)).text();
        assert.match(metrics, /basalt_pd_requests_total\{method="Bootstrap",outcome="ok"\} 1/);
        assert.match(metrics, /basalt_pd_tso_timestamps_total 7/);
        assert.match(metrics, /basalt_pd_stores\{state="Up"\} 2/);
        assert.match(metrics, /basalt_pd_regions 1/);
      } finally {
        rpc.close();
      }
      const refused = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          new URL("../../src/pd/server/main.ts", import.meta.url).pathname,
          "--name",
          "pd1",
          "--initial-cluster",
          "pd1=http://127.0.0.1:2370,pd2=http://127.0.0.1:2390",
        ],
        // A member that failed to refuse would serve forever: the wait is bounded.
        signal: AbortSignal.timeout(20_000),
      }).output();
      assert.equal(refused.code, 2);
      assert.match(
        new TextDecoder().decode(refused.stderr),
        /initial-cluster: names pd1 at http:\/\/127\.0\.0\.1:2370 but --peer-urls is/,
      );
    }),
});

Deno.test({
  name: "TxnKV given the PD process's endpoint takes its timestamps from that PD's TSO",
  ...E2E,
  fn: () =>
    withPd(async (pd: TestPd) => {
      const rpc = await new PdRpc(pd.clientAddr).connect();
      const call = caller(rpc);
      await bootstrapTwoStores(call);
      const tso = tsoStream(rpc);
      const before = (await tso.next(1)).last;
      const client = await TxnKV.connect({ pd: [pd.clientAddr], timeoutMs: 10_000 });
      try {
        const fromClient = await client.currentTimestamp();
        const after = (await tso.next(1)).last;
        assert.ok(before < fromClient && fromClient < after, "the client's timestamp is PD's");
        const metrics = await (await fetch(`http://${pd.statusAddr}/metrics`)).text();
        assert.match(metrics, /basalt_pd_tso_timestamps_total [3-9]/);
      } finally {
        await client.close();
        tso.stream.end();
        rpc.close();
      }
    }),
});

Deno.test({
  name: "ctl --pd: member, store, region, operator, scheduler and tso commands, human and --json",
  ...E2E,
  fn: () =>
    withPd(async (pd) => {
      const rpc = await new PdRpc(pd.clientAddr).connect();
      const call = caller(rpc);
      await bootstrapTwoStores(call);
      const hb = rpc.stream<pdpb.RegionHeartbeatResponse>(
        "RegionHeartbeat",
        pdpb.RegionHeartbeatResponse,
      );
      hb.send(
        pdpb.RegionHeartbeatRequest.encode({
          header: rpc.header(),
          region: {
            ...FIRST_REGION,
            regionEpoch: { confVer: 2n, version: 1n },
            peers: [{ id: 3n, storeId: 1n }, { id: 5n, storeId: 4n }],
          },
          leader: { id: 3n, storeId: 1n },
          term: 2n,
        }).finish(),
      );
      assert.equal(await hb.next(500), null);
      const at = ["--pd", pd.clientAddr];
      try {
        const members = await ok([...at, "member", "list"]);
        assert.equal(members[0], `cluster ${rpc.clusterId}`);
        assert.match(
          members[1]!,
          new RegExp(`^pd  id \\d+  client http://${pd.clientAddr}.*\\(leader\\)$`),
        );
        const stores = await ok([...at, "store", "list"]);
        assert.equal(stores.length, 2);
        assert.match(
          stores[0]!,
          /^store 1 {2}127\.0\.0\.1:20160 {2}Up {2}Up {2}regions 1 {2}leaders 1/,
        );
        assert.match(
          stores[1]!,
          /^store 4 {2}127\.0\.0\.1:20161 {2}Up {2}Up {2}regions 1 {2}leaders 0/,
        );
        assert.match(
          (await ok([...at, "store", "show", "4"]))[0]!,
          /^store 4 {2}127\.0\.0\.1:20161 {2}Up/,
        );
        const regions = await ok([...at, "region", "list"]);
        assert.deepEqual(regions, [
          'region 2 ["", +inf) epoch 2/1 peers 3@store1,5@store4 leader 3@store1',
        ]);
        assert.deepEqual(await ok([...at, "region", "key", "anything"]), regions);
        const shown = JSON.parse((await ok([...at, "region", "show", "2", "--json"]))[0]!);
        assert.deepEqual([shown.id, shown.leader, shown.peers.length], ["2", "3", 2]);

        const added = await ok([...at, "operator", "add", "transfer-leader", "2", "4"]);
        assert.deepEqual(added, [
          "added: region 2 admin-transfer-leader: transfer leader from store 1 to store 4 [step 0]",
        ]);
        const pushed = await hb.next();
        assert.equal(pushed?.transferLeader?.peer?.storeId, 4n, "the operator reached the leader");
        assert.deepEqual(await ok([...at, "operator", "list"]), [
          "region 2 admin-transfer-leader: transfer leader from store 1 to store 4 [step 0]",
        ]);
        assert.deepEqual(await ok([...at, "operator", "show", "2"]), [
          "region 2 admin-transfer-leader [RUNNING]",
        ]);
        await assert.rejects(
          rpc.callBytes(
            "/basalt.PdAdmin/ListOperators",
            new Uint8Array(PD_ADMIN_REQUEST_MAX_BYTES + 1).fill(0x20),
          ),
          (error: { code: number; details: string }) =>
            error.code === 3 /* INVALID_ARGUMENT */ && /at most 65536/.test(error.details),
        );
        const refusedOp = await ctl([...at, "operator", "add", "remove-peer", "2", "9"]);
        assert.equal(refusedOp.code, 1);
        assert.match(refusedOp.stderr, /UNKNOWN: invalid store ID 9, not found/);
        assert.ok(
          (await ok([...at, "scheduler", "list"])).includes("balance-leader-scheduler"),
        );
        const refusedDelete = await ctl([...at, "store", "delete", "4"]);
        assert.equal(refusedDelete.code, 1);
        assert.match(refusedDelete.stderr, /store 4 can not be removed: 2 stores are up/);

        const tso = await ok([...at, "tso"]);
        assert.match(tso[0]!, /^\d+$/);
        assert.match(tso[1]!, /^system: {2}\d{4}-\d\d-\d\dT/);
        const tsoJson = JSON.parse((await ok([...at, "tso", "--json"]))[0]!);
        assert.ok(BigInt(tsoJson.ts) > BigInt(tso[0]!), "a later timestamp");
        const help = await new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            new URL("../../src/pd/server/main.ts", import.meta.url).pathname,
            "--help",
          ],
        }).output();
        assert.equal(help.code, 0);
        assert.match(new TextDecoder().decode(help.stdout), /--initial-cluster N=URL/);
      } finally {
        hb.end();
        rpc.close();
      }
    }),
});

Deno.test({
  name:
    "ctl --pd against a standalone store's PD face: the same reads, admin commands refused by name",
  ...E2E,
  fn: () =>
    withServer(async (server) => {
      const at = ["--pd", server.grpcAddr];
      const members = await ok([...at, "member", "list"]);
      assert.match(members[1]!, /^basalt-store-1 {2}id \d+ {2}client http:\/\/.*\(leader\)$/);
      assert.match(
        (await ok([...at, "store", "list"]))[0]!,
        new RegExp(`^store 1 {2}${server.grpcAddr} {2}Up`),
      );
      assert.deepEqual(await ok([...at, "region", "list"]), [
        'region 1 ["", +inf) epoch 1/1 peers 2@store1 leader 2@store1',
      ]);
      assert.match((await ok([...at, "tso"]))[0]!, /^\d+$/);
      const refused = await ctl([...at, "operator", "list"]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /has no PD admin service \(a standalone store\?\)/);
    }),
});

function connectTcp(addr: string): Promise<Deno.TcpConn> {
  const colon = addr.lastIndexOf(":");
  return Deno.connect({ hostname: addr.slice(0, colon), port: Number(addr.slice(colon + 1)) });
}

/** Milliseconds until the server closes `conn` (reads and drops what it sends); null if not within `timeoutMs`. */
async function closedWithin(conn: Deno.Conn, timeoutMs: number): Promise<number | null> {
  const start = Date.now();
  const timer = setTimeout(() => conn.close(), timeoutMs);
  const buffer = new Uint8Array(4096);
  try {
    while (await conn.read(buffer) !== null) { /* drop */ }
  } catch {
    return null; // closed by our own timer
  } finally {
    clearTimeout(timer);
  }
  try {
    conn.close();
  } catch { /* closed */ }
  return Date.now() - start;
}

/** Runs `body` against a PD started with `config` (TOML); stops it and removes its directory. */
async function withConfiguredPd(config: string, body: (pd: TestPd) => Promise<void>) {
  const pd = await startPd({ config });
  try {
    await body(pd);
    assert.equal(await pd.stop(), 0, "PD stops cleanly");
    await Deno.remove(pd.dataDir.replace(/\/pd$/, ""), { recursive: true });
  } finally {
    await pd.stop().catch(() => {});
  }
}

Deno.test({
  name:
    "PD's client port: connections past max-connections are closed on accept, and the open ones keep working",
  ...E2E,
  fn: () =>
    withConfiguredPd("max-connections = 3\n", async (pd) => {
      const held = [await connectTcp(pd.clientAddr), await connectTcp(pd.clientAddr)];
      const rpc = await new PdRpc(pd.clientAddr).connect(); // the third connection: at the cap
      try {
        const refused = await closedWithin(await connectTcp(pd.clientAddr), 5_000);
        assert.ok(refused !== null, "a fourth connection was kept open past max-connections = 3");
        const members = await rpc.call<pdpb.GetMembersResponse>("GetMembers", C.GetMembers, {});
        assert.equal(members.members.length, 1, "the open client is still served");
        const metrics = await (await fetch(`http://${pd.statusAddr}/metrics`, {
          signal: AbortSignal.timeout(5_000),
        })).text();
        assert.match(metrics, /basalt_grpc_connections_refused_total [1-9]/);
        assert.match(metrics, /basalt_grpc_connections 3\n/);
      } finally {
        for (const conn of held) conn.close();
        rpc.close();
      }
    }),
});

Deno.test({
  name:
    "PD's ports: a silent connection is closed after connection-idle-timeout, and the status port answers 405 to a POST",
  ...E2E,
  fn: () =>
    withConfiguredPd('connection-idle-timeout = "1s"\n', async (pd) => {
      // No HTTP/2 preface, no request: only the idle timeout closes them.
      const silentClient = closedWithin(await connectTcp(pd.clientAddr), 8_000);
      const silentStatus = closedWithin(await connectTcp(pd.statusAddr), 8_000);
      assert.ok(await silentClient !== null, "client port: still open after 8 s with 1 s idle");
      assert.ok(await silentStatus !== null, "status port: still open after 8 s with 1 s idle");
      const post = await fetch(`http://${pd.statusAddr}/health`, {
        method: "POST",
        signal: AbortSignal.timeout(5_000),
      });
      await post.body?.cancel();
      assert.equal(post.status, 405);
      assert.equal(post.headers.get("allow"), "GET");
    }),
});
