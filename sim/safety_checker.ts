/**
 * Raft safety, checked while the simulation runs (Raft §5.2–§5.4, Figure 3).
 *
 * - Election Safety: at most one leader per term, over the whole run.
 * - Log Matching: an (index, term) pair always names the same entry data with the same
 *   preceding term; checked on every entry any node persists, which by induction means two
 *   logs holding the same (index, term) are identical up to it.
 * - Leader Completeness: an entry committed by the leader of term T is in the log of every
 *   leader of a term above T (checked when leadership is gained and when commits are seen).
 * - State Machine Safety: no two nodes apply different entries at the same index.
 *
 * A violation is reported as a message naming the nodes, terms and indexes involved.
 *
 * @module
 */

import { describeEntry, type Entry, type Raft, StateRole } from "../src/raft/mod.ts";

interface CommittedEntry {
  term: bigint;
  commitTerm: bigint;
  key: string;
}

function entryKey(e: Entry): string {
  return `${e.entryType}:${e.term}:${describeBytesFast(e.data)}`;
}

function describeBytesFast(b: Uint8Array): string {
  let s = "";
  for (const c of b) s += String.fromCharCode(c);
  return s;
}

/** Collects what nodes did and reports the first safety violation. */
export class SafetyChecker {
  private readonly leaderOfTerm = new Map<bigint, bigint>();
  private readonly entryAt = new Map<string, { key: string; prevTerm: bigint | undefined }>();
  private readonly appliedAt = new Map<bigint, { key: string; node: bigint; desc: string }>();
  private readonly committed = new Map<bigint, CommittedEntry>();
  private readonly leaderCommitSeen = new Map<bigint, bigint>();
  private readonly leaderTermChecked = new Map<bigint, bigint>();
  /** The first violation found, if any. */
  violation: string | undefined = undefined;

  private fail(msg: string): void {
    if (this.violation === undefined) this.violation = msg;
  }

  /** Election Safety and Leader Completeness; call after every step for every live node. */
  observe(raft: Raft): void {
    if (raft.state !== StateRole.Leader) return;
    const other = this.leaderOfTerm.get(raft.term);
    if (other !== undefined && other !== raft.id) {
      this.fail(
        `Election Safety: nodes ${other} and ${raft.id} are both leader of term ${raft.term}`,
      );
    }
    this.leaderOfTerm.set(raft.term, raft.id);
    if (this.leaderTermChecked.get(raft.id) !== raft.term) {
      this.leaderTermChecked.set(raft.id, raft.term);
      for (const [index, c] of this.committed) this.checkLeaderHas({ raft, index, c });
    }
    this.recordLeaderCommits(raft);
  }

  private recordLeaderCommits(raft: Raft): void {
    const from = this.leaderCommitSeen.get(raft.id) ?? 0n;
    const to = raft.log.committed;
    if (to <= from) return;
    this.leaderCommitSeen.set(raft.id, to);
    const lo = from + 1n > raft.log.firstIndex() ? from + 1n : raft.log.firstIndex();
    if (lo > to) return;
    for (const e of raft.log.slice({ lo, hi: to + 1n })) {
      if (this.committed.has(e.index)) continue;
      const c = { term: e.term, commitTerm: raft.term, key: entryKey(e) };
      this.committed.set(e.index, c);
    }
  }

  private checkLeaderHas(opts: { raft: Raft; index: bigint; c: CommittedEntry }): void {
    const { raft, index, c } = opts;
    if (raft.term <= c.commitTerm || index < raft.log.firstIndex()) return;
    const t = raft.log.term(index);
    if (t !== c.term) {
      this.fail(
        `Leader Completeness: entry ${index} (term ${c.term}) was committed in term ${c.commitTerm}, ` +
          `but node ${raft.id}, leader of term ${raft.term}, has ${
            t === undefined ? "no entry" : `term ${t}`
          } there`,
      );
    }
  }

  /** Log Matching; call with the entries a node persisted and the term before the first. */
  persisted(opts: { node: bigint; entries: Entry[]; prevTerm: bigint | undefined }): void {
    const { node, entries, prevTerm } = opts;
    let prev = prevTerm;
    for (const e of entries) {
      const k = `${e.index}/${e.term}`;
      const key = entryKey(e);
      const seen = this.entryAt.get(k);
      if (seen === undefined) {
        this.entryAt.set(k, { key, prevTerm: prev });
      } else if (seen.key !== key) {
        this.fail(
          `Log Matching: node ${node} persisted a different entry at ${k}: ${describeEntry(e)}`,
        );
      } else if (seen.prevTerm !== undefined && prev !== undefined && seen.prevTerm !== prev) {
        this.fail(
          `Log Matching: node ${node} has term ${prev} before ${k}, another node has ${seen.prevTerm}`,
        );
      }
      prev = e.term;
    }
  }

  /** State Machine Safety; call for every entry a node applies. */
  applied(node: bigint, e: Entry): void {
    const key = entryKey(e);
    const seen = this.appliedAt.get(e.index);
    if (seen === undefined) {
      this.appliedAt.set(e.index, { key, node, desc: describeEntry(e) });
    } else if (seen.key !== key) {
      this.fail(
        `State Machine Safety: at index ${e.index} node ${seen.node} applied ${seen.desc}, ` +
          `node ${node} applied ${describeEntry(e)}`,
      );
    }
  }

  /** Leaders observed so far (term → id), for reports. */
  leaders(): number {
    return this.leaderOfTerm.size;
  }
}
