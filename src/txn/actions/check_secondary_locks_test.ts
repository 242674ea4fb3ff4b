/**
 * Async-commit recovery end to end (TiKV async commit design, "recovery"): a client finds an
 * async-commit primary lock whose TTL has expired, asks the secondaries, and commits or rolls
 * back the whole transaction from what they say.
 */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { MvccTxn } from "../../mvcc/txn.ts";
import { utf8 } from "../../util/bytes.ts";
import { composeTs, type TimeStamp } from "../../txn_types/timestamp.ts";
import { checkSecondaryLocks, secondaryLocksStatusToResponse } from "./check_secondary_locks.ts";
import { checkTxnStatus } from "./check_txn_status.ts";
import { resolveLock } from "./resolve_lock.ts";
import { key, kindOf, MvccFixture, prewriteKey, read, run } from "./test_support.ts";

const ts = (physicalMs: number) => composeTs(BigInt(physicalMs), 0n);

/** Prewrites an async-commit transaction; `skip` keys are left out (their prewrite was lost). */
function prewriteAsync(
  fx: MvccFixture,
  options: { startTs: TimeStamp; primary: string; secondaries: string[]; skip?: string[] },
): void {
  const { startTs, primary, secondaries } = options;
  assert(
    prewriteKey(fx, primary, {
      value: `${primary}-value`,
      startTs,
      ttlMs: 100n,
      secondaries,
      maxTs: startTs + 5n,
    }).result.ok,
  );
  secondaries.forEach((k, i) => {
    if (options.skip?.includes(k)) return;
    assert(
      prewriteKey(fx, k, {
        value: `${k}-value`,
        primary,
        startTs,
        ttlMs: 100n,
        secondaries: [],
        maxTs: startTs + 10n + BigInt(i),
      }).result.ok,
    );
  });
}

/** The recovering client: primary status, then secondaries, then resolve everything. */
function recover(fx: MvccFixture, startTs: TimeStamp, currentTs: TimeStamp): TimeStamp {
  const status = run(fx, startTs, (txn, reader) =>
    checkTxnStatus(txn, reader, {
      primaryKey: key("p"),
      callerStartTs: currentTs,
      currentTs,
      rollbackIfNotExist: true,
      forceSyncCommit: false,
      resolvingPessimisticLock: false,
      verifyIsPrimary: true,
    })).result;
  assert(status.ok && status.value.status.kind === "Uncommitted");
  const primaryLock = status.value.status.lock;
  // An expired async-commit lock is not rolled back by CheckTxnStatus.
  assert(primaryLock.useAsyncCommit);
  assertEquals(fx.lock("p")?.startTs, startTs);

  const secondaries = primaryLock.secondaries.map((raw) => key(new TextDecoder().decode(raw)));
  const checked = run(
    fx,
    startTs,
    (txn, reader) => checkSecondaryLocks(txn, reader, { keys: secondaries }),
  );
  assert(checked.result.ok);
  assertEquals(checked.txn.observedReadTs, startTs, "the check is a read at start ts");
  const answer = checked.result.value.status;
  let commitTs = 0n;
  if (answer.kind === "Locked") {
    // Every key prewritten: committed at the largest min_commit_ts of all its locks.
    commitTs = answer.locks.reduce(
      (max, info) => (info.minCommitTs! > max ? info.minCommitTs! : max),
      primaryLock.minCommitTs,
    );
  } else if (answer.kind === "Committed") {
    commitTs = answer.commitTs;
  }
  for (const k of [key("p"), ...secondaries]) {
    const resolved = run(
      fx,
      startTs,
      (txn, reader) => resolveLock(txn, reader, { key: k, commitTs }),
    );
    assert(resolved.result.ok, `resolve ${k}: ${kindOf(resolved.result)}`);
  }
  return commitTs;
}

Deno.test("async commit recovery: all secondaries locked → committed at the max min_commit_ts", () => {
  const fx = new MvccFixture();
  const startTs = ts(10);
  prewriteAsync(fx, { startTs, primary: "p", secondaries: ["s1", "s2"] });
  const commitTs = recover(fx, startTs, ts(500));
  assertEquals(commitTs, startTs + 11n + 1n, "s2's min_commit_ts (max_ts + 1) is the largest");
  for (const k of ["p", "s1", "s2"]) {
    assertEquals(fx.lock(k), null);
    assertEquals(read(fx, k, { readTs: commitTs }), `${k}-value`);
    assertEquals(read(fx, k, { readTs: commitTs - 1n }), null);
  }
});

Deno.test("async commit recovery: a missing secondary → protected rollback there, whole txn rolled back", () => {
  const fx = new MvccFixture();
  const startTs = ts(10);
  prewriteAsync(fx, { startTs, primary: "p", secondaries: ["s1", "s2"], skip: ["s2"] });
  assertEquals(recover(fx, startTs, ts(500)), 0n);
  for (const k of ["p", "s1", "s2"]) {
    assertEquals(fx.lock(k), null);
    assertEquals(read(fx, k, { readTs: ts(600) }), null);
  }
  // The lost prewrite arrives at last: refused by the protected rollback.
  const late = prewriteKey(fx, "s2", {
    value: "late",
    primary: "p",
    startTs,
    secondaries: [],
    maxTs: startTs,
  }).result;
  assertEquals(kindOf(late), "WriteConflict");
  assertEquals(fx.writes("s2")[0]?.write.shortValue, utf8("p"), "protected rollback record");
});

Deno.test("async commit recovery is idempotent: a second recovery sees Committed", () => {
  const fx = new MvccFixture();
  const startTs = ts(10);
  prewriteAsync(fx, { startTs, primary: "p", secondaries: ["s1"] });
  const commitTs = recover(fx, startTs, ts(500));
  const again = run(
    fx,
    startTs,
    (txn, reader) => checkSecondaryLocks(txn, reader, { keys: [key("s1")] }),
  );
  assert(again.result.ok);
  assertEquals(again.result.value.status, { kind: "Committed", commitTs });
  assert(again.txn.isEmpty(), "nothing written");
  assertEquals(secondaryLocksStatusToResponse(again.result.value.status), {
    locks: [],
    commitTs,
  });
});

Deno.test("checkSecondaryLocks() stops at the first decided key, writing only its rollback", () => {
  const fx = new MvccFixture();
  const startTs = ts(10);
  prewriteAsync(fx, { startTs, primary: "p", secondaries: ["s1", "s2", "s3"], skip: ["s2"] });
  const txn = new MvccTxn(startTs);
  const result = fx.read((reader) =>
    checkSecondaryLocks(txn, reader, { keys: [key("s1"), key("s2"), key("s3")] })
  );
  assertEquals(result.ok && result.value.status, { kind: "RolledBack" });
  // Only s2 got a rollback; s3 was not looked at.
  const written = txn.modifications.map((m) => `${m.cf}:${m.type}`);
  assertEquals(written, ["write:put"]);
  assertEquals(
    secondaryLocksStatusToResponse({ kind: "Locked", locks: [{ key: utf8("s1") }] }).locks.length,
    1,
  );
});
