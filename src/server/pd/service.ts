/**
 * The `pdpb.PD` gRPC service a TiKV client calls before anything else (members, cluster id,
 * TSO, region and store routing, GC safe point), answered by the store itself when it runs
 * standalone. Answers follow PD's `server/grpc_service.go`:
 *
 * - Every response header carries the cluster id. A request whose header names another cluster
 *   fails with FAILED_PRECONDITION "mismatch cluster id, need X but got Y" — a gRPC status, as
 *   PD's `validateRequest` returns it — except GetMembers and GetClusterInfo, which clients call
 *   to learn the id.
 * - Expected failures ride in the header's `error` (an unknown store: UNKNOWN "invalid store ID
 *   n, not found"; Bootstrap: ALREADY_BOOTSTRAPPED); an unknown region is a response with no
 *   region and no error, as a PD leader answers it.
 * - Requests arrive as bytes and are decoded in the handler, so a malformed payload gets
 *   INVALID_ARGUMENT (a throwing deserializer would surface as INTERNAL).
 *
 * Methods not listed (PutStore, StoreHeartbeat, RegionHeartbeat, AskBatchSplit, …) get
 * grpc-js's UNIMPLEMENTED: a standalone store has no other store or region to report.
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { bytesMethod } from "../../util/grpc_bytes.ts";
import { metapb, pdpb } from "../../../proto/mod.ts";
import { PD_ID_ALLOC_MAX_COUNT, PD_SCAN_REGIONS_MAX_LIMIT } from "./constants.ts";
import { clusterMismatch, errorHeader, okHeader, type PdDependencies } from "./dependencies.ts";
import { prevRegion, regionById, regionByKey, scanRegions } from "./region_lookup.ts";
import { serveTsoStream } from "./tso_stream.ts";
import type { PdView, RegionRoute } from "./view.ts";

interface UnaryMethod {
  name: string;
  /** GetMembers and GetClusterInfo are answered whatever cluster id the request names. */
  anyCluster: boolean;
  /** Decodes `bytes` (throwing on malformed input) into the cluster id named and an answer. */
  decode(deps: PdDependencies, bytes: Uint8Array): { clusterId: bigint; answer: () => Uint8Array };
}

interface Codec<T> {
  decode(bytes: Uint8Array): T;
}
interface Encoder<T> {
  encode(message: T): { finish(): Uint8Array };
}

/** How one unary method decodes, answers and encodes. */
interface UnarySpec<Req, Res> {
  request: Codec<Req>;
  response: Encoder<Res>;
  handle: (deps: PdDependencies, request: Req) => Res;
  anyCluster?: boolean;
}

function unary<Req extends { header?: { clusterId?: bigint | null } | null }, Res>(
  name: string,
  spec: UnarySpec<Req, Res>,
): UnaryMethod {
  return {
    name,
    anyCluster: spec.anyCluster ?? false,
    decode(deps, bytes) {
      const request = spec.request.decode(bytes);
      return {
        clusterId: request.header?.clusterId ?? 0n,
        answer: () => spec.response.encode(spec.handle(deps, request)).finish(),
      };
    },
  };
}

function member(deps: PdDependencies, view: PdView): pdpb.Member.$Properties {
  return {
    name: deps.pd.memberName,
    memberId: deps.pd.memberId,
    clientUrls: view.clientUrls,
    binaryVersion: view.version,
  };
}

function regionResponse(
  deps: PdDependencies,
  route: RegionRoute | null,
): pdpb.GetRegionResponse.$Properties {
  if (route === null) return { header: okHeader(deps) };
  return { header: okHeader(deps), region: route.region, leader: route.leader };
}

const METHODS: UnaryMethod[] = [
  unary("GetMembers", {
    request: pdpb.GetMembersRequest,
    response: pdpb.GetMembersResponse,
    anyCluster: true,
    handle: (deps) => {
      const me = member(deps, deps.view());
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
    handle: (deps) => ({ header: okHeader(deps), bootstrapped: true }),
  }),
  unary("Bootstrap", {
    request: pdpb.BootstrapRequest,
    response: pdpb.BootstrapResponse,
    handle: (deps) => ({
      header: errorHeader(
        deps,
        pdpb.ErrorType.ALREADY_BOOTSTRAPPED,
        "cluster is already bootstrapped",
      ),
    }),
  }),
  unary("AllocID", {
    request: pdpb.AllocIDRequest,
    response: pdpb.AllocIDResponse,
    handle: allocId,
  }),
  unary("GetStore", {
    request: pdpb.GetStoreRequest,
    response: pdpb.GetStoreResponse,
    handle: getStore,
  }),
  unary("GetAllStores", {
    request: pdpb.GetAllStoresRequest,
    response: pdpb.GetAllStoresResponse,
    handle: (deps, request) => {
      const stores = deps.view().stores.filter((store) =>
        !request.excludeTombstoneStores || store.nodeState !== metapb.NodeState.Removed
      );
      return { header: okHeader(deps), stores };
    },
  }),
  unary("GetRegion", {
    request: pdpb.GetRegionRequest,
    response: pdpb.GetRegionResponse,
    handle: (deps, request) =>
      regionResponse(deps, regionByKey(deps.view().regions, request.regionKey)),
  }),
  unary("GetPrevRegion", {
    request: pdpb.GetRegionRequest,
    response: pdpb.GetRegionResponse,
    handle: (deps, request) =>
      regionResponse(deps, prevRegion(deps.view().regions, request.regionKey)),
  }),
  unary("GetRegionByID", {
    request: pdpb.GetRegionByIDRequest,
    response: pdpb.GetRegionResponse,
    handle: (deps, request) =>
      regionResponse(deps, regionById(deps.view().regions, request.regionId)),
  }),
  unary("ScanRegions", {
    request: pdpb.ScanRegionsRequest,
    response: pdpb.ScanRegionsResponse,
    handle: scan,
  }),
  unary("GetGCSafePoint", {
    request: pdpb.GetGCSafePointRequest,
    response: pdpb.GetGCSafePointResponse,
    handle: (deps) => ({ header: okHeader(deps), safePoint: deps.pd.safePoint.value }),
  }),
  unary("UpdateGCSafePoint", {
    request: pdpb.UpdateGCSafePointRequest,
    response: pdpb.UpdateGCSafePointResponse,
    handle: updateGcSafePoint,
  }),
];

function allocId(
  deps: PdDependencies,
  request: pdpb.AllocIDRequest,
): pdpb.AllocIDResponse.$Properties {
  // As PD: a count of 0 means 1, and `count` is echoed only for batches.
  const count = request.count === 0 ? 1 : request.count;
  if (count > PD_ID_ALLOC_MAX_COUNT) {
    const message = `id count must be at most ${PD_ID_ALLOC_MAX_COUNT}: ${count}`;
    return { header: errorHeader(deps, pdpb.ErrorType.UNKNOWN, message) };
  }
  try {
    const id = deps.pd.ids.alloc(count);
    return { header: okHeader(deps), id, count: count > 1 ? count : 0 };
  } catch (error) {
    deps.log.error("AllocID failed", { count, error: String(error) });
    return { header: errorHeader(deps, pdpb.ErrorType.UNKNOWN, (error as Error).message) };
  }
}

function getStore(
  deps: PdDependencies,
  request: pdpb.GetStoreRequest,
): pdpb.GetStoreResponse.$Properties {
  const store = deps.view().stores.find((candidate) => candidate.id === request.storeId);
  if (store === undefined) {
    const message = `invalid store ID ${request.storeId}, not found`;
    return { header: errorHeader(deps, pdpb.ErrorType.UNKNOWN, message) };
  }
  return { header: okHeader(deps), store, stats: { storeId: request.storeId } };
}

function scan(
  deps: PdDependencies,
  request: pdpb.ScanRegionsRequest,
): pdpb.ScanRegionsResponse.$Properties {
  const limit = request.limit <= 0 || request.limit > PD_SCAN_REGIONS_MAX_LIMIT
    ? PD_SCAN_REGIONS_MAX_LIMIT
    : request.limit;
  const routes = scanRegions(deps.view().regions, {
    startKey: request.startKey,
    endKey: request.endKey,
    limit,
  });
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
  deps: PdDependencies,
  request: pdpb.UpdateGCSafePointRequest,
): pdpb.UpdateGCSafePointResponse.$Properties {
  const old = deps.pd.safePoint.value;
  const newSafePoint = deps.pd.safePoint.update(request.safePoint);
  if (request.safePoint > old) {
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

/** The `pdpb.PD` service definition: paths `/pdpb.PD/<Method>`, bytes in and out. */
export function pdServiceDefinition(): grpc.ServiceDefinition {
  const definition: Record<string, grpc.MethodDefinition<Buffer, Buffer>> = {};
  for (const unaryMethod of METHODS) definition[unaryMethod.name] = method(unaryMethod.name, false);
  definition.Tso = method("Tso", true);
  return definition;
}

function unaryHandler(
  deps: PdDependencies,
  unaryMethod: UnaryMethod,
): grpc.handleUnaryCall<Buffer, Buffer> {
  return (call, callback) => {
    let decoded: ReturnType<UnaryMethod["decode"]>;
    try {
      decoded = unaryMethod.decode(deps, call.request);
    } catch (error) {
      const details = `malformed ${unaryMethod.name} request: ${(error as Error).message}`;
      callback({ code: grpc.status.INVALID_ARGUMENT, details });
      return;
    }
    if (!unaryMethod.anyCluster && decoded.clusterId !== deps.pd.clusterId) {
      callback(clusterMismatch(deps, decoded.clusterId));
      return;
    }
    let response: Uint8Array;
    try {
      response = decoded.answer();
    } catch (error) {
      // PD answers storage failures (a safe point that cannot be saved) with codes.Unknown.
      deps.log.error("PD request failed", { rpc: unaryMethod.name, error: String(error) });
      callback({ code: grpc.status.UNKNOWN, details: `${unaryMethod.name}: ${String(error)}` });
      return;
    }
    callback(null, Buffer.from(response.buffer, response.byteOffset, response.byteLength));
  };
}

/**
 * The handlers of `pdServiceDefinition()`.
 *
 * @example
 * ```ts
 * server.addService(pdServiceDefinition(), pdHandlers({ pd, view: () => standaloneView({ addr, statusAddr }), log }));
 * ```
 */
export function pdHandlers(deps: PdDependencies): grpc.UntypedServiceImplementation {
  const handlers: grpc.UntypedServiceImplementation = {};
  for (const unaryMethod of METHODS) handlers[unaryMethod.name] = unaryHandler(deps, unaryMethod);
  handlers.Tso = (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
    serveTsoStream(call, deps);
  };
  return handlers;
}
