import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { kvrpcpb } from "../../../proto/mod.ts";
import { newLock } from "../../txn_types/lock.ts";
import { composeTs } from "../../txn_types/timestamp.ts";
import { utf8 } from "../../util/bytes.ts";
import { isLockExpired, txnStatusToResponse } from "./check_txn_status.ts";
import type { TxnStatus } from "./common.ts";
import { key } from "./test_support.ts";

const lock = newLock({
  lockType: "Put",
  primary: utf8("p"),
  startTs: composeTs(100n, 5n),
  ttlMs: 50n,
  minCommitTs: composeTs(120n, 0n),
});

Deno.test("isLockExpired() compares physical ms only: expired strictly after start + TTL", () => {
  assertEquals(isLockExpired(lock, composeTs(150n, 0n)), false);
  assertEquals(isLockExpired(lock, composeTs(150n, 262_143n)), false, "logical part ignored");
  assertEquals(isLockExpired(lock, composeTs(151n, 0n)), true);
});

Deno.test("txnStatusToResponse() answers as TiKV: locked ⇔ lock_ttl > 0, committed ⇔ commit_version > 0", () => {
  const cases: [TxnStatus, [bigint, bigint, kvrpcpb.Action, boolean]][] = [
    [{ kind: "Uncommitted", lock, minCommitTsPushed: false }, [
      50n,
      0n,
      kvrpcpb.Action.NoAction,
      true,
    ]],
    [{ kind: "Uncommitted", lock, minCommitTsPushed: true }, [
      50n,
      0n,
      kvrpcpb.Action.MinCommitTSPushed,
      true,
    ]],
    [{ kind: "Committed", commitTs: 77n }, [0n, 77n, kvrpcpb.Action.NoAction, false]],
    [{ kind: "RolledBack" }, [0n, 0n, kvrpcpb.Action.NoAction, false]],
    [{ kind: "TtlExpire" }, [0n, 0n, kvrpcpb.Action.TTLExpireRollback, false]],
    [{ kind: "LockNotExist" }, [0n, 0n, kvrpcpb.Action.LockNotExistRollback, false]],
    [{ kind: "PessimisticRollBack" }, [
      0n,
      0n,
      kvrpcpb.Action.TTLExpirePessimisticRollback,
      false,
    ]],
    [{ kind: "LockNotExistDoNothing" }, [0n, 0n, kvrpcpb.Action.LockNotExistDoNothing, false]],
  ];
  for (const [status, [lockTtl, commitVersion, action, hasLockInfo]] of cases) {
    const response = txnStatusToResponse(status, key("p"));
    assertEquals(
      [response.lockTtl, response.commitVersion, response.action, response.lockInfo !== null],
      [lockTtl, commitVersion, action, hasLockInfo],
      status.kind,
    );
  }
  const locked = txnStatusToResponse(
    { kind: "Uncommitted", lock, minCommitTsPushed: true },
    key("p"),
  );
  assertEquals(locked.lockInfo?.key, utf8("p"));
  assertEquals(locked.lockInfo?.minCommitTs, composeTs(120n, 0n));
  // The fields encode into a real response message.
  const bytes = kvrpcpb.CheckTxnStatusResponse.encode(locked).finish();
  assertEquals(
    kvrpcpb.CheckTxnStatusResponse.decode(bytes).action,
    kvrpcpb.Action.MinCommitTSPushed,
  );
});
