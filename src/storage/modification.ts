/**
 * `Modification`: one change to the engine, as data. Every write of the store — raw puts and
 * deletes, a transaction command's `MvccTxn`, delete-ranges, GC — leaves its command as a list
 * of these and goes through the one write path (`write_path.ts`). The group commit adds them to
 * a WriteBatch today; with replication each list becomes one `raft_cmdpb.RaftCmdRequest` entry
 * whose apply writes them (`raft_cmd.ts` maps each one onto a `raft_cmdpb.Request`, 1:1).
 *
 * Keys are data keys of their column family (see `region_range.ts`): raw keys as they are,
 * transactional keys memcomparable-encoded (with a ts in `write` and `default`).
 */
import type { ColumnFamily } from "../engine/types.ts";

/** A put: `value` under `key` in `cf` (raft_cmdpb `CmdType.Put`). */
export interface PutModification {
  type: "put";
  cf: ColumnFamily;
  key: Uint8Array;
  value: Uint8Array;
}

/** A delete of `key` in `cf` (raft_cmdpb `CmdType.Delete`). */
export interface DeleteModification {
  type: "delete";
  cf: ColumnFamily;
  key: Uint8Array;
}

/** A delete of every key in `[startKey, endKey)` of `cf` (raft_cmdpb `CmdType.DeleteRange`). */
export interface DeleteRangeModification {
  type: "deleteRange";
  cf: ColumnFamily;
  startKey: Uint8Array;
  endKey: Uint8Array;
}

/** One change to the engine. */
export type Modification = PutModification | DeleteModification | DeleteRangeModification;

/** Key and value bytes a modification carries (TiKV's `write_size`, for batching decisions). */
export function modificationSizeBytes(modification: Modification): number {
  switch (modification.type) {
    case "put":
      return modification.key.length + modification.value.length;
    case "delete":
      return modification.key.length;
    case "deleteRange":
      return modification.startKey.length + modification.endKey.length;
  }
}
