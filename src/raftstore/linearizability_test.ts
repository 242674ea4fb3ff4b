/**
 * A random register workload against the harness with crashes (process and power loss),
 * partitions, an isolated leader and a lossy, reordering network, checked for linearizability
 * with the simulator's Wing–Gong/Lowe checker (sim/linearizability.ts, Porcupine's algorithm).
 * Reads are lease reads or ReadIndex reads, whichever the leader may serve; writes go through
 * the log. Clients act between rounds (a few rounds per tick), half of them asking the harness
 * for the current leader each time and half sticking to the leader they last learnt, so that
 * reads reach deposed and brand-new leaders. A run is a pure function of its seed (checked by running one twice).
 *
 * History rules: a call's time is taken when the client issues it and a return's time in the
 * callback, from one event counter, so real-time order is exact. A write answered with an error
 * that means "not applied" is left out; one whose outcome is unknown (StaleCommand, the store
 * stopped, no answer by the deadline) stays with return time ∞. Failed reads are left out.
 */
import assert from "node:assert/strict";
import { checkLinearizable, type KvOperation } from "../../sim/linearizability.ts";
import { outcomeUnknown } from "./errors.ts";
import { writeCommand } from "./command.ts";
import { Cluster, FIRST_REGION_ID, type GetResult, put } from "./testing/cluster.ts";
import { type Filter, isolate, lossy, partition } from "./testing/memory_transport.ts";
import type { CmdResult } from "./apply.ts";
import type { PeerTestingBugs } from "./peer_config.ts";
import { utf8 } from "../util/bytes.ts";
import { metapb } from "../../proto/mod.ts";
import { ConfChangeType } from "../raft/mod.ts";
import type { PeerMeta } from "./local_state.ts";

const KEYS = ["x", "y"];
const CLIENTS = 4;
/** Ticks a client waits for an answer before it gives up (outcome unknown for a write). */
const CLIENT_DEADLINE_TICKS = 12;
/** Chances, per tick with no fault under way, of a crash, a network fault and a peer swap. */
const CRASH_PER_TICK = 0.03;
const CUT_PER_TICK = 0.03;
const CHURN_PER_TICK = 0.02;

interface Pending {
  op: KvOperation;
  issuedAtTick: number;
  answer: CmdResult | GetResult | undefined;
  retTime: number;
}

interface RunResult {
  history: KvOperation[];
  faults: string[];
  acknowledgedWrites: number;
  reads: number;
}

async function runWorkload(
  seed: number,
  ticks: number,
  testingBugs: PeerTestingBugs = {},
): Promise<RunResult> {
  const c = await Cluster.start({
    storeCount: 3,
    seed,
    config: { raftLogGcCountLimit: 25, raftLogGcCheckTicks: 3, testingBugs },
  });
  const rng = c.random;
  let clock = 0;
  const history: KvOperation[] = [];
  const faults: string[] = [];
  const pending: (Pending | undefined)[] = Array.from({ length: CLIENTS }, () => undefined);
  let written = 0;
  let acknowledgedWrites = 0;
  let reads = 0;
  let down: { id: bigint; until: number } | undefined;
  let cut: { filter: Filter; until: number } | undefined;

  const finish = (i: number, p: Pending, timedOut: boolean) => {
    pending[i] = undefined;
    const a = p.answer;
    learn(i, a);
    if (timedOut) cachedLeader[i] = undefined;
    if (p.op.kind === "put") {
      if (a !== undefined && a.ok) {
        acknowledgedWrites++;
        history.push({ ...p.op, ret: p.retTime });
      } else if (timedOut || (a !== undefined && !a.ok && outcomeUnknown(a.error))) {
        history.push({ ...p.op, ret: Infinity });
      }
    } else if (a !== undefined && a.ok && "value" in a) {
      reads++;
      history.push({ ...p.op, value: a.value, ret: p.retTime });
    }
  };

  /** Each client's idea of the leader's store, as a client's region cache keeps it. */
  const cachedLeader: (bigint | undefined)[] = Array.from({ length: CLIENTS }, () => undefined);
  const learn = (i: number, answer: CmdResult | GetResult | undefined) => {
    if (answer === undefined || answer.ok) return;
    const e = answer.error;
    cachedLeader[i] = e.code === "NotLeader" ? e.leader?.storeId : undefined;
  };

  const issue = (i: number) => {
    const key = rng.pick(KEYS);
    const live = c.storeIds.filter((id) => c.isUp(id));
    // Even clients ask "PD" (the harness's highest-term leader) each time; odd clients keep
    // the leader they last learnt, so they may talk to a deposed leader for a while.
    const cached = i % 2 === 0 ? c.leader()?.meta.storeId : cachedLeader[i];
    const storeId = cached !== undefined && c.isUp(cached) ? cached : rng.pick(live);
    cachedLeader[i] = storeId;
    const p: Pending = {
      op: { clientId: i, kind: "put", key, value: undefined, call: ++clock, ret: Infinity },
      issuedAtTick: c.ticks,
      answer: undefined,
      retTime: Infinity,
    };
    const store = c.store(storeId);
    if (rng.chance(0.5)) {
      const value = `w${++written}`;
      p.op.value = value;
      const peer = store.peer(FIRST_REGION_ID);
      const region = peer?.region() ?? c.initialRegion();
      const cmd = writeCommand(region, peer?.meta ?? region.peers[0]!, [put(key, value)]);
      store.propose(FIRST_REGION_ID, cmd, (r) => {
        p.answer = r;
        p.retTime = ++clock;
      });
    } else {
      p.op.kind = "get";
      store.read(FIRST_REGION_ID, (r) => {
        if (r.ok) {
          const bytes = r.snapshot.get("default", utf8(key));
          r.snapshot.release();
          p.answer = {
            ok: true,
            value: bytes === null ? undefined : new TextDecoder().decode(bytes),
            viaLease: r.viaLease,
            appliedIndex: r.appliedIndex,
          };
        } else {
          p.answer = r;
        }
        p.retTime = ++clock;
      });
    }
    pending[i] = p;
  };

  const maybeFault = () => {
    if (down !== undefined && c.ticks >= down.until) {
      c.restart(down.id);
      faults.push(`t${c.ticks} restart ${down.id}`);
      down = undefined;
    }
    if (cut !== undefined && c.ticks >= cut.until) {
      c.transport.removeFilter(cut.filter);
      faults.push(`t${c.ticks} heal`);
      cut = undefined;
    }
    if (down !== undefined || cut !== undefined || churn !== undefined) return;
    if (rng.chance(CRASH_PER_TICK)) {
      const leader = c.leader();
      const id = leader !== undefined && rng.chance(0.5)
        ? leader.meta.storeId
        : rng.pick(c.storeIds);
      const powerLoss = rng.chance(0.5);
      c.crash(id, { powerLoss });
      down = { id, until: c.ticks + 5 + rng.int(30) };
      faults.push(`t${c.ticks} crash ${id}${powerLoss ? " (power loss)" : ""}`);
    } else if (rng.chance(CUT_PER_TICK)) {
      const leader = c.leader();
      const filter = leader !== undefined && rng.chance(0.5)
        ? isolate(leader.meta.storeId)
        : rng.chance(0.5)
        ? partition([[1n], [2n, 3n]])
        : lossy(rng, { dropRate: 0.2, maxDelayRounds: 3 });
      c.transport.addFilter(filter);
      cut = { filter, until: c.ticks + 5 + rng.int(40) };
      faults.push(`t${c.ticks} ${filter.name}`);
    } else if (rng.chance(CHURN_PER_TICK)) {
      const follower = c.peers().find((p) => !p.isLeader());
      if (follower === undefined) return;
      churn = { step: 0, old: follower.meta, fresh: { ...follower.meta, id: c.allocPeerId() } };
      faults.push(`t${c.ticks} replace peer ${follower.meta.id} on store ${follower.meta.storeId}`);
    }
  };

  /**
   * Membership churn, one single step per answer: remove a follower, add its store back as a
   * learner under a new peer id (it catches up by snapshot), promote it.
   */
  let churn: {
    step: number;
    old: PeerMeta;
    fresh: PeerMeta;
    handle?: { result: CmdResult | undefined };
  } | undefined;
  const STEPS: [ConfChangeType, (ch: NonNullable<typeof churn>) => PeerMeta][] = [
    [ConfChangeType.RemoveNode, (ch) => ch.old],
    [ConfChangeType.AddLearnerNode, (ch) => ({ ...ch.fresh, role: metapb.PeerRole.Learner })],
    [ConfChangeType.AddNode, (ch) => ({ ...ch.fresh, role: metapb.PeerRole.Voter })],
  ];
  const advanceChurn = () => {
    if (churn === undefined) return;
    const result = churn.handle?.result;
    if (churn.handle !== undefined && result === undefined) return;
    if (result?.ok === true) {
      faults.push(`t${c.ticks} ${ConfChangeType[STEPS[churn.step]![0]]} done`);
      churn.step++;
    }
    if (churn.step === STEPS.length) {
      churn = undefined;
      return;
    }
    const leader = c.leader();
    if (leader === undefined || (churn.step === 0 && leader.meta.id === churn.old.id)) {
      churn.handle = undefined;
      return;
    }
    const [changeType, target] = STEPS[churn.step]!;
    churn.handle = c.startChangePeer(leader.meta.storeId, { changeType, peer: target(churn) });
  };
  // Clients act between rounds, not only when the cluster is quiet: a few rounds per tick.
  for (let t = 0; t < ticks; t++) {
    maybeFault();
    advanceChurn();
    c.tickStores();
    const rounds = 1 + rng.int(4);
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < CLIENTS; i++) {
        const p = pending[i];
        if (p !== undefined && p.answer !== undefined) finish(i, p, false);
        else if (p !== undefined && c.ticks - p.issuedAtTick > CLIENT_DEADLINE_TICKS) {
          finish(i, p, true);
        }
        if (pending[i] === undefined && rng.chance(0.3)) issue(i);
      }
      await c.round();
    }
  }
  await c.settle();
  for (let i = 0; i < CLIENTS; i++) {
    const p = pending[i];
    if (p !== undefined) finish(i, p, p.answer === undefined);
  }
  return { history, faults, acknowledgedWrites, reads };
}

/** Seeds of the sweep; 102 also catches a planted bug below. */
const SEEDS = [101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 122];

for (const seed of SEEDS) {
  Deno.test(`a random register workload with crashes and partitions is linearizable (seed ${seed})`, async () => {
    const run = await runWorkload(seed, 400);
    const verdict = checkLinearizable(run.history);
    assert.ok(
      verdict.ok,
      `seed ${seed}: key ${verdict.key} not linearizable\n${verdict.explanation}\nfaults: ${
        run.faults.join(", ")
      }`,
    );
    assert.ok(
      run.acknowledgedWrites > 50 && run.reads > 50,
      `seed ${seed}: ${run.acknowledgedWrites} writes, ${run.reads} reads`,
    );
    assert.ok(run.faults.length > 0, `seed ${seed}: no fault injected`);
  });
}

Deno.test("a workload run is a pure function of its seed", async () => {
  const a = await runWorkload(107, 150);
  const b = await runWorkload(107, 150);
  assert.deepEqual(a, b);
});

// Teeth: each planted bug (PeerTestingBugs) is caught at the seed named here, so the checker is
// believed (STYLE.md, sim/bugs_test.ts). Seeds found by sweeping with each bug on (again after
// log compaction became bounded by the count limit and promotions wait for a caught-up learner):
// serveReadsOnFollowers fails most of 101..140; readWithoutLease 24 of 101..340 (133, 151, 155,
// 157, …); ackOverwrittenProposals 7 of 101..340 (101, 122, 151, 163, 195, 266, 304), and with
// hibernation on (hibernate.ts, the default since) 2 of them (293, 304).
const PLANTED: [keyof PeerTestingBugs, number][] = [
  ["serveReadsOnFollowers", 102],
  ["readWithoutLease", 133],
  ["ackOverwrittenProposals", 304],
];

for (const [bug, seed] of PLANTED) {
  Deno.test(`the linearizability check catches the planted bug ${bug} (seed ${seed})`, async () => {
    const run = await runWorkload(seed, 400, { [bug]: true });
    assert.equal(checkLinearizable(run.history).ok, false);
    // The same seed with the bug off passes: the checker caught the bug, not something else.
    assert.ok(checkLinearizable((await runWorkload(seed, 400)).history).ok, `seed ${seed}`);
  });
}
