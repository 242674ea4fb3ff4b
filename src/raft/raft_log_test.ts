import assert, { deepEqual as assertEquals } from "node:assert/strict";
import { MemoryStorage } from "./memory_storage.ts";
import { RaftLog } from "./raft_log.ts";
import { type Entry, newEntry } from "./types.ts";

function ents(...termsFrom1: number[]): Entry[] {
  return termsFrom1.map((t, i) => newEntry({ term: BigInt(t), index: BigInt(i + 1) }));
}

function logWith(terms: number[]): RaftLog {
  const s = new MemoryStorage();
  s.append(ents(...terms));
  return new RaftLog(s, 1 << 20);
}

function terms(log: RaftLog): number[] {
  return log.slice({ lo: log.firstIndex(), hi: log.lastIndex() + 1n }).map((e) => Number(e.term));
}

Deno.test("Raft §5.4.1: a log with a later last term is more up to date, whatever its length", () => {
  const log = logWith([1, 1, 2]);
  assert(log.isUpToDate({ lastIndex: 1n, lastTerm: 3n }));
  assert(!log.isUpToDate({ lastIndex: 10n, lastTerm: 1n }));
});

Deno.test("Raft §5.4.1: with equal last terms, the longer log is more up to date", () => {
  const log = logWith([1, 1, 2]);
  assert(log.isUpToDate({ lastIndex: 3n, lastTerm: 2n }));
  assert(log.isUpToDate({ lastIndex: 4n, lastTerm: 2n }));
  assert(!log.isUpToDate({ lastIndex: 2n, lastTerm: 2n }));
});

Deno.test("Raft §5.3: an append whose previous entry does not match is rejected", () => {
  const log = logWith([1, 1, 2]);
  const r = log.maybeAppend({ index: 3n, logTerm: 1n, committed: 0n, entries: [] });
  assertEquals(r, undefined);
});

Deno.test("Raft §5.3: a conflicting suffix is deleted and replaced by the leader's entries", () => {
  const log = logWith([1, 1, 2, 2]);
  const incoming = [
    newEntry({ term: 3n, index: 3n }),
    newEntry({ term: 3n, index: 4n }),
    newEntry({ term: 3n, index: 5n }),
  ];
  const last = log.maybeAppend({ index: 2n, logTerm: 1n, committed: 2n, entries: incoming });
  assertEquals(last, 5n);
  assertEquals(terms(log), [1, 1, 3, 3, 3]);
  assertEquals(log.committed, 2n);
});

Deno.test("Raft §5.3: entries the follower already has are not truncated by a stale append", () => {
  const log = logWith([1, 1, 2, 2]);
  const last = log.maybeAppend({
    index: 1n,
    logTerm: 1n,
    committed: 0n,
    entries: [newEntry({ term: 1n, index: 2n })],
  });
  assertEquals(last, 2n);
  assertEquals(terms(log), [1, 1, 2, 2]);
});

Deno.test("Raft §5.3: commit advances to min(leader commit, last new entry)", () => {
  const log = logWith([1]);
  log.maybeAppend({
    index: 1n,
    logTerm: 1n,
    committed: 10n,
    entries: [newEntry({ term: 1n, index: 2n })],
  });
  assertEquals(log.committed, 2n);
});

Deno.test("Raft §5.4.2: a leader commits an index only if its entry is of the current term", () => {
  const log = logWith([1, 2, 2]);
  assertEquals(log.maybeCommit({ index: 3n, term: 3n }), false);
  assertEquals(log.committed, 0n);
  assertEquals(log.maybeCommit({ index: 3n, term: 2n }), true);
  assertEquals(log.committed, 3n);
});

Deno.test("findConflictByTerm skips back to the last entry whose term is at most the given term", () => {
  const log = logWith([1, 1, 2, 2, 4, 4]);
  assertEquals(log.findConflictByTerm({ index: 6n, term: 3n }), 4n);
  assertEquals(log.findConflictByTerm({ index: 6n, term: 1n }), 2n);
  assertEquals(log.findConflictByTerm({ index: 6n, term: 5n }), 6n);
});

Deno.test("applied entries are handed out once, bounded by size", () => {
  const s = new MemoryStorage();
  s.append(ents(1, 1, 1));
  const log = new RaftLog(s, 1);
  log.commitTo(3n);
  assertEquals(log.nextCommittedEntries().length, 1); // The size limit still yields one entry.
  log.appliedTo(1n);
  assertEquals(log.nextCommittedEntries()[0]!.index, 2n);
});
