/**
 * The `pdpb.PD` gRPC service over the pure core (`PlacementDriver`): the one implementation,
 * served by the PD process (`main.ts`) and by a standalone store for itself
 * (`src/server/pd/`). Answers follow PD's `server/grpc_service.go`:
 *
 * - Every response header carries the cluster id. A request whose header names another cluster
 *   fails with FAILED_PRECONDITION "mismatch cluster id, need X but got Y" — a gRPC status, as
 *   PD's `validateRequest` returns it — except GetMembers and GetClusterInfo, which clients call
 *   to learn the id.
 * - Expected failures (`PdError` values of the core) ride in the header's `error` with PD's
 *   `ErrorType` (`PD_ERROR_TYPES`): NOT_BOOTSTRAPPED, ALREADY_BOOTSTRAPPED, REGION_NOT_FOUND,
 *   STORE_TOMBSTONE, UNKNOWN for the rest. An unknown region in GetRegion and its kin is a
 *   response with no region and no error, as a PD leader answers it.
 * - Requests arrive as bytes and are decoded in the handler, so a malformed payload gets
 *   INVALID_ARGUMENT (a throwing deserializer would surface as INTERNAL); so does a message the
 *   core's values cannot hold (an enum number kvproto does not define).
 * - A request that wrote PD's state is answered after the write is durable (`deps.persist`).
 * - In a replicated PD only the leader answers; every other member refuses every method but
 *   GetMembers and GetClusterInfo with UNAVAILABLE "not leader: …" (PD's `ErrNotLeader`), and
 *   so does a leader that lost leadership before a request's writes committed.
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { metapb, pdpb } from "../../../proto/mod.ts";
import { isAssertionError } from "../../util/assert.ts";
import { bytesMethod } from "../../util/grpc_bytes.ts";
import { PdError } from "../errors.ts";
import type { RegionInfo } from "../types.ts";
import {
  MalformedRequest,
  operatorToProto,
  peerFromProto,
  peerToProto,
  regionFromProto,
  regionRoute,
  storeFromProto,
  storeStatsFromProto,
  storeStatsToProto,
  storeToProto,
} from "./convert.ts";
import {
  clusterMismatch,
  errorHeader,
  notLeaderStatus,
  notServingStatus,
  okHeader,
  type PdServiceDeps,
  persisted,
} from "./dependencies.ts";
import { serveHeartbeatStream } from "./heartbeat_stream.ts";
import { serveTsoStream } from "./tso_stream.ts";

interface Codec<T> {
  decode(bytes: Uint8Array): T;
}
interface Encoder<T> {
  encode(message: T): { finish(): Uint8Array };
}

type Header = pdpb.ResponseHeader.$Properties;

/** How one unary method decodes, answers and encodes. */
interface UnarySpec<Req, Res> {
  request: Codec<Req>;
  response: Encoder<Res>;
  /** Answers the request; a `PdError` becomes a response whose header carries it. */
  handle: (deps: PdServiceDeps, request: Req) => Res | PdError;
  /** GetMembers and GetClusterInfo are answered whatever cluster id the request names. */
  anyCluster?: boolean;
}

interface UnaryMethod {
  name: string;
  handler(deps: PdServiceDeps): grpc.handleUnaryCall<Buffer, Buffer>;
}

const textDecoder = new TextDecoder();
const I64_MAX = (1n << 63n) - 1n;

function unary<
  Req extends { header?: { clusterId?: bigint | null } | null },
  Res extends { header?: Header | null },
>(name: string, spec: UnarySpec<Req, Res>): UnaryMethod {
  return {
    name,
    handler: (deps) => (call, callback) => {
      answerUnary(deps, { name, spec, bytes: call.request }).then(
        (result) => {
          if (!(result instanceof Uint8Array)) return callback(result);
          callback(null, Buffer.from(result.buffer, result.byteOffset, result.byteLength));
        },
      );
    },
  };
}

async function answerUnary<Req extends { header?: { clusterId?: bigint | null } | null }, Res>(
  deps: PdServiceDeps,
  call: { name: string; spec: UnarySpec<Req, Res>; bytes: Uint8Array },
): Promise<Uint8Array | Partial<grpc.StatusObject>> {
  const { name, spec } = call;
  const count = (outcome: Parameters<NonNullable<PdServiceDeps["metrics"]>["request"]>[1]) =>
    deps.metrics?.request(name, outcome);
  let request: Req;
  try {
    request = spec.request.decode(call.bytes);
  } catch (error) {
    count("invalid_argument");
    const details = `malformed ${name} request: ${(error as Error).message}`;
    return { code: grpc.status.INVALID_ARGUMENT, details };
  }
  if (!spec.anyCluster) {
    // A replicated member that does not serve refuses before it reads anything of the core.
    const refused = notServingStatus(deps);
    if (refused !== null) {
      count("not_leader");
      return refused;
    }
    const clusterId = request.header?.clusterId ?? 0n;
    if (clusterId !== deps.driver.clusterId) {
      count("cluster_mismatch");
      return clusterMismatch(deps, clusterId);
    }
  }
  deps.refresh?.();
  let answer: Res | PdError;
  try {
    answer = spec.handle(deps, request);
  } catch (error) {
    if (isAssertionError(error)) throw error; // a bug ends the process, never an answer
    if (error instanceof MalformedRequest) {
      count("invalid_argument");
      return {
        code: grpc.status.INVALID_ARGUMENT,
        details: `malformed ${name} request: ${error.message}`,
      };
    }
    // PD answers storage failures (state that cannot be saved) with codes.Unknown.
    count("failed");
    deps.log.error("PD request failed", { rpc: name, error: String(error) });
    return { code: grpc.status.UNKNOWN, details: `${name}: ${String(error)}` };
  }
  const lost = await persisted(deps);
  if (lost !== null) {
    count("not_leader");
    return notLeaderStatus(lost);
  }
  if (answer instanceof PdError) {
    count("error_header");
    return spec.response.encode({ header: errorHeader(deps, answer) } as Res).finish();
  }
  count("ok");
  return spec.response.encode(answer).finish();
}

function regionResponse(
  deps: PdServiceDeps,
  info: RegionInfo | null | PdError,
): pdpb.GetRegionResponse.$Properties | PdError {
  if (info instanceof PdError) return info;
  if (info === null) return { header: okHeader(deps) };
  const route = regionRoute(info);
  return {
    header: okHeader(deps),
    region: route.region,
    leader: route.leader,
    downPeers: info.downPeers.map((down) => ({
      peer: peerToProto(down.peer),
      downSeconds: down.downSeconds,
    })),
    pendingPeers: info.pendingPeers.map(peerToProto),
  };
}

function required<T>(value: T | null | undefined, what: string): T {
  if (value == null) throw new MalformedRequest(`missing ${what}`);
  return value;
}

const METHODS: UnaryMethod[] = [
  unary("GetMembers", {
    request: pdpb.GetMembersRequest,
    response: pdpb.GetMembersResponse,
    anyCluster: true,
    handle: (deps) => {
      if (deps.members !== undefined) {
        const { members, leader } = deps.members();
        return { header: okHeader(deps), members, leader, etcdLeader: leader };
      }
      const me = deps.member();
      return { header: okHeader(deps), members: [me], leader: me, etcdLeader: me };
    },
  }),
  unary("GetClusterInfo", {
    request: pdpb.GetClusterInfoRequest,
    response: pdpb.GetClusterInfoResponse,
    anyCluster: true,
    handle: (deps) => ({ header: okHeader(deps), serviceModes: [pdpb.ServiceMode.PD_SVC_MODE] }),
  }),
  unary("IsBootstrapped", {
    request: pdpb.IsBootstrappedRequest,
    response: pdpb.IsBootstrappedResponse,
    handle: (deps) => ({ header: okHeader(deps), bootstrapped: deps.driver.isBootstrapped() }),
  }),
  unary("Bootstrap", {
    request: pdpb.BootstrapRequest,
    response: pdpb.BootstrapResponse,
    handle: (deps, request) => {
      const store = request.store == null ? null : storeFromProto(request.store);
      const region = request.region == null ? null : regionFromProto(request.region);
      const refused = deps.driver.bootstrap({ store, region });
      if (refused !== null) return refused;
      deps.log.info("cluster bootstrapped", { storeId: store?.id, regionId: region?.id });
      return { header: okHeader(deps) };
    },
  }),
  unary("AllocID", {
    request: pdpb.AllocIDRequest,
    response: pdpb.AllocIDResponse,
    handle: (deps, request) => {
      const id = deps.driver.allocId(request.count);
      if (id instanceof PdError) return id;
      // As PD: a count of 0 means 1, and `count` is echoed only for batches.
      return { header: okHeader(deps), id, count: request.count > 1 ? request.count : 0 };
    },
  }),
  unary("GetStore", {
    request: pdpb.GetStoreRequest,
    response: pdpb.GetStoreResponse,
    handle: (deps, request) => {
      const store = deps.driver.getStore(request.storeId);
      if (store instanceof PdError) return store;
      return {
        header: okHeader(deps),
        store: storeToProto(store.meta),
        stats: storeStatsToProto(store),
      };
    },
  }),
  unary("PutStore", {
    request: pdpb.PutStoreRequest,
    response: pdpb.PutStoreResponse,
    handle: (deps, request) => {
      const store = storeFromProto(required(request.store, "store"));
      return deps.driver.putStore(store) ?? { header: okHeader(deps) };
    },
  }),
  unary("GetAllStores", {
    request: pdpb.GetAllStoresRequest,
    response: pdpb.GetAllStoresResponse,
    handle: (deps, request) => {
      const stores = deps.driver.getAllStores({
        excludeTombstone: request.excludeTombstoneStores,
      });
      if (stores instanceof PdError) return stores;
      return { header: okHeader(deps), stores: stores.map((store) => storeToProto(store.meta)) };
    },
  }),
  unary("StoreHeartbeat", {
    request: pdpb.StoreHeartbeatRequest,
    response: pdpb.StoreHeartbeatResponse,
    handle: (deps, request) => {
      const stats = required(request.stats, "store stats");
      const answer = deps.driver.storeHeartbeat(
        stats.storeId ?? 0n,
        storeStatsFromProto(stats),
      );
      if (answer instanceof PdError) return answer;
      return { header: okHeader(deps), state: metapb.NodeState[answer.nodeState] };
    },
  }),
  unary("GetRegion", {
    request: pdpb.GetRegionRequest,
    response: pdpb.GetRegionResponse,
    handle: (deps, request) => regionResponse(deps, deps.driver.getRegion(request.regionKey)),
  }),
  unary("GetPrevRegion", {
    request: pdpb.GetRegionRequest,
    response: pdpb.GetRegionResponse,
    handle: (deps, request) => regionResponse(deps, deps.driver.getPrevRegion(request.regionKey)),
  }),
  unary("GetRegionByID", {
    request: pdpb.GetRegionByIDRequest,
    response: pdpb.GetRegionResponse,
    handle: (deps, request) => regionResponse(deps, deps.driver.getRegionById(request.regionId)),
  }),
  unary("ScanRegions", {
    request: pdpb.ScanRegionsRequest,
    response: pdpb.ScanRegionsResponse,
    handle: scanRegions,
  }),
  unary("AskBatchSplit", {
    request: pdpb.AskBatchSplitRequest,
    response: pdpb.AskBatchSplitResponse,
    handle: (deps, request) => {
      const region = regionFromProto(required(request.region, "region for split"));
      const ids = deps.driver.askBatchSplit({ region, splitCount: request.splitCount });
      if (ids instanceof PdError) return ids;
      return { header: okHeader(deps), ids };
    },
  }),
  unary("ReportBatchSplit", {
    request: pdpb.ReportBatchSplitRequest,
    response: pdpb.ReportBatchSplitResponse,
    handle: (deps, request) =>
      deps.driver.reportBatchSplit(request.regions.map(regionFromProto)) ??
        { header: okHeader(deps) },
  }),
  unary("ScatterRegion", {
    request: pdpb.ScatterRegionRequest,
    response: pdpb.ScatterRegionResponse,
    handle: (deps, request) => {
      const answer = deps.driver.scatterRegion({
        regionIds: request.regionsId.length > 0
          ? request.regionsId
          : request.regionId !== 0n
          ? [request.regionId]
          : [],
        region: request.region == null ? null : regionFromProto(request.region),
        leader: request.leader == null ? null : peerFromProto(request.leader),
      });
      if (answer instanceof PdError) return answer;
      return {
        header: okHeader(deps),
        finishedPercentage: BigInt(answer.finishedPercentage),
        failedRegionsId: answer.failedRegionIds,
      };
    },
  }),
  unary("GetGCSafePoint", {
    request: pdpb.GetGCSafePointRequest,
    response: pdpb.GetGCSafePointResponse,
    handle: (deps) => {
      const safePoint = deps.driver.getGcSafePoint();
      return safePoint instanceof PdError ? safePoint : { header: okHeader(deps), safePoint };
    },
  }),
  unary("UpdateGCSafePoint", {
    request: pdpb.UpdateGCSafePointRequest,
    response: pdpb.UpdateGCSafePointResponse,
    handle: updateGcSafePoint,
  }),
  unary("UpdateServiceGCSafePoint", {
    request: pdpb.UpdateServiceGCSafePointRequest,
    response: pdpb.UpdateServiceGCSafePointResponse,
    handle: (deps, request) => {
      const ttl = request.TTL;
      const ttlSec = ttl > BigInt(Number.MAX_SAFE_INTEGER)
        ? Number.MAX_SAFE_INTEGER
        : ttl < 0n
        ? -1
        : Number(ttl);
      const min = deps.driver.updateServiceGcSafePoint({
        serviceId: textDecoder.decode(request.serviceId),
        ttlSec,
        safePoint: request.safePoint,
      });
      if (min instanceof PdError) return min;
      return {
        header: okHeader(deps),
        serviceId: new TextEncoder().encode(min.serviceId),
        TTL: min.ttlSec === null ? I64_MAX : BigInt(min.ttlSec),
        minSafePoint: min.minSafePoint,
      };
    },
  }),
  unary("GetOperator", {
    request: pdpb.GetOperatorRequest,
    response: pdpb.GetOperatorResponse,
    handle: (deps, request) => {
      const op = deps.driver.getOperator(request.regionId);
      if (op instanceof PdError) return op;
      return { header: okHeader(deps), ...operatorToProto(op) };
    },
  }),
];

function scanRegions(
  deps: PdServiceDeps,
  request: pdpb.ScanRegionsRequest,
): pdpb.ScanRegionsResponse.$Properties | PdError {
  const found = deps.driver.scanRegions({
    startKey: request.startKey,
    endKey: request.endKey,
    limit: request.limit,
  });
  if (found instanceof PdError) return found;
  const routes = found.map(regionRoute);
  // Old clients read the parallel lists, new ones `regions`; PD fills both, and an absent
  // leader as an empty peer.
  const leaders = routes.map((route) => route.leader ?? {});
  return {
    header: okHeader(deps),
    regionMetas: routes.map((route) => route.region),
    leaders,
    regions: routes.map((route, i) => ({ region: route.region, leader: leaders[i] })),
  };
}

function updateGcSafePoint(
  deps: PdServiceDeps,
  request: pdpb.UpdateGCSafePointRequest,
): pdpb.UpdateGCSafePointResponse.$Properties | PdError {
  const old = deps.driver.getGcSafePoint();
  const newSafePoint = deps.driver.updateGcSafePoint(request.safePoint);
  if (old instanceof PdError) return old;
  if (newSafePoint instanceof PdError) return newSafePoint;
  if (newSafePoint > old) {
    deps.log.info("updated gc safe point", { safePoint: newSafePoint });
  } else if (request.safePoint < old) {
    deps.log.warn("trying to update gc safe point backwards", {
      oldSafePoint: old,
      newSafePoint: request.safePoint,
    });
  }
  return { header: okHeader(deps), newSafePoint };
}

function method(name: string, stream: boolean): grpc.MethodDefinition<Buffer, Buffer> {
  return bytesMethod(`/pdpb.PD/${name}`, stream);
}

/** Every `pdpb.PD` method this service answers. */
export const PD_METHODS: readonly string[] = [
  ...METHODS.map((unaryMethod) => unaryMethod.name),
  "Tso",
  "RegionHeartbeat",
];

const STREAMING = new Set(["Tso", "RegionHeartbeat"]);

/**
 * The `pdpb.PD` service definition: paths `/pdpb.PD/<Method>`, bytes in and out; `methods`
 * (default all of `PD_METHODS`) limits it, the others being left to grpc-js's UNIMPLEMENTED.
 */
export function pdServiceDefinition(
  methods: readonly string[] = PD_METHODS,
): grpc.ServiceDefinition {
  const definition: Record<string, grpc.MethodDefinition<Buffer, Buffer>> = {};
  for (const name of methods) {
    if (!PD_METHODS.includes(name)) throw new RangeError(`no pdpb.PD method ${name}`);
    definition[name] = method(name, STREAMING.has(name));
  }
  return definition;
}

/**
 * The handlers of `pdServiceDefinition()`.
 *
 * @example
 * ```ts
 * server.addService(pdServiceDefinition(), pdServiceHandlers({ driver, member, log }));
 * ```
 */
export function pdServiceHandlers(
  deps: PdServiceDeps,
  methods: readonly string[] = PD_METHODS,
): grpc.UntypedServiceImplementation {
  const all: grpc.UntypedServiceImplementation = {};
  for (const unaryMethod of METHODS) all[unaryMethod.name] = unaryMethod.handler(deps);
  all.Tso = (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
    serveTsoStream(call, deps);
  };
  all.RegionHeartbeat = (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
    serveHeartbeatStream(call, deps);
  };
  return Object.fromEntries(methods.map((name) => [name, all[name]!]));
}
