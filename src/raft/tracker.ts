/**
 * Membership and per-peer progress of one Raft group, with the quorum arithmetic.
 *
 * Membership is single-step (see README.md, "Membership change"): a configuration is a set of
 * voters and a set of learners, disjoint. A quorum is a strict majority of the voters; learners
 * never count. Invariants (asserted): voters ∩ learners = ∅; every member has a Progress.
 *
 * @module
 */

import { Progress } from "./progress.ts";
import { assert, type ConfChange, ConfChangeType, type ConfState, newConfState } from "./types.ts";

/** Outcome of counting votes. */
export enum VoteResult {
  Pending = "Pending",
  Won = "Won",
  Lost = "Lost",
}

/** Applies a single-step change to a conf state, returning a new one (pure). */
export function applyConfChangeToConfState(cs: ConfState, cc: ConfChange): ConfState {
  const voters = cs.voters.filter((id) => id !== cc.nodeId);
  const learners = cs.learners.filter((id) => id !== cc.nodeId);
  if (cc.changeType === ConfChangeType.AddNode) voters.push(cc.nodeId);
  if (cc.changeType === ConfChangeType.AddLearnerNode) learners.push(cc.nodeId);
  voters.sort(compareBig);
  learners.sort(compareBig);
  return newConfState({ voters, learners });
}

/** Orders bigints ascending, for `Array.prototype.sort`. */
export function compareBig(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Voters, learners and the Progress of each. */
export class ProgressTracker {
  voters = new Set<bigint>();
  learners = new Set<bigint>();
  readonly progress = new Map<bigint, Progress>();
  /** Votes received in the current election: id → granted. */
  readonly votes = new Map<bigint, boolean>();

  /** An empty tracker whose progress windows hold `maxInflightMsgs`. */
  constructor(readonly maxInflightMsgs: number) {}

  /** The current membership as a ConfState (sorted ids). */
  confState(): ConfState {
    return newConfState({
      voters: [...this.voters].sort(compareBig),
      learners: [...this.learners].sort(compareBig),
    });
  }

  /**
   * Switches to membership `cs`. New members get a Progress starting at `nextIndex`; members
   * that stay keep theirs; removed members lose theirs.
   */
  setConfig(cs: ConfState, nextIndex: bigint): void {
    const voters = new Set(cs.voters);
    const learners = new Set(cs.learners);
    for (const id of learners) assert(!voters.has(id), `node ${id} is both voter and learner`);
    for (const id of [...this.progress.keys()]) {
      if (!voters.has(id) && !learners.has(id)) this.progress.delete(id);
    }
    for (const id of [...voters, ...learners]) {
      const pr = this.progress.get(id);
      if (pr === undefined) {
        const isLearner = learners.has(id);
        this.progress.set(
          id,
          new Progress({ next: nextIndex, maxInflightMsgs: this.maxInflightMsgs, isLearner }),
        );
      } else {
        pr.isLearner = learners.has(id);
      }
    }
    this.voters = voters;
    this.learners = learners;
  }

  /** True if `id` may vote (and so campaign). */
  isVoter(id: bigint): boolean {
    return this.voters.has(id);
  }

  /** Size of a strict majority of the voters. */
  quorum(): number {
    return Math.floor(this.voters.size / 2) + 1;
  }

  /**
   * The highest index replicated on a quorum of voters: the quorum-th largest `match`.
   * With no voters (never for a live group) this is 0.
   */
  committedIndex(): bigint {
    if (this.voters.size === 0) return 0n;
    const matches: bigint[] = [];
    for (const id of this.voters) matches.push(this.progress.get(id)!.match);
    matches.sort(compareBig);
    return matches[matches.length - this.quorum()]!;
  }

  /** Records a vote (the first answer from a voter wins; repeats are ignored). */
  recordVote(id: bigint, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  /** Counts votes among the current voters. */
  tallyVotes(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0;
    let rejected = 0;
    for (const id of this.voters) {
      const v = this.votes.get(id);
      if (v === true) granted++;
      if (v === false) rejected++;
    }
    const q = this.quorum();
    const result = granted >= q
      ? VoteResult.Won
      : this.voters.size - rejected < q
      ? VoteResult.Lost
      : VoteResult.Pending;
    return { granted, rejected, result };
  }

  /** Forgets the votes of the last election. */
  resetVotes(): void {
    this.votes.clear();
  }

  /** True if a quorum of voters was recently active (`self` always is). */
  quorumActive(self: bigint): boolean {
    let active = 0;
    for (const id of this.voters) {
      if (id === self || this.progress.get(id)!.recentActive) active++;
    }
    return active >= this.quorum();
  }

  /**
   * The quorum-th largest heartbeat send tick acknowledged by voters (`self` counting as
   * `nowTick`): every quorum of voters contains one that heard from us at or after it.
   */
  quorumAckedHeartbeatTick(self: bigint, nowTick: number): number {
    if (this.voters.size === 0) return -1;
    const ticks: number[] = [];
    for (const id of this.voters) {
      ticks.push(id === self ? nowTick : this.progress.get(id)!.ackedHeartbeatSentTick);
    }
    ticks.sort((a, b) => b - a);
    return ticks[this.quorum() - 1]!;
  }
}
