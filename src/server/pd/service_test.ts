/**
 * The `pdpb.PD` service over real gRPC (grpc-js server on 127.0.0.1:0, grpc-js client, our
 * codecs), checked against what PD's `server/grpc_service.go` answers a TiKV client.
 */
import * as grpc from "@grpc/grpc-js";
import assert from "node:assert/strict";
import { metapb, pdpb } from "../../../proto/mod.ts";
import { utf8 } from "../../util/bytes.ts";
import { TSO_LOGICAL_BITS } from "../../tso/mod.ts";
import type { DrainableStream, PdLog } from "./dependencies.ts";
import { pdHandlers, pdServiceDefinition } from "./service.ts";
import { openStandalonePd, type StandalonePd } from "./standalone.ts";
import { standaloneView } from "./view.ts";

const quietLog: PdLog = { debug() {}, info() {}, warn() {}, error() {} };

interface Codec<T> {
  encode(message: T): { finish(): Uint8Array };
  decode(bytes: Uint8Array): unknown;
}

/** A PD served on a loopback port from `dataDir`, and a client of it. */
class Harness {
  private constructor(
    readonly pd: StandalonePd,
    readonly openStreams: Set<DrainableStream>,
    readonly server: grpc.Server,
    readonly client: grpc.Client,
    readonly addr: string,
  ) {}

  static async start(dataDir: string, clock?: { nowMs(): number }): Promise<Harness> {
    const pd = openStandalonePd(dataDir, { clock, tickIntervalMs: null });
    const server = new grpc.Server();
    let addr = "";
    const streams = new Set<DrainableStream>();
    server.addService(
      pdServiceDefinition(),
      pdHandlers({
        pd,
        view: () => standaloneView({ addr, statusAddr: "127.0.0.1:20180" }),
        log: quietLog,
        openStreams: streams,
      }),
    );
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(
        "127.0.0.1:0",
        grpc.ServerCredentials.createInsecure(),
        (error, bound) => error ? reject(error) : resolve(bound),
      );
    });
    addr = `127.0.0.1:${port}`;
    const client = new grpc.Client(addr, grpc.credentials.createInsecure());
    return new Harness(pd, streams, server, client, addr);
  }

  callBytes(method: string, request: Uint8Array): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest<Uint8Array, Uint8Array>(
        `/pdpb.PD/${method}`,
        (bytes) => Buffer.from(bytes),
        (buffer) => new Uint8Array(buffer),
        request,
        { deadline: Date.now() + 10_000 },
        (error, response) => error ? reject(error) : resolve(response!),
      );
    });
  }

  async call<Req, Res>(
    method: string,
    codecs: { request: Codec<Req>; response: Codec<unknown> },
    request: Req,
  ): Promise<Res> {
    const bytes = await this.callBytes(method, codecs.request.encode(request).finish());
    return codecs.response.decode(bytes) as Res;
  }

  header(): pdpb.RequestHeader.$Properties {
    return { clusterId: this.pd.clusterId };
  }

  /** A Tso stream: `send` one request and await its response; `ended` settles with the status. */
  tso() {
    const stream = this.client.makeBidiStreamRequest<Uint8Array, Uint8Array>(
      "/pdpb.PD/Tso",
      (bytes) => Buffer.from(bytes),
      (buffer) => new Uint8Array(buffer),
    );
    const waiting: ((response: pdpb.TsoResponse) => void)[] = [];
    stream.on("data", (bytes: Uint8Array) => waiting.shift()?.(pdpb.TsoResponse.decode(bytes)));
    const ended = new Promise<grpc.StatusObject>((resolve) => stream.on("status", resolve));
    stream.on("error", () => {});
    return {
      send: (request: pdpb.TsoRequest.$Properties) =>
        new Promise<pdpb.TsoResponse>((resolve) => {
          waiting.push(resolve);
          stream.write(pdpb.TsoRequest.encode(request).finish());
        }),
      writeBytes: (bytes: Uint8Array) => stream.write(bytes),
      end: () => stream.end(),
      ended,
    };
  }

  async stop(): Promise<void> {
    this.client.close();
    await new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
    this.pd.close();
  }
}

async function withPd(body: (harness: Harness, dataDir: string) => Promise<void>): Promise<void> {
  const dataDir = Deno.makeTempDirSync({ prefix: "basalt-pd-grpc-" });
  const harness = await Harness.start(dataDir);
  try {
    await body(harness, dataDir);
  } finally {
    await harness.stop();
    Deno.removeSync(dataDir, { recursive: true });
  }
}

function tsOf(response: pdpb.TsoResponse): bigint {
  const timestamp = response.timestamp!;
  return (timestamp.physical! << BigInt(TSO_LOGICAL_BITS)) | timestamp.logical!;
}

async function rejectsWith(promise: Promise<unknown>, code: grpc.status, details: RegExp) {
  await assert.rejects(promise, (error: grpc.ServiceError) => {
    assert.equal(error.code, code, error.details);
    assert.match(error.details, details);
    return true;
  });
}

Deno.test("GetMembers: one member, the leader, at http://<store gRPC address>, whatever cluster id is sent", async () => {
  await withPd(async (pd) => {
    const response = await pd.call<pdpb.GetMembersRequest.$Properties, pdpb.GetMembersResponse>(
      "GetMembers",
      { request: pdpb.GetMembersRequest, response: pdpb.GetMembersResponse },
      { header: { clusterId: 0n } },
    );
    assert.equal(response.header?.clusterId, pd.pd.clusterId);
    assert.equal(response.header?.error, null);
    assert.equal(response.members.length, 1);
    assert.deepEqual(response.members[0]!.clientUrls, [`http://${pd.addr}`]);
    assert.equal(response.leader?.memberId, pd.pd.memberId);
    assert.equal(response.leader?.name, response.members[0]!.name);
    assert.equal(response.etcdLeader?.memberId, pd.pd.memberId);

    const info = await pd.call<pdpb.GetClusterInfoRequest.$Properties, pdpb.GetClusterInfoResponse>(
      "GetClusterInfo",
      { request: pdpb.GetClusterInfoRequest, response: pdpb.GetClusterInfoResponse },
      {},
    );
    assert.equal(info.header?.clusterId, pd.pd.clusterId);
    assert.deepEqual(info.serviceModes, [pdpb.ServiceMode.PD_SVC_MODE]);
  });
});

Deno.test("a request naming another cluster fails with FAILED_PRECONDITION, as PD's validateRequest", async () => {
  await withPd(async (pd) => {
    const wrong = pd.pd.clusterId + 1n;
    for (const clusterId of [wrong, 0n]) {
      await rejectsWith(
        pd.callBytes(
          "GetRegion",
          pdpb.GetRegionRequest.encode({ header: { clusterId }, regionKey: utf8("k") }).finish(),
        ),
        grpc.status.FAILED_PRECONDITION,
        new RegExp(`mismatch cluster id, need ${pd.pd.clusterId} but got ${clusterId}`),
      );
    }
    const tso = pd.tso();
    tso.writeBytes(pdpb.TsoRequest.encode({ header: { clusterId: wrong }, count: 1 }).finish());
    const status = await tso.ended;
    assert.equal(status.code, grpc.status.FAILED_PRECONDITION);
  });
});

Deno.test("Tso: count=10 twice on one stream answers the last of each batch, strictly increasing", async () => {
  await withPd(async (pd) => {
    const tso = pd.tso();
    const first = await tso.send({ header: pd.header(), count: 10 });
    const second = await tso.send({ header: pd.header(), count: 10 });
    for (const response of [first, second]) {
      assert.equal(response.header?.clusterId, pd.pd.clusterId);
      assert.equal(response.count, 10);
      assert.equal(response.timestamp?.suffixBits, 0);
      assert.ok(response.timestamp!.logical! >= 10n, "the last of ten in its millisecond");
    }
    // The second batch is ten timestamps all above the first batch's last.
    assert.ok(tsOf(second) - 9n > tsOf(first));
    tso.end();
    assert.equal((await tso.ended).code, grpc.status.OK);
  });
});

Deno.test("Tso: count=0 ends the stream with UNKNOWN, a malformed message with INVALID_ARGUMENT", async () => {
  await withPd(async (pd) => {
    const zero = pd.tso();
    zero.writeBytes(pdpb.TsoRequest.encode({ header: pd.header(), count: 0 }).finish());
    const status = await zero.ended;
    assert.equal(status.code, grpc.status.UNKNOWN);
    assert.match(status.details, /tso count should be positive/);

    const garbage = pd.tso();
    garbage.writeBytes(new Uint8Array([0x0a, 0xff, 0xff]));
    assert.equal((await garbage.ended).code, grpc.status.INVALID_ARGUMENT);
  });
});

Deno.test("a drained Tso stream ends with OK (server shutdown)", async () => {
  await withPd(async (pd) => {
    const tso = pd.tso();
    await tso.send({ header: pd.header(), count: 1 });
    assert.equal(pd.openStreams.size, 1);
    for (const stream of pd.openStreams) stream.drain();
    assert.equal((await tso.ended).code, grpc.status.OK);
  });
});

Deno.test("GetRegion, GetPrevRegion, GetRegionByID and ScanRegions route every key to region 1", async () => {
  await withPd(async (pd) => {
    const codecs = { request: pdpb.GetRegionRequest, response: pdpb.GetRegionResponse };
    const byKey = await pd.call<pdpb.GetRegionRequest.$Properties, pdpb.GetRegionResponse>(
      "GetRegion",
      codecs,
      { header: pd.header(), regionKey: utf8("any key") },
    );
    assert.equal(byKey.header?.clusterId, pd.pd.clusterId);
    assert.equal(byKey.region?.id, 1n);
    assert.equal(byKey.region?.startKey?.length, 0, "from the first key");
    assert.equal(byKey.region?.endKey?.length, 0, "to the last key");
    assert.deepEqual(
      { confVer: byKey.region?.regionEpoch?.confVer, version: byKey.region?.regionEpoch?.version },
      { confVer: 1n, version: 1n },
    );
    assert.deepEqual({ id: byKey.leader?.id, storeId: byKey.leader?.storeId }, {
      id: 2n,
      storeId: 1n,
    });

    const prev = await pd.call<pdpb.GetRegionRequest.$Properties, pdpb.GetRegionResponse>(
      "GetPrevRegion",
      codecs,
      { header: pd.header(), regionKey: utf8("k") },
    );
    assert.equal(prev.region, null);
    assert.equal(prev.header?.error, null);

    const byIdCodecs = { request: pdpb.GetRegionByIDRequest, response: pdpb.GetRegionResponse };
    const one = await pd.call<pdpb.GetRegionByIDRequest.$Properties, pdpb.GetRegionResponse>(
      "GetRegionByID",
      byIdCodecs,
      { header: pd.header(), regionId: 1n },
    );
    assert.equal(one.region?.id, 1n);
    const unknown = await pd.call<pdpb.GetRegionByIDRequest.$Properties, pdpb.GetRegionResponse>(
      "GetRegionByID",
      byIdCodecs,
      { header: pd.header(), regionId: 99n },
    );
    assert.equal(unknown.region, null, "an unknown id is no region and no error, as a PD leader");
    assert.equal(unknown.header?.error, null);

    const scan = await pd.call<pdpb.ScanRegionsRequest.$Properties, pdpb.ScanRegionsResponse>(
      "ScanRegions",
      { request: pdpb.ScanRegionsRequest, response: pdpb.ScanRegionsResponse },
      { header: pd.header(), startKey: utf8("a"), limit: 0 },
    );
    assert.deepEqual(scan.regionMetas.map((region) => region.id), [1n]);
    assert.deepEqual(scan.leaders.map((leader) => leader.id), [2n]);
    assert.deepEqual(scan.regions.map((region) => region.region?.id), [1n]);
  });
});

Deno.test("GetStore and GetAllStores describe store 1 at the store's addresses; an unknown store is an UNKNOWN error", async () => {
  await withPd(async (pd) => {
    const codecs = { request: pdpb.GetStoreRequest, response: pdpb.GetStoreResponse };
    const store = await pd.call<pdpb.GetStoreRequest.$Properties, pdpb.GetStoreResponse>(
      "GetStore",
      codecs,
      { header: pd.header(), storeId: 1n },
    );
    assert.equal(store.header?.error, null);
    assert.equal(store.store?.id, 1n);
    assert.equal(store.store?.address, pd.addr);
    assert.equal(store.store?.statusAddress, "127.0.0.1:20180");
    assert.equal(store.store?.state, metapb.StoreState.Up);
    assert.match(store.store?.version ?? "", /^\d+\.\d+\.\d+$/);

    const missing = await pd.call<pdpb.GetStoreRequest.$Properties, pdpb.GetStoreResponse>(
      "GetStore",
      codecs,
      { header: pd.header(), storeId: 5n },
    );
    assert.equal(missing.store, null);
    assert.equal(missing.header?.error?.type, pdpb.ErrorType.UNKNOWN);
    assert.equal(missing.header?.error?.message, "invalid store ID 5, not found");

    const all = await pd.call<pdpb.GetAllStoresRequest.$Properties, pdpb.GetAllStoresResponse>(
      "GetAllStores",
      { request: pdpb.GetAllStoresRequest, response: pdpb.GetAllStoresResponse },
      { header: pd.header(), excludeTombstoneStores: true },
    );
    assert.deepEqual(all.stores.map((s) => [s.id, s.address]), [[1n, pd.addr]]);
  });
});

Deno.test("IsBootstrapped is true, Bootstrap is refused as ALREADY_BOOTSTRAPPED, AllocID is monotonic", async () => {
  await withPd(async (pd) => {
    const boot = await pd.call<pdpb.IsBootstrappedRequest.$Properties, pdpb.IsBootstrappedResponse>(
      "IsBootstrapped",
      { request: pdpb.IsBootstrappedRequest, response: pdpb.IsBootstrappedResponse },
      { header: pd.header() },
    );
    assert.equal(boot.bootstrapped, true);
    const again = await pd.call<pdpb.BootstrapRequest.$Properties, pdpb.BootstrapResponse>(
      "Bootstrap",
      { request: pdpb.BootstrapRequest, response: pdpb.BootstrapResponse },
      { header: pd.header() },
    );
    assert.equal(again.header?.error?.type, pdpb.ErrorType.ALREADY_BOOTSTRAPPED);

    const codecs = { request: pdpb.AllocIDRequest, response: pdpb.AllocIDResponse };
    const alloc = (count: number) =>
      pd.call<pdpb.AllocIDRequest.$Properties, pdpb.AllocIDResponse>("AllocID", codecs, {
        header: pd.header(),
        count,
      });
    const a = await alloc(0);
    const b = await alloc(1);
    const c = await alloc(5);
    assert.ok(a.id > 2n, "never the standalone store's own ids (store 1, region 1, peer 2)");
    assert.equal(b.id, a.id + 1n);
    assert.equal(c.id, b.id + 5n, "a batch answers its last id");
    assert.deepEqual([a.count, b.count, c.count], [0, 0, 5], "count echoed for batches only");
  });
});

Deno.test("GC safe point: starts at 0, only moves forward, UpdateGCSafePoint answers the one in force", async () => {
  await withPd(async (pd) => {
    const get = async () =>
      (await pd.call<pdpb.GetGCSafePointRequest.$Properties, pdpb.GetGCSafePointResponse>(
        "GetGCSafePoint",
        { request: pdpb.GetGCSafePointRequest, response: pdpb.GetGCSafePointResponse },
        { header: pd.header() },
      )).safePoint;
    const update = async (safePoint: bigint) =>
      (await pd.call<pdpb.UpdateGCSafePointRequest.$Properties, pdpb.UpdateGCSafePointResponse>(
        "UpdateGCSafePoint",
        { request: pdpb.UpdateGCSafePointRequest, response: pdpb.UpdateGCSafePointResponse },
        { header: pd.header(), safePoint },
      )).newSafePoint;
    assert.equal(await get(), 0n);
    assert.equal(await update(1000n), 1000n);
    assert.equal(await update(400n), 1000n);
    assert.equal(await get(), 1000n);
  });
});

Deno.test("a malformed unary request is INVALID_ARGUMENT; an unserved method is UNIMPLEMENTED", async () => {
  await withPd(async (pd) => {
    await rejectsWith(
      pd.callBytes("GetRegion", new Uint8Array([0x0a, 0x05, 0x01])),
      grpc.status.INVALID_ARGUMENT,
      /malformed GetRegion request/,
    );
    await rejectsWith(
      pd.callBytes("SyncRegions", new Uint8Array(0)),
      grpc.status.UNIMPLEMENTED,
      /./,
    );
  });
});

Deno.test("restart over the same directory: same cluster id, TSO above the last served, ids and safe point kept", async () => {
  const dataDir = Deno.makeTempDirSync({ prefix: "basalt-pd-grpc-" });
  try {
    let nowMs = Date.now();
    const clock = { nowMs: () => nowMs };
    const before = await Harness.start(dataDir, clock);
    const tso = before.tso();
    const lastTs = tsOf(await tso.send({ header: before.header(), count: 10 }));
    tso.end();
    await tso.ended;
    const allocCodecs = { request: pdpb.AllocIDRequest, response: pdpb.AllocIDResponse };
    const lastId = (await before.call<pdpb.AllocIDRequest.$Properties, pdpb.AllocIDResponse>(
      "AllocID",
      allocCodecs,
      { header: before.header() },
    )).id;
    await before.call<pdpb.UpdateGCSafePointRequest.$Properties, pdpb.UpdateGCSafePointResponse>(
      "UpdateGCSafePoint",
      { request: pdpb.UpdateGCSafePointRequest, response: pdpb.UpdateGCSafePointResponse },
      { header: before.header(), safePoint: lastTs },
    );
    const clusterId = before.pd.clusterId;
    await before.stop();

    nowMs -= 10 * 60_000; // the clock is ten minutes behind at the restart
    const after = await Harness.start(dataDir, clock);
    try {
      assert.equal(after.pd.clusterId, clusterId);
      const stream = after.tso();
      const firstTs = tsOf(await stream.send({ header: { clusterId }, count: 1 }));
      stream.end();
      await stream.ended;
      assert.ok(firstTs > lastTs, `${firstTs} > ${lastTs}`);
      const nextId = (await after.call<pdpb.AllocIDRequest.$Properties, pdpb.AllocIDResponse>(
        "AllocID",
        allocCodecs,
        { header: { clusterId } },
      )).id;
      assert.ok(nextId > lastId);
      const safePoint = await after.call<
        pdpb.GetGCSafePointRequest.$Properties,
        pdpb.GetGCSafePointResponse
      >(
        "GetGCSafePoint",
        { request: pdpb.GetGCSafePointRequest, response: pdpb.GetGCSafePointResponse },
        { header: { clusterId } },
      );
      assert.equal(safePoint.safePoint, lastTs);
    } finally {
      await after.stop();
    }
  } finally {
    Deno.removeSync(dataDir, { recursive: true });
  }
});
