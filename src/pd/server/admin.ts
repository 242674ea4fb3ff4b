/**
 * The PD process's admin service, `basalt.PdAdmin`, beside `pdpb.PD` on the client port: what
 * `ctl --pd` needs that `pdpb.PD` has no call for (PD serves these through its HTTP API:
 * `/pd/api/v1/operators`, `/stores/{id}` DELETE, `/schedulers`). Each method takes and answers
 * one JSON object (u64s as decimal strings); requests above `PD_ADMIN_REQUEST_MAX_BYTES` or not
 * JSON get INVALID_ARGUMENT, expected failures answer `{ "error": { "type", "message" } }` with
 * PD's error type names.
 *
 * | method          | request                                   | answer                        |
 * | --------------- | ----------------------------------------- | ----------------------------- |
 * | `ListStores`    | `{}`                                      | `{ stores: [...] }` with stats and liveness |
 * | `DeleteStore`   | `{ storeId }`                             | `{}`                          |
 * | `ListOperators` | `{}`                                      | `{ operators: [...] }`        |
 * | `AddOperator`   | `{ action, regionId, storeId }` or `{ action: "merge-region", regionId, targetRegionId }` | `{ operator }` (a merge's: the source's) |
 * | `ListSchedulers`| `{}`                                      | `{ schedulers: [...] }`       |
 * | `AdoptStandalone`| a standalone store's cluster (`adoption_wire.ts`) | `{ clusterId }`     |
 *
 * `AdoptStandalone` is the store's call, not ctl's: a store that ran standalone asks a fresh PD
 * to become its cluster (`src/pd/adoption.ts`).
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { PD_ADMIN_REQUEST_MAX_BYTES } from "../../constants.ts";
import { bytesMethod } from "../../util/grpc_bytes.ts";
import { PD_ERROR_TYPES, PdError } from "../errors.ts";
import { describeStep, type Operator } from "../operator.ts";
import type { AdminOperatorRequest } from "../placement_driver.ts";
import type { StandaloneAdoption } from "../adoption.ts";
import { adoptionFromJson, AdoptionJsonError } from "./adoption_wire.ts";
import type { PdServiceDeps } from "./dependencies.ts";
import { notLeaderStatus, notServingStatus, persisted } from "./dependencies.ts";

type Json = Record<string, unknown>;

const ACTIONS: readonly AdminOperatorRequest["action"][] = [
  "transfer-leader",
  "add-peer",
  "remove-peer",
  "merge-region",
];

class BadRequest extends Error {}

function u64(fields: Json, name: string): bigint {
  const value = fields[name];
  if (typeof value !== "string" || !/^[0-9]{1,20}$/.test(value) || BigInt(value) >= 1n << 64n) {
    throw new BadRequest(`"${name}" must be a u64 as a decimal string`);
  }
  return BigInt(value);
}

function failure(error: PdError): Json {
  return { error: { type: PD_ERROR_TYPES[error.code], message: error.message } };
}

/** An operator as JSON (ctl prints it). */
export function operatorJson(op: Operator): Json {
  return {
    id: op.id,
    regionId: op.regionId.toString(),
    desc: op.desc,
    kind: op.kind,
    status: op.status,
    currentStep: op.currentStep,
    steps: op.steps.map(describeStep),
    reason: op.reason,
  };
}

const METHODS: Record<string, (deps: PdServiceDeps, request: Json) => Json> = {
  ListStores(deps) {
    const stores = deps.driver.getAllStores({ excludeTombstone: false });
    if (stores instanceof PdError) return failure(stores);
    const nowMs = deps.driver.cluster.clock.nowMs();
    return {
      stores: stores.map((store) => ({
        id: store.meta.id.toString(),
        address: store.meta.address,
        statusAddress: store.meta.statusAddress,
        version: store.meta.version,
        state: store.meta.state,
        nodeState: store.meta.nodeState,
        liveness: deps.driver.cluster.liveness(store, nowMs),
        regionCount: deps.driver.cluster.regionCountOn(store.meta.id),
        leaderCount: deps.driver.cluster.regions.byStore.get(store.meta.id)?.leaders.size ?? 0,
        capacity: store.stats?.capacity.toString() ?? null,
        available: store.stats?.available.toString() ?? null,
        lastHeartbeatMsAgo: nowMs - store.lastHeartbeatMs,
      })),
    };
  },
  DeleteStore(deps, request) {
    const refused = deps.driver.deleteStore(u64(request, "storeId"));
    return refused === null ? {} : failure(refused);
  },
  ListOperators(deps) {
    return { operators: deps.driver.operators().map(operatorJson) };
  },
  AddOperator(deps, request) {
    const action = request.action;
    if (typeof action !== "string" || !(ACTIONS as readonly string[]).includes(action)) {
      throw new BadRequest(`"action" must be one of ${ACTIONS.join(", ")}`);
    }
    const regionId = u64(request, "regionId");
    const op = deps.driver.addOperator(
      action === "merge-region"
        ? { action, regionId, targetRegionId: u64(request, "targetRegionId") }
        : {
          action: action as Exclude<AdminOperatorRequest["action"], "merge-region">,
          regionId,
          storeId: u64(request, "storeId"),
        },
    );
    if (op instanceof PdError) return failure(op);
    deps.heartbeatStreams?.push(deps, op.regionId);
    return { operator: operatorJson(op) };
  },
  ListSchedulers(deps) {
    return { schedulers: deps.driver.schedulers() };
  },
  AdoptStandalone(deps, request) {
    let adoption: StandaloneAdoption;
    try {
      adoption = adoptionFromJson(request);
    } catch (error) {
      if (error instanceof AdoptionJsonError) throw new BadRequest(error.message);
      throw error;
    }
    const refused = deps.driver.adoptStandalone(adoption);
    if (refused !== null) {
      deps.log.warn("refused to adopt a standalone cluster", { error: refused.message });
      return failure(refused);
    }
    deps.log.info("adopted a standalone store's cluster", {
      clusterId: String(adoption.clusterId),
      storeId: String(adoption.store.id),
      regionId: String(adoption.region.id),
      tsoBoundMs: String(adoption.tsoBoundMs),
      idBound: String(adoption.idBound),
    });
    return { clusterId: String(deps.driver.clusterId) };
  },
};

/** The `basalt.PdAdmin` service definition: JSON bytes in and out. */
export function pdAdminServiceDefinition(): grpc.ServiceDefinition {
  const definition: Record<string, grpc.MethodDefinition<Buffer, Buffer>> = {};
  for (const name of Object.keys(METHODS)) {
    definition[name] = bytesMethod(`/basalt.PdAdmin/${name}`, false);
  }
  return definition;
}

function parse(bytes: Uint8Array): Json {
  if (bytes.byteLength > PD_ADMIN_REQUEST_MAX_BYTES) {
    throw new BadRequest(
      `request of ${bytes.byteLength} bytes; at most ${PD_ADMIN_REQUEST_MAX_BYTES}`,
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    throw new BadRequest("request is not JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new BadRequest("request is not a JSON object");
  }
  return value as Json;
}

/** The handlers of `pdAdminServiceDefinition()`. */
export function pdAdminHandlers(deps: PdServiceDeps): grpc.UntypedServiceImplementation {
  const handlers: grpc.UntypedServiceImplementation = {};
  for (const [name, run] of Object.entries(METHODS)) {
    const handler: grpc.handleUnaryCall<Buffer, Buffer> = (call, callback) => {
      const refused = notServingStatus(deps);
      if (refused !== null) {
        deps.metrics?.request(`admin.${name}`, "not_leader");
        return callback(refused);
      }
      let answer: Json;
      try {
        answer = run(deps, parse(call.request));
      } catch (error) {
        if (!(error instanceof BadRequest)) throw error;
        deps.metrics?.request(`admin.${name}`, "invalid_argument");
        return callback({
          code: grpc.status.INVALID_ARGUMENT,
          details: `${name}: ${error.message}`,
        });
      }
      deps.metrics?.request(`admin.${name}`, "error" in answer ? "error_header" : "ok");
      persisted(deps).then((lost) => {
        if (lost !== null) return callback(notLeaderStatus(lost));
        callback(null, Buffer.from(JSON.stringify(answer)));
      });
    };
    handlers[name] = handler;
  }
  return handlers;
}
