/**
 * Where operators are pushed: the latest heartbeat stream of each store, at most
 * `PD_HEARTBEAT_STREAMS_MAX` of them (past it a store's operators wait for its next heartbeat's
 * answer), forgotten when the stream ends.
 */
import assert from "node:assert/strict";
import type * as grpc from "@grpc/grpc-js";
import { PD_HEARTBEAT_STREAMS_MAX } from "../../constants.ts";
import { HeartbeatStreams } from "./heartbeat_stream.ts";

type Call = grpc.ServerDuplexStream<Buffer, Buffer>;

function fakeCall(): Call {
  return { writableEnded: false, destroyed: false } as unknown as Call;
}

Deno.test("one stream per store, replaced by the store's newer stream, forgotten when it ends", () => {
  const streams = new HeartbeatStreams();
  const first = fakeCall();
  const second = fakeCall();
  streams.bind(1n, first);
  streams.bind(2n, first);
  streams.bind(1n, second);
  assert.equal(streams.size, 2);
  streams.unbind(first);
  assert.equal(streams.size, 1, "store 2's stream ended; store 1 has its newer one");
  streams.unbind(second);
  assert.equal(streams.size, 0);
});

Deno.test("at most PD_HEARTBEAT_STREAMS_MAX stores are bound", () => {
  const streams = new HeartbeatStreams();
  const call = fakeCall();
  for (let storeId = 1; storeId <= PD_HEARTBEAT_STREAMS_MAX + 10; storeId++) {
    streams.bind(BigInt(storeId), call);
  }
  assert.equal(streams.size, PD_HEARTBEAT_STREAMS_MAX);
});
