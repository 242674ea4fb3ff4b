/**
 * An in-memory `Storage`, used by unit tests, the simulator and the benchmark.
 *
 * Invariants: `entries[0]` is a dummy entry standing for the snapshot position (its index and
 * term are the snapshot's); every later entry has index `entries[0].index + k` at position `k`;
 * terms never decrease along the array.
 *
 * @module
 */

import { limitSize, type Storage, StorageError } from "./storage.ts";
import type { InitialState } from "./storage.ts";
import {
  assert,
  type ConfState,
  emptySnapshot,
  type Entry,
  type HardState,
  newConfState,
  newEntry,
  type Snapshot,
} from "./types.ts";

/** Storage held in memory. Writes are the application's (the Ready handler's) job. */
export class MemoryStorage implements Storage {
  private hardState: HardState = { term: 0n, vote: 0n, commit: 0n };
  private snap: Snapshot = emptySnapshot();
  private ents: Entry[] = [newEntry({ term: 0n, index: 0n })];

  /** A storage whose initial membership is `voters` (and `learners`), as a bootstrap does. */
  static withVoters(voters: bigint[], learners: bigint[] = []): MemoryStorage {
    const s = new MemoryStorage();
    s.snap.metadata.confState = newConfState({ voters, learners });
    return s;
  }

  /** @inheritdoc */
  initialState(): InitialState {
    return { hardState: { ...this.hardState }, confState: this.snap.metadata.confState };
  }

  /** Records the hard state (part of persisting a Ready). */
  setHardState(hs: HardState): void {
    this.hardState = { ...hs };
  }

  /** @inheritdoc */
  entries(range: { lo: bigint; hi: bigint; maxSizeBytes?: number }): Entry[] {
    const { lo, hi, maxSizeBytes = Number.MAX_SAFE_INTEGER } = range;
    const offset = this.ents[0]!.index;
    if (lo <= offset) throw new StorageError("Compacted", lo);
    if (hi > this.lastIndex() + 1n) throw new StorageError("Unavailable", hi);
    assert(lo <= hi, `entries: lo ${lo} > hi ${hi}`);
    return limitSize(this.ents.slice(Number(lo - offset), Number(hi - offset)), maxSizeBytes);
  }

  /** @inheritdoc */
  term(index: bigint): bigint {
    const offset = this.ents[0]!.index;
    if (index < offset) throw new StorageError("Compacted", index);
    const e = this.ents[Number(index - offset)];
    if (e === undefined) throw new StorageError("Unavailable", index);
    return e.term;
  }

  /** @inheritdoc */
  firstIndex(): bigint {
    return this.ents[0]!.index + 1n;
  }

  /** @inheritdoc */
  lastIndex(): bigint {
    return this.ents[0]!.index + BigInt(this.ents.length - 1);
  }

  /** @inheritdoc */
  snapshot(): Snapshot {
    return this.snap;
  }

  /** Replaces the whole log by `snap` (a follower installing a leader's snapshot). */
  applySnapshot(snap: Snapshot): void {
    const { index, term } = snap.metadata;
    if (index <= this.snap.metadata.index) return; // An older snapshot changes nothing.
    this.snap = snap;
    this.ents = [newEntry({ term, index })];
    if (this.hardState.commit < index) this.hardState = { ...this.hardState, commit: index };
  }

  /**
   * Records a snapshot taken locally at `index` (which must be applied) and its data, so that
   * it can be sent to lagging followers. Does not compact: call `compact` for that.
   */
  createSnapshot(opts: { index: bigint; confState: ConfState; data: Uint8Array }): Snapshot {
    assert(opts.index <= this.lastIndex(), `snapshot ${opts.index} > last ${this.lastIndex()}`);
    if (opts.index <= this.snap.metadata.index) return this.snap;
    const term = this.term(opts.index);
    this.snap = {
      data: opts.data,
      metadata: { index: opts.index, term, confState: opts.confState },
    };
    return this.snap;
  }

  /** Drops entries before `compactIndex`; `compactIndex` becomes the new dummy position. */
  compact(compactIndex: bigint): void {
    const offset = this.ents[0]!.index;
    if (compactIndex <= offset) return;
    assert(compactIndex <= this.lastIndex(), `compact ${compactIndex} > last ${this.lastIndex()}`);
    const i = Number(compactIndex - offset);
    const head = this.ents[i]!;
    this.ents = [newEntry({ term: head.term, index: head.index }), ...this.ents.slice(i + 1)];
  }

  /** Appends (and overwrites a conflicting suffix with) `entries`; the Ready persistence step. */
  append(entries: Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0]!.index;
    const offset = this.ents[0]!.index;
    if (first + BigInt(entries.length) - 1n <= offset) return; // All already compacted.
    let todo = entries;
    if (first <= offset) todo = entries.slice(Number(offset + 1n - first));
    const at = Number(todo[0]!.index - offset);
    assert(at <= this.ents.length, `append gap: first ${todo[0]!.index}, last ${this.lastIndex()}`);
    if (at < this.ents.length) this.ents.length = at;
    for (const e of todo) this.ents.push(e);
  }
}
