/**
 * A clustered store (`--pd ADDR[,ADDR…]`): a client of a PD cluster instead of a PD itself.
 *
 * Joining, before the engine opens (`joinCluster`):
 * 1. Connect to PD (GetMembers) and learn the cluster id.
 * 2. The data directory's identity (`data_dir.ts`): an empty directory gets a store id from PD
 *    (AllocID) and records it with the cluster id; a directory of another cluster is refused.
 *    A standalone store's directory is first adopted by PD, which must be fresh
 *    (`standalone_adoption.ts`): PD takes its cluster id, store, regions, timestamps and ids,
 *    and the directory becomes this cluster's; the PD client then reconnects under that id.
 * 3. The regions this store holds, from `<data-dir>/regions.json` (`RegionsFile`). A cluster
 *    PD has not bootstrapped is bootstrapped with this store and a first region over every key
 *    (AllocID for its region and peer ids). The region is written down as `prepared` before
 *    Bootstrap and as `bootstrapped` after, so a crash in between is resolved on the next
 *    start: Bootstrap again with the same region, or — if another store bootstrapped the
 *    cluster meanwhile — drop the prepared region (TiKV's `prepare_bootstrap_cluster`).
 *    A store joining a bootstrapped cluster holds no region.
 *
 * Once the servers listen (`ClusterMember.start`): PutStore with the advertised addresses and
 * version, then StoreHeartbeat every STORE_HEARTBEAT_INTERVAL_MS and, every
 * `pd-heartbeat-tick-interval` (DEFAULT_REGION_HEARTBEAT_INTERVAL_MS), a RegionHeartbeat for each held region on one stream, this
 * store as leader (no Raft yet: writes go through the store's write path). Operators PD sends
 * back are logged at debug and not carried out.
 *
 * Why a file and not the raftstore's `RegionLocalState`: the store does not run the raftstore
 * yet, and its engine's write path knows nothing of the `raft` column family's records; a JSON
 * file beside `basalt.json` is what this store reads at start and nothing else reads.
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { newGrpcClient } from "../util/grpc_client.ts";
import { Buffer } from "node:buffer";
import { availableBytes, capacityBytes } from "../../ffi/disk_space.ts";
import { pdpb } from "../../proto/mod.ts";
import type { RegionOperator, SplitSpecIds } from "./worker_raftstore.ts";
import { type RegionMeta, regionToProto as metaToProto } from "../raftstore/local_state.ts";
import { PdClient } from "../client/pd_client.ts";
import { PdError as PdAnswerError } from "../client/errors.ts";
import { composeTimestamp, TsoClient } from "../client/tso.ts";
import {
  DEFAULT_REGION_HEARTBEAT_INTERVAL_MS,
  JOIN_PD_CALL_TIMEOUT_MS,
  REGION_OPERATOR_FOLLOW_UP_MS,
  REGION_OPERATOR_HEARTBEAT_MS,
  STORE_HEARTBEAT_INTERVAL_MS,
} from "../constants.ts";
import type { TlsIdentity } from "../security/tls.ts";
import { fromHex, toHex } from "../util/bytes.ts";
import type { ServerConfig } from "./config.ts";
import { DataDirError, prepareClusterDataDir } from "./data_dir.ts";
import type { Logger } from "./log.ts";
import { STANDALONE_REPORTED_VERSION } from "./pd/view.ts";
import { operatorOf } from "./pd_operator.ts";
import { type Region, regionToProto } from "./region.ts";
import type { RegionMeta as RegionMetaOfPd } from "../pd/types.ts";
import {
  type AdoptionCalls,
  adoptStandaloneDataDir,
  readStandaloneState,
  type StandaloneState,
} from "./standalone_adoption.ts";

const REGIONS_FILE = "regions.json";

/** `<data-dir>/regions.json`: the regions a clustered store holds. */
interface RegionsFile {
  format: "basalt-regions";
  version: 1;
  /** `prepared`: written before Bootstrap, not yet known to PD. */
  state: "prepared" | "bootstrapped";
  regions: {
    id: string;
    startKey: string;
    endKey: string;
    confVer: string;
    version: string;
    peerId: string;
  }[];
}

/** PD answered with an error header; `type` is PD's `ErrorType` name. */
export class PdJoinError extends Error {
  constructor(readonly type: string, message: string) {
    super(`PD refused: ${type}: ${message}`);
    this.name = "PdJoinError";
  }
}

interface Codec<T> {
  encode(message: T): { finish(): Uint8Array };
  decode(bytes: Uint8Array): T;
}

/**
 * The store-side calls of `pdpb.PD` that the routing client (`PdClient`) does not make, to PD's
 * leader: a call that finds PD unavailable (a dead member, or a follower's "not leader") makes
 * the next one look for the leader again through `GetMembers` (`PdClient.ensureLeader`).
 */
class PdStoreCalls {
  #client: grpc.Client;
  #address: string;

  constructor(readonly pd: PdClient) {
    this.#address = pd.address;
    this.#client = newGrpcClient(pd.address, pd.credentials);
  }

  /** Finds PD's leader again if a failure asked for it, and talks to it from now on. */
  async ready(): Promise<void> {
    await this.pd.ensureLeader({ deadlineMs: Date.now() + JOIN_PD_CALL_TIMEOUT_MS });
    if (this.pd.address === this.#address) return;
    this.#client.close();
    this.#address = this.pd.address;
    this.#client = newGrpcClient(this.#address, this.pd.credentials);
  }

  header(): pdpb.RequestHeader.$Properties {
    return { clusterId: this.pd.clusterId };
  }

  async unary<Req, Res extends { header?: pdpb.ResponseHeader.$Properties | null }>(
    method: string,
    codecs: { request: Codec<Req>; response: Codec<Res> },
    body: Omit<Req, "header">,
  ): Promise<Res> {
    await this.ready();
    const request = { ...body, header: this.header() } as unknown as Req;
    return await new Promise((resolve, reject) => {
      this.#client.makeUnaryRequest<Uint8Array, Uint8Array>(
        `/pdpb.PD/${method}`,
        (bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length),
        (buffer) => new Uint8Array(buffer),
        codecs.request.encode(request).finish(),
        { deadline: Date.now() + JOIN_PD_CALL_TIMEOUT_MS },
        (error, bytes) => {
          if (error) {
            if (error.code === grpc.status.UNAVAILABLE) this.pd.leaderLost();
            return reject(new Error(`PD ${method} at ${this.#address}: ${error.message}`));
          }
          const response = codecs.response.decode(bytes!);
          const failure = response.header?.error;
          if (failure != null && (failure.type ?? 0) !== pdpb.ErrorType.OK) {
            const type = pdpb.ErrorType[failure.type ?? 1] ?? String(failure.type);
            return reject(new PdJoinError(type, failure.message ?? ""));
          }
          resolve(response);
        },
      );
    });
  }

  async allocId(): Promise<bigint> {
    const response = await this.unary("AllocID", {
      request: pdpb.AllocIDRequest,
      response: pdpb.AllocIDResponse,
    }, {});
    const id = response.id ?? 0n;
    if (id === 0n) throw new PdJoinError("UNKNOWN", "AllocID answered id 0");
    return id;
  }

  /**
   * `basalt.PdAdmin/<method>` with a JSON object (Basalt's own calls, `src/pd/server/admin.ts`):
   * the answer, or PD's `{ error }` answer's message as `refused`.
   */
  async admin(
    method: string,
    body: Record<string, unknown>,
  ): Promise<{ answer: Record<string, unknown> } | { refused: string }> {
    await this.ready();
    return await new Promise((resolve, reject) => {
      this.#client.makeUnaryRequest<Uint8Array, Uint8Array>(
        `/basalt.PdAdmin/${method}`,
        (bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length),
        (buffer) => new Uint8Array(buffer),
        new TextEncoder().encode(JSON.stringify(body)),
        { deadline: Date.now() + JOIN_PD_CALL_TIMEOUT_MS },
        (error, bytes) => {
          if (error) {
            if (error.code === grpc.status.UNAVAILABLE) this.pd.leaderLost();
            return reject(new Error(`PD ${method} at ${this.#address}: ${error.message}`));
          }
          let answer: Record<string, unknown> & { error?: { type?: string; message?: string } };
          try {
            answer = JSON.parse(new TextDecoder().decode(bytes!));
          } catch {
            return reject(new Error(`PD ${method} at ${this.#address}: the answer is not JSON`));
          }
          const failure = answer?.error;
          if (failure != null) {
            return resolve({ refused: `${failure.type ?? "UNKNOWN"}: ${failure.message ?? ""}` });
          }
          resolve({ answer });
        },
      );
    });
  }

  async isBootstrapped(): Promise<boolean> {
    const response = await this.unary("IsBootstrapped", {
      request: pdpb.IsBootstrappedRequest,
      response: pdpb.IsBootstrappedResponse,
    }, {});
    return response.bootstrapped ?? false;
  }

  /**
   * Opens a RegionHeartbeat stream to the PD last found leading (call `ready` first);
   * `onResponse` sees what PD sends, `onEnd` its end (after which the leader is looked for again).
   */
  heartbeatStream(handlers: {
    onResponse: (response: pdpb.RegionHeartbeatResponse) => void;
    onEnd: (status: string) => void;
  }): grpc.ClientDuplexStream<Uint8Array, Uint8Array> {
    const call = this.#client.makeBidiStreamRequest<Uint8Array, Uint8Array>(
      "/pdpb.PD/RegionHeartbeat",
      (bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length),
      (buffer) => new Uint8Array(buffer),
    );
    call.on("data", (bytes: Uint8Array) => {
      handlers.onResponse(pdpb.RegionHeartbeatResponse.decode(bytes));
    });
    call.on("error", (error: Error) => {
      this.pd.leaderLost();
      handlers.onEnd(error.message);
    });
    call.on("end", () => handlers.onEnd("ended by PD"));
    return call;
  }

  close(): void {
    this.#client.close();
  }
}

function readRegionsFile(dataDir: string): RegionsFile | null {
  let text: string;
  try {
    text = Deno.readTextFileSync(`${dataDir}/${REGIONS_FILE}`);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw new DataDirError(dataDir, `${REGIONS_FILE} is unreadable: ${(error as Error).message}`);
  }
  let file: RegionsFile;
  try {
    file = JSON.parse(text);
  } catch (error) {
    throw new DataDirError(dataDir, `${REGIONS_FILE} is not JSON: ${(error as Error).message}`);
  }
  if (file.format !== "basalt-regions" || file.version !== 1 || !Array.isArray(file.regions)) {
    throw new DataDirError(dataDir, `${REGIONS_FILE} is not a Basalt regions file (version 1)`);
  }
  return file;
}

function regionsOf(file: RegionsFile | null, storeId: bigint): Region[] {
  return (file?.regions ?? []).map((region) => ({
    id: BigInt(region.id),
    startKey: fromHex(region.startKey),
    endKey: fromHex(region.endKey),
    confVer: BigInt(region.confVer),
    version: BigInt(region.version),
    peerId: BigInt(region.peerId),
    storeId,
  }));
}

function writeRegionsFile(dataDir: string, state: RegionsFile["state"], regions: Region[]): void {
  const file: RegionsFile = {
    format: "basalt-regions",
    version: 1,
    state,
    regions: regions.map((region) => ({
      id: String(region.id),
      startKey: toHex(region.startKey),
      endKey: toHex(region.endKey),
      confVer: String(region.confVer),
      version: String(region.version),
      peerId: String(region.peerId),
    })),
  };
  const temporary = `${dataDir}/${REGIONS_FILE}.tmp`;
  Deno.writeTextFileSync(temporary, JSON.stringify(file, null, 2) + "\n");
  Deno.renameSync(temporary, `${dataDir}/${REGIONS_FILE}`);
}

/** The store as PD records it (PutStore, Bootstrap). */
function storeMeta(
  storeId: bigint,
  addrs: { addr: string; statusAddr: string },
): pdpb.PutStoreRequest.$Properties["store"] {
  return {
    id: storeId,
    address: addrs.addr,
    statusAddress: addrs.statusAddr,
    version: STANDALONE_REPORTED_VERSION,
    startTimestamp: BigInt(Math.floor(Date.now() / 1000)),
  };
}

/** A store that joined PD: its id, its regions, and its heartbeats once started. */
export class ClusterMember {
  readonly #calls: PdStoreCalls;
  readonly #log: Logger;
  readonly #dataDir: string;
  #storeTimer: ReturnType<typeof setInterval> | undefined;
  #regionTimer: ReturnType<typeof setInterval> | undefined;
  #stream: grpc.ClientDuplexStream<Uint8Array, Uint8Array> | null = null;
  #storeBeating = false;
  #stopped = false;
  #onOperator: (regionId: bigint, operator: RegionOperator) => void = () => {};
  /** Regions PD sent an operator for, and until when they are followed up (ms since epoch). */
  readonly #operatorRegions = new Map<bigint, number>();
  #operatorTimer: ReturnType<typeof setInterval> | undefined;
  #regions: () => Region[] = () => [];

  constructor(
    calls: PdStoreCalls,
    readonly storeId: bigint,
    readonly dbPath: string,
    readonly regions: Region[],
    /** max_ts seed: PD's timestamp at join, or the clock's if that is later. */
    readonly latestTs: () => bigint,
    options: { log: Logger; dataDir: string },
  ) {
    this.#calls = calls;
    this.#log = options.log;
    this.#dataDir = options.dataDir;
  }

  /** PD's GC safe point (the store collects garbage below it on the regions it leads). */
  async gcSafePoint(): Promise<bigint> {
    const response = await this.#calls.unary("GetGCSafePoint", {
      request: pdpb.GetGCSafePointRequest,
      response: pdpb.GetGCSafePointResponse,
    }, {});
    return response.safePoint ?? 0n;
  }

  /** PD's AskBatchSplit: ids for `count` new regions of a split of `region`. */
  async askBatchSplit(region: RegionMeta, count: number): Promise<SplitSpecIds[]> {
    const response = await this.#calls.unary("AskBatchSplit", {
      request: pdpb.AskBatchSplitRequest,
      response: pdpb.AskBatchSplitResponse,
    }, { region: metaToProto(region), splitCount: count });
    const ids = (response.ids ?? []).map((id) => ({
      newRegionId: id.newRegionId ?? 0n,
      newPeerIds: id.newPeerIds ?? [],
    }));
    if (ids.length !== count) {
      throw new PdJoinError("UNKNOWN", `AskBatchSplit answered ${ids.length} ids for ${count}`);
    }
    return ids;
  }

  /** PD's ReportBatchSplit: the regions a split made (logged, not retried, when it fails). */
  reportBatchSplit(regions: RegionMeta[]): void {
    this.#calls.unary("ReportBatchSplit", {
      request: pdpb.ReportBatchSplitRequest,
      response: pdpb.ReportBatchSplitResponse,
    }, { regions: regions.map(metaToProto) }).catch((error: unknown) => {
      this.#log.warn("PD's ReportBatchSplit failed (the regions' heartbeats tell it anyway)", {
        error: (error as Error).message,
      });
    });
  }

  /** A fresh timestamp from PD's TSO (a new leader's max-ts sync). */
  fetchTimestamp(): Promise<bigint> {
    if (this.#stopped) return Promise.reject(new Error("the store is stopping"));
    this.#tso ??= new TsoClient(this.#calls.pd);
    return this.#tso.getTimestamp({ deadlineMs: Date.now() + JOIN_PD_CALL_TIMEOUT_MS });
  }

  #tso: TsoClient | null = null;

  /** The gRPC address store `storeId` registered with PD (its advertise address). */
  async storeAddress(storeId: bigint): Promise<string> {
    const store = await this.#calls.pd.getStore(storeId, {
      deadlineMs: Date.now() + JOIN_PD_CALL_TIMEOUT_MS,
    });
    if (!store.address) throw new Error(`PD knows no address for store ${storeId}`);
    return store.address;
  }

  get clusterId(): bigint {
    return this.#calls.pd.clusterId;
  }

  /**
   * Publishes the store (PutStore: `addrs` are what others dial) and starts its heartbeats.
   * `regionCount` is read at every store heartbeat.
   */
  async start(
    addrs: { addr: string; statusAddr: string },
    regions: () => Region[],
    onOperator: (regionId: bigint, operator: RegionOperator) => void = () => {},
    options: { regionHeartbeatIntervalMs?: number } = {},
  ): Promise<void> {
    this.#onOperator = onOperator;
    this.#regions = regions;
    await this.#calls.unary("PutStore", {
      request: pdpb.PutStoreRequest,
      response: pdpb.PutStoreResponse,
    }, { store: storeMeta(this.storeId, addrs) });
    this.#log.info("store registered with PD", {
      storeId: String(this.storeId),
      clusterId: String(this.clusterId),
      addr: addrs.addr,
      statusAddr: addrs.statusAddr,
    });
    const storeBeat = () => void this.#storeHeartbeat(regions().length);
    const regionBeat = () => this.#regionHeartbeats(regions());
    storeBeat();
    regionBeat();
    this.#storeTimer = setInterval(storeBeat, STORE_HEARTBEAT_INTERVAL_MS);
    this.#regionTimer = setInterval(
      regionBeat,
      options.regionHeartbeatIntervalMs ?? DEFAULT_REGION_HEARTBEAT_INTERVAL_MS,
    );
    this.#operatorTimer = setInterval(
      () => this.#followUpOperators(),
      REGION_OPERATOR_HEARTBEAT_MS,
    );
  }

  async #storeHeartbeat(regionCount: number): Promise<void> {
    if (this.#storeBeating || this.#stopped) return; // the last one is still out
    this.#storeBeating = true;
    try {
      const available = availableBytes(this.#dataDir) ?? 0;
      await this.#calls.unary("StoreHeartbeat", {
        request: pdpb.StoreHeartbeatRequest,
        response: pdpb.StoreHeartbeatResponse,
      }, {
        stats: {
          storeId: this.storeId,
          capacity: BigInt(capacityBytes(this.#dataDir) ?? available),
          available: BigInt(available),
          regionCount,
        },
      });
    } catch (error) {
      if (!this.#stopped) {
        this.#log.warn("store heartbeat failed", { error: (error as Error).message });
      }
    } finally {
      this.#storeBeating = false;
    }
  }

  /**
   * Heartbeats for the regions this store's peer leads (PD hears each region from its leader),
   * at once: call when a region changed (a new leader, a conf change).
   */
  heartbeatRegions(regions: Region[]): void {
    this.#regionHeartbeats(regions);
  }

  #regionHeartbeats(all: Region[]): void {
    // A region not replicated yet (no `leading` seen) is this store's alone: it leads it.
    const regions = all.filter((region) => region.leading ?? true);
    if (this.#stopped || regions.length === 0) return;
    if (this.#stream === null) {
      // (Re)opened once PD's leader is known; these heartbeats wait for the next ones (every
      // region's go when it opens).
      this.#openHeartbeatStream();
      return;
    }
    this.#writeHeartbeats(regions);
  }

  #opening = false;

  #openHeartbeatStream(): void {
    if (this.#opening) return;
    this.#opening = true;
    this.#calls.ready().then(() => {
      if (this.#stopped || this.#stream !== null) return;
      const stream = this.#calls.heartbeatStream({
        onResponse: (response) => {
          if (response.header?.error != null && (response.header.error.type ?? 0) !== 0) {
            this.#log.warn("PD refused a region heartbeat", {
              type: pdpb.ErrorType[response.header.error.type ?? 1] ?? "UNKNOWN",
              message: response.header.error.message ?? "",
            });
            return;
          }
          const operator = operatorOf(response);
          if (operator === null) {
            if (response.merge != null || response.splitRegion != null) {
              this.#log.debug("PD operator not carried out (split and merge come later)", {
                regionId: response.regionId,
              });
            }
            return;
          }
          const regionId = response.regionId ?? 0n;
          this.#operatorRegions.set(regionId, Date.now() + REGION_OPERATOR_FOLLOW_UP_MS);
          this.#onOperator(regionId, operator);
        },
        onEnd: (status) => {
          if (this.#stream !== stream) return;
          this.#stream = null;
          if (!this.#stopped) this.#log.warn("region heartbeat stream ended", { status });
        },
      });
      this.#stream = stream;
      this.#writeHeartbeats(this.#regions().filter((region) => region.leading ?? true));
    }, (error: unknown) => {
      if (!this.#stopped) {
        this.#log.warn("PD's leader not found for region heartbeats", {
          error: (error as Error).message,
        });
      }
    }).finally(() => {
      this.#opening = false;
    });
  }

  #writeHeartbeats(regions: Region[]): void {
    if (this.#stream === null) return;
    for (const region of regions) {
      const request: pdpb.RegionHeartbeatRequest.$Properties = {
        header: this.#calls.header(),
        region: regionToProto(region),
        leader: { id: region.peerId, storeId: region.storeId },
        term: region.term ?? 1n,
        approximateSize: BigInt(region.approximateSizeBytes ?? 0),
        approximateKeys: BigInt(region.approximateKeys ?? 0),
        pendingPeers: (region.peers ?? [])
          .filter((p) => region.pendingPeerIds?.includes(p.id) ?? false)
          .map((p) => ({ id: p.id, storeId: p.storeId, role: p.role })),
      };
      this.#stream.write(pdpb.RegionHeartbeatRequest.encode(request).finish());
    }
  }

  /** Heartbeats the regions PD sent an operator for lately (see REGION_OPERATOR_HEARTBEAT_MS). */
  #followUpOperators(): void {
    if (this.#operatorRegions.size === 0) return;
    const now = Date.now();
    for (const [regionId, until] of this.#operatorRegions) {
      if (until <= now) this.#operatorRegions.delete(regionId);
    }
    const followed = this.#regions().filter((region) => this.#operatorRegions.has(region.id));
    this.#regionHeartbeats(followed);
  }

  /** Stops the heartbeats and closes the connections to PD. */
  stop(): void {
    this.#stopped = true;
    clearInterval(this.#storeTimer);
    clearInterval(this.#regionTimer);
    clearInterval(this.#operatorTimer);
    const stream = this.#stream;
    this.#stream = null;
    try {
      stream?.end();
    } catch { /* already closed */ }
    this.#tso?.close();
    this.#tso = null;
    this.#calls.close();
    this.#calls.pd.close();
  }
}

/**
 * Joins the PD cluster at `config.pd.endpoints` (see the module comment): returns the store's
 * id and RocksDB path and the regions it serves. Throws `DataDirError` for a data directory
 * this cluster cannot use, `PdJoinError` for a refusal by PD, `Error` when PD cannot be reached.
 */
export async function joinCluster(
  config: ServerConfig,
  options: { log: Logger; tls: TlsIdentity | null },
): Promise<ClusterMember> {
  const { log } = options;
  const dataDir = config.storage.dataDir;
  const connect = () =>
    PdClient.connect(config.pd.endpoints, { tls: options.tls, timeoutMs: JOIN_PD_CALL_TIMEOUT_MS });
  let pd = await connect();
  let calls = new PdStoreCalls(pd);
  const advertised = {
    addr: config.server.advertiseAddr || config.server.addr,
    statusAddr: config.server.advertiseStatusAddr || config.server.statusAddr,
  };
  try {
    const standalone = readStandaloneState(dataDir);
    if (standalone !== null) {
      await adoptDataDir(calls, { dataDir, state: standalone, advertised, log });
      if (pd.clusterId !== standalone.clusterId) {
        // PD answers under the adopted cluster id from now on: learn it again.
        calls.close();
        pd.close();
        pd = await connect();
        calls = new PdStoreCalls(pd);
      }
    }
    const { identity, dbPath, created } = await prepareClusterDataDir(dataDir, {
      clusterId: pd.clusterId,
      allocStoreId: () => calls.allocId(),
      now: new Date(),
    });
    const storeId = BigInt(identity.storeId);
    if (created) {
      log.info("store id allocated by PD", {
        storeId: String(storeId),
        clusterId: String(pd.clusterId),
      });
    }
    const regions = await settleRegions(calls, {
      dataDir,
      storeId,
      store: storeMeta(storeId, advertised),
      log,
    });
    const tso = new TsoClient(pd);
    let pdTs: bigint;
    try {
      pdTs = await tso.getTimestamp({ deadlineMs: Date.now() + JOIN_PD_CALL_TIMEOUT_MS });
    } finally {
      tso.close();
    }
    const latestTs = () => {
      const clock = composeTimestamp(Date.now());
      return clock > pdTs ? clock : pdTs;
    };
    return new ClusterMember(calls, storeId, dbPath, regions, latestTs, { log, dataDir });
  } catch (error) {
    calls.close();
    pd.close();
    throw error;
  }
}

/** Has PD adopt the standalone store's cluster and marks the data directory (see the module). */
async function adoptDataDir(
  calls: PdStoreCalls,
  options: {
    dataDir: string;
    state: StandaloneState;
    advertised: { addr: string; statusAddr: string };
    log: Logger;
  },
): Promise<void> {
  const { dataDir, state, advertised } = options;
  await adoptStandaloneDataDir(dataDir, {
    state,
    calls: adoptionCalls(calls),
    store: {
      id: state.storeId,
      address: advertised.addr,
      statusAddress: advertised.statusAddr,
      version: STANDALONE_REPORTED_VERSION,
    },
    log: options.log,
    recordFirstRegion: (region) =>
      writeRegionsFile(dataDir, "bootstrapped", [regionOfMeta(region, state.storeId)]),
  });
}

/** PD's calls a standalone store's adoption makes (`standalone_adoption.ts`). */
function adoptionCalls(calls: PdStoreCalls): AdoptionCalls {
  return {
    clusterId: calls.pd.clusterId,
    address: calls.pd.address,
    isBootstrapped: () => calls.isBootstrapped(),
    storeKnown: async (storeId) => {
      try {
        await calls.pd.getStore(storeId, { deadlineMs: Date.now() + JOIN_PD_CALL_TIMEOUT_MS });
        return true;
      } catch (error) {
        if (error instanceof PdAnswerError) return false; // PD answered: no such store
        throw error;
      }
    },
    adopt: async (request) => {
      const result = await calls.admin("AdoptStandalone", request);
      return "refused" in result ? result.refused : null;
    },
  };
}

/** The store's own region of a region PD's way (one peer, this store's). */
function regionOfMeta(region: RegionMetaOfPd, storeId: bigint): Region {
  return {
    id: region.id,
    startKey: region.startKey,
    endKey: region.endKey,
    confVer: region.regionEpoch.confVer,
    version: region.regionEpoch.version,
    peerId: region.peers.find((peer) => peer.storeId === storeId)!.id,
    storeId,
  };
}

/** The regions the store serves, after bootstrapping the cluster if it falls to this store. */
async function settleRegions(
  calls: PdStoreCalls,
  options: {
    dataDir: string;
    storeId: bigint;
    store: pdpb.PutStoreRequest.$Properties["store"];
    log: Logger;
  },
): Promise<Region[]> {
  const { dataDir, storeId, log } = options;
  const file = readRegionsFile(dataDir);
  const held = regionsOf(file, storeId);
  if (file?.state === "bootstrapped") return held;
  if (!(await calls.isBootstrapped())) {
    // Prepared first (ids from PD), so a crash before Bootstrap answers repeats the same region.
    let first = held[0];
    if (first === undefined) {
      first = {
        id: await calls.allocId(),
        startKey: new Uint8Array(0),
        endKey: new Uint8Array(0),
        confVer: 1n,
        version: 1n,
        peerId: await calls.allocId(),
        storeId,
      };
      writeRegionsFile(dataDir, "prepared", [first]);
    }
    try {
      await calls.unary("Bootstrap", {
        request: pdpb.BootstrapRequest,
        response: pdpb.BootstrapResponse,
      }, { store: options.store, region: regionToProto(first) });
      writeRegionsFile(dataDir, "bootstrapped", [first]);
      log.info("bootstrapped the cluster", {
        storeId: String(storeId),
        regionId: String(first.id),
        peerId: String(first.peerId),
      });
      return [first];
    } catch (error) {
      if (!(error instanceof PdJoinError && error.type === "ALREADY_BOOTSTRAPPED")) throw error;
      // Another store was first: fall through, as for a cluster bootstrapped before.
    }
  }
  if (held.length > 0) {
    // A prepared region the cluster was not bootstrapped with is not this store's to serve.
    const known = await calls.pd.getRegionById(held[0]!.id);
    const ours = known?.region.peers?.some((peer) => peer.storeId === storeId) ?? false;
    if (ours) {
      writeRegionsFile(dataDir, "bootstrapped", held);
      return held;
    }
    log.warn("dropping the prepared region: the cluster was bootstrapped by another store", {
      regionId: String(held[0]!.id),
    });
    Deno.removeSync(`${dataDir}/${REGIONS_FILE}`);
  }
  log.info("joined a bootstrapped cluster; holding no region", { storeId: String(storeId) });
  return [];
}
