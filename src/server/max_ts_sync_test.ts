/**
 * TiKV's max-ts sync as `MaxTsSync` keeps it: a leader here takes async-commit and 1PC
 * prewrites only once max_ts was raised to a PD timestamp asked for after it became leader, and
 * again after a merge grew its range in the same term (TiKV's `on_ready_commit_merge` →
 * `require_updating_max_ts`); an answer asked for before the merge does not sync the merged
 * region. (Found by the cluster simulator's bank, seed 67: a 1PC commit ts below a read the
 * merge source's leader had served on another store — a lost update.)
 */
import assert from "node:assert/strict";
import { utf8 } from "../util/bytes.ts";
import { MaxTsSync, rangeGrew } from "./max_ts_sync.ts";

const INF = new Uint8Array(0);

function view(
  range: [string, string],
  options: { leading?: boolean; term?: bigint } = {},
) {
  return {
    leading: options.leading ?? true,
    term: options.term ?? 5n,
    startKey: range[0] === "" ? INF : utf8(range[0]),
    endKey: range[1] === "" ? INF : utf8(range[1]),
  };
}

Deno.test("a new leader is unsynced until the timestamp asked for its term arrives; an answer for an older term changes nothing", () => {
  const sync = new MaxTsSync();
  assert.equal(sync.observe(1n, view(["a", "m"], { leading: false, term: 4n })), false);
  assert.equal(sync.synced(1n), true, "a follower takes no prewrite anyway: nothing owed");
  assert.equal(sync.observe(1n, view(["a", "m"])), true, "led anew: a timestamp is owed");
  assert.equal(sync.synced(1n), false);
  sync.fetched(1n, 4n);
  assert.equal(sync.synced(1n), false);
  assert.equal(sync.observe(1n, view(["a", "m"])), false, "the same term: nothing more owed");
  sync.fetched(1n, 5n);
  assert.equal(sync.synced(1n), true);
});

Deno.test("a leader whose range grew by a merge in the same term is unsynced until a timestamp asked after the merge arrives (TiKV's on_ready_commit_merge)", () => {
  const sync = new MaxTsSync();
  assert.equal(sync.observe(1n, view(["a", "m"])), true);
  sync.fetched(1n, 5n);
  assert.equal(sync.synced(1n), true);
  assert.equal(sync.observe(1n, view(["a", ""])), true, "the source [m, +inf) merged in");
  assert.equal(sync.synced(1n), false, "reads of [m, +inf) were served by the source's leader");
  sync.fetched(1n, 5n);
  assert.equal(sync.synced(1n), true);
  assert.equal(sync.observe(1n, view(["", ""])), true, "a left neighbour merged in");
  assert.equal(sync.synced(1n), false);
});

Deno.test("an answer to a timestamp asked before a merge does not sync the merged region: every ask of the term must be answered", () => {
  const sync = new MaxTsSync();
  assert.equal(sync.observe(1n, view(["a", "m"])), true); // asked at T0, in flight
  assert.equal(sync.observe(1n, view(["a", "x"])), true); // the merge: asked again at T1
  sync.fetched(1n, 5n); // T0's answer may be below a read the source served after T0
  assert.equal(sync.synced(1n), false);
  sync.fetched(1n, 5n);
  assert.equal(sync.synced(1n), true);
});

Deno.test("a split, a conf change or a version bump without a wider range owes nothing; losing leadership or the region forgets what was owed", () => {
  const sync = new MaxTsSync();
  sync.observe(1n, view(["a", "m"]));
  sync.fetched(1n, 5n);
  assert.equal(sync.observe(1n, view(["a", "g"])), false, "a split only shrinks the range");
  assert.equal(sync.observe(1n, view(["c", "g"])), false);
  assert.equal(sync.synced(1n), true);
  assert.equal(sync.observe(2n, view(["g", "m"])), true, "the region a split made is led anew");
  sync.observe(2n, view(["g", "m"], { leading: false }));
  assert.equal(sync.synced(2n), true, "a follower owes nothing");
  sync.observe(3n, view(["m", "x"]));
  sync.forget(3n);
  assert.equal(sync.synced(3n), true);
  sync.fetched(3n, 5n); // a late answer for a region gone is ignored
  assert.equal(sync.observe(3n, view(["m", "x"])), true, "served again: led anew here");
});

Deno.test("rangeGrew: wider at either end, with an empty key as the infinite end", () => {
  const r = (s: string, e: string) => ({ startKey: utf8(s), endKey: utf8(e) });
  assert.equal(rangeGrew(r("b", "m"), r("a", "m")), true);
  assert.equal(rangeGrew(r("b", "m"), r("b", "n")), true);
  assert.equal(rangeGrew(r("b", "m"), r("", "m")), true, "to −∞");
  assert.equal(rangeGrew(r("b", "m"), r("b", "")), true, "to +∞");
  assert.equal(rangeGrew(r("", ""), r("", "")), false);
  assert.equal(rangeGrew(r("b", "m"), r("c", "l")), false);
  assert.equal(rangeGrew(r("", "m"), r("", "k")), false);
});
