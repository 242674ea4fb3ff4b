/**
 * Peer storage: one region replica's Raft log and state on the store's engine (column family
 * `raft`, keys in `keys.ts`), read by src/raft through its `Storage` interface and written by
 * the Ready loop and apply into WriteBatches the caller owns (TiKV's `PeerStorage`).
 *
 * Records of region R:
 * - log entries (eraftpb.Entry) at `raftLogKey(R, i)` for i in [firstIndex, lastIndex];
 * - `RaftLocalState` (hard state, last index), written with every append and hard state
 *   change — Ready duty 1, in the round's one synced WriteBatch shared by all peers;
 * - `RaftApplyState` (applied index, truncated state), written by apply in its unsynced batch
 *   with the effects of the entries it applied, and by `compact`;
 * - `RegionLocalState` (region, epoch, peers, Normal/Applying/Tombstone), `region_state.ts`.
 *
 * Invariants (checked when a peer is loaded, asserted as it runs):
 *     truncated.index <= applied <= commit <= lastIndex,   truncated.term <= term(i) for i > truncated
 * and the log holds exactly the entries (truncated.index, lastIndex], each under its own index.
 * `firstIndex()` is truncated.index + 1 and `term(truncated.index)` is truncated.term, as
 * src/raft's `Storage` asks of a compacted log.
 *
 * Write discipline. `append`, `setHardState`, `setApplyState` and `compact` update this
 * object at once and put their records into the caller's batch; the caller writes the batch
 * before handing this peer another Ready (the Ready contract: no `ready()` before `advance()`).
 * Until then the batch's entries are not in the engine, so reads of them are served from the
 * entry cache, which always holds the latest append (`entry_cache.ts`).
 *
 * Membership on restart. `initialState().confState` is the region's peers as of the applied
 * index (RegionLocalState is written by apply), not as of `firstIndex() - 1`. src/raft replays
 * the conf-change entries of the log on top of it; replaying changes the state already includes
 * is harmless because each single-step change sets one node's role to a fixed value (voter,
 * learner or absent), so the replay of entries (truncated, applied] ends where it began, and
 * the entries after `applied` then apply on the right configuration (see src/raft/storage.ts).
 *
 * Snapshots. `snapshot()` builds the region's snapshot at the applied index: with a
 * `SnapshotManager` (the real store) as SST files per column family
 * (`snapshot/sst_snapshot.ts`), answering "SnapshotTemporarilyUnavailable" while the store holds
 * its limit of generated snapshots; without one (the memory harness) inline in one message
 * (`snapshot.ts`), answering the same for a region above the inline size limit. Raft then keeps
 * the follower in Probe and asks again later. `applySnapshot` installs a received one in duty
 * 1's batch: the region's data cleared, the log emptied, the truncated and applied state at the
 * snapshot's index; an inline snapshot's pairs go into the same batch, an SST-form one leaves
 * the region `Applying` until `finishSnapshotInstall` has ingested its files (also resumed after
 * a crash: a region loaded `Applying` has `pendingSnapshotInstall()`). Log compaction still stays below the slowest follower's match index
 * (peer.ts), so a snapshot is needed only by a replica that has no log at all (a new one).
 *
 * What apply must do for idempotence (issue #10: "applying an entry twice must be harmless").
 * On restart the peer is rebuilt from disk and replays committed entries after
 * `appliedIndex()`; the apply batch is unsynced, so a crash can lose applied entries' effects
 * together with the apply state that recorded them, and they are applied again. Apply keeps
 * this safe by (1) writing every entry's effects and the `RaftApplyState` carrying that entry's
 * index in the same WriteBatch, so the engine holds both or neither, and (2) skipping any
 * entry whose index is <= the applied index it has (the applied index check), so an entry is
 * never applied on top of its own effects. (2) matters even though Put/Delete/DeleteRange are
 * idempotent: admin commands (split, conf change, compact log) and transactional writes are not.
 *
 * @module
 */

import {
  RAFT_ENTRY_CACHE_MAX_BYTES,
  RAFT_ENTRY_CACHE_MAX_ENTRIES,
  RAFTSTORE_INLINE_SNAPSHOT_MAX_BYTES,
} from "../constants.ts";
import type { KvEngine, Readable, WriteBatch } from "../engine/types.ts";
import {
  assert,
  type Entry,
  entrySizeBytes,
  type HardState,
  type InitialState,
  maxBig,
  minBig,
  type Snapshot,
  type Storage,
  StorageError,
} from "../raft/mod.ts";
import { EntryCache, type EntryCacheLimits } from "./entry_cache.ts";
import {
  applyStateKey,
  parseRaftLogKey,
  raftLogKey,
  raftLogRange,
  raftStateKey,
  regionStateKey,
} from "./keys.ts";
import {
  confStateOf,
  CorruptLocalStateError,
  decodeEntry,
  decodeRaftApplyState,
  decodeRaftLocalState,
  encodeEntry,
  encodeRaftApplyState,
  encodeRaftLocalState,
  PeerState,
  type RaftApplyState,
  type RaftLocalState,
  type RegionLocalState,
  type RegionMeta,
} from "./local_state.ts";
import { LOCAL_CF, readRegionState, writeRegionState } from "./region_state.ts";
import { clearRegionData, decodeRegionSnapshot, encodeRegionSnapshot } from "./snapshot.ts";
import {
  encodeSstSnapshotData,
  type SnapKey,
  snapshotFormOf,
  type SnapshotManager,
} from "./snapshot/sst_snapshot.ts";

/**
 * TiKV's `RAFT_INIT_LOG_INDEX` and `RAFT_INIT_LOG_TERM`: a region created with its peers (by
 * bootstrap or a split) starts with a log truncated at index 5, term 5, so that a peer created
 * empty by a message (whose log starts at 0) is told to take a snapshot instead of receiving
 * entries that do not exist.
 */
export const RAFT_INIT_LOG_INDEX = 5n;
/** See `RAFT_INIT_LOG_INDEX`. */
export const RAFT_INIT_LOG_TERM = 5n;

/** Options of a loaded peer storage. */
export interface PeerStorageOptions {
  /** Limits of the recent-entries cache; default RAFT_ENTRY_CACHE_MAX_ENTRIES/_BYTES. */
  cache?: EntryCacheLimits;
  /** Largest region snapshot `snapshot()` builds; default RAFTSTORE_INLINE_SNAPSHOT_MAX_BYTES. */
  snapshotMaxBytes?: number;
  /**
   * The store's snapshot files. With one, `snapshot()` builds SST-form snapshots
   * (`snapshot/sst_snapshot.ts`, no size limit) and a region found `Applying` at load resumes its
   * install; without one, snapshots are inline (the memory harness) and an SST-form snapshot
   * cannot be installed.
   */
  snapshots?: SnapshotManager;
}

/** A region's raft and apply state when no record exists yet (TiKV's `init_raft_state`). */
function initialStates(region: RegionLocalState): { raft: RaftLocalState; apply: RaftApplyState } {
  if (region.region.peers.length === 0) {
    // Created by a message, before it knows its region: an empty log at 0.
    return {
      raft: { hardState: { term: 0n, vote: 0n, commit: 0n }, lastIndex: 0n },
      apply: {
        appliedIndex: 0n,
        commitIndex: 0n,
        commitTerm: 0n,
        truncatedState: { index: 0n, term: 0n },
      },
    };
  }
  return {
    raft: {
      hardState: { term: RAFT_INIT_LOG_TERM, vote: 0n, commit: RAFT_INIT_LOG_INDEX },
      lastIndex: RAFT_INIT_LOG_INDEX,
    },
    apply: {
      appliedIndex: RAFT_INIT_LOG_INDEX,
      commitIndex: RAFT_INIT_LOG_INDEX,
      commitTerm: RAFT_INIT_LOG_TERM,
      truncatedState: { index: RAFT_INIT_LOG_INDEX, term: RAFT_INIT_LOG_TERM },
    },
  };
}

/**
 * Writes the records of a new region replica that knows its peers (bootstrap, or the new
 * region of a split): its RegionLocalState (Normal), and raft and apply states at
 * RAFT_INIT_LOG_INDEX/TERM. Load it afterwards with `PeerStorage.load`.
 */
export function writeInitialPeerState(batch: WriteBatch, region: RegionLocalState): void {
  assert(region.region.peers.length > 0, `region ${region.region.id}: initial state without peers`);
  const { raft, apply } = initialStates(region);
  writeRegionState(batch, region);
  batch.put(LOCAL_CF, raftStateKey(region.region.id), encodeRaftLocalState(raft));
  batch.put(LOCAL_CF, applyStateKey(region.region.id), encodeRaftApplyState(apply));
}

/**
 * Deletes a replica's log, RaftLocalState and RaftApplyState, into `batch` (its RegionLocalState
 * is the caller's: kept as a Tombstone, or deleted).
 */
export function deleteRaftRecords(batch: WriteBatch, regionId: bigint): void {
  const log = raftLogRange(regionId);
  batch.deleteRange(LOCAL_CF, log.start, log.end);
  batch.delete(LOCAL_CF, raftStateKey(regionId));
  batch.delete(LOCAL_CF, applyStateKey(regionId));
}

/**
 * Writes the records of a new region that a split made, on this store (TiKV's apply of
 * BatchSplit), into the split's apply batch. What the engine already holds for that region id
 * decides:
 * - nothing: the records of a new replica (`writeInitialPeerState`) — "created";
 * - a Tombstone: this store's replica of the new region was made elsewhere first and removed
 *   since; it stays removed, and the data of its range, which nobody here owns, is cleared by
 *   the caller — "tombstone";
 * - an uninitialized replica (made by a message, no snapshot yet): replaced by the split's,
 *   keeping its hard state's term and vote when newer than the initial ones, so that it never
 *   votes twice in a term — "created";
 * - an initialized replica (it got a snapshot of the new region first): kept — "kept".
 */
export function writeSplitPeerState(
  engine: Readable,
  batch: WriteBatch,
  region: RegionMeta,
): "created" | "kept" | "tombstone" {
  const existing = readRegionState(engine, region.id);
  if (existing?.state === PeerState.Tombstone) return "tombstone";
  if (existing !== null && existing.region.peers.length > 0) return "kept";
  writeInitialPeerState(batch, { state: PeerState.Normal, region });
  const raftBytes = existing === null ? null : engine.get(LOCAL_CF, raftStateKey(region.id));
  if (raftBytes !== null) {
    const old = decodeRaftLocalState(raftBytes, {
      regionId: region.id,
      key: raftStateKey(region.id),
    });
    const log = raftLogRange(region.id);
    batch.deleteRange(LOCAL_CF, log.start, log.end);
    if (old.hardState.term > RAFT_INIT_LOG_TERM) {
      const { raft } = initialStates({ state: PeerState.Normal, region });
      const hardState = { ...raft.hardState, term: old.hardState.term, vote: old.hardState.vote };
      batch.put(LOCAL_CF, raftStateKey(region.id), encodeRaftLocalState({ ...raft, hardState }));
    }
  }
  return "created";
}

/**
 * One region replica's log and Raft state: src/raft's `Storage` over the engine.
 *
 * @example Duty 1 of a round, for every peer with a Ready, as one synced write:
 * ```ts
 * const batch = engine.newWriteBatch();
 * for (const { storage, ready } of peersWithReady) {
 *   storage.append(batch, ready.entries);
 *   if (ready.hardState !== undefined) storage.setHardState(batch, ready.hardState);
 * }
 * await engine.writeDurable(batch); // then send, apply, advance
 * ```
 */
export class PeerStorage implements Storage {
  readonly regionId: bigint;
  readonly #engine: Readable;
  #region: RegionLocalState;
  #raftState: RaftLocalState;
  #applyState: RaftApplyState;
  /** Term of the entry at `lastIndex` (the truncated term when the log is empty). */
  #lastTerm: bigint;
  readonly #cache: EntryCache;
  readonly #snapshotMaxBytes: number;
  readonly #snapshots: SnapshotManager | null;
  /** An SST-form snapshot recorded `Applying` whose files are not ingested yet. */
  #pendingInstall: SnapKey | null = null;

  private constructor(
    engine: Readable,
    state: { region: RegionLocalState; raft: RaftLocalState; apply: RaftApplyState },
    cache: EntryCache,
    snapshot: { maxBytes: number; manager: SnapshotManager | null },
  ) {
    this.#snapshotMaxBytes = snapshot.maxBytes;
    this.#snapshots = snapshot.manager;
    this.regionId = state.region.region.id;
    this.#engine = engine;
    this.#region = state.region;
    this.#raftState = state.raft;
    this.#applyState = state.apply;
    this.#cache = cache;
    this.#lastTerm = state.apply.truncatedState.term;
  }

  /**
   * Rebuilds region `regionId`'s peer storage from the engine (a store starting, or a test
   * restarting it), checking every record and the invariants between them. Throws
   * `CorruptLocalStateError` naming the region, key and problem when something does not hold,
   * or when the region has no RegionLocalState. Loading a Tombstone is a bug (asserted).
   */
  static load(engine: Readable, regionId: bigint, options: PeerStorageOptions = {}): PeerStorage {
    const region = readRegionState(engine, regionId);
    if (region === null) {
      throw new CorruptLocalStateError(
        { regionId, key: regionStateKey(regionId), record: "RegionLocalState" },
        "it is missing: this store has no replica of the region to load",
      );
    }
    // The store skips Tombstone replicas (their data is being or was destroyed).
    assert(region.state !== PeerState.Tombstone, `region ${regionId}: loading a Tombstone`);
    const initial = initialStates(region);
    const raftBytes = engine.get(LOCAL_CF, raftStateKey(regionId));
    const applyBytes = engine.get(LOCAL_CF, applyStateKey(regionId));
    const raft = raftBytes === null
      ? initial.raft
      : decodeRaftLocalState(raftBytes, { regionId, key: raftStateKey(regionId) });
    const apply = applyBytes === null
      ? initial.apply
      : decodeRaftApplyState(applyBytes, { regionId, key: applyStateKey(regionId) });
    const cache = new EntryCache(
      options.cache ?? {
        maxEntries: RAFT_ENTRY_CACHE_MAX_ENTRIES,
        maxBytes: RAFT_ENTRY_CACHE_MAX_BYTES,
      },
    );
    const storage = new PeerStorage(engine, { region, raft, apply }, cache, {
      maxBytes: options.snapshotMaxBytes ?? RAFTSTORE_INLINE_SNAPSHOT_MAX_BYTES,
      manager: options.snapshots ?? null,
    });
    storage.validate();
    if (region.state === PeerState.Applying) {
      // A crash between the two steps of an install (snapshot/sst_snapshot.ts): do step 2 again.
      // The snapshot's name is the truncated state step 1 wrote.
      if (storage.#snapshots === null) {
        throw new CorruptLocalStateError(
          { regionId, key: regionStateKey(regionId), record: "RegionLocalState" },
          "it is Applying a snapshot, and this store was given no snapshot manager to finish it",
        );
      }
      const { index, term } = apply.truncatedState;
      storage.#pendingInstall = { regionId, term, index };
    }
    return storage;
  }

  /** Checks the invariants between the records just loaded, and the log's two ends. */
  private validate(): void {
    const { hardState, lastIndex } = this.#raftState;
    const { appliedIndex, truncatedState } = this.#applyState;
    const fail = (key: Uint8Array, record: string, problem: string): never => {
      throw new CorruptLocalStateError({ regionId: this.regionId, key, record }, problem);
    };
    const applyKey = applyStateKey(this.regionId);
    if (appliedIndex > hardState.commit) {
      fail(applyKey, "RaftApplyState", `applied ${appliedIndex} > commit ${hardState.commit}`);
    }
    if (truncatedState.index > lastIndex) {
      fail(applyKey, "RaftApplyState", `truncated ${truncatedState.index} > last ${lastIndex}`);
    }
    if (truncatedState.term > hardState.term) {
      fail(applyKey, "RaftApplyState", `truncated term ${truncatedState.term} > ${hardState.term}`);
    }
    if (lastIndex > truncatedState.index) {
      // Both ends of the log must be there; a term below the truncated one cannot be.
      const first = this.readEntry(truncatedState.index + 1n);
      const last = this.readEntry(lastIndex);
      if (first.term < truncatedState.term) {
        fail(raftLogKey(this.regionId, first.index), "log entry", "term below the truncated term");
      }
      if (last.term > hardState.term) {
        fail(raftLogKey(this.regionId, lastIndex), "log entry", `term above ${hardState.term}`);
      }
      this.#lastTerm = last.term;
    }
    // Nothing may follow the last entry: append deletes a conflicting tail in the same batch.
    const after = raftLogRange(this.regionId, { lo: lastIndex + 1n, hi: 2n ** 64n });
    using iter = this.#engine.iterator(LOCAL_CF, {
      lowerBound: after.start,
      upperBound: after.end,
    });
    iter.seekToFirst();
    if (iter.valid()) fail(iter.key().slice(), "log entry", `an entry after the last ${lastIndex}`);
  }

  // -------------------------------------------------------------------------------------------
  // What the peer knows of itself.

  /** The engine the records are read from (for apply's reads of other regions' records). */
  get engine(): Readable {
    return this.#engine;
  }

  /** The region's local state (range, epoch, peers, peer state). Do not mutate it. */
  regionState(): RegionLocalState {
    return this.#region;
  }

  /**
   * Records a new local state of this region (apply of a conf change, split or merge), in the
   * apply batch that carries the apply state of the entry that changed it.
   */
  setRegionState(batch: WriteBatch, state: RegionLocalState): void {
    assert(
      state.region.id === this.regionId,
      `region ${this.regionId}: setRegionState for region ${state.region.id}`,
    );
    writeRegionState(batch, state);
    this.#region = state;
  }

  /** The raft state as last written (hard state, last index). */
  raftState(): RaftLocalState {
    return { hardState: { ...this.#raftState.hardState }, lastIndex: this.#raftState.lastIndex };
  }

  /** The apply state as last written. */
  applyState(): RaftApplyState {
    const s = this.#applyState;
    return { ...s, truncatedState: { ...s.truncatedState } };
  }

  /** The index apply has reached: the `applied` a restarted RawNode starts from. */
  appliedIndex(): bigint {
    return this.#applyState.appliedIndex;
  }

  /** Entries cached in memory (for tests and metrics). */
  cachedEntryCount(): number {
    return this.#cache.length;
  }

  // -------------------------------------------------------------------------------------------
  // src/raft's Storage.

  /** @inheritdoc */
  initialState(): InitialState {
    return {
      hardState: { ...this.#raftState.hardState },
      confState: confStateOf(this.#region.region),
    };
  }

  /** @inheritdoc */
  firstIndex(): bigint {
    return this.#applyState.truncatedState.index + 1n;
  }

  /** @inheritdoc */
  lastIndex(): bigint {
    return this.#raftState.lastIndex;
  }

  /** @inheritdoc */
  term(index: bigint): bigint {
    const truncated = this.#applyState.truncatedState;
    if (index === truncated.index) return truncated.term;
    if (index < truncated.index) throw new StorageError("Compacted", index);
    if (index > this.#raftState.lastIndex) throw new StorageError("Unavailable", index);
    if (index === this.#raftState.lastIndex) return this.#lastTerm;
    return (this.#cache.get(index) ?? this.readEntry(index)).term;
  }

  /** @inheritdoc */
  entries(range: { lo: bigint; hi: bigint; maxSizeBytes?: number }): Entry[] {
    const { lo, hi, maxSizeBytes = Number.MAX_SAFE_INTEGER } = range;
    if (lo <= this.#applyState.truncatedState.index) throw new StorageError("Compacted", lo);
    if (hi > this.#raftState.lastIndex + 1n) throw new StorageError("Unavailable", hi);
    assert(lo <= hi, `entries: lo ${lo} > hi ${hi}`);
    // [lo, split) comes from the engine, [split, hi) from the cache (which ends at lastIndex).
    const cacheFirst = this.#cache.firstIndex();
    const split = cacheFirst === undefined ? hi : minBig(maxBig(lo, cacheFirst), hi);
    const out: Entry[] = [];
    let size = 0;
    if (lo < split) {
      size = this.scanEntries({ lo, hi: split, maxSizeBytes }, out);
      if (out.length < Number(split - lo)) return out; // The size limit stopped the scan.
    }
    if (split < hi) {
      for (const e of this.#cache.slice(split, hi)) {
        size += entrySizeBytes(e);
        if (out.length > 0 && size > maxSizeBytes) break;
        out.push(e);
      }
    }
    return out;
  }

  /** @inheritdoc */
  snapshot(): Snapshot {
    const applied = this.#applyState.appliedIndex;
    const region = this.#region.region;
    if (this.#snapshots !== null) {
      const term = this.term(applied);
      const key = { regionId: this.regionId, term, index: applied };
      const files = this.#snapshots.generate(key, this.#engine, region);
      // The store holds its limit of generated snapshots: Raft asks again later.
      if (files === null) throw new StorageError("SnapshotTemporarilyUnavailable", applied);
      return {
        data: encodeSstSnapshotData(region, files),
        metadata: { index: applied, term, confState: confStateOf(region) },
      };
    }
    const data = encodeRegionSnapshot(this.#engine, region, this.#snapshotMaxBytes);
    // Above the inline limit: no snapshot (module header); Raft asks again later.
    if (data === null) throw new StorageError("SnapshotTemporarilyUnavailable", applied);
    return {
      data,
      metadata: { index: applied, term: this.term(applied), confState: confStateOf(region) },
    };
  }

  // -------------------------------------------------------------------------------------------
  // The write side: the Ready loop (duty 1) and apply (duty 3).

  /**
   * Appends `entries` (consecutive, the first at most lastIndex + 1 and above the truncated
   * index), overwriting a conflicting suffix: entries past the new last index are deleted.
   * Writes the entries and the RaftLocalState into `batch`.
   */
  append(batch: WriteBatch, entries: readonly Entry[]): void {
    const head = entries[0];
    if (head === undefined) return;
    const oldLast = this.#raftState.lastIndex;
    assert(
      head.index > this.#applyState.truncatedState.index && head.index <= oldLast + 1n,
      `region ${this.regionId}: append at ${head.index} to a log (${this.firstIndex()}..${oldLast}]`,
    );
    let previous: Entry | undefined;
    for (const e of entries) {
      assert(previous === undefined || e.index === previous.index + 1n, "append: index gap");
      assert(e.term >= (previous?.term ?? this.termBefore(head.index)), "append: term regresses");
      batch.put(LOCAL_CF, raftLogKey(this.regionId, e.index), encodeEntry(e));
      previous = e;
    }
    const last = previous!;
    if (last.index < oldLast) {
      const tail = raftLogRange(this.regionId, { lo: last.index + 1n, hi: oldLast + 1n });
      batch.deleteRange(LOCAL_CF, tail.start, tail.end);
    }
    this.#raftState = { ...this.#raftState, lastIndex: last.index };
    this.#lastTerm = last.term;
    this.#cache.append(entries);
    this.writeRaftState(batch);
  }

  /** Records the hard state (Ready duty 1). Term and commit never go back. */
  setHardState(batch: WriteBatch, hardState: HardState): void {
    const old = this.#raftState.hardState;
    assert(
      hardState.term >= old.term && hardState.commit >= old.commit,
      `region ${this.regionId}: hard state ${hardState.term}/${hardState.commit} ` +
        `goes back from ${old.term}/${old.commit}`,
    );
    this.#raftState = { ...this.#raftState, hardState: { ...hardState } };
    this.writeRaftState(batch);
  }

  /**
   * Records how far apply has come (duty 3), in the apply batch that carries the effects of
   * the entries applied. The truncated state is changed only by `compact`.
   */
  /**
   * A source replica caught up by a CommitMerge (apply.ts): the entries up to `commit` are
   * committed in the source's group (the PrepareMerge entry is at `commit`), though this replica
   * may not have heard so; its in-memory commit index goes there so that they apply. Nothing is
   * written: the replica's Raft state is deleted in the same batch.
   */
  commitForMergeCatchUp(commit: bigint): void {
    const hs = this.#raftState.hardState;
    if (commit > hs.commit) {
      this.#raftState = { ...this.#raftState, hardState: { ...hs, commit } };
    }
  }

  setApplyState(
    batch: WriteBatch,
    state: { appliedIndex: bigint; commitIndex: bigint; commitTerm: bigint },
  ): void {
    const old = this.#applyState;
    assert(
      state.appliedIndex >= old.appliedIndex &&
        state.appliedIndex <= this.#raftState.hardState.commit,
      `region ${this.regionId}: applied ${state.appliedIndex} outside ` +
        `[${old.appliedIndex}, ${this.#raftState.hardState.commit}]`,
    );
    this.#applyState = { ...old, ...state, truncatedState: { ...old.truncatedState } };
    batch.put(LOCAL_CF, applyStateKey(this.regionId), encodeRaftApplyState(this.#applyState));
  }

  /**
   * Truncates the log up to and including `compactIndex` (applied already): the truncated
   * state moves there and the entries below it are deleted by one range deletion, in `batch`
   * (apply's, for a CompactLog command). An index at or below the truncated one changes
   * nothing.
   */
  compact(batch: WriteBatch, compactIndex: bigint): void {
    const first = this.firstIndex();
    if (compactIndex < first) return;
    assert(
      compactIndex <= this.#applyState.appliedIndex,
      `region ${this.regionId}: compact to ${compactIndex} beyond applied ` +
        this.#applyState.appliedIndex,
    );
    const term = this.term(compactIndex);
    const range = raftLogRange(this.regionId, { lo: first, hi: compactIndex + 1n });
    batch.deleteRange(LOCAL_CF, range.start, range.end);
    this.#applyState = { ...this.#applyState, truncatedState: { index: compactIndex, term } };
    batch.put(LOCAL_CF, applyStateKey(this.regionId), encodeRaftApplyState(this.#applyState));
    this.#cache.compactTo(compactIndex + 1n);
  }

  /**
   * Installs a snapshot Raft accepted (Ready duty 1, before the Ready's entries and hard state):
   * the region's data cleared, the log emptied, and the raft, apply and region states moved to
   * the snapshot's index, all into `batch`. An inline snapshot's pairs go into `batch` too and
   * the region is `Normal`; an SST-form snapshot leaves the region `Applying`, and the caller
   * must call `finishSnapshotInstall` once `batch` is written (`pendingSnapshotInstall()`).
   */
  applySnapshot(batch: WriteBatch, snap: Snapshot): void {
    const { index, term } = snap.metadata;
    assert(
      index > this.#applyState.appliedIndex,
      `region ${this.regionId}: snapshot at ${index} is not beyond applied ${this.#applyState.appliedIndex}`,
    );
    assert(
      this.#pendingInstall === null,
      `region ${this.regionId}: a snapshot install is unfinished`,
    );
    const form = snapshotFormOf(snap.data);
    assert(
      form.form !== "malformed",
      `region ${this.regionId}: ${form.form === "malformed" ? form.problem : ""}`,
    );
    const { region, pairs } = form.form === "sst"
      ? { region: form.meta.region, pairs: [] }
      : decodeRegionSnapshot(snap.data);
    assert(region.id === this.regionId, `region ${this.regionId}: snapshot of region ${region.id}`);
    assert(
      form.form === "inline" || this.#snapshots !== null,
      `region ${this.regionId}: an SST-form snapshot reached a store without a snapshot manager`,
    );
    clearRegionData(this.#engine, batch, this.#region.region);
    clearRegionData(this.#engine, batch, region);
    for (const p of pairs) batch.put(p.cf, p.key, p.value);
    const log = raftLogRange(this.regionId);
    batch.deleteRange(LOCAL_CF, log.start, log.end);
    this.#cache.clear();
    const hardState = this.#raftState.hardState;
    this.#raftState = {
      hardState: { ...hardState, term: maxBig(hardState.term, term), commit: index },
      lastIndex: index,
    };
    this.#lastTerm = term;
    this.#applyState = {
      appliedIndex: index,
      commitIndex: index,
      commitTerm: term,
      truncatedState: { index, term },
    };
    this.writeRaftState(batch);
    batch.put(LOCAL_CF, applyStateKey(this.regionId), encodeRaftApplyState(this.#applyState));
    if (form.form === "inline") {
      this.setRegionState(batch, { state: PeerState.Normal, region });
      return;
    }
    this.setRegionState(batch, { state: PeerState.Applying, region });
    this.#pendingInstall = { regionId: this.regionId, term, index };
  }

  /**
   * The SST-form snapshot recorded `Applying` and not yet ingested: after `applySnapshot` until
   * `finishSnapshotInstall`, and after a load that found the region `Applying` (a crash).
   */
  pendingSnapshotInstall(): SnapKey | null {
    return this.#pendingInstall === null ? null : { ...this.#pendingInstall };
  }

  /**
   * Step 2 of an SST-form install (snapshot/sst_snapshot.ts), once the batch `applySnapshot`
   * wrote into is in the engine: ingests the snapshot's files, then records the region `Normal`
   * with a synced write, then lets the manager delete the region's received snapshots up to
   * this one. The region's ranges were cleared in step 1's batch; ingesting again after a crash
   * adds the same pairs over the same pairs. Throws `SnapshotMissingError` (from the manager)
   * when the files are not there; the region stays `Applying`.
   */
  async finishSnapshotInstall(engine: KvEngine): Promise<void> {
    const key = this.#pendingInstall;
    assert(key !== null, `region ${this.regionId}: no snapshot install to finish`);
    assert(this.#snapshots !== null, `region ${this.regionId}: no snapshot manager`);
    this.#snapshots.ingest(key, engine);
    using batch = engine.newWriteBatch();
    this.setRegionState(batch, { state: PeerState.Normal, region: this.#region.region });
    await engine.writeDurable(batch);
    this.#pendingInstall = null;
    this.#snapshots.pruneReceived(this.regionId, key.index);
  }

  // -------------------------------------------------------------------------------------------

  private writeRaftState(batch: WriteBatch): void {
    batch.put(LOCAL_CF, raftStateKey(this.regionId), encodeRaftLocalState(this.#raftState));
  }

  /** Term of the entry before `index` (which is at most lastIndex + 1). */
  private termBefore(index: bigint): bigint {
    return this.term(index - 1n);
  }

  /** Entry `index` from the engine; a missing or damaged record is corruption. */
  private readEntry(index: bigint): Entry {
    const key = raftLogKey(this.regionId, index);
    const bytes = this.#engine.get(LOCAL_CF, key);
    if (bytes === null) {
      throw new CorruptLocalStateError(
        { regionId: this.regionId, key, record: "log entry" },
        `entry ${index} is missing from a log (${this.firstIndex()}..${this.lastIndex()}]`,
      );
    }
    return decodeEntry(bytes, { regionId: this.regionId, key, index });
  }

  /**
   * Reads entries [lo, hi) from the engine into `out`, stopping after the first entry that
   * takes the total above `maxSizeBytes` (that entry is not kept, unless it is the first).
   * Returns the total size read. A missing index is corruption.
   */
  private scanEntries(range: { lo: bigint; hi: bigint; maxSizeBytes: number }, out: Entry[]) {
    const { start, end } = raftLogRange(this.regionId, range);
    let size = 0;
    let expected = range.lo;
    using iter = this.#engine.iterator(LOCAL_CF, { lowerBound: start, upperBound: end });
    for (iter.seekToFirst(); iter.valid(); iter.next()) {
      const key = iter.key().slice();
      // A gap in the keys: the expected entry is missing (readEntry reports it).
      if (parseRaftLogKey(key)?.index !== expected) this.readEntry(expected);
      const e = decodeEntry(iter.value().slice(), {
        regionId: this.regionId,
        key,
        index: expected,
      });
      size += entrySizeBytes(e);
      if (out.length > 0 && size > range.maxSizeBytes) return size;
      out.push(e);
      expected++;
    }
    if (expected !== range.hi) this.readEntry(expected); // Throws: the entry is missing.
    return size;
  }
}
