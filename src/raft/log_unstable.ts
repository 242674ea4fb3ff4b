/**
 * The part of the log not yet persisted: entries (and possibly an incoming snapshot) that a
 * `Ready` hands to the application for persistence.
 *
 * Invariants: `entries[k].index === offset + k`; if `snapshot` is set, `offset` is
 * `snapshot.metadata.index + 1`; entries are removed only once the application reports them
 * stable (`stableTo`) with a matching term, so a later overwrite is never lost.
 *
 * @module
 */

import { assert, type Entry, type Snapshot } from "./types.ts";

/** Unstable entries and snapshot, in front of `Storage`. */
export class LogUnstable {
  /** A snapshot received from the leader and not yet persisted. */
  snapshot: Snapshot | undefined = undefined;
  /** Entries not yet persisted; `entries[0]` has index `offset`. */
  entries: Entry[] = [];
  /** Index of `entries[0]` (or where it would be). */
  offset: bigint;

  /** An empty unstable log whose next entry will have index `offset`. */
  constructor(offset: bigint) {
    this.offset = offset;
  }

  /** The first index, if an unstable snapshot decides it. */
  maybeFirstIndex(): bigint | undefined {
    return this.snapshot === undefined ? undefined : this.snapshot.metadata.index + 1n;
  }

  /** The last index, if unstable entries or a snapshot decide it. */
  maybeLastIndex(): bigint | undefined {
    if (this.entries.length > 0) return this.offset + BigInt(this.entries.length) - 1n;
    return this.snapshot === undefined ? undefined : this.snapshot.metadata.index;
  }

  /** The term at `index` if the unstable part knows it. */
  maybeTerm(index: bigint): bigint | undefined {
    if (index < this.offset) {
      const s = this.snapshot;
      return s !== undefined && s.metadata.index === index ? s.metadata.term : undefined;
    }
    return this.entries[Number(index - this.offset)]?.term;
  }

  /** The application persisted entries up to `index` at `term`: drop them from here. */
  stableTo(at: { index: bigint; term: bigint }): void {
    const { index, term } = at;
    const t = this.maybeTerm(index);
    // A mismatch means the entry was overwritten after that Ready; keep the newer one.
    if (t === undefined || t !== term || index < this.offset) return;
    this.entries = this.entries.slice(Number(index + 1n - this.offset));
    this.offset = index + 1n;
  }

  /** The application persisted the snapshot at `index`. */
  stableSnapTo(index: bigint): void {
    if (this.snapshot !== undefined && this.snapshot.metadata.index === index) {
      this.snapshot = undefined;
    }
  }

  /** Replaces everything by a snapshot from the leader. */
  restore(snap: Snapshot): void {
    this.offset = snap.metadata.index + 1n;
    this.entries = [];
    this.snapshot = snap;
  }

  /** Appends `ents`, truncating any conflicting suffix first (Raft §5.3). */
  truncateAndAppend(ents: Entry[]): void {
    if (ents.length === 0) return;
    const after = ents[0]!.index;
    const next = this.offset + BigInt(this.entries.length);
    if (after === next) {
      for (const e of ents) this.entries.push(e);
    } else if (after <= this.offset) {
      // The whole unstable part is replaced; the log below `after` lives in storage.
      this.offset = after;
      this.entries = ents.slice();
    } else {
      assert(after < next, `unstable append gap: ${after} after ${next - 1n}`);
      this.entries = this.entries.slice(0, Number(after - this.offset));
      for (const e of ents) this.entries.push(e);
    }
  }

  /** Entries in `[lo, hi)`, all of which must be in the unstable part. */
  slice(range: { lo: bigint; hi: bigint }): Entry[] {
    const { lo, hi } = range;
    const upper = this.offset + BigInt(this.entries.length);
    assert(
      lo >= this.offset && hi <= upper && lo <= hi,
      `unstable slice [${lo},${hi}) out of [${this.offset},${upper})`,
    );
    return this.entries.slice(Number(lo - this.offset), Number(hi - this.offset));
  }
}
