/**
 * Apply: one peer's committed entries into the round's apply WriteBatch (Ready duty 3), with the
 * `RaftApplyState` that records them, and the answer each entry owes its proposer.
 *
 * Pure apart from the batch and the peer storage it is handed: it never writes the engine; the
 * store writes the one batch of all peers (unsynced: the log is the durability) and then answers.
 *
 * Invariants:
 * - Idempotence (issue #10: "applying an entry twice must be harmless"). An entry at or below
 *   the applied index is skipped, and every entry's effects go into the same batch as the apply
 *   state that carries its index, so the engine holds both or neither (peer_storage.ts). On a
 *   restart the peer replays (applied, commit] and ends where it would have.
 * - The epoch is checked again here (TiKV's `check_region_epoch` at apply): a write proposed under
 *   an epoch that changed before it applied is refused with EpochNotMatch and changes nothing.
 * - Membership. src/raft puts a conf change in force when it is appended, so apply must never
 *   refuse one (that would leave Raft and the region's peers disagreeing). The leader makes a
 *   refusal impossible: it proposes a ChangePeer only under the applied epoch and only when no
 *   earlier conf change is unapplied (peer.ts), so the confVer a ChangePeer carries is always the
 *   one it applies on. Apply asserts that, and mirrors src/raft's `applyConfChangeToConfState`
 *   exactly (a change sets one peer's role, or removes it) and bumps `confVer` by one.
 * - A replica that applies its own removal writes RegionLocalState Tombstone and applies nothing
 *   after it; the store destroys it once the batch is written.
 *
 * @module
 */

import { metapb, raft_cmdpb } from "../../proto/mod.ts";
import type { WriteBatch } from "../engine/types.ts";
import {
  assert,
  type ConfChange,
  ConfChangeType,
  decodeConfChange,
  type Entry,
  EntryType,
} from "../raft/mod.ts";
import { compareBytes } from "../util/bytes.ts";
import {
  checkEpoch,
  decodeCommand,
  deleteRangeEnd,
  epochIsStale,
  type Modification,
  type RaftCmd,
  regionsAfterSplit,
  type SplitSpec,
  writeModifications,
} from "./command.ts";
import type { RegionError } from "./errors.ts";
import { type PeerMeta, PeerState, type RegionMeta, regionToProto } from "./local_state.ts";
import { type PeerStorage, writeSplitPeerState } from "./peer_storage.ts";
import { clearRegionData } from "./snapshot.ts";

/** What a command did: its responses, or the error that refused it. */
export type CmdResult =
  | {
    ok: true;
    /** The index of the entry that carried the command. */
    index: bigint;
    responses: raft_cmdpb.Response.$Properties[];
    adminResponse: raft_cmdpb.AdminResponse.$Properties | undefined;
  }
  | { ok: false; error: RegionError };

/** The answer owed for the entry at (index, term). */
export interface AppliedEntry {
  index: bigint;
  term: bigint;
  result: CmdResult;
}

/** Everything one peer's apply did, for the store to act on once the batch is written. */
export interface ApplyOutcome {
  /** One per non-empty entry applied (the empty entries of new terms owe nobody an answer). */
  applied: AppliedEntry[];
  /** The region changed (a conf change applied). */
  regionChanged: boolean;
  /** Peers that a conf change removed (other than this one): they may be told to go. */
  removedPeers: PeerMeta[];
  /** This replica applied its own removal: it is Tombstone and must be destroyed. */
  removedSelf: boolean;
  /**
   * New regions a split made whose replicas here are to run (created, or replacing an
   * uninitialized one): the store opens them once the batch is written.
   */
  splitRegions: RegionMeta[];
}

/** Applies `entries` (consecutive, committed) of the peer over `storage` into `batch`. */
export function applyEntries(
  ctx: { storage: PeerStorage; batch: WriteBatch; selfPeerId: bigint },
  entries: readonly Entry[],
): ApplyOutcome {
  const { storage, batch } = ctx;
  const outcome: ApplyOutcome = {
    applied: [],
    regionChanged: false,
    removedPeers: [],
    removedSelf: false,
    splitRegions: [],
  };
  let last = storage.appliedIndex();
  for (const e of entries) {
    if (e.index <= last) continue; // Applied already (a replay after restart): skip.
    assert(e.index === last + 1n, `region ${storage.regionId}: apply ${e.index} after ${last}`);
    last = e.index;
    const result = applyEntry(ctx, e, outcome);
    if (result !== undefined) outcome.applied.push({ index: e.index, term: e.term, result });
    if (outcome.removedSelf) break; // Nothing applies to a replica after its removal.
  }
  if (last > storage.appliedIndex()) {
    const commit = storage.raftState().hardState.commit;
    storage.setApplyState(batch, {
      appliedIndex: last,
      commitIndex: commit,
      commitTerm: storage.term(commit),
    });
  }
  return outcome;
}

function applyEntry(
  ctx: { storage: PeerStorage; batch: WriteBatch; selfPeerId: bigint },
  e: Entry,
  outcome: ApplyOutcome,
): CmdResult | undefined {
  assert(e.entryType !== EntryType.EntryConfChangeV2, "apply: ConfChangeV2 is not supported");
  if (e.entryType === EntryType.EntryConfChange) {
    const cc = decodeConfChange(e.data);
    assert(
      cc.context.length > 0,
      `region ${ctx.storage.regionId}: conf change ${e.index} has no command`,
    );
    return applyChangePeer(ctx, { e, cc, cmd: decodeCommand(cc.context) }, outcome);
  }
  if (e.data.length === 0) return undefined; // A new leader's empty entry.
  const cmd = decodeCommand(e.data);
  const region = ctx.storage.regionState().region;
  const stale = checkEpoch(cmd, region, true);
  if (stale !== null) return { ok: false, error: stale };
  const admin = cmd.adminRequest;
  if (admin !== null && admin !== undefined) {
    if (admin.cmdType === raft_cmdpb.AdminCmdType.CompactLog) return applyCompactLog(ctx, e, cmd);
    if (admin.cmdType === raft_cmdpb.AdminCmdType.BatchSplit) {
      return applyBatchSplit(ctx, e, cmd, outcome);
    }
    return invalid(
      region,
      `admin command ${raft_cmdpb.AdminCmdType[admin.cmdType ?? 0]} in a normal entry`,
    );
  }
  const writes = writeModifications(cmd, region);
  if ("error" in writes) return { ok: false, error: writes.error };
  return {
    ok: true,
    index: e.index,
    responses: applyWrites(ctx.batch, { modifications: writes.modifications, region }),
    adminResponse: undefined,
  };
}

function invalid(region: RegionMeta, reason: string): CmdResult {
  return { ok: false, error: { code: "InvalidCommand", regionId: region.id, reason } };
}

/** Put/Delete/DeleteRange into the batch (checked already by `writeModifications`). */
function applyWrites(
  batch: WriteBatch,
  writes: { modifications: readonly Modification[]; region: RegionMeta },
): raft_cmdpb.Response.$Properties[] {
  const responses: raft_cmdpb.Response.$Properties[] = [];
  for (const m of writes.modifications) {
    if (m.type === "put") {
      batch.put(m.cf, m.key, m.value);
      responses.push({ cmdType: raft_cmdpb.CmdType.Put, put: {} });
    } else if (m.type === "delete") {
      batch.delete(m.cf, m.key);
      responses.push({ cmdType: raft_cmdpb.CmdType.Delete, delete: {} });
    } else {
      const end = deleteRangeEnd(m.endKey, writes.region);
      if (compareBytes(m.startKey, end) < 0) batch.deleteRange(m.cf, m.startKey, end);
      responses.push({ cmdType: raft_cmdpb.CmdType.DeleteRange, delteRange: {} });
    }
  }
  return responses;
}

/**
 * CompactLog: truncates this replica's log up to `compactIndex` (TiKV's `exec_compact_log`). An
 * index at or below the truncated one is a no-op; one not yet applied, or whose term is not the
 * one the leader saw, is refused.
 */
function applyCompactLog(
  ctx: { storage: PeerStorage; batch: WriteBatch },
  e: Entry,
  cmd: RaftCmd,
): CmdResult {
  const { storage, batch } = ctx;
  const region = storage.regionState().region;
  const req = cmd.adminRequest!.compactLog;
  const compactIndex = req?.compactIndex ?? 0n;
  const response: CmdResult = {
    ok: true,
    index: e.index,
    responses: [],
    adminResponse: { cmdType: raft_cmdpb.AdminCmdType.CompactLog, compactLog: {} },
  };
  if (compactIndex < storage.firstIndex()) return response; // Compacted already.
  if (compactIndex >= e.index) {
    return invalid(region, `CompactLog to ${compactIndex} at entry ${e.index}: not applied yet`);
  }
  if (storage.term(compactIndex) !== (req?.compactTerm ?? 0n)) {
    return invalid(
      region,
      `CompactLog to ${compactIndex}: term ${req?.compactTerm} is not the entry's`,
    );
  }
  // The entries before this one are applied (into the same batch); record that first, as
  // compaction may not pass the applied index.
  const commit = storage.raftState().hardState.commit;
  storage.setApplyState(batch, {
    appliedIndex: e.index - 1n,
    commitIndex: commit,
    commitTerm: storage.term(commit),
  });
  storage.compact(batch, compactIndex);
  return response;
}

/** The split specs of a BatchSplit command as kvproto carries them. */
export function splitSpecsOf(cmd: RaftCmd): { splits: SplitSpec[]; rightDerive: boolean } {
  const req = cmd.adminRequest?.splits;
  return {
    splits: (req?.requests ?? []).map((r) => ({
      splitKey: r.splitKey ?? new Uint8Array(),
      newRegionId: r.newRegionId ?? 0n,
      newPeerIds: r.newPeerIds ?? [],
    })),
    rightDerive: req?.rightDerive ?? false,
  };
}

/**
 * BatchSplit (TiKV's `exec_batch_split`): the parent takes its new range and epoch, and every
 * new region its records on this store (`writeSplitPeerState`), in the batch that records the
 * entry applied — so a crash leaves the split whole or not begun. The data stays where it is:
 * a region is a key range over the one engine. A split that cannot be made (keys outside the
 * region or out of order, ids missing) is refused and changes nothing; the leader checks the
 * same before proposing, so this happens only to a command built wrong.
 */
function applyBatchSplit(
  ctx: { storage: PeerStorage; batch: WriteBatch },
  e: Entry,
  cmd: RaftCmd,
  outcome: ApplyOutcome,
): CmdResult {
  const { storage, batch } = ctx;
  const region = storage.regionState().region;
  const { splits, rightDerive } = splitSpecsOf(cmd);
  const made = regionsAfterSplit(region, splits, rightDerive);
  if ("problem" in made) return invalid(region, `BatchSplit: ${made.problem}`);
  for (const [i, next] of made.regions.entries()) {
    if (i === made.derived) {
      storage.setRegionState(batch, { state: PeerState.Normal, region: next });
      continue;
    }
    const written = writeSplitPeerState(storage.engine, batch, next);
    if (written === "created") outcome.splitRegions.push(next);
    else if (written === "tombstone") clearRegionData(storage.engine, batch, next);
  }
  outcome.regionChanged = true;
  return {
    ok: true,
    index: e.index,
    responses: [],
    adminResponse: {
      cmdType: raft_cmdpb.AdminCmdType.BatchSplit,
      splits: { regions: made.regions.map(regionToProto) },
    },
  };
}

/** The region after one single-step change, as src/raft's `applyConfChangeToConfState` does it. */
export function regionAfterChange(
  region: RegionMeta,
  change: { changeType: ConfChangeType; peer: PeerMeta },
): RegionMeta {
  const peers = region.peers.filter((p) => p.id !== change.peer.id);
  if (change.changeType !== ConfChangeType.RemoveNode) {
    const role = change.changeType === ConfChangeType.AddLearnerNode
      ? metapb.PeerRole.Learner
      : metapb.PeerRole.Voter;
    peers.push({ id: change.peer.id, storeId: change.peer.storeId, role });
    peers.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }
  return {
    ...region,
    regionEpoch: { ...region.regionEpoch, confVer: region.regionEpoch.confVer + 1n },
    peers,
  };
}

function applyChangePeer(
  ctx: { storage: PeerStorage; batch: WriteBatch; selfPeerId: bigint },
  entry: { e: Entry; cc: ConfChange; cmd: RaftCmd },
  outcome: ApplyOutcome,
): CmdResult {
  const { storage, batch, selfPeerId } = ctx;
  const { e, cc, cmd } = entry;
  const region = storage.regionState().region;
  const req = cmd.adminRequest?.changePeer;
  assert(
    cmd.adminRequest?.cmdType === raft_cmdpb.AdminCmdType.ChangePeer && req?.peer != null,
    `region ${region.id}: conf change ${e.index} does not carry a ChangePeer command`,
  );
  const peer: PeerMeta = {
    id: req.peer.id ?? 0n,
    storeId: req.peer.storeId ?? 0n,
    role: req.peer.role ?? metapb.PeerRole.Voter,
  };
  assert(
    peer.id === cc.nodeId && (req.changeType ?? 0) === cc.changeType,
    `region ${region.id}: conf change ${e.index} and its ChangePeer disagree`,
  );
  const epoch = cmd.header?.regionEpoch;
  assert(
    !epochIsStale(
      { confVer: epoch?.confVer ?? 0n, version: epoch?.version ?? 0n },
      region.regionEpoch,
      { version: false, confVer: true },
    ),
    `region ${region.id}: ChangePeer ${e.index} under conf_ver ${epoch?.confVer} applies on ` +
      `${region.regionEpoch.confVer}: the leader's pending-change rule failed (see module header)`,
  );
  const next = regionAfterChange(region, { changeType: cc.changeType, peer });
  const removed = cc.changeType === ConfChangeType.RemoveNode;
  const removedSelf = removed && peer.id === selfPeerId;
  storage.setRegionState(batch, {
    state: removedSelf ? PeerState.Tombstone : PeerState.Normal,
    region: next,
  });
  outcome.regionChanged = true;
  if (removedSelf) outcome.removedSelf = true;
  else if (removed) {
    const old = region.peers.find((p) => p.id === peer.id);
    if (old !== undefined) outcome.removedPeers.push(old);
  }
  return {
    ok: true,
    index: e.index,
    responses: [],
    adminResponse: {
      cmdType: raft_cmdpb.AdminCmdType.ChangePeer,
      changePeer: { region: regionToProto(next) },
    },
  };
}
