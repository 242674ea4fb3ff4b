/**
 * Static code (this folder's `gen/`, bigint 64-bit fields) against the dynamic paths a gRPC
 * server could take instead: protobufjs reflection over the same `.proto` files (Long 64-bit
 * fields), and @grpc/proto-loader, which is what grpc-js users load services with (protobufjs
 * 7 reflection plus conversion to plain objects with `longs: String`).
 *
 *     deno bench -A proto/proto_bench.ts
 *
 * The workload is the one that matters for throughput: a BatchCommands stream message holding
 * 64 RawPut sub-requests (16-byte keys, 100-byte values), and its 64 responses.
 *
 * @module
 */

import * as protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";
import { kvrpcpb, tikvpb } from "./mod.ts";

const BATCH = 64;
const files = ["tikvpb", "kvrpcpb", "errorpb", "metapb", "raft_serverpb", "eraftpb"].map((name) =>
  new URL(`./${name}.proto`, import.meta.url).pathname
);

function key(i: number): Uint8Array {
  return new TextEncoder().encode(`key${String(i).padStart(13, "0")}`);
}

const request: tikvpb.IBatchCommandsRequest = {
  requests: Array.from({ length: BATCH }, (_, i) => ({
    RawPut: {
      context: {
        regionId: 1n,
        regionEpoch: { confVer: 1n, version: 1n },
        peer: { id: 1n, storeId: 1n },
      },
      key: key(i),
      value: new Uint8Array(100).fill(i),
    },
  })),
  requestIds: Array.from({ length: BATCH }, (_, i) => BigInt(1_000_000 + i)),
};
const requestBytes = tikvpb.BatchCommandsRequest.encode(request).finish();
const response: tikvpb.IBatchCommandsResponse = {
  responses: Array.from({ length: BATCH }, () => ({ RawPut: {} })),
  requestIds: request.requestIds,
};
const getResponse: kvrpcpb.IRawGetResponse = { value: new Uint8Array(100).fill(7) };

const root = protobuf.loadSync(files);
const ReflectRequest = root.lookupType("tikvpb.BatchCommandsRequest");
const ReflectResponse = root.lookupType("tikvpb.BatchCommandsResponse");
const reflectResponse = ReflectResponse.fromObject({
  responses: Array.from({ length: BATCH }, () => ({ RawPut: {} })),
  requestIds: Array.from({ length: BATCH }, (_, i) => 1_000_000 + i),
});

const definition = protoLoader.loadSync(files, {
  longs: String,
  enums: String,
  defaults: false,
  oneofs: true,
});
const batchCommands = (definition["tikvpb.Tikv"] as protoLoader.ServiceDefinition).BatchCommands!;
const loaderResponse = {
  responses: Array.from({ length: BATCH }, () => ({ RawPut: {} })),
  requestIds: Array.from({ length: BATCH }, (_, i) => String(1_000_000 + i)),
};

let sink = 0;

// Warm every path first: the first benchmark in a file otherwise pays for JIT warm-up, which
// on this shared machine biased results against whichever path ran first.
for (let i = 0; i < 2000; i++) {
  sink += tikvpb.BatchCommandsRequest.decode(requestBytes).requests.length;
  sink += ReflectRequest.decode(requestBytes) ? 1 : 0;
  sink += batchCommands.requestDeserialize(requestBytes as Buffer) ? 1 : 0;
  sink += tikvpb.BatchCommandsResponse.encode(response).finish().length;
  sink += ReflectResponse.encode(reflectResponse).finish().length;
  sink += batchCommands.responseSerialize(loaderResponse).length;
}

Deno.bench("decode BatchCommandsRequest x64 RawPut: static (bigint)", {
  group: "decode",
  baseline: true,
}, () => {
  sink += tikvpb.BatchCommandsRequest.decode(requestBytes).requests.length;
});
Deno.bench("decode BatchCommandsRequest x64 RawPut: protobufjs reflection (Long)", {
  group: "decode",
}, () => {
  sink +=
    (ReflectRequest.decode(requestBytes) as unknown as { requests: unknown[] }).requests.length;
});
Deno.bench(
  "decode BatchCommandsRequest x64 RawPut: @grpc/proto-loader",
  { group: "decode" },
  () => {
    sink +=
      (batchCommands.requestDeserialize(requestBytes as Buffer) as { requests: unknown[] }).requests
        .length;
  },
);

Deno.bench(
  "encode BatchCommandsResponse x64: static (bigint)",
  { group: "encode", baseline: true },
  () => {
    sink += tikvpb.BatchCommandsResponse.encode(response).finish().length;
  },
);
Deno.bench(
  "encode BatchCommandsResponse x64: protobufjs reflection (Long)",
  { group: "encode" },
  () => {
    sink += ReflectResponse.encode(reflectResponse).finish().length;
  },
);
Deno.bench("encode BatchCommandsResponse x64: @grpc/proto-loader", { group: "encode" }, () => {
  sink += batchCommands.responseSerialize(loaderResponse).length;
});

Deno.bench("encode+decode RawGetResponse (100 B value): static", { group: "unary" }, () => {
  sink +=
    kvrpcpb.RawGetResponse.decode(kvrpcpb.RawGetResponse.encode(getResponse).finish()).value.length;
});

addEventListener("unload", () => {
  if (sink === -1) console.log(sink);
});
