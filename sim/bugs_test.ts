/**
 * The checkers have teeth: each deliberate Raft bug (`RaftConfig.testingBugs`) is caught by the
 * seed sweep. Seeds are those `deno task sim --seeds 300 --bug <name>` reported as failing
 * (the first failing seed of each sweep; for the lease bug, the only failure in seeds 1..7258
 * since ConfChange entries became protobuf — the history of every seed changed with their size);
 * each seed also passes with the bug switched off.
 */

import assert from "node:assert/strict";
import type { RaftTestingBugs } from "../src/raft/mod.ts";
import { type FailureKind, formatResult, runSimulation } from "./simulation.ts";

interface Case {
  name: string;
  bugs: RaftTestingBugs;
  seed: number;
  kind: FailureKind;
  message: RegExp;
}

const CASES: Case[] = [
  {
    name: "Raft §5.2: a node voting twice in one term is caught by Election Safety",
    bugs: { doubleVote: true },
    seed: 17,
    kind: "safety",
    message: /Election Safety/,
  },
  {
    name: "Raft §5.4.2 / Figure 8: committing a previous-term entry by counting replicas is caught",
    bugs: { commitPreviousTermByCount: true },
    seed: 161,
    kind: "safety",
    message: /Leader Completeness|State Machine Safety/,
  },
  {
    name:
      "Raft thesis §6.4: ReadIndex without the heartbeat round is caught by the linearizability checker",
    bugs: { readIndexWithoutHeartbeat: true },
    seed: 9,
    kind: "linearizability",
    message: /not linearizable/,
  },
  {
    name:
      "Raft thesis §6.4.1: lease reads without checking the lease are caught by the linearizability checker",
    bugs: { leaseReadWithoutCheck: true },
    seed: 7258,
    kind: "linearizability",
    message: /not linearizable/,
  },
  {
    name: "a probe that never resumes after a lost message is caught by the liveness checker",
    bugs: { probeNeverResumes: true },
    seed: 11,
    kind: "liveness",
    message: /no client write committed/,
  },
];

const STEPS = 20_000;

for (const c of CASES) {
  Deno.test(`bug injection: ${c.name} (seed ${c.seed})`, () => {
    const buggy = runSimulation({ seed: c.seed, steps: STEPS, bugs: c.bugs });
    assert.equal(buggy.ok, false, `seed ${c.seed} should fail with ${JSON.stringify(c.bugs)}`);
    assert.equal(buggy.failure!.kind, c.kind, formatResult(buggy));
    assert.match(buggy.failure!.message, c.message);
    const clean = runSimulation({ seed: c.seed, steps: STEPS });
    assert.equal(clean.ok, true, formatResult(clean));
  });
}
