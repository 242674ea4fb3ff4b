/**
 * A fake multi-region, multi-store cluster for client tests, in-process: each store is a
 * grpc-js server answering the raw commands of `tikvpb.Tikv` (unary and BatchCommands) over
 * one shared in-memory key space, and the first store also answers `pdpb.PD` routing calls.
 *
 * It checks every request's `Context` as a TiKV store does — unknown region → RegionNotFound,
 * stale epoch → EpochNotMatch with the current regions, a store that does not hold the leader
 * → NotLeader naming the leader, a key (or range) outside the region → KeyNotInRegion — so the
 * client's region cache, regrouping and retries can be tested against splits and leader moves
 * that the real standalone server cannot make yet. Tests can also inject region errors and
 * gRPC failures, and read the log of requests each store served.
 *
 * It also answers the transactional reads and two-phase commit (KvGet, KvBatchGet, KvScan,
 * KvPrewrite, KvCommit, KvBatchRollback) over a separate small MVCC store, checking their keys
 * as a TiKV store does in API V1: a transactional key is in a region when its memcomparable
 * encoding is (region bounds are data keys), and a scan reads only its region's keys.
 *
 * Not a model of TiKV's storage: no TTL expiry, one column family, checksums by FNV-1a, no
 * lock resolution commands, no conflict checks beyond "locked" and "newer write".
 */
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { type errorpb, kvrpcpb, type metapb, pdpb, tikvpb } from "../../../proto/mod.ts";
import { encodeKey } from "../../codec/key.ts";
import { compareBytes } from "../../util/bytes.ts";
import { bytesMethod } from "../../util/grpc_bytes.ts";

/** A region of the fake cluster. */
export interface FakeRegion {
  id: bigint;
  startKey: Uint8Array;
  endKey: Uint8Array;
  version: bigint;
  /** Store holding the leader; every store holds a peer with id `id * 100 + storeId`. */
  leaderStoreId: bigint;
}

/** One request a store answered. */
export interface ServedRequest {
  storeId: bigint;
  cmd: string;
  regionId: bigint;
  /** The keys of the request (batch commands), or its start key. */
  keys: Uint8Array[];
  via: "batch" | "unary";
}

/** An injected fault: a region error or a gRPC status instead of the answer. */
export interface Fault {
  /** Which requests it hits. */
  cmd: string;
  /** How many more requests it hits. */
  times: number;
  regionError?: errorpb.Error.$Properties;
  /** Fail the unary call with this gRPC status code (e.g. 14, UNAVAILABLE). */
  grpcStatus?: number;
}

export const FAKE_CLUSTER_ID = 4242n;
const EMPTY = new Uint8Array(0);

/** A decoded request of any raw command (the fake reads fields by name). */
// deno-lint-ignore no-explicit-any
type AnyRequest = any;

const latin1 = (bytes: Uint8Array) => String.fromCharCode(...bytes);
const fromLatin1 = (text: string) => Uint8Array.from(text, (c) => c.charCodeAt(0));
/** FNV-1a 64 over key then value: the fake's per-pair checksum, XOR-ed across pairs. */
export function fakePairChecksum(key: Uint8Array, value: Uint8Array): bigint {
  let hash = 0xcbf29ce484222325n;
  for (const byte of [...key, 0xff, ...value]) {
    hash = BigInt.asUintN(64, (hash ^ BigInt(byte)) * 0x100000001b3n);
  }
  return hash;
}

function inRegion(region: FakeRegion, key: Uint8Array): boolean {
  return compareBytes(key, region.startKey) >= 0 &&
    (region.endKey.length === 0 || compareBytes(key, region.endKey) < 0);
}

/** The fake cluster. Create with `FakeCluster.start`, end with `stop`. */
export class FakeCluster {
  readonly data = new Map<string, { value: Uint8Array; ttl: bigint }>();
  /** The transactional store: versions and locks by user key (latin1). */
  readonly txn: FakeTxnStore = { versions: new Map(), locks: new Map() };
  readonly regions = new Map<bigint, FakeRegion>();
  readonly served: ServedRequest[] = [];
  readonly faults: Fault[] = [];
  readonly addresses = new Map<bigint, string>();
  readonly #servers: grpc.Server[] = [];
  #nextRegionId = 100n;

  private constructor() {}

  /**
   * Starts `stores` stores with regions split at `splitKeys` (text, or any bytes: e.g. an
   * encoded transactional key), every leader on store 1.
   */
  static async start(
    options: { stores: number; splitKeys: (string | Uint8Array)[] },
  ): Promise<FakeCluster> {
    const cluster = new FakeCluster();
    const bytes = (key: string | Uint8Array) =>
      typeof key === "string" ? new TextEncoder().encode(key) : key;
    const bounds = [EMPTY, ...options.splitKeys.map(bytes), EMPTY];
    for (let i = 0; i + 1 < bounds.length; i++) {
      const id = BigInt(i + 1);
      cluster.regions.set(id, {
        id,
        startKey: bounds[i]!,
        endKey: bounds[i + 1]!,
        version: 1n,
        leaderStoreId: 1n,
      });
    }
    for (let s = 1; s <= options.stores; s++) await cluster.#startStore(BigInt(s));
    return cluster;
  }

  /** The PD endpoint (store 1's address). */
  get pdAddress(): string {
    return this.addresses.get(1n)!;
  }

  /** The region holding `key`. */
  regionOf(key: Uint8Array): FakeRegion {
    return [...this.regions.values()].find((region) => inRegion(region, key))!;
  }

  /** Splits the region holding `splitKey` at it: the left half keeps the id, both get a new version. */
  split(splitKey: string): FakeRegion {
    const key = new TextEncoder().encode(splitKey);
    const left = this.regionOf(key);
    const version = left.version + 1n;
    const right: FakeRegion = { ...left, id: this.#nextRegionId++, startKey: key, version };
    this.regions.set(left.id, { ...left, endKey: key, version });
    this.regions.set(right.id, right);
    return right;
  }

  /** Moves the leader of `regionId` to `storeId`. */
  transferLeader(regionId: bigint, storeId: bigint): void {
    this.regions.get(regionId)!.leaderStoreId = storeId;
  }

  /** Keys stored, in order, as text. */
  keys(): string[] {
    return [...this.data.keys()].sort().map((key) => new TextDecoder().decode(fromLatin1(key)));
  }

  async stop(): Promise<void> {
    await Promise.all(this.#servers.map((server) =>
      new Promise<void>((resolve) => {
        server.forceShutdown();
        resolve();
      })
    ));
  }

  regionProto(region: FakeRegion): metapb.Region.$Properties {
    return {
      id: region.id,
      startKey: region.startKey,
      endKey: region.endKey,
      regionEpoch: { confVer: 1n, version: region.version },
      peers: [...this.addresses.keys()].map((storeId) => ({
        id: region.id * 100n + storeId,
        storeId,
      })),
    };
  }

  #leaderPeer(region: FakeRegion): metapb.Peer.$Properties {
    return { id: region.id * 100n + region.leaderStoreId, storeId: region.leaderStoreId };
  }

  async #startStore(storeId: bigint): Promise<void> {
    const server = new grpc.Server();
    const definition: Record<string, grpc.MethodDefinition<Buffer, Buffer>> = {};
    const handlers: grpc.UntypedServiceImplementation = {};
    for (const [name, codecs] of Object.entries(RAW_UNARY)) {
      definition[name] = bytesMethod(`/tikvpb.Tikv/${name}`);
      handlers[name] = (
        call: grpc.ServerUnaryCall<Buffer, Buffer>,
        callback: grpc.sendUnaryData<Buffer>,
      ) => {
        const fault = this.#takeFault(name);
        if (fault?.grpcStatus !== undefined) {
          return callback({ code: fault.grpcStatus, details: "injected failure" });
        }
        const request = codecs.request.decode(call.request);
        const response = this.#answer(storeId, name, request, "unary", fault);
        callback(null, Buffer.from(codecs.response.encode(response as never).finish()));
      };
    }
    definition.BatchCommands = bytesMethod("/tikvpb.Tikv/BatchCommands", true);
    handlers.BatchCommands = (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      call.on("data", (bytes: Buffer) => {
        const batch = tikvpb.BatchCommandsRequest.decode(bytes);
        const responses = batch.requests.map((request) => {
          const cmd = request.cmd!;
          const body = (request as unknown as Record<string, unknown>)[cmd];
          const fault = this.#takeFault(cmd);
          return { [cmd]: this.#answer(storeId, cmd, body, "batch", fault) };
        });
        call.write(Buffer.from(
          tikvpb.BatchCommandsResponse.encode({ responses, requestIds: batch.requestIds }).finish(),
        ));
      });
      call.on("end", () => call.end());
      call.on("error", () => {});
    };
    server.addService(definition, handlers);
    if (storeId === 1n) this.#addPd(server);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(
        "127.0.0.1:0",
        grpc.ServerCredentials.createInsecure(),
        (error, bound) => error ? reject(error) : resolve(bound),
      )
    );
    this.addresses.set(storeId, `127.0.0.1:${port}`);
    this.#servers.push(server);
  }

  #takeFault(cmd: string): Fault | undefined {
    const fault = this.faults.find((f) => f.cmd === cmd && f.times > 0);
    if (fault !== undefined) fault.times--;
    return fault;
  }

  /** Checks the context; answers with a region error or runs the command. */
  #answer(
    storeId: bigint,
    cmd: string,
    request: AnyRequest,
    via: "batch" | "unary",
    fault?: Fault,
  ): object {
    const context = request.context ?? {};
    const keys: Uint8Array[] = request.keys ??
      request.pairs?.map((p: { key: Uint8Array }) => p.key) ??
      request.mutations?.map((m: { key: Uint8Array }) => m.key) ??
      [request.key ?? request.startKey ?? request.ranges?.[0]?.startKey ?? EMPTY];
    const regionId = context.regionId ?? 0n;
    this.served.push({ storeId, cmd, regionId, keys, via });
    if (fault?.regionError !== undefined) return { regionError: fault.regionError };
    const region = this.regions.get(regionId);
    if (region === undefined) {
      return { regionError: { message: "region not found", regionNotFound: { regionId } } };
    }
    if ((context.regionEpoch?.version ?? 0n) !== region.version) {
      const current = [...this.regions.values()].map((r) => this.regionProto(r));
      return {
        regionError: { message: "epoch not match", epochNotMatch: { currentRegions: current } },
      };
    }
    if (region.leaderStoreId !== storeId) {
      return {
        regionError: {
          message: "not leader",
          notLeader: { regionId, leader: this.#leaderPeer(region) },
        },
      };
    }
    if (TXN_COMMANDS.has(cmd)) {
      // API V1: a transactional key is checked as its encoding; a scan checks its start only
      // and reads the region's part of its range, as the real store's snapshot is clamped.
      const checked = cmd === "Scan" ? [request.startKey ?? EMPTY] : keys;
      const outside = checked.map(encodeKey).find((key) => !inRegion(region, key));
      if (outside !== undefined) return keyNotInRegion(region, outside);
      return runTxn(this.txn, cmd, { request, region });
    }
    const outside = this.#outsideRegion(region, cmd, request, keys);
    if (outside !== null) {
      return {
        regionError: {
          message: "key not in region",
          keyNotInRegion: {
            key: outside,
            regionId,
            startKey: region.startKey,
            endKey: region.endKey,
          },
        },
      };
    }
    return runRaw(this.data, cmd, request);
  }

  #outsideRegion(
    region: FakeRegion,
    cmd: string,
    request: AnyRequest,
    keys: Uint8Array[],
  ): Uint8Array | null {
    if (cmd === "RawScan" && request.reverse) {
      // [endKey, startKey) must lie in the region.
      const upper: Uint8Array = request.startKey;
      const lower: Uint8Array = request.endKey;
      if (compareBytes(lower, region.startKey) < 0) return lower;
      if (
        region.endKey.length > 0 && (upper.length === 0 || compareBytes(upper, region.endKey) > 0)
      ) {
        return upper;
      }
      return null;
    }
    for (const key of keys) if (!inRegion(region, key)) return key;
    const end: Uint8Array | undefined = request.endKey ?? request.ranges?.[0]?.endKey;
    if (end !== undefined && region.endKey.length > 0) {
      if (end.length === 0 || compareBytes(end, region.endKey) > 0) return end;
    }
    return null;
  }

  #addPd(server: grpc.Server): void {
    const routes = () =>
      [...this.regions.values()].sort((a, b) => compareBytes(a.startKey, b.startKey));
    const routed = (region: FakeRegion | undefined) =>
      region === undefined
        ? {}
        : { region: this.regionProto(region), leader: this.#leaderPeer(region) };
    const header = { clusterId: FAKE_CLUSTER_ID };
    const pdMethods: Record<
      string,
      [
        { decode(b: Uint8Array): unknown },
        { encode(m: never): { finish(): Uint8Array } },
        (request: never) => object,
      ]
    > = {
      GetMembers: [pdpb.GetMembersRequest, pdpb.GetMembersResponse, () => {
        const me = { name: "fake", memberId: 1n, clientUrls: [`http://${this.pdAddress}`] };
        return { header, members: [me], leader: me };
      }],
      GetRegion: [pdpb.GetRegionRequest, pdpb.GetRegionResponse, (r: pdpb.GetRegionRequest) => ({
        header,
        ...routed(routes().find((region) => inRegion(region, r.regionKey))),
      })],
      GetPrevRegion: [pdpb.GetRegionRequest, pdpb.GetRegionResponse, (r: pdpb.GetRegionRequest) => {
        const list = routes();
        const index = list.findIndex((region) => inRegion(region, r.regionKey));
        return { header, ...routed(index > 0 ? list[index - 1] : undefined) };
      }],
      GetRegionByID: [
        pdpb.GetRegionByIDRequest,
        pdpb.GetRegionResponse,
        (r: pdpb.GetRegionByIDRequest) => ({
          header,
          ...routed(this.regions.get(r.regionId)),
        }),
      ],
      ScanRegions: [
        pdpb.ScanRegionsRequest,
        pdpb.ScanRegionsResponse,
        (r: pdpb.ScanRegionsRequest) => {
          const found = routes().filter((region) =>
            (region.endKey.length === 0 || compareBytes(region.endKey, r.startKey) > 0) &&
            (r.endKey.length === 0 || compareBytes(region.startKey, r.endKey) < 0)
          ).slice(0, r.limit > 0 ? r.limit : undefined);
          return { header, regions: found.map((region) => routed(region)) };
        },
      ],
      GetStore: [pdpb.GetStoreRequest, pdpb.GetStoreResponse, (r: pdpb.GetStoreRequest) => {
        const address = this.addresses.get(r.storeId);
        if (address === undefined) {
          return {
            header: { ...header, error: { type: pdpb.ErrorType.UNKNOWN, message: "no store" } },
          };
        }
        return { header, store: { id: r.storeId, address } };
      }],
    };
    const definition: Record<string, grpc.MethodDefinition<Buffer, Buffer>> = {};
    const handlers: grpc.UntypedServiceImplementation = {};
    for (const [name, [requestCodec, responseCodec, handle]] of Object.entries(pdMethods)) {
      definition[name] = bytesMethod(`/pdpb.PD/${name}`);
      handlers[name] = (
        call: grpc.ServerUnaryCall<Buffer, Buffer>,
        callback: grpc.sendUnaryData<Buffer>,
      ) => {
        const request = requestCodec.decode(call.request) as { header?: { clusterId?: bigint } };
        if (name !== "GetMembers" && request.header?.clusterId !== FAKE_CLUSTER_ID) {
          return callback({
            code: grpc.status.FAILED_PRECONDITION,
            details: "mismatch cluster id",
          });
        }
        const response = handle(request as never);
        callback(null, Buffer.from(responseCodec.encode(response as never).finish()));
      };
    }
    server.addService(definition, handlers);
  }
}

function keyNotInRegion(region: FakeRegion, key: Uint8Array): object {
  return {
    regionError: {
      message: "key not in region",
      keyNotInRegion: {
        key,
        regionId: region.id,
        startKey: region.startKey,
        endKey: region.endKey,
      },
    },
  };
}

/** One committed version of a transactional key (a null value is a delete). */
interface FakeVersion {
  startTs: bigint;
  commitTs: bigint;
  value: Uint8Array | null;
}

/** A prewrite lock of a transactional key. */
interface FakeLock {
  primary: Uint8Array;
  startTs: bigint;
  ttl: bigint;
  op: kvrpcpb.Op;
  value: Uint8Array;
}

/** The fake's transactional data, by user key as latin1 text. */
export interface FakeTxnStore {
  versions: Map<string, FakeVersion[]>;
  locks: Map<string, FakeLock>;
}

/** The transactional commands the fake answers (BatchCommands names). */
const TXN_COMMANDS = new Set(["Get", "BatchGet", "Scan", "Prewrite", "Commit", "BatchRollback"]);

/** A read at `version`: the locked error, or the newest value committed at or below it. */
function readAt(
  store: FakeTxnStore,
  key: string,
  version: bigint,
): { error: object } | { value: Uint8Array | null } {
  const lock = store.locks.get(key);
  if (lock !== undefined && lock.startTs <= version && lock.op !== kvrpcpb.Op.Lock) {
    return {
      error: {
        locked: {
          primaryLock: lock.primary,
          lockVersion: lock.startTs,
          key: fromLatin1(key),
          lockTtl: lock.ttl,
          lockType: lock.op,
        },
      },
    };
  }
  const visible = (store.versions.get(key) ?? []).filter((v) => v.commitTs <= version);
  const newest = visible.sort((a, b) => Number(b.commitTs - a.commitTs))[0];
  return { value: newest?.value ?? null };
}

/** Runs a transactional command on the fake's MVCC store (the region check has passed). */
function runTxn(
  store: FakeTxnStore,
  cmd: string,
  on: { request: AnyRequest; region: FakeRegion },
): object {
  const r = on.request;
  switch (cmd) {
    case "Get": {
      const read = readAt(store, latin1(r.key), r.version);
      if ("error" in read) return read;
      return read.value === null ? { notFound: true } : { value: read.value };
    }
    case "BatchGet": {
      const pairs = [];
      for (const key of r.keys as Uint8Array[]) {
        const read = readAt(store, latin1(key), r.version);
        if ("error" in read) pairs.push({ key, error: read.error });
        else if (read.value !== null) pairs.push({ key, value: read.value });
      }
      return { pairs };
    }
    case "Scan": {
      const low = latin1(r.startKey);
      const high = latin1(r.endKey);
      const keys = [...new Set([...store.versions.keys(), ...store.locks.keys()])]
        .filter((key) => key >= low && (r.endKey.length === 0 || key < high))
        .filter((key) => inRegion(on.region, encodeKey(fromLatin1(key))))
        .sort();
      const pairs = [];
      for (const key of keys) {
        if (pairs.length >= r.limit) break;
        const read = readAt(store, key, r.version);
        if ("error" in read) pairs.push({ key: fromLatin1(key), error: read.error });
        else if (read.value !== null) {
          pairs.push({ key: fromLatin1(key), value: r.keyOnly ? EMPTY : read.value });
        }
      }
      return { pairs };
    }
    case "Prewrite": {
      const errors = [];
      for (const mutation of r.mutations as kvrpcpb.Mutation[]) {
        const key = latin1(mutation.key);
        const lock = store.locks.get(key);
        if (lock !== undefined && lock.startTs !== r.startVersion) {
          errors.push((readAt(store, key, lock.startTs) as { error: object }).error);
          continue;
        }
        const newer = (store.versions.get(key) ?? []).find((v) => v.commitTs >= r.startVersion);
        if (newer !== undefined) {
          errors.push({
            conflict: { startTs: r.startVersion, conflictTs: newer.startTs, key: mutation.key },
          });
          continue;
        }
        store.locks.set(key, {
          primary: r.primaryLock,
          startTs: r.startVersion,
          ttl: r.lockTtl,
          op: mutation.op,
          value: mutation.value,
        });
      }
      return { errors };
    }
    case "Commit": {
      for (const keyBytes of r.keys as Uint8Array[]) {
        const key = latin1(keyBytes);
        const lock = store.locks.get(key);
        if (lock === undefined || lock.startTs !== r.startVersion) {
          const done = (store.versions.get(key) ?? []).some((v) => v.startTs === r.startVersion);
          if (done) continue;
          return { error: { txnLockNotFound: { key: keyBytes } } };
        }
        store.locks.delete(key);
        if (lock.op === kvrpcpb.Op.Lock) continue;
        const value = lock.op === kvrpcpb.Op.Del ? null : lock.value;
        const versions = store.versions.get(key) ?? [];
        versions.push({ startTs: lock.startTs, commitTs: r.commitVersion, value });
        store.versions.set(key, versions);
      }
      return {};
    }
    case "BatchRollback": {
      for (const keyBytes of r.keys as Uint8Array[]) {
        const key = latin1(keyBytes);
        if (store.locks.get(key)?.startTs === r.startVersion) store.locks.delete(key);
      }
      return {};
    }
  }
  return { regionError: { message: `${cmd} is not served by the fake` } };
}

const k = kvrpcpb;
const RAW_UNARY: Record<
  string,
  {
    request: { decode(b: Uint8Array): unknown };
    response: { encode(m: never): { finish(): Uint8Array } };
  }
> = {
  RawGet: { request: k.RawGetRequest, response: k.RawGetResponse },
  RawBatchGet: { request: k.RawBatchGetRequest, response: k.RawBatchGetResponse },
  RawPut: { request: k.RawPutRequest, response: k.RawPutResponse },
  RawBatchPut: { request: k.RawBatchPutRequest, response: k.RawBatchPutResponse },
  RawDelete: { request: k.RawDeleteRequest, response: k.RawDeleteResponse },
  RawBatchDelete: { request: k.RawBatchDeleteRequest, response: k.RawBatchDeleteResponse },
  RawScan: { request: k.RawScanRequest, response: k.RawScanResponse },
  RawDeleteRange: { request: k.RawDeleteRangeRequest, response: k.RawDeleteRangeResponse },
  RawGetKeyTTL: { request: k.RawGetKeyTTLRequest, response: k.RawGetKeyTTLResponse },
  RawCompareAndSwap: { request: k.RawCASRequest, response: k.RawCASResponse },
  RawChecksum: { request: k.RawChecksumRequest, response: k.RawChecksumResponse },
};

type Data = Map<string, { value: Uint8Array; ttl: bigint }>;

function sortedKeysIn(data: Data, lower: Uint8Array, upper: Uint8Array): string[] {
  const low = latin1(lower);
  const high = latin1(upper);
  return [...data.keys()].filter((key) => key >= low && (upper.length === 0 || key < high)).sort();
}

/** Runs a raw command on the fake's data (the region check has passed). */
function runRaw(data: Data, cmd: string, r: AnyRequest): object {
  const pair = (key: string) => ({ key: fromLatin1(key), value: data.get(key)!.value });
  switch (cmd) {
    case "RawGet": {
      const entry = data.get(latin1(r.key));
      return entry === undefined ? { notFound: true } : { value: entry.value };
    }
    case "RawBatchGet":
      return { pairs: r.keys.map(latin1).filter((key: string) => data.has(key)).map(pair) };
    case "RawPut":
      data.set(latin1(r.key), { value: r.value, ttl: r.ttl });
      return {};
    case "RawBatchPut":
      r.pairs.forEach((p: kvrpcpb.KvPair, i: number) =>
        data.set(latin1(p.key), { value: p.value, ttl: r.ttls[i] ?? 0n })
      );
      return {};
    case "RawDelete":
      data.delete(latin1(r.key));
      return {};
    case "RawBatchDelete":
      for (const key of r.keys) data.delete(latin1(key));
      return {};
    case "RawDeleteRange":
      for (const key of sortedKeysIn(data, r.startKey, r.endKey)) data.delete(key);
      return {};
    case "RawScan": {
      const keys = r.reverse
        ? sortedKeysIn(data, r.endKey, r.startKey).reverse()
        : sortedKeysIn(data, r.startKey, r.endKey);
      return {
        kvs: keys.slice(0, r.limit).map((key) => r.keyOnly ? { key: fromLatin1(key) } : pair(key)),
      };
    }
    case "RawGetKeyTTL": {
      const entry = data.get(latin1(r.key));
      return entry === undefined ? { notFound: true } : { ttl: entry.ttl };
    }
    case "RawCompareAndSwap": {
      const entry = data.get(latin1(r.key));
      const succeed = r.previousNotExist
        ? entry === undefined
        : entry !== undefined && compareBytes(entry.value, r.previousValue) === 0;
      if (succeed) {
        if (r.delete) data.delete(latin1(r.key));
        else data.set(latin1(r.key), { value: r.value, ttl: r.ttl });
      }
      return {
        succeed,
        previousNotExist: entry === undefined,
        previousValue: entry?.value ?? EMPTY,
      };
    }
    case "RawChecksum": {
      let checksum = 0n;
      let totalKvs = 0n;
      let totalBytes = 0n;
      for (const range of r.ranges) {
        for (const key of sortedKeysIn(data, range.startKey, range.endKey)) {
          const { value } = data.get(key)!;
          checksum ^= fakePairChecksum(fromLatin1(key), value);
          totalKvs++;
          totalBytes += BigInt(key.length + value.length);
        }
      }
      return { checksum, totalKvs, totalBytes };
    }
  }
  return { regionError: { message: `${cmd} is not served by the fake` } };
}
