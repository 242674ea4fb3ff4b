/**
 * A randomized check of the actions against a dumb model of Percolator: many transactions
 * prewrite, commit and roll back interleaved, while a "lock resolver" cleans up primaries and
 * finishes secondaries the way a client resolving locks would. Checked:
 * - every read that is not stopped by a lock returns what the committed transactions (by
 *   commit ts) say (snapshot reads);
 * - two committed transactions that write one key never overlap in [start_ts, commit_ts]
 *   (no lost update: Percolator's write-write conflict rule);
 * - a transaction aborts only before its primary commits, and a rolled-back primary can never
 *   commit afterwards;
 * - nothing is left locked at the end.
 */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import type { Prng } from "../../codec/test_support.ts";
import { withSeed } from "../../codec/test_support.ts";
import { cleanup } from "./cleanup.ts";
import { commit } from "./commit.ts";
import { batchRollback } from "./rollback.ts";
import { key, MvccFixture, prewriteRequest, puts, read, request, run } from "./test_support.ts";
import { utf8 } from "../../util/bytes.ts";

const KEYS = ["a", "b", "c", "d"];

interface ModelTxn {
  startTs: bigint;
  keys: string[];
  phase: "init" | "prewritten" | "committing" | "committed" | "aborted";
  commitTs: bigint;
  /** Secondaries still to commit (phase committing). */
  pending: string[];
}

function pickKeys(prng: Prng): string[] {
  const keys = KEYS.filter(() => prng.below(2) === 0);
  return keys.length > 0 ? keys : [KEYS[prng.below(KEYS.length)]!];
}

/** The model's value of `rawKey` at `readTs`: the committed write with the largest commit ts. */
function modelValue(txns: ModelTxn[], rawKey: string, readTs: bigint): string | null {
  let best: ModelTxn | null = null;
  for (const t of txns) {
    if (t.commitTs === 0n || t.commitTs > readTs || !t.keys.includes(rawKey)) continue;
    if (best === null || t.commitTs > best.commitTs) best = t;
  }
  return best === null ? null : `t${best.startTs}`;
}

function abort(fx: MvccFixture, t: ModelTxn): void {
  const result =
    run(fx, t.startTs, (txn, reader) => batchRollback(txn, reader, t.keys.map(key))).result;
  assert(result.ok, `rollback of txn ${t.startTs} failed: ${!result.ok && result.error.kind}`);
  t.phase = "aborted";
}

function commitKey(fx: MvccFixture, t: ModelTxn, rawKey: string) {
  return run(
    fx,
    t.startTs,
    (txn, reader) => commit(txn, reader, { key: key(rawKey), commitTs: t.commitTs }),
  )
    .result;
}

/** One step of transaction `t`. */
function step(fx: MvccFixture, t: ModelTxn, tso: () => bigint): void {
  switch (t.phase) {
    case "init": {
      const result = prewriteRequest(
        fx,
        request({
          startTs: t.startTs,
          primary: utf8(t.keys[0]!),
          mutations: puts(...t.keys.map((k): [string, string] => [k, `t${t.startTs}`])),
        }),
      ).result;
      if (result.ok && result.value.locks.length === 0) t.phase = "prewritten";
      else if (!result.ok) abort(fx, t); // a write conflict, or our own rollback: give up
      return; // locked: retry later, after the resolver
    }
    case "prewritten": {
      t.commitTs = tso();
      const result = commitKey(fx, t, t.keys[0]!);
      if (result.ok) {
        t.phase = "committing";
        t.pending = t.keys.slice(1);
      } else {
        assertEquals(result.error.kind, "TxnLockNotFound", "only a resolved primary refuses");
        t.commitTs = 0n;
        abort(fx, t);
      }
      return;
    }
    case "committing": {
      const next = t.pending.shift();
      if (next === undefined) {
        t.phase = "committed";
        return;
      }
      const result = commitKey(fx, t, next);
      assert(
        result.ok,
        `secondary ${next} of committed txn ${t.startTs}: ${!result.ok && result.error.kind}`,
      );
      return;
    }
  }
}

/** The resolver: roll back a primary, or learn its commit and finish secondaries. */
function resolve(fx: MvccFixture, t: ModelTxn): void {
  const primary = t.keys[0]!;
  const result = run(
    fx,
    t.startTs,
    (txn, reader) =>
      cleanup(txn, reader, { key: key(primary), currentTs: 0n, protectRollback: true }),
  ).result;
  if (result.ok) {
    assert(
      t.phase !== "committing" && t.phase !== "committed",
      `rolled back committed txn ${t.startTs}`,
    );
    // The primary is rolled back: secondaries may be rolled back by anyone now.
    const rest = run(
      fx,
      t.startTs,
      (txn, reader) => batchRollback(txn, reader, t.keys.slice(1).map(key)),
    );
    assert(rest.result.ok);
    return;
  }
  assertEquals(result.error.kind, "Committed");
  assert(result.error.kind === "Committed" && result.error.commitTs === t.commitTs);
  for (const secondary of t.keys.slice(1)) {
    assert(commitKey(fx, t, secondary).ok, "the resolver commits secondaries of a committed txn");
  }
}

function checkReads(fx: MvccFixture, txns: ModelTxn[], readTs: bigint): void {
  for (const k of KEYS) {
    const actual = read(fx, k, { readTs });
    if (actual?.startsWith("locked@")) continue; // a reader would resolve and retry
    assertEquals(actual, modelValue(txns, k, readTs), `read ${k}@${readTs}`);
  }
}

Deno.test("Percolator model: random interleavings keep snapshot reads and no lost updates", () => {
  withSeed((prng) => {
    for (let round = 0; round < 20; round++) {
      const fx = new MvccFixture();
      let clock = 1n;
      const tso = () => clock++;
      const txns: ModelTxn[] = [];
      for (let stepCount = 0; stepCount < 400; stepCount++) {
        const active = txns.filter((t) => t.phase !== "committed" && t.phase !== "aborted");
        const roll = prng.below(10);
        if (txns.length < 25 && (active.length === 0 || roll === 0)) {
          txns.push({
            startTs: tso(),
            keys: pickKeys(prng),
            phase: "init",
            commitTs: 0n,
            pending: [],
          });
        } else if (roll === 1 && active.length > 0) {
          const victim = active[prng.below(active.length)]!;
          if (victim.phase !== "init") resolve(fx, victim);
        } else if (roll === 2) {
          checkReads(fx, txns, tso());
        } else if (active.length > 0) {
          step(fx, active[prng.below(active.length)]!, tso);
        }
      }
      // Finish everyone: resolve what is stuck, let the rest complete.
      for (const t of txns) {
        for (
          let guard = 0;
          guard < 100 && t.phase !== "committed" && t.phase !== "aborted";
          guard++
        ) {
          if (t.phase === "init") abort(fx, t);
          else step(fx, t, tso);
        }
        assert(
          t.phase === "committed" || t.phase === "aborted",
          `txn ${t.startTs} stuck in ${t.phase}`,
        );
      }
      for (const k of KEYS) assertEquals(fx.lock(k), null, `lock left on ${k}`);
      const end = tso();
      for (let ts = 0n; ts <= end; ts++) checkReads(fx, txns, ts);
      const committed = txns.filter((t) => t.phase === "committed");
      for (const x of committed) {
        for (const y of committed) {
          if (x === y || !x.keys.some((k) => y.keys.includes(k))) continue;
          const overlap = x.startTs < y.commitTs && y.startTs < x.commitTs;
          assert(
            !overlap,
            `txns ${x.startTs}..${x.commitTs} and ${y.startTs}..${y.commitTs} overlap`,
          );
        }
      }
      assert(committed.length > 0, "some transactions commit");
    }
  });
});
