/**
 * A client of PD's `pdpb.PD` service for routing: members and cluster id, regions by key, by id
 * and by range, and stores. (Timestamps come through the Tso stream, which the transactional
 * client owns.)
 *
 * - Connecting calls GetMembers on each endpoint in turn until one answers; its header names
 *   the cluster id every later request carries (PD refuses a request for another cluster).
 *   When PD reports several members and a leader whose client URL differs from the endpoint
 *   that answered, the client follows the leader.
 * - A call that cannot reach PD fails with a retriable `UnavailableError` and makes the next
 *   call look for the leader again among all endpoints. A replicated PD's follower answers
 *   UNAVAILABLE "not leader" (as PD's `ErrNotLeader`), which is the same retriable error: the
 *   retry finds the leader through GetMembers. The TSO client does the same through
 *   `leaderLost()` and `ensureLeader()`.
 * - An error in a response header is a `PdError` naming PD's `ErrorType`.
 */
import * as grpc from "@grpc/grpc-js";
import { newGrpcClient } from "../util/grpc_client.ts";
import { Buffer } from "node:buffer";
import { type metapb, pdpb } from "../../proto/mod.ts";
import { PD_ELECTION_POLL_MS, PD_REQUEST_TIMEOUT_MS } from "./constants.ts";
import { ClientClosedError, type ClientError, PdError, UnavailableError } from "./errors.ts";
import { closeGrpcClient } from "./grpc_close.ts";
import { clientErrorOfGrpc } from "./grpc_errors.ts";
import { CHANNEL_OPTIONS } from "./transport.ts";
import { channelCredentials, type TlsIdentity } from "../security/tls.ts";

/** A region with its leader as PD reports it. */
export interface PdRegion {
  region: metapb.Region.$Properties;
  leader: metapb.Peer.$Properties | null;
}

interface Encoder<T> {
  encode(message: T): { finish(): Uint8Array };
}

interface Decoder<T> {
  decode(bytes: Uint8Array): T;
}

interface HasHeader {
  header?: pdpb.ResponseHeader.$Properties | null;
}

const toBuffer = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
const fromBuffer = (buffer: Buffer) =>
  new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.length);

/** `http://host:port` (or a bare `host:port`) as `host:port`. */
export function hostOfUrl(url: string): string {
  return /^[a-z]+:\/\//i.test(url) ? new URL(url).host : url;
}

/** A connection to the PD cluster. */
export class PdClient {
  readonly #endpoints: readonly string[];
  readonly #timeoutMs: number;
  /** Credentials of every channel to PD (plain text or mutual TLS). */
  readonly credentials: grpc.ChannelCredentials;
  #client: grpc.Client | null = null;
  #address = "";
  #clusterId = 0n;
  #needsDiscovery = true;
  #closed = false;

  private constructor(
    endpoints: readonly string[],
    options: { timeoutMs: number; tls: TlsIdentity | null },
  ) {
    if (endpoints.length === 0) throw new RangeError("PdClient needs at least one endpoint");
    this.#endpoints = endpoints;
    this.#timeoutMs = options.timeoutMs;
    this.credentials = channelCredentials(options.tls);
  }

  /** Connects to the PD at one of `endpoints` (host:port or http://host:port). */
  static async connect(
    endpoints: readonly string[],
    options: { timeoutMs?: number; tls?: TlsIdentity | null } = {},
  ): Promise<PdClient> {
    const client = new PdClient(endpoints.map(hostOfUrl), {
      timeoutMs: options.timeoutMs ?? PD_REQUEST_TIMEOUT_MS,
      tls: options.tls ?? null,
    });
    try {
      await client.#discover(Date.now() + client.#timeoutMs);
    } catch (error) {
      client.close();
      throw error;
    }
    return client;
  }

  /** The cluster id PD reported. */
  get clusterId(): bigint {
    return this.#clusterId;
  }

  /** The PD address in use. */
  get address(): string {
    return this.#address;
  }

  /**
   * Says the PD in use is unreachable or no longer leads (a Tso stream broke, a call answered
   * UNAVAILABLE "not leader"): the next call first looks for the leader again.
   */
  leaderLost(): void {
    this.#needsDiscovery = true;
  }

  /** Looks for the leader now, if a failure asked for it (see `leaderLost`). */
  async ensureLeader(options: { deadlineMs?: number } = {}): Promise<void> {
    if (this.#needsDiscovery) {
      await this.#discover(options.deadlineMs ?? Date.now() + this.#timeoutMs);
    }
  }

  /** PD's members and leader. */
  getMembers(options: { deadlineMs?: number } = {}): Promise<pdpb.GetMembersResponse> {
    return this.#call("GetMembers", pdpb.GetMembersRequest, pdpb.GetMembersResponse, {}, options);
  }

  /** The region containing `key`, or null if PD knows none. */
  async getRegion(
    key: Uint8Array,
    options: { deadlineMs?: number } = {},
  ): Promise<PdRegion | null> {
    const response = await this.#call("GetRegion", pdpb.GetRegionRequest, pdpb.GetRegionResponse, {
      regionKey: key,
    }, options);
    return regionOf(response);
  }

  /** The region just before the one containing `key`, or null. */
  async getPrevRegion(
    key: Uint8Array,
    options: { deadlineMs?: number } = {},
  ): Promise<PdRegion | null> {
    const response = await this.#call(
      "GetPrevRegion",
      pdpb.GetRegionRequest,
      pdpb.GetRegionResponse,
      { regionKey: key },
      options,
    );
    return regionOf(response);
  }

  /** The region with id `regionId`, or null. */
  async getRegionById(
    regionId: bigint,
    options: { deadlineMs?: number } = {},
  ): Promise<PdRegion | null> {
    const response = await this.#call(
      "GetRegionByID",
      pdpb.GetRegionByIDRequest,
      pdpb.GetRegionResponse,
      { regionId },
      options,
    );
    return regionOf(response);
  }

  /** Regions intersecting [startKey, endKey) in key order, at most `limit` (0 = PD's cap). */
  async scanRegions(
    range: { startKey: Uint8Array; endKey: Uint8Array; limit: number },
    options: { deadlineMs?: number } = {},
  ): Promise<PdRegion[]> {
    const response = await this.#call(
      "ScanRegions",
      pdpb.ScanRegionsRequest,
      pdpb.ScanRegionsResponse,
      range,
      options,
    );
    if (response.regions.length > 0) {
      return response.regions.filter((r) => r.region != null).map((r) => ({
        region: r.region!,
        leader: nonEmptyPeer(r.leader),
      }));
    }
    // Old PDs fill only the parallel lists.
    return response.regionMetas.map((region, i) => ({
      region,
      leader: nonEmptyPeer(response.leaders[i]),
    }));
  }

  /** Store `storeId`. */
  async getStore(storeId: bigint, options: { deadlineMs?: number } = {}): Promise<metapb.Store> {
    const response = await this.#call("GetStore", pdpb.GetStoreRequest, pdpb.GetStoreResponse, {
      storeId,
    }, options);
    if (response.store == null) throw new PdError("UNKNOWN", `no store ${storeId}`);
    return response.store as metapb.Store;
  }

  /** Every store PD knows. */
  async getAllStores(
    options: { deadlineMs?: number; excludeTombstoneStores?: boolean } = {},
  ): Promise<metapb.Store[]> {
    const response = await this.#call(
      "GetAllStores",
      pdpb.GetAllStoresRequest,
      pdpb.GetAllStoresResponse,
      { excludeTombstoneStores: options.excludeTombstoneStores ?? false },
      options,
    );
    return response.stores as metapb.Store[];
  }

  /** Closes the connection. */
  close(): void {
    this.#closed = true;
    if (this.#client !== null) closeGrpcClient(this.#client);
    this.#client = null;
  }

  /** Finds a PD that answers GetMembers, learns the cluster id, and follows the leader. */
  async #discover(deadlineMs: number): Promise<void> {
    // Members that answer but know no leader yet are in an election: ask them all again, a
    // little later, until the deadline.
    for (;;) {
      const outcome = await this.#discoverOnce(deadlineMs);
      if (outcome === null) return;
      if (!outcome.electing || Date.now() + PD_ELECTION_POLL_MS >= deadlineMs) throw outcome.error;
      await new Promise((resolve) => setTimeout(resolve, PD_ELECTION_POLL_MS));
    }
  }

  /** One pass over the endpoints: null when a leader was found, else why not. */
  async #discoverOnce(
    deadlineMs: number,
  ): Promise<{ error: ClientError; electing: boolean } | null> {
    let lastError: ClientError | null = null;
    let electing = false;
    for (const endpoint of this.#endpoints) {
      this.#use(endpoint);
      try {
        const members = await this.#unary(
          "GetMembers",
          pdpb.GetMembersRequest,
          pdpb.GetMembersResponse,
          { header: { clusterId: 0n } },
          deadlineMs,
        );
        const clusterId = members.header?.clusterId ?? 0n;
        if (clusterId === 0n && members.members.length > 1) {
          // A new PD group whose leader does not serve yet has no cluster id to give.
          lastError = new UnavailableError(`PD at ${endpoint} has no cluster id yet`, {
            sent: false,
          });
          electing = true;
          continue;
        }
        if (this.#clusterId !== 0n && clusterId !== this.#clusterId) {
          throw new PdError(
            "INCOMPATIBLE_VERSION",
            `cluster id changed from ${this.#clusterId} to ${clusterId}`,
          );
        }
        this.#clusterId = clusterId;
        const leaderUrl = members.leader?.clientUrls?.[0];
        if (members.members.length > 1) {
          if (leaderUrl === undefined) {
            // A member that knows no leader yet (an election): ask the next one.
            lastError = new UnavailableError(`PD at ${endpoint} knows no leader`, { sent: false });
            electing = true;
            continue;
          }
          const leader = hostOfUrl(leaderUrl);
          if (leader !== endpoint) this.#use(leader);
        }
        this.#needsDiscovery = false;
        return null;
      } catch (error) {
        if (error instanceof PdError) throw error;
        lastError = error as ClientError;
      }
    }
    return {
      error: lastError ?? new UnavailableError("no PD endpoint answered", { sent: false }),
      electing,
    };
  }

  #use(address: string): void {
    if (this.#address === address && this.#client !== null) return;
    if (this.#client !== null) closeGrpcClient(this.#client);
    this.#address = address;
    this.#client = newGrpcClient(address, this.credentials, CHANNEL_OPTIONS);
  }

  async #call<Req extends { header?: unknown }, Res extends HasHeader>(
    method: string,
    requestCodec: Encoder<Req>,
    responseCodec: Decoder<Res>,
    body: Omit<Req, "header">,
    options: { deadlineMs?: number },
  ): Promise<Res> {
    const deadlineMs = options.deadlineMs ?? Date.now() + this.#timeoutMs;
    if (this.#needsDiscovery) await this.#discover(deadlineMs);
    const request = { ...body, header: { clusterId: this.#clusterId } } as unknown as Req;
    let response: Res;
    try {
      response = await this.#unary(method, requestCodec, responseCodec, request, deadlineMs);
    } catch (error) {
      if (error instanceof UnavailableError) this.#needsDiscovery = true;
      throw error;
    }
    const failure = response.header?.error;
    if (failure != null && (failure.type ?? 0) !== pdpb.ErrorType.OK) {
      const type = pdpb.ErrorType[failure.type ?? 1] ?? String(failure.type);
      throw new PdError(type, failure.message ?? "");
    }
    return response;
  }

  #unary<Req, Res>(
    method: string,
    requestCodec: Encoder<Req>,
    responseCodec: Decoder<Res>,
    request: Req,
    deadlineMs: number,
  ): Promise<Res> {
    const client = this.#client;
    if (this.#closed || client === null) return Promise.reject(new ClientClosedError("PD client"));
    const what = `PD ${method} at ${this.#address}`;
    return new Promise((resolve, reject) => {
      client.makeUnaryRequest<Uint8Array, Uint8Array>(
        `/pdpb.PD/${method}`,
        toBuffer,
        fromBuffer,
        requestCodec.encode(request).finish(),
        { deadline: deadlineMs },
        (error, bytes) => {
          if (error) return reject(clientErrorOfGrpc(error, { what, written: true }));
          try {
            resolve(responseCodec.decode(bytes!));
          } catch (decodeError) {
            reject(clientErrorOfGrpc({ details: `malformed response: ${decodeError}` }, {
              what,
              written: true,
            }));
          }
        },
      );
    });
  }
}

function regionOf(response: pdpb.GetRegionResponse): PdRegion | null {
  if (response.region == null) return null;
  return { region: response.region, leader: nonEmptyPeer(response.leader) };
}

/** PD sends an empty peer for "no leader". */
function nonEmptyPeer(
  peer: metapb.Peer.$Properties | null | undefined,
): metapb.Peer.$Properties | null {
  return peer != null && (peer.id ?? 0n) !== 0n ? peer : null;
}
