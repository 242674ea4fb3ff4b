/**
 * When PD last saw each region split, for `split-merge-interval` (PD's merge checker
 * `splitCache`): a region split less than the interval ago is neither merged nor a merge target,
 * so that a split is not undone before the stores measured its halves.
 *
 * A split is recorded when PD hears of it: AskBatchSplit (the region asking and every new region
 * id handed out, as PD records it; a split asked for and never made only delays a merge) and
 * ReportBatchSplit (every region of the report, for a split whose ids another PD leader gave).
 * Records live in memory: after a restart or a change of PD leader none are known, which is why
 * the merge checker also waits one interval after PD starts (PD does the same).
 *
 * Invariants: at most `maxEntries` records (past it the oldest go first: such a region may merge
 * sooner, nothing worse); the map's order is the order of recording.
 *
 * @module
 */
import { PD_SPLIT_RECORDS_MAX } from "../constants.ts";
import { assert } from "../util/assert.ts";

/** Regions split recently, with when. */
export class SplitRecords {
  /** Region id → clock reading when its split was recorded, oldest first. */
  readonly #atMs = new Map<bigint, number>();
  readonly #maxEntries: number;

  constructor(options: { maxEntries?: number } = {}) {
    this.#maxEntries = options.maxEntries ?? PD_SPLIT_RECORDS_MAX;
    assert(this.#maxEntries >= 1, `split records need room: ${this.#maxEntries}`);
  }

  /** How many records are held. */
  get size(): number {
    return this.#atMs.size;
  }

  /** Records that `regionIds` split at `nowMs`; forgets records older than `intervalMs`. */
  record(regionIds: readonly bigint[], at: { nowMs: number; intervalMs: number }): void {
    this.#expire(at);
    for (const id of regionIds) {
      this.#atMs.delete(id);
      this.#atMs.set(id, at.nowMs);
    }
    while (this.#atMs.size > this.#maxEntries) {
      this.#atMs.delete(this.#atMs.keys().next().value!);
    }
  }

  /** Whether region `regionId` split less than `intervalMs` before `nowMs`. */
  recentlySplit(regionId: bigint, at: { nowMs: number; intervalMs: number }): boolean {
    const splitAtMs = this.#atMs.get(regionId);
    return splitAtMs !== undefined && at.nowMs - splitAtMs < at.intervalMs;
  }

  #expire(at: { nowMs: number; intervalMs: number }): void {
    for (const [id, splitAtMs] of this.#atMs) {
      if (at.nowMs - splitAtMs < at.intervalMs) return;
      this.#atMs.delete(id);
    }
  }
}
