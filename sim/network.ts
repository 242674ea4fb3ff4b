/**
 * The simulated network: per-message loss, duplication and delay (so reordering), plus
 * partitions that cut links one way (asymmetric) or both ways (symmetric), and flapping links.
 *
 * Invariant: every decision is drawn from the simulation's PRNG in event order, so a seed
 * fixes which message is lost, duplicated or delayed by how much.
 *
 * @module
 */

import type { Prng } from "./prng.ts";

/** Loss, duplication and delay settings in force. */
export interface NetworkConditions {
  dropRate: number;
  duplicateRate: number;
  minDelayMs: number;
  maxDelayMs: number;
}

/** Calm conditions: no loss, no duplicates, short delays. */
export const CALM_NETWORK: NetworkConditions = {
  dropRate: 0,
  duplicateRate: 0,
  minDelayMs: 1,
  maxDelayMs: 5,
};

/** What happens to one message: delivered after each delay in `delaysMs` (none = lost). */
export interface Fate {
  delaysMs: number[];
  reason: "ok" | "cut" | "dropped";
}

/** Links, cuts and conditions. */
export class SimNetwork {
  conditions: NetworkConditions = { ...CALM_NETWORK };
  /** Directed link → number of active faults cutting it (partitions may overlap). */
  private readonly cut = new Map<string, number>();

  /** A network drawing its decisions from `prng`. */
  constructor(private readonly prng: Prng) {}

  /** Cuts the link `from → to` (one way). */
  cutLink(from: bigint, to: bigint): void {
    const k = `${from}>${to}`;
    this.cut.set(k, (this.cut.get(k) ?? 0) + 1);
  }

  /** Restores the link `from → to`. */
  restoreLink(from: bigint, to: bigint): void {
    const k = `${from}>${to}`;
    const n = (this.cut.get(k) ?? 0) - 1;
    if (n <= 0) this.cut.delete(k);
    else this.cut.set(k, n);
  }

  /** True if `from → to` is cut. */
  isCut(from: bigint, to: bigint): boolean {
    return this.cut.has(`${from}>${to}`);
  }

  /** Restores every link. */
  healAll(): void {
    this.cut.clear();
  }

  /** Number of cut directed links. */
  cutCount(): number {
    return this.cut.size;
  }

  /** Decides the fate of one message from `from` to `to`. */
  fate(from: bigint, to: bigint): Fate {
    if (this.isCut(from, to)) return { delaysMs: [], reason: "cut" };
    const c = this.conditions;
    if (this.prng.chance(c.dropRate)) return { delaysMs: [], reason: "dropped" };
    const delaysMs = [this.prng.between(c.minDelayMs, c.maxDelayMs)];
    if (this.prng.chance(c.duplicateRate)) {
      delaysMs.push(this.prng.between(c.minDelayMs, c.maxDelayMs * 2));
    }
    return { delaysMs, reason: "ok" };
  }
}
