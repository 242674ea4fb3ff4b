/**
 * The records a store keeps about itself and its peers in column family `raft`, as typed values,
 * and their bytes: raft_serverpb's `RaftLocalState`, `RaftApplyState`, `RegionLocalState`,
 * `StoreIdent` and eraftpb's `Entry`, encoded with the generated kvproto code so that they read
 * the same as TiKV's. Where each lives is `keys.ts`.
 *
 * Invariants:
 * - A record is checked on both doors: `encode*` asserts what the caller hands it is well
 *   formed (a failure is a bug), and `decode*` checks what it read from disk the same way,
 *   failing with `CorruptLocalStateError` naming the region, the key and the problem (a damaged
 *   record is a fact about the disk, not a bug; the store refuses to start that peer).
 * - Decoded values never share bytes with a buffer someone may reuse: region keys are copied,
 *   and an entry's `data`/`context` are views into the record's bytes, which the caller hands
 *   over (`engine.get` results are the caller's; iterator values must be copied first).
 * - Only single-step membership exists (src/raft/README.md): a peer's role is Voter or Learner;
 *   the joint-consensus roles (IncomingVoter, DemotingVoter) are refused as corrupt.
 *
 * @module
 */

import { eraftpb, type kvrpcpb, metapb, raft_serverpb } from "../../proto/mod.ts";
import {
  assert,
  type ConfState,
  type Entry,
  EntryType,
  type HardState,
  newConfState,
} from "../raft/mod.ts";
import { toHex } from "../util/bytes.ts";
import { encodeRaftEntry } from "../codec/raft_entry.ts";

/** raft_serverpb.PeerState: Normal, Applying (a snapshot is being installed), Tombstone, … */
export const PeerState = raft_serverpb.PeerState;
/** raft_serverpb.PeerState as a type. */
export type PeerState = raft_serverpb.PeerState;

/** raft_serverpb.RaftLocalState: what the Ready loop persists (duty 1). */
export interface RaftLocalState {
  hardState: HardState;
  /** Index of the last log entry (the truncated index when the log is empty). */
  lastIndex: bigint;
}

/** raft_serverpb.RaftTruncatedState: the last entry compacted away, and its term. */
export interface TruncatedState {
  index: bigint;
  term: bigint;
}

/** raft_serverpb.RaftApplyState: what apply persists with each batch of applied entries. */
export interface RaftApplyState {
  appliedIndex: bigint;
  /** The commit index and its term as apply last saw them (TiKV's `commit_index/term`). */
  commitIndex: bigint;
  commitTerm: bigint;
  truncatedState: TruncatedState;
}

/** metapb.Peer, as the raftstore keeps it. */
export interface PeerMeta {
  id: bigint;
  storeId: bigint;
  role: metapb.PeerRole;
}

/** metapb.RegionEpoch: `confVer` grows with membership, `version` with splits and merges. */
export interface RegionEpoch {
  confVer: bigint;
  version: bigint;
}

/** metapb.Region: keys [startKey, endKey) (empty end = +infinity), epoch and peers. */
export interface RegionMeta {
  id: bigint;
  startKey: Uint8Array;
  endKey: Uint8Array;
  regionEpoch: RegionEpoch;
  peers: PeerMeta[];
}

/** raft_serverpb.MergeState: a source region between PrepareMerge and CommitMerge/Rollback. */
export interface MergeState {
  /** The lowest index every peer of the source held when PrepareMerge was proposed. */
  minIndex: bigint;
  /** The region the source merges into, as the source's leader saw it. */
  target: RegionMeta;
  /** The index of the PrepareMerge entry. */
  commit: bigint;
}

/**
 * raft_serverpb.RegionLocalState. merge_state is set while the state is Merging, and kept in
 * the Tombstone of a source merged away (as TiKV keeps it): its target tells a lagging replica
 * of the source on another store where its range went (store.ts).
 */
export interface RegionLocalState {
  state: PeerState;
  region: RegionMeta;
  mergeState?: MergeState;
}

/** raft_serverpb.StoreIdent: which cluster and store this data directory belongs to. */
export interface StoreIdent {
  clusterId: bigint;
  storeId: bigint;
  apiVersion: kvrpcpb.APIVersion;
}

/** A local record on disk that cannot be read back: names the region, key and problem. */
export class CorruptLocalStateError extends Error {
  override name = "CorruptLocalStateError";
  readonly code = "CorruptLocalState";
  /** `regionId` is null for store-wide records (StoreIdent). */
  constructor(
    readonly where: { regionId: bigint | null; key: Uint8Array; record: string },
    readonly problem: string,
  ) {
    const owner = where.regionId === null ? "store" : `region ${where.regionId}`;
    super(`${owner}: ${where.record} at key ${toHex(where.key)} is damaged: ${problem}`);
  }
}

/** Where a record was read from, for `CorruptLocalStateError`. */
export interface RecordSource {
  regionId: bigint | null;
  key: Uint8Array;
}

function decodeWith<T>(
  source: RecordSource,
  record: string,
  decode: () => T,
  check: (value: T) => string | null,
): T {
  let value: T;
  try {
    value = decode();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new CorruptLocalStateError({ ...source, record }, `not a ${record}: ${message}`);
  }
  const problem = check(value);
  if (problem !== null) throw new CorruptLocalStateError({ ...source, record }, problem);
  return value;
}

// ---------------------------------------------------------------------------------------------
// RaftLocalState

function raftLocalStateProblem(s: RaftLocalState): string | null {
  if (s.hardState.commit > s.lastIndex) {
    return `commit ${s.hardState.commit} is beyond the last index ${s.lastIndex}`;
  }
  return null;
}

/** The bytes of a RaftLocalState. */
export function encodeRaftLocalState(s: RaftLocalState): Uint8Array {
  const problem = raftLocalStateProblem(s);
  assert(problem === null, `encodeRaftLocalState: ${problem}`);
  return raft_serverpb.RaftLocalState.encode({ hardState: s.hardState, lastIndex: s.lastIndex })
    .finish();
}

/** A RaftLocalState read from `source`. */
export function decodeRaftLocalState(bytes: Uint8Array, source: RecordSource): RaftLocalState {
  return decodeWith(source, "RaftLocalState", () => {
    const m = raft_serverpb.RaftLocalState.decode(bytes);
    const hs = m.hardState;
    return {
      hardState: { term: hs?.term ?? 0n, vote: hs?.vote ?? 0n, commit: hs?.commit ?? 0n },
      lastIndex: m.lastIndex,
    };
  }, raftLocalStateProblem);
}

// ---------------------------------------------------------------------------------------------
// RaftApplyState

function raftApplyStateProblem(s: RaftApplyState): string | null {
  if (s.truncatedState.index > s.appliedIndex) {
    return `truncated index ${s.truncatedState.index} is beyond the applied index ${s.appliedIndex}`;
  }
  return null;
}

/** The bytes of a RaftApplyState. */
export function encodeRaftApplyState(s: RaftApplyState): Uint8Array {
  const problem = raftApplyStateProblem(s);
  assert(problem === null, `encodeRaftApplyState: ${problem}`);
  return raft_serverpb.RaftApplyState.encode({
    appliedIndex: s.appliedIndex,
    truncatedState: { index: s.truncatedState.index, term: s.truncatedState.term },
    commitIndex: s.commitIndex,
    commitTerm: s.commitTerm,
  }).finish();
}

/** A RaftApplyState read from `source`. */
export function decodeRaftApplyState(bytes: Uint8Array, source: RecordSource): RaftApplyState {
  return decodeWith(source, "RaftApplyState", () => {
    const m = raft_serverpb.RaftApplyState.decode(bytes);
    return {
      appliedIndex: m.appliedIndex,
      commitIndex: m.commitIndex,
      commitTerm: m.commitTerm,
      truncatedState: {
        index: m.truncatedState?.index ?? 0n,
        term: m.truncatedState?.term ?? 0n,
      },
    };
  }, raftApplyStateProblem);
}

// ---------------------------------------------------------------------------------------------
// RegionLocalState

function regionProblem(region: RegionMeta, regionId: bigint | null): string | null {
  if (regionId !== null && region.id !== regionId) return `it names region ${region.id}`;
  if (region.id === 0n) return "region id is 0";
  const seen = new Set<bigint>();
  for (const peer of region.peers) {
    if (peer.id === 0n || peer.storeId === 0n) return `peer ${peer.id} on store ${peer.storeId}`;
    if (seen.has(peer.id)) return `peer ${peer.id} appears twice`;
    seen.add(peer.id);
    if (peer.role !== metapb.PeerRole.Voter && peer.role !== metapb.PeerRole.Learner) {
      return `peer ${peer.id} has role ${metapb.PeerRole[peer.role] ?? peer.role}, ` +
        "but only single-step membership (Voter, Learner) exists";
    }
  }
  return null;
}

function regionLocalStateProblem(s: RegionLocalState, regionId: bigint | null): string | null {
  if (PeerState[s.state] === undefined) return `unknown peer state ${s.state}`;
  if (s.state === PeerState.Merging && s.mergeState === undefined) {
    return "a Merging region needs its merge state";
  }
  if (
    s.mergeState !== undefined && s.state !== PeerState.Merging &&
    s.state !== PeerState.Tombstone
  ) {
    return "a merge state goes with the Merging state, or the Tombstone of a merged source";
  }
  return regionProblem(s.region, regionId);
}

/** The region in kvproto's shape. */
export function regionToProto(region: RegionMeta): metapb.Region.$Properties {
  return {
    id: region.id,
    startKey: region.startKey,
    endKey: region.endKey,
    regionEpoch: { ...region.regionEpoch },
    peers: region.peers.map((p) => ({ id: p.id, storeId: p.storeId, role: p.role })),
  };
}

/** A decoded region, owning its bytes. */
export function regionFromProto(m: metapb.Region.$Properties): RegionMeta {
  return {
    id: m.id ?? 0n,
    startKey: Uint8Array.from(m.startKey ?? []),
    endKey: Uint8Array.from(m.endKey ?? []),
    regionEpoch: { confVer: m.regionEpoch?.confVer ?? 0n, version: m.regionEpoch?.version ?? 0n },
    peers: (m.peers ?? []).map((p) => ({
      id: p.id ?? 0n,
      storeId: p.storeId ?? 0n,
      role: p.role ?? metapb.PeerRole.Voter,
    })),
  };
}

/** The bytes of a RegionLocalState. */
export function encodeRegionLocalState(s: RegionLocalState): Uint8Array {
  const problem = regionLocalStateProblem(s, null);
  assert(problem === null, `encodeRegionLocalState: ${problem}`);
  return raft_serverpb.RegionLocalState.encode({
    state: s.state,
    region: regionToProto(s.region),
    mergeState: s.mergeState === undefined ? undefined : {
      minIndex: s.mergeState.minIndex,
      target: regionToProto(s.mergeState.target),
      commit: s.mergeState.commit,
    },
  }).finish();
}

/** A RegionLocalState read from `source`; it must name region `source.regionId`. */
export function decodeRegionLocalState(
  bytes: Uint8Array,
  source: RecordSource,
): RegionLocalState {
  return decodeWith(source, "RegionLocalState", () => {
    const m = raft_serverpb.RegionLocalState.decode(bytes);
    if (m.region === null || m.region === undefined) throw new Error("no region");
    const merge = m.mergeState;
    if (merge?.target == null) return { state: m.state, region: regionFromProto(m.region) };
    return {
      state: m.state,
      region: regionFromProto(m.region),
      mergeState: {
        minIndex: merge.minIndex ?? 0n,
        target: regionFromProto(merge.target),
        commit: merge.commit ?? 0n,
      },
    };
  }, (s) => regionLocalStateProblem(s, source.regionId));
}

/**
 * The membership a region's peers describe: voters and learners by peer id. This is the
 * configuration as of the applied index (see `PeerStorage.initialState`).
 */
export function confStateOf(region: RegionMeta): ConfState {
  const voters: bigint[] = [];
  const learners: bigint[] = [];
  for (const peer of region.peers) {
    if (peer.role === metapb.PeerRole.Learner) learners.push(peer.id);
    else voters.push(peer.id);
  }
  const byId = (a: bigint, b: bigint) => (a < b ? -1 : a > b ? 1 : 0);
  return newConfState({ voters: voters.sort(byId), learners: learners.sort(byId) });
}

// ---------------------------------------------------------------------------------------------
// StoreIdent

function storeIdentProblem(s: StoreIdent): string | null {
  if (s.storeId === 0n) return "store id is 0";
  if (s.clusterId === 0n) return "cluster id is 0";
  return null;
}

/** The bytes of a StoreIdent. */
export function encodeStoreIdent(s: StoreIdent): Uint8Array {
  const problem = storeIdentProblem(s);
  assert(problem === null, `encodeStoreIdent: ${problem}`);
  return raft_serverpb.StoreIdent.encode(s).finish();
}

/** A StoreIdent read from `source`. */
export function decodeStoreIdent(bytes: Uint8Array, source: RecordSource): StoreIdent {
  return decodeWith(source, "StoreIdent", () => {
    const m = raft_serverpb.StoreIdent.decode(bytes);
    return { clusterId: m.clusterId, storeId: m.storeId, apiVersion: m.apiVersion };
  }, storeIdentProblem);
}

// ---------------------------------------------------------------------------------------------
// eraftpb.Entry

function entryProblem(e: Entry, index: bigint | null): string | null {
  if (index !== null && e.index !== index) return `it holds entry ${e.index}`;
  if (e.term === 0n) return `entry ${e.index} has term 0`;
  if (EntryType[e.entryType] === undefined) return `unknown entry type ${e.entryType}`;
  if (e.entryType === EntryType.EntryConfChangeV2) return "ConfChangeV2 is not supported";
  return null;
}

/**
 * A plain Uint8Array over the same bytes. protobufjs decodes `bytes` fields as views into its
 * input, typed as Node's Buffer under Deno, whose `slice()` does not copy; handing out plain
 * arrays keeps `slice()` a copy for every caller.
 */
function plainView(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * The bytes of a log entry (`encodeRaftEntry`), after checking it is one a log may hold (a
 * term, a known type, no ConfChangeV2). `entry_codec_test` checks the bytes against protobufjs.
 */
export function encodeEntry(e: Entry): Uint8Array {
  const problem = entryProblem(e, null);
  assert(problem === null, `encodeEntry: ${problem}`);
  return encodeRaftEntry(e);
}

/** Log entry `index` read from `source`; `bytes` must not be reused by the caller. */
export function decodeEntry(bytes: Uint8Array, source: RecordSource & { index: bigint }): Entry {
  return decodeWith(source, "log entry", () => {
    const m = eraftpb.Entry.decode(bytes);
    return {
      entryType: m.entryType as number as EntryType,
      term: m.term,
      index: m.index,
      data: plainView(m.data),
      context: plainView(m.context),
    };
  }, (e) => entryProblem(e, source.index));
}
