/**
 * A minimal etcd v3 KV client for the cluster bench's race against etcd: Put, and Range of one
 * key (linearizable unless asked otherwise), as unary gRPC calls of `etcdserverpb.KV` through
 * grpc-js — the library Basalt's own client uses — over `channels` HTTP/2 connections to one
 * member, each call on the next connection in turn.
 *
 * - Messages: `proto/etcd/rpc.proto` (only the fields used), compiled at load by protobufjs's
 *   reflection, which builds an encoder and a decoder per message type as generated functions:
 *   the same work per message as the static code Basalt's client uses, within noise for messages
 *   this small.
 * - Why unary and why several connections: etcd's API has no batching of independent requests
 *   (a Txn would make them one atomic write), so a client sends one call per operation, as
 *   etcd's Go client does; etcd's own benchmark tool spreads its clients over several
 *   connections (`--conns`), because one HTTP/2 connection is read by one goroutine on the
 *   server. Several connections are the kinder choice for etcd.
 * - Errors are values: `put` and `get` resolve to null on success or a description of the
 *   failure; every call has a deadline.
 *
 * @example
 * ```ts
 * const kv = new EtcdKv("127.0.0.1:2379", { channels: 4 });
 * await kv.put(key, value); // null
 * await kv.get(key);        // null when the key holds a value
 * kv.close();
 * ```
 */
import * as grpc from "@grpc/grpc-js";
import protobuf from "protobufjs";
import { Buffer } from "node:buffer";
import { closeGrpcClient } from "../src/client/grpc_close.ts";
import { newGrpcClient } from "../src/util/grpc_client.ts";

/** Deadline of one etcd call. */
export const ETCD_CALL_TIMEOUT_MS = 20_000;
/** The most HTTP/2 connections one `EtcdKv` opens. */
export const ETCD_MAX_CHANNELS = 64;

const PROTO_PATH = new URL("../proto/etcd/rpc.proto", import.meta.url);

interface Codec {
  encode(message: unknown): { finish(): Uint8Array };
  decode(bytes: Uint8Array): unknown;
}

/** The four message types the client speaks, from `proto/etcd/rpc.proto`. */
const TYPES = (() => {
  const root = protobuf.parse(Deno.readTextFileSync(PROTO_PATH)).root;
  const type = (name: string) => root.lookupType(`etcdserverpb.${name}`) as unknown as Codec;
  return {
    putRequest: type("PutRequest"),
    putResponse: type("PutResponse"),
    rangeRequest: type("RangeRequest"),
    rangeResponse: type("RangeResponse"),
  };
})();

interface RangeResponse {
  kvs?: { key?: Uint8Array; value?: Uint8Array }[];
}

const toBuffer = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
const fromBuffer = (buffer: Buffer) =>
  new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.length);

/** Channel options: each client its own connection (not grpc-js's shared subchannel). */
const CHANNEL_OPTIONS: grpc.ChannelOptions = { "grpc.use_local_subchannel_pool": 1 };

/** A client of one etcd member's KV service. */
export class EtcdKv {
  readonly #clients: grpc.Client[];
  #next = 0;

  /** Connects lazily to `address` (host:port) over `channels` HTTP/2 connections. */
  constructor(address: string, options: { channels: number }) {
    if (
      !Number.isInteger(options.channels) || options.channels < 1 ||
      options.channels > ETCD_MAX_CHANNELS
    ) {
      throw new RangeError(`etcd client: channels must be an integer in 1..${ETCD_MAX_CHANNELS}`);
    }
    this.#clients = Array.from(
      { length: options.channels },
      () => newGrpcClient(address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS),
    );
  }

  /** Writes `value` at `key`; null once etcd has committed and applied it. */
  put(key: Uint8Array, value: Uint8Array): Promise<string | null> {
    const bytes = TYPES.putRequest.encode({ key, value }).finish();
    return this.#call("Put", bytes, (response) => {
      TYPES.putResponse.decode(response);
      return null;
    });
  }

  /**
   * Reads `key` (linearizable by default); null when it holds a value, else why not. The value
   * is decoded, as Basalt's RawGet answers are.
   */
  get(key: Uint8Array, options: { serializable?: boolean } = {}): Promise<string | null> {
    const bytes = TYPES.rangeRequest.encode({ key, serializable: options.serializable === true })
      .finish();
    return this.#call("Range", bytes, (response) => {
      const decoded = TYPES.rangeResponse.decode(response) as RangeResponse;
      return decoded.kvs?.length === 1 ? null : "a loaded key was not found";
    });
  }

  /** Closes every connection; calls still pending fail. */
  close(): void {
    for (const client of this.#clients) closeGrpcClient(client);
  }

  #call(
    method: "Put" | "Range",
    bytes: Uint8Array,
    onResponse: (response: Uint8Array) => string | null,
  ): Promise<string | null> {
    const client = this.#clients[this.#next]!;
    this.#next = (this.#next + 1) % this.#clients.length;
    return new Promise((resolve) => {
      client.makeUnaryRequest<Uint8Array, Uint8Array>(
        `/etcdserverpb.KV/${method}`,
        toBuffer,
        fromBuffer,
        bytes,
        { deadline: Date.now() + ETCD_CALL_TIMEOUT_MS },
        (error, response) => {
          if (error) return resolve(`etcd ${method}: ${error.message}`);
          try {
            resolve(onResponse(response!));
          } catch (decodeError) {
            resolve(`etcd ${method}: malformed response: ${decodeError}`);
          }
        },
      );
    });
  }
}
