/**
 * The write command of one put (16-byte key, 100-byte value, a full header) through protobufjs's
 * generated raft_cmdpb code — as the write path and apply use it today — and through the
 * hand-written `cmd_codec.ts`.
 *
 *     deno bench -A src/raftstore/cmd_codec_bench.ts
 *
 * "generated: encode" includes building the request objects (`modificationToRaftRequest`), as
 * the write path does before `encodeCommand`; the hand-written encoder takes the modifications.
 *
 * @module
 */

import { raft_cmdpb } from "../../proto/mod.ts";
import type { Modification } from "../storage/modification.ts";
import { modificationToRaftRequest } from "../storage/raft_cmd.ts";
import { decodeCommandFast, encodeWriteCommand, type WriteCommandHeader } from "./cmd_codec.ts";

const header: WriteCommandHeader = {
  regionId: 2n,
  peer: { id: 3n, storeId: 1n, role: 0 },
  regionEpoch: { confVer: 1n, version: 5n },
};
const key = new Uint8Array(16).map((_, i) => 0x61 + i);
const value = new Uint8Array(100).fill(7);
const modifications: Modification[] = [{ type: "put", cf: "default", key, value }];

function generatedEncode(): Uint8Array {
  return raft_cmdpb.RaftCmdRequest.encode({
    header: { ...header },
    requests: modifications.map(modificationToRaftRequest),
  }).finish();
}

const bytes = encodeWriteCommand(header, modifications);
let sink = 0;

Deno.bench("generated: encode", { group: "encode", baseline: true }, () => {
  sink += generatedEncode().length;
});
Deno.bench("hand-written: encode", { group: "encode" }, () => {
  sink += encodeWriteCommand(header, modifications).length;
});

Deno.bench("generated: decode", { group: "decode", baseline: true }, () => {
  sink += raft_cmdpb.RaftCmdRequest.decode(bytes).requests.length;
});
Deno.bench("hand-written: decode", { group: "decode" }, () => {
  sink += decodeCommandFast(bytes).requests!.length;
});

Deno.bench("generated: encode + decode", { group: "both", baseline: true }, () => {
  sink += raft_cmdpb.RaftCmdRequest.decode(generatedEncode()).requests.length;
});
Deno.bench("hand-written: encode + decode", { group: "both" }, () => {
  sink += decodeCommandFast(encodeWriteCommand(header, modifications)).requests!.length;
});

// Why small commands share slabs (src/constants.ts, RAFT_COMMAND_SLAB_BYTES).
const slab = new Uint8Array(8 * 1024);
let slabUsedBytes = 0;
Deno.bench("new Uint8Array(150)", { group: "allocate 150 bytes", baseline: true }, () => {
  sink += new Uint8Array(150).length;
});
Deno.bench("view of a slab", { group: "allocate 150 bytes" }, () => {
  if (slabUsedBytes + 150 > slab.length) slabUsedBytes = 0;
  sink += slab.subarray(slabUsedBytes, slabUsedBytes += 150).length;
});

addEventListener("unload", () => {
  if (sink < 0) console.log(sink); // Keeps the results alive.
});
