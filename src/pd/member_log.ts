/**
 * A PD member's Raft log, hard state and snapshot: read by src/raft through its `Storage`
 * interface from memory, and written through to the member's engine (column family `raft`,
 * keys below) so that a restart finds them.
 *
 * Why memory in front: PD's log is small (PD writes a few entries a second; the log is
 * compacted past `PD_RAFT_LOG_COMPACT_ENTRIES`), so holding it whole in src/raft's
 * `MemoryStorage` costs little and leaves one implementation of the log's rules (conflicting
 * suffixes, compaction, the snapshot position). The engine is only written, and read once when
 * the member opens.
 *
 * | key (CF `raft`)              | value                                               |
 * | ---------------------------- | --------------------------------------------------- |
 * | `pd_raft/hard_state`         | eraftpb.HardState                                   |
 * | `pd_raft/snapshot`           | eraftpb.Snapshot (PD's state at its index)          |
 * | `pd_raft/applied`            | the applied index, decimal                          |
 * | `pd_raft/log/<20-digit idx>` | eraftpb.Entry, for every index after the snapshot's |
 *
 * Invariants: the engine holds every entry of `(snapshot index, lastIndex]` after each
 * `persist`; a restart rebuilds the same log (entries at or below the snapshot index are
 * dropped, the snapshot stands for them).
 *
 * Ready duty 1 (src/raft/raw_node.ts): `persist(ready)` writes the snapshot, the entries and
 * the hard state in one WriteBatch, durably (fsync) when the Ready says it must.
 *
 * @module
 */
import type { ColumnFamily, KvEngine } from "../engine/types.ts";
import {
  type ConfState,
  type Entry,
  type HardState,
  type InitialState,
  MemoryStorage,
  type Ready,
  type Snapshot,
  type Storage,
} from "../raft/mod.ts";
import { assert } from "../util/assert.ts";
import {
  decodeEntry,
  decodeHardState,
  decodeSnapshot,
  encodeEntry,
  encodeHardState,
  encodeSnapshot,
} from "./raft_records.ts";

const CF: ColumnFamily = "raft";
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const HARD_STATE_KEY = encoder.encode("pd_raft/hard_state");
const SNAPSHOT_KEY = encoder.encode("pd_raft/snapshot");
const APPLIED_KEY = encoder.encode("pd_raft/applied");
const LOG_PREFIX = "pd_raft/log/";

function logKey(index: bigint): Uint8Array {
  return encoder.encode(LOG_PREFIX + index.toString().padStart(20, "0"));
}

/** The Raft log of one PD member. */
export class MemberLog implements Storage {
  readonly #engine: KvEngine;
  readonly #memory: MemoryStorage;
  #applied: bigint;

  private constructor(engine: KvEngine, memory: MemoryStorage, applied: bigint) {
    this.#engine = engine;
    this.#memory = memory;
    this.#applied = applied;
  }

  /**
   * Loads the log from `engine`; a member that never ran starts empty with `voters` as its
   * membership (every member of `--initial-cluster` starts so, as etcd's initial cluster).
   */
  static open(options: { engine: KvEngine; voters: readonly bigint[] }): MemberLog {
    const { engine } = options;
    const memory = MemoryStorage.withVoters([...options.voters]);
    const snapshotBytes = engine.get(CF, SNAPSHOT_KEY);
    let snapshotIndex = 0n;
    if (snapshotBytes !== null) {
      const snapshot = decodeSnapshot(snapshotBytes);
      memory.applySnapshot(snapshot);
      snapshotIndex = snapshot.metadata.index;
    }
    const entries: Entry[] = [];
    const lower = logKey(snapshotIndex + 1n);
    const upper = encoder.encode(LOG_PREFIX + "~");
    using iterator = engine.iterator(CF, { lowerBound: lower, upperBound: upper });
    for (iterator.seek(lower); iterator.valid(); iterator.next()) {
      const entry = decodeEntry(iterator.value().slice());
      const expected = snapshotIndex + 1n + BigInt(entries.length);
      assert(entry.index === expected, "the stored PD log has no gap", {
        expected,
        found: entry.index,
      });
      entries.push(entry);
    }
    memory.append(entries);
    const hardStateBytes = engine.get(CF, HARD_STATE_KEY);
    if (hardStateBytes !== null) memory.setHardState(decodeHardState(hardStateBytes));
    const appliedBytes = engine.get(CF, APPLIED_KEY);
    const applied = appliedBytes === null ? 0n : BigInt(decoder.decode(appliedBytes));
    const log = new MemberLog(engine, memory, applied > snapshotIndex ? applied : snapshotIndex);
    assert(log.#applied <= log.lastIndex(), "the applied index is in the log", {
      applied: log.#applied,
      lastIndex: log.lastIndex(),
    });
    return log;
  }

  /** The index the state machine (PD's state) has applied, as last recorded. */
  get applied(): bigint {
    return this.#applied;
  }

  initialState(): InitialState {
    return this.#memory.initialState();
  }

  entries(range: { lo: bigint; hi: bigint; maxSizeBytes?: number }): Entry[] {
    return this.#memory.entries(range);
  }

  term(index: bigint): bigint {
    return this.#memory.term(index);
  }

  firstIndex(): bigint {
    return this.#memory.firstIndex();
  }

  lastIndex(): bigint {
    return this.#memory.lastIndex();
  }

  snapshot(): Snapshot {
    return this.#memory.snapshot();
  }

  /** Ready duty 1: the snapshot, the entries and the hard state, in one (durable) write. */
  async persist(ready: Ready): Promise<void> {
    using batch = this.#engine.newWriteBatch();
    const oldLast = this.lastIndex();
    if (ready.snapshot !== undefined) {
      const current = this.#memory.snapshot().metadata.index;
      assert(ready.snapshot.metadata.index > current, "a received snapshot is newer than ours", {
        received: ready.snapshot.metadata.index,
        current,
      });
      this.#memory.applySnapshot(ready.snapshot);
      batch.put(CF, SNAPSHOT_KEY, encodeSnapshot(ready.snapshot));
      // Every entry the snapshot stands for, and any after it, is gone from the log.
      batch.deleteRange(CF, encoder.encode(LOG_PREFIX), encoder.encode(LOG_PREFIX + "~"));
    }
    if (ready.entries.length > 0) {
      this.#memory.append(ready.entries);
      for (const entry of ready.entries) batch.put(CF, logKey(entry.index), encodeEntry(entry));
      const newLast = this.lastIndex();
      // A conflicting suffix the new entries replaced, beyond their end.
      if (newLast < oldLast) batch.deleteRange(CF, logKey(newLast + 1n), logKey(oldLast + 1n));
    }
    const hardState: HardState | undefined = ready.hardState ??
      (ready.snapshot !== undefined ? this.#memory.initialState().hardState : undefined);
    if (hardState !== undefined) {
      this.#memory.setHardState(hardState);
      batch.put(CF, HARD_STATE_KEY, encodeHardState(hardState));
    }
    if (ready.snapshot !== undefined) this.#recordApplied(batch, ready.snapshot.metadata.index);
    if (ready.mustSync || ready.snapshot !== undefined) await this.#engine.writeDurable(batch);
    else this.#engine.write(batch);
  }

  /** Records that PD's state holds every entry through `index` (written after applying). */
  setApplied(index: bigint): void {
    assert(index >= this.#applied, "the applied index only grows", {
      applied: this.#applied,
      index,
    });
    using batch = this.#engine.newWriteBatch();
    this.#recordApplied(batch, index);
    this.#engine.write(batch);
  }

  #recordApplied(
    batch: { put(cf: ColumnFamily, k: Uint8Array, v: Uint8Array): void },
    index: bigint,
  ) {
    this.#applied = index;
    batch.put(CF, APPLIED_KEY, encoder.encode(index.toString()));
  }

  /**
   * Takes a snapshot of PD's state at the applied index (`data`) and drops the log up to
   * `PD_RAFT_LOG_KEEP_ENTRIES`-style `keepEntries` before it. The snapshot is written durably
   * first: a crash between the two writes leaves a longer log, never a shorter one.
   */
  async compact(options: { data: Uint8Array; confState: ConfState; keepEntries: number }) {
    const index = this.#applied;
    const snapshot = this.#memory.createSnapshot({
      index,
      confState: options.confState,
      data: options.data,
    });
    using snapshotBatch = this.#engine.newWriteBatch();
    snapshotBatch.put(CF, SNAPSHOT_KEY, encodeSnapshot(snapshot));
    await this.#engine.writeDurable(snapshotBatch);
    const compactTo = index - BigInt(options.keepEntries);
    if (compactTo < this.firstIndex()) return;
    this.#memory.compact(compactTo);
    using batch = this.#engine.newWriteBatch();
    batch.deleteRange(CF, encoder.encode(LOG_PREFIX), logKey(compactTo + 1n));
    this.#engine.write(batch);
  }
}
