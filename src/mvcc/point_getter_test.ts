import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { kvrpcpb } from "../../proto/mod.ts";
import { fromUtf8, utf8 } from "../util/bytes.ts";
import { TS_MAX } from "../txn_types/timestamp.ts";
import { describeMvccError, mvccErrorToKeyError, type MvccResult } from "./errors.ts";
import { isolationLevelFromProto } from "./lock_conflict.ts";
import { PointGetter, type PointGetterOptions } from "./point_getter.ts";
import { key, MvccFixture } from "./test_support.ts";

function get(
  fx: MvccFixture,
  rawKey: string,
  options: PointGetterOptions,
): MvccResult<string | null> {
  using snapshot = fx.snapshot();
  using getter = new PointGetter(snapshot, options);
  const result = getter.get(key(rawKey));
  return result.ok
    ? { ok: true, value: result.value === null ? null : fromUtf8(result.value) }
    : result;
}

function lockedBy(result: MvccResult<unknown>): bigint | null {
  return !result.ok && result.error.kind === "KeyIsLocked"
    ? result.error.lockInfo.lockVersion ?? 0n
    : null;
}

Deno.test("PointGetter SI: a Put lock at or below the read ts blocks; one above it does not", () => {
  const fx = new MvccFixture();
  fx.commitPut("k", "v1", { startTs: 1n, commitTs: 2n });
  fx.putLock("k", { lockType: "Put", startTs: 10n, ttlMs: 100n, shortValue: utf8("v2") });
  assertEquals(lockedBy(get(fx, "k", { readTs: 10n })), 10n);
  assertEquals(lockedBy(get(fx, "k", { readTs: 20n })), 10n);
  assertEquals(get(fx, "k", { readTs: 9n }), { ok: true, value: "v1" });
  const result = get(fx, "k", { readTs: 20n });
  assert(!result.ok);
  assertEquals(
    describeMvccError(result.error),
    'Key "k" is locked by txn 10 (primary "k", ttl 100ms)',
  );
  const keyError = kvrpcpb.KeyError.decode(
    kvrpcpb.KeyError.encode(mvccErrorToKeyError(result.error)).finish(),
  );
  assertEquals(keyError.locked?.lockVersion, 10n);
  assertEquals(keyError.locked?.lockTtl, 100n);
});

Deno.test("PointGetter SI: Lock and pessimistic locks never block a read (Percolator: they change no value)", () => {
  const fx = new MvccFixture();
  fx.commitPut("a", "va", { startTs: 1n, commitTs: 2n });
  fx.commitPut("b", "vb", { startTs: 1n, commitTs: 2n });
  fx.putLock("a", { lockType: "Lock", startTs: 5n });
  fx.putLock("b", { lockType: "Pessimistic", startTs: 5n, forUpdateTs: 6n });
  assertEquals(get(fx, "a", { readTs: 10n }), { ok: true, value: "va" });
  assertEquals(get(fx, "b", { readTs: 10n }), { ok: true, value: "vb" });
});

Deno.test("PointGetter SI: min_commit_ts above the read ts lets the read through (async commit)", () => {
  const fx = new MvccFixture();
  fx.putLock("k", { lockType: "Put", startTs: 5n, minCommitTs: 12n, useAsyncCommit: true });
  assertEquals(get(fx, "k", { readTs: 11n }), { ok: true, value: null });
  assertEquals(lockedBy(get(fx, "k", { readTs: 12n })), 5n);
});

Deno.test("PointGetter SI: resolved locks are bypassed, committed locks are read through", () => {
  const fx = new MvccFixture();
  fx.commitPut("k", "old", { startTs: 1n, commitTs: 2n });
  fx.putLock("k", { lockType: "Put", startTs: 5n, shortValue: utf8("new") });
  const long = "x".repeat(300);
  fx.putLock("big", { lockType: "Put", startTs: 5n });
  fx.engine.put("default", key("big").appendTs(5n), utf8(long));
  fx.putLock("gone", { lockType: "Delete", startTs: 5n });
  fx.commitPut("gone", "was", { startTs: 1n, commitTs: 2n });
  assertEquals(get(fx, "k", { readTs: 10n, bypassLocks: new Set([5n]) }), {
    ok: true,
    value: "old",
  });
  assertEquals(get(fx, "k", { readTs: 10n, accessLocks: new Set([5n]) }), {
    ok: true,
    value: "new",
  });
  assertEquals(get(fx, "big", { readTs: 10n, accessLocks: new Set([5n]) }), {
    ok: true,
    value: long,
  });
  assertEquals(get(fx, "gone", { readTs: 10n, accessLocks: new Set([5n]) }), {
    ok: true,
    value: null,
  });
  assertEquals(lockedBy(get(fx, "k", { readTs: 10n, bypassLocks: new Set([6n]) })), 5n);
});

Deno.test("PointGetter SI: a read at TS_MAX ignores the primary lock of a 2PC txn, not of async commit", () => {
  const fx = new MvccFixture();
  fx.commitPut("p", "committed", { startTs: 1n, commitTs: 2n });
  fx.putLock("p", { lockType: "Put", startTs: 5n, primary: "p" });
  fx.putLock("s", { lockType: "Put", startTs: 5n, primary: "p" });
  fx.putLock("ap", { lockType: "Put", startTs: 5n, primary: "ap", useAsyncCommit: true });
  assertEquals(get(fx, "p", { readTs: TS_MAX }), { ok: true, value: "committed" });
  assertEquals(lockedBy(get(fx, "s", { readTs: TS_MAX })), 5n);
  assertEquals(lockedBy(get(fx, "ap", { readTs: TS_MAX })), 5n);
});

Deno.test("PointGetter RC ignores locks; RCCheckTS turns locks and newer commits into write conflicts", () => {
  const fx = new MvccFixture();
  fx.commitPut("k", "v1", { startTs: 1n, commitTs: 2n });
  fx.putLock("k", { lockType: "Put", startTs: 5n, shortValue: utf8("v2") });
  fx.commitPut("n", "v1", { startTs: 1n, commitTs: 2n });
  fx.commitPut("n", "v2", { startTs: 8n, commitTs: 9n });
  assertEquals(get(fx, "k", { readTs: 10n, isolationLevel: "RC" }), { ok: true, value: "v1" });
  const locked = get(fx, "k", { readTs: 3n, isolationLevel: "RCCheckTS" });
  assert(
    !locked.ok && locked.error.kind === "WriteConflict" && locked.error.reason === "RcCheckTs",
  );
  const newer = get(fx, "n", { readTs: 5n, isolationLevel: "RCCheckTS" });
  assert(!newer.ok && newer.error.kind === "WriteConflict");
  assertEquals(newer.error.conflictCommitTs, 9n);
  assertEquals(get(fx, "n", { readTs: 5n, isolationLevel: "SI" }), { ok: true, value: "v1" });
});

Deno.test("PointGetter.getEntry reports the commit ts of the version read", () => {
  const fx = new MvccFixture();
  fx.commitPut("k", "v1", { startTs: 1n, commitTs: 2n });
  fx.putWrite("k", 4n, { writeType: "Lock", startTs: 3n });
  using snapshot = fx.snapshot();
  using getter = new PointGetter(snapshot, { readTs: 10n });
  const entry = getter.getEntry(key("k"));
  assert(entry.ok && entry.value !== null);
  assertEquals(entry.value.commitTs, 2n);
});

Deno.test("isolationLevelFromProto maps kvproto's enum", () => {
  assertEquals(isolationLevelFromProto(kvrpcpb.IsolationLevel.SI), "SI");
  assertEquals(isolationLevelFromProto(kvrpcpb.IsolationLevel.RC), "RC");
  assertEquals(isolationLevelFromProto(kvrpcpb.IsolationLevel.RCCheckTS), "RCCheckTS");
  assertEquals(isolationLevelFromProto(undefined), "SI");
});
