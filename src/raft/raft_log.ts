/**
 * The Raft log as the core sees it: durable `Storage` below, `LogUnstable` on top, and the
 * commit and apply cursors.
 *
 * Invariants (asserted): `applied <= committed <= lastIndex()`; `firstIndex() - 1 <= applied`
 * once a snapshot is restored; the term of an entry never decreases along the log.
 *
 * With asynchronous persistence (`RaftConfig.asyncPersist`) the application writes a Ready's
 * entries and calls `advance` before they are durable, and reports durability later
 * (`RawNode.onPersisted`): `persisted` is the highest index known durable here, and committed
 * entries are handed out for apply only up to it — so what a state machine applies is durable
 * on this node as well as committed. An append that replaces entries lowers it to the point of
 * replacement; a report for entries replaced since is ignored (their term no longer matches).
 *
 * @module
 */

import { LogUnstable } from "./log_unstable.ts";
import { limitSize, type Storage, StorageError } from "./storage.ts";
import { assert, type Entry, maxBig, minBig, type Snapshot } from "./types.ts";

/** Storage + unstable entries + commit/applied cursors. */
export class RaftLog {
  /** The highest index known to be committed (stored on a quorum). */
  committed: bigint;
  /** The highest index the application has applied (reported through `advance`). */
  applied: bigint;
  /** Entries not yet persisted. */
  readonly unstable: LogUnstable;
  /**
   * With asynchronous persistence: the highest index known durable on this node (module
   * header); everything in storage is, at start. Unused otherwise.
   */
  persisted: bigint;
  /** Called with every batch of entries appended (after truncation), for config tracking. */
  onAppend: ((entries: Entry[]) => void) | undefined = undefined;

  /**
   * A log over `storage`, positioned after its last entry. `asyncPersist`: committed entries
   * are handed out only up to `persisted` (module header).
   */
  constructor(
    readonly storage: Storage,
    readonly maxCommittedSizePerReadyBytes: number,
    readonly asyncPersist = false,
  ) {
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new LogUnstable(last + 1n);
    this.committed = first - 1n;
    this.applied = first - 1n;
    this.persisted = last;
  }

  /** First index still in the log. */
  firstIndex(): bigint {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  /** Index of the last entry. */
  lastIndex(): bigint {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  /** Term of the last entry. */
  lastTerm(): bigint {
    const t = this.term(this.lastIndex());
    assert(t !== undefined, `no term for last index ${this.lastIndex()}`);
    return t;
  }

  /** Term of entry `index`, or undefined if compacted away or beyond the end. */
  term(index: bigint): bigint | undefined {
    const dummy = this.firstIndex() - 1n;
    if (index < dummy || index > this.lastIndex()) return undefined;
    const t = this.unstable.maybeTerm(index);
    if (t !== undefined) return t;
    try {
      return this.storage.term(index);
    } catch (e) {
      if (e instanceof StorageError) return undefined;
      throw e;
    }
  }

  /** True if the log has entry `index` with term `term`. */
  matchTerm(at: { index: bigint; term: bigint }): boolean {
    return this.term(at.index) === at.term;
  }

  /**
   * Raft §5.4.1: is a log ending at (`lastIndex`, `term`) at least as up to date as ours?
   * Compare last terms first, then lengths.
   */
  isUpToDate(theirs: { lastIndex: bigint; lastTerm: bigint }): boolean {
    const ourTerm = this.lastTerm();
    const { lastIndex, lastTerm } = theirs;
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /**
   * Follower side of MsgAppend (Raft §5.3): if our entry at `index` has `logTerm`, append
   * `entries` (overwriting from the first conflict) and advance commit to
   * min(`committed`, last new index). Returns the last new index, or undefined on mismatch.
   */
  maybeAppend(
    opts: { index: bigint; logTerm: bigint; committed: bigint; entries: Entry[] },
  ): bigint | undefined {
    if (!this.matchTerm({ index: opts.index, term: opts.logTerm })) return undefined;
    const lastNew = opts.index + BigInt(opts.entries.length);
    const conflict = this.findConflict(opts.entries);
    if (conflict !== 0n) {
      assert(
        conflict > this.committed,
        `entry ${conflict} conflicts with committed ${this.committed}`,
      );
      this.append(opts.entries.slice(Number(conflict - (opts.index + 1n))));
    }
    this.commitTo(minBig(opts.committed, lastNew));
    return lastNew;
  }

  /** Appends entries at the end (after truncation of any conflicting suffix). Returns last index. */
  append(entries: Entry[]): bigint {
    if (entries.length === 0) return this.lastIndex();
    const after = entries[0]!.index - 1n;
    assert(
      after >= this.committed,
      `append after ${after} would overwrite committed ${this.committed}`,
    );
    this.unstable.truncateAndAppend(entries);
    // Entries after `after` are replaced: whatever was durable of the old ones says nothing of
    // the new ones.
    if (after < this.persisted) this.persisted = after;
    this.onAppend?.(entries);
    return this.lastIndex();
  }

  /**
   * Index of the first entry of `entries` that is missing or has a different term here, or 0
   * if all are present. Raft §5.3: "If an existing entry conflicts with a new one (same index
   * but different terms), delete the existing entry and all that follow it".
   */
  findConflict(entries: Entry[]): bigint {
    for (const e of entries) {
      if (!this.matchTerm(e)) return e.index;
    }
    return 0n;
  }

  /**
   * The largest index <= `index` whose term is <= `term`: the fast back-off hint a follower
   * returns on rejection so the leader skips a whole term per round trip (Raft §5.3, end).
   */
  findConflictByTerm(at: { index: bigint; term: bigint }): bigint {
    const { index, term } = at;
    let i = minBig(index, this.lastIndex());
    for (; i > 0n; i--) {
      const t = this.term(i);
      if (t === undefined || t <= term) break;
    }
    return i;
  }

  /** Unstable entries the application must persist. */
  unstableEntries(): Entry[] {
    return this.unstable.entries;
  }

  /** `index`, or with async persistence no more than what is durable here. */
  durableThrough(index: bigint): bigint {
    return this.asyncPersist && this.persisted < index ? this.persisted : index;
  }

  /** The last index apply may reach: committed, and durable here with async persistence. */
  applyLimit(): bigint {
    return this.durableThrough(this.committed);
  }

  /** True if committed entries wait to be applied. */
  hasNextCommittedEntries(): boolean {
    return this.applyLimit() > maxBig(this.applied, this.firstIndex() - 1n);
  }

  /** Committed, unapplied entries, bounded by `maxCommittedSizePerReadyBytes`. */
  nextCommittedEntries(): Entry[] {
    const lo = maxBig(this.applied + 1n, this.firstIndex());
    const hi = this.applyLimit() + 1n;
    if (hi <= lo) return [];
    return this.slice({ lo, hi, maxSizeBytes: this.maxCommittedSizePerReadyBytes });
  }

  /** Entries in `[lo, hi)` from storage and unstable, limited to `maxSizeBytes`. */
  slice(range: { lo: bigint; hi: bigint; maxSizeBytes?: number }): Entry[] {
    const { lo, hi, maxSizeBytes = Number.MAX_SAFE_INTEGER } = range;
    assert(
      lo >= this.firstIndex() && hi <= this.lastIndex() + 1n,
      `slice [${lo},${hi}) out of range`,
    );
    if (lo === hi) return [];
    let out: Entry[] = [];
    const split = this.unstable.offset;
    if (lo < split) {
      out = this.storage.entries({ lo, hi: minBig(hi, split), maxSizeBytes });
      // A short read from storage (size limit) ends the slice there.
      if (BigInt(out.length) < minBig(hi, split) - lo) return out;
    }
    if (hi > split) {
      const u = this.unstable.slice({ lo: maxBig(lo, split), hi });
      out = out.length === 0 ? u : out.concat(u);
    }
    return limitSize(out, maxSizeBytes);
  }

  /** Entries from `index` to the end, limited in size; undefined if compacted. */
  entriesFrom(index: bigint, maxSizeBytes: number): Entry[] | undefined {
    if (index < this.firstIndex()) return undefined;
    if (index > this.lastIndex()) return [];
    try {
      return this.slice({ lo: index, hi: this.lastIndex() + 1n, maxSizeBytes });
    } catch (e) {
      if (e instanceof StorageError) return undefined;
      throw e;
    }
  }

  /**
   * Raft §5.4.2: a leader commits `maxIndex` only if that entry is from its current `term`;
   * entries of earlier terms become committed indirectly. `countPreviousTerms` is the
   * test-only bug that skips this rule.
   */
  maybeCommit(opts: { index: bigint; term: bigint; countPreviousTerms?: boolean }): boolean {
    const { index: maxIndex, term, countPreviousTerms = false } = opts;
    if (maxIndex <= this.committed) return false;
    if (!countPreviousTerms && this.term(maxIndex) !== term) return false;
    this.commitTo(maxIndex);
    return true;
  }

  /** Advances the commit cursor (never backwards). */
  commitTo(index: bigint): void {
    if (index <= this.committed) return;
    assert(index <= this.lastIndex(), `commit ${index} beyond last index ${this.lastIndex()}`);
    this.committed = index;
  }

  /** The application applied up to `index`. */
  appliedTo(index: bigint): void {
    if (index === 0n) return;
    assert(
      index <= this.committed && index >= this.applied,
      `applied ${index} outside [${this.applied}, ${this.committed}]`,
    );
    this.applied = index;
  }

  /** The application persisted entries up to `index` at `term`. */
  stableTo(at: { index: bigint; term: bigint }): void {
    this.unstable.stableTo(at);
  }

  /** The application persisted the snapshot at `index`. */
  stableSnapTo(index: bigint): void {
    this.unstable.stableSnapTo(index);
  }

  /**
   * With async persistence: the entries up to `at.index` written with term `at.term` are
   * durable. Ignored if the log holds another term there now (those entries were replaced
   * since: their own report follows) or if it says nothing new.
   */
  persistedTo(at: { index: bigint; term: bigint }): void {
    if (at.index <= this.persisted || !this.matchTerm(at)) return;
    this.persisted = at.index;
  }

  /** Replaces the log by a snapshot (follower receiving MsgSnapshot). */
  restore(snap: Snapshot): void {
    this.committed = snap.metadata.index;
    this.unstable.restore(snap);
    // The whole log is replaced: nothing of it is known durable until the snapshot is.
    if (this.persisted > snap.metadata.index) this.persisted = snap.metadata.index;
  }

  /** The snapshot to send: the unstable one if pending, else storage's. */
  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }
}
