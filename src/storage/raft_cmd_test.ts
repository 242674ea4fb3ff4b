/**
 * A `Modification` maps 1:1 onto a `raft_cmdpb.Request` (Put, Delete, DeleteRange with its
 * column family) and back, through the wire encoding a Raft entry would carry.
 */
import assert from "node:assert/strict";
import { raft_cmdpb } from "../../proto/mod.ts";
import { toHex, utf8 } from "../util/bytes.ts";
import type { Modification } from "./modification.ts";
import { modificationToRaftRequest, raftRequestToModification } from "./raft_cmd.ts";

const MODIFICATIONS: Modification[] = [
  { type: "put", cf: "default", key: utf8("k"), value: utf8("v") },
  { type: "put", cf: "lock", key: utf8("l"), value: new Uint8Array(0) },
  { type: "put", cf: "raft", key: utf8("\x01t"), value: new Uint8Array(0) },
  { type: "delete", cf: "write", key: utf8("w") },
  { type: "deleteRange", cf: "default", startKey: utf8("a"), endKey: utf8("z") },
];

/** A modification as text, bytes in hex (decoded bytes are Buffers, not plain Uint8Arrays). */
function show(modification: Modification): string {
  return Object.entries(modification)
    .map(([name, value]) => `${name}=${value instanceof Uint8Array ? toHex(value) : value}`)
    .join(" ");
}

Deno.test("every modification survives a RaftCmdRequest entry's encoding unchanged", () => {
  const bytes = raft_cmdpb.RaftCmdRequest.encode({
    header: { regionId: 1n, regionEpoch: { confVer: 1n, version: 1n } },
    requests: MODIFICATIONS.map(modificationToRaftRequest),
  }).finish();
  const decoded = raft_cmdpb.RaftCmdRequest.decode(bytes);
  const back = decoded.requests.map(raftRequestToModification);
  assert.deepEqual(back.map(show), MODIFICATIONS.map(show));
  assert.deepEqual(
    decoded.requests.map((request) => raft_cmdpb.CmdType[request.cmdType ?? 0]),
    ["Put", "Put", "Put", "Delete", "DeleteRange"],
  );
});

Deno.test("a request that is not a modification, or names an unknown cf, is refused by name", () => {
  assert.throws(
    () => raftRequestToModification({ cmdType: raft_cmdpb.CmdType.Get, get: { key: utf8("k") } }),
    /type Get is not a modification/,
  );
  assert.throws(
    () =>
      raftRequestToModification({
        cmdType: raft_cmdpb.CmdType.Put,
        put: { cf: "nope", key: utf8("k") },
      }),
    /unknown cf "nope"/,
  );
  assert.throws(
    () =>
      raftRequestToModification({
        cmdType: raft_cmdpb.CmdType.DeleteRange,
        deleteRange: { startKey: utf8("a"), endKey: utf8("b"), notifyOnly: true },
      }),
    /notify-only/,
  );
  const emptyCf = raftRequestToModification({
    cmdType: raft_cmdpb.CmdType.Delete,
    delete: { cf: "", key: utf8("k") },
  });
  assert.equal(emptyCf.cf, "default", "an empty cf name is default, as TiKV reads it");
});
