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
  adjacent,
  checkEpoch,
  decodeCommand,
  deleteRangeEnd,
  epochIsStale,
  type Modification,
  type RaftCmd,
  regionsAfterSplit,
  type SplitSpec,
  writeModifications,
  writeProblem,
} from "./command.ts";
import {
  readWriteOps,
  WRITE_OP_DELETE,
  WRITE_OP_DELETE_RANGE,
  WRITE_OP_PUT,
  WriteOps,
} from "./cmd_codec.ts";
import type { RegionError } from "./errors.ts";
import {
  type MergeState,
  type PeerMeta,
  PeerState,
  regionFromProto,
  type RegionMeta,
  regionToProto,
} from "./local_state.ts";
import type { PeerTestingBugs } from "./peer_config.ts";
import { deleteRaftRecords, type PeerStorage, writeSplitPeerState } from "./peer_storage.ts";
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
  /** This replica applied PrepareMerge: the merge it began (the store proposes CommitMerge). */
  mergeStarted?: MergeState;
  /** This replica applied RollbackMerge: the merge is off, the region serves again. */
  mergeRolledBack?: boolean;
  /**
   * Source regions this target replica merged (CommitMerge): their replicas here are Tombstone
   * in the batch, their data now the target's; the store drops their peers once it is written.
   */
  mergedSources: bigint[];
  /**
   * Apply stopped before the entry at `index`: a CommitMerge whose source replica on this store
   * does not run in this store (another group of the store has it). Nothing from that entry on
   * was applied; it applies once the source's replica runs here (the store asks for it).
   */
  blocked?: { index: bigint; sourceRegionId: bigint };
}

/**
 * What apply may ask of the store about another region's replica here: the source of a
 * CommitMerge, which is brought up to the PrepareMerge entry in the same batch.
 */
export interface ApplyNeighbours {
  replicaOf(regionId: bigint): { storage: PeerStorage; selfPeerId: bigint } | undefined;
}

/** Applies `entries` (consecutive, committed) of the peer over `storage` into `batch`. */
export function applyEntries(
  ctx: ApplyContext,
  entries: readonly Entry[],
): ApplyOutcome {
  const { storage, batch } = ctx;
  const outcome: ApplyOutcome = {
    applied: [],
    regionChanged: false,
    removedPeers: [],
    removedSelf: false,
    splitRegions: [],
    mergedSources: [],
  };
  let last = storage.appliedIndex();
  for (const e of entries) {
    if (e.index <= last) continue; // Applied already (a replay after restart): skip.
    assert(e.index === last + 1n, `region ${storage.regionId}: apply ${e.index} after ${last}`);
    last = e.index;
    const result = applyEntry(ctx, e, outcome);
    if (outcome.blocked !== undefined) {
      last = e.index - 1n; // Not applied: it and what follows wait (see `blocked`).
      break;
    }
    if (result !== undefined) outcome.applied.push({ index: e.index, term: e.term, result });
    if (outcome.removedSelf) break; // Nothing applies to a replica after its removal.
  }
  if (last > storage.appliedIndex()) {
    const commit = storage.raftState().hardState.commit;
    storage.setApplyState(batch, {
      appliedIndex: last,
      commitIndex: commit,
      commitTerm: termAt(ctx, commit),
    });
  }
  return outcome;
}

/**
 * The term of the entry at `index` (applied, or being applied): during a merge's catch-up the
 * term the entry handed to apply carries — the source replica's log may not hold it (a carried
 * entry, the PrepareMerge itself) or may hold another term there (an entry no leader committed,
 * after the merge's min index) — else the log's.
 */
function termAt(ctx: ApplyContext, index: bigint): bigint {
  return ctx.catchUp?.terms.get(index) ?? ctx.storage.term(index);
}

function applyEntry(
  ctx: ApplyContext,
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
  const plain = applyPlainWrite(ctx, e);
  if (plain !== undefined) return plain;
  const cmd = decodeCommand(e.data);
  const region = ctx.storage.regionState().region;
  const admin = cmd.adminRequest;
  const skipEpoch = ctx.testingBugs?.skipEpochCheckAtApply === true &&
    (admin === null || admin === undefined);
  const stale = skipEpoch ? null : checkEpoch(cmd, region, true);
  if (stale !== null) return { ok: false, error: stale };
  if (admin !== null && admin !== undefined) {
    if (admin.cmdType === raft_cmdpb.AdminCmdType.CompactLog) return applyCompactLog(ctx, e, cmd);
    if (admin.cmdType === raft_cmdpb.AdminCmdType.BatchSplit) {
      return applyBatchSplit(ctx, e, cmd, outcome);
    }
    if (admin.cmdType === raft_cmdpb.AdminCmdType.PrepareMerge) {
      return applyPrepareMerge(ctx, e, cmd, outcome);
    }
    if (admin.cmdType === raft_cmdpb.AdminCmdType.CommitMerge) {
      return applyCommitMerge(ctx, e, cmd, outcome);
    }
    if (admin.cmdType === raft_cmdpb.AdminCmdType.RollbackMerge) {
      return applyRollbackMerge(ctx, e, cmd, outcome);
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

/** The one scratch of `applyPlainWrite` (apply runs one entry at a time). */
const plainOps = new WriteOps();

const PUT_RESPONSE = Object.freeze({ cmdType: raft_cmdpb.CmdType.Put, put: Object.freeze({}) });
const DELETE_RESPONSE = Object.freeze({
  cmdType: raft_cmdpb.CmdType.Delete,
  delete: Object.freeze({}),
});
const DELETE_RANGE_RESPONSE = Object.freeze({
  cmdType: raft_cmdpb.CmdType.DeleteRange,
  delteRange: Object.freeze({}),
});

/**
 * A plain write command (Put, Delete, DeleteRange: almost every entry) applied from its bytes
 * with no object per request (`readWriteOps`): the same epoch check, the same checks of every
 * write before any is written (`writeProblem`), the same writes and answers as the general
 * path. Undefined when the entry is not one (the general path decodes it).
 */
function applyPlainWrite(ctx: ApplyContext, e: Entry): CmdResult | undefined {
  const ops = plainOps;
  if (!readWriteOps(e.data, ops)) return undefined;
  const region = ctx.storage.regionState().region;
  if (ctx.testingBugs?.skipEpochCheckAtApply !== true) {
    const stale = checkEpoch({ header: ops.header }, region, true);
    if (stale !== null) return { ok: false, error: stale };
  }
  const { count, kinds, cfs, keys, values } = ops;
  for (let i = 0; i < count; i++) {
    const end = kinds[i] === WRITE_OP_DELETE_RANGE ? values[i] : undefined;
    const problem = writeProblem(region, cfs[i]!, keys[i]!, end);
    if (problem !== null) return { ok: false, error: problem };
  }
  const responses = writeOps(ctx.batch, ops, region);
  return { ok: true, index: e.index, responses, adminResponse: undefined };
}

/** Writes checked `ops` into the batch, in order; one answer each. */
function writeOps(
  batch: WriteBatch,
  ops: WriteOps,
  region: RegionMeta,
): raft_cmdpb.Response.$Properties[] {
  const { count, kinds, cfs, keys, values } = ops;
  const responses: raft_cmdpb.Response.$Properties[] = [];
  for (let i = 0; i < count; i++) {
    const kind = kinds[i];
    if (kind === WRITE_OP_PUT) {
      batch.put(cfs[i]!, keys[i]!, values[i]!);
      responses.push(PUT_RESPONSE);
    } else if (kind === WRITE_OP_DELETE) {
      batch.delete(cfs[i]!, keys[i]!);
      responses.push(DELETE_RESPONSE);
    } else {
      const end = deleteRangeEnd(values[i]!, region);
      if (compareBytes(keys[i]!, end) < 0) batch.deleteRange(cfs[i]!, keys[i]!, end);
      responses.push(DELETE_RANGE_RESPONSE);
    }
  }
  return responses;
}

function invalid(region: RegionMeta, reason: string): CmdResult {
  return { ok: false, error: { code: "InvalidCommand", regionId: region.id, reason } };
}

/**
 * Put/Delete/DeleteRange into the batch (checked already by `writeModifications`), through the
 * writer of the object-free path (`writeOps`).
 */
function applyWrites(
  batch: WriteBatch,
  writes: { modifications: readonly Modification[]; region: RegionMeta },
): raft_cmdpb.Response.$Properties[] {
  const ops = new WriteOps();
  for (const m of writes.modifications) {
    if (m.type === "put") ops.push(WRITE_OP_PUT, m.cf, m.key, m.value);
    else if (m.type === "delete") ops.push(WRITE_OP_DELETE, m.cf, m.key, NO_VALUE);
    else ops.push(WRITE_OP_DELETE_RANGE, m.cf, m.startKey, m.endKey);
  }
  return writeOps(batch, ops, writes.region);
}

const NO_VALUE = new Uint8Array(0);

/**
 * CompactLog: truncates this replica's log up to `compactIndex` (TiKV's `exec_compact_log`). An
 * index at or below the truncated one is a no-op; one not yet applied, or whose term is not the
 * one the leader saw, is refused.
 */
function applyCompactLog(
  ctx: ApplyContext,
  e: Entry,
  cmd: RaftCmd,
): CmdResult {
  const { storage, batch } = ctx;
  const region = storage.regionState().region;
  const req = cmd.adminRequest!.compactLog;
  const compactIndex = req?.compactIndex ?? 0n;
  const response = adminOk(e, { cmdType: raft_cmdpb.AdminCmdType.CompactLog, compactLog: {} });
  if (compactIndex < storage.firstIndex()) return response; // Compacted already.
  if (compactIndex >= e.index) {
    return invalid(region, `CompactLog to ${compactIndex} at entry ${e.index}: not applied yet`);
  }
  if (termAt(ctx, compactIndex) !== (req?.compactTerm ?? 0n)) {
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
    commitTerm: termAt(ctx, commit),
  });
  // A source replica caught up by a CommitMerge compacts only the part of its log that is the
  // group's (its log is deleted in the same batch anyway, see `applyCommitMerge`).
  const catchUp = ctx.catchUp;
  storage.compact(
    batch,
    catchUp !== undefined && catchUp.ownLogThrough < compactIndex
      ? catchUp.ownLogThrough
      : compactIndex,
  );
  return response;
}

/** What apply works on: the peer's storage, the round's batch, and the store's other replicas. */
export interface ApplyContext {
  storage: PeerStorage;
  batch: WriteBatch;
  selfPeerId: bigint;
  neighbours?: ApplyNeighbours;
  /** Test-only bugs (peer_config.ts): `skipEpochCheckAtApply` is read here. */
  testingBugs?: PeerTestingBugs;
  /** Set when this is a merge source replica caught up by a CommitMerge (`applyCommitMerge`). */
  catchUp?: MergeCatchUp;
}

/**
 * A source replica brought up to its PrepareMerge entry by the target's CommitMerge (TiKV's
 * catch-up, which appends the carried entries to the source's log and commits them): its commit
 * index is the PrepareMerge's, beyond what its log may hold, so the terms apply needs come from
 * the entries handed over, not from the log.
 */
export interface MergeCatchUp {
  /** The term of every entry handed to apply, by index. */
  terms: ReadonlyMap<bigint, bigint>;
  /**
   * The last index up to which this replica's own log is the group's (committed there): the
   * larger of its applied index and the merge's min index. Beyond it the log may be shorter, or
   * hold entries no leader committed.
   */
  ownLogThrough: bigint;
}

function adminOk(
  e: Entry,
  adminResponse: raft_cmdpb.AdminResponse.$Properties,
): CmdResult {
  return { ok: true, index: e.index, responses: [], adminResponse };
}

/**
 * PrepareMerge (TiKV's `exec_prepare_merge`): the source region's epoch moves (version and
 * conf_ver up by one: no request of before can apply, no membership change can begin) and it is
 * Merging, recording the merge (target, min index, this entry's index). From here the region
 * takes no proposal but RollbackMerge and serves no read (peer.ts), until CommitMerge on the
 * target ends it or RollbackMerge undoes it.
 */
function applyPrepareMerge(
  ctx: ApplyContext,
  e: Entry,
  cmd: RaftCmd,
  outcome: ApplyOutcome,
): CmdResult {
  const { storage, batch } = ctx;
  const state = storage.regionState();
  const region = state.region;
  const req = cmd.adminRequest!.prepareMerge;
  if (state.state === PeerState.Merging) return invalid(region, "PrepareMerge: already merging");
  if (req?.target == null) return invalid(region, "PrepareMerge names no target");
  const target = regionFromProto(req.target);
  if (!adjacent(region, target) && !adjacent(target, region)) {
    return invalid(region, `PrepareMerge: region ${target.id} is not adjacent`);
  }
  const mergeState: MergeState = { minIndex: req.minIndex ?? 0n, target, commit: e.index };
  storage.setRegionState(batch, {
    state: PeerState.Merging,
    region: {
      ...region,
      regionEpoch: {
        version: region.regionEpoch.version + 1n,
        confVer: region.regionEpoch.confVer + 1n,
      },
    },
    mergeState,
  });
  outcome.regionChanged = true;
  outcome.mergeStarted = mergeState;
  return adminOk(e, { cmdType: raft_cmdpb.AdminCmdType.PrepareMerge, prepareMerge: {} });
}

/**
 * RollbackMerge (TiKV's `exec_rollback_merge`): the source is Normal again, its version up by
 * one more (requests made while it was Merging stay stale). Only the merge PrepareMerge at
 * `commit` began is rolled back.
 */
function applyRollbackMerge(
  ctx: ApplyContext,
  e: Entry,
  cmd: RaftCmd,
  outcome: ApplyOutcome,
): CmdResult {
  const { storage, batch } = ctx;
  const state = storage.regionState();
  const commit = cmd.adminRequest!.rollbackMerge?.commit ?? 0n;
  if (state.state !== PeerState.Merging || state.mergeState?.commit !== commit) {
    return invalid(state.region, `RollbackMerge of ${commit}: no such merge under way`);
  }
  const region = state.region;
  storage.setRegionState(batch, {
    state: PeerState.Normal,
    region: {
      ...region,
      regionEpoch: { ...region.regionEpoch, version: region.regionEpoch.version + 1n },
    },
  });
  outcome.regionChanged = true;
  outcome.mergeRolledBack = true;
  return adminOk(e, { cmdType: raft_cmdpb.AdminCmdType.RollbackMerge, rollbackMerge: {} });
}

/**
 * CommitMerge (TiKV's `exec_commit_merge`), on the target: the source replica on this store is
 * first brought up to its PrepareMerge entry — its own log up to the merge's min index (its
 * entries there match the leader's), then the entries the command carries — in this same batch;
 * then the target takes the source's range (version = the larger of the two, plus one) and the
 * source's replica becomes Tombstone, its log and Raft states deleted and its data left in place:
 * it is the target's now. The decision depends only on the target's log and state, so every
 * replica of the target takes the same one. The source's replica must run in this store: when
 * another group of the store runs it, apply stops before this entry (`ApplyOutcome.blocked`)
 * until it is moved here.
 */
function applyCommitMerge(
  ctx: ApplyContext,
  e: Entry,
  cmd: RaftCmd,
  outcome: ApplyOutcome,
): CmdResult | undefined {
  const { storage, batch } = ctx;
  const region = storage.regionState().region;
  const req = cmd.adminRequest!.commitMerge;
  if (req?.source == null) return invalid(region, "CommitMerge names no source");
  const source = regionFromProto(req.source);
  const commit = req.commit ?? 0n;
  const left = adjacent(source, region);
  if (!left && !adjacent(region, source)) {
    return invalid(region, `CommitMerge: region ${source.id} is not adjacent`);
  }
  const replica = ctx.neighbours?.replicaOf(source.id);
  if (replica === undefined) {
    // Its records are on this store's engine (a merge's regions share their stores) but another
    // group runs it: wait until it runs here.
    outcome.blocked = { index: e.index, sourceRegionId: source.id };
    return undefined;
  }
  const carried = (req.entries ?? []).map((m) => ({
    entryType: (m.entryType ?? 0) as EntryType,
    term: m.term ?? 0n,
    index: m.index ?? 0n,
    data: m.data ?? new Uint8Array(),
    context: m.context ?? new Uint8Array(),
  }));
  const minIndex = carried.length > 0 ? carried[0]!.index - 1n : commit;
  const src = replica.storage;
  const applied = src.appliedIndex();
  if (applied < commit) {
    const own = applied < minIndex ? src.entries({ lo: applied + 1n, hi: minIndex + 1n }) : [];
    const rest = carried.filter((c) => c.index > applied && c.index <= commit);
    const caughtUp = [...own, ...rest];
    assert(
      caughtUp.length > 0 && caughtUp[caughtUp.length - 1]!.index === commit,
      `region ${region.id}: CommitMerge of region ${source.id} cannot bring its replica from ` +
        `${applied} to ${commit} (own log through ${minIndex}, ${carried.length} carried)`,
    );
    src.commitForMergeCatchUp(commit);
    const catchUp: MergeCatchUp = {
      terms: new Map(caughtUp.map((c) => [c.index, c.term])),
      ownLogThrough: applied > minIndex ? applied : minIndex,
    };
    const nested = applyEntries(
      { storage: src, batch, selfPeerId: replica.selfPeerId, catchUp, neighbours: ctx.neighbours },
      caughtUp,
    );
    // What the source's own apply would have left the store to do: run the regions a split of
    // the source made, drop the sources the source merged.
    assert(
      nested.blocked === undefined && !nested.removedSelf,
      `region ${region.id}: CommitMerge of region ${source.id}: its catch-up ` +
        (nested.blocked === undefined
          ? "removed its replica here"
          : `waits for region ${nested.blocked.sourceRegionId}, whose replica does not run here`),
    );
    outcome.splitRegions.push(...nested.splitRegions);
    outcome.mergedSources.push(...nested.mergedSources);
  }
  const merging = src.regionState();
  assert(
    merging.state === PeerState.Merging && merging.mergeState?.commit === commit,
    `region ${region.id}: CommitMerge of region ${source.id} at ${commit}, which is not merging ` +
      `there (state ${PeerState[merging.state]}, merge at ${merging.mergeState?.commit})`,
  );
  const sourceRegion = merging.region;
  const version =
    (sourceRegion.regionEpoch.version > region.regionEpoch.version
      ? sourceRegion.regionEpoch.version
      : region.regionEpoch.version) + 1n;
  storage.setRegionState(batch, {
    state: PeerState.Normal,
    region: {
      ...region,
      startKey: left ? sourceRegion.startKey : region.startKey,
      endKey: left ? region.endKey : sourceRegion.endKey,
      regionEpoch: { ...region.regionEpoch, version },
    },
  });
  // The merge state stays in the source's Tombstone: a lagging replica of the source elsewhere
  // learns from it where its range went (store.ts, TiKV's merge_target).
  src.setRegionState(batch, {
    state: PeerState.Tombstone,
    region: sourceRegion,
    mergeState: merging.mergeState,
  });
  deleteRaftRecords(batch, source.id);
  outcome.regionChanged = true;
  outcome.mergedSources.push(source.id);
  return adminOk(e, { cmdType: raft_cmdpb.AdminCmdType.CommitMerge, commitMerge: {} });
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
  return adminOk(e, {
    cmdType: raft_cmdpb.AdminCmdType.BatchSplit,
    splits: { regions: made.regions.map(regionToProto) },
  });
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
  return adminOk(e, {
    cmdType: raft_cmdpb.AdminCmdType.ChangePeer,
    changePeer: { region: regionToProto(next) },
  });
}
