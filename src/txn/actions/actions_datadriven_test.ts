/**
 * Datadriven tables of transaction actions (testdata/*.txt): each file is a story of
 * prewrites, commits, rollbacks and reads against one in-memory store, with the store's MVCC
 * records dumped where they matter.
 *
 * Commands (keys and values are text; v=long is a 256-byte value, too long to be inline):
 *   prewrite k=K pk=P ts=T [v=V | op=del|lock|insert|check] [for_update_ts=F] [ttl=MS]
 *            [async=(S1,S2) | async] [max_ts=M] [max_commit_ts=M] [assert=exist|not_exist]
 *            [level=fast|strict]
 *   commit k=K ts=T commit_ts=C
 *   rollback k=K ts=T
 *   cleanup k=K ts=T current_ts=C [unprotected]
 *   get k=K ts=T [rc] [bypass=(T1,..)] [access=(T1,..)]
 *   scan ts=T [desc] [limit=N]
 *   dump [k=K]        — lock, write and default records, newest first
 *
 * `REWRITE=1 deno test -A src/txn/actions/actions_datadriven_test.ts` regenerates outputs;
 * review the diff.
 */

import { runDataDriven, type TestCase } from "../../raft/datadriven.ts";
import { describeMvccError, type MvccError, type MvccResult } from "../../mvcc/errors.ts";
import type { IsolationLevel } from "../../mvcc/lock_conflict.ts";
import { PointGetter } from "../../mvcc/point_getter.ts";
import { scan } from "../../mvcc/scanner.ts";
import { fromUtf8 } from "../../util/bytes.ts";
import { describeLock, SHORT_VALUE_MAX_LEN } from "../../txn_types/lock.ts";
import { isProtectedRollback } from "../../txn_types/write.ts";
import { Key } from "../../txn_types/key.ts";
import { decodeKeyWithTs } from "../../codec/key.ts";
import type { MutationType } from "../../txn_types/mutation.ts";
import { cleanup } from "./cleanup.ts";
import { commit } from "./commit.ts";
import { rollback } from "./rollback.ts";
import { key, MvccFixture, prewriteKey, type PrewriteKeyOptions, run } from "./test_support.ts";

const dir = new URL("./testdata/", import.meta.url);

function arg(c: TestCase, name: string): string | undefined {
  return c.args.find((a) => a.key === name)?.values[0];
}
function has(c: TestCase, name: string): boolean {
  return c.args.some((a) => a.key === name);
}
function values(c: TestCase, name: string): string[] | undefined {
  return c.args.find((a) => a.key === name)?.values;
}
function tsArg(c: TestCase, name: string): bigint {
  const text = arg(c, name);
  if (text === undefined) throw new Error(`line ${c.line}: ${name}= is required`);
  return BigInt(text);
}
function optionalTs(c: TestCase, name: string): bigint | undefined {
  const text = arg(c, name);
  return text === undefined ? undefined : BigInt(text);
}
function keyArg(c: TestCase): string {
  const k = arg(c, "k");
  if (k === undefined) throw new Error(`line ${c.line}: k= is required`);
  return k;
}

function outcome<T>(result: MvccResult<T>, show: (value: T) => string): string {
  return result.ok ? show(result.value) : `error: ${kindAndMessage(result.error)}`;
}
function kindAndMessage(error: MvccError): string {
  return `${error.kind}: ${describeMvccError(error)}`;
}

const OPS: Record<string, MutationType> = {
  del: "Delete",
  lock: "Lock",
  insert: "Insert",
  check: "CheckNotExists",
};

function prewriteCommand(fx: MvccFixture, c: TestCase): string {
  const op = arg(c, "op");
  const value = arg(c, "v");
  const asyncKeys = values(c, "async");
  const assertion = arg(c, "assert");
  const level = arg(c, "level");
  const options: PrewriteKeyOptions = {
    type: op !== undefined ? OPS[op] : value !== undefined ? "Put" : "Delete",
    ...(value !== undefined
      ? { value: value === "long" ? "L".repeat(SHORT_VALUE_MAX_LEN + 1) : value }
      : {}),
    primary: arg(c, "pk") ?? keyArg(c),
    startTs: tsArg(c, "ts"),
    ttlMs: optionalTs(c, "ttl") ?? 3000n,
    ...(has(c, "for_update_ts") ? { forUpdateTs: tsArg(c, "for_update_ts") } : {}),
    ...(asyncKeys !== undefined ? { secondaries: asyncKeys } : {}),
    maxTs: optionalTs(c, "max_ts") ?? 0n,
    maxCommitTs: optionalTs(c, "max_commit_ts") ?? 0n,
    ...(assertion !== undefined ? { assertion: assertion === "exist" ? "Exist" : "NotExist" } : {}),
    assertionLevel: level === "strict" ? "Strict" : level === "fast" ? "Fast" : "Off",
  };
  const { result, txn } = prewriteKey(fx, keyArg(c), options);
  const extra = txn.observedReadTs > 0n ? ` observed_read_ts=${txn.observedReadTs}` : "";
  return outcome(result, (ts) => `ok min_commit_ts=${ts}${extra}`);
}

function readCommand(fx: MvccFixture, c: TestCase): string {
  const isolationLevel: IsolationLevel = has(c, "rc") ? "RC" : "SI";
  const options = {
    readTs: tsArg(c, "ts"),
    isolationLevel,
    bypassLocks: new Set((values(c, "bypass") ?? []).map(BigInt)),
    accessLocks: new Set((values(c, "access") ?? []).map(BigInt)),
  };
  using snapshot = fx.snapshot();
  if (c.command === "get") {
    using getter = new PointGetter(snapshot, options);
    return outcome(
      getter.getEntry(key(keyArg(c))),
      (entry) =>
        entry === null ? "<none>" : `${show(entry.value)} (commit_ts=${entry.commitTs ?? "lock"})`,
    );
  }
  const limit = Number(arg(c, "limit") ?? "100");
  const entries = scan(snapshot, {
    ...options,
    lowerBound: null,
    upperBound: null,
    desc: has(c, "desc"),
    limit,
  });
  if (entries.length === 0) return "<empty>";
  return entries.map((e) =>
    e.error === undefined
      ? `${fromUtf8(e.key)} = ${show(e.value)}`
      : `${fromUtf8(e.key)}: ${e.error.kind}` +
        (e.error.kind === "KeyIsLocked" ? ` by ${e.error.lockInfo.lockVersion}` : "")
  ).join("\n");
}

function show(value: Uint8Array): string {
  return value.length > 20 ? `<${value.length} bytes>` : JSON.stringify(fromUtf8(value));
}

function dump(fx: MvccFixture, only: string | undefined): string {
  const lines: string[] = [];
  using snapshot = fx.snapshot();
  for (const cf of ["lock", "write", "default"] as const) {
    using it = snapshot.iterator(cf);
    for (it.seekToFirst(); it.valid(); it.next()) {
      const raw = cf === "lock"
        ? Key.fromEncoded(it.key()).toRaw()
        : decodeKeyWithTs(it.key()).userKey;
      const name = fromUtf8(raw);
      if (only !== undefined && name !== only) continue;
      if (cf === "lock") {
        const lock = fx.lock(name)!;
        const value = lock.shortValue !== null ? ` value=${show(lock.shortValue)}` : "";
        lines.push(`lock ${name}: ${describeLock(lock)}${value}`);
        continue;
      }
      const ts = decodeKeyWithTs(it.key()).ts;
      if (cf === "default") {
        lines.push(`default ${name}@${ts}: ${show(it.value().slice())}`);
        continue;
      }
      const write = fx.writes(name).find((w) => w.commitTs === ts)!.write;
      const flags = [
        write.shortValue !== null && write.writeType !== "Rollback"
          ? `value=${show(write.shortValue)}`
          : "",
        isProtectedRollback(write) ? "protected" : "",
        write.hasOverlappedRollback ? "overlapped_rollback" : "",
        write.gcFence !== null ? `gc_fence=${write.gcFence}` : "",
      ].filter((f) => f !== "");
      lines.push(
        `write ${name}@${ts}: ${write.writeType} start_ts=${write.startTs} ${flags.join(" ")}`
          .trimEnd(),
      );
    }
  }
  return lines.length === 0 ? "<empty>" : lines.join("\n");
}

function handle(fx: MvccFixture, c: TestCase): string {
  switch (c.command) {
    case "prewrite":
      return prewriteCommand(fx, c);
    case "commit":
      return outcome(
        run(
          fx,
          tsArg(c, "ts"),
          (txn, reader) =>
            commit(txn, reader, { key: key(keyArg(c)), commitTs: tsArg(c, "commit_ts") }),
        ).result,
        (released) => released === null ? "ok (nothing to do)" : "ok",
      );
    case "rollback":
      return outcome(
        run(fx, tsArg(c, "ts"), (txn, reader) => rollback(txn, reader, key(keyArg(c)))).result,
        (released) => released === null ? "ok (no lock)" : "ok",
      );
    case "cleanup":
      return outcome(
        run(fx, tsArg(c, "ts"), (txn, reader) =>
          cleanup(txn, reader, {
            key: key(keyArg(c)),
            currentTs: tsArg(c, "current_ts"),
            protectRollback: !has(c, "unprotected"),
          })).result,
        (released) => released === null ? "ok (no lock)" : "ok",
      );
    case "get":
    case "scan":
      return readCommand(fx, c);
    case "dump":
      return dump(fx, arg(c, "k"));
    default:
      throw new Error(`line ${c.line}: unknown command ${c.command}`);
  }
}

// The files of this runner; other files in testdata/ belong to lock_resolution_test.ts.
const FILES = ["optimistic.txt", "async_commit.txt", "pessimistic.txt", "reads.txt"];

for (const file of FILES) {
  const url = new URL(file, dir);
  const text = Deno.readTextFileSync(url);
  const title = text.split("\n")[0]!.replace(/^#\s*/, "");
  Deno.test(`${title} (testdata/${file})`, () => {
    const fx = new MvccFixture();
    const { failures, rewritten } = runDataDriven({
      name: file,
      text,
      handler: (c) => handle(fx, c),
    });
    if (Deno.env.get("REWRITE") === "1") {
      Deno.writeTextFileSync(url, rewritten);
      return;
    }
    if (failures.length > 0) throw new Error(failures.join("\n\n"));
  });
}
