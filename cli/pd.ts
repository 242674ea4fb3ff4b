/**
 * `basalt-ctl --pd ADDR …`: the PD commands (pd-ctl's, in its words), against a PD process or
 * a standalone store's PD face:
 *
 *   member list
 *   store list | show ID | delete ID
 *   region list [--limit N] | show ID | key KEY
 *   operator list | show REGION | add transfer-leader|add-peer|remove-peer REGION STORE
 *            | add merge-region SOURCE TARGET
 *   scheduler list
 *   tso
 *
 * Reads go through `pdpb.PD` (`PdClient`, and the Tso stream); what `pdpb.PD` has no call for
 * (store delete, operator list and add, scheduler list, store liveness) goes through the PD
 * process's `basalt.PdAdmin` service (`src/pd/server/admin.ts`), which a standalone store does
 * not serve. Human output by default, one JSON object with `--json`.
 */
import * as grpc from "@grpc/grpc-js";
import { newGrpcClient } from "../src/util/grpc_client.ts";
import { Buffer } from "node:buffer";
import { metapb, pdpb } from "../proto/mod.ts";
import { PdClient, type PdRegion } from "../src/client/pd_client.ts";
import { TSO_LOGICAL_BITS } from "../src/tso/mod.ts";
import {
  type ClientCommandOptions,
  pdEndpoints,
  pickSubcommand,
  print,
  unreachable,
  withClient,
} from "./client_command.ts";
import { CtlError } from "./ctl_error.ts";
import { argumentBytes, humanBytes, jsonBytes } from "./output.ts";

/** The PD command groups `cli/main.ts` hands here. */
export const PD_GROUPS = ["member", "store", "region", "operator", "scheduler", "tso"] as const;

const SUBCOMMANDS: Record<string, Record<string, { min: number; max: number; usage: string }>> = {
  member: { list: { min: 0, max: 0, usage: "member list" } },
  store: {
    list: { min: 0, max: 0, usage: "store list" },
    show: { min: 1, max: 1, usage: "store show ID" },
    delete: { min: 1, max: 1, usage: "store delete ID" },
  },
  region: {
    list: { min: 0, max: 0, usage: "region list [--limit N]" },
    show: { min: 1, max: 1, usage: "region show ID" },
    key: { min: 1, max: 1, usage: "region key KEY" },
  },
  operator: {
    list: { min: 0, max: 0, usage: "operator list" },
    show: { min: 1, max: 1, usage: "operator show REGION" },
    add: {
      min: 3,
      max: 3,
      usage:
        "operator add transfer-leader|add-peer|remove-peer REGION STORE | merge-region SOURCE TARGET",
    },
  },
  scheduler: { list: { min: 0, max: 0, usage: "scheduler list" } },
};

/** A connection to PD: `PdClient` for its reads, a raw channel for the rest. */
class PdCtl {
  readonly #raw: grpc.Client;

  private constructor(readonly pd: PdClient, readonly timeoutMs: number) {
    this.#raw = newGrpcClient(pd.address, pd.credentials);
  }

  static async connect(options: ClientCommandOptions): Promise<PdCtl> {
    const endpoints = pdEndpoints(options.pd ?? "");
    if (endpoints.length === 0) throw new CtlError("--pd needs at least one address");
    try {
      const pd = await PdClient.connect(endpoints, {
        timeoutMs: options.timeoutMs,
        tls: options.tls,
      });
      return new PdCtl(pd, options.timeoutMs);
    } catch (error) {
      throw unreachable(error, { address: endpoints.join(","), timeoutMs: options.timeoutMs });
    }
  }

  #unary(path: string, request: Uint8Array): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      this.#raw.makeUnaryRequest<Uint8Array, Uint8Array>(
        path,
        (bytes) => Buffer.from(bytes),
        (buffer) => new Uint8Array(buffer),
        request,
        { deadline: Date.now() + this.timeoutMs },
        (error, response) => {
          if (error === null) return resolve(response!);
          if (error.code === grpc.status.UNIMPLEMENTED && path.startsWith("/basalt.PdAdmin/")) {
            return reject(
              new CtlError(`${this.pd.address} has no PD admin service (a standalone store?)`),
            );
          }
          reject(new CtlError(`${path}: ${error.details || error.message}`));
        },
      );
    });
  }

  /** Calls `basalt.PdAdmin/<method>`; an error answer becomes a `CtlError`. */
  async admin(
    method: string,
    request: Record<string, unknown> = {},
  ): Promise<Record<string, unknown>> {
    const bytes = await this.#unary(
      `/basalt.PdAdmin/${method}`,
      new TextEncoder().encode(JSON.stringify(request)),
    );
    const answer = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
    const error = answer.error as { type: string; message: string } | undefined;
    if (error !== undefined) throw new CtlError(`${error.type}: ${error.message}`);
    return answer;
  }

  async getOperator(regionId: bigint): Promise<pdpb.GetOperatorResponse> {
    const request = pdpb.GetOperatorRequest.encode({
      header: { clusterId: this.pd.clusterId },
      regionId,
    }).finish();
    const response = pdpb.GetOperatorResponse.decode(
      await this.#unary("/pdpb.PD/GetOperator", request),
    );
    const error = response.header?.error;
    if (error != null && error.type !== pdpb.ErrorType.OK) {
      throw new CtlError(`${pdpb.ErrorType[error.type ?? 0]}: ${error.message}`);
    }
    return response;
  }

  /** One fresh timestamp from the Tso stream. */
  tso(): Promise<bigint> {
    return new Promise((resolve, reject) => {
      const call = this.#raw.makeBidiStreamRequest<Uint8Array, Uint8Array>(
        "/pdpb.PD/Tso",
        (bytes) => Buffer.from(bytes),
        (buffer) => new Uint8Array(buffer),
        { deadline: Date.now() + this.timeoutMs },
      );
      call.on("data", (bytes: Uint8Array) => {
        const { physical, logical } = pdpb.TsoResponse.decode(bytes).timestamp ?? {};
        resolve(((physical ?? 0n) << BigInt(TSO_LOGICAL_BITS)) | (logical ?? 0n));
        call.end();
      });
      call.on("error", (error: grpc.ServiceError) => reject(new CtlError(`Tso: ${error.details}`)));
      call.write(
        pdpb.TsoRequest.encode({ header: { clusterId: this.pd.clusterId }, count: 1 }).finish(),
      );
    });
  }

  close(): void {
    this.#raw.close();
    this.pd.close();
  }
}

function id(text: string, what: string): bigint {
  if (!/^[0-9]{1,20}$/.test(text) || BigInt(text) >= 1n << 64n) {
    throw new CtlError(`${what} must be a u64: "${text}"`);
  }
  return BigInt(text);
}

function peerText(peer: metapb.Peer.$Properties): string {
  const role = peer.role ? ` ${metapb.PeerRole[peer.role]}` : "";
  return `${peer.id}@store${peer.storeId}${role}`;
}

/** A region and its leader as `--json` shows them. */
export function regionJson(
  route: PdRegion,
  options: ClientCommandOptions,
): Record<string, unknown> {
  const { region, leader } = route;
  return {
    id: String(region.id ?? 0n),
    startKey: jsonBytes(region.startKey ?? new Uint8Array(0), options),
    endKey: jsonBytes(region.endKey ?? new Uint8Array(0), options),
    epoch: {
      confVer: String(region.regionEpoch?.confVer ?? 0n),
      version: String(region.regionEpoch?.version ?? 0n),
    },
    peers: (region.peers ?? []).map((p) => ({
      id: String(p.id ?? 0n),
      storeId: String(p.storeId ?? 0n),
      role: metapb.PeerRole[p.role ?? 0],
    })),
    leader: leader === null ? null : String(leader.id ?? 0n),
  };
}

/** A region and its leader as one human line (`region list`). */
export function regionText(route: PdRegion, options: ClientCommandOptions): string {
  const { region, leader } = route;
  const key = (bytes: Uint8Array | null | undefined, empty: string) =>
    bytes == null || bytes.length === 0 ? empty : JSON.stringify(humanBytes(bytes, options));
  return `region ${region.id} [${key(region.startKey, '""')}, ${key(region.endKey, "+inf")}) ` +
    `epoch ${region.regionEpoch?.confVer ?? 0n}/${region.regionEpoch?.version ?? 0n} ` +
    `peers ${(region.peers ?? []).map(peerText).join(",")} ` +
    `leader ${leader === null ? "(none)" : peerText(leader)}`;
}

function storeJson(store: metapb.Store): Record<string, unknown> {
  return {
    id: String(store.id),
    address: store.address,
    statusAddress: store.statusAddress,
    version: store.version,
    state: metapb.StoreState[store.state],
    nodeState: metapb.NodeState[store.nodeState],
  };
}

function storeLine(store: Record<string, unknown>): string {
  const parts = [`store ${store.id}`, String(store.address), String(store.state)];
  if (store.liveness !== undefined) {
    parts.push(
      `${store.liveness}`,
      `regions ${store.regionCount}`,
      `leaders ${store.leaderCount}`,
    );
  }
  if (store.version !== "") parts.push(`version ${store.version}`);
  return parts.join("  ");
}

function operatorLine(op: Record<string, unknown>): string {
  const steps = (op.steps as string[]).join(", ");
  const where = op.status === "RUNNING" ? `step ${op.currentStep}` : String(op.status);
  return `region ${op.regionId} ${op.desc}: ${steps} [${where}]`;
}

/** Runs one PD command group (`PD_GROUPS`). */
export async function runPd(
  group: string,
  args: readonly string[],
  options: ClientCommandOptions,
): Promise<void> {
  if (group === "tso") {
    if (args.length > 0) throw new CtlError("usage: basalt-ctl --pd ADDR tso");
    return await withClient(() => PdCtl.connect(options), async (pd) => {
      const ts = await pd.tso();
      const physicalMs = Number(ts >> BigInt(TSO_LOGICAL_BITS));
      const logical = ts & ((1n << BigInt(TSO_LOGICAL_BITS)) - 1n);
      const time = new Date(physicalMs).toISOString();
      print(options, `${ts}\nsystem:  ${time}\nlogic:   ${logical}`, {
        ts: String(ts),
        physicalMs,
        logical: String(logical),
      });
    });
  }
  const { subcommand, operands } = pickSubcommand(args, {
    group,
    subcommands: SUBCOMMANDS[group]!,
  });
  await withClient(() => PdCtl.connect(options), (pd) => {
    switch (group) {
      case "member":
        return members(pd, options);
      case "store":
        return stores(pd, { subcommand, operands, options });
      case "region":
        return regions(pd, { subcommand, operands, options });
      case "operator":
        return operators(pd, { subcommand, operands, options });
      default:
        return pd.admin("ListSchedulers").then((answer) => {
          const names = answer.schedulers as string[];
          print(options, names.join("\n"), { schedulers: names });
        });
    }
  });
}

interface Command {
  subcommand: string;
  operands: string[];
  options: ClientCommandOptions;
}

async function members(pd: PdCtl, options: ClientCommandOptions): Promise<void> {
  const answer = await pd.pd.getMembers();
  const leaderId = answer.leader?.memberId;
  const list = answer.members.map((m) => ({
    name: m.name,
    memberId: String(m.memberId),
    clientUrls: m.clientUrls ?? [],
    peerUrls: m.peerUrls ?? [],
    version: m.binaryVersion,
    leader: m.memberId === leaderId,
  }));
  const human = list.map((m) =>
    `${m.name}  id ${m.memberId}  client ${m.clientUrls.join(",")}` +
    `${m.peerUrls.length > 0 ? `  peer ${m.peerUrls.join(",")}` : ""}${
      m.leader ? "  (leader)" : ""
    }`
  );
  print(options, [`cluster ${pd.pd.clusterId}`, ...human].join("\n"), {
    clusterId: String(pd.pd.clusterId),
    members: list,
  });
}

async function stores(pd: PdCtl, command: Command): Promise<void> {
  const { subcommand, operands, options } = command;
  if (subcommand === "delete") {
    const storeId = id(operands[0]!, "store ID");
    await pd.admin("DeleteStore", { storeId: String(storeId) });
    return print(options, `store ${storeId} is Offline: its replicas will move away`, {
      storeId: String(storeId),
      state: "Offline",
    });
  }
  if (subcommand === "show") {
    const store = await pd.pd.getStore(id(operands[0]!, "store ID"));
    const json = storeJson(store);
    return print(options, storeLine(json), json);
  }
  // A PD process tells liveness and counts; a standalone store's PD face only what pdpb has.
  let list: Record<string, unknown>[];
  try {
    list = (await pd.admin("ListStores")).stores as Record<string, unknown>[];
  } catch (error) {
    if (!(error instanceof CtlError && /no PD admin service/.test(error.message))) throw error;
    list = (await pd.pd.getAllStores()).map(storeJson);
  }
  print(options, list.length === 0 ? "(no stores)" : list.map(storeLine).join("\n"), {
    stores: list,
  });
}

async function regions(pd: PdCtl, command: Command): Promise<void> {
  const { subcommand, operands, options } = command;
  let found: PdRegion[];
  if (subcommand === "list") {
    found = await pd.pd.scanRegions({
      startKey: new Uint8Array(0),
      endKey: new Uint8Array(0),
      limit: options.limit,
    });
  } else {
    const route = subcommand === "show"
      ? await pd.pd.getRegionById(id(operands[0]!, "region ID"))
      : await pd.pd.getRegion(argumentBytes(operands[0]!, options));
    if (route === null) throw new CtlError(`region not found: ${operands[0]}`);
    found = [route];
  }
  const human = found.length === 0
    ? "(no regions)"
    : found.map((route) => regionText(route, options)).join("\n");
  const json = found.map((route) => regionJson(route, options));
  print(options, human, subcommand === "list" ? { regions: json } : json[0]);
}

async function operators(pd: PdCtl, command: Command): Promise<void> {
  const { subcommand, operands, options } = command;
  if (subcommand === "list") {
    const list = (await pd.admin("ListOperators")).operators as Record<string, unknown>[];
    const human = list.length === 0 ? "(no operators)" : list.map(operatorLine).join("\n");
    return print(options, human, { operators: list });
  }
  if (subcommand === "show") {
    const op = await pd.getOperator(id(operands[0]!, "region ID"));
    const json = {
      regionId: String(op.regionId),
      desc: new TextDecoder().decode(op.desc),
      status: pdpb.OperatorStatus[op.status],
      kind: new TextDecoder().decode(op.kind),
    };
    return print(options, `region ${json.regionId} ${json.desc} [${json.status}]`, json);
  }
  const [action, region, other] = operands as [string, string, string];
  if (!["transfer-leader", "add-peer", "remove-peer", "merge-region"].includes(action)) {
    throw new CtlError(
      `unknown operator "${action}"; one of transfer-leader, add-peer, remove-peer, merge-region`,
    );
  }
  const answer = await pd.admin(
    "AddOperator",
    action === "merge-region"
      ? {
        action,
        regionId: String(id(region, "source region ID")),
        targetRegionId: String(id(other, "target region ID")),
      }
      : {
        action,
        regionId: String(id(region, "region ID")),
        storeId: String(id(other, "store ID")),
      },
  );
  const op = answer.operator as Record<string, unknown>;
  print(options, `added: ${operatorLine(op)}`, { operator: op });
}
