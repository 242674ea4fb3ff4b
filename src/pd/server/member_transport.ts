/**
 * The PD members' internal gRPC service, on each member's peer URL: it carries the Raft
 * messages of the members' group (`src/pd/pd_member.ts`) and tells each member where the
 * others serve clients, so that GetMembers can name every member's client URLs on every member.
 *
 * Wire: one unary method, `/basalt.PdMembers/Send`, bytes in and out, no new `.proto`:
 * - request: TiKV's `raft_serverpb.BatchRaftMessage` layout (`repeated RaftMessage msgs = 1`),
 *   each `RaftMessage` with `region_id` = the group id (a hash of `--initial-cluster`, so a
 *   member of another PD cluster is refused), `from_peer.id`/`to_peer.id` = member ids and
 *   `message` = the `eraftpb.Message`; the sender's name and client URLs ride in the call's
 *   metadata (`pd-member-name`, `pd-client-urls`);
 * - response: the receiver as a `pdpb.Member` (its name, id, client and peer URLs).
 * A call with no messages is a greeting: members greet the peers they know nothing of.
 *
 * Bounds (src/constants.ts): per peer at most `PD_RAFT_SEND_QUEUE_MAX_MESSAGES` queued (newer
 * messages are dropped past it; Raft resends what matters), `PD_RAFT_SEND_BATCH_MAX_MESSAGES`
 * per call, `PD_RAFT_SEND_MAX_IN_FLIGHT` calls in flight, each with a `PD_RAFT_SEND_TIMEOUT_MS`
 * deadline; a message whose encoding passes `PD_RAFT_MESSAGE_MAX_BYTES` is dropped and logged
 * (a snapshot of PD's state that large cannot be sent: the member stays behind, said loudly).
 * grpc-js reconnects a channel by itself (with back-off); a failed call drops its messages.
 *
 * @module
 */
import {
  messageFromProto as storeMessageFromProto,
  messageToProto as storeMessageToProto,
} from "../../server/raft_transport/codec.ts";
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { eraftpb, pdpb, raft_serverpb } from "../../../proto/mod.ts";
import {
  PD_RAFT_MESSAGE_MAX_BYTES,
  PD_RAFT_SEND_BATCH_MAX_MESSAGES,
  PD_RAFT_SEND_MAX_IN_FLIGHT,
  PD_RAFT_SEND_QUEUE_MAX_MESSAGES,
  PD_RAFT_SEND_TIMEOUT_MS,
} from "../../constants.ts";
import { EntryType, type Message, MessageType } from "../../raft/mod.ts";
import { ProtoReader, ProtoWriter } from "../../raft/wire.ts";
import { bytesMethod } from "../../util/grpc_bytes.ts";
import type { MemberTransport } from "../pd_member.ts";
import type { PdLog } from "./dependencies.ts";

const SEND_PATH = "/basalt.PdMembers/Send";
const NAME_HEADER = "pd-member-name";
const CLIENT_URLS_HEADER = "pd-client-urls";

/** What one member knows of another (learned from its calls and answers). */
export interface PeerInfo {
  name: string;
  clientUrls: string[];
}

// --- eraftpb conversion: the stores' codec (src/server/raft_transport/codec.ts), one for both --

/** A Raft message as `eraftpb.Message`. */
export const messageToProto = storeMessageToProto;

/**
 * An `eraftpb.Message` from a peer as a Raft message; `null` for one no member sends: what the
 * stores' codec refuses, and any conf-change entry (PD's group has the fixed membership of
 * `--initial-cluster`).
 */
export function messageFromProto(proto: eraftpb.Message): Message | null {
  const decoded = storeMessageFromProto(proto);
  if (!decoded.ok) return null;
  const message = decoded.value;
  if (message.entries.some((entry) => entry.entryType !== EntryType.EntryNormal)) return null;
  return message;
}

/** `BatchRaftMessage` bytes of encoded `RaftMessage`s. */
export function encodeBatch(encoded: readonly Uint8Array[]): Uint8Array {
  const writer = new ProtoWriter();
  for (const bytes of encoded) writer.bytes(1, bytes);
  return writer.finish();
}

/** One `RaftMessage` of a batch, stamped with the group id. */
export function encodeOne(groupId: bigint, message: Message): Uint8Array {
  return raft_serverpb.RaftMessage.encode({
    regionId: groupId,
    fromPeer: { id: message.from },
    toPeer: { id: message.to },
    message: messageToProto(message),
  }).finish();
}

/** Decodes a batch; throws on bytes that are not one (the handler answers INVALID_ARGUMENT). */
export function decodeBatch(bytes: Uint8Array): raft_serverpb.RaftMessage[] {
  const out: raft_serverpb.RaftMessage[] = [];
  const reader = new ProtoReader(bytes);
  while (!reader.done()) {
    const { field, wireType } = reader.tag();
    if (field !== 1 || wireType !== 2) {
      reader.skip(wireType);
      continue;
    }
    out.push(raft_serverpb.RaftMessage.decode(reader.bytes()));
  }
  return out;
}

// --- The service (receiving side) ------------------------------------------------------------

/** The `basalt.PdMembers` service definition. */
export function memberServiceDefinition(): grpc.ServiceDefinition {
  return { Send: bytesMethod(SEND_PATH, false) };
}

/** What the receiving side needs. */
export interface MemberServiceDeps {
  groupId: bigint;
  selfId: bigint;
  /** This member as the answer describes it. */
  self: () => pdpb.Member.$Properties;
  /** Messages for this member, checked: addressed to it, of its group. */
  deliver: (messages: Message[]) => void;
  /** What a caller said of itself. */
  learned: (peer: PeerInfo) => void;
  log: PdLog;
}

/** The handlers of `memberServiceDefinition()`. */
export function memberServiceHandlers(deps: MemberServiceDeps): grpc.UntypedServiceImplementation {
  const send: grpc.handleUnaryCall<Buffer, Buffer> = (call, callback) => {
    const name = String(call.metadata.get(NAME_HEADER)[0] ?? "");
    const clientUrls = String(call.metadata.get(CLIENT_URLS_HEADER)[0] ?? "")
      .split(",").filter((url) => url !== "");
    let batch: raft_serverpb.RaftMessage[];
    try {
      batch = decodeBatch(call.request);
    } catch (error) {
      return callback({
        code: grpc.status.INVALID_ARGUMENT,
        details: `malformed PD member batch: ${(error as Error).message}`,
      });
    }
    const messages: Message[] = [];
    for (const envelope of batch) {
      if (envelope.regionId !== deps.groupId) {
        return callback({
          code: grpc.status.FAILED_PRECONDITION,
          details: `PD member group ${envelope.regionId} is not this one's (${deps.groupId}): ` +
            "the members' --initial-cluster differ",
        });
      }
      const message = envelope.message == null ? null : messageFromProto(
        // Decoded, so every field holds its value or its default.
        envelope.message as eraftpb.Message,
      );
      if (message === null || message.to !== deps.selfId) {
        return callback({
          code: grpc.status.INVALID_ARGUMENT,
          details: `a PD member batch holds a message this member cannot take (to ${
            envelope.message?.to ?? "nobody"
          })`,
        });
      }
      messages.push(message);
    }
    if (name !== "") deps.learned({ name, clientUrls });
    if (messages.length > 0) deps.deliver(messages);
    callback(null, Buffer.from(pdpb.Member.encode(deps.self()).finish()));
  };
  return { Send: send };
}

// --- The transport (sending side) ------------------------------------------------------------

/** A peer member as the transport reaches it. */
export interface PeerAddress {
  id: bigint;
  /** host:port of its peer URL. */
  address: string;
}

interface PeerChannel {
  id: bigint;
  address: string;
  client: grpc.Client | null;
  queue: Message[];
  inFlight: number;
  /** Messages dropped because the queue was full (for logs and tests). */
  dropped: number;
}

/** Carries one member's messages to its peers over `basalt.PdMembers`. */
export class GrpcMemberTransport implements MemberTransport {
  readonly #groupId: bigint;
  readonly #peers = new Map<bigint, PeerChannel>();
  readonly #credentials: grpc.ChannelCredentials;
  readonly #self: () => { name: string; clientUrls: string[] };
  readonly #learned: (id: bigint, member: pdpb.Member) => void;
  readonly #log: PdLog;
  #closed = false;

  constructor(options: {
    groupId: bigint;
    peers: readonly PeerAddress[];
    credentials: grpc.ChannelCredentials;
    self: () => { name: string; clientUrls: string[] };
    /** A peer's answer: how it describes itself. */
    learned: (id: bigint, member: pdpb.Member) => void;
    log: PdLog;
  }) {
    this.#groupId = options.groupId;
    this.#credentials = options.credentials;
    this.#self = options.self;
    this.#learned = options.learned;
    this.#log = options.log;
    for (const peer of options.peers) {
      this.#peers.set(peer.id, {
        id: peer.id,
        address: peer.address,
        client: null,
        queue: [],
        inFlight: 0,
        dropped: 0,
      });
    }
  }

  /** Messages dropped so far because a peer's queue was full. */
  droppedOf(id: bigint): number {
    return this.#peers.get(id)?.dropped ?? 0;
  }

  send(messages: readonly Message[]): void {
    if (this.#closed) return;
    const touched = new Set<PeerChannel>();
    for (const message of messages) {
      const peer = this.#peers.get(message.to);
      if (peer === undefined) continue;
      if (peer.queue.length >= PD_RAFT_SEND_QUEUE_MAX_MESSAGES) {
        peer.dropped++;
        continue;
      }
      peer.queue.push(message);
      touched.add(peer);
    }
    for (const peer of touched) this.#pump(peer);
  }

  /** Sends an empty batch to `id`: its answer says where it serves clients. */
  greet(id: bigint): void {
    const peer = this.#peers.get(id);
    if (peer === undefined || this.#closed || peer.inFlight >= PD_RAFT_SEND_MAX_IN_FLIGHT) return;
    this.#call(peer, []);
  }

  close(): void {
    this.#closed = true;
    for (const peer of this.#peers.values()) {
      peer.client?.close();
      peer.client = null;
      peer.queue = [];
    }
  }

  #pump(peer: PeerChannel): void {
    while (peer.queue.length > 0 && peer.inFlight < PD_RAFT_SEND_MAX_IN_FLIGHT) {
      const batch = peer.queue.splice(0, PD_RAFT_SEND_BATCH_MAX_MESSAGES);
      this.#call(peer, batch);
    }
  }

  #call(peer: PeerChannel, batch: readonly Message[]): void {
    const id = peer.id;
    const encoded: Uint8Array[] = [];
    let bytes = 0;
    for (let i = 0; i < batch.length; i++) {
      const message = batch[i]!;
      const one = encodeOne(this.#groupId, message);
      if (one.length + 16 > PD_RAFT_MESSAGE_MAX_BYTES) {
        this.#log.error("PD member message too large to send; dropped", {
          to: id,
          type: MessageType[message.msgType],
          bytes: one.length,
          maxBytes: PD_RAFT_MESSAGE_MAX_BYTES,
        });
        continue;
      }
      if (bytes + one.length + 16 > PD_RAFT_MESSAGE_MAX_BYTES) {
        // The rest waits for the next call, at the queue's head.
        peer.queue.unshift(...batch.slice(i));
        break;
      }
      encoded.push(one);
      bytes += one.length + 16;
    }
    peer.client ??= new grpc.Client(peer.address, this.#credentials, {
      "grpc.max_send_message_length": PD_RAFT_MESSAGE_MAX_BYTES,
      "grpc.max_receive_message_length": PD_RAFT_MESSAGE_MAX_BYTES,
      "grpc.initial_reconnect_backoff_ms": 100,
      "grpc.max_reconnect_backoff_ms": 1_000,
    });
    const metadata = new grpc.Metadata();
    const self = this.#self();
    metadata.set(NAME_HEADER, self.name);
    metadata.set(CLIENT_URLS_HEADER, self.clientUrls.join(","));
    peer.inFlight++;
    peer.client.makeUnaryRequest<Uint8Array, Uint8Array>(
      SEND_PATH,
      (request) => Buffer.from(request.buffer, request.byteOffset, request.byteLength),
      (response) => new Uint8Array(response),
      encodeBatch(encoded),
      metadata,
      { deadline: Date.now() + PD_RAFT_SEND_TIMEOUT_MS },
      (error, response) => {
        peer.inFlight--;
        if (error) {
          this.#log.debug("PD member call failed", { to: id, error: error.details });
        } else if (response !== undefined) {
          try {
            this.#learned(id, pdpb.Member.decode(response));
          } catch (decodeError) {
            this.#log.warn("PD member answered garbage", { to: id, error: String(decodeError) });
          }
        }
        if (!this.#closed) this.#pump(peer);
      },
    );
  }
}
