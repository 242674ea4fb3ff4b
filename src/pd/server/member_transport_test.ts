/**
 * The PD members' internal service on loopback: Raft messages (entries, snapshots) survive the
 * eraftpb round trip; a batch reaches its member and the answer tells who it is; a batch of
 * another group or for another member is refused; a peer's queue is bounded while it is down;
 * the transport reconnects when the peer comes back on its port.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { eraftpb } from "../../../proto/mod.ts";
import { PD_RAFT_SEND_QUEUE_MAX_MESSAGES } from "../../constants.ts";
import { type Message, MessageType, newConfState, newEntry, newMessage } from "../../raft/mod.ts";
import { Logger } from "../../server/log.ts";
import { startGrpcEdge } from "../../server/grpc_server.ts";
import {
  decodeBatch,
  encodeBatch,
  encodeOne,
  GrpcMemberTransport,
  memberServiceDefinition,
  memberServiceHandlers,
  messageFromProto,
  messageToProto,
} from "./member_transport.ts";

const GROUP = 77n;
const WAIT_MS = 10_000;
const log = new Logger({ level: "error", file: "" });
const EDGE = {
  maxConnections: 16,
  concurrentStreams: 16,
  idleTimeoutMs: 0,
  keepaliveTimeMs: 0,
  keepaliveTimeoutMs: 1_000,
};

function append(to: bigint, index: bigint): Message {
  return newMessage({
    msgType: MessageType.MsgAppend,
    from: 1n,
    to,
    term: 3n,
    logTerm: 3n,
    index: index - 1n,
    commit: index - 1n,
    entries: [newEntry({ term: 3n, index, data: new TextEncoder().encode(`{"w":[]}`) })],
  });
}

/** A member's service on `port` (0: any), recording what it receives. */
function serveMember(id: bigint, port = 0) {
  const received: Message[] = [];
  const server = startGrpcEdge(`127.0.0.1:${port}`, {
    services: [{
      definition: memberServiceDefinition(),
      handlers: memberServiceHandlers({
        groupId: GROUP,
        selfId: id,
        self: () => ({ name: `pd${id}`, memberId: id, clientUrls: [`http://127.0.0.1:${id}`] }),
        deliver: (messages) => received.push(...messages),
        learned: () => {},
        log,
      }),
    }],
    edge: EDGE,
    log,
  });
  return { server, received };
}

async function until(what: string, done: () => boolean): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.ok(done(), `not within ${WAIT_MS} ms: ${what}`);
}

function rawCall(port: number, bytes: Uint8Array): Promise<grpc.ServiceError | null> {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  return new Promise((resolve) => {
    client.makeUnaryRequest<Uint8Array, Buffer>(
      "/basalt.PdMembers/Send",
      (b) => Buffer.from(b),
      (b) => b,
      bytes,
      { deadline: Date.now() + WAIT_MS },
      (error) => {
        client.close();
        resolve(error);
      },
    );
  });
}

Deno.test("a Raft message with entries and a snapshot survives the eraftpb round trip", () => {
  const message = newMessage({
    msgType: MessageType.MsgSnapshot,
    from: 1n,
    to: 2n,
    term: 4n,
    snapshot: {
      data: new TextEncoder().encode(`{"pairs":[["a","b"]]}`),
      metadata: { confState: newConfState({ voters: [1n, 2n, 3n] }), index: 9n, term: 4n },
    },
  });
  const bytes = eraftpb.Message.encode(messageToProto(message)).finish();
  assert.deepEqual(messageFromProto(eraftpb.Message.decode(bytes)), message);
  const withEntries = append(2n, 5n);
  const again = eraftpb.Message.encode(messageToProto(withEntries)).finish();
  assert.deepEqual(messageFromProto(eraftpb.Message.decode(again)), withEntries);
  // A local message type never comes from a peer.
  const local = eraftpb.Message.encode({ msgType: eraftpb.MessageType.MsgHup, to: 2n }).finish();
  assert.equal(messageFromProto(eraftpb.Message.decode(local)), null);
});

Deno.test("PD members' service: a batch reaches its member, which answers who it is; another group's is refused", async () => {
  const member = serveMember(2n);
  const learned: string[] = [];
  const transport = new GrpcMemberTransport({
    groupId: GROUP,
    peers: [{ id: 2n, address: `127.0.0.1:${member.server.port}` }],
    credentials: grpc.credentials.createInsecure(),
    self: () => ({ name: "pd1", clientUrls: ["http://127.0.0.1:1"] }),
    learned: (id, answer) => learned.push(`${id}:${answer.name}:${answer.clientUrls.join(",")}`),
    log,
  });
  try {
    transport.send([append(2n, 5n), append(2n, 6n), append(3n, 6n)]); // 3 is no peer: dropped
    await until("two messages delivered", () => member.received.length === 2);
    assert.deepEqual(member.received.map((m) => m.entries[0]!.index), [5n, 6n]);
    await until("the answer learned", () => learned.length > 0);
    assert.equal(learned[0], "2:pd2:http://127.0.0.1:2");

    const otherGroup = await rawCall(
      member.server.port,
      encodeBatch([encodeOne(5n, append(2n, 7n))]),
    );
    assert.equal(otherGroup?.code, grpc.status.FAILED_PRECONDITION);
    assert.match(otherGroup?.details ?? "", /--initial-cluster differ/);
    const notMine = await rawCall(
      member.server.port,
      encodeBatch([encodeOne(GROUP, append(3n, 7n))]),
    );
    assert.equal(notMine?.code, grpc.status.INVALID_ARGUMENT);
    const garbage = await rawCall(member.server.port, new Uint8Array([0x0a, 0xff, 0xff]));
    assert.equal(garbage?.code, grpc.status.INVALID_ARGUMENT);
    assert.equal(member.received.length, 2, "nothing refused was delivered");
    assert.equal(decodeBatch(encodeBatch([])).length, 0);
  } finally {
    transport.close();
    await member.server.shutdown(1_000);
  }
});

Deno.test("PD members' transport: a down peer's queue is bounded; the transport reconnects when it is back", async () => {
  // A port nobody listens on yet: the peer is down until it starts there below.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const transport = new GrpcMemberTransport({
    groupId: GROUP,
    peers: [{ id: 2n, address: `127.0.0.1:${port}` }],
    credentials: grpc.credentials.createInsecure(),
    self: () => ({ name: "pd1", clientUrls: [] }),
    learned: () => {},
    log,
  });
  let back: ReturnType<typeof serveMember> | null = null;
  try {
    const flood = Array.from(
      { length: PD_RAFT_SEND_QUEUE_MAX_MESSAGES * 2 },
      (_, i) => append(2n, BigInt(i + 2)),
    );
    transport.send(flood);
    assert.ok(
      transport.droppedOf(2n) >= PD_RAFT_SEND_QUEUE_MAX_MESSAGES / 2,
      `dropped ${transport.droppedOf(2n)} of ${flood.length} while the peer is down`,
    );
    back = serveMember(2n, port);
    const server = back;
    // Raft resends: keep sending a fresh message until one gets through.
    await until("a message delivered after the peer came back", () => {
      transport.send([append(2n, 1_000_000n)]);
      return server.received.length > 0;
    });
  } finally {
    transport.close();
    await back?.server.shutdown(1_000);
  }
});
