/**
 * GC of one key (TiKV `actions/gc.rs`): remove the versions no reader can see any more.
 *
 * A reader at ts `t >= safePoint` sees, per key, the newest Put/Delete committed at or below
 * `t`. So below the safe point only the newest Put/Delete committed at or before it matters
 * (call it V); everything older is garbage, and so are Lock and Rollback records between V
 * and the safe point (they carry no data). Walking the versions newest first:
 *
 * 1. Versions committed after the safe point are kept.
 * 2. From the safe point down to V: Lock and Rollback records are deleted.
 * 3. V itself: a Put is kept (it is the visible value at the safe point); a Delete is deleted
 *    last, once everything older is gone (a Delete with nothing below it hides nothing).
 * 4. Everything older than V is deleted.
 *
 * Deleting a Put also deletes its default-CF value when the value was not inline. Protected
 * rollbacks below the safe point go too: no transaction that old can still prewrite.
 *
 * Work is bounded: after `maxWriteBytes` of modifications the walk stops with
 * `isCompleted: false`; running GC on the key again continues (what is already deleted is no
 * longer found, and the rules give the same answer). `gcKeys` applies this over a list of keys
 * and names the key to resume from.
 *
 * @module
 */

import { type MvccResult, ok } from "../../mvcc/errors.ts";
import type { CommittedWrite, MvccReader } from "../../mvcc/reader.ts";
import type { MvccTxn } from "../../mvcc/txn.ts";
import type { Key } from "../../txn_types/key.ts";
import { prevTs, type TimeStamp, TS_MAX } from "../../txn_types/timestamp.ts";

/** Bytes of modifications after which GC stops (TiKV `MAX_TXN_WRITE_SIZE`). */
export const GC_MAX_WRITE_BYTES = 32 * 1024;

/** What one GC pass over a key did (TiKV `GcInfo`). */
export interface GcInfo {
  /** Versions looked at. */
  foundVersions: number;
  deletedVersions: number;
  /** False when the write budget ran out before the oldest version. */
  isCompleted: boolean;
}

/** The arguments of `gc`. */
export interface GcArgs {
  key: Key;
  safePoint: TimeStamp;
  /** Defaults to `GC_MAX_WRITE_BYTES`; counted over all of `txn`. */
  maxWriteBytes?: number;
}

type GcState =
  /** Still above the safe point. */
  | { kind: "Rewind" }
  /** Between the safe point and V: dropping Lock and Rollback records. */
  | { kind: "RemoveIdempotent" }
  /** Below V; `latestDelete` is V when V is a Delete, removed at the end. */
  | { kind: "RemoveAll"; latestDelete: CommittedWrite | null };

/**
 * Removes the garbage versions of one key (see the module header). `txn` is the GC command's
 * buffer; its start ts is irrelevant (TiKV uses 0).
 *
 * @example
 * ```ts ignore
 * const txn = new MvccTxn(0n);
 * gc(txn, reader, { key, safePoint });
 * ```
 */
export function gc(txn: MvccTxn, reader: MvccReader, args: GcArgs): MvccResult<GcInfo> {
  const maxWriteBytes = args.maxWriteBytes ?? GC_MAX_WRITE_BYTES;
  const info: GcInfo = { foundVersions: 0, deletedVersions: 0, isCompleted: false };
  const remove = (version: CommittedWrite) => {
    txn.deleteWrite(args.key, version.commitTs);
    if (version.write.writeType === "Put" && version.write.shortValue === null) {
      txn.deleteValue(args.key, version.write.startTs);
    }
    info.deletedVersions++;
  };
  let state: GcState = { kind: "Rewind" };
  let seekTs: TimeStamp | null = TS_MAX;
  while (seekTs !== null) {
    const version = reader.seekWrite(args.key, seekTs);
    if (version === null) break;
    info.foundVersions++;
    seekTs = version.commitTs === 0n ? null : prevTs(version.commitTs);
    if (txn.writeSizeBytes >= maxWriteBytes) return ok(info);
    state = step(state, version, { safePoint: args.safePoint, remove });
  }
  if (state.kind === "RemoveAll" && state.latestDelete !== null) remove(state.latestDelete);
  info.isCompleted = true;
  return ok(info);
}

function step(
  state: GcState,
  version: CommittedWrite,
  context: { safePoint: TimeStamp; remove: (version: CommittedWrite) => void },
): GcState {
  switch (state.kind) {
    case "Rewind":
      if (version.commitTs > context.safePoint) return state;
      return step({ kind: "RemoveIdempotent" }, version, context);
    case "RemoveIdempotent":
      switch (version.write.writeType) {
        case "Put":
          return { kind: "RemoveAll", latestDelete: null };
        case "Delete":
          return { kind: "RemoveAll", latestDelete: version };
        case "Lock":
        case "Rollback":
          context.remove(version);
          return state;
      }
      break;
    case "RemoveAll":
      context.remove(version);
      return state;
  }
  throw new Error(`gc: unknown write type ${version.write.writeType}`);
}

/** What `gcKeys` did. */
export interface GcKeysResult {
  info: GcInfo;
  /** The key to continue from (its GC is not complete), or null when all keys are done. */
  resumeKey: Key | null;
}

/**
 * GC over `keys` in order, within one write budget: stops at the first key whose GC did not
 * complete and names it as the resume key.
 */
export function gcKeys(
  txn: MvccTxn,
  reader: MvccReader,
  args: { keys: readonly Key[]; safePoint: TimeStamp; maxWriteBytes?: number },
): MvccResult<GcKeysResult> {
  const total: GcInfo = { foundVersions: 0, deletedVersions: 0, isCompleted: true };
  for (const key of args.keys) {
    const result = gc(txn, reader, {
      key,
      safePoint: args.safePoint,
      maxWriteBytes: args.maxWriteBytes,
    });
    if (!result.ok) return result;
    total.foundVersions += result.value.foundVersions;
    total.deletedVersions += result.value.deletedVersions;
    if (!result.value.isCompleted) {
      return ok({ info: { ...total, isCompleted: false }, resumeKey: key });
    }
  }
  return ok({ info: total, resumeKey: null });
}
