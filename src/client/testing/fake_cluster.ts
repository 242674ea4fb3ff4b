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
 * gRPC failures, lose the answer to a request the store applied (the stream is ended without
 * it, as when the connection drops after the write), and read the log of requests each store
 * served.
 *
 * It also answers the transactional commands (reads, two-phase commit with async commit and
 * 1PC, lock resolution; `fake_txn.ts`) over a separate small MVCC store, checking their keys
 * as a TiKV store does in API V1: a transactional key is in a region when its memcomparable
 * encoding is (region bounds are data keys), and a scan reads only its region's keys.
 *
 * Splits: `split`/`splitRegion` (or a client's SplitRegion request, raw or transactional keys)
 * cut a region at keys as TiKV's batch split does — the left part keeps the id, each other part
 * gets a new id, all parts get the version `old + number of keys`, the leader stays on its
 * store — so a request carrying the old epoch meets EpochNotMatch with the current regions.
 *
 * Not a model of TiKV's storage: no TTL expiry, one column family, checksums by FNV-1a.
 */
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { type errorpb, kvrpcpb, type metapb, pdpb, tikvpb } from "../../../proto/mod.ts";
import { encodeKey } from "../../codec/key.ts";
import { compareBytes } from "../../util/bytes.ts";
import { bytesMethod } from "../../util/grpc_bytes.ts";
import { composeTimestamp, type TimestampOracle } from "../tso.ts";
import { fromLatin1, latin1, newFakeTxnStore, runTxn, TXN_COMMANDS } from "./fake_txn.ts";

export type { FakeTxnStore } from "./fake_txn.ts";

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
  /** The region error it was answered with (its errorpb field, e.g. "epochNotMatch"), or null. */
  refusedWith: string | null;
  /** The decoded request, read by field name (e.g. `tryOnePc`). */
  // deno-lint-ignore no-explicit-any
  request: any;
}

/** An injected fault: a region error, a gRPC status, or no answer instead of the answer. */
export interface Fault {
  /** Which requests it hits. */
  cmd: string;
  /** How many more requests it hits. */
  times: number;
  regionError?: errorpb.Error.$Properties;
  /** Fail the unary call with this gRPC status code (e.g. 14, UNAVAILABLE). */
  grpcStatus?: number;
  /**
   * BatchCommands: run the request, then end the stream without answering its batch (the
   * client sees the stream ended after its request was written: outcome unknown).
   */
  loseAnswer?: boolean;
  /** Called after each request whose answer it lost was applied. */
  onAnswerLost?: () => void;
}

export const FAKE_CLUSTER_ID = 4242n;
const EMPTY = new Uint8Array(0);

/** A decoded request of any raw command (the fake reads fields by name). */
// deno-lint-ignore no-explicit-any
type AnyRequest = any;

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
  readonly txn = newFakeTxnStore();
  readonly regions = new Map<bigint, FakeRegion>();
  readonly served: ServedRequest[] = [];
  /** The PD methods answered, in order (e.g. "GetRegion"). */
  readonly pdServed: string[] = [];
  readonly faults: Fault[] = [];
  readonly addresses = new Map<bigint, string>();
  readonly #servers: grpc.Server[] = [];
  #nextRegionId = 100n;

  private constructor() {}

  /**
   * Starts `stores` stores with regions split at `splitKeys` (text, or any bytes: e.g. an
   * encoded transactional key), every leader on store 1. Store 1 serves PD unless `pd` is
   * false (then `pdAddress` answers UNIMPLEMENTED, as a store without PD does).
   */
  static async start(
    options: { stores: number; splitKeys: (string | Uint8Array)[]; pd?: boolean },
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
    for (let s = 1; s <= options.stores; s++) {
      await cluster.#startStore(BigInt(s), { pd: s === 1 && (options.pd ?? true) });
    }
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

  /**
   * Splits the region holding `splitKey` at it (text, or any bytes): the left half keeps the
   * id, both get a new version. Returns the right half.
   */
  split(splitKey: string | Uint8Array): FakeRegion {
    const key = typeof splitKey === "string" ? new TextEncoder().encode(splitKey) : splitKey;
    const parts = this.splitRegion(this.regionOf(key).id, [key]);
    return parts[1]!;
  }

  /**
   * Splits the region holding `key` at it unless it is already a region's start; returns
   * whether it split.
   */
  trySplit(key: Uint8Array): boolean {
    const region = this.regionOf(key);
    if (compareBytes(region.startKey, key) === 0) return false;
    this.splitRegion(region.id, [key]);
    return true;
  }

  /**
   * TiKV's batch split of region `regionId` at `keys` (sorted here; each inside the region and
   * not its start key): the parts in key order, the first keeping the id, all at version
   * `old + keys.length`, their leader where the region's was.
   */
  splitRegion(regionId: bigint, keys: readonly Uint8Array[]): FakeRegion[] {
    const region = this.regions.get(regionId);
    if (region === undefined) throw new Error(`fake cluster: no region ${regionId}`);
    const sorted = [...keys].sort(compareBytes);
    for (const [i, key] of sorted.entries()) {
      const inside = inRegion(region, key) && compareBytes(key, region.startKey) > 0;
      if (!inside || (i > 0 && compareBytes(sorted[i - 1]!, key) === 0)) {
        throw new Error(`fake cluster: cannot split region ${regionId} at ${key}`);
      }
    }
    const version = region.version + BigInt(sorted.length);
    const bounds = [region.startKey, ...sorted, region.endKey];
    const parts: FakeRegion[] = [];
    for (let i = 0; i + 1 < bounds.length; i++) {
      const id = i === 0 ? region.id : this.#nextRegionId++;
      const part = { ...region, id, startKey: bounds[i]!, endKey: bounds[i + 1]!, version };
      this.regions.set(id, part);
      parts.push(part);
    }
    return parts;
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

  async #startStore(storeId: bigint, options: { pd: boolean }): Promise<void> {
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
        let answerLost = false;
        const responses = batch.requests.map((request) => {
          const cmd = request.cmd!;
          const body = (request as unknown as Record<string, unknown>)[cmd];
          const fault = this.#takeFault(cmd);
          const answer = this.#answer(storeId, cmd, body, "batch", fault);
          if (fault?.loseAnswer) {
            answerLost = true;
            fault.onAnswerLost?.();
          }
          return { [cmd]: answer };
        });
        if (answerLost) {
          call.end(); // applied, and the connection went before the answer
          return;
        }
        call.write(Buffer.from(
          tikvpb.BatchCommandsResponse.encode({ responses, requestIds: batch.requestIds }).finish(),
        ));
      });
      call.on("end", () => call.end());
      call.on("error", () => {});
    };
    server.addService(definition, handlers);
    if (options.pd) this.#addPd(server);
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
    const keys: Uint8Array[] = request.keys ?? request.splitKeys ??
      request.pairs?.map((p: { key: Uint8Array }) => p.key) ??
      request.mutations?.map((m: { key: Uint8Array }) => m.key) ??
      [
        request.primaryKey ?? request.primaryLock ?? request.key ?? request.startKey ??
          request.ranges?.[0]?.startKey ?? EMPTY,
      ];
    const regionId = context.regionId ?? 0n;
    const served: ServedRequest = { storeId, cmd, regionId, keys, via, request, refusedWith: null };
    this.served.push(served);
    const answer = this.#check(storeId, { cmd, request, keys, regionId }, fault);
    const regionError = (answer as { regionError?: Record<string, unknown> }).regionError;
    if (regionError !== undefined) {
      served.refusedWith = Object.keys(regionError).find((field) => field !== "message") ??
        "message";
    }
    return answer;
  }

  /** The answer to a request: a region error, or what the command returns. */
  #check(
    storeId: bigint,
    on: { cmd: string; request: AnyRequest; keys: Uint8Array[]; regionId: bigint },
    fault?: Fault,
  ): object {
    const { cmd, request, keys, regionId } = on;
    const context = request.context ?? {};
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
      return runTxn(this.txn, cmd, {
        request,
        inRegion: (key) => inRegion(region, encodeKey(key)),
      });
    }
    if (cmd === "SplitRegion") return this.#splitByRequest(region, request, keys);
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

  /** SplitRegion: raw keys as they are, transactional keys by their encoding (API V1). */
  #splitByRequest(region: FakeRegion, request: AnyRequest, keys: Uint8Array[]): object {
    const splitKeys = request.isRawKv ? keys : keys.map(encodeKey);
    const outside = splitKeys.find((key) => !inRegion(region, key));
    if (outside !== undefined) return keyNotInRegion(region, outside);
    if (splitKeys.some((key) => compareBytes(key, region.startKey) === 0)) {
      return { regionError: { message: "invalid split key: the region's start key" } };
    }
    const parts = this.splitRegion(region.id, splitKeys);
    return { regions: parts.map((part) => this.regionProto(part)) };
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
        this.pdServed.push(name);
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
  SplitRegion: { request: k.SplitRegionRequest, response: k.SplitRegionResponse },
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

/**
 * Timestamps for tests against the fake cluster (which has no TSO): the wall clock's ms as the
 * physical part, strictly increasing, so lock TTLs expire in real time.
 */
export class FakeTso implements TimestampOracle {
  #last = 0n;

  getTimestamp(): Promise<bigint> {
    const now = composeTimestamp(Date.now());
    this.#last = now > this.#last ? now : this.#last + 1n;
    return Promise.resolve(this.#last);
  }

  close(): void {}
}
