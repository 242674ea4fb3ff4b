/**
 * The commands a region's log carries: `raft_cmdpb.RaftCmdRequest` in an entry's data (TiKV's
 * bytes), built from writes and admin operations, and the checks both doors make — the
 * proposing leader and every applying replica (DESIGN.md §4.1: "Apply re-checks the epoch").
 *
 * Writes arrive as src/storage's `Modification`s (Put, Delete or DeleteRange of one column
 * family), converted to and from `raft_cmdpb.Request` by src/storage's `raft_cmd.ts`, so the
 * storage layer's write path and the raftstore's apply read the same bytes the same way. Region
 * bounds are data keys (src/storage/region_range.ts); CF `raft` belongs to no region.
 *
 * Epoch rules (TiKV's `AdminCmdEpochState`): normal writes check the epoch's `version` (splits
 * and merges change which keys a region holds); ChangePeer checks `confVer`; RollbackMerge
 * `version`; TransferLeader, BatchSplit, PrepareMerge and CommitMerge both (TiKV's CommitMerge
 * checks only `version`; both here, so that the target's members cannot change under a merge
 * whose source was aligned with them); CompactLog neither (it is about this replica's log, not
 * the region's keys or members).
 *
 * @module
 */

import { raft_cmdpb } from "../../proto/mod.ts";
import type { ColumnFamily } from "../engine/types.ts";
import { assert, type ConfChangeType, type Entry } from "../raft/mod.ts";
import type { Modification } from "../storage/modification.ts";
import { modificationToRaftRequest, raftRequestToModification } from "../storage/raft_cmd.ts";
import { DATA_KEYS_END, regionContainsKey } from "../storage/region_range.ts";
import { compareBytes, successor } from "../util/bytes.ts";
import { decodeCommandFast } from "./cmd_codec.ts";
import type { RegionError } from "./errors.ts";
import { LOCAL_PREFIX, REGION_META_KIND, STORE_IDENT_KIND } from "./keys.ts";
import { type PeerMeta, type RegionEpoch, type RegionMeta, regionToProto } from "./local_state.ts";

/** A decoded command: kvproto's shape as protobufjs hands it out. */
export type RaftCmd = raft_cmdpb.RaftCmdRequest.$Properties;

export type { Modification };

/** The column family a request names, or null if it names none of Basalt's. */
export function cfOf(name: string | null | undefined): ColumnFamily | null {
  if (name === undefined || name === null || name === "" || name === "default") return "default";
  if (name === "lock" || name === "write" || name === "raft") return name;
  return null;
}

/** The header every command carries: region, proposing peer, epoch. */
export function commandHeader(
  region: RegionMeta,
  peer: PeerMeta,
): raft_cmdpb.RaftRequestHeader.$Properties {
  return {
    regionId: region.id,
    peer: { id: peer.id, storeId: peer.storeId, role: peer.role },
    regionEpoch: { ...region.regionEpoch },
  };
}

/** A write command of `modifications` for `region`, proposed through `peer`. */
export function writeCommand(
  region: RegionMeta,
  peer: PeerMeta,
  modifications: readonly Modification[],
): RaftCmd {
  return {
    header: commandHeader(region, peer),
    requests: modifications.map(modificationToRaftRequest),
  };
}

/** The bytes of a command, for an entry's data. */
export function encodeCommand(cmd: RaftCmd): Uint8Array {
  return raft_cmdpb.RaftCmdRequest.encode(cmd).finish();
}

/**
 * The command in an entry's data. Entries are written only by `encodeCommand` and read back from
 * the log, so bytes that do not decode are a bug or corruption (asserted), never a value.
 */
export function decodeCommand(data: Uint8Array): RaftCmd {
  try {
    return decodeCommandFast(data);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    assert(false, `a log entry's data is not a RaftCmdRequest: ${message}`);
  }
}

/** Which parts of the epoch a command is checked against. */
export interface EpochCheck {
  version: boolean;
  confVer: boolean;
}

/** TiKV's epoch rules for a command (module header). */
export function epochCheckOf(cmd: RaftCmd): EpochCheck {
  const admin = cmd.adminRequest;
  if (admin === null || admin === undefined) return { version: true, confVer: false };
  switch (admin.cmdType) {
    case raft_cmdpb.AdminCmdType.CompactLog:
      return { version: false, confVer: false };
    case raft_cmdpb.AdminCmdType.ChangePeer:
      return { version: false, confVer: true };
    case raft_cmdpb.AdminCmdType.RollbackMerge:
      return { version: true, confVer: false };
    default:
      return { version: true, confVer: true };
  }
}

/** True if `epoch` is stale against the region's current `current` under `check`. */
export function epochIsStale(
  epoch: RegionEpoch,
  current: RegionEpoch,
  check: EpochCheck,
): boolean {
  return (check.version && epoch.version !== current.version) ||
    (check.confVer && epoch.confVer !== current.confVer);
}

/** EpochNotMatch for `cmd` against `region`, or null when the epoch is current. */
export function checkEpoch(
  cmd: RaftCmd,
  region: RegionMeta,
  atApply: boolean,
): RegionError | null {
  const e = cmd.header?.regionEpoch;
  const epoch = { confVer: e?.confVer ?? 0n, version: e?.version ?? 0n };
  if (!epochIsStale(epoch, region.regionEpoch, epochCheckOf(cmd))) return null;
  return { code: "EpochNotMatch", regionId: region.id, currentRegion: region, atApply };
}

/** True if data key `key` lies in the region's [startKey, endKey) (empty end = +infinity). */
export function keyInRegion(key: Uint8Array, region: RegionMeta): boolean {
  return regionContainsKey(region, key);
}

/** The first key after the raftstore's own records in CF raft (keys.ts: 0x01 0x01..0x03). */
const LOCAL_RECORDS_START = new Uint8Array([LOCAL_PREFIX, STORE_IDENT_KIND]);
const LOCAL_RECORDS_END = new Uint8Array([LOCAL_PREFIX, REGION_META_KIND + 1]);

/** True if [start, end) (end empty = unbounded) meets the raftstore's own records in CF raft. */
function touchesLocalRecords(start: Uint8Array, end: Uint8Array): boolean {
  return compareBytes(start, LOCAL_RECORDS_END) < 0 &&
    (end.length === 0 || compareBytes(end, LOCAL_RECORDS_START) > 0);
}

/**
 * The writes of a command as modifications, or why they are not acceptable for `region`:
 * writes only (reads go through the read path), a known column family, data keys inside the
 * region, ranges not reversed (an empty DeleteRange end means "to the region's end", as TiKV
 * reads it), nothing on the raftstore's own records in CF `raft`. CF `raft` holds other tenants
 * (the raw TTL index) outside every region's range, so its keys are not held to the range.
 */
export function writeModifications(
  cmd: RaftCmd,
  region: RegionMeta,
): { modifications: Modification[] } | { error: RegionError } {
  const modifications: Modification[] = [];
  for (const request of cmd.requests ?? []) {
    let m: Modification;
    try {
      m = raftRequestToModification(request);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      return { error: { code: "InvalidCommand", regionId: region.id, reason } };
    }
    const problem = modificationProblem(m, region);
    if (problem !== null) return { error: problem };
    modifications.push(m);
  }
  return { modifications };
}

/** Checks of `writeModifications` for one modification. */
function modificationProblem(m: Modification, region: RegionMeta): RegionError | null {
  return m.type === "deleteRange"
    ? writeProblem(region, m.cf, m.startKey, m.endKey)
    : writeProblem(region, m.cf, m.key, undefined);
}

/**
 * Checks of `writeModifications` for one write on `cf`: a put or delete of `start` (`end`
 * undefined), or a DeleteRange [start, end) (an empty end: to the region's end). Null when
 * acceptable. Apply's object-free reading of a write command (apply.ts) checks with it too.
 */
export function writeProblem(
  region: RegionMeta,
  cf: ColumnFamily,
  start: Uint8Array,
  end: Uint8Array | undefined,
): RegionError | null {
  const invalid = (reason: string): RegionError => ({
    code: "InvalidCommand",
    regionId: region.id,
    reason,
  });
  const outside = (key: Uint8Array): RegionError => ({
    code: "KeyNotInRegion",
    regionId: region.id,
    key,
    startKey: region.startKey,
    endKey: region.endKey,
  });
  if (cf === "raft") {
    if (end !== undefined && end.length === 0) {
      return invalid("an unbounded DeleteRange in CF raft");
    }
    if (touchesLocalRecords(start, end ?? successor(start))) {
      return invalid("a write to the raftstore's own records in CF raft");
    }
  } else if (!keyInRegion(start, region)) {
    return outside(start);
  }
  if (end === undefined || end.length === 0) return null;
  if (compareBytes(start, end) > 0) return invalid("DeleteRange with start_key after end_key");
  if (cf !== "raft" && region.endKey.length > 0 && compareBytes(end, region.endKey) > 0) {
    return outside(end);
  }
  return null;
}

/** Where an unbounded DeleteRange of `region` ends (module header). */
export function deleteRangeEnd(endKey: Uint8Array, region: RegionMeta): Uint8Array {
  if (endKey.length > 0) return endKey;
  return region.endKey.length > 0 ? region.endKey : DATA_KEYS_END;
}

/** Checks the writes of a command (see `writeModifications`); null when acceptable. */
export function checkWriteRequests(cmd: RaftCmd, region: RegionMeta): RegionError | null {
  const result = writeModifications(cmd, region);
  return "error" in result ? result.error : null;
}

/** A ChangePeer admin command proposed through `through` (its region and epoch). */
export function changePeerCommand(
  through: { region(): RegionMeta; meta: PeerMeta },
  change: { changeType: ConfChangeType; peer: PeerMeta },
): RaftCmd {
  const { changeType, peer } = change;
  return {
    header: commandHeader(through.region(), through.meta),
    adminRequest: {
      cmdType: raft_cmdpb.AdminCmdType.ChangePeer,
      changePeer: {
        changeType: changeType as number,
        peer: { id: peer.id, storeId: peer.storeId, role: peer.role },
      },
    },
  };
}

/** One new region of a split: where it starts, its id, and one new peer id per parent peer. */
export interface SplitSpec {
  splitKey: Uint8Array;
  newRegionId: bigint;
  /** In the order of the parent region's `peers`. */
  newPeerIds: bigint[];
}

/**
 * A BatchSplit admin command proposed through `through` (TiKV's `AdminCmdType.BatchSplit`):
 * the region is cut at every split key (ascending). With `rightDerive` the parent keeps the
 * rightmost part and the new regions take the parts before it, in order; without, the parent
 * keeps the leftmost part.
 */
export function batchSplitCommand(
  through: { region(): RegionMeta; meta: PeerMeta },
  splits: readonly SplitSpec[],
  rightDerive: boolean,
): RaftCmd {
  return {
    header: commandHeader(through.region(), through.meta),
    adminRequest: {
      cmdType: raft_cmdpb.AdminCmdType.BatchSplit,
      splits: {
        requests: splits.map((s) => ({
          splitKey: s.splitKey,
          newRegionId: s.newRegionId,
          newPeerIds: s.newPeerIds,
        })),
        rightDerive,
      },
    },
  };
}

/**
 * The regions a BatchSplit of `region` makes, in key order (the parent, with its new range,
 * among them), or why the split cannot be made: split keys strictly ascending and strictly
 * inside the region, one id per new region and one new peer id per peer, no id reused. The
 * version goes up by the number of new regions (TiKV's `exec_batch_split`); conf_ver stays.
 */
export function regionsAfterSplit(
  region: RegionMeta,
  splits: readonly SplitSpec[],
  rightDerive: boolean,
): { regions: RegionMeta[]; derived: number } | { problem: string } {
  if (splits.length === 0) return { problem: "a split with no split keys" };
  let previous = region.startKey;
  const ids = new Set<bigint>([region.id, ...region.peers.map((p) => p.id)]);
  for (const [i, s] of splits.entries()) {
    if (compareBytes(s.splitKey, previous) <= 0) {
      return { problem: `split key ${i} is not after the region's start or the key before it` };
    }
    if (region.endKey.length > 0 && compareBytes(s.splitKey, region.endKey) >= 0) {
      return { problem: `split key ${i} is not before the region's end` };
    }
    previous = s.splitKey;
    if (s.newPeerIds.length !== region.peers.length) {
      return {
        problem:
          `split ${i} names ${s.newPeerIds.length} peer ids for ${region.peers.length} peers`,
      };
    }
    for (const id of [s.newRegionId, ...s.newPeerIds]) {
      if (id === 0n || ids.has(id)) return { problem: `split ${i} reuses or omits an id (${id})` };
      ids.add(id);
    }
  }
  const version = region.regionEpoch.version + BigInt(splits.length);
  const bounds = [region.startKey, ...splits.map((s) => s.splitKey), region.endKey];
  const derived = rightDerive ? splits.length : 0;
  const regions: RegionMeta[] = [];
  let next = 0;
  for (let i = 0; i < bounds.length - 1; i++) {
    const range = { startKey: bounds[i]!, endKey: bounds[i + 1]! };
    const regionEpoch = { confVer: region.regionEpoch.confVer, version };
    if (i === derived) {
      regions.push({ ...region, ...range, regionEpoch });
      continue;
    }
    const s = splits[next++]!;
    regions.push({
      id: s.newRegionId,
      ...range,
      regionEpoch,
      peers: region.peers.map((p, j) => ({
        id: s.newPeerIds[j]!,
        storeId: p.storeId,
        role: p.role,
      })),
    });
  }
  return { regions, derived };
}

/**
 * PrepareMerge (the first step of merging `through`'s region into `target`, TiKV's protocol):
 * `minIndex` is the lowest log index every peer of the source holds, so that CommitMerge can
 * carry the entries after it to a replica that has not applied them.
 */
export function prepareMergeCommand(
  through: { region(): RegionMeta; meta: PeerMeta },
  merge: { minIndex: bigint; target: RegionMeta },
): RaftCmd {
  return {
    header: commandHeader(through.region(), through.meta),
    adminRequest: {
      cmdType: raft_cmdpb.AdminCmdType.PrepareMerge,
      prepareMerge: { minIndex: merge.minIndex, target: regionToProto(merge.target) },
    },
  };
}

/**
 * CommitMerge, proposed to the target through `through`: the source as PrepareMerge left it,
 * the PrepareMerge's index, and the source's entries after its `minIndex` up to that index.
 */
export function commitMergeCommand(
  through: { region(): RegionMeta; meta: PeerMeta },
  merge: { source: RegionMeta; commit: bigint; entries: readonly Entry[] },
): RaftCmd {
  return {
    header: commandHeader(through.region(), through.meta),
    adminRequest: {
      cmdType: raft_cmdpb.AdminCmdType.CommitMerge,
      commitMerge: {
        source: regionToProto(merge.source),
        commit: merge.commit,
        entries: merge.entries.map((e) => ({
          entryType: e.entryType as number,
          term: e.term,
          index: e.index,
          data: e.data,
          context: e.context,
        })),
      },
    },
  };
}

/** RollbackMerge: the source gives up the merge PrepareMerge at `commit` began. */
export function rollbackMergeCommand(
  through: { region(): RegionMeta; meta: PeerMeta },
  commit: bigint,
): RaftCmd {
  return {
    header: commandHeader(through.region(), through.meta),
    adminRequest: {
      cmdType: raft_cmdpb.AdminCmdType.RollbackMerge,
      rollbackMerge: { commit },
    },
  };
}

/** Whether `a` ends where `b` starts (an empty end is +infinity, which starts nothing). */
export function adjacent(a: { endKey: Uint8Array }, b: { startKey: Uint8Array }): boolean {
  return a.endKey.length > 0 && compareBytes(a.endKey, b.startKey) === 0;
}

/** Whether two regions have their peers on the same stores (a merge's precondition). */
export function sameStores(a: RegionMeta, b: RegionMeta): boolean {
  const stores = (r: RegionMeta) =>
    r.peers.map((p) => p.storeId).sort((x, y) => (x < y ? -1 : x > y ? 1 : 0)).join(",");
  return stores(a) === stores(b);
}
