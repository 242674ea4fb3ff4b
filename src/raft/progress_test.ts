import assert, { deepEqual as assertEquals } from "node:assert/strict";
import { Inflights, Progress, ProgressState } from "./progress.ts";

Deno.test("inflights: the window fills at capacity and frees acknowledged messages in order", () => {
  const w = new Inflights(3);
  w.add(2n);
  w.add(5n);
  w.add(9n);
  assert(w.full());
  w.freeTo(5n);
  assertEquals(w.count, 1);
  w.add(12n);
  w.add(13n);
  assert(w.full());
  w.freeFirstOne();
  assertEquals(w.count, 2);
});

Deno.test("inflights: adding an index not after the last is an invariant violation", () => {
  const w = new Inflights(2);
  w.add(5n);
  assert.throws(() => w.add(5n), /not after/);
});

Deno.test("progress: a stale rejection in Replicate (below match) is ignored", () => {
  const p = new Progress({ next: 10n, maxInflightMsgs: 4, isLearner: false });
  p.maybeUpdate(8n);
  p.becomeReplicate();
  assertEquals(p.maybeDecreaseTo({ rejected: 7n, matchHint: 0n }), false);
  assertEquals(p.maybeDecreaseTo({ rejected: 9n, matchHint: 0n }), true);
  assertEquals(p.next, 9n);
});

Deno.test("progress: in Probe, only the answer to the last probe moves next back, using the hint", () => {
  const p = new Progress({ next: 10n, maxInflightMsgs: 4, isLearner: false });
  assertEquals(p.state, ProgressState.Probe);
  assertEquals(p.maybeDecreaseTo({ rejected: 5n, matchHint: 2n }), false); // Not our last probe (that was at 9).
  assertEquals(p.maybeDecreaseTo({ rejected: 9n, matchHint: 3n }), true);
  assertEquals(p.next, 4n);
});

Deno.test("progress: Probe pauses after one message; Replicate pauses when the window is full", () => {
  const p = new Progress({ next: 1n, maxInflightMsgs: 1, isLearner: false });
  p.probeSent = true;
  assert(p.isPaused());
  p.maybeUpdate(1n);
  assert(!p.isPaused());
  p.becomeReplicate();
  p.inflights.add(3n);
  assert(p.isPaused());
});
