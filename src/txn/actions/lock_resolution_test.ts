/**
 * Datadriven tests of the lock-resolution and pessimistic actions (check_txn_status,
 * check_secondary_locks, txn_heart_beat, resolve_lock, scan_lock, acquire_pessimistic_lock,
 * pessimistic_rollback, gc), one file per action in `testdata/`, modelled on TiKV's action
 * tests. `REWRITE=1 deno test -A src/txn/actions/lock_resolution_test.ts` regenerates the
 * expected outputs; review the diff.
 *
 * Timestamps are written `physical` or `physical.logical` (TSO parts, physical in ms), `max`
 * for u64::MAX, `0` for zero. Commands:
 *
 *     put k= v= start= commit=                         a committed Put laid down directly
 *     del k= start= commit=                            a committed Delete laid down directly
 *     lock_record k= start= [type=Put|Delete|Lock|Pessimistic] [primary=] [ttl=] [for_update=]
 *                 [min_commit=] [async] [secondaries=(..)] [conflict]   a lock laid down directly
 *     prewrite k= start= [v=] [primary=] [ttl=] [for_update=] [min_commit=] [max_ts=]
 *              [secondaries=(..)]                      B1's prewrite (no v: Delete)
 *     commit k= start= commit=
 *     rollback k= start=
 *     check_txn_status k= lock= [caller=] [current=] [rollback_if_not_exist]
 *                      [force_sync_commit] [resolving_pessimistic] [verify_primary]
 *     check_secondary_locks k=(..) start=
 *     heartbeat k= start= ttl= [min_commit=]
 *     resolve k=(..) start= commit=
 *     resolve_batch txns=(start:commit,..) [max_bytes=]  scan + write phase over every key
 *     scan_lock max_version= [from=] [to=] [limit=]
 *     pessimistic_lock k=(..) start= for_update= [primary=] [ttl=] [min_commit=]
 *                      [return_values] [check_existence] [lock_only_if_exists]
 *                      [insert] [allow_conflict]
 *     pessimistic_rollback k=(..) start= for_update=
 *     gc k= safe_point= [max_bytes=]
 *     state k=                                         the key's lock, writes and values
 *
 * @module
 */

import { runDataDriven, type TestCase } from "../../raft/datadriven.ts";
import type { MvccError, MvccResult } from "../../mvcc/errors.ts";
import { MvccReader } from "../../mvcc/reader.ts";
import type { ReleasedLock } from "../../mvcc/txn.ts";
import { fromUtf8, utf8 } from "../../util/bytes.ts";
import type { Key } from "../../txn_types/key.ts";
import type { Lock, LockType } from "../../txn_types/lock.ts";
import {
  composeTs,
  logicalOf,
  physicalMs,
  type TimeStamp,
  TS_MAX,
} from "../../txn_types/timestamp.ts";
import { isProtectedRollback, type Write } from "../../txn_types/write.ts";
import { acquirePessimisticLocks } from "./acquire_pessimistic_lock.ts";
import { checkSecondaryLocks } from "./check_secondary_locks.ts";
import { checkTxnStatus, txnStatusToResponse } from "./check_txn_status.ts";
import { commit } from "./commit.ts";
import { gc } from "./gc.ts";
import { pessimisticRollback } from "./pessimistic_rollback.ts";
import { resolveLock, resolveLockBatch, scanLocksToResolve } from "./resolve_lock.ts";
import { rollback } from "./rollback.ts";
import { scanLock } from "./scan_lock.ts";
import { key, MvccFixture, prewriteKey, run } from "./test_support.ts";
import { txnHeartBeat } from "./txn_heart_beat.ts";
import { kvrpcpb } from "../../../proto/mod.ts";

const FILES = [
  "check_txn_status.txt",
  "check_txn_status_pessimistic.txt",
  "check_secondary_locks.txt",
  "txn_heart_beat.txt",
  "resolve_lock.txt",
  "scan_lock.txt",
  "acquire_pessimistic_lock.txt",
  "pessimistic_rollback.txt",
  "gc.txt",
];

/** `5` → compose(5, 0); `5.3` → compose(5, 3); `max`; `0`. */
function parseTs(text: string): TimeStamp {
  if (text === "max") return TS_MAX;
  if (text === "0") return 0n;
  const [physical, logical = "0"] = text.split(".");
  return composeTs(BigInt(physical!), BigInt(logical));
}

/** The inverse of `parseTs`. */
function ts(value: TimeStamp | null | undefined): string {
  if (value === null || value === undefined) return "none";
  if (value === TS_MAX) return "max";
  if (value === 0n) return "0";
  const logical = logicalOf(value);
  return logical === 0n ? `${physicalMs(value)}` : `${physicalMs(value)}.${logical}`;
}

class Args {
  constructor(readonly testCase: TestCase) {}

  has(name: string): boolean {
    return this.testCase.args.some((arg) => arg.key === name);
  }

  list(name: string): string[] {
    const arg = this.testCase.args.find((a) => a.key === name);
    if (arg === undefined) throw new Error(`line ${this.testCase.line}: missing ${name}=`);
    return arg.values;
  }

  str(name: string, fallback?: string): string {
    if (!this.has(name)) {
      if (fallback !== undefined) return fallback;
      throw new Error(`line ${this.testCase.line}: missing ${name}=`);
    }
    return this.list(name)[0] ?? "";
  }

  ts(name: string, fallback?: TimeStamp): TimeStamp {
    if (!this.has(name) && fallback !== undefined) return fallback;
    return parseTs(this.str(name));
  }

  int(name: string, fallback?: bigint): bigint {
    if (!this.has(name) && fallback !== undefined) return fallback;
    return BigInt(this.str(name));
  }

  keys(): Key[] {
    return this.list("k").map(key);
  }
}

function describeError(error: MvccError): string {
  switch (error.kind) {
    case "KeyIsLocked":
      return `KeyIsLocked key=${fromUtf8(error.lockInfo.key ?? new Uint8Array())} lock=${
        ts(error.lockInfo.lockVersion)
      } primary=${fromUtf8(error.lockInfo.primaryLock ?? new Uint8Array())}`;
    case "WriteConflict":
      return `WriteConflict conflict_start=${ts(error.conflictStartTs)} conflict_commit=${
        ts(error.conflictCommitTs)
      } reason=${error.reason}`;
    case "AlreadyExist":
      return `AlreadyExist key=${fromUtf8(error.key)} existing_start=${ts(error.existingStartTs)}`;
    case "TxnNotFound":
      return `TxnNotFound start=${ts(error.startTs)} key=${fromUtf8(error.key)}`;
    case "PrimaryMismatch":
      return `PrimaryMismatch primary=${fromUtf8(error.lockInfo.primaryLock ?? new Uint8Array())}`;
    case "Committed":
      return `Committed commit=${ts(error.commitTs)}`;
    case "InvalidRequest":
      return `InvalidRequest`;
    default:
      return error.kind;
  }
}

function describeLock(lock: Lock): string {
  const parts = [`${lock.lockType} start=${ts(lock.startTs)} ttl=${lock.ttlMs}`];
  parts.push(`primary=${fromUtf8(lock.primary)}`);
  if (lock.forUpdateTs !== 0n) parts.push(`for_update=${ts(lock.forUpdateTs)}`);
  if (lock.minCommitTs !== 0n) parts.push(`min_commit=${ts(lock.minCommitTs)}`);
  if (lock.shortValue !== null) parts.push(`value=${fromUtf8(lock.shortValue)}`);
  if (lock.useAsyncCommit) {
    parts.push(`async(${lock.secondaries.map((s) => fromUtf8(s)).join(",")})`);
  }
  if (lock.rollbackTs.length > 0) parts.push(`rollback_ts=(${lock.rollbackTs.map(ts).join(",")})`);
  if (lock.isLockedWithConflict) parts.push("with_conflict");
  return parts.join(" ");
}

function describeWrite(write: Write): string {
  const parts = [`${write.writeType} start=${ts(write.startTs)}`];
  if (write.writeType === "Put" && write.shortValue !== null) {
    parts.push(`value=${fromUtf8(write.shortValue)}`);
  }
  if (isProtectedRollback(write)) parts.push("protected");
  if (write.hasOverlappedRollback) parts.push("overlapped_rollback");
  if (write.gcFence !== null) parts.push(`gc_fence=${ts(write.gcFence)}`);
  return parts.join(" ");
}

function describeReleased(released: readonly ReleasedLock[]): string[] {
  return released.map((r) =>
    `released: ${fromUtf8(r.key.toRaw())}@${ts(r.startTs)}` +
    (r.commitTs !== 0n ? ` commit=${ts(r.commitTs)}` : "") + (r.pessimistic ? " pessimistic" : "")
  );
}

/** "ok" plus `lines`, or the error. */
function outcome<T>(result: MvccResult<T>, lines: (value: T) => string[]): string {
  if (!result.ok) return `error: ${describeError(result.error)}`;
  return ["ok", ...lines(result.value)].join("\n");
}

class Handler {
  readonly fx = new MvccFixture();

  handle(c: TestCase): string {
    const args = new Args(c);
    switch (c.command) {
      case "put":
        this.fx.commitPut(args.str("k"), args.str("v"), {
          startTs: args.ts("start"),
          commitTs: args.ts("commit"),
        });
        return "ok";
      case "del":
        this.fx.commitDelete(args.str("k"), {
          startTs: args.ts("start"),
          commitTs: args.ts("commit"),
        });
        return "ok";
      case "lock_record":
        return this.lockRecord(args);
      case "prewrite":
        return this.prewrite(args);
      case "commit": {
        const commitTs = args.ts("commit");
        const k = key(args.str("k"));
        const result = run(
          this.fx,
          args.ts("start"),
          (txn, r) => commit(txn, r, { key: k, commitTs }),
        );
        return outcome(result.result, () => []);
      }
      case "rollback": {
        const k = key(args.str("k"));
        return outcome(
          run(this.fx, args.ts("start"), (txn, r) => rollback(txn, r, k)).result,
          () => [],
        );
      }
      case "check_txn_status":
        return this.checkTxnStatus(args);
      case "check_secondary_locks":
        return this.checkSecondaryLocks(args);
      case "heartbeat":
        return this.heartbeat(args);
      case "resolve":
        return this.resolve(args);
      case "resolve_batch":
        return this.resolveBatch(args);
      case "scan_lock":
        return this.scanLock(args);
      case "pessimistic_lock":
        return this.pessimisticLock(args);
      case "pessimistic_rollback": {
        const keys = args.keys();
        const forUpdateTs = args.ts("for_update");
        const { result } = run(
          this.fx,
          args.ts("start"),
          (txn, r) => pessimisticRollback(txn, r, { keys, forUpdateTs }),
        );
        return outcome(result, describeReleased);
      }
      case "gc":
        return this.gc(args);
      case "state":
        return this.state(args.str("k"));
      default:
        throw new Error(`line ${c.line}: unknown command ${c.command}`);
    }
  }

  lockRecord(args: Args): string {
    const secondaries = args.has("secondaries") ? args.list("secondaries").map(utf8) : [];
    this.fx.putLock(args.str("k"), {
      lockType: args.str("type", "Put") as LockType,
      startTs: args.ts("start"),
      primary: args.str("primary", args.str("k")),
      ttlMs: args.int("ttl", 3000n),
      forUpdateTs: args.ts("for_update", 0n),
      minCommitTs: args.ts("min_commit", 0n),
      useAsyncCommit: args.has("async"),
      secondaries,
      isLockedWithConflict: args.has("conflict"),
      shortValue: args.has("v") ? utf8(args.str("v")) : null,
    });
    return "ok";
  }

  prewrite(args: Args): string {
    const { result } = prewriteKey(this.fx, args.str("k"), {
      ...(args.has("v") ? { value: args.str("v") } : {}),
      startTs: args.ts("start"),
      primary: args.str("primary", args.str("k")),
      ttlMs: args.int("ttl", 3000n),
      ...(args.has("for_update") ? { forUpdateTs: args.ts("for_update") } : {}),
      minCommitTs: args.ts("min_commit", 0n),
      maxTs: args.ts("max_ts", 0n),
      ...(args.has("secondaries") ? { secondaries: args.list("secondaries") } : {}),
    });
    return outcome(result, () => []);
  }

  checkTxnStatus(args: Args): string {
    const primaryKey = key(args.str("k"));
    const { result, txn } = run(
      this.fx,
      args.ts("lock"),
      (txn, reader) =>
        checkTxnStatus(txn, reader, {
          primaryKey,
          callerStartTs: args.ts("caller", 0n),
          currentTs: args.ts("current", 0n),
          rollbackIfNotExist: args.has("rollback_if_not_exist"),
          forceSyncCommit: args.has("force_sync_commit"),
          resolvingPessimisticLock: args.has("resolving_pessimistic"),
          verifyIsPrimary: args.has("verify_primary"),
        }),
    );
    return outcome(result, ({ status, released }) => {
      const response = txnStatusToResponse(status, primaryKey);
      const line = [`status: ${status.kind}`];
      if (status.kind === "Uncommitted") {
        line.push(`ttl=${status.lock.ttlMs} min_commit=${ts(status.lock.minCommitTs)}`);
        if (status.minCommitTsPushed) line.push("pushed");
      }
      if (status.kind === "Committed") line.push(`commit=${ts(status.commitTs)}`);
      return [
        line.join(" "),
        `action: ${kvrpcpb.Action[response.action]} lock_ttl=${response.lockTtl} commit_version=${
          ts(response.commitVersion)
        } max_ts>=${ts(txn.observedReadTs)}`,
        ...(released === null ? [] : describeReleased([released])),
      ];
    });
  }

  checkSecondaryLocks(args: Args): string {
    const keys = args.keys();
    const { result } = run(
      this.fx,
      args.ts("start"),
      (txn, reader) => checkSecondaryLocks(txn, reader, { keys }),
    );
    return outcome(result, ({ status, released }) => {
      const lines: string[] = [];
      switch (status.kind) {
        case "Locked":
          lines.push(`status: Locked`);
          for (const info of status.locks) {
            lines.push(
              `  ${fromUtf8(info.key ?? new Uint8Array())} lock=${ts(info.lockVersion)} ` +
                `min_commit=${ts(info.minCommitTs)}`,
            );
          }
          break;
        case "Committed":
          lines.push(`status: Committed commit=${ts(status.commitTs)}`);
          break;
        case "RolledBack":
          lines.push(`status: RolledBack`);
          break;
      }
      return [...lines, ...describeReleased(released)];
    });
  }

  heartbeat(args: Args): string {
    const primaryKey = key(args.str("k"));
    const { result } = run(this.fx, args.ts("start"), (txn, reader) =>
      txnHeartBeat(txn, reader, {
        primaryKey,
        adviseLockTtlMs: args.int("ttl"),
        minCommitTs: args.ts("min_commit", 0n),
      }));
    return outcome(result, (lock) => [`lock_ttl=${lock.ttlMs} min_commit=${ts(lock.minCommitTs)}`]);
  }

  resolve(args: Args): string {
    const commitTs = args.ts("commit");
    const lines: string[] = [];
    for (const k of args.keys()) {
      const { result } = run(
        this.fx,
        args.ts("start"),
        (txn, reader) => resolveLock(txn, reader, { key: k, commitTs }),
      );
      if (!result.ok) return `error: ${describeError(result.error)}`;
      if (result.value !== null) lines.push(...describeReleased([result.value]));
    }
    return ["ok", ...lines].join("\n");
  }

  resolveBatch(args: Args): string {
    const txnStatus = new Map<TimeStamp, TimeStamp>();
    for (const pair of args.list("txns")) {
      const [start, commitTs] = pair.split(":");
      txnStatus.set(parseTs(start!), parseTs(commitTs!));
    }
    const maxWriteBytes = args.has("max_bytes") ? Number(args.str("max_bytes")) : undefined;
    const lines: string[] = [];
    let startKey: Key | null = null;
    for (let round = 1; round <= 20; round++) {
      using snapshot = this.fx.snapshot();
      using reader = new MvccReader(snapshot);
      const scanned = scanLocksToResolve(reader, { txnStatus, startKey, endKey: null });
      if (scanned.locks.length === 0) break;
      const result = resolveLockBatch(reader, { locks: scanned.locks, txnStatus, maxWriteBytes });
      if (!result.ok) return `error: ${describeError(result.error)}`;
      for (const txn of result.value.txns) this.fx.write(txn);
      const resumeKey: Key | null = result.value.resumeKey;
      lines.push(
        `round ${round}: resolved ${result.value.released.length} known=(${
          result.value.knownTxnStatus.map(([s, c]) => `${ts(s)}:${ts(c)}`).join(",")
        }) resume=${resumeKey === null ? "none" : fromUtf8(resumeKey.toRaw())}`,
      );
      if (resumeKey === null && !scanned.hasRemain) break;
      startKey = resumeKey ?? scanned.locks[scanned.locks.length - 1]!.key;
    }
    return ["ok", ...lines].join("\n");
  }

  scanLock(args: Args): string {
    const result = this.fx.read((reader) =>
      scanLock(reader, {
        startKey: args.has("from") ? key(args.str("from")) : null,
        endKey: args.has("to") ? key(args.str("to")) : null,
        maxVersion: args.ts("max_version"),
        limit: Number(args.int("limit", 0n)),
      })
    );
    return [
      ...result.locks.map((info) =>
        `${fromUtf8(info.key ?? new Uint8Array())} lock=${ts(info.lockVersion)} primary=${
          fromUtf8(info.primaryLock ?? new Uint8Array())
        } type=${kvrpcpb.Op[info.lockType ?? 0]}`
      ),
      `has_remain=${result.hasRemain}`,
    ].join("\n");
  }

  pessimisticLock(args: Args): string {
    const keys = args.keys().map((k) => ({ key: k, shouldNotExist: args.has("insert") }));
    const { result, txn } = run(
      this.fx,
      args.ts("start"),
      (txn, reader) =>
        acquirePessimisticLocks(txn, reader, {
          keys,
          primary: utf8(args.str("primary", args.list("k")[0]!)),
          lockTtlMs: args.int("ttl", 3000n),
          forUpdateTs: args.ts("for_update"),
          needValue: args.has("return_values"),
          needCheckExistence: args.has("check_existence"),
          minCommitTs: args.ts("min_commit", 0n),
          lockOnlyIfExists: args.has("lock_only_if_exists"),
          allowLockWithConflict: args.has("allow_conflict"),
        }),
    );
    return outcome(result, (results) => [
      ...results.map((r, i) => {
        const name = args.list("k")[i];
        switch (r.kind) {
          case "Empty":
            return `${name}: locked`;
          case "Value":
            return `${name}: value=${r.value === null ? "none" : fromUtf8(r.value)}`;
          case "Existence":
            return `${name}: exists=${r.exists}`;
          case "LockedWithConflict":
            return `${name}: locked_with_conflict conflict=${ts(r.conflictTs)} value=${
              r.value === null ? "none" : fromUtf8(r.value)
            }`;
        }
      }),
      ...(txn.observedReadTs !== 0n ? [`max_ts>=${ts(txn.observedReadTs)}`] : []),
    ]);
  }

  gc(args: Args): string {
    const maxWriteBytes = args.has("max_bytes") ? Number(args.str("max_bytes")) : undefined;
    const { result } = run(
      this.fx,
      0n,
      (txn, reader) =>
        gc(txn, reader, {
          key: key(args.str("k")),
          safePoint: args.ts("safe_point"),
          maxWriteBytes,
        }),
    );
    return outcome(result, (info) => [
      `found=${info.foundVersions} deleted=${info.deletedVersions} completed=${info.isCompleted}`,
    ]);
  }

  state(rawKey: string): string {
    const lines: string[] = [];
    const lock = this.fx.lock(rawKey);
    lines.push(lock === null ? "lock: none" : `lock: ${describeLock(lock)}`);
    for (const { commitTs, write } of this.fx.writes(rawKey)) {
      lines.push(`write ${ts(commitTs)}: ${describeWrite(write)}`);
    }
    const values = this.fx.read((reader) => reader.scanValuesInDefault(key(rawKey)));
    for (const { startTs, value } of values) lines.push(`default ${ts(startTs)}: ${value.length}B`);
    return lines.join("\n");
  }
}

for (const file of FILES) {
  const url = new URL(`./testdata/${file}`, import.meta.url);
  const text = Deno.readTextFileSync(url);
  const title = text.split("\n")[0]!.replace(/^#\s*/, "");
  Deno.test(`${file}: ${title}`, () => {
    const handler = new Handler();
    const { failures, rewritten } = runDataDriven({
      name: file,
      text,
      handler: (c) => handler.handle(c),
    });
    if (Deno.env.get("REWRITE") === "1") {
      Deno.writeTextFileSync(url, rewritten);
      return;
    }
    if (failures.length > 0) throw new Error(failures.join("\n\n"));
  });
}
