import assert from "node:assert/strict";
import { SeededRandom } from "../../util/random.ts";
import { utf8 } from "../../util/bytes.ts";
import { DeadlockDetector, type DetectRequest, type WaitForEntry } from "./deadlock.ts";

function edge(
  txnTs: bigint,
  lockTs: bigint,
  options: { hash?: bigint; key?: string; tag?: string; nowMs?: number } = {},
): DetectRequest {
  return {
    txnTs,
    lockTs,
    keyHash: options.hash ?? txnTs * 100n + lockTs,
    key: utf8(options.key ?? `k${txnTs}-${lockTs}`),
    resourceGroupTag: options.tag === undefined ? undefined : utf8(options.tag),
    nowMs: options.nowMs ?? 0,
  };
}

function pairs(chain: readonly WaitForEntry[]): string[] {
  return chain.map((entry) => `${entry.txn}->${entry.waitForTxn}`);
}

Deno.test("2-cycle: the second edge of T1 ⇄ T2 is a deadlock naming the first edge's key", () => {
  const detector = new DeadlockDetector({ edgeTtlMs: 100 });
  assert.equal(detector.detect(edge(1n, 2n, { hash: 11n, key: "k1", tag: "tag1" })), undefined);
  const deadlock = detector.detect(edge(2n, 1n, { hash: 12n, key: "k2", tag: "tag2" }));
  assert.ok(deadlock);
  assert.equal(deadlock.lockTs, 1n);
  assert.deepEqual(deadlock.lockKey, utf8("k2"));
  // The edge that closes the cycle from the holder's side is 1 → 2, on k1.
  assert.equal(deadlock.deadlockKeyHash, 11n);
  assert.deepEqual(pairs(deadlock.waitChain), ["1->2", "2->1"]);
  assert.deepEqual(deadlock.waitChain[0], {
    txn: 1n,
    waitForTxn: 2n,
    keyHash: 11n,
    key: utf8("k1"),
    resourceGroupTag: utf8("tag1"),
  });
  assert.deepEqual(deadlock.waitChain[1]!.resourceGroupTag, utf8("tag2"));
  // The refused edge was not recorded.
  assert.equal(detector.edgeCount(), 1);
});

Deno.test("3-cycle: T1 → T2 → T3 → T1 is detected with the whole chain in order", () => {
  const detector = new DeadlockDetector({ edgeTtlMs: 100 });
  assert.equal(detector.detect(edge(1n, 2n)), undefined);
  assert.equal(detector.detect(edge(2n, 3n)), undefined);
  const deadlock = detector.detect(edge(3n, 1n));
  assert.ok(deadlock);
  assert.deepEqual(pairs(deadlock.waitChain), ["1->2", "2->3", "3->1"]);
  assert.equal(deadlock.deadlockKeyHash, 203n);
  // Each entry's holder is the next entry's waiter (a closed walk).
  const chain = deadlock.waitChain;
  for (let i = 0; i < chain.length; i++) {
    assert.equal(chain[i]!.waitForTxn, chain[(i + 1) % chain.length]!.txn);
  }
});

Deno.test("no false positives: a diamond and a shared holder are not deadlocks", () => {
  const detector = new DeadlockDetector({ edgeTtlMs: 100 });
  // 1 → 2, 1 → 3, 2 → 4, 3 → 4: two paths to 4, no cycle.
  for (const [a, b] of [[1n, 2n], [1n, 3n], [2n, 4n], [3n, 4n]] as const) {
    assert.equal(detector.detect(edge(a, b)), undefined);
  }
  // Many waiters on one holder.
  for (const waiter of [5n, 6n, 7n]) assert.equal(detector.detect(edge(waiter, 4n)), undefined);
  // 4 → 8 extends the graph without closing anything.
  assert.equal(detector.detect(edge(4n, 8n)), undefined);
  assert.equal(detector.edgeCount(), 8);
  // But 4 → 1 closes 1 → 2 → 4 → 1 (or via 3).
  const deadlock = detector.detect(edge(4n, 1n));
  assert.ok(deadlock);
  assert.equal(deadlock.waitChain[0]!.txn, 1n);
  assert.equal(deadlock.waitChain.at(-1)!.txn, 4n);
  assert.equal(deadlock.waitChain.length, 3);
});

Deno.test("a repeated edge refreshes its time and keeps its first key", () => {
  const detector = new DeadlockDetector({ edgeTtlMs: 100 });
  assert.equal(detector.detect(edge(1n, 2n, { hash: 1n, key: "a", nowMs: 0 })), undefined);
  assert.equal(detector.detect(edge(1n, 2n, { hash: 2n, key: "b", nowMs: 90 })), undefined);
  assert.equal(detector.edgeCount(), 1);
  // At 150 the edge is 60 ms old (refreshed at 90), so still live: 2 → 1 is a deadlock.
  const deadlock = detector.detect(edge(2n, 1n, { nowMs: 150 }));
  assert.ok(deadlock);
  assert.equal(deadlock.deadlockKeyHash, 1n);
  assert.deepEqual(detector.entries().map((e) => e.key), [utf8("a")]);
});

Deno.test("edges expire after the TTL and then no longer cause deadlocks", () => {
  const detector = new DeadlockDetector({ edgeTtlMs: 100 });
  assert.equal(detector.detect(edge(1n, 2n, { nowMs: 0 })), undefined);
  assert.ok(detector.detect(edge(2n, 1n, { nowMs: 99 })));
  // At exactly the TTL the edge is gone; the reverse edge is then accepted.
  assert.equal(detector.detect(edge(2n, 1n, { nowMs: 100 })), undefined);
  assert.deepEqual(pairs(detector.entries()), ["2->1"]);
  detector.detect(edge(3n, 4n, { nowMs: 150 }));
  detector.expire(250);
  assert.deepEqual(pairs(detector.entries()), []);
  assert.equal(detector.edgeCount(), 0);
});

Deno.test("cleanUpWaitFor removes one key of an edge; cleanUp removes a txn's edges", () => {
  const detector = new DeadlockDetector({ edgeTtlMs: 1000 });
  detector.detect(edge(1n, 2n, { hash: 10n }));
  detector.detect(edge(1n, 2n, { hash: 20n }));
  detector.detect(edge(1n, 3n, { hash: 30n }));
  detector.cleanUpWaitFor({ txnTs: 1n, lockTs: 2n, keyHash: 10n });
  assert.equal(detector.edgeCount(), 2);
  // Still waiting on hash 20, so 2 → 1 is a deadlock.
  assert.ok(detector.detect(edge(2n, 1n)));
  detector.cleanUpWaitFor({ txnTs: 1n, lockTs: 2n, keyHash: 20n });
  assert.equal(detector.edgeCount(), 1);
  assert.equal(detector.detect(edge(2n, 1n)), undefined);
  // Unknown edges are ignored.
  detector.cleanUpWaitFor({ txnTs: 9n, lockTs: 2n, keyHash: 1n });
  detector.cleanUp(1n);
  assert.deepEqual(pairs(detector.entries()), ["2->1"]);
  detector.clear();
  assert.equal(detector.edgeCount(), 0);
});

Deno.test("a transaction waiting for itself is a bug", () => {
  assert.throws(() => new DeadlockDetector().detect(edge(1n, 1n)), /its own lock/);
});

/** The dumb model: is `to` reachable from `from` over `edges`? */
function reachable(edges: ReadonlySet<string>, from: bigint, to: bigint): boolean {
  const seen = new Set<bigint>([from]);
  const stack = [from];
  while (stack.length > 0) {
    const current = stack.pop()!;
    if (current === to) return true;
    for (const text of edges) {
      const [a, b] = text.split("->").map(BigInt);
      if (a === current && !seen.has(b!)) {
        seen.add(b!);
        stack.push(b!);
      }
    }
  }
  return false;
}

Deno.test("random graphs: detect() agrees with a brute-force cycle check (seeds 1..30)", () => {
  for (let seed = 1; seed <= 30; seed++) {
    const random = new SeededRandom(seed);
    const detector = new DeadlockDetector({ edgeTtlMs: 1_000_000 });
    const model = new Set<string>();
    for (let step = 0; step < 200; step++) {
      const a = BigInt(1 + random.int(8));
      const b = BigInt(1 + random.int(8));
      if (a === b) continue;
      if (random.chance(0.2)) {
        detector.cleanUp(a);
        for (const text of [...model]) if (text.startsWith(`${a}->`)) model.delete(text);
        continue;
      }
      const result = detector.detect(edge(a, b, { hash: 1n }));
      const expectDeadlock = !model.has(`${a}->${b}`) && reachable(model, b, a);
      assert.equal(result !== undefined, expectDeadlock, `seed ${seed} step ${step}: ${a}->${b}`);
      if (result === undefined) {
        model.add(`${a}->${b}`);
        continue;
      }
      // The chain is a real cycle made of recorded edges plus the new one.
      const chain = result.waitChain;
      assert.equal(chain[0]!.txn, b);
      assert.deepEqual(pairs(chain.slice(-1)), [`${a}->${b}`]);
      for (const entry of chain.slice(0, -1)) {
        assert.ok(model.has(`${entry.txn}->${entry.waitForTxn}`), `seed ${seed}`);
      }
      for (let i = 0; i < chain.length; i++) {
        assert.equal(chain[i]!.waitForTxn, chain[(i + 1) % chain.length]!.txn);
      }
    }
    assert.equal(detector.edgeCount(), model.size, `seed ${seed}`);
  }
});
