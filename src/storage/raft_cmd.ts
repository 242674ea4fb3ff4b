/**
 * A `Modification` as the request of a Raft command entry, and back: each modification is one
 * `raft_cmdpb.Request` (Put, Delete or DeleteRange, with its column family), so a write's list
 * becomes the `requests` of one `RaftCmdRequest` and the apply of the committed entry writes
 * exactly the same changes. `raftRequestToModification(modificationToRaftRequest(m))` equals
 * `m`.
 *
 * Column families travel by name ("default", "lock", "write", "raft"); an empty name is
 * "default", as TiKV reads it. A request of another type, or naming an unknown family, is
 * refused with a thrown error: an entry in the log holds only what this module wrote.
 */
import { raft_cmdpb } from "../../proto/mod.ts";
import { isColumnFamily } from "../engine/types.ts";
import type { ColumnFamily } from "../engine/types.ts";
import type { Modification } from "./modification.ts";

/** `modification` as a `raft_cmdpb.Request`. */
export function modificationToRaftRequest(
  modification: Modification,
): raft_cmdpb.Request.$Properties {
  const { cf } = modification;
  switch (modification.type) {
    case "put":
      return {
        cmdType: raft_cmdpb.CmdType.Put,
        put: { cf, key: modification.key, value: modification.value },
      };
    case "delete":
      return { cmdType: raft_cmdpb.CmdType.Delete, delete: { cf, key: modification.key } };
    case "deleteRange":
      return {
        cmdType: raft_cmdpb.CmdType.DeleteRange,
        deleteRange: { cf, startKey: modification.startKey, endKey: modification.endKey },
      };
  }
}

/** The modification a decoded `raft_cmdpb.Request` carries; throws for any other request. */
export function raftRequestToModification(request: raft_cmdpb.Request.$Properties): Modification {
  const empty = new Uint8Array(0);
  switch (request.cmdType) {
    case raft_cmdpb.CmdType.Put: {
      const put = request.put ?? {};
      return {
        type: "put",
        cf: cfNamed(put.cf),
        key: put.key ?? empty,
        value: put.value ?? empty,
      };
    }
    case raft_cmdpb.CmdType.Delete: {
      const deletion = request.delete ?? {};
      return { type: "delete", cf: cfNamed(deletion.cf), key: deletion.key ?? empty };
    }
    case raft_cmdpb.CmdType.DeleteRange: {
      const range = request.deleteRange ?? {};
      if (range.notifyOnly === true) {
        throw new Error("a notify-only DeleteRange request changes nothing: not a modification");
      }
      return {
        type: "deleteRange",
        cf: cfNamed(range.cf),
        startKey: range.startKey ?? empty,
        endKey: range.endKey ?? empty,
      };
    }
    default:
      throw new Error(
        `raft_cmdpb request of type ${
          raft_cmdpb.CmdType[request.cmdType ?? 0]
        } is not a modification`,
      );
  }
}

function cfNamed(name: string | null | undefined): ColumnFamily {
  if (name == null || name === "") return "default";
  if (!isColumnFamily(name)) throw new Error(`raft_cmdpb request names unknown cf "${name}"`);
  return name;
}
