/**
 * Which regions led here may take async-commit and 1PC prewrites yet (TiKV's max-ts sync).
 *
 * Async commit and 1PC take their commit ts from the store's max_ts (the largest read ts it
 * served, plus one), so a commit ts is above every read of the key that returned before it —
 * but only of reads served by this store. A read served elsewhere is invisible to this max_ts,
 * and a commit ts at or below it makes that read a snapshot that misses a committed write (a
 * lost update when the reader then writes the key: its prewrite finds no write newer than its
 * start ts). So before a leader here takes such a prewrite, max_ts must be raised to a PD
 * timestamp asked for after the last moment reads of the region's keys could have been served
 * elsewhere:
 *
 * - **it became leader** (in a new term): the previous leader, maybe on another store, served
 *   reads up to its last moment;
 * - **its range grew** (a merge committed into it, in the same term): the source region's
 *   leader, maybe on another store, served reads of the source's keys up to PrepareMerge
 *   (TiKV's `on_ready_commit_merge` calls `require_updating_max_ts` for this reason). A split
 *   only shrinks a range; a region a split made is new here, so it counts as led anew.
 *
 * The invariant: a region led here is synced only when every PD timestamp asked for it in its
 * current term has been answered (and max_ts raised to it). Counting the asks, not just the
 * term, keeps an answer to an ask made before a merge from syncing the merged region: it may
 * be below a read the source served after it was asked for.
 *
 * One ask is answered at most once (`fetched`); an ask of an older term is ignored when
 * answered. Pure: the caller asks PD and raises max_ts.
 *
 * @example
 * ```ts
 * import { MaxTsSync } from "./max_ts_sync.ts";
 * const sync = new MaxTsSync();
 * const view = { leading: true, term: 7n, startKey: new Uint8Array(), endKey: new Uint8Array() };
 * if (sync.observe(1n, view)) { // ask PD for a timestamp for region 1 in term 7
 * }
 * sync.synced(1n); // false until the answer:
 * sync.fetched(1n, 7n); // after max_ts was raised to it
 * sync.synced(1n); // true
 * ```
 *
 * @module
 */

import { assert } from "../util/assert.ts";
import { compareBytes } from "../util/bytes.ts";

/** What the sync needs to know of a region's peer here after a round. */
export interface LeaderView {
  leading: boolean;
  term: bigint;
  /** The region's range; empty start: −∞, empty end: +∞. */
  startKey: Uint8Array;
  endKey: Uint8Array;
}

/** The max-ts sync state of the regions led here (module header). */
export class MaxTsSync {
  /** Per region, what the last `observe` saw. */
  readonly #seen = new Map<bigint, LeaderView>();
  /** Regions led here whose asks are not all answered: the term, and how many are owed. */
  readonly #unsynced = new Map<bigint, { term: bigint; owed: number }>();

  /**
   * Records region `regionId`'s peer as it is now. True when a PD timestamp must be asked for
   * it in `view.term` (led anew, or its range grew while leading): the caller asks, then calls
   * `fetched` once max_ts was raised to the answer.
   */
  observe(regionId: bigint, view: LeaderView): boolean {
    const before = this.#seen.get(regionId);
    this.#seen.set(regionId, view);
    if (!view.leading) {
      this.#unsynced.delete(regionId);
      return false;
    }
    const ledAnew = before?.leading !== true || before.term !== view.term;
    if (!ledAnew && !rangeGrew(before, view)) return false;
    const entry = this.#unsynced.get(regionId);
    if (entry === undefined || entry.term !== view.term) {
      this.#unsynced.set(regionId, { term: view.term, owed: 1 });
    } else {
      entry.owed++;
    }
    return true;
  }

  /** An ask for `regionId` in `term` was answered and max_ts raised to the answer. */
  fetched(regionId: bigint, term: bigint): void {
    const entry = this.#unsynced.get(regionId);
    if (entry === undefined || entry.term !== term) return; // led anew since, or gone
    assert(entry.owed > 0, "a region awaiting max_ts owes an answer", { regionId, term });
    entry.owed--;
    if (entry.owed === 0) this.#unsynced.delete(regionId);
  }

  /** Whether region `regionId` may take async-commit and 1PC prewrites (`StoreServices`). */
  synced(regionId: bigint): boolean {
    return !this.#unsynced.has(regionId);
  }

  /** Region `regionId` is no longer served here: its state goes (asks answered later are ignored). */
  forget(regionId: bigint): void {
    this.#seen.delete(regionId);
    this.#unsynced.delete(regionId);
  }
}

/** Whether `after`'s range reaches beyond `before`'s at either end (a merge took a neighbour in). */
export function rangeGrew(
  before: Pick<LeaderView, "startKey" | "endKey">,
  after: Pick<LeaderView, "startKey" | "endKey">,
): boolean {
  const startMoved = before.startKey.length > 0 &&
    (after.startKey.length === 0 || compareBytes(after.startKey, before.startKey) < 0);
  const endMoved = before.endKey.length > 0 &&
    (after.endKey.length === 0 || compareBytes(after.endKey, before.endKey) > 0);
  return startMoved || endMoved;
}
